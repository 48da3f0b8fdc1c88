#!/usr/bin/env bash
# A one-node Slurm cluster on this machine, for tests and for trying the submit script without a real cluster.
#
#   slurm/local_cluster.sh start DIR   write DIR/slurm.conf, start munged, slurmctld and slurmd (as root), wait until
#                                      the node is idle; prints `export SLURM_CONF=DIR/slurm.conf`
#   slurm/local_cluster.sh stop DIR    stop the daemons this script started (by the process ids in DIR/*.pid)
#
# Needs Debian's slurm-wlm and munge (`apt-get install slurm-wlm munge`) and root. Everything the daemons keep
# (state, spool, logs, munge socket and key) lives in DIR, so nothing outside it is changed and two clusters never
# share state. Settings that make Slurm run inside a container without cgroups or systemd:
# ProctrackType=proctrack/linuxproc, TaskPlugin=task/none, SelectType=select/cons_tres.
set -euo pipefail
cmd=${1:?usage: local_cluster.sh start|stop DIR}
dir=${2:?usage: local_cluster.sh start|stop DIR}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)

stop() {
  local name pid
  for name in slurmd slurmctld munged; do
    [ -f "$dir/$name.pid" ] || continue
    pid=$(cat "$dir/$name.pid")
    if kill -0 "$pid" 2>/dev/null; then
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$dir/$name.pid"
  done
}

case "$cmd" in
stop)
  stop
  exit 0
  ;;
start) ;;
*)
  echo "local_cluster.sh: unknown command '$cmd' (start|stop)" >&2
  exit 2
  ;;
esac

for tool in munged slurmctld slurmd sinfo; do
  command -v "$tool" >/dev/null || {
    echo "local_cluster.sh: $tool not found: apt-get install slurm-wlm munge" >&2
    exit 2
  }
done
[ "$(id -u)" = 0 ] || { echo "local_cluster.sh: the daemons must be started as root" >&2; exit 2; }

host=$(hostname -s)
# the node's CPUs and memory as slurmd sees them
node=$(slurmd -C | head -n 1)
cpus=$(echo "$node" | grep -oE 'CPUs=[0-9]+' | cut -d= -f2)
mem=$(echo "$node" | grep -oE 'RealMemory=[0-9]+' | cut -d= -f2)
mkdir -p "$dir/spool" "$dir/state" "$dir/log" "$dir/munge"
chmod 700 "$dir/munge"
[ -f "$dir/munge/munge.key" ] || dd if=/dev/urandom of="$dir/munge/munge.key" bs=128 count=1 status=none
chmod 400 "$dir/munge/munge.key"
# ports: pick free ones near the defaults so a second cluster (or a real one) does not clash
port() { local p=$1; while (echo >/dev/tcp/127.0.0.1/"$p") 2>/dev/null; do p=$((p + 2)); done; echo "$p"; }
ctld_port=$(port 16817)
slurmd_port=$(port $((ctld_port + 1)))
cat >"$dir/slurm.conf" <<CONF
ClusterName=ltc
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$dir/munge/munge.socket
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# a job that names no memory gets its CPUs' share, so jobs run side by side instead of each taking the whole node
DefMemPerCPU=$((mem / cpus))
MpiDefault=none
ReturnToService=2
SchedulerType=sched/backfill
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SlurmctldTimeout=30
SlurmdTimeout=30
$node State=UNKNOWN
PartitionName=main Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
CONF
# a cgroup.conf is read even when cgroups are not used; an empty one avoids the warning
: >"$dir/cgroup.conf"
export SLURM_CONF="$dir/slurm.conf"

munged --socket="$dir/munge/munge.socket" --key-file="$dir/munge/munge.key" --pid-file="$dir/munged.pid" \
  --log-file="$dir/log/munged.log" --seed-file="$dir/munge/munge.seed" --force
slurmctld -f "$dir/slurm.conf" -i
slurmd -f "$dir/slurm.conf"
# wait for the node to register
for _ in $(seq 120); do
  state=$(sinfo -h -N -o '%T' 2>/dev/null | head -n 1 || true)
  case "$state" in idle | mixed | allocated) break ;; esac
  sleep 0.5
done
case "$state" in
idle | mixed | allocated) ;;
*)
  echo "local_cluster.sh: node did not come up (state '$state'); logs in $dir/log" >&2
  stop
  exit 1
  ;;
esac
echo "export SLURM_CONF=$dir/slurm.conf"
