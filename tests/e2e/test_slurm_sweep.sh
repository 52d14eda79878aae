#!/usr/bin/env bash
# A sweep on a real single-node Slurm (slurmctld + slurmd + munge from Debian's packages, started
# in a temporary directory): job arrays per stage and rank count (one point on 2 ranks), tasks
# under srun --mpi=pmix, arrays split at --max-array, the points depending on the original, a
# dependent collect job; every
# result COMPLETED and the collected table lists the methods. A second submission finds nothing
# left to run.
set -u
hac=$(realpath "$1")
here=$(cd "$(dirname "$0")" && pwd)
scratch=$(mktemp -d /tmp/hac-slurm-sweep.XXXXXX)
cleanup() { "$here/../slurm/slurm_local.sh" stop "$scratch"; rm -rf "$scratch"; }
trap cleanup EXIT
conf=$("$here/../slurm/slurm_local.sh" start "$scratch") || { echo "FAIL: Slurm did not start"; exit 1; }
eval "$conf"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_btl_vader_single_copy_mechanism=none
status=0
fail() { echo "FAIL: $*"; status=1; }

"$hac" data fashion-mnist --out "$scratch/fm.h5" --train 1200 --test 100 >/dev/null || { echo "FAIL: dataset"; exit 1; }
cat > "$scratch/spec.yaml" <<YAML
name: s
root: $scratch/results
set: {data.file: $scratch/fm.h5, data.batch_size: 16, unlearn.steps: 3, unlearn.lr: 0.0001, train.log_every: 100,
      eval.knn_bank_rows: 200, eval.audit_rows: 50, eval.cka_rows: 20, eval.embedding_rows: 10}
originals:
  set: {data.file: $scratch/fm.h5, data.batch_size: 32, train.steps: 20, train.warmup_steps: 5, train.log_every: 100,
        eval.knn_bank_rows: 200, eval.audit_rows: 50}
axes:
  - list: [{unlearn.method: hac}, {unlearn.method: ft}, {unlearn.method: ga, ranks: 2}]
  - product: {unlearn.forget: [[sandal]]}
YAML

# --max-array 1 splits the two 1-rank points into two arrays (as MaxArraySize would on a cluster).
out=$(timeout 600 "$hac" sweep "$scratch/spec.yaml" --backend slurm --wait --threads 1 --throttle 2 --max-array 1 2>&1); rc=$?
echo "$out" | tail -n 5
grep -q "submitted 4 array(s)" <<<"$out" || fail "expected 4 arrays (1 original, 2 + 1 points): $out"
[ "$rc" -eq 0 ] || { fail "slurm sweep exited $rc"; cat "$scratch"/results/s/slurm/*.out 2>/dev/null | tail -n 40; }
n=$(grep -l '"status": "COMPLETED"' "$scratch"/results/s/runs/*/result.json "$scratch"/results/originals/*/result.json 2>/dev/null | wc -l)
[ "$n" -eq 4 ] || fail "$n of 4 jobs COMPLETED"
grep -q -- "--signal=USR2@120" "$scratch"/results/s/slurm/points-*.sbatch || fail "array tasks lack --signal=USR2"
grep -q -- "srun --mpi=pmix -n 2" "$scratch"/results/s/slurm/points-*.sbatch || fail "no 2-rank array for the 2-rank point"
grep -q '"world_size": 2' "$scratch"/results/s/runs/ga-*/result.json || fail "the 2-rank point did not run on 2 ranks"
table=$scratch/results/s/collected/table_main.md
[ -s "$table" ] || fail "the collect job wrote no table"
for m in hac ft ga; do grep -q "$m" "$table" 2>/dev/null || fail "the table lacks $m"; done

out=$(timeout 120 "$hac" sweep "$scratch/spec.yaml" --backend slurm --wait 2>&1) || fail "second submission exited $?"
grep -q "submitted 0 array(s)" <<<"$out" || fail "the second submission ran jobs again: $out"
[ $status -eq 0 ] && echo "slurm sweep: all checks passed"
exit $status
