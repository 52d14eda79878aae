// `hac sweep --check` (docs/sweeps.md): everything a sweep's jobs will need, checked before any
// job starts, every problem listed at once; and the grid's cost. Also run by the coordinator at the
// start of a real sweep, so that a missing file is found in the first second rather than hours
// into an array.
#pragma once

#include <string>
#include <vector>

#include "sweep/grid.h"

namespace runner::sweep {

struct PreflightOptions {
  // Samples per second of one job (all its ranks) for the GPU-hour estimate; 0 = the median of the
  // completed runs of each stage under the sweep's folder, when there are any.
  double samples_per_s = 0.0;
};

struct PreflightReport {
  // One line per distinct problem, with how many jobs it concerns ("(12 jobs)").
  std::vector<std::string> problems;
  // The cost table: per stage the jobs still to run, optimizer steps, samples, and the
  // device-hours estimate when a rate is known.
  std::string cost;
};

// Checks every job that is not COMPLETED: the device is supported by this build; every dataset
// opens and holds images of the size and channels of the model that reads it; every checkpoint
// a job starts from (unlearn.original not made by the sweep, model.init) loads under MERU's /
// CLIP's names with consistent shapes; every forget concept resolves (with descendants) in its
// dataset; CLIP's BPE vocabulary exists where a job needs it; the sweep's folder is writable.
// Files are opened once each, however many jobs name them.
PreflightReport preflight(const Grid& g, const PreflightOptions& o = {});

// Prints the report (problems first, then the cost) and returns the number of problems.
size_t print_preflight(const PreflightReport& r);

}  // namespace runner::sweep
