#!/usr/bin/env bash
# A real single-node SLURM 22.05 cluster for tests/test_slurm.py, from Debian 12's packages, started by
# hand (no systemd): munge + slurmctld + slurmd, no slurmdbd, so Snakemake must poll with
# `--slurm-status-command squeue` (tests/slurm/profile).
# Needs root, apt-get and free ports 6817-6818 (the test checks these first, and skips saying which).
# Exit status 10: the packages could not be installed (no apt repository reachable).
# Every daemon this script starts has its pid file (munged: a copy) under $SLURM_CI_DIR, with the
# cluster's state and logs; that is how tests/slurm/teardown.sh finds exactly those daemons again.
set -euo pipefail
D=${SLURM_CI_DIR:-/tmp/slurm}
export DEBIAN_FRONTEND=noninteractive
PACKAGES="slurmctld slurmd slurm-client munge"

# A fresh CI machine has none of them; a machine that ran this before skips the ~10 s install.
if ! dpkg -s $PACKAGES >/dev/null 2>&1; then
  # The image's policy-rc.d stops the packages from starting their services during install.
  apt-get update -qq || exit 10
  apt-get install -y -qq --no-install-recommends $PACKAGES >/dev/null || exit 10
fi

# A clean state every time: saved jobs of an earlier cluster would only confuse squeue's evidence.
rm -rf "$D"/state "$D"/spool "$D"/log "$D"/munged.pid
mkdir -p "$D"/state "$D"/spool "$D"/log
chown -R slurm:slurm "$D"

# ---- munge: the package creates the key; start the daemon unless one already answers -----------
if [ ! -s /etc/munge/munge.key ]; then
  mungekey --create --keyfile=/etc/munge/munge.key
fi
chown munge:munge /etc/munge/munge.key
chmod 400 /etc/munge/munge.key
mkdir -p /run/munge
chown munge:munge /run/munge
chmod 755 /run/munge
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
  runuser -u munge -- /usr/sbin/munged
  # munged keeps its pid file in /run/munge (it refuses directories it does not trust); a copy
  # under $D marks it as started here, for teardown.sh.
  cp /run/munge/munged.pid "$D"/munged.pid
fi
for _ in $(seq 1 20); do munge -n >/dev/null 2>&1 && break; sleep 0.25; done
munge -n | unmunge >/dev/null

# ---- slurm.conf -----------------------------------------------------------------------------------
# teardown.sh removes this file again: with a slurm.conf but no slurmctld, every later snakemake start
# waits ~9 s, because the SLURM executor plugin asks slurmctld for its config when it is imported. A
# slurm.conf that was here before is kept aside under $D and put back by teardown.sh.
MARKER="# written by labelworth tests/slurm/setup.sh"
if [ -e /etc/slurm/slurm.conf ] && ! grep -qxF "$MARKER" /etc/slurm/slurm.conf; then
  mv /etc/slurm/slurm.conf "$D"/slurm.conf.before
fi
MEM_MB=$(( $(free -m | awk '/^Mem:/{print $2}') - 2048 ))   # headroom for the OS
cat > /etc/slurm/slurm.conf <<CONF
$MARKER
ClusterName=ci
SlurmctldHost=localhost
SlurmUser=slurm
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/affinity
ReturnToService=2
SlurmctldPidFile=$D/slurmctld.pid
SlurmdPidFile=$D/slurmd.pid
SlurmctldPort=6817
SlurmdPort=6818
StateSaveLocation=$D/state
SlurmdSpoolDir=$D/spool
SlurmctldLogFile=$D/log/slurmctld.log
SlurmdLogFile=$D/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# without it a job that gives no --mem takes the whole node and jobs run one at a time
DefMemPerCPU=1000
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/filetxt
JobCompLoc=$D/log/jobcomp.txt
# Finished jobs stay visible to 'squeue -t all' this long. The plugin's squeue polling needs at
# least 3 x --slurm-init-seconds-before-status-checks and more than its longest gap between polls
# (180 s); below that it silently falls back to sacct, which hangs without slurmdbd.
MinJobAge=300
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$(nproc) RealMemory=$MEM_MB State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
CONF

/usr/sbin/slurmctld                 # daemonizes, drops to user slurm
/usr/sbin/slurmd -N localhost       # -N: the node is "localhost" whatever `hostname` says
for _ in $(seq 1 60); do
  [ "$(sinfo -h -o %T 2>/dev/null)" = idle ] && break
  sleep 0.5
done
srun -t 1 hostname >/dev/null
echo "SLURM ready: $(sinfo -h -o '%P %D %T %c CPUs')"
