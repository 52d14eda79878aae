// How this process was launched: rank, local rank and world size from the environment, with the
// source that gave them; and the check that catches MPI's singleton trap under Slurm.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>

namespace runner::comm {

struct LaunchEnv {
  int rank = 0;
  int local_rank = 0;
  int world_size = 1;
  int local_size = 1;
  // "openmpi", "pmix", "slurm", "generic" (RANK/WORLD_SIZE/LOCAL_RANK) or "single".
  std::string source = "single";
  // True when an MPI launcher (mpirun/mpiexec, or srun with PMIx) started this process, so
  // MPI_Init is expected to join a world of world_size ranks.
  bool mpi_launched = false;
  // The process-management interface the launcher offers MPI: "pmix" (PMIX_RANK), "pmi2"
  // (PMI_RANK), or "" (none: MPI_Init cannot join the other tasks).
  std::string pmi;
  bool under_slurm = false;      // SLURM_JOB_ID is set
  bool slurm_step = false;       // started by srun (SLURM_PROCID and SLURM_STEP_ID set)
  int slurm_ntasks = 0;          // SLURM_STEP_NUM_TASKS, else SLURM_NTASKS; 0 when absent
  std::string slurm_job_id;
};

// Reads the variables through `getenv` (defaults to std::getenv), so tests can pass a map.
// Throws ConfigError when a variable that must be an integer is not one.
using EnvLookup = std::function<std::optional<std::string>(const std::string&)>;
LaunchEnv detect_launch_env(const EnvLookup& getenv);
LaunchEnv detect_launch_env();
EnvLookup env_from_map(const std::map<std::string, std::string>& vars);

// Before MPI_Init: srun started several tasks but offers them no PMI (srun --mpi=none, or a
// cluster whose MpiDefault is none), so MPI cannot form their world: Open MPI aborts inside
// MPI_Init, other MPIs form a world of 1 per task. Throws CommError naming `srun --mpi=pmix`.
void check_launch_before_mpi_init(const LaunchEnv& env);

// After MPI_Init: the world MPI reports must match what the launcher promised. Under srun
// without PMIx every process joins a world of 1 (the singleton trap) while SLURM_NTASKS says
// otherwise. Throws CommError naming `srun --mpi=pmix` then. Ranks started by mpirun inside a
// Slurm allocation are trusted (mpirun may legitimately use fewer ranks than the allocation).
void check_world_matches_launch(const LaunchEnv& env, int mpi_world_size);

std::string describe(const LaunchEnv& env);

}  // namespace runner::comm
