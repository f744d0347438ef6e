#!/usr/bin/env bash
# MRAN (each attention type) vs MMoE vs HPS with the same budget, 3 seeds,
# on synthetic-mmoe (a high- and a low-correlation task pair) and multifashion.
# Not run in CI. Usage:
#   tests/bench/bench_mran.sh [OUT_DIR]        (default /tmp/taskrel-bench-mran)
# Environment: TASKREL_BIN (default build/taskrel), JOBS (parallel runs, 2),
# SEEDS ("1 2 3"), MODELS (default all six), SETS ("high low mf").
# Prints a markdown table (mean ± sample std over seeds of the mean test metric
# of the model selected on validation) and writes it to OUT_DIR/results.md.
#
# Budget (the same for every model of a set; 1 rank, OPENBLAS_NUM_THREADS=1):
#   synthetic-mmoe: `taskrel data synthetic-mmoe --n-train 5000 --n-val 1000
#     --n-test 2000` (T = 4, d = 100, seed 1); high = tasks task0,task1
#     (generator correlation 0.9), low = task0,task2 (0.1). mlp trunk 128,64,
#     towers 16 wide, AdamW lr 1e-3, no weight decay, batch 128, 8 epochs
#     (320 steps), validation every epoch. Metric: test MSE (lower is better).
#   multifashion: `taskrel data multifashion --n-train 5000 --n-val 1000
#     --n-test 2000` (2 tasks); lenet trunk with fc6 = 64, towers 64 wide,
#     SGD lr 0.03 momentum 0.9, wd 5e-4, cosine, batch 128, 4 epochs (160
#     steps). Metric: test accuracy.
#   HPS's head is fc-ReLU-fc (one hidden layer); the MRAN and MMoE towers have
#   two hidden layers of the same width (docs/algorithms.md, "MRAN and MMoE"). MMoE: 4 experts of
#   width 32. MRAN: all modules, embed 8, defaults of docs/config.md.
#   mran-none is MRAN with mran.modules empty (same towers and batch norms, no
#   attention): the control that separates the attention from the rest.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BIN=${TASKREL_BIN:-$ROOT/build/taskrel}
OUT=${1:-/tmp/taskrel-bench-mran}
JOBS=${JOBS:-2}
SEEDS=${SEEDS:-"1 2 3"}
MODELS=${MODELS:-"hps mmoe mran-none mran-dot mran-general mran-concat mran-multihead"}
SETS=${SETS:-"high low mf"}
export OPENBLAS_NUM_THREADS=1
mkdir -p "$OUT/runs"
SM=$OUT/synthetic-mmoe.h5 MF=$OUT/multifashion.h5
[[ -f $SM ]] || "$BIN" data synthetic-mmoe --out "$SM" --n-train 5000 --n-val 1000 --n-test 2000
[[ -f $MF ]] || "$BIN" data multifashion --out "$MF" --n-train 5000 --n-val 1000 --n-test 2000

model_args() { # MODEL -> --set arguments
    case $1 in
    hps) echo "--set model.kind=hps" ;;
    mmoe) echo "--set model.kind=mmoe --set mmoe.experts=4 --set mmoe.expert_hidden=32" ;;
    mran-none) echo "--set model.kind=mran --set mran.modules=" ;; # MRAN without attention: control
    mran-*) echo "--set model.kind=mran --set mran.attention=${1#mran-}" ;;
    esac
}

set_args() { # SET -> config and --set arguments
    case $1 in
    high | low)
        local tasks=task0,task1
        [[ $1 == low ]] && tasks=task0,task2
        echo "-c $ROOT/launch/configs/synthetic-mmoe-hps.ini --set data.path=$SM" \
            "--set data.tasks=$tasks --set train.epochs=8 --set model.head_hidden=16" \
            "--set model.mlp_hidden=128,64 --set model.head_init=shared"
        ;;
    mf)
        echo "-c $ROOT/launch/configs/multifashion-hps.ini --set data.path=$MF" \
            "--set train.epochs=4 --set model.lenet_fc=64 --set model.head_hidden=64"
        ;;
    esac
}

jobs_file=$OUT/jobs.txt
: >"$jobs_file"
for set in $SETS; do
    for model in $MODELS; do
        for seed in $SEEDS; do
            run=$OUT/runs/$set-$model-s$seed
            [[ -f $run/metrics.jsonl ]] && grep -q '"final":true' "$run/metrics.jsonl" && continue
            echo "$BIN train $(set_args "$set") $(model_args "$model") --set train.seed=$seed" \
                "--set run.progress=off --run-dir $run --overwrite > $run.log 2>&1" >>"$jobs_file"
        done
    done
done
echo "bench_mran: $(wc -l <"$jobs_file") run(s) to do, $JOBS at a time" >&2
t0=$(date +%s)
xargs -P "$JOBS" -I{} -d '\n' bash -c '{} || echo "FAILED: {}" >&2' <"$jobs_file"
echo "bench_mran: runs took $(($(date +%s) - t0)) s" >&2

python3 - "$OUT" "$SETS" "$MODELS" "$SEEDS" <<'EOF' | tee "$OUT/results.md"
import json, math, os, statistics as stt, sys
out, sets, models, seeds = sys.argv[1], *[a.split() for a in sys.argv[2:5]]
names = {"high": "synthetic-mmoe, high correlation (task0,task1) — test MSE ↓",
         "low": "synthetic-mmoe, low correlation (task0,task2) — test MSE ↓",
         "mf": "multifashion (2 tasks) — test accuracy ↑"}
print("| model | " + " | ".join(names[s] for s in sets) + " | train s/run (" + sets[0] + ") |")
print("|---" * (len(sets) + 2) + "|")
for m in models:
    cells, secs = [], []
    for s in sets:
        vals = []
        for seed in seeds:
            p = os.path.join(out, "runs", f"{s}-{m}-s{seed}", "metrics.jsonl")
            try:
                final = json.loads(open(p).read().splitlines()[-1])
            except (OSError, ValueError, IndexError):
                continue
            if final.get("final"):
                vals.append(final["test_mean"])
                if s == sets[0]:
                    secs.append(final["train_seconds"])
        if len(vals) >= 2:
            cells.append(f"{stt.mean(vals):.4f} ± {stt.stdev(vals):.4f} (n={len(vals)})")
        elif vals:
            cells.append(f"{vals[0]:.4f} (n=1)")
        else:
            cells.append("—")
    sec = f"{stt.mean(secs):.1f}" if secs else "—"
    print(f"| {m} | " + " | ".join(cells) + f" | {sec} |")
EOF
