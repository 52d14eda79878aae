#!/usr/bin/env bash
# A reduced version of the embedded study (configs/sweeps/study_small.yaml) at 2 ranks per run:
# originals trained by the sweep, every point COMPLETED, `hac collect` gives a table with a row
# per model and method (HAC on MERU, AC on CLIP, the ablation, the baselines, the fixed
# curvature) and the figures; the full study's spec and the paper's expand (--dry-run).
source "$(dirname "$0")/lib.sh"
hac=$1 src=$2
scratch_dir
cd "$src" || exit 1

fashion_mnist "$dir/fm.h5" 1500 300
out=$("$hac" sweep configs/sweeps/study_small.yaml --root "$dir/results" --ranks 2 --jobs 1 --mpirun "${MPIRUN:-mpirun}" \
  --set data.file="$dir/fm.h5" --set data.batch_size=16 --set train.steps=30 --set unlearn.steps=4 \
  --set eval.max_rows=200 --set eval.knn_bank_rows=200 --set eval.audit_rows=60 --set eval.cka_rows=40 \
  --set eval.embedding_rows=40 2>&1) || { fail "study sweep exited $?"; echo "$out" | tail -n 30; }
grep -q "17/17 jobs COMPLETED" <<<"$out" || fail "expected 3 originals + 14 points COMPLETED: $(tail -n 5 <<<"$out")"
grep -q '"world_size": 2' "$dir"/results/study_small/runs/hac-sandal-s0-*/result.json || fail "points did not run on 2 ranks"
"$hac" collect "$dir/results/study_small" >/dev/null 2>&1 || fail "collect exited $?"
t=$dir/results/study_small/collected/table_main.md
for row in "| clip | ac | euclidean |" "| clip | ft | euclidean |" "| meru | hac | 1 learned |" "| meru | hac | 0.1 |" \
           "| meru | hac-both | 1 learned |" "| meru | none | 1 learned |" "| meru | retrain | 1 learned |"; do
  grep -qF "$row" "$t" || fail "table lacks the row '$row'"
done
grep -q "forget@2" "$t" || fail "table lacks the 2-concept columns"
! grep -q "Runs without metrics" "$t" || fail "some runs have no metrics: $(cat "$t")"
for f in acc_vs_concepts acc_vs_curvature dist0_hist poincare; do
  [ -s "$dir/results/study_small/collected/figures/$f.png" ] || fail "figure $f.png missing"
done
# The full study and the paper's study expand here (the paper's needs a cluster to run).
out=$("$hac" sweep configs/sweeps/study.yaml --dry-run 2>&1) || fail "study dry run exited $?"
[ "$(grep -c '^  point ' <<<"$out")" -eq 144 ] && [ "$(grep -c '^  original ' <<<"$out")" -eq 5 ] \
  || fail "study.yaml: expected 5 originals and 144 points: $(head -n 1 <<<"$out")"
out=$("$hac" sweep configs/sweeps/paper.yaml --dry-run 2>&1) || fail "paper dry run exited $?: $out"
[ "$(grep -c '^  point ' <<<"$out")" -eq 198 ] || fail "paper.yaml: expected 198 points: $(head -n 1 <<<"$out")"
finish
