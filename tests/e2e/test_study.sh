#!/usr/bin/env bash
# A reduced version of the embedded study (configs/sweeps/study_small.yaml) at 2 ranks per run:
# originals trained by the sweep, the selection trials on the validation split first, then every
# point COMPLETED with its group's chosen setting; a rerun redoes nothing (trials included);
# `hac collect` gives a table with a row per model and method (HAC on MERU, AC on CLIP, the
# ablation, the baselines, the fixed curvature), the paired table, the claims and the figures;
# the full study's spec and the paper's expand (--dry-run).
source "$(dirname "$0")/lib.sh"
hac=$1 src=$2
scratch_dir
cd "$src" || exit 1

fashion_mnist "$dir/fm.h5" 1500 300
out=$("$hac" sweep configs/sweeps/study_small.yaml --root "$dir/results" --ranks 2 --jobs 1 --mpirun "${MPIRUN:-mpirun}" \
  --set data.file="$dir/fm.h5" --set data.batch_size=16 --set train.steps=30 --set unlearn.steps=4 \
  --set eval.max_rows=200 --set eval.knn_bank_rows=200 --set eval.audit_rows=60 --set eval.cka_rows=40 \
  --set eval.embedding_rows=40 2>&1) || { fail "study sweep exited $?"; echo "$out" | tail -n 30; }
# 4 trainable groups x 2 trials first (a pass of its own; hac-both is hac's ablation and takes its
# choice), then 3 originals + 14 points.
grep -q "11/11 jobs COMPLETED" <<<"$out" || fail "expected 3 originals + 8 trials COMPLETED: $(tail -n 8 <<<"$out")"
grep -q "17/17 jobs COMPLETED" <<<"$out" || fail "expected 3 originals + 14 points COMPLETED: $(tail -n 5 <<<"$out")"
sel=$dir/results/study_small/selection.json
[ "$(grep -c '"status": "COMPLETED"' "$sel")" -eq 8 ] || fail "selection.json: expected 8 COMPLETED trials"
grep -q '"follows": "model.kind=meru, unlearn.method=hac"' "$sel" || fail "selection.json: hac-both does not follow hac"
grep -q '"selected_from"' "$dir"/results/study_small/runs/hac-both-sandal-s0-*/result.json \
  || fail "the ablation's points lack the group whose choice they use"
grep -q '"split": "val"' "$dir"/results/study_small/trials/t0-hac-pullover-*/result.json || fail "trials not on validation"
grep -q '"selected_trial"' "$dir"/results/study_small/runs/hac-sandal-s0-*/result.json || fail "points lack their choice"
before=$(stat -c %Y "$dir"/results/study_small/trials/*/result.json | sort | md5sum)
out=$("$hac" sweep configs/sweeps/study_small.yaml --root "$dir/results" --ranks 2 --jobs 1 --mpirun "${MPIRUN:-mpirun}" \
  --set data.file="$dir/fm.h5" --set data.batch_size=16 --set train.steps=30 --set unlearn.steps=4 \
  --set eval.max_rows=200 --set eval.knn_bank_rows=200 --set eval.audit_rows=60 --set eval.cka_rows=40 \
  --set eval.embedding_rows=40 2>&1) || fail "rerun exited $?"
grep -q "0 point(s) to run of 14" <<<"$out" || fail "the rerun ran points again: $(grep 'to run' <<<"$out")"
[ "$(stat -c %Y "$dir"/results/study_small/trials/*/result.json | sort | md5sum)" = "$before" ] || fail "trials were redone"
grep -q '"world_size": 2' "$dir"/results/study_small/runs/hac-sandal-s0-*/result.json || fail "points did not run on 2 ranks"
"$hac" collect "$dir/results/study_small" >/dev/null 2>&1 || fail "collect exited $?"
t=$dir/results/study_small/collected/table_main.md
for row in "| clip | ac | clip tiny, curvature euclidean |" "| clip | ft | clip tiny, curvature euclidean |" \
           "| meru | hac | meru tiny, curvature 1 learned |" "| meru | hac | meru tiny, curvature 0.1 |" \
           "| meru | hac-both | meru tiny, curvature 1 learned |" "| meru | none | meru tiny, curvature 1 learned |" \
           "| meru | retrain | meru tiny, curvature 1 learned |"; do
  grep -qF "$row" "$t" || fail "table lacks the row '$row'"
done
grep -q "forget@2" "$t" || fail "table lacks the 2-concept columns"
! grep -q "Runs without metrics" "$t" || fail "some runs have no metrics: $(cat "$t")"
for f in table_paired.md claims.md table_hierarchy.md table_parts.md; do
  [ -s "$dir/results/study_small/collected/$f" ] || fail "$f missing"
done
grep -q "| HAC forgets more than AC |" "$dir/results/study_small/collected/claims.md" || fail "claims.md lacks claim 1"
for f in acc_vs_concepts acc_vs_curvature dist0_hist poincare selection losses; do
  [ -s "$dir/results/study_small/collected/figures/$f.png" ] || fail "figure $f.png missing"
done
# The full study and the paper's study expand here (the paper's needs a cluster to run).
out=$("$hac" sweep configs/sweeps/study.yaml --root "$dir/none" --dry-run 2>&1) || fail "study dry run exited $?"
[ "$(grep -c '^  point ' <<<"$out")" -eq 50 ] && [ "$(grep -c '^  original ' <<<"$out")" -eq 6 ] \
  || fail "study.yaml: expected 6 originals and 50 trials: $(head -n 1 <<<"$out")"
# The paper's study asks for dist.device cuda: a CPU build lists its plan, then refuses it.
out=$("$hac" sweep configs/sweeps/paper.yaml --dry-run 2>&1); rc=$?
[ "$(grep -c '^  point ' <<<"$out")" -eq 198 ] || fail "paper.yaml: expected 198 points: $(head -n 1 <<<"$out")"
if "$hac" version 2>/dev/null | grep -q "LibTorch.*(CUDA: no)"; then  # a CPU build
  [ "$rc" -eq 2 ] && grep -q "launch/gpu_bootstrap.sh" <<<"$out" || fail "paper dry run on a CPU build: exit $rc: $(tail -n 2 <<<"$out")"
fi
# --check lists every problem in one go: the released checkpoints, the dataset, the BPE vocabulary
# (unless this checkout has one) and the device, then the cost; exit 2.
out=$("$hac" sweep configs/sweeps/paper.yaml --check --root "$dir/paper" 2>&1); rc=$?
[ "$rc" -eq 2 ] || fail "paper --check exited $rc"
for want in "unlearn.original: checkpoints/meru_vit_s.pth does not exist" "unlearn.original: checkpoints/clip_vit_l.pth does not exist" \
            "data.file: data/redcaps.h5 does not exist" "launch/gpu_bootstrap.sh" "| originals | 3 of 3 |" "| points | 198 of 198 |"; do
  grep -qF -- "$want" <<<"$out" || fail "paper --check lacks '$want': $out"
done
[ -e data/bpe_simple_vocab_16e6.txt.gz ] || grep -q "data.vocab_file: data/bpe_simple_vocab_16e6.txt.gz does not exist" <<<"$out" \
  || fail "paper --check does not name the missing vocabulary"
finish
