# An emulated multi-node SLURM cluster on this machine (sourced; root only).
#
#   source tests/e2e/cluster.bash
#   cluster_start DIR N || { echo "SKIP: $CLUSTER_WHY"; exit 0; }
#   cluster_run sbatch --nodes=2 ...     # any command, run on the head node
#   cluster_node_exec n2 ip addr         # any command, run on node n2
#   cluster_link n2 down|up              # take node n2's link down / up
#   cluster_shape 1gbit [DELAY]          # shape every node's link (tbf; DELAY needs netem); off
#   cluster_kill_node n2                 # kill every process of node n2 (a node crash)
#   cluster_stop                         # also from an EXIT trap; safe to call twice
#
# or by hand (an interactive shell on the head node, torn down on exit):
#
#   sudo bash tests/e2e/cluster.bash 4   # then sinfo, sbatch ... ; exit
#
# Topology. Every emulated host is a network namespace (`ip netns`) of its
# own, with a UTS namespace (its own hostname) and a mount namespace (its own
# /etc/hosts naming every host, its own SLURM TmpFS); the file system is
# otherwise this machine's, shared as a cluster's parallel file system would
# be. One more namespace holds only a Linux bridge: the cluster's switch. Each
# host has one veth link to it ("eth0" on the host, "p-<host>" on the switch)
# on the private subnet 10.77.0.0/24 that exists only inside these
# namespaces: the machine's own network namespace gets no address, route or
# link, so no traffic leaves the cluster and nothing outside can reach it.
#
#   head  10.77.0.254   munged, slurmctld; sbatch/squeue/... (cluster_run)
#   n1..nN 10.77.0.1..N slurmd -N nK (CPUs=CLUSTER_CPUS each, default 8,
#                       whatever the machine has: the ranks share its cores)
#
# SLURM as in tests/e2e/slurm_cluster.bash (the one-node test cluster):
# proctrack/linuxproc, task/none, select/cons_tres, a random FirstJobId,
# short requeue delay, state and logs in DIR; per-node spool, pid and log
# files (%n). munged runs once: its socket is a file, reachable from every
# network namespace. SlurmdTimeout is short (CLUSTER_SLURMD_TIMEOUT, 10 s) so a
# lost node is declared DOWN quickly. Open MPI ranks launched by srun
# --mpi=pmix on different hosts talk over TCP across the bridge (shared memory
# only between ranks of one host), as on a real cluster.
#
# Tear-down: cancels the jobs, stops slurmd, slurmctld and munged by the PIDs
# recorded at start, then every process still inside one of the cluster's
# namespaces (`ip netns pids`: a job step of a lost node), and deletes the
# namespaces (with them the links and the bridge). Nothing is killed by name.
# Needs: root, iproute2 (ip, tc, with netem), util-linux (unshare, nsenter),
# munge slurmctld slurmd slurm-client (launch/setup.sh installs them all).

CLUSTER_PIDS=()   # munged, slurmctld, slurmd n1..nN (in start order)
CLUSTER_NS=()     # namespaces created
CLUSTER_WHY=
CLUSTER_NODES=()  # n1 .. nN
CLUSTER_SUBNET=10.77.0
CLUSTER_DIR=
declare -A CLUSTER_NODE_PID=() # host -> PID of its init process (slurmd, or the head's holder)

_cluster_wait() { # SECONDS CMD...: until CMD succeeds
    local t=$1 i
    shift
    for ((i = 0; i < t * 4; i++)); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.25
    done
    return 1
}

_cluster_have() {
    command -v ip >/dev/null && command -v tc >/dev/null && command -v unshare >/dev/null &&
        command -v nsenter >/dev/null && command -v munged >/dev/null &&
        command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v sbatch >/dev/null
}

# _cluster_host_prefix HOST: the prefix that runs a command as HOST (its
# network, hostname, /etc/hosts and TmpFS). Used to start each host's first
# process. (Not `ip netns exec`: it remounts /sys, hiding the cgroup file
# system slurmd looks for.)
_cluster_host_prefix() {
    local h=$1
    echo "nsenter --net=/run/netns/${CLUSTER_NSPREFIX}-$h -- unshare --uts --mount --propagation private --"
}

# _cluster_host_init HOST CMD... &: HOST's first process (exec: the PID in $!
# is CMD's); sets the host name, binds /etc/hosts and the TmpFS, execs CMD.
_cluster_host_init() {
    local h=$1
    shift
    # shellcheck disable=SC2016
    exec $(_cluster_host_prefix "$h") bash -c '
        set -e
        hostname "$1"
        mount --bind "$2/hosts" /etc/hosts
        mkdir -p "$2/nodes/$1/tmp"
        mount --bind "$2/nodes/$1/tmp" "$2/tmp"
        ip link set lo up
        shift 2
        exec "$@"' cluster-init "$h" "$CLUSTER_DIR" "$@"
}

# cluster_start DIR N: bring up the head and N (2..8) nodes; waits until all
# nodes are idle. Returns 1 with the reason in CLUSTER_WHY.
cluster_start() {
    local dir=$1 n=${2:-2} i h
    if [[ $(id -u) -ne 0 ]]; then
        CLUSTER_WHY="the emulated cluster needs root (network namespaces)"
        return 1
    fi
    if ! _cluster_have; then
        CLUSTER_WHY="missing tools: need ip/tc (iproute2), unshare/nsenter (util-linux), munge, slurmctld, slurmd, slurm-client (launch/setup.sh)"
        return 1
    fi
    ((n >= 1 && n <= 8)) || {
        CLUSTER_WHY="cluster_start: 1..8 nodes, got $n"
        return 1
    }
    mkdir -p "$dir"/{state,spool,log,tmp,run,nodes}
    chmod 700 "$dir"
    CLUSTER_DIR=$(cd "$dir" && pwd)
    CLUSTER_NSPREFIX=trc$(printf '%04x' $((RANDOM % 65536)))
    CLUSTER_NODES=()
    for ((i = 1; i <= n; i++)); do CLUSTER_NODES+=("n$i"); done

    # the network: a switch namespace with a bridge, one veth per host
    local sw=$CLUSTER_NSPREFIX-sw
    if ! ip netns add "$sw" 2>"$CLUSTER_DIR/log/netns.err"; then
        CLUSTER_WHY="ip netns add failed: $(cat "$CLUSTER_DIR/log/netns.err")"
        return 1
    fi
    CLUSTER_NS+=("$sw")
    ip -n "$sw" link set lo up
    ip -n "$sw" link add br0 type bridge
    ip -n "$sw" link set br0 up
    {
        echo "127.0.0.1 localhost"
        echo "$CLUSTER_SUBNET.254 head"
        for ((i = 1; i <= n; i++)); do echo "$CLUSTER_SUBNET.$i n$i"; done
    } >"$CLUSTER_DIR/hosts"
    for h in head "${CLUSTER_NODES[@]}"; do
        local ns=$CLUSTER_NSPREFIX-$h addr
        [[ $h == head ]] && addr=$CLUSTER_SUBNET.254 || addr=$CLUSTER_SUBNET.${h#n}
        ip netns add "$ns" || {
            CLUSTER_WHY="ip netns add $ns failed"
            cluster_stop
            return 1
        }
        CLUSTER_NS+=("$ns")
        ip -n "$sw" link add "p-$h" type veth peer name eth0 netns "$ns" &&
            ip -n "$sw" link set "p-$h" master br0 &&
            ip -n "$sw" link set "p-$h" up &&
            ip -n "$ns" addr add "$addr/24" dev eth0 &&
            ip -n "$ns" link set eth0 up &&
            ip -n "$ns" link set lo up || {
            CLUSTER_WHY="setting up the link of $h failed"
            cluster_stop
            return 1
        }
    done

    # munge: own key and socket (a file: every namespace reaches it)
    dd if=/dev/urandom of="$CLUSTER_DIR/munge.key" bs=1024 count=1 status=none
    chmod 400 "$CLUSTER_DIR/munge.key"
    munged --force --foreground --socket="$CLUSTER_DIR/munge.sock" \
        --key-file="$CLUSTER_DIR/munge.key" --pid-file="$CLUSTER_DIR/run/munged.pid" \
        --log-file="$CLUSTER_DIR/log/munged.log" --seed-file="$CLUSTER_DIR/munged.seed" \
        >"$CLUSTER_DIR/log/munged.out" 2>&1 &
    CLUSTER_PIDS+=($!)
    if ! _cluster_wait 10 test -S "$CLUSTER_DIR/munge.sock"; then
        CLUSTER_WHY="munged did not start (see $CLUSTER_DIR/log/munged.log)"
        cluster_stop
        return 1
    fi

    local cpus=${CLUSTER_CPUS:-8}
    cat >"$CLUSTER_DIR/slurm.conf" <<CONF
ClusterName=taskrelcluster
SlurmctldHost=head($CLUSTER_SUBNET.254)
SlurmctldPort=6817
SlurmdPort=6818
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$CLUSTER_DIR/munge.sock,cred_expire=${CLUSTER_CRED_EXPIRE:-30}
SlurmUser=$(id -un)
SlurmdUser=root
StateSaveLocation=$CLUSTER_DIR/state
SlurmdSpoolDir=$CLUSTER_DIR/spool/%n
SlurmctldPidFile=$CLUSTER_DIR/run/slurmctld.pid
SlurmdPidFile=$CLUSTER_DIR/run/slurmd-%n.pid
SlurmctldLogFile=$CLUSTER_DIR/log/slurmctld.log
SlurmdLogFile=$CLUSTER_DIR/log/slurmd-%n.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/builtin
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SlurmdParameters=config_overrides
ReturnToService=2
SlurmdTimeout=${CLUSTER_SLURMD_TIMEOUT:-10}
KillWait=10
MinJobAge=600
SchedulerParameters=sched_interval=5
FirstJobId=$((RANDOM * 1000 + 1000 + RANDOM % 1000))
TmpFS=$CLUSTER_DIR/tmp
MailProg=/bin/true
NodeName=DEFAULT CPUs=$cpus State=UNKNOWN
$(for ((i = 1; i <= n; i++)); do echo "NodeName=n$i NodeAddr=$CLUSTER_SUBNET.$i"; done)
PartitionName=cluster Nodes=n[1-$n] Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES
CONF
    export SLURM_CONF=$CLUSTER_DIR/slurm.conf
    mkdir -p "$CLUSTER_DIR/nodes/head/tmp"
    _cluster_host_init head slurmctld -D -i -f "$SLURM_CONF" >"$CLUSTER_DIR/log/slurmctld.out" 2>&1 &
    CLUSTER_PIDS+=($!)
    CLUSTER_NODE_PID[head]=$!
    for h in "${CLUSTER_NODES[@]}"; do
        mkdir -p "$CLUSTER_DIR/spool/$h" "$CLUSTER_DIR/nodes/$h/tmp"
        _cluster_host_init "$h" slurmd -D -f "$SLURM_CONF" -N "$h" >"$CLUSTER_DIR/log/slurmd-$h.out" 2>&1 &
        CLUSTER_PIDS+=($!)
        CLUSTER_NODE_PID[$h]=$!
    done
    if ! _cluster_wait 90 _cluster_idle "$n"; then
        CLUSTER_WHY="the cluster did not come up (logs in $CLUSTER_DIR/log)"
        cluster_run sinfo -N >&2 || true
        tail -n 5 "$CLUSTER_DIR"/log/*.log >&2 || true
        cluster_stop
        return 1
    fi
    return 0
}

# cluster_run CMD...: run CMD on the head node (the login node: sbatch,
# squeue, scontrol, sinfo, scancel; the working directory is kept).
cluster_run() {
    nsenter -t "${CLUSTER_NODE_PID[head]}" --net --uts --mount --wd="$PWD" -- "$@"
}

_cluster_idle() { [[ $(cluster_run sinfo -h -N -o %t 2>/dev/null | grep -c idle) -eq $1 ]]; }
_cluster_no_jobs() { [[ -z $(cluster_run squeue -h -o %i 2>/dev/null) ]]; }

# cluster_node_exec HOST CMD...: run CMD on HOST (its network, name, files).
cluster_node_exec() {
    local h=$1
    shift
    nsenter -t "${CLUSTER_NODE_PID[$h]}" --net --uts --mount --wd="$PWD" -- "$@"
}

# cluster_link HOST up|down: the host's link, on the switch side (the host
# keeps its address and sees carrier loss, as with a pulled cable).
cluster_link() {
    ip -n "$CLUSTER_NSPREFIX-sw" link set "p-$1" "$2"
}

# cluster_shape RATE [DELAY] | cluster_shape off: shape every host's link, both
# directions (egress of the host's eth0 and of its switch port): bandwidth
# RATE (tc units: 10gbit, 1gbit, 100mbit) with tbf; DELAY (e.g. 25us: a
# message between two hosts sees it twice, leaving the sender and entering the
# receiver) needs tc netem (sch_netem), which not every kernel has: returns 2
# with a message where it is missing.
cluster_shape() {
    local h ns dev q
    if [[ $1 != off && -n ${2-} ]]; then
        q=(netem delay "$2" rate "$1" limit 100000)
    else
        # burst: 1 ms at the rate, at least 64 KiB (a GSO packet)
        local bytes
        bytes=$(awk -v r="$1" 'BEGIN { m = 1; if (r ~ /gbit$/) m = 1e9; else if (r ~ /mbit$/) m = 1e6; else if (r ~ /kbit$/) m = 1e3
            v = r; sub(/[a-z]+$/, "", v); b = v * m / 8 / 1000; if (b < 65536) b = 65536; printf "%d", b }')
        q=(tbf rate "$1" burst "$bytes" latency 100ms)
    fi
    for h in head "${CLUSTER_NODES[@]}"; do
        for dev in "$CLUSTER_NSPREFIX-$h eth0" "$CLUSTER_NSPREFIX-sw p-$h"; do
            read -r ns dev <<<"$dev"
            if [[ $1 == off ]]; then
                tc -n "$ns" qdisc del dev "$dev" root 2>/dev/null || true
            elif ! tc -n "$ns" qdisc replace dev "$dev" root "${q[@]}" 2>"$CLUSTER_DIR/log/tc.err"; then
                echo "cluster_shape: tc ${q[*]}: $(cat "$CLUSTER_DIR/log/tc.err")" >&2
                return 2
            fi
        done
    done
}

# cluster_node_pids HOST: every process inside HOST's network namespace
cluster_node_pids() {
    ip netns pids "$CLUSTER_NSPREFIX-$1" 2>/dev/null
}

# cluster_kill_node HOST: SIGKILL every process of HOST (its slurmd, job
# steps and ranks): the host has crashed. Its namespace and link stay.
cluster_kill_node() {
    local pids
    pids=$(cluster_node_pids "$1")
    [[ -n $pids ]] && kill -KILL $pids 2>/dev/null
    return 0
}

# cluster_stop: cancel the jobs, stop the daemons by PID (slurmd, slurmctld,
# munged), then anything left in the cluster's namespaces, and delete them.
cluster_stop() {
    local pid i ns
    if [[ -n ${CLUSTER_NODE_PID[head]-} ]] && kill -0 "${CLUSTER_NODE_PID[head]}" 2>/dev/null; then
        cluster_run scancel --quiet --user="$(id -un)" 2>/dev/null || true
        _cluster_wait 20 _cluster_no_jobs || true
    fi
    local order=()
    for ((i = ${#CLUSTER_PIDS[@]} - 1; i >= 0; i--)); do order+=("${CLUSTER_PIDS[i]}"); done
    for pid in "${order[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < 40; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.25
        done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    CLUSTER_PIDS=()
    # job steps of a lost node, ranks that outlived their slurmd: by namespace
    for ns in "${CLUSTER_NS[@]}"; do
        pid=$(ip netns pids "$ns" 2>/dev/null | tr '\n' ' ')
        [[ -n ${pid// /} ]] && kill -KILL $pid 2>/dev/null
    done
    for ns in "${CLUSTER_NS[@]}"; do
        for ((i = 0; i < 20; i++)); do
            [[ -z $(ip netns pids "$ns" 2>/dev/null) ]] && break
            sleep 0.25
        done
        ip netns del "$ns" 2>/dev/null || true
    done
    CLUSTER_NS=()
    CLUSTER_NODE_PID=()
    return 0
}

# By hand: bash tests/e2e/cluster.bash [N]: a shell on the head node.
if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
    d=$(mktemp -d /tmp/taskrel-cluster.XXXXXX)
    trap 'cluster_stop; rm -rf "$d"' EXIT
    cluster_start "$d" "${1:-2}" || {
        echo "cluster: $CLUSTER_WHY" >&2
        exit 1
    }
    echo "cluster up in $d: $(cluster_run sinfo -h -o '%D nodes %t %N')"
    echo "a shell on the head node (sbatch, squeue, ...; srun --mpi=pmix); exit tears it all down"
    cluster_run env PS1='[cluster head \W]\$ ' bash --norc -i
fi
