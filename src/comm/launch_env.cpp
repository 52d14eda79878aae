// Launch-environment detection: Open MPI, PMIx, Slurm and generic variables, in that order.
#include "comm/launch_env.h"

#include <cctype>
#include <cstdlib>

#include <fmt/format.h>

#include "core/error.h"

namespace runner::comm {
namespace {

std::optional<int> int_var(const EnvLookup& getenv, const std::string& name) {
  auto v = getenv(name);
  if (!v || v->empty()) return std::nullopt;
  try {
    size_t used = 0;
    int x = std::stoi(*v, &used);
    if (used != v->size()) throw std::invalid_argument("trailing characters");
    return x;
  } catch (const std::exception&) {
    throw ConfigError(fmt::format("environment variable {}='{}' is not an integer", name, *v));
  }
}

}  // namespace

EnvLookup env_from_map(const std::map<std::string, std::string>& vars) {
  return [vars](const std::string& name) -> std::optional<std::string> {
    auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

LaunchEnv detect_launch_env() {
  return detect_launch_env([](const std::string& name) -> std::optional<std::string> {
    const char* v = std::getenv(name.c_str());
    if (v == nullptr) return std::nullopt;
    return std::string(v);
  });
}

LaunchEnv detect_launch_env(const EnvLookup& getenv) {
  LaunchEnv env;
  if (auto job = getenv("SLURM_JOB_ID")) {
    env.under_slurm = true;
    env.slurm_job_id = *job;
  }
  env.slurm_step = env.under_slurm && getenv("SLURM_PROCID").has_value() &&
                   getenv("SLURM_STEP_ID").has_value();
  if (auto n = int_var(getenv, "SLURM_STEP_NUM_TASKS")) {
    env.slurm_ntasks = *n;
  } else if (auto n2 = int_var(getenv, "SLURM_NTASKS")) {
    env.slurm_ntasks = *n2;
  }

  if (getenv("PMIX_RANK")) {
    env.pmi = "pmix";
  } else if (getenv("PMI_RANK")) {
    env.pmi = "pmi2";
  }
  // Tasks per node as Slurm writes them, e.g. "2" or "2(x3)": the leading count is this node's
  // on a homogeneous allocation, which is all that the log line needs.
  auto slurm_local_size = [&]() -> int {
    for (const char* name : {"SLURM_STEP_TASKS_PER_NODE", "SLURM_TASKS_PER_NODE"}) {
      if (auto v = getenv(name); v && !v->empty() && std::isdigit(static_cast<unsigned char>((*v)[0]))) {
        return std::stoi(*v);
      }
    }
    return 1;
  };

  if (auto size = int_var(getenv, "OMPI_COMM_WORLD_SIZE")) {
    env.source = "openmpi";
    env.mpi_launched = true;
    env.world_size = *size;
    env.rank = int_var(getenv, "OMPI_COMM_WORLD_RANK").value_or(0);
    env.local_rank = int_var(getenv, "OMPI_COMM_WORLD_LOCAL_RANK").value_or(0);
    env.local_size = int_var(getenv, "OMPI_COMM_WORLD_LOCAL_SIZE").value_or(1);
  } else if (auto prank = int_var(getenv, "PMIX_RANK")) {
    // srun --mpi=pmix: PMIx gives the rank, Slurm the sizes.
    env.source = "pmix";
    env.mpi_launched = true;
    env.rank = *prank;
    env.world_size = env.slurm_ntasks > 0 ? env.slurm_ntasks : 1;
    env.local_rank = int_var(getenv, "SLURM_LOCALID").value_or(0);
    env.local_size = slurm_local_size();
  } else if (env.slurm_step) {
    env.source = "slurm";
    env.rank = int_var(getenv, "SLURM_PROCID").value_or(0);
    env.world_size = env.slurm_ntasks > 0 ? env.slurm_ntasks : 1;
    env.local_rank = int_var(getenv, "SLURM_LOCALID").value_or(0);
    env.local_size = slurm_local_size();
    // srun started us; whether MPI joins the world depends on PMI support, checked after init.
    env.mpi_launched = env.world_size > 1;
  } else if (auto ws = int_var(getenv, "WORLD_SIZE")) {
    env.source = "generic";
    env.world_size = *ws;
    env.rank = int_var(getenv, "RANK").value_or(0);
    env.local_rank = int_var(getenv, "LOCAL_RANK").value_or(0);
    env.local_size = int_var(getenv, "LOCAL_WORLD_SIZE").value_or(1);
    env.mpi_launched = env.world_size > 1;
  }
  if (env.world_size < 1 || env.rank < 0 || env.rank >= env.world_size) {
    throw ConfigError(fmt::format("launch environment ({}) gives rank {} of world size {}",
                                  env.source, env.rank, env.world_size));
  }
  return env;
}

void check_launch_before_mpi_init(const LaunchEnv& env) {
  if (env.source == "slurm" && env.world_size > 1 && env.pmi.empty()) {
    throw CommError(fmt::format(
        "srun started {} tasks without a process-management interface for MPI (no PMIx): MPI "
        "cannot connect them. Launch with `srun --mpi=pmix` (or set MpiDefault=pmix in "
        "slurm.conf), or use mpirun inside the allocation", env.world_size));
  }
}

void check_world_matches_launch(const LaunchEnv& env, int mpi_world_size) {
  if (env.source == "openmpi") {
    if (mpi_world_size != env.world_size) {
      throw CommError(fmt::format(
          "MPI reports a world of {} ranks but mpirun set OMPI_COMM_WORLD_SIZE={}: the binary "
          "and mpirun come from different MPI installations", mpi_world_size, env.world_size));
    }
    return;
  }
  if (env.slurm_step && env.slurm_ntasks > 0 && mpi_world_size != env.slurm_ntasks) {
    throw CommError(fmt::format(
        "Slurm started {} tasks (SLURM_NTASKS) but MPI formed a world of {}: every task thinks "
        "it is alone. Launch with `srun --mpi=pmix` (or set MpiDefault=pmix in slurm.conf), or "
        "use mpirun inside the allocation", env.slurm_ntasks, mpi_world_size));
  }
  if (env.source == "generic" && mpi_world_size != env.world_size) {
    throw CommError(fmt::format(
        "WORLD_SIZE={} but MPI formed a world of {}: hac's ranks talk through MPI, so start "
        "them with mpirun or `srun --mpi=pmix`", env.world_size, mpi_world_size));
  }
}

std::string describe(const LaunchEnv& env) {
  std::string s = fmt::format("rank {} of {} (local {} of {}), from {}", env.rank, env.world_size,
                              env.local_rank, env.local_size, env.source);
  if (env.under_slurm) s += fmt::format(", Slurm job {}", env.slurm_job_id);
  return s;
}

}  // namespace runner::comm
