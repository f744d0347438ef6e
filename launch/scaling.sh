#!/usr/bin/env bash
# launch/scaling.sh — a weak- or strong-scaling sweep of `taskrel train`: one
# run per rank count, then scaling.csv, plots, a cost-model prediction and a
# markdown report (docs/scaling.md explains every column).
#
# Usage: launch/scaling.sh --mode weak|strong --ranks 1,2,4,8 -c run.ini
#            [--slurm] [--out DIR] [--steps N] [--warmup N] [--set k=v ...]
#            [--repeat N] [--wait-idle S] [--no-wait] [--collect-only]
#   --mode M       weak: train.batch_size = B0 * P / P0 (per-rank work fixed);
#                  strong: train.batch_size = B0 for every P (B0: the
#                  config's batch size, P0: the first rank count)
#   --ranks LIST   rank counts, comma separated; the first is the baseline of
#                  every efficiency
#   -c FILE        the training config (any model: the driver only runs it)
#   --slurm        one sbatch job per point (launch/slurm/scaling.sbatch), all
#                  named taskrel-scaling-<id> with --dependency=singleton so
#                  they run one at a time; then wait for them and collect
#   --out DIR      output directory (scaling/<mode>-<UTC time>)
#   --steps N      timed training steps per point (40)
#   --warmup N     untimed steps before them (5)
#   --set k=v      extra config overrides, passed to every run (repeatable)
#   --repeat N     runs per point; the run with the median step time is used,
#                  the range is reported (1)
#   --wait-idle S  local: before each point wait up to S s for the CPU
#                  pressure to fall below 2 % (0: do not wait) (0)
#   --no-wait      --slurm: submit and return; collect later with
#                  --collect-only --out DIR
#   --collect-only only (re)build scaling.csv, plots and report.md from DIR
# Environment: TASKREL_BIN (taskrel executable; default: build with
#   launch/setup.sh into TASKREL_BUILD_DIR, default build/), TASKREL_SBATCH_ARGS
#   (extra sbatch arguments, word-split), TASKREL_POINT_LAUNCHER (see
#   launch/scaling_point.sh), TASKREL_MPIRUN_ARGS (launch/local.sh).
# Before the points, `taskrel calibrate` measures MPI alpha/beta on 2 ranks
# (as a job of the same singleton chain with --slurm). If the config's
# data.path does not exist and is named after a dataset builder
# (fashion-domains.h5, ...), the dataset is built first with the builder's
# defaults (fashion-domains: --train-frac 0.10, as the quickstart).
# Output in DIR: sweep.json, calibration.json, points/pN/{run/,run.log,
# point.json} (points/pN.K/ for run K with --repeat), scaling.csv, prediction.csv, efficiency.png, phases.png,
# report.md. Exit code: 0, 1 if a point failed, 2 on bad usage.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PY=$(command -v python3 || true)

mode='' ranks_list='' config='' slurm=0 out='' steps=40 warmup=5 wait_idle=0 no_wait=0 repeat=1
collect_only=0
sets=()
usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"; }
die() {
    echo "scaling: $*" >&2
    exit 2
}
need_int() { [[ ${2-} =~ ^[0-9]+$ ]] || die "$1 needs a non-negative integer, got '${2-}'"; }
while (($#)); do
    case "$1" in
    --mode)
        case "${2-}" in weak | strong) mode=$2 ;; *) die "--mode needs weak or strong, got '${2-}'" ;; esac
        shift
        ;;
    --ranks)
        [[ ${2-} =~ ^[1-9][0-9]*(,[1-9][0-9]*)*$ ]] ||
            die "--ranks needs a comma-separated list of rank counts >= 1, got '${2-}'"
        ranks_list=$2
        shift
        ;;
    -c | --config)
        [[ -n ${2-} ]] || die "$1 needs a config file"
        config=$2
        shift
        ;;
    --slurm) slurm=1 ;;
    --out)
        [[ -n ${2-} ]] || die "--out needs a directory"
        out=$2
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
    --set)
        [[ ${2-} == *.*=* ]] || die "--set needs section.key=value, got '${2-}'"
        sets+=("$2")
        shift
        ;;
    --wait-idle)
        need_int "$1" "${2-}"
        wait_idle=$2
        shift
        ;;
    --repeat)
        need_int "$1" "${2-}"
        repeat=$2
        shift
        ;;
    --no-wait) no_wait=1 ;;
    --collect-only) collect_only=1 ;;
    -h | --help)
        usage
        exit 0
        ;;
    *) die "unknown option '$1' (try --help)" ;;
    esac
    shift
done
[[ -n $PY ]] || die "python3 is needed to collect the results (launch/setup.sh installs it)"

collect() {
    "$PY" "$ROOT/launch/scaling_collect.py" "$1"
}

if ((collect_only)); then
    [[ -n $out && -f $out/sweep.json ]] || die "--collect-only needs --out DIR of a sweep (DIR/sweep.json)"
    collect "$out"
    exit $?
fi
[[ -n $mode ]] || die "--mode weak|strong is required"
[[ -n $ranks_list ]] || die "--ranks LIST is required (e.g. 1,2,4)"
[[ -n $config ]] || die "-c CONFIG is required"
[[ -f $config ]] || die "config file $config does not exist"
((steps >= 1)) || die "--steps must be >= 1"
((warmup >= 1)) || die "--warmup must be >= 1 (the validation after it starts the timed window)"
((repeat >= 1)) || die "--repeat must be >= 1"
IFS=, read -r -a ranks <<<"$ranks_list"
declare -A seen=()
for p in "${ranks[@]}"; do
    [[ -z ${seen[$p]-} ]] || die "--ranks: $p is given twice"
    seen[$p]=1
done
if ((slurm)); then
    command -v sbatch >/dev/null || die "--slurm: sbatch not found (is slurm-client installed?)"
fi

# ---- the taskrel executable ---------------------------------------------------
BIN=${TASKREL_BIN:-}
if [[ -z $BIN ]]; then
    BUILD_DIR=${TASKREL_BUILD_DIR:-build}
    [[ $BUILD_DIR == /* ]] || BUILD_DIR="$ROOT/$BUILD_DIR"
    export TASKREL_BUILD_DIR=$BUILD_DIR
    echo "scaling: building taskrel (launch/setup.sh, log in ${BUILD_DIR}/setup-scaling.log)"
    mkdir -p "$BUILD_DIR"
    "$ROOT/launch/setup.sh" >"$BUILD_DIR/setup-scaling.log" 2>&1 || {
        tail -n 30 "$BUILD_DIR/setup-scaling.log" >&2
        echo "scaling: launch/setup.sh failed" >&2
        exit 1
    }
    BIN=$BUILD_DIR/taskrel
fi
[[ -x $BIN ]] || die "taskrel executable $BIN not found"
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")

# ---- the resolved config: batch size, data path --------------------------------
config=$(cd "$(dirname "$config")" && pwd)/$(basename "$config")
set_args=()
for s in "${sets[@]}"; do set_args+=(--set "$s"); done
resolved=$("$BIN" config -c "$config" "${set_args[@]}") || die "the config does not validate (message above)"
ini_get() { # ini_get SECTION KEY
    awk -v s="[$1]" -v k="$2" '
        /^\[/ { in_s = ($0 == s) } in_s && $1 == k && $2 == "=" { sub(/^[^=]*= */, ""); print; exit }' <<<"$resolved"
}
b0=$(ini_get train batch_size)
data=$(ini_get data path)
[[ $b0 =~ ^[0-9]+$ ]] || die "could not read train.batch_size from the resolved config"
[[ -n $data ]] || die "the config has no data.path"
if [[ ! -e $data ]]; then
    name=$(basename "$data" .h5)
    case $name in
    fashion-domains) bopts=(--train-frac 0.10 --seed 1) ;;
    multifashion | synthetic-tn | synthetic-mmoe) bopts=() ;;
    *) die "data.path $data does not exist (build it with taskrel data, see datasets/README.md)" ;;
    esac
    echo "scaling: $data does not exist; building it: taskrel data $name ${bopts[*]}"
    mkdir -p "$(dirname "$data")"
    if ! "$BIN" data "$name" --out "$data.tmp" "${bopts[@]}" || ! mv "$data.tmp" "$data"; then
        die "building $data failed"
    fi
fi

# ---- the sweep ------------------------------------------------------------------
[[ -n $out ]] || out="scaling/$mode-$(date -u +%Y%m%d-%H%M%S)"
mkdir -p "$out/points"
out=$(cd "$out" && pwd)
config_hash=$( (cat "$config" && printf '%s\n' "${sets[@]}") | sha256sum | cut -c1-12)
rev=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
[[ $rev == unknown ]] || git -C "$ROOT" diff --quiet HEAD -- 2>/dev/null || rev="$rev-dirty"
cpu=$(lscpu 2>/dev/null | sed -n 's/^Model name:[[:space:]]*//p' | head -n 1)
cores=$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc)
p0=${ranks[0]}
sweep_id=$(basename "$out" | tr -c 'A-Za-z0-9_.\n-' _)
"$PY" - "$out/sweep.json" <<PYEOF
import json, sys
json.dump({"mode": "$mode", "ranks": [int(p) for p in "$ranks_list".split(",")],
           "config": "$config", "sets": [s for s in """$(printf '%s\n' "${sets[@]}")""".split("\n") if s],
           "config_hash": "$config_hash", "git_rev": "$rev", "base_batch": $b0,
           "steps": $steps, "warmup": $warmup, "repeat": $repeat, "slurm": bool($slurm),
           "machine": {"host": "$(hostname)", "cpu": "$cpu", "cores": $cores},
           "bin": "$BIN", "sweep_id": "$sweep_id"}, open(sys.argv[1], "w"), indent=1)
PYEOF
cp "$config" "$out/config.ini"
if [[ $mode == weak ]]; then
    for p in "${ranks[@]}"; do
        ((p * b0 % p0 == 0)) || die "--mode weak: batch_size $b0 x $p / $p0 is not an integer"
    done
fi

batch_for() { # per-point train.batch_size
    if [[ $mode == weak ]]; then
        echo $(($1 * b0 / p0))
    else
        echo "$b0"
    fi
}

point_dir() { # point_dir P K
    if ((repeat == 1)); then echo "$out/points/p$1"; else echo "$out/points/p$1.$2"; fi
}

train_cmd() { # train_cmd P DIR: sets the array cmd
    local b
    b=$(batch_for "$1")
    cmd=("$BIN" train -c "$config" "${set_args[@]}" --set "train.batch_size=$b"
        --set "train.max_steps=$((warmup + steps))" --set "train.eval_every=$warmup"
        --set run.progress=off --run-dir "$2/run" --overwrite)
}

BENCH_NAME=scaling
# shellcheck source=tests/bench/lib.bash
source "$ROOT/tests/bench/lib.bash"

failed=0
if ((slurm)); then
    name="taskrel-scaling-$sweep_id"
    # shellcheck disable=SC2206
    extra=(${TASKREL_SBATCH_ARGS:-})
    submit() { # submit DIR NP COMMAND... -> job id
        mkdir -p "$1"
        sbatch --parsable --job-name="$name" --dependency=singleton --ntasks="$2" \
            --output="$1/slurm.out" --export="ALL,TASKREL_ROOT=$ROOT" "${extra[@]}" \
            "$ROOT/launch/slurm/scaling.sbatch" "$@" | cut -d';' -f1
    }
    jobs=()
    jobs+=("$(submit "$out/calibrate" 2 "$BIN" calibrate --out "$out/calibration.json")")
    for p in "${ranks[@]}"; do
        for ((k = 1; k <= repeat; k++)); do
            pd=$(point_dir "$p" "$k")
            train_cmd "$p" "$pd"
            jobs+=("$(submit "$pd" "$p" "${cmd[@]}")")
        done
    done
    echo "scaling: submitted ${#jobs[@]} jobs named $name (singleton chain): ${jobs[*]}"
    if ((no_wait)); then
        echo "scaling: collect when they are done: launch/scaling.sh --collect-only --out $out"
        exit 0
    fi
    while [[ -n $(squeue -h -j "$(
        IFS=,
        echo "${jobs[*]}"
    )" -o %i 2>/dev/null) ]]; do
        sleep 2
    done
else
    echo "scaling: calibrating MPI (taskrel calibrate on 2 ranks)"
    wait_for_idle
    "$ROOT/launch/scaling_point.sh" "$out/calibrate" 2 "$BIN" calibrate \
        --out "$out/calibration.json" || {
        tail -n 5 "$out/calibrate/run.log" >&2
        echo "scaling: calibration failed; the report will have no prediction" >&2
    }
    for p in "${ranks[@]}"; do
        ((p <= cores)) || echo "scaling: P=$p > $cores cores: oversubscribed (marked in scaling.csv)"
        for ((k = 1; k <= repeat; k++)); do
            echo "scaling: P=$p $mode, train.batch_size=$(batch_for "$p"), $warmup warm-up + $steps timed steps (run $k/$repeat)"
            wait_for_idle
            pd=$(point_dir "$p" "$k")
            train_cmd "$p" "$pd"
            if ! "$ROOT/launch/scaling_point.sh" "$pd" "$p" "${cmd[@]}"; then
                tail -n 5 "$pd/run.log" >&2
                echo "scaling: P=$p failed (log: $pd/run.log)" >&2
                failed=1
            fi
        done
    done
fi
collect "$out" || failed=1
exit $failed
