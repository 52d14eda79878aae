// Files written so that a crash never leaves a half-written one in place.
#include "core/files.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.h"

namespace runner::core {

namespace {

void write_all(int fd, const char* data, size_t size, const std::string& tmp) {
  while (size > 0) {
    const ssize_t n = ::write(fd, data, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw IoError(fmt::format("{}: write failed: {}", tmp, std::strerror(errno)));
    data += n;
    size -= static_cast<size_t>(n);
  }
}

}  // namespace

// Temp file beside the target (same file system, so rename is atomic), fsync, rename, then fsync
// the directory so the rename itself survives a crash.
void write_file_atomically(const std::string& path, const char* data, size_t size) {
  static std::atomic<unsigned> counter{0};
  const std::string tmp = fmt::format("{}.tmp.{}.{}", path, ::getpid(), counter++);
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0)
    throw IoError(
        fmt::format("{}: cannot create temp file {}: {}", path, tmp, std::strerror(errno)));
  try {
    write_all(fd, data, size, tmp);
    if (::fsync(fd) != 0)
      throw IoError(fmt::format("{}: fsync failed: {}", tmp, std::strerror(errno)));
  } catch (...) {
    ::close(fd);
    ::unlink(tmp.c_str());
    throw;
  }
  if (::close(fd) != 0) {
    ::unlink(tmp.c_str());
    throw IoError(fmt::format("{}: close failed: {}", tmp, std::strerror(errno)));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    throw IoError(
        fmt::format("{}: cannot rename {} into place: {}", path, tmp, std::strerror(err)));
  }
  std::string dir = std::filesystem::path(path).parent_path().string();
  if (dir.empty()) dir = ".";
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    // Some file systems refuse fsync on a directory (EINVAL); the data itself is already synced.
    const int rc = ::fsync(dfd);
    const int err = errno;
    ::close(dfd);
    if (rc != 0 && err != EINVAL)
      throw IoError(fmt::format("{}: fsync of {} failed: {}", path, dir, std::strerror(err)));
  }
}


void write_file_atomically(const std::string& path, const std::string& text) {
  write_file_atomically(path, text.data(), text.size());
}

std::string read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError(fmt::format("{}: cannot open: {}", path, std::strerror(errno)));
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) throw IoError(fmt::format("{}: read failed", path));
  return ss.str();
}

}  // namespace runner::core
