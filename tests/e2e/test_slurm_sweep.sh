#!/usr/bin/env bash
# A sweep on a real single-node Slurm (slurmctld + slurmd + munge from Debian's packages, started
# in a temporary directory): job arrays per stage and rank count (one point on 2 ranks), tasks
# under srun --mpi=pmix, arrays split at --max-array, the points depending on the original, a
# dependent collect job; every
# result COMPLETED and the collected table lists the methods. A second submission finds nothing
# left to run. A sweep with a select block: the trials' arrays, then a job that runs the sweep
# again, which chooses and submits the points and the collect job.
source "$(dirname "$0")/lib.sh"
hac=$(realpath "$1")
scratch_dir /tmp/hac-slurm-sweep.XXXXXX
start_slurm

fashion_mnist "$dir/fm.h5" 1200 100
cat > "$dir/spec.yaml" <<YAML
name: s
root: $dir/results
set: {data.file: $dir/fm.h5, data.batch_size: 16, unlearn.steps: 3, unlearn.lr: 0.0001, train.log_every: 100,
      eval.knn_bank_rows: 200, eval.audit_rows: 50, eval.cka_rows: 20, eval.embedding_rows: 10}
originals:
  set: {data.file: $dir/fm.h5, data.batch_size: 32, train.steps: 20, train.warmup_steps: 5, train.log_every: 100,
        eval.knn_bank_rows: 200, eval.audit_rows: 50}
axes:
  - list: [{unlearn.method: hac}, {unlearn.method: ft}, {unlearn.method: ga, ranks: 2}]
  - product: {unlearn.forget: [[sandal]]}
YAML

# --max-array 1 splits the two 1-rank points into two arrays (as MaxArraySize would on a cluster).
out=$(timeout 600 "$hac" sweep "$dir/spec.yaml" --backend slurm --wait --threads 1 --throttle 2 --max-array 1 2>&1); rc=$?
echo "$out" | tail -n 5
grep -q "submitted 4 array(s)" <<<"$out" || fail "expected 4 arrays (1 original, 2 + 1 points): $out"
[ "$rc" -eq 0 ] || { fail "slurm sweep exited $rc"; cat "$dir"/results/s/slurm/*.out 2>/dev/null | tail -n 40; }
n=$(grep -l '"status": "COMPLETED"' "$dir"/results/s/runs/*/result.json "$dir"/results/originals/*/result.json 2>/dev/null | wc -l)
[ "$n" -eq 4 ] || fail "$n of 4 jobs COMPLETED"
grep -q -- "--signal=USR2@120" "$dir"/results/s/slurm/points-*.sbatch || fail "array tasks lack --signal=USR2"
grep -q -- "srun --mpi=pmix -n 2" "$dir"/results/s/slurm/points-*.sbatch || fail "no 2-rank array for the 2-rank point"
grep -q '"world_size": 2' "$dir"/results/s/runs/ga-*/result.json || fail "the 2-rank point did not run on 2 ranks"
table=$dir/results/s/collected/table_main.md
[ -s "$table" ] || fail "the collect job wrote no table"
for m in hac ft ga; do grep -q "$m" "$table" 2>/dev/null || fail "the table lacks $m"; done

out=$(timeout 120 "$hac" sweep "$dir/spec.yaml" --backend slurm --wait 2>&1) || fail "second submission exited $?"
grep -q "submitted 0 array(s)" <<<"$out" || fail "the second submission ran jobs again: $out"
# Selection: trials on the validation split first; the job after them submits the points.
cat > "$dir/sel.yaml" <<YAML
name: sel
root: $dir/results
set: {data.file: $dir/fm.h5, data.batch_size: 16, data.val_fraction: 0.1, unlearn.steps: 3, train.log_every: 100,
      eval.knn_bank_rows: 200, eval.audit_rows: 50, eval.cka_rows: 20, eval.embedding_rows: 10}
originals:
  set: {data.file: $dir/fm.h5, data.batch_size: 32, data.val_fraction: 0.1, train.steps: 20, train.warmup_steps: 5,
        train.log_every: 100, eval.knn_bank_rows: 200, eval.audit_rows: 50}
select:
  trials: 2
  set: {unlearn.forget: [shirt]}
  space: {all: {unlearn.lr: [0.0001, 0.0002]}}
axes:
  - list: [{unlearn.method: hac}, {unlearn.method: ft}]
  - product: {unlearn.forget: [[sandal]]}
YAML
out=$(timeout 600 "$hac" sweep "$dir/sel.yaml" --backend slurm --wait --threads 1 2>&1) || fail "selection stage exited $?: $out"
grep -q "submitted 2 array(s)" <<<"$out" || fail "expected an originals and a trials array: $out"
# The job after the trials ran `hac sweep` again, which submitted the points (its log says so).
grep -lq "submitted" "$dir"/results/sel/slurm/collect-*.out 2>/dev/null || fail "no job submitted the points after the trials"
for _ in $(seq 1 240); do
  [ -z "$(squeue -h 2>/dev/null)" ] && break
  sleep 1
done
n=$(grep -l '"status": "COMPLETED"' "$dir"/results/sel/trials/*/result.json 2>/dev/null | wc -l)
[ "$n" -eq 4 ] || fail "$n of 4 trials COMPLETED"
n=$(grep -l '"selected_trial"' "$dir"/results/sel/runs/*/result.json 2>/dev/null | xargs -r grep -l '"status": "COMPLETED"' | wc -l)
[ "$n" -eq 2 ] || { fail "$n of 2 selected points COMPLETED"; tail -n 20 "$dir"/results/sel/slurm/*.out; }
[ -s "$dir/results/sel/collected/table_main.md" ] || fail "the collect job after the points wrote no table"

# Per-original dependencies and --prelude: a points array from a checkpoint file waits for nothing
# (it runs while the originals array is still pending), the array of points whose original the
# sweep trains waits for that original's array task. Every array is submitted held (--hold) and
# released in that order. The prelude's lines run in every batch script.
cp "$(ls "$dir"/results/originals/*/model.pt | head -n 1)" "$dir/ckpt.pt"
printf 'export HAC_PRELUDE_MARK=1\necho "prelude ran on $(hostname)"\n' > "$dir/prelude.sh"
cat > "$dir/dep.yaml" <<YAML
name: dep
root: $dir/results
set: {data.file: $dir/fm.h5, data.batch_size: 16, unlearn.steps: 3, unlearn.lr: 0.0001, train.log_every: 100,
      unlearn.forget: [sandal], eval.knn_bank_rows: 200, eval.audit_rows: 50, eval.cka_rows: 20, eval.embedding_rows: 10}
originals:
  set: {data.file: $dir/fm.h5, data.batch_size: 32, train.steps: 20, train.warmup_steps: 5, train.log_every: 100,
        eval.knn_bank_rows: 200, eval.audit_rows: 50}
axes:
  - list: [{unlearn.method: ft, unlearn.original: $dir/ckpt.pt}, {unlearn.method: ft, original.train.seed: 7}]
YAML
out=$(timeout 120 "$hac" sweep "$dir/dep.yaml" --backend slurm --threads 1 --sbatch-args "--hold" \
  --prelude "$dir/prelude.sh" 2>&1) || fail "dep sweep submission exited $?: $out"
orig=$(grep -oP 'submitted originals array \K[0-9]+' <<<"$out")
free=$(grep -oP 'submitted points array \K[0-9]+(?= \(.*no wait)' <<<"$out")
after=$(grep -oP 'submitted points array \K[0-9]+(?= \(.*after original task)' <<<"$out")
[ -n "$orig" ] && [ -n "$free" ] && [ -n "$after" ] || fail "expected an originals array, a free and a dependent points array: $out"
grep -q "after original task ${orig}_0" <<<"$out" || fail "the dependent array does not wait for task ${orig}_0: $out"
scontrol release "$free"
free_done=0
for _ in $(seq 1 300); do
  if grep -qs '"status": "COMPLETED"' "$dir"/results/dep/runs/*ckpt*/result.json "$dir"/results/dep/runs/ft-*/result.json 2>/dev/null \
     && [ -z "$(squeue -h -j "$free" 2>/dev/null)" ]; then free_done=1; break; fi
  sleep 1
done
[ "$free_done" -eq 1 ] || fail "the point from a checkpoint file did not complete while the original was held"
state=$(squeue -h -j "$orig" -o %T 2>/dev/null | sort -u)
[ "$state" = "PENDING" ] || fail "the originals array is '$state', expected still PENDING while the free point ran"
reason=$(squeue -h -j "$after" -o %r 2>/dev/null | sort -u)
grep -q "Dependency\|JobHeld" <<<"$reason" || fail "the dependent array is not waiting: '$reason'"
scontrol release "$orig" "$after"
for _ in $(seq 1 400); do
  [ -z "$(squeue -h 2>/dev/null)" ] && break
  sleep 1
done
n=$(grep -l '"status": "COMPLETED"' "$dir"/results/dep/runs/*/result.json 2>/dev/null | wc -l)
[ "$n" -eq 2 ] || { fail "$n of 2 dep points COMPLETED"; tail -n 20 "$dir"/results/dep/slurm/*.out; }
grep -q "HAC_PRELUDE_MARK" "$dir"/results/dep/slurm/points-*.sbatch "$dir"/results/dep/slurm/collect.sbatch \
  || fail "the batch scripts lack the prelude"
grep -lq "prelude ran on" "$dir"/results/dep/slurm/points-*.out || fail "the prelude did not run in the array tasks"
[ -s "$dir/results/dep/collected/table_main.md" ] || fail "the dep sweep's collect job wrote no table"

[ $status -eq 0 ] && echo "slurm sweep: all checks passed"
finish
