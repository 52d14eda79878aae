#!/usr/bin/env bash
# `hac sweep` end to end: --dry-run, the local backend (originals trained once, points run two at
# a time), an interrupted sweep that loses nothing and never reads a half-written result.json as
# complete, failures summarised with their first error line (--fail-fast, --rerun-failed), and
# the mpi backend (a coordinator and groups inside one mpirun).
source "$(dirname "$0")/lib.sh"
mpirun=$1 hac=$2
scratch_dir
count() { grep -l "\"status\": \"$2\"" "$1"/*/result.json 2>/dev/null | wc -l; }

fashion_mnist "$dir/fm.h5" 1200 100
cat > "$dir/spec.yaml" <<YAML
name: t
root: $dir/results
set: {data.file: $dir/fm.h5, data.batch_size: 32, unlearn.steps: 3, unlearn.lr: 0.0001, train.log_every: 100,
      eval.knn_bank_rows: 200, eval.audit_rows: 50, eval.cka_rows: 20, eval.embedding_rows: 10}
originals:
  set: {data.file: $dir/fm.h5, data.batch_size: 32, train.steps: 30, train.warmup_steps: 5, train.log_every: 100,
        eval.knn_bank_rows: 200, eval.audit_rows: 50}
axes:
  - product: {unlearn.method: [hac, ft]}
  - forget: {concepts: [sandal, sneaker], sizes: [1, 2]}
  - product: {train.seed: [0, 1]}
YAML
runs=$dir/results/t/runs

# 1. --dry-run lists 1 original and 8 points and runs nothing.
out=$("$hac" sweep "$dir/spec.yaml" --dry-run 2>&1) || fail "dry run exited $?"
[ "$(grep -c '^  point ' <<<"$out")" -eq 8 ] && [ "$(grep -c '^  original ' <<<"$out")" -eq 1 ] \
  || fail "dry run does not list 1 original and 8 points: $out"
[ -e "$dir/results" ] && fail "dry run created files"

# 2. Interrupt the sweep (SIGTERM) once some points are done: exit 75, the running points
#    checkpoint, nothing COMPLETED is lost.
"$hac" sweep "$dir/spec.yaml" --jobs 2 >"$dir/first.log" 2>&1 &
pid=$!
for _ in $(seq 1200); do
  [ "$(count "$runs" COMPLETED)" -ge 2 ] && break
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.1
done
kill -TERM "$pid"; wait "$pid"; rc=$?
[ "$rc" -eq 75 ] || { fail "interrupted sweep exited $rc, expected 75"; tail -n 20 "$dir/first.log"; }
done_before=$(count "$runs" COMPLETED); echo "interrupted after $done_before of 8 points"
grep -Eq "point [0-9]+/8 done .* \| elapsed [0-9hms]+, ETA [0-9hms]+" "$dir/first.log" \
  || fail "progress lines lack elapsed time and ETA: $(grep 'done' "$dir/first.log" | head -n 2)"
[ "$done_before" -ge 2 ] && [ "$done_before" -lt 8 ] || fail "expected a partial sweep, $done_before points COMPLETED"
for r in "$runs"/*/result.json; do
  python3 -c "import json,sys; json.load(open(sys.argv[1]))" "$r" || fail "$r is not valid JSON"
done
# A half-written result.json (a crash mid-write of a non-atomic writer) must never count as
# complete: tear one COMPLETED point's file; the rerun must run that point again.
victim=$(grep -l '"status": "COMPLETED"' "$runs"/*/result.json | head -n 1)
[ -n "$victim" ] || die "no COMPLETED point to tear"
printf '{"status": "COMPLETED", "metrics": {"zero_sh' > "$victim"
done_before=$((done_before - 1))

# 3. Rerunning completes the sweep without redoing anything COMPLETED.
"$hac" sweep "$dir/spec.yaml" --jobs 2 >"$dir/second.log" 2>&1 || { fail "resumed sweep exited $?"; tail -n 20 "$dir/second.log"; }
[ "$(count "$runs" COMPLETED)" -eq 8 ] || fail "resumed sweep: $(count "$runs" COMPLETED)/8 COMPLETED"
grep -q "0 original(s) to train" "$dir/second.log" || fail "the original was trained again"
grep -q "$((8 - done_before)) point(s) to run of 8" "$dir/second.log" || fail "the rerun did not run exactly the unfinished points"
python3 -c "import json,sys; d=json.load(open(sys.argv[1])); assert d['metrics']['zero_shot']" "$victim" \
  || fail "the half-written result.json was not replaced by a complete one"
grep -q "8/8\|9/9" "$dir/second.log" || fail "no final count in the summary"
python3 -c "
import json,sys; m=json.load(open(sys.argv[1]))
assert len(m['points']) == 8 and all(p['status'] == 'COMPLETED' for p in m['points']), m['points']
" "$dir/results/t/sweep.json" || fail "sweep.json does not list 8 COMPLETED points"

# Collect: the table lists both methods at both forget-set sizes; figures exist; a second collect
# gives the same files.
"$hac" collect "$dir/results/t" >/dev/null 2>&1 || fail "collect exited $?"
t=$dir/results/t/collected
grep -q "| meru | ft |" "$t/table_main.md" && grep -q "| meru | hac |" "$t/table_main.md" || fail "table: $(cat "$t/table_main.md")"
grep -q "forget@2" "$t/table_main.md" || fail "table lacks the 2-concept columns"
for f in acc_vs_concepts.png acc_vs_concepts.pdf dist0_hist.png poincare.png losses.png losses.pdf; do
  [ -s "$t/figures/$f" ] || fail "figure $f missing"
done
# The loss figure's data are the chosen runs' losses.csv, one per (model, method): here ft and hac.
grep -q "meru hac" "$t/figures/losses.gp" && grep -q "meru ft" "$t/figures/losses.gp" || fail "losses.gp: $(grep title "$t/figures/losses.gp")"
# Without gnuplot (a compute node), --figures-if-gnuplot writes the tables and says the figures
# were skipped; plain collect refuses with the hint.
check "collect without gnuplot" 0 "figures were skipped" -- "$hac" collect "$dir/results/t" --out "$dir/nognu" \
  --figures-if-gnuplot --gnuplot /nonexistent/gnuplot
[ -s "$dir/nognu/table_main.md" ] && [ ! -e "$dir/nognu/figures/acc_vs_concepts.png" ] || fail "collect without gnuplot: wrong files"
check "collect needs gnuplot" 1 "cannot run gnuplot" -- "$hac" collect "$dir/results/t" --out "$dir/nognu2" --gnuplot /nonexistent/gnuplot
cp "$t/table_main.md" "$dir/table1.md"; cp "$t/results_long.csv" "$dir/long1.csv"
"$hac" collect "$dir/results/t" >/dev/null 2>&1
cmp -s "$t/table_main.md" "$dir/table1.md" && cmp -s "$t/results_long.csv" "$dir/long1.csv" || fail "collect is not idempotent"

# 4. The preflight: a point with an unknown concept stops the sweep before anything starts (exit 2,
#    the concept named); --check lists it too, with the cost.
sed -e 's/name: t/name: bad/' -e 's/  - forget: .*/  - list: [{unlearn.forget: [hats]}, {unlearn.forget: [sandal]}]/' \
  "$dir/spec.yaml" > "$dir/bad.yaml"
out=$("$hac" sweep "$dir/bad.yaml" --jobs 1 2>&1); rc=$?
[ "$rc" -eq 2 ] || fail "a sweep with an unknown concept exited $rc, expected 2: $out"
grep -q "unknown concept 'hats'" <<<"$out" && grep -q "nothing was started" <<<"$out" || fail "preflight message: $out"
[ ! -d "$dir/results/bad/originals" ] && [ ! -d "$dir/results/bad/runs" ] || fail "the preflight let jobs start"
# The mpi backend runs it too: rank 0 checks, all 2 ranks exit 2 (no abort, no hang).
out=$(timeout 120 "$mpirun" -np 2 "$hac" sweep "$dir/bad.yaml" --backend mpi 2>&1); rc=$?
[ "$rc" -eq 2 ] || fail "the mpi backend's preflight exited $rc, expected 2: $out"
grep -q "unknown concept 'hats'" <<<"$out" && grep -q "nothing was started" <<<"$out" || fail "mpi preflight message: $out"
[ ! -d "$dir/results/bad/originals" ] && [ ! -d "$dir/results/bad/runs" ] || fail "the mpi preflight let jobs start"
check "--check names the concept" 2 "unknown concept 'hats'.*\\(4 jobs\\)" -- "$hac" sweep "$dir/bad.yaml" --check
out=$("$hac" sweep "$dir/spec.yaml" --check 2>&1) || fail "--check on a finished sweep exited $?: $out"
grep -q "no problem found" <<<"$out" && grep -Eq '\| points \| 0 of 8 \|' <<<"$out" \
  && grep -q "median of completed runs" <<<"$out" || fail "--check on a finished sweep: $out"

# 5. Failures: a point whose loss goes non-finite is FAILED and named with its first error line;
#    --fail-fast starts nothing after it; a rerun leaves FAILED alone unless --rerun-failed.
sed -e 's/name: t/name: nan/' \
  -e 's/  - forget: .*/  - list: [{unlearn.forget: [sandal], unlearn.lr: 1.0e+30}, {unlearn.forget: [sneaker]}]/' \
  "$dir/spec.yaml" > "$dir/nan.yaml"
out=$("$hac" sweep "$dir/nan.yaml" --jobs 1 --fail-fast 2>&1); rc=$?
[ "$rc" -eq 1 ] || fail "a sweep with a failed point exited $rc"
grep -q "FAILED .*non-finite" <<<"$out" || fail "the summary does not name the failed point's error: $out"
grep -q "NOT RUN" <<<"$out" || fail "--fail-fast started points after the failure"
out=$("$hac" sweep "$dir/nan.yaml" --jobs 2 2>&1)
grep -q "FAILED" <<<"$out" && [ "$(grep -c 'to run of' <<<"$out")" -ge 1 ] || fail "rerun summary: $out"
[ "$(count "$dir/results/nan/runs" FAILED)" -ge 1 ] || fail "FAILED result.json missing"
out=$("$hac" sweep "$dir/nan.yaml" --rerun-failed 2>&1)
grep -q "non-finite" <<<"$out" || fail "--rerun-failed did not run the failed points again"

# 6. The mpi backend: one mpirun, rank 0 coordinates, two groups of one rank run the points.
sed -e 's/name: t/name: m/' "$dir/spec.yaml" > "$dir/mpi.yaml"
out=$("$mpirun" -np 3 "$hac" sweep "$dir/mpi.yaml" --backend mpi 2>&1) || { fail "mpi backend exited $?"; tail -n 20 <<<"$out"; }
[ "$(count "$dir/results/m/runs" COMPLETED)" -eq 8 ] || fail "mpi backend: $(count "$dir/results/m/runs" COMPLETED)/8 COMPLETED"
grep -q "group of rank 1 takes" <<<"$out" && grep -q "group of rank 2 takes" <<<"$out" || fail "both groups should take points"
finish
