// Where a sweep's job stands and what the sweep does with it (docs/sweeps.md "Running it again"):
// the status its result.json records, the one rule every backend applies to decide whether a job
// runs, and whether a point's original is done. No torch here.
#pragma once

#include <string>

#include "sweep/grid.h"
#include "train/result_file.h"

namespace runner::sweep {

// The job's result.json.
std::string result_path(const Job& j);
// The status its result.json records (kAbsent when there is none yet or it does not parse).
train::RunStatus job_status(const Job& j);

// Should a job with status `s` run? COMPLETED: no; FAILED: only when `rerun_failed`; anything else
// (not run yet, RUNNING from a killed sweep, PREEMPTED): yes, and the run resumes from its newest
// checkpoint.
bool should_run(train::RunStatus s, bool rerun_failed);

// Whether `point` may start: it trains no original of the sweep, or that original is COMPLETED.
bool original_done(const Grid& g, const Job& point);

}  // namespace runner::sweep
