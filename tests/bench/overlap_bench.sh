#!/usr/bin/env bash
# tests/bench/overlap_bench.sh [OUT] — how much of the trunk gradient
# all-reduce dist.overlap hides, on 2 ranks: on this machine (shared memory),
# then, as root, on 2 emulated nodes (tests/e2e/cluster.bash, one rank per
# node, TCP over veth) unshaped and with tbf on every link at each rate of
# TASKREL_OVERLAP_RATES. At each setting the same run is made with
# dist.overlap = false and true, alternated, TASKREL_OVERLAP_REPEAT times.
# Not run by ctest (minutes).
#
#   tests/bench/overlap_bench.sh /tmp/overlap             # local, then the cluster if root
#   TASKREL_OVERLAP_SETTINGS="local none 1gbit 100mbit" (default) TASKREL_OVERLAP_REPEAT=5
#   TASKREL_OVERLAP_STEPS=20 TASKREL_OVERLAP_WARMUP=5
#   TASKREL_OVERLAP_BASE_BIN=DIR/taskrel: also run this older binary (no
#   dist.overlap key: e.g. a build from before the overlap, whose all-reduce
#   was MPI_Allreduce) in each repetition, as a third column
#
# The run: tests/bench/hps_lenet_bench.ini (HPS, lenet trunk with fc6 512
# wide: 576,896 trunk floats = 2.3 MB per all-reduce), 4 fashion-domains
# tasks, dist.task_shards = 1 (both ranks replicas of every task: equal work,
# so a wait is communication, not imbalance), heads 32 wide, batch 64 per
# task. From each run's timeline.json, over the timed steps (after the
# warm-up), per rank: the median of "trunk_allreduce" (the wait for the trunk
# all-reduce after the backward: all of it without overlap, the exposed rest
# with it) and of the step time; both ranks averaged. Per setting the medians
# over the runs, and
#   hidden = 1 - exposed wait with overlap / all-reduce wait without.
# Results: OUT/summary.md and OUT/runs.csv.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
OUT=${1:-/tmp/taskrel-overlap-$(date -u +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
BIN=${TASKREL_BIN:-$ROOT/build/taskrel}
[[ -x $BIN ]] || { echo "build first"; exit 1; }
SETTINGS=${TASKREL_OVERLAP_SETTINGS:-local none 1gbit 100mbit}
REPEAT=${TASKREL_OVERLAP_REPEAT:-5}
STEPS=${TASKREL_OVERLAP_STEPS:-20}
WARMUP=${TASKREL_OVERLAP_WARMUP:-5}
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
[[ -f $OUT/fd.h5 ]] || "$BIN" data fashion-domains --out "$OUT/fd.h5" --train-frac 0.9 >/dev/null
ARGS=(train -c "$ROOT/tests/bench/hps_lenet_bench.ini" --set "data.path=$OUT/fd.h5"
    --set data.tasks=4 --set dist.task_shards=1 --set model.head_hidden=32
    --set train.batch_size=64 --set "train.max_steps=$((WARMUP + STEPS))"
    --set "train.eval_every=$((WARMUP + STEPS))")

cluster_up=0
if [[ $SETTINGS != local && $(id -u) -eq 0 ]]; then
    source "$ROOT/tests/e2e/cluster.bash"
    trap 'cluster_stop' EXIT
    if cluster_start "$OUT/cluster" 2; then cluster_up=1; else echo "cluster: $CLUSTER_WHY"; fi
fi

launch() { # SETTING RUNDIR ARGS...
    local setting=$1 dir=$2
    shift 2
    if [[ $setting == local ]]; then
        local extra=()
        [[ $(id -u) -eq 0 ]] && extra+=(--allow-run-as-root)
        mpirun -np 2 --oversubscribe --bind-to none "${extra[@]}" \
            --mca btl_vader_single_copy_mechanism none -x OPENBLAS_NUM_THREADS=1 \
            "$BIN" "$@" --run-dir "$dir"
    else
        cluster_run srun --nodes=2 --ntasks=2 --ntasks-per-node=1 --mpi=pmix --time=10 \
            "$BIN" "$@" --run-dir "$dir"
    fi
}

echo "setting,rep,overlap,load1,ok" >"$OUT/runs.csv"
for setting in $SETTINGS; do
    if [[ $setting != local ]]; then
        ((cluster_up)) || { echo "== $setting: skipped (no cluster)"; continue; }
        if [[ $setting == none ]]; then cluster_shape off; else cluster_shape "$setting"; fi
    fi
    echo "== $setting (load $(cut -d' ' -f1-3 /proc/loadavg))"
    for ((k = 1; k <= REPEAT; k++)); do
        for ov in false true ${TASKREL_OVERLAP_BASE_BIN:+base}; do
            d=$OUT/$setting/r$k-$ov
            rm -rf "$d"
            mkdir -p "$OUT/$setting"
            load=$(cut -d' ' -f1 /proc/loadavg)
            ok=1
            if [[ $ov == base ]]; then
                BIN=$TASKREL_OVERLAP_BASE_BIN launch "$setting" "$d" "${ARGS[@]}" >"$d.log" 2>&1 || ok=0
            else
                launch "$setting" "$d" "${ARGS[@]}" --set "dist.overlap=$ov" >"$d.log" 2>&1 || ok=0
            fi
            echo "$setting,$k,$ov,$load,$ok" >>"$OUT/runs.csv"
            ((ok)) || echo "   run $d failed (see $d.log)"
        done
    done
done
[[ $cluster_up -eq 1 ]] && cluster_shape off

python3 "$ROOT/tests/bench/overlap_share.py" --warmup "$WARMUP" "$OUT" $SETTINGS | tee "$OUT/summary.md"
