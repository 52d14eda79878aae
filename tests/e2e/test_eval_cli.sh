#!/usr/bin/env bash
# The evaluation from the command line: metrics in result.json at the end of `hac train` and
# `hac unlearn` on 2 ranks, side files, `hac eval` re-evaluating a finished run (same files at 1
# and 2 ranks), a failing evaluation that loses nothing and resumes without retraining, and bad
# input naming the key or file.
source "$(dirname "$0")/lib.sh"
mpirun=$1 hac=$2
scratch_dir
has() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); v=eval('d'+sys.argv[2]); sys.exit(0 if v is not None else 1)" "$@"; }

fashion_mnist "$dir/fm.h5" 1200 200
cat > "$dir/run.yaml" <<YAML
data: {file: $dir/fm.h5, batch_size: 32}
model: {kind: meru, preset: tiny}
train: {steps: 60, lr: 0.002, warmup_steps: 10, log_every: 100, seed: 1}
unlearn: {method: hac, forget: [sandal], steps: 5, lr: 0.0001}
eval: {knn_bank_rows: 300, audit_rows: 100, cka_rows: 50, embedding_rows: 20}
YAML

# 1. Pretraining ends with metrics (no forget set: forget numbers are null, retain ones are not).
"$mpirun" -np 2 "$hac" train "$dir/run.yaml" --set output.dir="$dir/orig" --set "unlearn.forget=[]" \
  >"$dir/orig.log" 2>&1 || fail "train exited $?"
has "$dir/orig/result.json" '["metrics"]["zero_shot"]["retain_top1"]' || fail "train: no retain zero-shot metric"
has "$dir/orig/result.json" '["metrics"]["zero_shot"]["forget_top1"]' && fail "train: a forget metric without a forget set"

# 2. Unlearning on 2 ranks: every block of metrics, before -> after, side files.
"$mpirun" -np 2 "$hac" unlearn "$dir/run.yaml" --set unlearn.original="$dir/orig/model.pt" --set output.dir="$dir/hac" \
  >"$dir/hac.log" 2>&1 || fail "unlearn exited $?"
for key in '["zero_shot"]["forget_top1"]' '["retrieval"]["forget"]["i2t_r5"]' '["audit"]["forget_nonmember"]' \
  '["hierarchy"]["forget"]["own_cone"]' '["representation"]["cka"]' '["representation"]["knn_retain"]' \
  '["before"]["zero_shot"]["forget_top1"]'; do
  has "$dir/hac/result.json" "[\"metrics\"]$key" || fail "unlearn: metrics$key missing"
done
for f in samples.csv audit.csv classes.csv embeddings.csv metrics.json; do
  [ -s "$dir/hac/eval/$f" ] || fail "unlearn: eval/$f missing"
done
grep -q "eval: zero-shot forget" "$dir/hac.log" || fail "no evaluation summary line"

# 3. `hac eval` re-evaluates the run with other templates at 1 and 2 ranks: the same files, bit
#    for bit, given the same torch threads per rank (a different thread count changes the float32
#    rounding of the encoders, docs/evaluation.md).
for np in 1 2; do
  HAC_NUM_THREADS=1 "$mpirun" -np $np "$hac" eval "$dir/run.yaml" --set unlearn.original="$dir/orig/model.pt" \
    --model "$dir/hac/model.pt" --set output.dir="$dir/re$np" --set 'eval.templates=["a photo of a {}."]' \
    >"$dir/re$np.log" 2>&1 || fail "hac eval at $np rank(s) exited $?"
done
for f in samples.csv audit.csv classes.csv; do
  cmp -s "$dir/re1/eval/$f" "$dir/re2/eval/$f" || fail "hac eval: eval/$f differs between 1 and 2 ranks"
done
cp "$dir/hac/result.json" "$dir/before_re.json"
"$hac" eval "$dir/run.yaml" --set unlearn.original="$dir/orig/model.pt" --set output.dir="$dir/hac" \
  --set 'eval.templates=["a photo of a {}."]' >/dev/null 2>&1 || fail "hac eval on the run dir exited $?"
python3 - "$dir/before_re.json" "$dir/hac/result.json" <<'PY' || fail "hac eval did not update only the metrics"
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:])
assert b["metrics"]["templates"] == 1 and a["metrics"]["templates"] == 4, (a["metrics"]["templates"], b["metrics"]["templates"])
assert {k: v for k, v in a.items() if k != "metrics"} == {k: v for k, v in b.items() if k != "metrics"}
PY

# 4. A missing retrain reference is found before training (exit 2, nothing trained). A failing
#    evaluation (a retrain reference that is not a checkpoint) marks the run FAILED naming the
#    file and keeps the trained model; the fixed rerun resumes from the final checkpoint.
out=$("$mpirun" -np 2 "$hac" unlearn "$dir/run.yaml" --set unlearn.original="$dir/orig/model.pt" \
  --set output.dir="$dir/missing" --set eval.retrain="$dir/nothere.pt" 2>&1); rc=$?
[ "$rc" -eq 2 ] || fail "a missing retrain model exited $rc, expected 2"
grep -q "nothere.pt" <<<"$out" || fail "missing retrain model not named"
[ ! -e "$dir/missing/model.pt" ] && [ ! -s "$dir/missing/losses.csv" ] || fail "trained before refusing the missing retrain model"
out=$("$mpirun" -np 2 "$hac" unlearn "$dir/run.yaml" --set unlearn.original="$dir/orig/model.pt" \
  --set output.dir="$dir/failed" --set eval.retrain="$dir/run.yaml" 2>&1); rc=$?
[ "$rc" -ne 0 ] || fail "evaluation with an unreadable retrain model exited 0"
grep -q "run.yaml" <<<"$out" || fail "unreadable retrain model not named"
grep -q '"status": "FAILED"' "$dir/failed/result.json" || fail "failed evaluation: result.json is not FAILED"
[ -s "$dir/failed/model.pt" ] || fail "failed evaluation lost model.pt"
out=$("$mpirun" -np 2 "$hac" unlearn "$dir/run.yaml" --set unlearn.original="$dir/orig/model.pt" \
  --set output.dir="$dir/failed" --set eval.retrain="$dir/orig/model.pt" 2>&1) || fail "fixed rerun exited $?"
grep -q "resuming from" <<<"$out" || fail "the fixed rerun did not resume"
grep -q "step 1/5" <<<"$out" && fail "the fixed rerun trained again"
has "$dir/failed/result.json" '["metrics"]["audit"]["gap_to_retrain"]' || fail "no gap to the retrain reference"

# 5. Bad input: exit codes and names.
out=$("$hac" eval "$dir/run.yaml" --model "$dir/missing.pt" 2>&1); rc=$?
[ "$rc" -ne 0 ] || fail "missing model exited 0"; grep -q "missing.pt" <<<"$out" || fail "missing model not named: $out"
out=$("$hac" eval "$dir/run.yaml" --model "$dir/hac/model.pt" --set "eval.templates=[a photo]" 2>&1); rc=$?
[ "$rc" -eq 2 ] || fail "template without {} exited $rc"; grep -q "eval.templates" <<<"$out" || fail "template key not named: $out"
out=$("$hac" eval "$dir/run.yaml" --model "$dir/hac/model.pt" --set data.file="$dir/none.h5" 2>&1); rc=$?
[ "$rc" -ne 0 ] || fail "missing dataset exited 0"; grep -q "none.h5" <<<"$out" || fail "missing dataset not named: $out"
finish
