// What a sweep tells the user about its jobs (docs/sweeps.md): the grid with each job's status
// (--dry-run), the manifest <grid dir>/sweep.json, the closing summary, and a failed job's first
// error line. No torch here.
#pragma once

#include <cstdint>
#include <string>

#include "config/sweep_spec.h"
#include "sweep/grid.h"

namespace runner::sweep {

// The first error line a FAILED job recorded, or the first log line mentioning an error, or the
// last line of its log.
std::string first_error(const Job& j);

// Prints the grid: each original and point with its status ("-" when not run yet) and directory.
void print_grid(const Grid& g);

// Prints "k/n jobs COMPLETED" (and how many points wait for an original that is not, `blocked`)
// and a line per other job (status, dir, first error line); returns 0 when all are COMPLETED, else 1.
int summarize(const Grid& g, int64_t blocked = 0);

// Writes <grid dir>/sweep.json: spec, command, backend, commit, every job with its status
// ("PENDING" when not run yet).
void write_manifest(const Grid& g, const config::SweepSpec& spec, const std::string& backend,
                    const std::string& command);

}  // namespace runner::sweep
