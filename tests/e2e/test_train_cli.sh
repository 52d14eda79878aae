#!/usr/bin/env bash
# `hac train` / `hac unlearn` from the command line on 2 MPI ranks: a SIGUSR2 to mpirun (what
# Slurm's --signal sends) checkpoints every rank, exits 75 with PREEMPTED, and rerunning the same
# command resumes to exactly the losses of an uninterrupted run; SIGTERM and SIGINT do the same for one
# process; a non-finite loss ends every rank with FAILED; bad configs exit 2 naming the key.
source "$(dirname "$0")/lib.sh"
mpirun=$1 hac=$2
scratch_dir

fashion_mnist "$dir/fm.h5" 1200 100
cat > "$dir/train.yaml" <<YAML
data: {file: $dir/fm.h5, batch_size: 16, prefetch: 2}
model: {kind: meru, preset: tiny}
train: {steps: 300, lr: 0.001, warmup_steps: 10, log_every: 50, seed: 1}
YAML

# 1. Preempt a 2-rank run with SIGUSR2 sent to mpirun, once it has made progress.
"$mpirun" -np 2 "$hac" train "$dir/train.yaml" --set output.dir="$dir/pre" >"$dir/pre.log" 2>&1 &
pid=$!
for _ in $(seq 600); do
  [ -f "$dir/pre/losses.csv" ] && [ "$(wc -l <"$dir/pre/losses.csv")" -gt 20 ] && break
  sleep 0.1
done
kill -USR2 "$pid"
timeout 60 tail --pid="$pid" -f /dev/null
wait "$pid"; rc=$?
[ "$rc" -eq 75 ] || fail "preempted run exited $rc, expected 75"; tail -n 3 "$dir/pre.log"
grep -q '"status": "PREEMPTED"' "$dir/pre/result.json" || fail "result.json is not PREEMPTED"
ls "$dir/pre/checkpoints"/step_*.pt >/dev/null 2>&1 || fail "no checkpoint after preemption"
[ -e "$dir/pre/model.pt" ] && fail "a preempted run wrote model.pt"

# 2. The same command resumes and ends with the losses of an uninterrupted run, bit for bit.
"$mpirun" -np 2 "$hac" train "$dir/train.yaml" --set output.dir="$dir/pre" >"$dir/resume.log" 2>&1 \
  || fail "resume exited $?"
grep -q "resuming from" "$dir/resume.log" || fail "the rerun did not resume"
grep -q '"status": "COMPLETED"' "$dir/pre/result.json" || fail "resumed run is not COMPLETED"
# The run's log in its directory, every line with its UTC time; start and end times in result.json.
grep -Eq '^20[0-9]{2}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z \[rank 0@[^]]+\] resuming from' "$dir/pre/run.log" \
  || fail "run.log lacks timestamped lines: $(head -n 3 "$dir/pre/run.log")"
grep -Eq '"started_at": "20[0-9-]+T[0-9:]+Z"' "$dir/pre/result.json" && grep -Eq '"ended_at": "20[0-9-]+T[0-9:]+Z"' "$dir/pre/result.json" \
  || fail "result.json lacks started_at/ended_at"
"$mpirun" -np 2 "$hac" train "$dir/train.yaml" --set output.dir="$dir/whole" >/dev/null 2>&1 || fail "whole run"
cmp -s "$dir/pre/losses.csv" "$dir/whole/losses.csv" || fail "preempted + resumed losses differ from an uninterrupted run"

# 3. SIGTERM to a single process does the same, and so does Ctrl-C (SIGINT).
for sig in TERM INT; do
  "$hac" train "$dir/train.yaml" --set output.dir="$dir/$sig" >"$dir/$sig.log" 2>&1 &
  pid=$!
  for _ in $(seq 600); do
    [ -f "$dir/$sig/losses.csv" ] && [ "$(wc -l <"$dir/$sig/losses.csv")" -gt 5 ] && break
    sleep 0.1
  done
  kill -"$sig" "$pid"; wait "$pid"; rc=$?
  [ "$rc" -eq 75 ] || fail "SIG$sig run exited $rc, expected 75"
  grep -q '"status": "PREEMPTED"' "$dir/$sig/result.json" || fail "SIG$sig: result.json is not PREEMPTED"
done

# 4. A non-finite loss stops both ranks, FAILED, naming the step.
start=$(date +%s)
timeout 60 "$mpirun" -np 2 "$hac" train "$dir/train.yaml" --set output.dir="$dir/nan" --set train.lr=1e30 \
  --set train.warmup_steps=0 >"$dir/nan.log" 2>&1
rc=$?
[ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] || fail "non-finite run exited $rc"
[ $(( $(date +%s) - start )) -lt 50 ] || fail "non-finite run took too long"
grep -q "non-finite loss at step" "$dir/nan.log" || fail "no non-finite error line"
grep -q '"status": "FAILED"' "$dir/nan/result.json" || fail "non-finite: result.json is not FAILED"

# 5. Bad configs: exit 2, the message names the key or the concept.
printf 'train:\n  lr_max: 1\n' > "$dir/bad.yaml"
out=$("$hac" train "$dir/bad.yaml" 2>&1); rc=$?
[ "$rc" -eq 2 ] || fail "unknown key exited $rc"; grep -q "lr_max" <<<"$out" || fail "unknown key not named: $out"
out=$("$hac" unlearn "$dir/train.yaml" --set unlearn.original="$dir/whole/model.pt" --set "unlearn.forget=[sandals]" \
  --set output.dir="$dir/bad" 2>&1); rc=$?
[ "$rc" -eq 2 ] || fail "unknown concept exited $rc"; grep -q "sandals" <<<"$out" || fail "unknown concept not named: $out"
grep -q '"status": "FAILED"' "$dir/bad/result.json" || fail "unknown concept: result.json is not FAILED"
out=$("$hac" unlearn "$dir/train.yaml" --set unlearn.original="$dir/nothere.pt" --set "unlearn.forget=[sandal]" \
  --set output.dir="$dir/bad2" 2>&1); rc=$?
[ "$rc" -ne 0 ] || fail "missing original exited 0"; grep -q "nothere.pt" <<<"$out" || fail "missing original not named: $out"

# 6. Each method runs from the command line on 2 ranks and writes its outputs.
for m in hac ac ft ga ng l1 retrain none; do
  "$mpirun" -np 2 "$hac" unlearn "$dir/train.yaml" --set unlearn.original="$dir/whole/model.pt" \
    --set unlearn.method=$m --set "unlearn.forget=[sandal, footwear]" --set unlearn.steps=3 --set train.steps=3 \
    --set output.dir="$dir/u_$m" >"$dir/u_$m.log" 2>&1 || { fail "$m exited $?"; tail -n 5 "$dir/u_$m.log"; }
  grep -q '"status": "COMPLETED"' "$dir/u_$m/result.json" || fail "$m: result.json is not COMPLETED"
  [ -s "$dir/u_$m/model.pt" ] && [ -s "$dir/u_$m/config.yaml" ] || fail "$m: outputs missing"
done

# 7. HAC with the bounded push, the L1 norm term on forget and retain rows, the original's
#    apertures and frozen alphas on 2 ranks: the alphas of model.pt are the original's, and
#    without freeze_alphas the same run moves them.
alphas() { "$hac" checkpoint inspect "$1" | grep -E '^  (visual|textual) alpha'; }
for freeze in true false; do
  "$mpirun" -np 2 "$hac" unlearn "$dir/train.yaml" --set unlearn.original="$dir/whole/model.pt" \
    --set unlearn.method=hac --set "unlearn.forget=[sandal]" --set unlearn.steps=4 --set unlearn.lr=0.01 \
    --set unlearn.pos_mode=hinge_ref --set unlearn.norm_mode=l1 --set unlearn.norm_retain=true \
    --set unlearn.norm_scaled=true --set unlearn.entcal_aperture=original --set unlearn.freeze_alphas=$freeze \
    --set output.dir="$dir/hf_$freeze" >"$dir/hf_$freeze.log" 2>&1 || { fail "hac forms ($freeze) exited $?"; tail -n 5 "$dir/hf_$freeze.log"; }
  grep -q '"status": "COMPLETED"' "$dir/hf_$freeze/result.json" || fail "hac forms ($freeze): not COMPLETED"
  grep -q 'norm_retain' "$dir/hf_$freeze/losses.csv" || fail "hac forms ($freeze): no norm_retain column in losses.csv"
done
[ -n "$(alphas "$dir/whole/model.pt")" ] || fail "checkpoint inspect shows no alphas"
[ "$(alphas "$dir/hf_true/model.pt")" = "$(alphas "$dir/whole/model.pt")" ] || fail "freeze_alphas: the alphas moved"
[ "$(alphas "$dir/hf_false/model.pt")" != "$(alphas "$dir/whole/model.pt")" ] || fail "without freeze_alphas the alphas did not move"

# 8. Provenance: the SHA-256 of the dataset and of the original equal sha256sum's, the device model
#    is named, a dirty build stores its diff; recomputed without the cache, the same digests.
json_get() { python3 -c "import json,sys; d=json.load(open(sys.argv[1]))
for k in sys.argv[2].split('/'): d=d[k]
print(d)" "$1" "$2"; }
data_sha=$(sha256sum "$dir/fm.h5" | cut -c1-64) orig_sha=$(sha256sum "$dir/whole/model.pt" | cut -c1-64)
[ "$(json_get "$dir/u_hac/result.json" provenance/sha256/data.file/sha256)" = "$data_sha" ] || fail "dataset SHA-256 differs from sha256sum"
[ "$(json_get "$dir/u_hac/result.json" provenance/sha256/unlearn.original/sha256)" = "$orig_sha" ] || fail "original SHA-256 differs from sha256sum"
[ "$(json_get "$dir/whole/result.json" provenance/sha256/data.file/sha256)" = "$data_sha" ] || fail "pretraining: dataset SHA-256"
[ -n "$(json_get "$dir/whole/result.json" provenance/device_model)" ] || fail "no device model"
HAC_NO_HASH_CACHE=1 "$hac" unlearn "$dir/train.yaml" --set unlearn.original="$dir/whole/model.pt" --set unlearn.method=none \
  --set "unlearn.forget=[sandal]" --set output.dir="$dir/nocache" >/dev/null 2>&1 || fail "uncached run exited $?"
[ "$(json_get "$dir/nocache/result.json" provenance/sha256/unlearn.original/sha256)" = "$orig_sha" ] || fail "uncached digest differs"
if json_get "$dir/whole/result.json" provenance/git_commit | grep -q -- '-dirty$'; then
  [ -s "$dir/whole/git.diff" ] && [ "$(json_get "$dir/whole/result.json" provenance/git_diff)" = git.diff ] \
    || fail "a dirty build stored no git.diff"
else
  [ ! -e "$dir/whole/git.diff" ] || fail "a clean build stored a git.diff"
fi

# 9. Without output.dir a run writes to results/runs/<run id> under the working directory, the
#    directory `hac config` names.
mkdir -p "$dir/cwd"
id_line=$(cd "$dir/cwd" && "$hac" config "$dir/train.yaml" --set unlearn.original="$dir/whole/model.pt" \
  --set unlearn.method=none --set "unlearn.forget=[sandal]" | head -n 1)
run_id=$(sed -E 's/^# run id ([0-9a-f]{16});.*/\1/' <<<"$id_line")
grep -q "run directory results/runs/$run_id" <<<"$id_line" || fail "hac config does not name the run directory: $id_line"
(cd "$dir/cwd" && "$hac" unlearn "$dir/train.yaml" --set unlearn.original="$dir/whole/model.pt" --set unlearn.method=none \
  --set "unlearn.forget=[sandal]" >/dev/null 2>&1) || fail "default-dir run exited $?"
grep -q '"status": "COMPLETED"' "$dir/cwd/results/runs/$run_id/result.json" || fail "no run in results/runs/$run_id"
[ -s "$dir/cwd/results/runs/$run_id/run.log" ] || fail "the default-dir run wrote no run.log"

# 10. A forget set by caption keywords: exactly the train rows whose caption contains "sneaker" as a
#     word (h5py counts them independently), recorded in forget_rows.csv and result.json.
"$mpirun" -np 2 "$hac" unlearn "$dir/train.yaml" --set unlearn.original="$dir/whole/model.pt" --set unlearn.method=hac \
  --set "unlearn.forget=[]" --set "unlearn.forget_captions=[Sneaker]" --set unlearn.steps=2 \
  --set output.dir="$dir/kw" >"$dir/kw.log" 2>&1 || { fail "keyword forget set exited $?"; tail -n 5 "$dir/kw.log"; }
grep -q '"status": "COMPLETED"' "$dir/kw/result.json" || fail "keyword run: not COMPLETED"
kw_rows=$(json_get "$dir/kw/result.json" forget/caption_rows)
[ "$kw_rows" -gt 0 ] && [ "$kw_rows" = "$(json_get "$dir/kw/result.json" forget/forget_rows)" ] || fail "keyword rows: $kw_rows"
[ "$(($(wc -l <"$dir/kw/forget_rows.csv") - 1))" = "$kw_rows" ] || fail "forget_rows.csv does not list $kw_rows rows"
if /usr/bin/python3 -c "import h5py" 2>/dev/null; then
  want=$(/usr/bin/python3 -c "
import h5py, re, sys
caps = h5py.File(sys.argv[1], 'r')['train/captions'][:]
rows = [i for i, c in enumerate(caps) if re.search(r'(?<![A-Za-z0-9\x80-\xff])sneaker(?![A-Za-z0-9\x80-\xff])', c.decode().lower())]
print(' '.join(map(str, rows)))" "$dir/fm.h5")
  got=$(tail -n +2 "$dir/kw/forget_rows.csv" | cut -d, -f1 | tr '\n' ' ' | sed 's/ $//')
  [ "$got" = "$want" ] || fail "keyword rows differ from h5py's: $(head -c 200 <<<"$got") vs $(head -c 200 <<<"$want")"
fi
check "keywords matching nothing" 2 "select no rows" -- "$hac" unlearn "$dir/train.yaml" \
  --set unlearn.original="$dir/whole/model.pt" --set "unlearn.forget=[]" --set "unlearn.forget_captions=[zebra]" \
  --set output.dir="$dir/kw0"

# 11. Display names: a config item renames a concept in the prompts (the zero-shot numbers move, the
#     rest stays); an item naming no concept exits 2 naming it.
"$hac" eval "$dir/train.yaml" --model "$dir/whole/model.pt" --set output.dir="$dir/dn0" >/dev/null 2>&1 || fail "eval exited $?"
"$hac" eval "$dir/train.yaml" --model "$dir/whole/model.pt" --set output.dir="$dir/dn1" \
  --set "eval.display_names=[sandal=flip flop, sneaker=running shoe, bag=handbag]" >/dev/null 2>&1 || fail "eval with display names exited $?"
# The per-row predictions move with the prompts (eval/samples.csv), while the pair scores do not.
! cmp -s "$dir/dn0/eval/samples.csv" "$dir/dn1/eval/samples.csv" \
  || fail "display names did not change the prompts"
check "display name of no concept" 2 "'sandals' names no concept" -- "$hac" eval "$dir/train.yaml" \
  --model "$dir/whole/model.pt" --set output.dir="$dir/dn2" --set "eval.display_names=[sandals=x]"
finish
