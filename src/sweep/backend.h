// `hac sweep`'s backends (docs/sweeps.md): the options every backend shares and each one's own,
// the Backend interface with its local, mpi and slurm implementations, the factory by name, and
// one job in process (Slurm array tasks). Every backend skips COMPLETED jobs, resumes PREEMPTED
// ones and reruns FAILED ones only when asked (should_run, status.h).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "comm/comm.h"
#include "config/sweep_spec.h"
#include "sweep/grid.h"

namespace runner::sweep {

// Options every backend shares.
struct SweepOptions {
  bool rerun_failed = false;       // FAILED jobs run again (from their newest checkpoint)
  bool fail_fast = false;          // after the first failure start nothing new (local, mpi)
  std::string hac;                 // the hac executable for child jobs ("" = this process's)
  std::string command;             // this command line (manifest)
};

// local: child processes on this machine.
struct LocalOptions {
  int64_t jobs = 0;                // concurrent jobs (0 = max(1, cores / ranks per run))
  std::string mpirun = "mpirun";   // for jobs of more than one rank
};

// Runs one job in this process on `comm` (the app wires `hac train` / `hac unlearn` with the
// evaluation here); returns the run's exit code, throws what the run throws.
using InProcess = std::function<int(const Job& job, const comm::CommPtr& comm)>;

// mpi: the jobs in process, inside one MPI job.
struct MpiOptions {
  InProcess run;
};

// slurm: job arrays.
struct SlurmOptions {
  std::string spec_path;           // the spec file, passed to the array tasks
  std::vector<std::string> spec_args;  // --root/--set/--ranks given to this command, passed on too
  std::string partition;           // sbatch -p ("" = the cluster's default)
  std::string time_limit = "01:00:00";
  int64_t throttle = 0;            // array %K (0 = none)
  int64_t max_array = 0;           // split arrays above this size (0 = MaxArraySize from scontrol, else 1001)
  std::string sbatch_args;         // extra #SBATCH lines' arguments, e.g. "--gpus-per-task=1"
  std::string threads = "";        // HAC_NUM_THREADS for array tasks ("" = hac decides)
  bool wait = false;               // block until the collect job has ended
  // Shell lines run at the start of every generated batch script, after the #SBATCH lines: the
  // cluster's setup (`module load cuda`, `source build-cuda/env.sh`); --prelude FILE's text.
  std::string prelude;
  std::string prelude_path;        // that file, passed on to the job that submits the points
  // This command's slurm options as arguments (--partition ...): with a select block, the job that
  // follows the trials runs `hac sweep SPEC --backend slurm` with them to submit the points.
  std::vector<std::string> resubmit_args;
};

// Every backend's options, as the command line fills them; make_backend hands each its part.
struct BackendOptions {
  SweepOptions common;
  LocalOptions local;
  MpiOptions mpi;
  SlurmOptions slurm;
};

// A way to run a sweep. run() expands the spec's grid, runs (or submits) its originals and then
// the points whose original is COMPLETED (with a select block: first the trials, then the points
// with the chosen settings; slurm: a dependent job submits the points once the trials have ended), writes the manifest, and returns the exit code: 0 when
// every job is COMPLETED, 1 when any FAILED (or was not run because its original failed), 75
// when interrupted (rerun to resume).
class Backend {
 public:
  virtual ~Backend() = default;
  // "local", "mpi" or "slurm": the manifest's "backend".
  virtual const char* name() const = 0;
  virtual int run(const config::SweepSpec& spec) = 0;
};

// Child processes on this machine (`hac train|unlearn`, under mpirun for several ranks), longest
// first, as many at once as the cores allow. SIGTERM or Ctrl-C: the running jobs checkpoint and
// run() returns 75. This process starts others and must not be an MPI process.
class LocalBackend final : public Backend {
 public:
  LocalBackend(SweepOptions common, LocalOptions local) : common_(std::move(common)), local_(std::move(local)) {}
  const char* name() const override { return "local"; }
  int run(const config::SweepSpec& spec) override;

 private:
  // One pass over the grid as expand() gives it now; `selecting`: it was the selection stage.
  int run_pass(const config::SweepSpec& spec, bool& selecting);
  SweepOptions common_;
  LocalOptions local_;
};

// Inside `mpirun -np P hac sweep --backend mpi`: run() initialises the MPI world (and finalises it
// on return); rank 0 coordinates, the other ranks form groups of the runs' rank count and take
// jobs longest first as they become free.
class MpiBackend final : public Backend {
 public:
  MpiBackend(SweepOptions common, MpiOptions mpi) : common_(std::move(common)), mpi_(std::move(mpi)) {}
  const char* name() const override { return "mpi"; }
  int run(const config::SweepSpec& spec) override;

 private:
  SweepOptions common_;
  MpiOptions mpi_;
};

// Writes the array, task and collect scripts to <grid dir>/slurm/ and submits them with sbatch;
// returns 0 once submitted, or with SlurmOptions::wait the summary's code after the collect job.
// This process starts others and must not be an MPI process.
class SlurmBackend final : public Backend {
 public:
  SlurmBackend(SweepOptions common, SlurmOptions slurm) : common_(std::move(common)), slurm_(std::move(slurm)) {}
  const char* name() const override { return "slurm"; }
  int run(const config::SweepSpec& spec) override;

 private:
  SweepOptions common_;
  SlurmOptions slurm_;
};

// The names make_backend knows: "local", "mpi", "slurm".
const std::vector<std::string>& backend_names();
// The backend called `name` with its part of `o`; throws UsageError for an unknown name.
std::unique_ptr<Backend> make_backend(const std::string& name, const BackendOptions& o);

// One job of the grid in this process on `world` (a Slurm array task: `hac sweep SPEC --job
// originals:3`); a COMPLETED job returns 0 at once. Throws UsageError for a malformed `which`.
int run_one_job(const config::SweepSpec& spec, const std::string& which, const comm::CommPtr& world,
                const InProcess& run);

}  // namespace runner::sweep
