// What the sweep needs from the shell: quoting, running a command (its output or its exit code),
// and the hac executable that child jobs and batch scripts run. No torch here.
#pragma once

#include <string>

namespace runner::sweep {

// `s` single-quoted for sh ('it'\''s'), safe in any command line or script.
std::string quote(const std::string& s);

// Runs `cmd` with sh and returns its standard output; throws IoError naming the command, its exit
// code and its output when it cannot start or exits non-zero.
std::string shell_output(const std::string& cmd);
// Runs `cmd` with sh; returns its exit code (128 when it did not exit normally).
int shell_status(const std::string& cmd);

// The hac executable that jobs run: `configured` (--hac), or this process's executable when empty.
std::string hac_executable(const std::string& configured);

}  // namespace runner::sweep
