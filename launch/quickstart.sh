#!/usr/bin/env bash
# launch/quickstart.sh — from a fresh clone to a trained multi-task model.
#
# Installs what is missing and builds (launch/setup.sh), builds the
# fashion-domains dataset from Debian's Fashion-MNIST (six tasks, 10 % of each
# task's images labelled) if it is not there yet, and trains MRN (a shared lenet
# trunk, one head per task, tensor-normal priors on the heads whose task
# covariance is learned) under mpirun on 2 ranks. Prints a progress line while
# training; at the end the per-task table, the learned task correlation
# matrices and the path of their heatmap PNG.
#
# Usage: launch/quickstart.sh [--ranks N] [--set section.key=value ...]
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
echo "quickstart: training MRN on $ranks rank(s); run directory $RUN_DIR"
"$ROOT/launch/local.sh" -np "$ranks" "$BIN" train -c launch/configs/fashion-mrn.ini \
    --set data.path="$DATA" --run-dir "$RUN_DIR" "${extra[@]}"
"$BIN" plot relations "$RUN_DIR" -o "$RUN_DIR/relations.png" >/dev/null
echo "quickstart: task correlation heatmaps: $RUN_DIR/relations.png"
