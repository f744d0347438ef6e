#!/usr/bin/env bash
# launch/slurm/train.sbatch on a real one-node SLURM cluster started here
# (tests/e2e/slurm_cluster.bash): submitted with a one-minute time limit and
# --signal=B:USR1@50, the job gets the signal while training, checkpoints,
# exits 3, requeues itself, resumes from its checkpoint, and finishes with the
# same final weights (bitwise) as an uninterrupted run on the same number of
# ranks. Skipped (exit 0, "SKIP") only where SLURM cannot be installed.
source "$(dirname "${BASH_SOURCE[0]}")/lib.bash"
source "$(dirname "${BASH_SOURCE[0]}")/slurm_cluster.bash"
command -v h5diff >/dev/null || { echo "h5diff (hdf5-tools) is needed"; exit 1; }
cd "$SCRATCH"
# other tests may share the cores (ctest -j): ranks waiting in a collective
# yield instead of spinning (numbers unchanged)
export OMPI_MCA_mpi_yield_when_idle=1
slurm_test_cluster

# The job must still be training when SLURM signals it: SLURM checks time
# limits every 30 s, so USR1@50 of a 1-minute limit comes 10-40 s after the
# start. The run's length is therefore set from this machine's measured step
# time (~60 s of training on 2 ranks), not fixed: a machine several times
# slower than another gets fewer steps, not a job requeued twenty times. The
# job, then the uninterrupted reference, run one after the other, never side
# by side. If the job still finishes before its first signal (the machine sped
# up after the calibration), it is run again with twice the steps. Ranks that
# wait on each other slow down far more than the load alone says when the
# cores are shared (each collective needs both ranks scheduled), hence the
# reference's longer timeout.
"$TASKREL_BIN" data synthetic-tn --classification --out tn.h5 --tasks 4 --dim 256 \
    --n-train 2000 --n-val 200 --n-test 200 >/dev/null
write_ini() { # write_ini EPOCHS
    cat >run.ini <<INI
[data]
path = $SCRATCH/tn.h5
[model]
kind = hps
trunk = mlp
mlp_hidden = 512,512
head_hidden = 256
[train]
epochs = $1
batch_size = 256
optimizer = adamw
lr = 1e-3
eval_every = 400
log_every = 400
[run]
progress = off
[checkpoint]
every_seconds = 0
every_steps = 400
keep = 2
INI
}

# calibration: 40 epochs (320 steps, 8 a epoch) on 2 ranks
write_ini 40
c0=$(date +%s%N)
mpirun_np 2 "$TASKREL_BIN" train -c run.ini --run-dir calib >calib.log 2>&1 ||
    { cat calib.log; fail "calibration run failed"; finish; exit 1; }
ms_step=$((($(date +%s%N) - c0) / 1000000 / 320))
((ms_step >= 1)) || ms_step=1
TRAIN_S=${TRAIN_S:-60}
epochs=$((TRAIN_S * 1000 / ms_step / 8))
((epochs < 100)) && epochs=100
((epochs > 2000)) && epochs=2000
echo "calibration: $ms_step ms a step on 2 ranks -> $epochs epochs ($((epochs * 8)) steps, ~$((epochs * 8 * ms_step / 1000)) s)"

job_state() {
    scontrol show job "$job" 2>/dev/null | grep -o 'JobState=[A-Z_]*' | cut -d= -f2
}
job_over() {
    case $(job_state) in COMPLETED | FAILED | CANCELLED | TIMEOUT | NODE_FAIL) return 0 ;; esac
    return 1
}

for attempt in 1 2; do
    write_ini "$epochs"
    rm -rf slurm-run
    # the job: 2 tasks, 1-minute limit, USR1 50 s before it
    TASKREL_CONFIG=run.ini TASKREL_RUN_DIR=slurm-run TASKREL_BIN=$TASKREL_BIN \
        sbatch --parsable --ntasks=2 --time=1 --signal=B:USR1@50 --output=job-%j.log \
        "$TASKREL_SOURCE_DIR/launch/slurm/train.sbatch" >jobid || { fail "sbatch failed"; finish; exit 1; }
    job=$(cat jobid)
    log=job-$job.log
    echo "submitted job $job ($epochs epochs)"
    t0=$(date +%s)
    # once the job has requeued itself, the requeued job gets a longer limit:
    # one checkpoint-requeue-resume cycle is the test, more are only waiting
    extended=0
    for ((i = 0; i < 1100; i++)); do
        job_over && break
        if ((!extended)) && grep -q "requeueing" "$log" 2>/dev/null; then
            scontrol update JobId="$job" TimeLimit=30 >/dev/null 2>&1 && extended=1
        fi
        sleep 1
    done
    grep -q "got SIGUSR1" "$log" 2>/dev/null && break
    if [[ $attempt == 1 && $(job_state) == COMPLETED ]]; then
        echo "job $job finished before its first signal: again with twice the steps"
        epochs=$((epochs * 2))
    else
        break
    fi
done
state=$(job_state)
echo "job $job: $state after $(($(date +%s) - t0)) s; $(scontrol show job "$job" | grep -o 'Restarts=[0-9]*')"
cat "$log"
t1=$(date +%s)
MPIRUN_TIMEOUT=600 mpirun_np 2 "$TASKREL_BIN" train -c run.ini --run-dir straight >straight.log 2>&1 ||
    { cat straight.log; fail "reference run failed"; }
echo "reference run: $(($(date +%s) - t1)) s"
checks=$((checks + 1))
[[ $state == COMPLETED ]] || fail "job ended $state"
checks=$((checks + 1))
grep -q "got SIGUSR1" "$log" || fail "the batch script never got SIGUSR1"
checks=$((checks + 1))
grep -Eq "stopped by a signal after step [0-9]+" "$log" || fail "no checkpoint on the signal"
checks=$((checks + 1))
grep -q "checkpointed (exit 3): requeueing" "$log" || fail "no exit 3 and requeue"
checks=$((checks + 1))
grep -Eq "resumed from slurm-run/checkpoints/ckpt-[0-9]+.h5" "$log" || fail "the requeued job did not resume"
checks=$((checks + 1))
grep -q "restart 1" "$log" || fail "no restart"
checks=$((checks + 1))
grep -q "finished" "$log" || fail "the job did not finish"
checks=$((checks + 1))
if h5diff -q straight/model.h5 slurm-run/model.h5 /params /params; then
    echo "ok: model.h5 of the requeued job equals the uninterrupted run's (bitwise)"
else
    fail "model.h5 differs from the uninterrupted run's"
fi
finish
