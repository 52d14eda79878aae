// Shell helpers of the sweep (shell.h).
#include "sweep/shell.h"

#include <fmt/format.h>
#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "core/error.h"

namespace runner::sweep {

namespace fs = std::filesystem;

std::string quote(const std::string& s) {
  std::string out = "'";
  for (char ch : s) out += ch == '\'' ? std::string("'\\''") : std::string(1, ch);
  return out + "'";
}

std::string shell_output(const std::string& cmd) {
  FILE* p = ::popen(cmd.c_str(), "r");
  if (p == nullptr) throw IoError(fmt::format("cannot run: {}", cmd));
  std::string out;
  char buf[4096];
  size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  const int status = ::pclose(p);
  if (status != 0) {
    throw IoError(fmt::format("`{}` failed (exit {}): {}", cmd, WIFEXITED(status) ? WEXITSTATUS(status) : -1, out));
  }
  return out;
}

int shell_status(const std::string& cmd) {
  const int s = std::system(cmd.c_str());
  return WIFEXITED(s) ? WEXITSTATUS(s) : 128;
}

std::string hac_executable(const std::string& configured) {
  return configured.empty() ? fs::read_symlink("/proc/self/exe").string() : configured;
}

}  // namespace runner::sweep
