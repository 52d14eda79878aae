#!/usr/bin/env bash
# One writer per run directory and what a bad day does to a run, with real processes (docs/training.md
# "Robustness"): a second `hac train` on a working run's directory is refused at once (exit 73, the
# holder named) and the first's losses.csv stays whole; a torn last line of losses.csv is dropped on
# resume; a `hac sweep` killed outright leaves no run training; a second sweep on the same root is
# refused, and with --share never runs a point twice; an evaluation split without rows and an HDF5
# filter the library cannot decode are refused before the first step; SIGTERM to launch/mpirun.sh
# ends a 2-rank run PREEMPTED with exit 75.
source "$(dirname "$0")/lib.sh"
mpirun=$1 hac=$2
scratch_dir

fashion_mnist "$dir/fm.h5" 1200 100
cat > "$dir/train.yaml" <<YAML
data: {file: $dir/fm.h5, batch_size: 16, prefetch: 2}
model: {kind: meru, preset: tiny}
train: {steps: 300, lr: 0.001, warmup_steps: 10, log_every: 50, seed: 1, checkpoint_every: 50}
eval: {max_rows: 100, knn_bank_rows: 100, audit_rows: 40, cka_rows: 40, embedding_rows: 20}
YAML
export HAC_NUM_THREADS=1

# wait_rows FILE N: waits (at most 60 s) until FILE has more than N lines.
wait_rows() {
  for _ in $(seq 600); do
    [ -f "$1" ] && [ "$(wc -l <"$1")" -gt "$2" ] && return 0
    sleep 0.1
  done
  return 1
}

# 1. Two writers: the second is refused at once and writes nothing; the first ends whole.
"$hac" train "$dir/train.yaml" --set output.dir="$dir/one" >"$dir/one.log" 2>&1 &
first=$!
wait_rows "$dir/one/losses.csv" 20 || fail "the first run made no progress"
out=$(timeout 60 "$hac" train "$dir/train.yaml" --set output.dir="$dir/one" 2>&1); rc=$?
[ "$rc" -eq 73 ] || fail "second writer exited $rc, expected 73: $out"
grep -q "$dir/one" <<<"$out" && grep -q "pid $first" <<<"$out" || fail "the refusal names neither the directory nor the holder: $out"
wait "$first" || fail "the first run exited $?"
grep -q '"status": "COMPLETED"' "$dir/one/result.json" || fail "the first run is not COMPLETED"
[ "$(($(wc -l <"$dir/one/losses.csv") - 1))" -eq 300 ] || fail "losses.csv of the first run has $(wc -l <"$dir/one/losses.csv") lines, expected 301"

# 2. A torn last line (the process killed mid-row) is dropped on resume; every row is whole.
"$hac" train "$dir/train.yaml" --set output.dir="$dir/torn" --set train.steps=120 >"$dir/torn.log" 2>&1 &
pid=$!
wait_rows "$dir/torn/losses.csv" 75 || fail "the torn run made no progress"
kill -9 "$pid"; wait "$pid" 2>/dev/null
printf '32' >>"$dir/torn/losses.csv"  # half a row, no newline
"$hac" train "$dir/train.yaml" --set output.dir="$dir/torn" --set train.steps=120 >"$dir/torn2.log" 2>&1 \
  || fail "the resumed run exited $?"
grep -q "resuming from" "$dir/torn2.log" || fail "the rerun did not resume"
awk -F, 'NR == 1 {n = NF; next} NF != n || $1 != NR - 1 {bad = 1} END {exit bad || NR != 121}' "$dir/torn/losses.csv" \
  || fail "losses.csv after resume is not 120 whole rows in step order: $(head -c 300 "$dir/torn/losses.csv")"

# 3. A sweep coordinator killed outright: its run notices, checkpoints, and nothing keeps training.
cat > "$dir/sweep.yaml" <<YAML
name: w
root: $dir/results
base: $dir/train.yaml
set: {unlearn.steps: 400, unlearn.original: $dir/one/model.pt, eval.enabled: false}
axes:
  - forget: {concepts: [sandal, shirt, bag], sizes: [1]}
YAML
"$hac" sweep "$dir/sweep.yaml" --jobs 1 >"$dir/sweep.log" 2>&1 &
coord=$!
for _ in $(seq 600); do ls "$dir"/results/w/runs/*/losses.csv >/dev/null 2>&1 && break; sleep 0.1; done
run=$(dirname "$(ls "$dir"/results/w/runs/*/losses.csv | head -n 1)")
wait_rows "$run/losses.csv" 5 || fail "the sweep's run made no progress"
kill -9 "$coord"; wait "$coord" 2>/dev/null
gone=0
for _ in $(seq 300); do
  pgrep -f "$dir/results/w/runs" >/dev/null || { gone=1; break; }
  sleep 0.1
done
[ "$gone" -eq 1 ] || { fail "a run of the killed sweep is still running"; pkill -f "$dir/results/w/runs"; }
grep -q '"status": "PREEMPTED"' "$run/result.json" || fail "the orphaned run is not PREEMPTED: $(head -c 300 "$run/result.json")"

# 4. Two coordinators on one sweep: refused without --share; with it, no run starts twice.
"$hac" sweep "$dir/sweep.yaml" --jobs 1 >"$dir/a.log" 2>&1 &
a=$!
for _ in $(seq 600); do grep -q "started" "$dir/a.log" && break; sleep 0.1; done
out=$(timeout 60 "$hac" sweep "$dir/sweep.yaml" --jobs 1 2>&1); rc=$?
[ "$rc" -eq 73 ] || fail "a second coordinator exited $rc, expected 73: $out"
timeout 600 "$hac" sweep "$dir/sweep.yaml" --jobs 1 --share >"$dir/b.log" 2>&1
wait "$a"
grep -q "running elsewhere" "$dir/b.log" || fail "the sharing coordinator did not report a run held by the other"
for log in "$dir"/results/w/runs/*/sweep_job.log; do
  # One start of training per run in all (a resumed run logs "resuming from" instead of starting over).
  n=$(grep -c "unlearn [0-9a-f]\{16\}: " "$log")
  r=$(grep -c "resuming from" "$log")
  [ $((n - r)) -le 1 ] || fail "$(dirname "$log") was trained from the start $((n - r)) times"
done
"$hac" sweep "$dir/sweep.yaml" --dry-run | grep -q "RUNNING" && fail "a run stays RUNNING after both sweeps"
grep -c '"status": "COMPLETED"' "$dir"/results/w/runs/*/result.json | grep -q ":0" && fail "a run of the sweep did not complete"

# 5. An evaluation split without rows (the file copied by h5py with an empty test split): refused
#    before the first step.
/usr/bin/python3 - "$dir/fm.h5" "$dir/empty_test.h5" <<'PY' || fail "h5py could not write the empty-test file"
import sys
import h5py
with h5py.File(sys.argv[1], "r") as a, h5py.File(sys.argv[2], "w") as b:
    for k, v in a.attrs.items():
        b.attrs[k] = v
    for name in a:
        if name != "test":
            a.copy(name, b)
    t = b.create_group("test")
    for k, v in a["test"].attrs.items():
        t.attrs[k] = v
    for name, d in a["test"].items():
        t.create_dataset(name, shape=(0,) + d.shape[1:], dtype=d.dtype, maxshape=(None,) + d.shape[1:])
PY
out=$("$hac" train "$dir/train.yaml" --set data.file="$dir/empty_test.h5" --set output.dir="$dir/empty" 2>&1); rc=$?
[ "$rc" -eq 2 ] || fail "zero-row evaluation split exited $rc, expected 2: $out"
grep -q "eval.split" <<<"$out" || fail "the message does not name eval.split: $out"
[ ! -s "$dir/empty/losses.csv" ] || fail "the run trained before refusing the evaluation split"

# 6. A dataset whose images are stored with a filter this HDF5 library cannot decode (h5py's own
#    lzf): named when the file is opened, by `hac data info` and before a run's first step.
/usr/bin/python3 - "$dir/fm.h5" "$dir/lzf.h5" <<'PY' || fail "h5py could not write the lzf file"
import sys
import h5py
with h5py.File(sys.argv[1], "r") as a, h5py.File(sys.argv[2], "w") as b:
    for k, v in a.attrs.items():
        b.attrs[k] = v
    for name in a:
        a.copy(name, b)
    img = a["train/images"]
    del b["train/images"]
    b["train"].create_dataset("images", data=img[...], chunks=(16,) + img.shape[1:], compression="lzf")
    for k, v in img.attrs.items():
        b["train/images"].attrs[k] = v
PY
out=$("$hac" data info "$dir/lzf.h5" 2>&1); rc=$?
[ "$rc" -ne 0 ] || fail "data info accepted an undecodable filter"
grep -q "train/images is stored with HDF5 filter" <<<"$out" && grep -q "lzf" <<<"$out" || fail "the filter is not named: $out"
out=$("$hac" train "$dir/train.yaml" --set data.file="$dir/lzf.h5" --set output.dir="$dir/lzf" 2>&1); rc=$?
[ "$rc" -ne 0 ] && [ ! -s "$dir/lzf/losses.csv" ] || fail "a run on the lzf file trained (exit $rc)"

# 7. SIGTERM to launch/mpirun.sh (what Slurm and scancel send): the ranks checkpoint, exit 75.
"$mpirun" -np 2 "$hac" train "$dir/train.yaml" --set output.dir="$dir/term" >"$dir/term.log" 2>&1 &
pid=$!
wait_rows "$dir/term/losses.csv" 20 || fail "the 2-rank run made no progress"
kill -TERM "$pid"
wait "$pid"; rc=$?
[ "$rc" -eq 75 ] || fail "SIGTERM to the launcher exited $rc, expected 75: $(tail -n 5 "$dir/term.log")"
grep -q '"status": "PREEMPTED"' "$dir/term/result.json" || fail "SIGTERM: result.json is not PREEMPTED"
finish
