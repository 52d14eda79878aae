#!/usr/bin/env bash
# hac under a real single-node Slurm: `srun --mpi=pmix` forms the world; srun without PMIx is
# refused with a message naming --mpi=pmix; mpirun and srun inside an sbatch job both work.
set -u
hac=$(realpath "$1")
here=$(cd "$(dirname "$0")" && pwd)
scratch=$(mktemp -d /tmp/hac-slurm-test.XXXXXX)
cleanup() { "$here/../slurm/slurm_local.sh" stop "$scratch"; rm -rf "$scratch"; }
trap cleanup EXIT
conf=$("$here/../slurm/slurm_local.sh" start "$scratch") || { echo "FAIL: Slurm did not start"; exit 1; }
eval "$conf"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_btl_vader_single_copy_mechanism=none HAC_NUM_THREADS=1
status=0

out=$(timeout 60 srun --mpi=pmix -n 2 "$hac" selfcheck 2>&1); rc=$?
echo "$out"
if [ $rc -ne 0 ] || ! grep -q "from pmix.*selfcheck passed\|selfcheck passed.* on 2 rank" <<<"$out"; then
  echo "FAIL: srun --mpi=pmix -n 2 (exit $rc)"; status=1
fi

out=$(timeout 60 srun --mpi=none -n 2 "$hac" selfcheck 2>&1); rc=$?
echo "$out"
if [ $rc -eq 0 ] || [ $rc -eq 124 ] || ! grep -q -- "--mpi=pmix" <<<"$out"; then
  echo "FAIL: srun --mpi=none -n 2 must fail naming --mpi=pmix (exit $rc)"; status=1
fi

cat > "$scratch/job.sh" <<JOB
#!/bin/bash
#SBATCH -n 2
#SBATCH -o $scratch/job.out
mpirun --bind-to none "$hac" selfcheck || exit 11
srun "$hac" selfcheck || exit 12
JOB
jid=$(sbatch --parsable "$scratch/job.sh") || { echo "FAIL: sbatch"; exit 1; }
for _ in $(seq 120); do squeue -h -j "$jid" 2>/dev/null | grep -q . || break; sleep 0.5; done
state=$(scontrol show job "$jid" 2>/dev/null | grep -o 'JobState=[A-Z]*' | head -1)
cat "$scratch/job.out"
if [ "$state" != "JobState=COMPLETED" ] || [ "$(grep -c 'selfcheck passed.* on 2 rank' "$scratch/job.out")" -ne 2 ]; then
  echo "FAIL: sbatch job ($state)"; status=1
fi
[ $status -eq 0 ] && echo "slurm launch: all cases passed"
exit $status
