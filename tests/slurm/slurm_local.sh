#!/usr/bin/env bash
# A real single-node Slurm (munged, slurmctld, slurmd from Debian's packages) living entirely in
# a scratch directory, for tests and for trying the launch scripts on one machine.
#   tests/slurm/slurm_local.sh start DIR   # prints `export SLURM_CONF=...` on success
#   tests/slurm/slurm_local.sh stop DIR
# Needs root (slurmd) and the packages slurm-wlm and munge.
set -euo pipefail
cmd=${1:?start|stop}
dir=$(realpath -m "${2:?scratch directory}")

stop() {
  for pidfile in "$dir/slurm/slurmd.pid" "$dir/slurm/slurmctld.pid" "$dir/munge/munged.pid"; do
    if [ -f "$pidfile" ]; then
      pid=$(cat "$pidfile")
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
      rm -f "$pidfile"
    fi
  done
}

if [ "$cmd" = stop ]; then stop; exit 0; fi
[ "$cmd" = start ] || { echo "usage: $0 start|stop DIR" >&2; exit 2; }
for tool in munged slurmctld slurmd sinfo; do
  command -v "$tool" >/dev/null || { echo "slurm_local: $tool not found (apt-get install slurm-wlm munge)" >&2; exit 1; }
done

host=$(uname -n)
cpus=$(nproc)
mem_mb=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 * 8 / 10 ))
mkdir -p "$dir/munge" "$dir/slurm/state" "$dir/slurm/spool" "$dir/slurm/log"
chmod 755 "$dir"  # munged runs as the munge user and must reach its socket directory
chown munge:munge "$dir/munge"
chmod 711 "$dir/munge"
# A private munge key, so this cluster does not depend on the package's key.
if [ ! -f "$dir/munge/munge.key" ]; then
  dd if=/dev/urandom of="$dir/munge/munge.key" bs=1024 count=1 status=none
  chown munge:munge "$dir/munge/munge.key"
  chmod 400 "$dir/munge/munge.key"
fi
# Ports below Linux's ephemeral range (32768+, where MPI and other tests' connections live) that
# no socket uses now, read from /proc so no extra tool is needed.
ports_in_use() {
  local hex
  awk 'FNR > 1 { split($2, a, ":"); print a[2] }' /proc/net/tcp /proc/net/tcp6 2>/dev/null | sort -u |
    while read -r hex; do echo $((16#$hex)); done
}
pick_port_base() {
  local used p
  used=$(ports_in_use)
  for _ in $(seq 200); do
    p=$(( 12000 + RANDOM % 20000 ))
    if ! grep -qx "$p" <<<"$used" && ! grep -qx "$((p + 1))" <<<"$used"; then echo "$p"; return; fi
  done
  echo "slurm_local: no free port pair found" >&2
  exit 1
}
write_conf() {
port_base=$(pick_port_base)
cat > "$dir/slurm/slurm.conf" <<CONF
ClusterName=haclocal
SlurmctldHost=$host
SlurmctldPort=$port_base
SlurmdPort=$((port_base + 1))
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$dir/munge/munge.socket.2
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$dir/slurm/state
SlurmdSpoolDir=$dir/slurm/spool
SlurmctldPidFile=$dir/slurm/slurmctld.pid
SlurmdPidFile=$dir/slurm/slurmd.pid
SlurmctldLogFile=$dir/slurm/log/slurmctld.log
SlurmdLogFile=$dir/slurm/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=pmix
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
ReturnToService=2
MailProg=/bin/true
MinJobAge=60
KillWait=5
SlurmctldTimeout=30
SlurmdTimeout=30
NodeName=$host CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
}
write_conf
export SLURM_CONF=$dir/slurm/slurm.conf
runuser -u munge -- munged --socket="$dir/munge/munge.socket.2" --key-file="$dir/munge/munge.key" \
  --pid-file="$dir/munge/munged.pid" --log-file="$dir/munge/munged.log" \
  --seed-file="$dir/munge/munged.seed"
# slurmctld can still lose the race for its port to another process; then it exits at once and
# is restarted on another port (a dead controller is noticed at once, not after sinfo timeouts).
for attempt in 1 2 3; do
  slurmctld -i -f "$SLURM_CONF"
  slurmd -f "$SLURM_CONF"
  state=?
  for _ in $(seq 150); do
    ctld_pid=$(cat "$dir/slurm/slurmctld.pid" 2>/dev/null || true)
    if [ -z "$ctld_pid" ] || ! kill -0 "$ctld_pid" 2>/dev/null; then
      sleep 0.5
      ctld_pid=$(cat "$dir/slurm/slurmctld.pid" 2>/dev/null || true)
      if [ -z "$ctld_pid" ] || ! kill -0 "$ctld_pid" 2>/dev/null; then state=dead; break; fi
    fi
    state=$(timeout 5 sinfo -h -o %t 2>/dev/null || true)
    if [ "$state" = idle ]; then echo "export SLURM_CONF=$SLURM_CONF"; exit 0; fi
    sleep 0.2
  done
  echo "slurm_local: attempt $attempt: controller ${state}; $(tail -n 1 "$dir/slurm/log/slurmctld.log" 2>/dev/null)" >&2
  # Keep munged; restart the Slurm daemons on fresh ports.
  for pidfile in "$dir/slurm/slurmd.pid" "$dir/slurm/slurmctld.pid"; do
    if [ -f "$pidfile" ]; then kill -9 "$(cat "$pidfile")" 2>/dev/null || true; rm -f "$pidfile"; fi
  done
  write_conf
done
echo "slurm_local: node did not become idle (state '${state:-?}'); logs in $dir/slurm/log" >&2
stop
exit 1
