#!/usr/bin/env bash
# tests/bench/bench_mrn.sh — the cost of MRN (not run in CI).
#
# 1. Step time of MRN over HPS: tests/bench/hps_lenet_bench.ini on the six
#    fashion-domains tasks, 32 examples per task per step (the batch of
#    launch/configs/fashion-mrn.ini), 1 rank, one BLAS thread, SGD; MRN with
#    the default [mrn] keys (fc7 and fc8, all three modes, update every 50
#    steps, exact proximal step every step in float32, shrink 1: the task
#    mixing of the scaled-identity path), and the
#    variants mrn.prox_precision=double (the same step in double),
#    mrn.prox_every=10 and mrn.prior_step=gradient. Steps 1-50 are warm-up;
#    the mean step time is the difference of train_seconds between the
#    validations at steps 50 and 150 over 100 steps, so it includes two
#    covariance updates (steps 100 and 150). Runs are interleaved
#    (hps, mrn, variants; --repeat times) and the median per model is printed.
# 2. One covariance update and one proximal step of an fc7-like layer
#    (D1 = 512, 1024, 2048; D2 = 256; T = 6) on 1 and 2 ranks
#    (tests/bench/bench_mrn_update.c; ScaLAPACK on 2 ranks for n > 256).
#
# Usage: tests/bench/bench_mrn.sh [--repeat N] [--wait-idle S] [--steps-only] [--quick]
#          [--baseline BIN]
#   --steps-only: part 1 only (no covariance-update micro-benchmark)
#   --quick: part 1 with HPS, MRN and MRN with mrn.prox_precision=double only
#   --baseline BIN: also run MRN with the defaults with another taskrel binary
#     (e.g. a build of an older commit), interleaved with the others
# Environment: TASKREL_BUILD_DIR (build), OPENBLAS_CORETYPE passed through.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BENCH_NAME=bench_mrn
source "$ROOT/tests/bench/lib.bash"
BUILD=${TASKREL_BUILD_DIR:-$ROOT/build}
BIN=$BUILD/taskrel
repeat=1
wait_idle=0
steps_only=0
quick=0
baseline=
while (($#)); do
    case "$1" in
    --repeat) repeat=$2; shift 2 ;;
    --wait-idle) wait_idle=$2; shift 2 ;;
    --steps-only) steps_only=1; shift ;;
    --quick) quick=1; shift ;;
    --baseline) baseline=$2; shift 2 ;;
    *) echo "bench_mrn: unknown option '$1'" >&2; exit 2 ;;
    esac
done
export OPENBLAS_NUM_THREADS=1
TMP=$(mktemp -d /tmp/taskrel-bench-mrn.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
cmake --build "$BUILD" --target taskrel_cli bench_mrn_update -j2 >/dev/null
"$BIN" data fashion-domains --out "$TMP/fd.h5" --train-frac 0.5 >/dev/null 2>&1

echo "# taskrel $(git -C "$ROOT" rev-parse --short HEAD), $(nproc --all) cores," \
    "OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-auto}, $(date -u +%F)"
common=(-c "$ROOT/tests/bench/hps_lenet_bench.ini" --set data.path="$TMP/fd.h5"
    --set train.batch_size=32 --set train.max_steps=150 --set train.eval_every=50
    --set run.progress=off)
declare -A times
load0=$(cut -d" " -f1-3 /proc/loadavg)
variants=("hps" "mrn" "mrn mrn.prox_precision=double" "mrn mrn.prox_every=10" "mrn mrn.prior_step=gradient mrn.lambda=0.05")
[[ $quick == 1 ]] && variants=("hps" "mrn" "mrn mrn.prox_precision=double")
[[ -n $baseline ]] && variants+=("baseline mrn")
for ((rep = 0; rep < repeat; rep++)); do
    for v in "${variants[@]}"; do
        set -- $v
        bin=$BIN
        if [[ $1 == baseline ]]; then
            bin=$baseline
            shift
        fi
        kind=$1
        shift
        sets=(--set model.kind="$kind")
        for kv in "$@"; do sets+=(--set "$kv"); done
        wait_for_idle
        dir=$TMP/run-$rep-${v// /_}
        "$bin" train "${common[@]}" "${sets[@]}" --run-dir "$dir" >/dev/null 2>&1
        t=$(python3 - "$dir" <<'PY'
import json, statistics, sys
d = sys.argv[1]
ev = [json.loads(l) for l in open(d + "/metrics.jsonl") if '"val_mean"' in l and '"final"' not in l]
by = {e["step"]: e for e in ev}
a, b = by[50], by[150]
ms = 1e3 * (b["train_seconds"] - a["train_seconds"]) / 100
mrn = 1e3 * (b["phases_s"]["mrn"] - a["phases_s"]["mrn"]) / 100
# median step: from the start of one step's first event to the next step's, steps 51-150
start = {}
for e in json.load(open(d + "/timeline.json"))["traceEvents"]:
    s = e.get("args", {}).get("step")
    if e.get("ph") == "X" and s is not None and e["name"] != "eval":
        start[s] = min(start.get(s, e["ts"]), e["ts"])
med = statistics.median(1e-3 * (start[s + 1] - start[s]) for s in range(50, 150) if s + 1 in start)
print(f"{ms:.2f} {mrn:.2f} {med:.2f}")
PY
)
        echo "# run $rep, $v: mean step $(cut -d' ' -f1 <<<"$t") ms, mrn $(cut -d' ' -f2 <<<"$t") ms," \
            "median step $(cut -d' ' -f3 <<<"$t") ms, load $(cut -d' ' -f1 /proc/loadavg)"
        times["$v"]+="$t;"
    done
done
echo "# load average before/after: $load0 / $(cut -d" " -f1-3 /proc/loadavg)"
for v in "${variants[@]}"; do echo "$v|${times[$v]}"; done >"$TMP/times.txt"
python3 - "$TMP/times.txt" <<'PY'
import statistics, sys
rows = [l.rstrip("\n").split("|") for l in open(sys.argv[1])]
med = {v: [statistics.median(float(r.split()[i]) for r in t.split(";") if r) for i in range(3)]
       for v, t in rows}
hps = med["hps"]
head = ("model (1 rank, 6 tasks x 32, lenet)", "step ms", "mrn ms", "x HPS", "med step", "x HPS")
print("\n%-40s %9s %8s %7s %9s %7s" % head)
for v, _ in rows:
    ms, mrn, st = med[v]
    print("%-40s %9.2f %8.2f %7.3f %9.2f %7.3f" % (v, ms, mrn, ms / hps[0], st, st / hps[2]))
print("(medians over the runs of: the mean step over steps 51-150, covariance updates included;"
      " the MRN phase; the median step from timeline.json)")
PY

[[ $steps_only == 1 ]] && exit 0
echo
for P in 1 2; do
    wait_for_idle
    mpirun -np "$P" --oversubscribe --bind-to none $([[ $(id -u) -eq 0 ]] && echo --allow-run-as-root) \
        -x OPENBLAS_NUM_THREADS=1 "$BUILD/tests/bench_mrn_update" 5
done
