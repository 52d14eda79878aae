// Process-wide distributed setup: MPI init/finalize, the world communicator, torch threads,
// the NCCL communicator factory and library versions.
#pragma once

#include <string>

#include "comm/comm.h"
#include "comm/launch_env.h"

namespace runner::comm {

struct InitOptions {
  // Initialise MPI even when no launcher variable says so (a singleton MPI world).
  bool force_mpi = false;
  // Torch intra-op threads per rank; 0 = hardware cores / ranks on this host (at least 1), or
  // HAC_NUM_THREADS when set.
  int threads = 0;
};

// Detects the launch environment, initialises MPI when launched by an MPI launcher (or forced),
// checks the world against the launcher (the Slurm singleton trap), sets the log identity and
// torch's thread count, logs the source of rank/world on rank 0, and returns the world.
// Throws CommError (MPI failures, world mismatch) or ConfigError (bad variables).
CommPtr init_world(const InitOptions& opts = {});
// The world communicator after init_world, else nullptr.
CommPtr world();
const LaunchEnv& launch_env();
// MPI_Finalize when MPI was initialised here. Collective; call once, after the last collective.
void finalize_world();
// Called by main's catch: terminates every rank of the job (MPI_Abort) when the world has more
// than one rank; otherwise does nothing. Never throws.
void abort_world(int code) noexcept;

// An MPI communicator over MPI_COMM_WORLD (initialising MPI when needed).
CommPtr make_mpi_world_comm();

// True when this build has the NCCL communicator.
bool nccl_built();
// A NCCL communicator over the same ranks as `bootstrap` (an MPI or self communicator, used to
// send NCCL's unique id and for shape checks); device = local rank modulo visible devices.
// Throws CommError when NCCL is not built in, no CUDA device is visible, or NCCL fails.
CommPtr make_nccl_comm(const CommPtr& bootstrap);

std::string mpi_library_version();
// "2.28.9" or "none" when NCCL is not built in.
std::string nccl_version();
// The CUDA device `index` as provenance records it: "NVIDIA H100 80GB HBM3 (compute 9.0, 79 GiB;
// CUDA runtime 12.4, driver 12.4)", or "unknown (...)" saying why not (no CUDA runtime in this
// build, no such device).
std::string cuda_device_description(int index);

}  // namespace runner::comm
