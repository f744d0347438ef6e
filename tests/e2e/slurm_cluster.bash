# A real one-node SLURM cluster for the launcher tests (sourced).
#
#   slurm_cluster_start DIR   start munged, slurmctld and slurmd with all their
#                             files under DIR; exports SLURM_CONF. Returns 1
#                             with SLURM_CLUSTER_SKIP set to the reason when
#                             SLURM cannot be used here (packages missing and
#                             not installable, daemons do not start).
#   slurm_cluster_stop        stop the three daemons by their PIDs (never by
#                             name: other clusters may run on the machine).
#
# Everything is private to DIR: its own munge key and socket, its own
# slurmctld/slurmd ports (free ones picked at start), state and spool
# directories, so the cluster does not touch /etc/slurm or a system munged.
# ProctrackType=proctrack/linuxproc and TaskPlugin=task/none: no cgroups
# needed (containers). The node has the machine's CPUs and memory.
# Packages: slurmctld slurmd slurm-client munge (installed with apt-get if
# missing and we are root).

SLURM_CLUSTER_DIR=''
SLURM_CLUSTER_SKIP=''
SLURM_CLUSTER_PIDS=()

slurm_cluster_have() {
    command -v slurmctld >/dev/null && command -v slurmd >/dev/null &&
        command -v sbatch >/dev/null && command -v munged >/dev/null
}

slurm_cluster_install() {
    slurm_cluster_have && return 0
    [[ $(id -u) -eq 0 ]] || return 1
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -q \
        --no-install-recommends slurmctld slurmd slurm-client munge >/dev/null 2>&1 ||
        { apt-get update -q >/dev/null 2>&1 &&
            DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -q \
                --no-install-recommends slurmctld slurmd slurm-client munge >/dev/null 2>&1; }
    slurm_cluster_have
}

slurm_cluster_free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

slurm_cluster_wait_pid() { # FILE SECONDS -> the pid in FILE once it exists
    local i
    for ((i = 0; i < $2 * 10; i++)); do
        [[ -s $1 ]] && { cat "$1"; return 0; }
        sleep 0.1
    done
    return 1
}

slurm_cluster_start() {
    local dir=$1 host cpus mem pid i
    SLURM_CLUSTER_SKIP=''
    if ! slurm_cluster_install; then
        SLURM_CLUSTER_SKIP="SLURM packages (slurmctld slurmd slurm-client munge) are not installed and cannot be installed here"
        return 1
    fi
    mkdir -p "$dir"/{state,spool,log,munge}
    dir=$(cd "$dir" && pwd)
    SLURM_CLUSTER_DIR=$dir
    chmod 700 "$dir/munge"
    dd if=/dev/urandom of="$dir/munge/munge.key" bs=1024 count=1 status=none
    chmod 400 "$dir/munge/munge.key"
    munged --force --socket="$dir/munge/munge.socket" --key-file="$dir/munge/munge.key" \
        --pid-file="$dir/munge/munged.pid" --log-file="$dir/log/munged.log" \
        --seed-file="$dir/munge/munged.seed" >>"$dir/log/munged.log" 2>&1
    if ! pid=$(slurm_cluster_wait_pid "$dir/munge/munged.pid" 10); then
        SLURM_CLUSTER_SKIP="munged did not start (log: $dir/log/munged.log)"
        return 1
    fi
    SLURM_CLUSTER_PIDS+=("$pid")
    host=$(hostname -s)
    cpus=$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc)
    mem=$(awk '/^MemTotal/ { print int($2 / 1024 * 0.8) }' /proc/meminfo)
    cat >"$dir/slurm.conf" <<EOF
ClusterName=taskrel-test
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$(slurm_cluster_free_port)
SlurmdPort=$(slurm_cluster_free_port)
SlurmUser=$(id -un)
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$dir/munge/munge.socket
CredType=cred/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool/%n
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
InactiveLimit=0
KillWait=5
MinJobAge=300
SlurmdTimeout=60
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=test Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
EOF
    export SLURM_CONF=$dir/slurm.conf
    slurmctld -f "$SLURM_CONF" -i >>"$dir/log/slurmctld.out" 2>&1
    if ! pid=$(slurm_cluster_wait_pid "$dir/slurmctld.pid" 20); then
        SLURM_CLUSTER_SKIP="slurmctld did not start (log: $dir/log/slurmctld.log)"
        return 1
    fi
    SLURM_CLUSTER_PIDS+=("$pid")
    slurmd -f "$SLURM_CONF" >>"$dir/log/slurmd.out" 2>&1
    if ! pid=$(slurm_cluster_wait_pid "$dir/slurmd.pid" 20); then
        SLURM_CLUSTER_SKIP="slurmd did not start (log: $dir/log/slurmd.log)"
        return 1
    fi
    SLURM_CLUSTER_PIDS+=("$pid")
    for ((i = 0; i < 300; i++)); do # up to 30 s for the node to be idle
        [[ $(sinfo -h -N -o %t 2>/dev/null) == idle ]] && return 0
        sleep 0.1
    done
    SLURM_CLUSTER_SKIP="the node did not become idle: $(sinfo -h -N -o '%t %E' 2>&1)"
    return 1
}

slurm_cluster_stop() {
    local pid i
    [[ -n $SLURM_CLUSTER_DIR ]] || return 0
    if [[ -n ${SLURM_CONF-} ]]; then
        scancel --user="$(id -un)" >/dev/null 2>&1 || true
    fi
    # slurmd, slurmctld, munged: reverse start order, by PID only
    for ((i = ${#SLURM_CLUSTER_PIDS[@]} - 1; i >= 0; i--)); do
        pid=${SLURM_CLUSTER_PIDS[i]}
        kill "$pid" 2>/dev/null || continue
        for _ in $(seq 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -9 "$pid" 2>/dev/null || true
    done
    SLURM_CLUSTER_PIDS=()
    SLURM_CLUSTER_DIR=''
}
