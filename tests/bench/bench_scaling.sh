#!/usr/bin/env bash
# tests/bench/bench_scaling.sh — multi-rank scaling of taskrel's HPS training
# throughput on this machine (one BLAS thread per rank; not run in CI).
#
# Usage: tests/bench/bench_scaling.sh [--ranks LIST] [--shards LIST]
#            [--scaling weak|strong] [--steps N] [--warmup N] [--repeat N]
#            [--wait-idle S] [--keep]
#   --ranks LIST     rank counts P, comma separated (1,2); P = 1 is always run,
#                    it is the baseline of every efficiency
#   --shards LIST    dist.task_shards values S to run each P > 1 with, comma
#                    separated (0,1): 0 = taskrel's default grid (the largest
#                    divisor of P that is <= 4 tasks), 1 = pure data parallel
#                    (R = P replicas), N = forced; a P that is not a multiple
#                    of N is skipped
#   --scaling M      weak (default): per-rank work fixed, train.batch_size =
#                    128 * P (examples per task per step, summed over ranks);
#                    strong: train.batch_size = 128 for every P
#   --steps N        timed training steps per run (50)
#   --warmup N       untimed steps before them (10)
#   --repeat N       runs per configuration; the median run by throughput is
#                    used (the lower middle one for even N) (1)
#   --wait-idle S    before each run, wait up to S seconds for the machine to
#                    be idle (/proc/pressure/cpu "some" avg10 < 2 %) (0: no wait)
#   --keep           keep the temporary directory (dataset, run dirs, logs)
# Environment: TASKREL_BUILD_DIR (build), TASKREL_BENCH_OUT (tests/bench/out),
#   TASKREL_MPIRUN_ARGS (extra mpirun arguments, passed to launch/local.sh);
#   OPENBLAS_CORETYPE is passed through (the report prints the OpenBLAS core
#   in use; unset it to let OpenBLAS detect the CPU).
#
# Model and step: tests/bench/hps_lenet_bench.ini on the first 4
# fashion-domains tasks (the step of bench_hps.sh). Per rank, one step handles
# (4 / S) tasks x (batch_size / R) examples = 4 * batch_size / P examples
# whatever the grid, so batch_size = 128 * P keeps the per-rank work at the
# 1-rank step's 512 examples (weak scaling). With batch_size = 128, the global
# step stays at 512 examples and is split over P ranks (strong scaling).
# Throughput = 4 * batch_size * timed steps / (difference of the cumulative
# train_seconds between the validation at the end of the warm-up and the last
# validation) from rank 0's metrics.jsonl; efficiency = throughput(P) /
# (P * throughput(1)); comm share = difference of phases_s.comm / difference
# of train_seconds over the same steps. Also printed: rank 0's median step
# time from the run's timeline.json (robust to a few slow steps) and "cpu
# wait", the share of the run's wall time during which some task on the
# machine waited for a CPU (Linux PSI): well above 0, other load disturbed the
# run and its numbers are low. Runs under launch/local.sh (mpirun,
# OPENBLAS_NUM_THREADS=1 per rank). Results: stdout and
# $TASKREL_BENCH_OUT/bench_scaling-<time>.txt.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PY=/usr/bin/python3
TASKS=4
BATCH=128 # per task, per rank at P = 1

ranks_list=1,2 shards_list=0,1 scaling=weak steps=50 warmup=10 repeat=1 wait_idle=0 keep=0
usage() {
    awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"
}
die() {
    echo "bench_scaling: $*" >&2
    exit 2
}
need_int() { [[ $2 =~ ^[0-9]+$ ]] || die "$1 needs a non-negative integer, got '$2'"; }
need_list() { [[ $2 =~ ^[0-9]+(,[0-9]+)*$ ]] || die "$1 needs a comma-separated list of integers, got '$2'"; }
while (($#)); do
    case "$1" in
    --ranks)
        need_list "$1" "${2-}"
        ranks_list=$2
        shift
        ;;
    --shards)
        need_list "$1" "${2-}"
        shards_list=$2
        shift
        ;;
    --scaling)
        case "${2-}" in weak | strong) scaling=$2 ;; *) die "--scaling weak|strong" ;; esac
        shift
        ;;
    --steps)
        need_int "$1" "${2-}"
        steps=$2
        shift
        ;;
    --warmup)
        need_int "$1" "${2-}"
        warmup=$2
        shift
        ;;
    --repeat)
        need_int "$1" "${2-}"
        repeat=$2
        shift
        ;;
    --wait-idle)
        need_int "$1" "${2-}"
        wait_idle=$2
        shift
        ;;
    --keep) keep=1 ;;
    -h | --help)
        usage
        exit 0
        ;;
    *) die "unknown option '$1' (try --help)" ;;
    esac
    shift
done
((steps >= 1)) || die "--steps must be >= 1"
((warmup >= 1)) || die "--warmup must be >= 1 (the validation after it starts the timed window)"
((repeat >= 1)) || die "--repeat must be >= 1"

# Rank counts: 1 first (the baseline), then the others in the given order.
IFS=, read -r -a given_ranks <<<"$ranks_list"
ranks=(1)
for p in "${given_ranks[@]}"; do
    ((p >= 1)) || die "--ranks: a rank count must be >= 1"
    [[ " ${ranks[*]} " == *" $p "* ]] || ranks+=("$p")
done
IFS=, read -r -a shards <<<"$shards_list"
for s in "${shards[@]}"; do
    ((s <= TASKS)) || die "--shards: $s > $TASKS tasks"
done

BUILD_DIR=${TASKREL_BUILD_DIR:-build}
[[ $BUILD_DIR == /* ]] || BUILD_DIR="$ROOT/$BUILD_DIR"
export TASKREL_BUILD_DIR=$BUILD_DIR # for launch/setup.sh
OUT_DIR=${TASKREL_BENCH_OUT:-$ROOT/tests/bench/out}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/taskrel-scaling.XXXXXX")
if ((keep)); then
    echo "bench_scaling: keeping $TMP"
else
    trap 'rm -rf "$TMP"' EXIT
fi

ncores=$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc)
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1

# ---- prerequisites -------------------------------------------------------------
"$ROOT/launch/setup.sh" >"$TMP/setup.log" 2>&1 || {
    tail -n 40 "$TMP/setup.log" >&2
    echo "bench_scaling: launch/setup.sh failed (log above)" >&2
    exit 1
}
BIN="$BUILD_DIR/taskrel"
[[ -x $BIN ]] || {
    echo "bench_scaling: $BIN not built" >&2
    exit 1
}
[[ -x $PY ]] || PY=$(command -v python3)

cpu=$(lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -n 1)
openblas=$(dpkg-query -W -f='${Package} ${Version}\n' 'libopenblas0*' 2>/dev/null |
    awk '$2 != "" { printf "%s%s %s", sep, $1, $2; sep = ", " }')
mpi_ver=$(mpirun --version 2>/dev/null | head -n 1)
build_type=$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$BUILD_DIR/CMakeCache.txt")
blas_core=$(OPENBLAS_VERBOSE=2 "$BIN" --help 2>&1 | sed -n 's/^Core: //p' | head -n 1)
if [[ -n ${OPENBLAS_CORETYPE-} ]]; then
    blas_core="${blas_core:-?} (OPENBLAS_CORETYPE=$OPENBLAS_CORETYPE set in the environment)"
else
    blas_core="${blas_core:-?} (detected; OPENBLAS_CORETYPE not set)"
fi

echo "bench_scaling: building the fashion-domains dataset"
"$BIN" data fashion-domains --out "$TMP/fd.h5" --train-frac 0.9 >"$TMP/data.log" 2>&1 || {
    cat "$TMP/data.log" >&2
    echo "bench_scaling: taskrel data fashion-domains failed" >&2
    exit 1
}

BENCH_NAME=bench_scaling
# shellcheck source=tests/bench/lib.bash
source "$ROOT/tests/bench/lib.bash"

# One run: P ranks, task_shards S, per-task batch B. Prints
# "samples/s step_ms comm_share median_step_ms cpu_wait replicas shards" over
# the timed steps (median_step_ms: rank 0's timeline.json, n/a without it).
measure() {
    local p=$1 s=$2 b=$3 tag=$4
    local dir="$TMP/run-$tag" psi0 psi1 t0 t1
    wait_for_idle
    psi0=$(psi_some)
    t0=$(date +%s%N)
    if ! "$ROOT/launch/local.sh" -np "$p" "$BIN" train -c "$ROOT/tests/bench/hps_lenet_bench.ini" \
        --set "data.path=$TMP/fd.h5" --set data.tasks=$TASKS \
        --set "train.batch_size=$b" --set "train.max_steps=$((warmup + steps))" \
        --set "train.eval_every=$warmup" --set "dist.task_shards=$s" \
        --run-dir "$dir" >"$TMP/$tag.log" 2>&1; then
        tail -n 20 "$TMP/$tag.log" >&2
        echo "bench_scaling: run $tag failed (log above)" >&2
        return 1
    fi
    t1=$(date +%s%N)
    psi1=$(psi_some)
    "$PY" - "$dir" "$warmup" $((TASKS * b)) "$psi0" "$psi1" "$t0" "$t1" <<'PYEOF'
import json, os, statistics, sys
d, warmup, per_step = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
psi0, psi1, t0, t1 = sys.argv[4:8]
path = os.path.join(d, "metrics.jsonl")
rows = [json.loads(l) for l in open(path) if l.strip()]
final = next((r for r in rows if r.get("final")), {})
timed = [r for r in rows if "step" in r and "train_seconds" in r]
a = next((r for r in timed if r["step"] >= warmup), None)
b = timed[-1] if timed else None
if a is None or b["step"] <= a["step"] or b["train_seconds"] <= a["train_seconds"]:
    sys.exit(f"bench_scaling: no timed window in {path}")
n, dt = b["step"] - a["step"], b["train_seconds"] - a["train_seconds"]
comm = b["phases_s"]["comm"] - a["phases_s"]["comm"]
med = "n/a"
try:  # per-step time of rank 0 = sum of its non-eval phases; steps are 0-based
    ev = json.load(open(os.path.join(d, "timeline.json")))["traceEvents"]
    per = {}
    for e in ev:
        k = e.get("args", {}).get("step")
        if e.get("ph") == "X" and e.get("tid") == 0 and e["name"] != "eval" and k is not None \
                and a["step"] <= k < b["step"]:
            per[k] = per.get(k, 0.0) + e["dur"]
    if per:
        med = f"{statistics.median(per.values()) / 1000:.2f}"
except (OSError, ValueError, KeyError):
    pass
wait = "n/a"
if psi0 and psi1:
    wait = f"{(int(psi1) - int(psi0)) / ((int(t1) - int(t0)) / 1000):.4f}"
print(f"{per_step * n / dt:.1f} {1000 * dt / n:.2f} {comm / dt:.4f} {med} {wait} "
      f"{final.get('replicas', '?')} {final.get('shards', '?')}")
PYEOF
}

# Median over --repeat runs (by throughput).
measure_median() {
    local p=$1 s=$2 b=$3 tag=$4 i
    : >"$TMP/$tag.runs"
    for ((i = 1; i <= repeat; i++)); do
        measure "$p" "$s" "$b" "$tag-$i" >>"$TMP/$tag.runs" || return 1
    done
    # the median run's fields, then the lowest and highest samples/s
    sort -g -k1,1 "$TMP/$tag.runs" | awk -v n="$repeat" '
        NR == 1 { lo = $1 } NR == int((n + 1) / 2) { med = $0 } { hi = $1 }
        END { print med, lo, hi }'
}

batch_for() { # per-task batch_size for P ranks
    if [[ $scaling == weak ]]; then echo $((BATCH * $1)); else echo $BATCH; fi
}
grid_name() {
    case $1 in 0) echo default ;; 1) echo data-par ;; *) echo "S=$1" ;; esac
}

rows=()
echo "bench_scaling: P=1 baseline, $warmup warm-up + $steps timed steps, x$repeat"
read -r base_sps base_ms base_comm base_med base_wait base_r base_s lo hi < <(measure_median 1 0 $BATCH p1) ||
    exit 1
rows+=("baseline 1 ${base_r}x${base_s} $BATCH $base_sps $base_ms $base_comm $base_med $base_wait $lo $hi")
for s in "${shards[@]}"; do
    for p in "${ranks[@]}"; do
        ((p > 1)) || continue
        if ((s > 0 && p % s != 0)); then
            echo "bench_scaling: skipping P=$p with task_shards=$s (P is not a multiple of S)"
            continue
        fi
        ((p <= ncores)) || echo "bench_scaling: warning: P=$p > $ncores cores (oversubscribed)"
        b=$(batch_for "$p")
        echo "bench_scaling: P=$p grid $(grid_name "$s") batch_size=$b, $warmup warm-up + $steps timed steps, x$repeat"
        read -r sps ms comm med wait r sh lo hi < <(measure_median "$p" "$s" "$b" "p$p-s$s") || exit 1
        rows+=("$(grid_name "$s") $p ${r}x${sh} $b $sps $ms $comm $med $wait $lo $hi")
    done
done

# ---- report --------------------------------------------------------------------
mkdir -p "$OUT_DIR"
report="$OUT_DIR/bench_scaling-$(date +%Y%m%d-%H%M%S).txt"
{
    echo "bench_scaling $(date -u +%Y-%m-%dT%H:%M:%SZ)  host $(hostname)"
    echo "cpu: $cpu ($ncores cores visible)"
    echo "openblas: ${openblas:-not installed}   mpi: ${mpi_ver:-?}"
    echo "openblas core: $blas_core"
    echo "taskrel build: $build_type ($(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo no-git))"
    echo "step: T=$TASKS tasks, hps/lenet, sgd; $scaling scaling (batch_size = $([[ $scaling == weak ]] && echo "128*P" || echo 128) per task, global);" \
        "$warmup warm-up + $steps timed steps; median of $repeat run(s); 1 BLAS thread per rank"
    echo "samples/s, step ms: mean over the timed steps (train_seconds); eff = samples/s(P) / (P * samples/s(1));"
    echo "comm = phases_s.comm / train_seconds; med ms, eff(med): rank 0's median step (timeline.json);"
    echo "cpu wait = /proc/pressure/cpu 'some' time / wall time of the run (other load on the machine);"
    echo "range = lowest..highest samples/s of the $repeat run(s) (the other columns: the median run)"
    printf '%-9s %2s %4s %10s %10s %8s %6s %6s %8s %8s %8s  %s\n' \
        grid P RxS batch/task samples/s "step ms" eff comm "med ms" "eff(med)" "cpu wait" range
    for row in "${rows[@]}"; do
        read -r g p rs b sps ms comm med wait lo hi <<<"$row"
        awk -v g="$g" -v p="$p" -v rs="$rs" -v b="$b" -v sps="$sps" -v ms="$ms" -v comm="$comm" \
            -v med="$med" -v wait="$wait" -v bsps="$base_sps" -v bmed="$base_med" -v T=$TASKS \
            -v lo="$lo" -v hi="$hi" 'BEGIN {
            pct = "n/a"; effm = "n/a"; w = "n/a"
            if (med != "n/a" && bmed != "n/a")  # samples per step / median step, vs P x baseline
                effm = sprintf("%.1f%%", 100 * (T * b / med) / (p * T * 128 / bmed))
            if (wait != "n/a") w = sprintf("%.1f%%", 100 * wait)
            printf "%-9s %2d %4s %10d %10.1f %8.2f %5.1f%% %5.1f%% %8s %8s %8s  %.0f..%.0f\n",
                g, p, rs, b, sps, ms, 100 * sps / (p * bsps), 100 * comm, med, effm, w, lo, hi }'
    done
} | tee "$report"
echo "bench_scaling: report written to ${report#"$ROOT"/}"
