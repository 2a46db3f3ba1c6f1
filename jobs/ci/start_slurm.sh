#!/usr/bin/env bash
# Start a throw-away one-node Slurm cluster (munged, slurmctld, slurmd on this
# host) in a private folder, for testing the job scripts under a real scheduler.
#
#   jobs/ci/start_slurm.sh DIR      # then: export SLURM_CONF=DIR/slurm.conf; sbatch ...
#   jobs/ci/stop_slurm.sh DIR
#
# Nothing outside DIR is configured or touched: the daemons get their own
# config, munge key and socket, state, logs and free TCP ports, so a system
# Slurm (if any) is left alone. Needs root and the Debian packages
# slurm-wlm and munge (SQD_SLURM_INSTALL=1 lets this script apt-get them).
# Exit status 3: Slurm is not available here (callers skip, not fail).
set -euo pipefail

dir=${1:?usage: start_slurm.sh DIR}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)

if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
    if [[ "${SQD_SLURM_INSTALL:-0}" == 1 && $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
        export DEBIAN_FRONTEND=noninteractive
        timeout 300 apt-get update -q >"$dir/apt.log" 2>&1 || true
        timeout 600 apt-get install -y -q --no-install-recommends slurm-wlm munge >>"$dir/apt.log" 2>&1 || true
    fi
fi
for tool in slurmctld slurmd munged sbatch; do
    command -v "$tool" >/dev/null || { echo "start_slurm: $tool not installed" >&2; exit 3; }
done
[[ $(id -u) == 0 ]] || { echo "start_slurm: needs root (slurmd runs jobs as their user)" >&2; exit 3; }

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

mkdir -p "$dir/state" "$dir/spool" "$dir/munge" "$dir/log"
chmod 0700 "$dir/munge"
# munged insists that its key and folders belong to the user running it, 0600/0700.
if [[ ! -s "$dir/munge/munge.key" ]]; then
    if command -v mungekey >/dev/null; then
        mungekey --create --keyfile="$dir/munge/munge.key" --force
    else
        dd if=/dev/urandom of="$dir/munge/munge.key" bs=1024 count=1 status=none
    fi
fi
chmod 0600 "$dir/munge/munge.key"
munged --force --key-file="$dir/munge/munge.key" --socket="$dir/munge/munge.socket" \
    --pid-file="$dir/munge/munged.pid" --log-file="$dir/log/munged.log" --seed-file="$dir/munge/munged.seed"

host=$(hostname -s)
cpus=$(nproc)
mem_mb=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 / 2 ))
cat >"$dir/slurm.conf" <<CONF
ClusterName=sqdci
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$(free_port)
SlurmdPort=$(free_port)
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$dir/munge/munge.socket
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
# No cgroups in containers: plain process tracking, no task binding.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
ReturnToService=2
SlurmdTimeout=60
InactiveLimit=0
KillWait=5
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
# An empty plugin stack: the system's /etc/slurm/plugstack.conf is not ours.
: >"$dir/plugstack.conf"
echo "PlugStackConfig=$dir/plugstack.conf" >>"$dir/slurm.conf"

export SLURM_CONF=$dir/slurm.conf
slurmctld -f "$SLURM_CONF" -i
slurmd -f "$SLURM_CONF"

# Wait (bounded) until the node takes jobs.
for _ in $(seq 1 60); do
    state=$(timeout 5 sinfo -h -N -o '%T' 2>/dev/null | head -n1 || true)
    case "$state" in
        idle*|mixed*|allocated*) echo "SLURM_CONF=$SLURM_CONF"; exit 0 ;;
    esac
    sleep 1
done
echo "start_slurm: the node did not come up; logs in $dir/log" >&2
tail -n 20 "$dir/log/slurmctld.log" "$dir/log/slurmd.log" >&2 || true
exit 1
