// `hac sweep` (docs/sweeps.md): runs a grid's originals and points with one of three backends,
// skipping COMPLETED runs, resuming PREEMPTED ones, rerunning FAILED ones only when asked, and
// ending with a summary of every failure.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "config/sweep_spec.h"
#include "dist/comm.h"
#include "sweep/grid.h"

namespace runner::sweep {

struct SweepOptions {
  std::string backend = "local";   // local | mpi | slurm
  bool dry_run = false;            // print the grid and each job's status; run nothing
  bool rerun_failed = false;       // FAILED jobs run again (from their newest checkpoint)
  bool fail_fast = false;          // after the first failure start nothing new
  std::string hac;                 // the hac executable for child jobs ("" = this process's)
  std::string command;             // this command line (manifest)
  // local
  int64_t jobs = 0;                // concurrent jobs (0 = max(1, cores / ranks per run))
  std::string mpirun = "mpirun";   // for jobs of more than one rank
  // slurm
  std::string spec_path;           // the spec file, passed to the array tasks
  std::vector<std::string> spec_args;  // --root/--set/--ranks given to this command, passed on too
  std::string partition;           // sbatch -p ("" = the cluster's default)
  std::string time_limit = "01:00:00";
  int64_t throttle = 0;            // array %K (0 = none)
  int64_t max_array = 0;           // split arrays above this size (0 = MaxArraySize from scontrol, else 1001)
  std::string sbatch_args;         // extra #SBATCH lines' arguments, e.g. "--gpus-per-task=1"
  std::string threads = "";        // HAC_NUM_THREADS for array tasks ("" = hac decides)
  bool wait = false;               // slurm: block until the collect job has ended
};

// Runs the sweep; returns the exit code: 0 when every job is COMPLETED, 1 when any FAILED (or
// was skipped because its original failed), 75 when interrupted (rerun to resume).
int run_sweep(const config::SweepSpec& spec, const SweepOptions& o);

// Runs one job in this process on `comm` (the app wires `hac train` / `hac unlearn` with the
// evaluation here); returns the run's exit code, throws what the run throws.
using InProcess = std::function<int(const Job& job, const dist::CommPtr& comm)>;

// The mpi backend, inside `mpirun -np P hac sweep --backend mpi`: rank 0 coordinates, the other
// ranks form groups of the runs' rank count and take jobs longest first as they become free.
int run_sweep_mpi(const config::SweepSpec& spec, const SweepOptions& o, const dist::CommPtr& world,
                  const InProcess& run);

// One job of the grid in this process (Slurm array tasks: `hac sweep SPEC --job originals:3`).
int run_one_job(const config::SweepSpec& spec, const std::string& which, const dist::CommPtr& world,
                const InProcess& run);

// The slurm backend: writes the array, task and collect scripts to <grid dir>/slurm/ and submits
// them with sbatch (used by run_sweep).
int submit_slurm(const Grid& g, const config::SweepSpec& spec, const SweepOptions& o);

// The status a job's result.json records ("" when there is none yet).
std::string job_status(const Job& j);
// Prints "k/n jobs COMPLETED" and a line per other job (status, dir, first error line); returns
// 0 when all are COMPLETED, else 1.
int summarize(const Grid& g, int64_t blocked = 0);
// Writes <grid dir>/sweep.json: spec, command, commit, every job with its status.
void write_manifest(const Grid& g, const config::SweepSpec& spec, const SweepOptions& o);

}  // namespace runner::sweep
