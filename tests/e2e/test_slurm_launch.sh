#!/usr/bin/env bash
# hac under a real single-node Slurm: `srun --mpi=pmix` forms the world; srun without PMIx is
# refused with a message naming --mpi=pmix; mpirun and srun inside an sbatch job both work.
source "$(dirname "$0")/lib.sh"
hac=$(realpath "$1")
scratch_dir /tmp/hac-slurm-test.XXXXXX
start_slurm
export HAC_NUM_THREADS=1

out=$(timeout 60 srun --mpi=pmix -n 2 "$hac" selfcheck 2>&1); rc=$?
echo "$out"
if [ $rc -ne 0 ] || ! grep -q "from pmix.*selfcheck passed\|selfcheck passed.* on 2 rank" <<<"$out"; then
  fail "srun --mpi=pmix -n 2 (exit $rc)"
fi

out=$(timeout 60 srun --mpi=none -n 2 "$hac" selfcheck 2>&1); rc=$?
echo "$out"
if [ $rc -eq 0 ] || [ $rc -eq 124 ] || ! grep -q -- "--mpi=pmix" <<<"$out"; then
  fail "srun --mpi=none -n 2 must fail naming --mpi=pmix (exit $rc)"
fi

cat > "$dir/job.sh" <<JOB
#!/bin/bash
#SBATCH -n 2
#SBATCH -o $dir/job.out
mpirun --bind-to none "$hac" selfcheck || exit 11
srun "$hac" selfcheck || exit 12
JOB
jid=$(sbatch --parsable "$dir/job.sh") || die "sbatch"
for _ in $(seq 120); do squeue -h -j "$jid" 2>/dev/null | grep -q . || break; sleep 0.5; done
state=$(scontrol show job "$jid" 2>/dev/null | grep -o 'JobState=[A-Z]*' | head -1)
cat "$dir/job.out"
if [ "$state" != "JobState=COMPLETED" ] || [ "$(grep -c 'selfcheck passed.* on 2 rank' "$dir/job.out")" -ne 2 ]; then
  fail "sbatch job ($state)"
fi
[ $status -eq 0 ] && echo "slurm launch: all cases passed"
finish
