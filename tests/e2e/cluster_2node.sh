#!/usr/bin/env bash
# launch/slurm/train.sbatch across emulated nodes (tests/e2e/cluster.bash):
# sbatch --nodes=N with one rank per node (P = N) and two per node (P = 2N),
# srun --mpi=pmix; Open MPI must carry the traffic between nodes over TCP on
# the cluster's private links (checked in the job's own btl output), and each
# run's final weights must equal, bitwise, those of the same P on one node
# (Open MPI picks its collective algorithms by communicator and message size,
# not by where the ranks are, so the reduction order is the same).
# TASKREL_CLUSTER_NODES=4 (outside CI) runs the same on 4 nodes. Skipped (exit 0,
# "SKIP") only where the cluster cannot be built (not root, no SLURM).
source "$(dirname "${BASH_SOURCE[0]}")/lib.bash"
source "$(dirname "${BASH_SOURCE[0]}")/cluster.bash"
command -v h5diff >/dev/null || { echo "h5diff (hdf5-tools) is needed"; exit 1; }
N=${TASKREL_CLUSTER_NODES:-2}
trap 'cluster_stop; rm -rf "$SCRATCH"' EXIT
cd "$SCRATCH"
t0=$(date +%s)
if ! cluster_start "$SCRATCH/cluster" "$N"; then
    echo "SKIP: $CLUSTER_WHY"
    exit 0
fi
echo "cluster up in $(($(date +%s) - t0)) s: $(cluster_run sinfo -h -o '%D nodes %t %N')"

"$TASKREL_BIN" data synthetic-tn --classification --out tn.h5 --tasks 4 --dim 64 \
    --n-train 1024 --n-val 200 --n-test 200 >/dev/null
cat >run.ini <<INI
[data]
path = $SCRATCH/tn.h5
[model]
kind = hps
trunk = mlp
mlp_hidden = 128,128
head_hidden = 64
[train]
epochs = 3
batch_size = 64
optimizer = adamw
lr = 1e-3
[run]
progress = off
INI

# submit NAME SBATCH_ARGS...: train.sbatch as job NAME, run dir NAME
submit() {
    local name=$1
    shift
    cluster_run env TASKREL_CONFIG=run.ini TASKREL_RUN_DIR="$name" TASKREL_BIN="$TASKREL_BIN" \
        sbatch --parsable --job-name="$name" --output="$name.log" --time=10 "$@" \
        "$TASKREL_SOURCE_DIR/launch/slurm/train.sbatch" | cut -d';' -f1
}
declare -A job=()
P1=$N P2=$((2 * N))
# the btl's own report says which transport connected which addresses
job[multi$P1]=$(OMPI_MCA_btl_base_verbose=100 submit "multi$P1" --nodes="$N" --ntasks="$P1" --ntasks-per-node=1)
job[multi$P2]=$(submit "multi$P2" --nodes="$N" --ntasks="$P2" --ntasks-per-node=2)
job[one$P1]=$(submit "one$P1" --nodes=1 --ntasks="$P1")
job[one$P2]=$(submit "one$P2" --nodes=1 --ntasks="$P2")
echo "submitted: $(for k in "${!job[@]}"; do printf '%s=%s ' "$k" "${job[$k]}"; done)"
for ((i = 0; i < 600; i++)); do
    [[ -z $(cluster_run squeue -h -o %i 2>/dev/null) ]] && break
    sleep 1
done
for k in multi$P1 multi$P2 one$P1 one$P2; do
    state=$(cluster_run scontrol show job "${job[$k]}" | grep -o 'JobState=[A-Z_]*' | cut -d= -f2)
    nodes=$(cluster_run scontrol show job "${job[$k]}" | grep -o ' NodeList=[^ ]*' | cut -d= -f2)
    checks=$((checks + 1))
    if [[ $state == COMPLETED && -s $k/model.h5 ]]; then
        echo "ok: $k (job ${job[$k]}) completed on $nodes ($(grep -o 'time [0-9]*s ([0-9.]* s)' "$k.log" | tail -1))"
    else
        fail "$k (job ${job[$k]}) ended $state on $nodes"
        tail -n 20 "$k.log" >&2
    fi
done

# transport: every rank on its own node, TCP between the emulated hosts' addresses
checks=$((checks + 1))
conn=$(grep -E "btl: ?tcp: attempting to connect\(\) to .* address 10\.77\.0\.[0-9]+" "multi$P1.log" | head -n 3)
hosts=$(grep -oE '^\[n[0-9]+:' "multi$P1.log" | sort -u | tr -d '[:' | tr '\n' ' ')
if [[ -n $conn ]] && grep -q "init of component vader returned failure" "multi$P1.log"; then
    echo "ok: multi$P1 ran on hosts $hosts; TCP between nodes, no shared memory:"
    echo "$conn" | sed 's/^/    /'
else
    fail "multi$P1: no TCP connection between the emulated hosts in the btl output"
fi

for p in "$P1" "$P2"; do
    checks=$((checks + 1))
    if h5diff -q "multi$p/model.h5" "one$p/model.h5" /params /params; then
        echo "ok: P=$p on $N nodes equals P=$p on one node (model.h5 /params bitwise)"
    else
        fail "P=$p on $N nodes differs from one node"
        h5diff -r "multi$p/model.h5" "one$p/model.h5" /params /params | head -n 5 >&2
    fi
    checks=$((checks + 1))
    a=$(tail -n 1 "multi$p/metrics.jsonl" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d.get("test_acc"), d.get("test_loss"))')
    b=$(tail -n 1 "one$p/metrics.jsonl" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d.get("test_acc"), d.get("test_loss"))')
    [[ $a == "$b" ]] && echo "ok: P=$p test metrics equal ($a)" || fail "P=$p test metrics differ: $a vs $b"
done
echo "test time $(($(date +%s) - t0)) s"
finish
