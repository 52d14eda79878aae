#!/usr/bin/env bash
# mpirun with the flags hac needs on a workstation or a single node:
#   launch/mpirun.sh -np 4 build/hac selfcheck
# * --bind-to none: ranks bound to one core each would starve their torch threads;
# * --oversubscribe: more ranks than cores is allowed (tests run 4 ranks on 2 cores);
# * running as root (containers, CI) needs Open MPI's explicit consent;
# * HAC_NUM_THREADS is left to hac, which divides the cores among the ranks of a host.
# Extra mpirun flags can be given in HAC_MPIRUN_FLAGS. On a Slurm cluster use launch/ scripts
# with `srun --mpi=pmix` instead.
set -euo pipefail
mpirun_bin=${MPIRUN:-mpirun}
flags=(--bind-to none --oversubscribe)
if [ "$(id -u)" -eq 0 ]; then
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
# Shared-memory single-copy needs ptrace rights that containers often lack; the copy-in/copy-out
# path works everywhere.
export OMPI_MCA_btl_vader_single_copy_mechanism=${OMPI_MCA_btl_vader_single_copy_mechanism:-none}
# shellcheck disable=SC2086
exec "$mpirun_bin" "${flags[@]}" ${HAC_MPIRUN_FLAGS:-} "$@"
