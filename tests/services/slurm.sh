#!/usr/bin/env bash
# A one-node Slurm cluster for the build-farm tests (Debian 12 packages slurmctld, slurmd, slurm-client, munge).
#
#   tests/services/slurm.sh start [DIR]   # prints `export SLURM_CONF=...` (clients and tests use it)
#   tests/services/slurm.sh stop  [DIR]
#
# Everything lives under DIR (default /tmp/trtbuild-slurm): its own munge key and munged socket (the system
# munged, if any, is left alone), slurm.conf, gres.conf, state, spool, logs and pid files. One node,
# `localhost` on 127.0.0.1, declares 8 GPUs as a GRES (gres.conf `Name=gpu File=DIR/dev/nvidia[0-7]`), so
# `sbatch --gres=gpu:N` schedules without real GPUs. Ports: $TRTBUILD_TEST_SLURM_PORTS (default
# 16817-16818: slurmctld, slurmd). No accounting storage: finished jobs are known to squeue/scontrol for
# MinJobAge seconds. `stop` kills what `start` started, by pid file, and removes DIR.
# Slurm 22.05 drops file-less GPUs from a node, so the 8 "GPUs" are character devices made with mknod under
# DIR/dev (copies of /dev/null's numbers; task/none constrains nothing, so no job ever opens them).
set -euo pipefail

cmd=${1:?usage: slurm.sh start|stop [DIR]}
dir=${2:-/tmp/trtbuild-slurm}
ports=${TRTBUILD_TEST_SLURM_PORTS:-16817-16818}
ctld_port=${ports%-*}
slurmd_port=${ports#*-}

for bin in slurmctld slurmd munged sbatch; do
  command -v "$bin" >/dev/null || [[ -x /usr/sbin/$bin ]] || {
    echo "slurm.sh: $bin not found (apt-get install -y slurmctld slurmd slurm-client munge)" >&2; exit 1; }
done

kill_pidfile() {
  local pidfile=$1
  [[ -f $pidfile ]] || return 0
  local pid
  pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid"
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
  fi
  rm -f "$pidfile"
}

start() {
  mkdir -p "$dir"/{munge,state,spool,log,dev}
  chmod 700 "$dir/munge"
  if [[ ! -f $dir/munge/munge.key ]]; then
    dd if=/dev/urandom of="$dir/munge/munge.key" bs=1024 count=1 status=none
    chmod 400 "$dir/munge/munge.key"
  fi
  if ! { [[ -f $dir/munge/munged.pid ]] && kill -0 "$(cat "$dir/munge/munged.pid")" 2>/dev/null; }; then
    /usr/sbin/munged --force --key-file="$dir/munge/munge.key" --socket="$dir/munge/munge.socket" \
      --pid-file="$dir/munge/munged.pid" --log-file="$dir/log/munged.log" --seed-file="$dir/munge/munged.seed"
  fi
  cat >"$dir/slurm.conf" <<CONF
ClusterName=trtbuild-test
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$dir/munge/munge.socket
CredType=cred/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
PlugStackConfig=$dir/plugstack.conf
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SlurmdParameters=config_overrides
ReturnToService=2
MpiDefault=none
MinJobAge=600
KillWait=30
SchedulerParameters=sched_interval=2
GresTypes=gpu
NodeName=localhost NodeAddr=127.0.0.1 CPUs=8 RealMemory=4096 Gres=gpu:8 State=UNKNOWN
PartitionName=gpu Nodes=localhost Default=YES MaxTime=INFINITE State=UP
CONF
  mkdir -p "$dir/dev"
  for i in $(seq 0 7); do [[ -c $dir/dev/nvidia$i ]] || mknod "$dir/dev/nvidia$i" c 1 3; done
  echo "Name=gpu File=$dir/dev/nvidia[0-7]" >"$dir/gres.conf"
  : >"$dir/plugstack.conf"   # not /etc/slurm/plugstack.conf: no SPANK plugins here
  export SLURM_CONF=$dir/slurm.conf
  if ! { [[ -f $dir/slurmctld.pid ]] && kill -0 "$(cat "$dir/slurmctld.pid")" 2>/dev/null; }; then
    /usr/sbin/slurmctld -i   # -i: ignore state files of an earlier run in DIR
  fi
  if ! { [[ -f $dir/slurmd.pid ]] && kill -0 "$(cat "$dir/slurmd.pid")" 2>/dev/null; }; then
    /usr/sbin/slurmd -N localhost
  fi
  for _ in $(seq 1 150); do
    if sinfo -h -N -o '%T' 2>/dev/null | grep -qE '^(idle|mixed|allocated)'; then
      echo "slurm up: SLURM_CONF=$dir/slurm.conf" >&2
      echo "export SLURM_CONF=$dir/slurm.conf"
      return 0
    fi
    sleep 0.2
  done
  echo "slurm did not come up within 30 s; logs in $dir/log:" >&2
  tail -n 20 "$dir/log/slurmctld.log" "$dir/log/slurmd.log" >&2 || true
  sinfo -N >&2 || true
  exit 1
}

stop() {
  kill_pidfile "$dir/slurmd.pid"
  kill_pidfile "$dir/slurmctld.pid"
  kill_pidfile "$dir/munge/munged.pid"
  rm -rf "$dir"
}

case "$cmd" in
start) start ;;
stop) stop ;;
*) echo "usage: slurm.sh start|stop [DIR]" >&2; exit 2 ;;
esac
