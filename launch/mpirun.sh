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
# Open MPI's mpirun treats SIGTERM as "abort the job" and exits 1, whatever the ranks return, and it
# refuses to forward SIGTERM (ess_base_forward_signals); it does forward SIGUSR2, and then exits with
# the ranks' code. So mpirun runs in the background here and a SIGTERM or SIGINT sent to this script
# (Slurm's preemption and time limit, scancel, Ctrl-C) reaches the ranks as SIGUSR2: each rank
# checkpoints, writes PREEMPTED, and this script exits 75 like the ranks.
# shellcheck disable=SC2086
"$mpirun_bin" "${flags[@]}" ${HAC_MPIRUN_FLAGS:-} "$@" &
child=$!
forward() { kill -USR2 "$child" 2>/dev/null || true; }
trap forward TERM INT
trap 'kill -USR2 "$child" 2>/dev/null || true' USR2
set +e
while :; do
  wait "$child"
  rc=$?
  # wait returns early (> 128) when a trapped signal arrives; wait again until mpirun has ended.
  kill -0 "$child" 2>/dev/null || break
done
exit "$rc"
