# A throw-away one-node SLURM cluster on this machine, for tests (sourced).
#
#   source tests/e2e/slurm_cluster.bash
#   slurm_cluster_start "$DIR" || { echo "SKIP: $SLURM_CLUSTER_WHY"; exit 0; }
#   sbatch ...; squeue ...            # SLURM_CONF points at the cluster
#   slurm_cluster_stop                # also run from an EXIT trap
#
# slurm_cluster_start DIR starts munged (own key and socket), slurmctld and
# slurmd (-D, in the background) with a slurm.conf generated in DIR: this
# host's name, its CPU count, free TCP ports (so several clusters can run at
# once), ProctrackType=proctrack/linuxproc, TaskPlugin=task/none,
# SelectType=select/cons_tres, no accounting, state and logs in DIR, and a
# shorter requeue delay (AuthInfo cred_expire=30 and a 5 s scheduling pass: a
# requeued job starts again ~30-35 s later instead of up to 2 minutes). Job
# ids start at a random FirstJobId: two test clusters on one machine would
# otherwise both run "job 1", whose PMIx directories in /tmp collide (srun
# then fails to launch the step). It waits until the node is idle.
# Every daemon is stopped by the PID this file started; nothing else is
# touched. Returns 1 with the reason in SLURM_CLUSTER_WHY when SLURM or munge
# is not installed and cannot be installed (apt-get, as root), or does not
# come up. Needs: munge slurmctld slurmd slurm-client (launch/setup.sh).
# Environment: SLURM_CLUSTER_CPUS (default: the number of cores), SLURM_CLUSTER_CRED_EXPIRE
# (seconds before a requeued job may start again, default 30).

SLURM_CLUSTER_PIDS=()
SLURM_CLUSTER_WHY=

_slurm_cluster_have() {
    command -v munged >/dev/null && command -v slurmctld >/dev/null &&
        command -v slurmd >/dev/null && command -v sbatch >/dev/null
}

_slurm_cluster_install() {
    _slurm_cluster_have && return 0
    if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null; then
        SLURM_CLUSTER_WHY="SLURM is not installed and cannot be installed here (need root and apt-get): install munge slurmctld slurmd slurm-client"
        return 1
    fi
    echo "slurm_cluster: installing munge slurmctld slurmd slurm-client" >&2
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -q \
        --no-install-recommends munge slurmctld slurmd slurm-client >&2 ||
        { apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
            --no-install-recommends munge slurmctld slurmd slurm-client >&2; }
    _slurm_cluster_have || {
        SLURM_CLUSTER_WHY="installing SLURM with apt-get failed"
        return 1
    }
}

_slurm_cluster_free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("", 0)); print(s.getsockname()[1])'
}

# _slurm_cluster_wait SECONDS CMD...: until CMD succeeds
_slurm_cluster_wait() {
    local t=$1 i
    shift
    for ((i = 0; i < t * 4; i++)); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.25
    done
    return 1
}

slurm_cluster_start() {
    local dir=$1
    _slurm_cluster_install || return 1
    mkdir -p "$dir"/{state,spool,log,tmp}
    chmod 700 "$dir"
    dir=$(cd "$dir" && pwd)
    local host cpus p1 p2
    host=$(hostname -s)
    # nproc honours OMP_NUM_THREADS (launch/test.sh sets it to 1): count the cores
    cpus=${SLURM_CLUSTER_CPUS:-$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc)}
    p1=$(_slurm_cluster_free_port)
    p2=$(_slurm_cluster_free_port)
    [[ $p1 == "$p2" ]] && p2=$((p2 + 1))
    # munge: own key, socket and files; run as this user (--force: root is fine here)
    dd if=/dev/urandom of="$dir/munge.key" bs=1024 count=1 status=none
    chmod 400 "$dir/munge.key"
    munged --force --foreground --socket="$dir/munge.sock" --key-file="$dir/munge.key" \
        --pid-file="$dir/munged.pid" --log-file="$dir/log/munged.log" \
        --seed-file="$dir/munged.seed" >"$dir/log/munged.out" 2>&1 &
    SLURM_CLUSTER_PIDS+=($!)
    if ! _slurm_cluster_wait 10 test -S "$dir/munge.sock"; then
        SLURM_CLUSTER_WHY="munged did not start (see $dir/log/munged.log)"
        slurm_cluster_stop
        return 1
    fi
    cat >"$dir/slurm.conf" <<CONF
ClusterName=taskreltest
SlurmctldHost=$host
SlurmctldPort=$p1
SlurmdPort=$p2
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$dir/munge.sock,cred_expire=${SLURM_CLUSTER_CRED_EXPIRE:-30}
SlurmUser=$(id -un)
SlurmdUser=root
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/builtin
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
ReturnToService=2
KillWait=10
MinJobAge=600
SchedulerParameters=sched_interval=5
FirstJobId=$((RANDOM * 1000 + 1000 + RANDOM % 1000))
TmpFS=$dir/tmp
MailProg=/bin/true
NodeName=$host CPUs=$cpus State=UNKNOWN
PartitionName=test Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES
CONF
    export SLURM_CONF=$dir/slurm.conf
    SLURM_CLUSTER_DIR=$dir
    slurmctld -D -i -f "$SLURM_CONF" >"$dir/log/slurmctld.out" 2>&1 &
    SLURM_CLUSTER_PIDS+=($!)
    slurmd -D -f "$SLURM_CONF" -N "$host" >"$dir/log/slurmd.out" 2>&1 &
    SLURM_CLUSTER_PIDS+=($!)
    if ! _slurm_cluster_wait 60 bash -c "sinfo -h -N -o %t | grep -q idle"; then
        SLURM_CLUSTER_WHY="the cluster did not come up (logs in $dir/log)"
        tail -5 "$dir"/log/*.log >&2 || true
        slurm_cluster_stop
        return 1
    fi
    SLURM_CLUSTER_DIR=$dir
    return 0
}

# slurm_cluster_stop: cancel what is left of this cluster's jobs, let their
# steps report back, then stop slurmd, slurmctld and munged (in that order, by
# PID). Safe to call twice.
slurm_cluster_stop() {
    local pid i
    if ((${#SLURM_CLUSTER_PIDS[@]} == 3)); then
        scancel --quiet --user="$(id -un)" 2>/dev/null || true
        _slurm_cluster_wait 30 bash -c '[[ -z $(squeue -h -o %i 2>/dev/null) ]]' || true
        _slurm_cluster_wait 10 bash -c "! ls '$SLURM_CLUSTER_DIR/spool/$(hostname -s)_'* >/dev/null 2>&1" || true
    fi
    local order=()
    for ((i = ${#SLURM_CLUSTER_PIDS[@]} - 1; i >= 0; i--)); do
        order+=("${SLURM_CLUSTER_PIDS[i]}")
    done
    for pid in "${order[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < 40; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.25
        done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    SLURM_CLUSTER_PIDS=()
}

# slurm_test_cluster: for a test script (lib.bash's $SCRATCH): a cluster in
# $SCRATCH/cluster, stopped and $SCRATCH removed on exit; where SLURM cannot
# run, the test is skipped ("SKIP: <reason>", exit 0).
slurm_test_cluster() {
    trap 'slurm_cluster_stop; rm -rf "$SCRATCH"' EXIT
    if ! slurm_cluster_start "$SCRATCH/cluster"; then
        echo "SKIP: $SLURM_CLUSTER_WHY"
        exit 0
    fi
    echo "cluster up: $(sinfo -h -o '%P %D %c %t')"
}
