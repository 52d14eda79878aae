#!/usr/bin/env bash
# External check against the reference MERU code (registered only when RUNNER_MERU_SOURCE names a
# checkout of facebookresearch/meru): a short MERU and a short CLIP original trained by hac, then
# tests/external/meru_peer.py loads each model.pt into MERU's own classes and compares zero-shot
# predictions, own-pair scores and embeddings with the run's eval side files.
source "$(dirname "$0")/lib.sh"
hac=$1 python=$2 meru=$3
scratch_dir
fashion_mnist "$dir/fm.h5" 2000 600
for kind in meru clip; do
  "$hac" train "$root"/configs/pretrain/${kind}_tiny.yaml --set data.file="$dir/fm.h5" --set train.steps=80 \
    --set train.warmup_steps=10 --set train.log_every=100 --set output.dir="$dir/$kind" \
    --set eval.embedding_rows=100 --set eval.knn_bank_rows=200 --set eval.audit_rows=100 --set eval.cka_rows=50 \
    >"$dir/$kind.log" 2>&1 || { fail "hac train $kind exited $?"; tail -5 "$dir/$kind.log"; continue; }
  "$python" "$root/tests/external/meru_peer.py" --meru "$meru" "$dir/$kind" --json "$dir/$kind.json" \
    || fail "MERU's code disagrees with hac on the $kind original"
done
[ $status -eq 0 ] && echo "meru_peer: MERU and CLIP originals agree with MERU's code"
finish
