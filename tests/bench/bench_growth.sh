#!/usr/bin/env bash
# tests/bench/bench_growth.sh — how the cost of HPS and MRN grows with the
# number of tasks T and the width D1 of the prior layer's input (not run in CI).
#
# For each T in --tasks, D1 in --widths, model in hps/mrn and P in --ranks:
# a synthetic-tn data set with T tasks (dim 16), an mlp trunk whose last
# hidden layer has D1 units (so fc7 is D1 x 256 per task, fc8 256 x 1), 32
# examples per task per step, SGD; MRN with its defaults (fc7 + fc8, all
# modes, exact prox every step) but mrn.update_every = --update (10). The
# first --update steps are warm-up; the next 2 x --update steps are timed
# (two covariance updates inside). Prints per run: step time per task
# (covariance updates excluded, and included: amortised at the --update
# interval), one covariance update (s), collective bytes per step (rank 0, all
# kinds) and the peak resident memory of rank 0; then the medians over the
# repetitions with MRN's ratio to HPS, and least-squares exponents of the
# median step-per-task time and update time in T and D1.
#
# Usage: tests/bench/bench_growth.sh [--tasks 6,24,96] [--widths 256,1024,4096]
#          [--ranks 1,2] [--update 10] [--max-cells N] [--repeat N] [--baseline BIN]
#   --max-cells N  skip combinations with T*D1*256 > N fc7 weights (default
#                  26e6: about 4 GB per rank with MRN's double copies)
#   --repeat N     N alternated repetitions of each (T, D1, P): hps, mrn, ...
#   --baseline BIN also run MRN with another taskrel binary (model "mrn0"),
#                  e.g. a build of an older commit, alternated with the others
# Environment: TASKREL_BUILD_DIR (build), OPENBLAS_CORETYPE passed through.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BENCH_NAME=bench_growth
wait_idle=0
source "$ROOT/tests/bench/lib.bash"
BUILD=${TASKREL_BUILD_DIR:-$ROOT/build}
BIN=$BUILD/taskrel
tasks=6,24,96 widths=256,1024,4096 ranks=1,2 update=10 max_cells=26000000 repeat=1 baseline=
while (($#)); do
    case "$1" in
    --tasks) tasks=$2; shift 2 ;;
    --widths) widths=$2; shift 2 ;;
    --ranks) ranks=$2; shift 2 ;;
    --update) update=$2; shift 2 ;;
    --max-cells) max_cells=$2; shift 2 ;;
    --repeat) repeat=$2; shift 2 ;;
    --baseline) baseline=$2; shift 2 ;;
    *) echo "bench_growth: unknown option '$1'" >&2; exit 2 ;;
    esac
done
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
[[ $(id -u) -eq 0 ]] && export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
TMP=$(mktemp -d /tmp/taskrel-bench-growth.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
echo "# taskrel $(git -C "$ROOT" rev-parse --short HEAD), $(nproc --all) cores," \
    "OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-auto}, $(date -u +%FT%TZ), load $(cut -d' ' -f1-3 /proc/loadavg)"
models=(hps mrn)
[[ -n $baseline ]] && models+=(mrn0)
printf '%-5s %5s %5s %2s %3s %12s %12s %10s %12s %9s %s\n' model T D1 P rep "ms/step/task" "incl. upd." \
    "update s" "bytes/step" "peak MB" load
results=$TMP/results.txt
for T in ${tasks//,/ }; do
    "$BIN" data synthetic-tn --out "$TMP/tn$T.h5" --tasks "$T" --n-train 400 --n-val 32 \
        --n-test 32 >/dev/null 2>&1
    for D1 in ${widths//,/ }; do
        if ((T * D1 * 256 > max_cells)); then
            echo "# skipped T=$T D1=$D1 (T*D1*256 > --max-cells $max_cells)"
            continue
        fi
        for P in ${ranks//,/ }; do
            for ((rep = 1; rep <= repeat; rep++)); do
                for model in "${models[@]}"; do
                    dir=$TMP/run-$model-$T-$D1-$P-$rep
                    bin=$BIN kind=$model
                    [[ $model == mrn0 ]] && bin=$baseline kind=mrn
                    steps=$((3 * update))
                    # peak resident memory of each rank (rank 0's is reported)
                    mpirun -np "$P" --oversubscribe --bind-to none -x OPENBLAS_NUM_THREADS=1 \
                        bash -c '/usr/bin/time -f %M -o "$0.rss.$OMPI_COMM_WORLD_RANK" "$@"' "$dir" \
                        "$bin" train --set data.path="$TMP/tn$T.h5" \
                        --set model.kind=$kind --set model.trunk=mlp --set model.mlp_hidden="$D1" \
                        --set model.head_hidden=256 --set train.batch_size=32 \
                        --set train.optimizer=sgd --set train.lr=0.001 --set train.max_steps=$steps \
                        --set train.epochs=1000000 \
                        --set train.eval_every="$update" --set mrn.update_every="$update" \
                        --set run.progress=off --run-dir "$dir" >"$dir.log" 2>&1 || {
                        echo "# $model T=$T D1=$D1 P=$P failed: $(tail -n 2 "$dir.log" | tr '\n' ' ')"
                        continue
                    }
                    python3 - "$dir/metrics.jsonl" "$model" "$T" "$D1" "$P" "$rep" "$update" "$(tail -n 1 "$dir.rss.0")" "$(cut -d' ' -f1 /proc/loadavg)" <<'PY' | tee -a "$results"
import json, sys
path, model, T, D1, P, rep, upd, rss, load = sys.argv[1:]
T, D1, P, rep, upd = int(T), int(D1), int(P), int(rep), int(upd)
ev = [json.loads(l) for l in open(path) if '"final"' not in l and '"val_mean"' in l]
by = {e["step"]: e for e in ev if "step" in e}
a, b = by[upd], by[3 * upd]
n = 2 * upd
us = lambda e: e.get("mrn", {}).get("update_s", 0.0)
upd_s = (us(b) - us(a)) / 2
total = b["train_seconds"] - a["train_seconds"]
ms = 1e3 * (total - 2 * upd_s) / n / T
ms_incl = 1e3 * total / n / T
byts = sum(b["comm"][k]["bytes"] - a["comm"][k]["bytes"] for k in b["comm"]) / n
print(f"{model:<5} {T:5d} {D1:5d} {P:2d} {rep:3d} {ms:12.3f} {ms_incl:12.3f} {upd_s:10.3f} {byts:12.0f} {int(rss)/1024:9.0f} {load}")
PY
                done
            done
        done
    done
done
python3 - "$results" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
med = {}
for r in rows:
    med.setdefault((r[0], r[1], r[2], r[3]), []).append((float(r[5]), float(r[6]), float(r[7])))
print("\n# medians over the repetitions; x hps: the ratio of the step times including updates")
print(f"{'model':<5} {'T':>5} {'D1':>5} {'P':>2} {'n':>2} {'ms/step/task':>12} {'incl. upd.':>12} {'update s':>10} {'x hps':>7}")
out = open(sys.argv[1] + ".med", "w")
for (m, T, D1, P), v in med.items():
    ex, inc, up = (statistics.median(x[i] for x in v) for i in range(3))
    h = med.get(("hps", T, D1, P))
    ratio = f"{inc / statistics.median(x[1] for x in h):7.3f}" if h else "      -"
    print(f"{m:<5} {T:>5} {D1:>5} {P:>2} {len(v):2d} {ex:12.3f} {inc:12.3f} {up:10.3f} {ratio}")
    out.write(f"{m} {T} {D1} {P} {ex} {up}\n")
PY
python3 - "$results.med" <<'PY'
import math, sys
# model T D1 P ms/step/task update_s (medians)
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
def fit(sel, col):
    # log y = c + a log T + b log D1 by least squares (needs >= 3 points)
    pts = [(math.log(int(r[1])), math.log(int(r[2])), math.log(float(r[col]))) for r in sel if float(r[col]) > 0]
    if len(pts) < 3: return None
    import itertools
    n = len(pts); sx = [sum(p[i] for p in pts) for i in range(3)]
    m = [[0.0]*3 for _ in range(3)]; v = [0.0]*3
    for x1, x2, y in pts:
        row = (1.0, x1, x2)
        for i in range(3):
            v[i] += row[i] * y
            for j in range(3): m[i][j] += row[i] * row[j]
    # solve 3x3
    a = [m[i] + [v[i]] for i in range(3)]
    for i in range(3):
        p = max(range(i, 3), key=lambda k: abs(a[k][i])); a[i], a[p] = a[p], a[i]
        if abs(a[i][i]) < 1e-12: return None
        for k in range(3):
            if k != i:
                f = a[k][i] / a[i][i]
                a[k] = [x - f * y for x, y in zip(a[k], a[i])]
    return a[1][3] / a[1][1], a[2][3] / a[2][2]
print("\n# exponents (least squares on log time = c + a log T + b log D1)")
for model in sorted({r[0] for r in rows}):
    for P in sorted({r[3] for r in rows}):
        sel = [r for r in rows if r[0] == model and r[3] == P]
        s = fit(sel, 4)
        u = fit(sel, 5) if model != "hps" else None
        txt = f"step/task: T^{s[0]:.2f} D1^{s[1]:.2f}" if s else "step/task: too few points"
        if u: txt += f"   update: T^{u[0]:.2f} D1^{u[1]:.2f}"
        print(f"{model} P={P}: {txt}")
PY
