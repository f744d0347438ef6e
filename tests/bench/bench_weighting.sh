#!/usr/bin/env bash
# tests/bench/bench_weighting.sh — the cost of train.weighting (not run in CI).
#
# Step time of every train.weighting against equal: tests/bench/hps_lenet_bench.ini
# (HPS, lenet trunk) on the six fashion-domains tasks, 32 examples per task per
# step, SGD, on 1 and 2 ranks (one BLAS thread per rank); also pcgrad and equal
# with batch norm (every rank then runs the shared backward once per task).
# Steps 1-20 are warm-up; the step time is the difference of train_seconds
# between the validations at steps 20 and 60, over 40 steps. Runs alternate
# (every variant once, then again, --repeat times) and the median per variant
# is printed with its ratio to equal (same rank count and batch norm setting),
# and the bytes per step this rank sent into each collective (metrics.jsonl's
# "comm": trunk all-reduce, the weighting's reduce-scatter + Gram all-reduce +
# all-gather, features).
#
# Usage: tests/bench/bench_weighting.sh [--repeat N] [--wait-idle S] [--ranks "1 2"]
# Environment: TASKREL_BUILD_DIR (build), OPENBLAS_CORETYPE passed through.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BENCH_NAME=bench_weighting
source "$ROOT/tests/bench/lib.bash"
BUILD=${TASKREL_BUILD_DIR:-$ROOT/build}
BIN=$BUILD/taskrel
repeat=1
wait_idle=0
ranks="1 2"
while (($#)); do
    case "$1" in
    --repeat) repeat=$2; shift 2 ;;
    --wait-idle) wait_idle=$2; shift 2 ;;
    --ranks) ranks=$2; shift 2 ;;
    *) echo "bench_weighting: unknown option '$1'" >&2; exit 2 ;;
    esac
done
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
TMP=$(mktemp -d /tmp/taskrel-bench-weighting.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
cmake --build "$BUILD" --target taskrel_cli -j2 >/dev/null
"$BIN" data fashion-domains --out "$TMP/fd.h5" --train-frac 0.5 >/dev/null 2>&1

echo "# taskrel $(git -C "$ROOT" rev-parse --short HEAD), $(env -u OMP_NUM_THREADS nproc) cores," \
    "OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-auto}, $(date -u +%F)"
common=(-c "$ROOT/tests/bench/hps_lenet_bench.ini" --set data.path="$TMP/fd.h5"
    --set train.batch_size=32 --set train.max_steps=60 --set train.eval_every=20
    --set run.progress=off)
variants=("equal" "uncertainty" "dwa" "gradnorm" "mgda" "mgda train.rep_grad=true" "pcgrad"
    "cagrad" "equal model.batchnorm=true" "pcgrad model.batchnorm=true")
mpi=(mpirun --oversubscribe --bind-to none -x OPENBLAS_NUM_THREADS=1)
[[ $(id -u) -eq 0 ]] && mpi+=(--allow-run-as-root)
declare -A times
load0=$(cut -d" " -f1-3 /proc/loadavg)
for ((rep = 0; rep < repeat; rep++)); do
    for P in $ranks; do
        for v in "${variants[@]}"; do
            set -- $v
            sets=(--set train.weighting="$1")
            shift
            for kv in "$@"; do sets+=(--set "$kv"); done
            wait_for_idle
            dir=$TMP/run-$rep-$P-${v// /_}
            "${mpi[@]}" -np "$P" "$BIN" train "${common[@]}" "${sets[@]}" --run-dir "$dir" \
                >"$dir.log" 2>&1 || { echo "bench_weighting: $v on $P ranks failed" >&2; tail "$dir.log" >&2; exit 1; }
            t=$(python3 - "$dir/metrics.jsonl" <<'PY'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
ev = {e["step"]: e for e in lines if "val_mean" in e and not e.get("final")}
a, b = ev[20], ev[60]
ms = 1e3 * (b["train_seconds"] - a["train_seconds"]) / 40
comm = [e for e in lines if "comm" in e][-1]["comm"]
steps = 60
def per(k):
    return comm.get(k, {}).get("bytes", 0) // steps
print(f"{ms:.1f} {per('trunk_allreduce')} {per('weighting')} {per('features')}")
PY
)
            times["$P|$v"]+="$t;"
        done
    done
done
median() { tr ';' '\n' | awk 'NF' | sort -n | awk '{a[NR]=$0} END {print a[int((NR+1)/2)]}'; }
echo "# load average before/after: $load0 / $(cut -d" " -f1-3 /proc/loadavg)"
printf '\n%-34s %5s %9s %8s %12s %12s %10s\n' "weighting (6 tasks x 32, lenet)" "ranks" "step ms" \
    "x equal" "trunk B/st" "weight. B/st" "feat B/st"
for P in $ranks; do
    for v in "${variants[@]}"; do
        read -r ms trunk wbytes feat <<<"$(echo "${times[$P|$v]}" | median)"
        base="equal"
        [[ $v == *batchnorm* ]] && base="equal model.batchnorm=true"
        ref=$(echo "${times[$P|$base]}" | median | awk '{print $1}')
        printf '%-34s %5s %9s %8.2f %12s %12s %10s\n' "$v" "$P" "$ms" \
            "$(echo "$ms / $ref" | bc -l)" "$trunk" "$wbytes" "$feat"
    done
done
