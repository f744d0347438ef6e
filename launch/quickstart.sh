#!/usr/bin/env bash
# launch/quickstart.sh — from a fresh clone to a multi-task comparison.
#
# Installs what is missing and builds (launch/setup.sh), builds the
# fashion-domains dataset from Debian's Fashion-MNIST (six tasks, 10 % of each
# task's images labelled) if it is not there yet, and trains two models under
# mpirun on 2 ranks each: HPS (a shared lenet trunk, one head per task) and
# MRN (the same network with tensor-normal priors on the heads, whose task
# covariance is learned). Ends with one table (per task and mean: HPS, MRN
# and their difference, validation and test), MRN's learned task correlation
# of fc8 (the relation that carries the tasks' structure) and the path of its
# heatmap PNG. About 5 minutes of training on 2 cores.
#
# Usage: launch/quickstart.sh [--ranks N] [--set section.key=value ...]
#   --set applies to both runs.
# Environment: TASKREL_DATA_DIR (data), TASKREL_BUILD_DIR (build).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
ranks=2
extra=()
while (($#)); do
    case "$1" in
    --ranks)
        ranks=$2
        shift 2
        ;;
    --set)
        extra+=(--set "$2")
        shift 2
        ;;
    -h | --help)
        awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"
        exit 0
        ;;
    *)
        echo "quickstart: unknown option '$1' (try --help)" >&2
        exit 2
        ;;
    esac
done

"$ROOT/launch/setup.sh"
BIN="$ROOT/${TASKREL_BUILD_DIR:-build}/taskrel"
DATA_DIR=${TASKREL_DATA_DIR:-$ROOT/data}
DATA="$DATA_DIR/fashion-domains.h5"
mkdir -p "$DATA_DIR"
if [[ ! -f $DATA ]]; then
    echo "quickstart: building $DATA from Debian's Fashion-MNIST"
    "$BIN" data fashion-domains --out "$DATA.tmp" --train-frac 0.10 --seed 1
    mv "$DATA.tmp" "$DATA"
fi

RUN_DIR="$ROOT/runs/quickstart-$(date -u +%Y%m%d-%H%M%S)"
for kind in hps mrn; do
    echo "quickstart: training ${kind^^} on $ranks rank(s); run directory $RUN_DIR/$kind"
    "$ROOT/launch/local.sh" -np "$ranks" "$BIN" train -c "launch/configs/fashion-$kind.ini" \
        --set data.path="$DATA" --run-dir "$RUN_DIR/$kind" "${extra[@]}"
    [[ -f $RUN_DIR/$kind/model.h5 ]] || {
        echo "quickstart: the $kind run did not finish (see above)" >&2
        exit 1
    }
done

echo
echo "quickstart: HPS against MRN, accuracy per task (model selected on validation)"
python3 "$ROOT/launch/compare.py" "$RUN_DIR/hps" "$RUN_DIR/mrn" --names HPS,MRN
echo
echo "quickstart: MRN's learned task correlation of fc8 (orig, noise and blur share a label map;"
echo "the three *_perm tasks each permute the labels their own way)"
"$BIN" inspect "$RUN_DIR/mrn" | awk '/\[mrn\.fc8\.task_corr,/ {p = 1} p && /^$/ {exit} p'
"$BIN" plot relations "$RUN_DIR/mrn" --name mrn.fc8.task_corr -o "$RUN_DIR/mrn-fc8-task-corr.png" >/dev/null
echo "quickstart: heatmap: $RUN_DIR/mrn-fc8-task-corr.png (every relation: taskrel plot relations $RUN_DIR/mrn -o FILE.png)"
