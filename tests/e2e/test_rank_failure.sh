#!/usr/bin/env bash
# One rank fails (throws, or is killed) while the others wait in a collective: the job must end
# on every rank within seconds, non-zero, naming the failing rank, and leave no process behind.
source "$(dirname "$0")/lib.sh"
mpirun=$1 hac=$2 np=$3 how=$4
fail_rank=$((np - 1))
limit=60
start=$(date +%s)
out=$(timeout --kill-after=5 $limit "$mpirun" -np "$np" "$hac" selfcheck --fail-rank "$fail_rank" --fail-how "$how" 2>&1)
rc=$?
elapsed=$(( $(date +%s) - start ))
echo "$out" | tail -n 20
echo "mpirun exit code $rc after ${elapsed}s"
if [ "$rc" -eq 0 ]; then fail "the job succeeded despite a failed rank"; fi
# timeout(1) says 124 when it had to stop mpirun; 137 alone is mpirun reporting a killed rank.
if [ "$rc" -eq 124 ] || [ "$elapsed" -ge "$limit" ]; then fail "the job hung (stopped after ${limit}s)"; fi
if [ "$elapsed" -gt 30 ]; then fail "took ${elapsed}s to end"; fi
if [ "$how" = throw ]; then
  grep -q "\[rank $fail_rank@[^]]*\] error: injected failure on rank $fail_rank" <<<"$out" \
    || fail "no error line from rank $fail_rank"
fi
sleep 1
if pgrep -f "selfcheck --fail-rank $fail_rank --fail-how $how" >/dev/null; then
  fail "ranks still running after mpirun returned:"; pgrep -af "selfcheck --fail-rank"
fi
finish
