#!/usr/bin/env bash
# SIGUSR1 to a running job: every rank finishes the step, they checkpoint
# together and the job exits 3; `--resume auto` continues and finishes with
# the same final weights (model.h5 and the last checkpoint) as a run that was
# never stopped. SIGUSR1 goes to mpirun (which forwards it, as the sbatch
# script does); SIGTERM goes to every rank, as SLURM sends it on preemption or
# at the time limit (a SIGTERM to mpirun itself makes mpirun end the job).
source "$(dirname "${BASH_SOURCE[0]}")/lib.bash"
source "$(dirname "${BASH_SOURCE[0]}")/ckpt_lib.bash"
command -v h5diff >/dev/null || { echo "h5diff (hdf5-tools) is needed"; exit 1; }
cd "$SCRATCH"
N=$((EPOCHS * 16))
ARGS=(--set checkpoint.every_steps=40 --set checkpoint.keep=2)

train 2 "${ARGS[@]}" --run-dir straight >straight.log 2>&1 || { cat straight.log; exit 1; }

for sig in USR1 TERM; do
    run=stopped-$sig
    train_bg "$run.log" 2 "${ARGS[@]}" --run-dir "$run"
    wait_for "$run/checkpoints/ckpt-40.h5" 120 || fail "$sig: no first checkpoint"
    if [[ $sig == USR1 ]]; then
        kill -USR1 "$BG_PID"
    else
        # shellcheck disable=SC2046
        kill -TERM $(pgrep -P "$BG_PID")
    fi
    rc=0
    wait "$BG_PID" || rc=$?
    checks=$((checks + 1))
    if [[ $rc -ne 3 ]]; then
        fail "$sig: exit $rc, want 3"
        tail -5 "$run.log" >&2
    fi
    checks=$((checks + 1))
    step=$(grep -o 'stopped by a signal after step [0-9]*' "$run.log" | grep -o '[0-9]*$' | head -1)
    if [[ -z $step || ! -f $run/checkpoints/ckpt-$step.h5 || $(readlink "$run/checkpoints/latest") != "ckpt-$step.h5" ]]; then
        fail "$sig: no checkpoint at the stop step '$step' (or latest does not point at it)"
    elif [[ -e $run/model.h5 ]] || ((step >= N)); then
        fail "$sig: the run was not stopped mid-way (step $step of $N)"
    else
        echo "ok: SIG$sig stopped the run after step $step of $N with exit 3 and ckpt-$step.h5"
    fi
    expect_exit 0 "resumed from .*ckpt-$step.h5 at step $step" \
        train 2 "${ARGS[@]}" --run-dir "$run" --resume auto
    expect_same straight/model.h5 "$run/model.h5" "SIG$sig: model.h5 after resume"
    expect_same "straight/checkpoints/ckpt-$N.h5" "$run/checkpoints/ckpt-$N.h5" \
        "SIG$sig: final checkpoint after resume"
done
finish
