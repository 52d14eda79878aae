// Job statuses and the should-run rule (status.h).
#include "sweep/status.h"

#include <filesystem>

namespace runner::sweep {

namespace fs = std::filesystem;
using train::RunStatus;

std::string result_path(const Job& j) { return (fs::path(j.dir) / "result.json").string(); }

RunStatus job_status(const Job& j) { return train::ResultFile::read_status(result_path(j)); }

bool should_run(RunStatus s, bool rerun_failed) {
  if (s == RunStatus::kCompleted) return false;
  if (s == RunStatus::kFailed) return rerun_failed;
  return true;
}

bool original_done(const Grid& g, const Job& point) {
  return point.needs < 0 || job_status(g.originals[static_cast<size_t>(point.needs)]) == RunStatus::kCompleted;
}

}  // namespace runner::sweep
