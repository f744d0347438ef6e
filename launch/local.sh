#!/usr/bin/env bash
# launch/local.sh — run taskrel under mpirun on this machine.
#
# Usage: launch/local.sh [-np N] COMMAND [ARGS...]
#   launch/local.sh -np 2 build/taskrel train -c launch/configs/fashion-hps.ini
#   launch/local.sh -np 4 taskrel train -c run.ini
#
# COMMAND `taskrel` means $TASKREL_BIN if set, else the source tree's
# build/taskrel (TASKREL_BUILD_DIR) when run from a checkout, else the
# installed PREFIX/bin/taskrel next to PREFIX/share/taskrel/launch/local.sh,
# else taskrel on PATH.
#
# Adds what a workstation or a CI container needs and passes everything else
# through to mpirun: --allow-run-as-root when run as root, --oversubscribe
# (more ranks than cores is fine for tests), one BLAS thread per rank
# (reproducible results, no oversubscribed cores) and Open MPI's plain copy
# for shared memory (containers often forbid cross-memory attach), and
# ranks that yield their core while they wait for a message
# (mpi_yield_when_idle): with more ranks than free cores, a waiting rank that
# busy-polls takes the core from the rank it waits for, and a run that should
# slow down starves instead. TASKREL_YIELD=0 turns it off (lowest latency on
# a node with a core per rank).
# Environment: TASKREL_MPIRUN_ARGS extra mpirun arguments (word-split).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
np=1
args=()
while (($#)); do
    case "$1" in
    -np | -n)
        np=$2
        shift 2
        ;;
    -h | --help)
        awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"
        exit 0
        ;;
    *) break ;;
    esac
done
(($#)) || { echo "local.sh: nothing to run (try --help)" >&2; exit 2; }
cmd=$1
shift
if [[ $cmd == taskrel ]]; then
    build=${TASKREL_BUILD_DIR:-build}
    [[ $build == /* ]] || build="$ROOT/$build"
    if [[ -n ${TASKREL_BIN:-} ]]; then
        cmd=$TASKREL_BIN
    elif [[ -x $build/taskrel ]]; then
        cmd=$build/taskrel
    elif [[ -x $ROOT/../../bin/taskrel ]]; then
        cmd=$(cd "$ROOT/../../bin" && pwd)/taskrel
    elif command -v taskrel >/dev/null 2>&1; then
        cmd=$(command -v taskrel)
    else
        echo "local.sh: no taskrel found (build it, install it, or set TASKREL_BIN)" >&2
        exit 2
    fi
fi

mpi=(--oversubscribe --bind-to none
    -x OPENBLAS_NUM_THREADS=1 -x OMP_NUM_THREADS=1
    --mca btl_vader_single_copy_mechanism none
    --mca mpi_yield_when_idle "${TASKREL_YIELD:-1}")
[[ $(id -u) -eq 0 ]] && mpi+=(--allow-run-as-root)
# OpenBLAS's kernel choice, when the user made it, reaches every rank
[[ -n ${OPENBLAS_CORETYPE:-} ]] && mpi+=(-x OPENBLAS_CORETYPE)
# shellcheck disable=SC2206
[[ -n ${TASKREL_MPIRUN_ARGS:-} ]] && mpi+=($TASKREL_MPIRUN_ARGS)

exec mpirun -np "$np" "${mpi[@]}" "$cmd" "$@"
