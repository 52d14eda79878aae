#!/usr/bin/env bash
# The JPEG storage end to end: `hac data convert` to JPEG and back to pixels; training and
# unlearning on the JPEG file and on its decoded copy give the same losses and the same metrics
# (augmentation off); data.augment random_resized_crop changes the losses, reproducibly; bad
# values name the key.
source "$(dirname "$0")/lib.sh"
hac=$1
scratch_dir
export HAC_NUM_THREADS=1

fashion_mnist "$dir/fm.h5" 600 120
"$hac" data convert "$dir/fm.h5" --out "$dir/jpeg.h5" --storage jpeg --jpeg-quality 90 >/dev/null || die "convert to jpeg"
"$hac" data convert "$dir/jpeg.h5" --out "$dir/decoded.h5" --storage pixels >/dev/null || die "convert to pixels"
check info 0 'train: 600 rows, JPEG \([0-9.]+ KB per row\) decoded to 28x28x1' -- "$hac" data info "$dir/jpeg.h5"
check convert_again 2 'already stores jpeg images' -- "$hac" data convert "$dir/jpeg.h5" --out "$dir/x.h5" --storage jpeg

cat > "$dir/run.yaml" <<YAML
data: {batch_size: 32, decode_threads: 2}
model: {kind: meru, preset: tiny}
train: {steps: 40, lr: 0.002, warmup_steps: 5, log_every: 100, seed: 1}
unlearn: {method: hac, forget: [sandal], steps: 6, lr: 0.0001}
eval: {knn_bank_rows: 200, audit_rows: 60, cka_rows: 40, embedding_rows: 10}
YAML

# metrics FILE: result.json's metrics, one line per value, as a stable text, without the
# evaluation's wall-clock "seconds".
metrics() {
  python3 - "$1" <<'PY'
import json, sys
def strip(v):
    if isinstance(v, dict):
        return {k: strip(x) for k, x in v.items() if k != "seconds"}
    return [strip(x) for x in v] if isinstance(v, list) else v
print(json.dumps(strip(json.load(open(sys.argv[1]))["metrics"]), sort_keys=True, indent=0))
PY
}

for file in jpeg decoded; do
  "$hac" train "$dir/run.yaml" --set data.file="$dir/$file.h5" --set "unlearn.forget=[]" \
    --set output.dir="$dir/orig_$file" >"$dir/orig_$file.log" 2>&1 || fail "train on $file exited $?"
  "$hac" unlearn "$dir/run.yaml" --set data.file="$dir/$file.h5" --set unlearn.original="$dir/orig_$file/model.pt" \
    --set output.dir="$dir/hac_$file" >"$dir/hac_$file.log" 2>&1 || fail "unlearn on $file exited $?"
done
cmp -s "$dir/orig_jpeg/losses.csv" "$dir/orig_decoded/losses.csv" || fail "pretraining losses differ between the storages"
cmp -s "$dir/hac_jpeg/losses.csv" "$dir/hac_decoded/losses.csv" || fail "unlearning losses differ between the storages"
metrics "$dir/orig_jpeg/result.json" >"$dir/m_orig_jpeg" && metrics "$dir/orig_decoded/result.json" >"$dir/m_orig_decoded" \
  || fail "no metrics after pretraining"
metrics "$dir/hac_jpeg/result.json" >"$dir/m_hac_jpeg" && metrics "$dir/hac_decoded/result.json" >"$dir/m_hac_decoded" \
  || fail "no metrics after unlearning"
grep -q forget_top1 "$dir/m_hac_jpeg" || fail "unlearning metrics lack forget_top1"
diff -q "$dir/m_orig_jpeg" "$dir/m_orig_decoded" >/dev/null || fail "pretraining metrics differ: $(diff "$dir/m_orig_jpeg" "$dir/m_orig_decoded" | head -n 6)"
diff -q "$dir/m_hac_jpeg" "$dir/m_hac_decoded" >/dev/null || fail "unlearning metrics differ: $(diff "$dir/m_hac_jpeg" "$dir/m_hac_decoded" | head -n 6)"

# Random resized crops: other losses than without, the same on a rerun.
for n in 1 2; do
  "$hac" train "$dir/run.yaml" --set data.file="$dir/jpeg.h5" --set "unlearn.forget=[]" --set train.steps=10 \
    --set data.augment=random_resized_crop --set output.dir="$dir/aug$n" >"$dir/aug$n.log" 2>&1 || fail "augmented train $n exited $?"
done
cmp -s "$dir/aug1/losses.csv" "$dir/aug2/losses.csv" || fail "augmented runs are not reproducible"
head -n 11 "$dir/orig_jpeg/losses.csv" | cmp -s - "$dir/aug1/losses.csv" && fail "augmentation changed nothing"
check bad_augment 2 'data.augment' -- "$hac" config "$dir/run.yaml" --set data.augment=flip
check bad_threads 2 'data.decode_threads' -- "$hac" config "$dir/run.yaml" --set data.decode_threads=-1
finish
