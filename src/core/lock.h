// One writer per directory: an exclusive flock(2) on DIR/.hac.lock, held for the lifetime of a
// DirLock and released by the kernel when the holding process ends, however it ends. The file
// records the holder's host and PID for the message another process gets.
#pragma once

#include <optional>
#include <string>

namespace runner::core {

class DirLock {
 public:
  DirLock() = default;
  DirLock(DirLock&& other) noexcept;
  DirLock& operator=(DirLock&& other) noexcept;
  DirLock(const DirLock&) = delete;
  DirLock& operator=(const DirLock&) = delete;
  ~DirLock();

  // Takes DIR's lock (creating DIR) or throws LockedError naming DIR, `what` ("run", "sweep")
  // and the holder's host and PID. The descriptor is close-on-exec: children do not inherit it.
  static DirLock acquire(const std::string& dir, const std::string& what);
  bool held() const { return fd_ >= 0; }

 private:
  int fd_ = -1;
};

// The lock file of DIR.
std::string lock_path(const std::string& dir);
// "host pid N" of the live process holding DIR's lock; nullopt when nobody holds it (or DIR has
// no lock file). Takes and drops the lock to find out, so it never blocks.
std::optional<std::string> lock_holder(const std::string& dir);
// Whether a process with this PID exists on this host (kill(pid, 0)).
bool process_alive(long pid);

}  // namespace runner::core
