// Version strings of the runner itself (the libraries' versions come from their modules).
#pragma once

namespace runner::core {

// "abc123def456" or "abc123def456-dirty", recorded at build time; "unknown" outside git.
const char* git_commit();
// `git diff HEAD` of the tracked files when the build was dirty, else "" (recorded at build time;
// a run stores it as git.diff beside its result.json).
const char* git_diff();
// The project version from CMakeLists.txt.
const char* runner_version();
// yaml-cpp has no runtime version call: the version CMake found at configure time.
const char* yaml_cpp_version();

}  // namespace runner::core
