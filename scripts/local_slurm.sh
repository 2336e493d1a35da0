#!/usr/bin/env bash
# A single-node Slurm cluster on this machine, for testing the pipeline's Slurm profile for real
# (profiles/slurm/, tests/test_slurm.py). Run as root on Debian/Ubuntu:
#
#   scripts/local_slurm.sh start    # install (apt-get) and start munge, MariaDB, slurmdbd, slurmctld, slurmd
#   scripts/local_slurm.sh status   # sinfo + the accounting cluster
#   scripts/local_slurm.sh stop     # stop the daemons this script started (by their pid files)
#
# The node offers this machine's CPUs (nproc) and SLURM_MEMORY_MB of memory (default: 3/4 of it).
# Accounting goes to slurmdbd on MariaDB, so `sacct` lists every job (the test checks that the
# pipeline's jobs went through sbatch). Everything lives in the Debian default paths
# (/etc/slurm, /var/spool/slurm*, /var/log/slurm); state is kept between starts.
set -euo pipefail

CLUSTER=dnpu-local
ACCOUNT=dnpu
DB_PASSWORD=${SLURM_DB_PASSWORD:-dnpu-local-slurm}
HOST=$(hostname -s)
RUN=/run/dnpu-slurm
LOG=/var/log/slurm

need_root() {
    if [ "$(id -u)" != 0 ]; then echo "local_slurm.sh: run as root (it installs packages and starts daemons)" >&2; exit 2; fi
}

install_packages() {
    local missing=()
    for pkg in slurm-wlm slurmdbd munge mariadb-server; do
        dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        echo "installing ${missing[*]}"
        apt-get update -q
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
    fi
}

write_config() {
    local cpus memory
    cpus=$(nproc)
    memory=${SLURM_MEMORY_MB:-$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 * 3 / 4 ))}
    mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd "$LOG" "$RUN"
    cat > /etc/slurm/slurm.conf <<CONF
# written by dnpu scripts/local_slurm.sh: one node, this machine
ClusterName=$CLUSTER
SlurmctldHost=$HOST
SlurmUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=$RUN/slurmctld.pid
SlurmdPidFile=$RUN/slurmd.pid
SlurmctldLogFile=$LOG/slurmctld.log
SlurmdLogFile=$LOG/slurmd.log
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoreFlags=job_comment
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=10
MinJobAge=600
ReturnToService=2
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$memory State=UNKNOWN
PartitionName=local Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
CONF
    cat > /etc/slurm/slurmdbd.conf <<CONF
# written by dnpu scripts/local_slurm.sh
AuthType=auth/munge
DbdHost=localhost
SlurmUser=root
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=slurm
StoragePass=$DB_PASSWORD
StorageLoc=slurm_acct_db
LogFile=$LOG/slurmdbd.log
PidFile=$RUN/slurmdbd.pid
CONF
    chmod 600 /etc/slurm/slurmdbd.conf
    # cgroup plugins are not used (containers often lack a writable cgroup tree)
    rm -f /etc/slurm/cgroup.conf
}

running() {  # running NAME: the daemon of this pid file is alive
    [ -f "$RUN/$1.pid" ] && kill -0 "$(cat "$RUN/$1.pid")" 2>/dev/null
}

wait_for() {  # wait_for SECONDS DESCRIPTION COMMAND...
    local seconds=$1 what=$2; shift 2
    for _ in $(seq "$seconds"); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 1
    done
    echo "local_slurm.sh: $what did not come up within $seconds s" >&2
    return 1
}

start() {
    need_root
    install_packages
    write_config
    mkdir -p /run/munge /var/run/mysqld /var/lib/munge /var/log/munge
    if ! running munged; then
        [ -s /etc/munge/munge.key ] || /usr/sbin/mungekey --create --force
        # munged runs as root here: some containers give /dev/null no write permission for
        # other users, and munged (as the munge user) then refuses to start
        chown root:root /etc/munge/munge.key /run/munge /var/lib/munge /var/log/munge /etc/munge
        chmod 400 /etc/munge/munge.key
        /usr/sbin/munged --force --pid-file="$RUN/munged.pid"
    fi
    wait_for 20 munge munge -n
    if ! mysqladmin ping >/dev/null 2>&1; then
        chown mysql:mysql /var/run/mysqld
        # mariadbd itself, not mysqld_safe (which logs through syslog, often absent in containers)
        (runuser -u mysql -- /usr/sbin/mariadbd --pid-file=/run/mysqld/mariadb.pid \
            >>"$LOG/mariadb.log" 2>&1 </dev/zero &)
    fi
    wait_for 60 MariaDB mysqladmin ping
    mysql -e "CREATE DATABASE IF NOT EXISTS slurm_acct_db;
              CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY '$DB_PASSWORD';
              GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost'; FLUSH PRIVILEGES;"
    running slurmdbd || /usr/sbin/slurmdbd
    wait_for 60 slurmdbd sacctmgr -n list cluster
    sacctmgr -i -Q add cluster "$CLUSTER" >/dev/null 2>&1 || true
    sacctmgr -i -Q add account "$ACCOUNT" cluster="$CLUSTER" description=dnpu organization=dnpu >/dev/null 2>&1 || true
    sacctmgr -i -Q add user root account="$ACCOUNT" cluster="$CLUSTER" >/dev/null 2>&1 || true
    running slurmctld || /usr/sbin/slurmctld
    wait_for 60 slurmctld scontrol ping
    running slurmd || /usr/sbin/slurmd
    wait_for 60 "the node" bash -c "sinfo -h -o %T | grep -qE '^(idle|mixed|allocated)'"
    scontrol update nodename="$HOST" state=resume >/dev/null 2>&1 || true
    status
}

status() {
    sinfo
    sacctmgr -n list cluster format=cluster%20
}

stop() {
    need_root
    for name in slurmd slurmctld slurmdbd; do
        if running "$name"; then kill "$(cat "$RUN/$name.pid")"; fi
    done
    if [ -f /run/mysqld/mariadb.pid ]; then mysqladmin shutdown 2>/dev/null || true; fi
    if running munged; then kill "$(cat "$RUN/munged.pid")"; fi
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) status ;;
    *) echo "usage: $0 start|status|stop" >&2; exit 2 ;;
esac
