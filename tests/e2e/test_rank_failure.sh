#!/usr/bin/env bash
# One rank fails (throws, or is killed) while the others wait in a collective: the job must end
# on every rank within seconds, non-zero, naming the failing rank, and leave no process behind.
set -u
mpirun=$1 hac=$2 np=$3 how=$4
fail_rank=$((np - 1))
limit=60
start=$(date +%s)
out=$(timeout --kill-after=5 $limit "$mpirun" -np "$np" "$hac" selfcheck --fail-rank "$fail_rank" --fail-how "$how" 2>&1)
rc=$?
elapsed=$(( $(date +%s) - start ))
echo "$out" | tail -n 20
echo "mpirun exit code $rc after ${elapsed}s"
status=0
if [ "$rc" -eq 0 ]; then echo "FAIL: the job succeeded despite a failed rank"; status=1; fi
# timeout(1) says 124 when it had to stop mpirun; 137 alone is mpirun reporting a killed rank.
if [ "$rc" -eq 124 ] || [ "$elapsed" -ge "$limit" ]; then echo "FAIL: the job hung (stopped after ${limit}s)"; status=1; fi
if [ "$elapsed" -gt 30 ]; then echo "FAIL: took ${elapsed}s to end"; status=1; fi
if [ "$how" = throw ]; then
  grep -q "\[rank $fail_rank@[^]]*\] error: injected failure on rank $fail_rank" <<<"$out" \
    || { echo "FAIL: no error line from rank $fail_rank"; status=1; }
fi
sleep 1
if pgrep -f "selfcheck --fail-rank $fail_rank --fail-how $how" >/dev/null; then
  echo "FAIL: ranks still running after mpirun returned:"; pgrep -af "selfcheck --fail-rank"; status=1
fi
exit $status
