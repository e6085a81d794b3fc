#!/bin/bash
# A single-host Slurm for tests: munged, slurmctld and slurmd on this machine, the machine's cores as one node's
# CPUs, all state under $1 (default /tmp/texaug-slurm). Needs root and Debian's slurm-wlm + munge (installed when
# missing and apt-get can). Prints the SLURM_CONF to export; `ci/slurm/stop.sh DIR` stops the daemons.
set -euo pipefail
DIR=${1:-/tmp/texaug-slurm}
if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q slurm-wlm munge >/dev/null
    else
        echo "slurm-wlm and munge are not installed: apt-get install slurm-wlm munge (as root)" >&2
        exit 1
    fi
fi
# Daemons of an earlier start on this DIR (a test that was killed) go first: the ports are fixed.
bash "$(dirname "$0")/stop.sh" "$DIR"
rm -rf "$DIR/state" "$DIR/spool"
mkdir -p "$DIR"/{state,spool,log,munge}
chmod 700 "$DIR/munge"
HOST=$(hostname -s)
CPUS=$(nproc)
MEM=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 / 2 ))

# munge: its own key and socket, so a system munged (if any) is left alone.
if [ ! -f "$DIR/munge/munge.key" ]; then
    dd if=/dev/urandom of="$DIR/munge/munge.key" bs=1024 count=1 status=none
    chmod 400 "$DIR/munge/munge.key"
fi
SOCKET="$DIR/munge/munge.socket"
munged --force --key-file="$DIR/munge/munge.key" --socket="$SOCKET" \
    --pid-file="$DIR/munge/munged.pid" --log-file="$DIR/log/munged.log" --seed-file="$DIR/munge/munge.seed"

cat > "$DIR/slurm.conf" <<CONF
ClusterName=texaug-ci
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$SOCKET
CredType=cred/munge
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
SlurmctldPort=16817
SlurmdPort=16818
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
ReturnToService=2
MinJobAge=3600
SchedulerParameters=defer_batch
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$MEM State=UNKNOWN
PartitionName=ci Nodes=$HOST Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
CONF
export SLURM_CONF="$DIR/slurm.conf"
slurmctld -f "$SLURM_CONF"
slurmd -f "$SLURM_CONF"
# Up when the node is idle.
for _ in $(seq 1 60); do
    if sinfo -h -o %T 2>/dev/null | grep -q idle; then
        echo "export SLURM_CONF=$SLURM_CONF"
        exit 0
    fi
    sleep 0.5
done
echo "slurm did not come up; logs in $DIR/log:" >&2
tail -n 20 "$DIR"/log/*.log >&2
exit 1
