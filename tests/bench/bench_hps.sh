#!/usr/bin/env bash
# tests/bench/bench_hps.sh — HPS training throughput, taskrel vs PyTorch, one
# rank / one thread each, on this machine, in one invocation (not run in CI).
#
# Usage: tests/bench/bench_hps.sh [--steps N] [--warmup N] [--torch-mode M]
#                                 [--repeat N] [--wait-idle S]
#                                 [--taskrel-only | --torch-only] [--keep]
#   --steps N        timed training steps (50)
#   --warmup N       untimed steps before them (10)
#   --torch-mode M   PyTorch trunk: concat | per-task | both (both; the faster
#                    one is the reference)
#   --repeat N       run each side N times, alternating; each side's figure is
#                    the median run (the lower middle one for even N) (1)
#   --wait-idle S    before each run, wait up to S seconds for the machine to
#                    be idle (/proc/pressure/cpu "some" avg10 < 2 %) (0: no wait)
#   --taskrel-only, --torch-only   run one side only
#   --no-sgemm       skip the sgemm-rate runs (tests/bench/bench_sgemm.c)
#   --torch-isa ISA  cap oneDNN's instruction set for PyTorch's convolutions
#                    (ONEDNN_MAX_CPU_ISA: AVX2, AVX512_CORE, ...; or "match":
#                    the one of the OpenBLAS kernels in use, AVX2 for Haswell
#                    and Zen, AVX512_CORE for SkylakeX, Cooperlake and
#                    SapphireRapids, SSE41 for older ones). Default: oneDNN's
#                    own choice, the best the CPU has. The report prints the
#                    ISA oneDNN ran.
#
# With taskrel, each repetition also times this core's sgemm
# (build/tests/bench_sgemm) for a 2048^3 product and the step's own GEMM
# shapes, alternated with the training runs; the report gives the step's
# GFLOP/s (25.45 MFLOP per sample, multiply-adds counted as 2) as a fraction
# of the median 2048^3 rate.
#   --keep           keep the temporary directory (dataset, run dir, logs)
# Environment: TASKREL_BUILD_DIR (build), TASKREL_BENCH_OUT (tests/bench/out).
#   OPENBLAS_CORETYPE is passed through to both sides (it selects OpenBLAS's
#   kernels; the report prints the core in use): unset it to let OpenBLAS
#   detect the CPU.
#
# One step = forward + backward + SGD update (momentum 0.9, wd 5e-4) over 128
# samples for each of 4 tasks through the shared LeNet trunk and the 4 heads;
# throughput = 4 * 128 * steps / seconds of training steps (no evaluation, no
# warm-up). taskrel trains tests/bench/hps_lenet_bench.ini on the first 4
# fashion-domains tasks; PyTorch (tests/bench/torch_hps.py) on random inputs of
# the same shape. Each run's "cpu wait" is the share of its wall time in which
# some task on the machine waited for a CPU (Linux PSI): well above 0, other
# load disturbed it. Results: stdout and $TASKREL_BENCH_OUT/bench_hps-<time>.txt.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PY=/usr/bin/python3 # Debian's python3: the one python3-torch installs into
TASKS=4
BATCH=128

steps=50 warmup=10 torch_mode=both repeat=1 wait_idle=0 run_taskrel=1 run_torch=1 keep=0 run_sgemm=1
torch_isa=
usage() {
    awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"
}
need_int() {
    [[ $2 =~ ^[0-9]+$ ]] || {
        echo "bench: $1 needs a non-negative integer, got '$2'" >&2
        exit 2
    }
}
while (($#)); do
    case "$1" in
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
    --torch-mode)
        case "${2-}" in concat | per-task | both) torch_mode=$2 ;; *)
            echo "bench: --torch-mode concat|per-task|both" >&2
            exit 2
            ;;
        esac
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
    --taskrel-only) run_torch=0 ;;
    --torch-only) run_taskrel=0 ;;
    --keep) keep=1 ;;
    --no-sgemm) run_sgemm=0 ;;
    --torch-isa)
        [[ ${2-} =~ ^[A-Za-z0-9_]+$ ]] || {
            echo "bench: --torch-isa needs an ISA name (AVX2, AVX512_CORE, ...) or match" >&2
            exit 2
        }
        torch_isa=$2
        shift
        ;;
    -h | --help)
        usage
        exit 0
        ;;
    *)
        echo "bench: unknown option '$1' (try --help)" >&2
        exit 2
        ;;
    esac
    shift
done
((steps >= 1)) || {
    echo "bench: --steps must be >= 1" >&2
    exit 2
}
((repeat >= 1)) || {
    echo "bench: --repeat must be >= 1" >&2
    exit 2
}

BUILD_DIR=${TASKREL_BUILD_DIR:-build}
[[ $BUILD_DIR == /* ]] || BUILD_DIR="$ROOT/$BUILD_DIR"
OUT_DIR=${TASKREL_BENCH_OUT:-$ROOT/tests/bench/out}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/taskrel-bench.XXXXXX")
if ((keep)); then
    echo "bench: keeping $TMP"
else
    trap 'rm -rf "$TMP"' EXIT
fi

ncores=$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc) # nproc obeys OMP_*
# One thread everywhere: the comparison is per core.
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
if [[ $(id -u) -eq 0 ]]; then
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi

as_root() {
    if [[ $(id -u) -eq 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        echo "bench: need root (or sudo) to run: $*" >&2
        return 1
    fi
}

# ---- prerequisites -------------------------------------------------------------
if ((run_torch)) && ! "$PY" -c 'import torch' 2>/dev/null; then
    echo "bench: installing python3-torch (Debian package, large)"
    as_root apt-get -o DPkg::Lock::Timeout=300 update -q
    as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 \
        install -y -q --no-install-recommends python3-torch
fi
if ! [[ -x $PY ]]; then # --taskrel-only still parses metrics.jsonl with python3
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends python3
fi
if ((run_taskrel)); then
    # Installs what is missing and brings the build up to date (Release).
    "$ROOT/launch/setup.sh" >"$TMP/setup.log" 2>&1 || {
        tail -n 40 "$TMP/setup.log" >&2
        echo "bench: launch/setup.sh failed (log above)" >&2
        exit 1
    }
    BIN="$BUILD_DIR/taskrel"
    if ((run_sgemm)); then
        cmake --build "$BUILD_DIR" --target bench_sgemm >"$TMP/sgemm-build.log" 2>&1 || {
            tail -n 20 "$TMP/sgemm-build.log" >&2
            exit 1
        }
    fi
    [[ -x $BIN ]] || {
        echo "bench: $BIN not built" >&2
        exit 1
    }
fi

# ---- machine -------------------------------------------------------------------
cpu=$(lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -n 1)
# Machines of one VM type can come on different CPUs; both libraries choose
# their kernels by the CPU, so the report names it exactly.
cpu_id=$(lscpu | awk -F: '/^Vendor ID/ { gsub(/ /, "", $2); v = $2 } /^CPU family/ { gsub(/ /, "", $2); f = $2 }
    /^Model:/ { gsub(/ /, "", $2); m = $2 } /^Stepping/ { gsub(/ /, "", $2); s = $2 }
    END { printf "%s family %s model %s stepping %s", v, f, m, s }')
cpu_isa=$(grep -m1 -o -w -E 'avx512f|avx2' /proc/cpuinfo | sort -u | tr '\n' ' ')
openblas=$(dpkg-query -W -f='${Package} ${Version}\n' 'libopenblas0*' 2>/dev/null |
    awk '$2 != "" { printf "%s%s %s", sep, $1, $2; sep = ", " }')
blas_lib=$(readlink -f "/usr/lib/$(uname -m)-linux-gnu/libblas.so.3" 2>/dev/null || echo "?")
torch_ver=n/a
if ((run_torch)); then
    torch_ver=$("$PY" -c 'import torch; print(torch.__version__)')
fi
build_type=n/a
if ((run_taskrel)); then
    build_type=$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$BUILD_DIR/CMakeCache.txt")
fi
# The OpenBLAS kernel set in use (OPENBLAS_VERBOSE=2 prints it when the
# library loads): OPENBLAS_CORETYPE from the environment, or detected.
if ((run_taskrel)); then
    blas_core=$(OPENBLAS_VERBOSE=2 "$BIN" --help 2>&1 | sed -n 's/^Core: //p' | head -n 1)
else
    blas_core=$(OPENBLAS_VERBOSE=2 "$PY" -c 'import torch' 2>&1 | sed -n 's/^Core: //p' | head -n 1)
fi
core_name=${blas_core:-?}
if [[ -n ${OPENBLAS_CORETYPE-} ]]; then
    blas_core="${blas_core:-?} (OPENBLAS_CORETYPE=$OPENBLAS_CORETYPE set in the environment)"
else
    blas_core="${blas_core:-?} (detected; OPENBLAS_CORETYPE not set)"
fi

# oneDNN's instruction set for PyTorch: capped by --torch-isa, and the one it
# reports it ran (ONEDNN_VERBOSE's info line, from one small convolution).
if [[ $torch_isa == match ]]; then
    case ${core_name,,} in
    haswell | zen) torch_isa=AVX2 ;;
    skylakex | cooperlake | sapphirerapids) torch_isa=AVX512_CORE ;;
    *) torch_isa=SSE41 ;;
    esac
fi
torch_env=()
[[ -z $torch_isa ]] || torch_env=(ONEDNN_MAX_CPU_ISA="$torch_isa" DNNL_MAX_CPU_ISA="$torch_isa")
onednn_isa=n/a
if ((run_torch)); then
    onednn_isa=$(env "${torch_env[@]}" ONEDNN_VERBOSE=1 DNNL_VERBOSE=1 "$PY" -c \
        'import torch; torch.nn.functional.conv2d(torch.zeros(128, 1, 28, 28), torch.zeros(32, 1, 5, 5))' 2>&1 |
        sed -n 's/^onednn_verbose,info,cpu,isa://p; s/^dnnl_verbose,info,cpu,isa://p' | head -n 1)
    onednn_isa="${onednn_isa:-?}${torch_isa:+ (ONEDNN_MAX_CPU_ISA=$torch_isa)}"
fi

# ---- runs ----------------------------------------------------------------------
BENCH_NAME=bench
# shellcheck source=tests/bench/lib.bash
source "$ROOT/tests/bench/lib.bash"
# Share of the wall time between two (psi, ns) points with CPU pressure, e.g. "1.2%".
cpu_wait() {
    [[ -n $1 && -n $2 ]] || {
        echo n/a
        return
    }
    awk -v a="$1" -v b="$2" -v t0="$3" -v t1="$4" 'BEGIN { printf "%.1f%%", 100 * (b - a) / ((t1 - t0) / 1000) }'
}

# One taskrel run; appends "samples/s cpu_wait note" to $TMP/taskrel.runs.
taskrel_once() {
    local i=$1 run="$TMP/run-$1" psi0 psi1 t0 t1 out
    echo "bench: taskrel, $warmup warm-up + $steps timed steps (run $i/$repeat)"
    wait_for_idle
    psi0=$(psi_some)
    t0=$(date +%s%N)
    if ! "$BIN" train -c "$ROOT/tests/bench/hps_lenet_bench.ini" \
        --set "data.path=$TMP/fd.h5" --set data.tasks=$TASKS \
        --set train.batch_size=$BATCH --set "train.max_steps=$((warmup + steps))" \
        --set "train.eval_every=$eval_every" --run-dir "$run" \
        >"$TMP/taskrel-$i.log" 2>&1; then
        tail -n 40 "$TMP/taskrel-$i.log" >&2
        echo "bench: taskrel train failed (log above)" >&2
        return 1
    fi
    t1=$(date +%s%N)
    psi1=$(psi_some)
    # Prefer the difference of the cumulative training time between the first
    # line at/after the warm-up and the last line; else the last line's own
    # train_samples_per_s (whole run, warm-up included).
    out=$("$PY" - "$run/metrics.jsonl" "$warmup" $((TASKS * BATCH)) <<'PYEOF'
import json, sys
path, warmup, per_step = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rows = []
for line in open(path):
    line = line.strip()
    if line:
        rows.append(json.loads(line))
timed = [r for r in rows if "step" in r and "train_seconds" in r]
if warmup > 0 and timed:
    a = next((r for r in timed if r["step"] >= warmup), None)
    b = timed[-1]
    if a is not None and b["step"] > a["step"] and b["train_seconds"] > a["train_seconds"]:
        sps = per_step * (b["step"] - a["step"]) / (b["train_seconds"] - a["train_seconds"])
        print(f"{sps:.1f} steps_{a['step']}..{b['step']}_from_train_seconds")
        sys.exit(0)
if warmup == 0 and timed and timed[-1]["train_seconds"] > 0:
    b = timed[-1]
    print(f"{per_step * b['step'] / b['train_seconds']:.1f} steps_1..{b['step']}_from_train_seconds")
    sys.exit(0)
last = [r for r in rows if "train_samples_per_s" in r]
if not last:
    sys.exit(f"bench: no train_samples_per_s in {path}")
print(f"{float(last[-1]['train_samples_per_s']):.1f} last_line_train_samples_per_s")
PYEOF
    ) || {
        echo "bench: could not read throughput from $run/metrics.jsonl" >&2
        return 1
    }
    local sps note
    read -r sps note <<<"$out"
    echo "$sps $(cpu_wait "$psi0" "$psi1" "$t0" "$t1") $note" >>"$TMP/taskrel.runs"
}

# One PyTorch run in trunk mode $1; appends "samples/s cpu_wait" to $TMP/torch-$1.runs.
torch_once() {
    local m=$1 i=$2 psi0 psi1 t0 t1 sps
    echo "bench: pytorch (trunk $m), $warmup warm-up + $steps timed steps (run $i/$repeat)"
    wait_for_idle
    psi0=$(psi_some)
    t0=$(date +%s%N)
    env "${torch_env[@]}" "$PY" "$ROOT/tests/bench/torch_hps.py" --steps "$steps" --warmup "$warmup" \
        --tasks $TASKS --batch $BATCH --trunk-mode "$m" --json >"$TMP/torch-$m-$i.log" 2>&1 || {
        cat "$TMP/torch-$m-$i.log" >&2
        echo "bench: torch_hps.py failed" >&2
        return 1
    }
    t1=$(date +%s%N)
    psi1=$(psi_some)
    sps=$(tail -n 1 "$TMP/torch-$m-$i.log" |
        "$PY" -c 'import json, sys; print(json.load(sys.stdin)["train_samples_per_s"])')
    echo "$sps $(cpu_wait "$psi0" "$psi1" "$t0" "$t1")" >>"$TMP/torch-$m.runs"
}

# Median line of a .runs file by its first field (lower middle for an even count).
median_run() { sort -g -k1,1 "$1" | awk -v n="$(wc -l <"$1")" 'NR == int((n + 1) / 2)'; }
# "2829.1 (cpu wait 1.2%), ..." in run order.
list_runs() { awk '{ printf "%s%s (cpu wait %s)", sep, $1, $2; sep = ", " }' "$1"; }

modes=(concat per-task)
[[ $torch_mode == both ]] || modes=("$torch_mode")
if ((run_taskrel)); then
    echo "bench: building the fashion-domains dataset"
    "$BIN" data fashion-domains --out "$TMP/fd.h5" --train-frac 0.9 >"$TMP/data.log" 2>&1 || {
        cat "$TMP/data.log" >&2
        echo "bench: taskrel data fashion-domains failed" >&2
        exit 1
    }
    # A validation right after the warm-up gives a metrics line to measure from.
    eval_every=$((warmup > 0 ? warmup : steps + 1))
fi
for ((i = 1; i <= repeat; i++)); do
    if ((run_taskrel)); then taskrel_once "$i" || exit 1; fi
    if ((run_taskrel && run_sgemm)); then
        echo "bench: sgemm rates (run $i/$repeat)"
        "$BUILD_DIR/tests/bench_sgemm" 3 >"$TMP/sgemm-$i.txt"
    fi
    if ((run_torch)); then
        for m in "${modes[@]}"; do torch_once "$m" "$i" || exit 1; done
    fi
done

taskrel_sps="" taskrel_note="" taskrel_runs=""
if ((run_taskrel)); then
    read -r taskrel_sps _ taskrel_note < <(median_run "$TMP/taskrel.runs")
    taskrel_runs=$(list_runs "$TMP/taskrel.runs")
fi
sgemm_table="" step_frac=""
if ((run_taskrel && run_sgemm)); then
    # per shape: median GFLOP/s over the repetitions
    sgemm_table=$("$PY" - "$TMP"/sgemm-*.txt <<'PYEOF'
import sys, statistics
rows = {}
for path in sys.argv[1:]:
    for line in open(path):
        f = line.split()
        if f and f[0] != "shape":
            rows.setdefault(" ".join(f[:6]), []).append(float(f[6]))
for k, v in rows.items():
    print(f"  {k:<40} {statistics.median_low(v):7.1f} GFLOP/s  ({' '.join(f'{x:.1f}' for x in v)})")
PYEOF
    )
    sq=$(echo "$sgemm_table" | awk '$1 == "square-2048" { print $7 }')
    step_frac=$(awk -v s="$taskrel_sps" -v q="$sq" 'BEGIN { g = s * 25.45e-3; printf "step %.1f GFLOP/s = %.0f %% of sgemm 2048^3 (%.1f GFLOP/s, median)", g, 100 * g / q, q }')
fi
torch_sps="" torch_detail="" torch_runs=""
if ((run_torch)); then
    for m in "${modes[@]}"; do
        read -r s _ < <(median_run "$TMP/torch-$m.runs")
        torch_detail+="${torch_detail:+, }$m $s"
        torch_runs+="${torch_runs:+; }$m: $(list_runs "$TMP/torch-$m.runs")"
        if [[ -z $torch_sps ]] || awk -v a="$s" -v b="$torch_sps" 'BEGIN { exit !(a > b) }'; then
            torch_sps=$s
        fi
    done
fi

# ---- report --------------------------------------------------------------------
ratio=n/a
if [[ -n $taskrel_sps && -n $torch_sps ]]; then
    ratio=$(awk -v a="$taskrel_sps" -v b="$torch_sps" 'BEGIN { printf "%.2f", a / b }')
fi
mkdir -p "$OUT_DIR"
report="$OUT_DIR/bench_hps-$(date +%Y%m%d-%H%M%S).txt"
{
    echo "bench_hps $(date -u +%Y-%m-%dT%H:%M:%SZ)  host $(hostname)"
    echo "cpu: $cpu ($cpu_id; ${cpu_isa% }; $ncores cores visible)"
    echo "openblas: ${openblas:-not installed}  (libblas.so.3 -> $blas_lib)"
    echo "openblas core: $blas_core"
    echo "onednn isa (pytorch's convolutions): $onednn_isa"
    echo "torch: $torch_ver   taskrel build: $build_type ($(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo no-git))"
    echo "step: T=$TASKS tasks x B=$BATCH, hps/lenet, sgd; $warmup warm-up + $steps timed steps; 1 rank, 1 thread;" \
        "median of $repeat run(s) per side"
    [[ -z $taskrel_note ]] || echo "taskrel measured from: $taskrel_note"
    [[ -z $taskrel_runs ]] || echo "taskrel runs (samples/s): $taskrel_runs"
    [[ -z $torch_runs ]] || echo "pytorch runs (samples/s): $torch_runs"
    [[ -z $torch_detail ]] || echo "pytorch by trunk mode (samples/s, median): $torch_detail"
    if [[ -n $sgemm_table ]]; then
        echo "sgemm (shape m n k transA transB: median GFLOP/s (each run)):"
        echo "$sgemm_table"
        echo "$step_frac"
    fi
    echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "taskrel: ${taskrel_sps:-n/a} samples/s   pytorch: ${torch_sps:-n/a} samples/s   ratio taskrel/pytorch: $ratio"
} | tee "$report"
echo "bench: report written to ${report#"$ROOT"/}"
