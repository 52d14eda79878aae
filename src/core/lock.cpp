// Directory locks with flock(2): released by the kernel when the holder exits or is killed.
#include "core/lock.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <signal.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "core/error.h"
#include "core/log.h"

namespace runner::core {

namespace {

std::string read_fd(int fd) {
  std::string out;
  char buf[256];
  if (::lseek(fd, 0, SEEK_SET) < 0) return out;
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  return out;
}

int open_lock_file(const std::string& path, bool create) {
  const int flags = O_RDWR | O_CLOEXEC | (create ? O_CREAT : 0);
  int fd;
  do {
    fd = ::open(path.c_str(), flags, 0644);
  } while (fd < 0 && errno == EINTR);
  return fd;
}

}  // namespace

std::string lock_path(const std::string& dir) { return (std::filesystem::path(dir) / ".hac.lock").string(); }

DirLock::DirLock(DirLock&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }

DirLock& DirLock::operator=(DirLock&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = other.fd_;
    other.fd_ = -1;
  }
  return *this;
}

DirLock::~DirLock() {
  if (fd_ >= 0) ::close(fd_);  // closing the last descriptor releases the flock
}

DirLock DirLock::acquire(const std::string& dir, const std::string& what) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  const std::string path = lock_path(dir);
  const int fd = open_lock_file(path, true);
  if (fd < 0) throw IoError(fmt::format("{}: cannot open the lock file: {}", path, std::strerror(errno)));
  int rc;
  do {
    rc = ::flock(fd, LOCK_EX | LOCK_NB);
  } while (rc != 0 && errno == EINTR);
  if (rc != 0) {
    const int err = errno;
    const std::string holder = read_fd(fd);
    ::close(fd);
    if (err == EWOULDBLOCK) {
      throw LockedError(fmt::format("{}: another process is working in this {} directory ({}); nothing was written. "
                                    "Wait for it, or stop it, then rerun", dir, what,
                                    holder.empty() ? "holder unknown" : holder));
    }
    throw IoError(fmt::format("{}: cannot lock: {}", path, std::strerror(err)));
  }
  const std::string me = fmt::format("host {} pid {}\n", host_name(), static_cast<long>(::getpid()));
  if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, me.data(), me.size(), 0) != static_cast<ssize_t>(me.size())) {
    log_warn("{}: could not record the lock holder: {}", path, std::strerror(errno));
  }
  DirLock l;
  l.fd_ = fd;
  return l;
}

std::optional<std::string> lock_holder(const std::string& dir) {
  const int fd = open_lock_file(lock_path(dir), false);
  if (fd < 0) return std::nullopt;
  std::optional<std::string> out;
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const std::string h = read_fd(fd);
    out = h.empty() ? std::string("holder unknown") : h;
  }
  ::close(fd);  // drops the probe's lock, if it got one
  return out;
}

bool process_alive(long pid) {
  if (pid <= 0) return false;
  return ::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM;
}

}  // namespace runner::core
