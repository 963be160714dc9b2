#!/usr/bin/env bash
# Stop the daemons tests/slurm/setup.sh started, each by the pid in its pid file under $SLURM_CI_DIR,
# after checking that the pid still belongs to that program (a stale pid file must never kill an
# unrelated process). No pkill or killall. A munged that setup.sh found running is left alone.
# Then the slurm.conf setup.sh wrote goes, and one it found there comes back.
D=${SLURM_CI_DIR:-/tmp/slurm}
stop() {  # $1 = pid file, $2 = expected /proc/PID/comm
  [ -s "$1" ] || return 0
  pid=$(cat "$1")
  [ "$(cat /proc/"$pid"/comm 2>/dev/null)" = "$2" ] || return 0
  kill "$pid" 2>/dev/null || return 0
  for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.25; done
  kill -9 "$pid" 2>/dev/null || true
}
stop "$D/slurmd.pid" slurmd
stop "$D/slurmctld.pid" slurmctld
stop "$D/munged.pid" munged
if grep -qxF "# written by labelworth tests/slurm/setup.sh" /etc/slurm/slurm.conf 2>/dev/null; then
  rm -f /etc/slurm/slurm.conf
fi
if [ -e "$D"/slurm.conf.before ]; then
  mv "$D"/slurm.conf.before /etc/slurm/slurm.conf
fi
