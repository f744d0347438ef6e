#!/usr/bin/env bash
# launch/scaling_point.sh — run one point of a scaling sweep and record what
# the machine was doing around it (used by launch/scaling.sh locally and by
# launch/slurm/scaling.sbatch inside a job; not meant to be run by hand).
#
# Usage: launch/scaling_point.sh DIR NP COMMAND [ARGS...]
#   Runs COMMAND on NP ranks, its output in DIR/run.log, and writes
#   DIR/point.json: ranks, launcher, host, cores, load average (1 min) and
#   the CPU pressure total (/proc/pressure/cpu "some", microseconds) before
#   and after, start and end (Unix seconds), wall seconds, exit code, SLURM job id (if any). Exits with
#   COMMAND's exit code.
# Environment: TASKREL_POINT_LAUNCHER  local (launch/local.sh, default),
#   mpirun (mpirun -np NP with the flags of local.sh, for a SLURM allocation:
#   Open MPI reads the allocation) or srun (srun -n NP --mpi=$TASKREL_SRUN_MPI,
#   default pmix).
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
(($# >= 3)) || {
    echo "scaling_point.sh: usage: DIR NP COMMAND [ARGS...]" >&2
    exit 2
}
dir=$1 np=$2
shift 2
mkdir -p "$dir" || exit 1
launcher=${TASKREL_POINT_LAUNCHER:-local}
case $launcher in
local) run=("$ROOT/launch/local.sh" -np "$np") ;;
mpirun)
    run=(mpirun -np "$np" --oversubscribe --bind-to none -x OPENBLAS_NUM_THREADS=1
        -x OMP_NUM_THREADS=1 --mca btl_vader_single_copy_mechanism none)
    [[ $(id -u) -eq 0 ]] && run+=(--allow-run-as-root)
    ;;
srun) run=(srun -n "$np" --mpi="${TASKREL_SRUN_MPI:-pmix}") ;;
*)
    echo "scaling_point.sh: TASKREL_POINT_LAUNCHER must be local, mpirun or srun" >&2
    exit 2
    ;;
esac
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1

load1() { cut -d' ' -f1 /proc/loadavg; }
psi() { awk '/^some/ { sub(/^total=/, "", $5); print $5 }' /proc/pressure/cpu 2>/dev/null || true; }

l0=$(load1) p0=$(psi) t0=$(date +%s%N)
"${run[@]}" "$@" >"$dir/run.log" 2>&1
rc=$?
t1=$(date +%s%N) l1=$(load1) p1=$(psi)
cores=$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc)
printf '{"ranks":%d,"launcher":"%s","host":"%s","cores":%d,"loadavg_before":%s,"loadavg_after":%s,"cpu_some_us_before":%s,"cpu_some_us_after":%s,"start_unix":%s,"end_unix":%s,"wall_s":%.3f,"exit_code":%d,"slurm_job_id":"%s"}\n' \
    "$np" "$launcher" "$(hostname)" "$cores" "$l0" "$l1" "${p0:-null}" "${p1:-null}" \
    "$(awk -v a="$t0" 'BEGIN { printf "%.3f", a / 1e9 }')" "$(awk -v b="$t1" 'BEGIN { printf "%.3f", b / 1e9 }')" \
    "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print (b - a) / 1e9 }')" "$rc" "${SLURM_JOB_ID:-}" \
    >"$dir/point.json"
exit "$rc"
