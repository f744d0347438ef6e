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
trap 'slurm_cluster_stop; rm -rf "$SCRATCH"' EXIT
cd "$SCRATCH"
if ! slurm_cluster_start "$SCRATCH/cluster"; then
    echo "SKIP: $SLURM_CLUSTER_WHY"
    exit 0
fi
echo "cluster up: $(sinfo -h -o '%P %D %c %t')"

# ~40 s of training on 2 ranks of a 2-core machine: longer than the first
# signal takes to come (SLURM checks time limits every 30 s, so USR1@50 of a
# 1-minute limit arrives ~30 s after the start), short enough that the
# requeued job usually finishes before its own signal (if not, it is requeued
# once more, which the test accepts)
EPOCHS=${EPOCHS:-1200}
"$TASKREL_BIN" data synthetic-tn --classification --out tn.h5 --tasks 4 --n-train 1000 \
    --n-val 300 --n-test 300 >/dev/null
cat >run.ini <<INI
[data]
path = $SCRATCH/tn.h5
[model]
kind = hps
trunk = mlp
mlp_hidden = 64
head_hidden = 32
[train]
epochs = $EPOCHS
batch_size = 32
optimizer = adamw
lr = 1e-3
eval_every = 2000
log_every = 5000
[run]
progress = off
[checkpoint]
every_seconds = 0
every_steps = 5000
keep = 2
INI

# the uninterrupted reference on 2 ranks (first, so that it does not slow the job)
t0=$(date +%s)
mpirun_np 2 "$TASKREL_BIN" train -c run.ini --run-dir straight >straight.log 2>&1 ||
    { cat straight.log; fail "reference run failed"; }
echo "reference run: $(($(date +%s) - t0)) s"

# the job: 2 tasks, 1-minute limit, USR1 50 s before it
TASKREL_CONFIG=run.ini TASKREL_RUN_DIR=slurm-run TASKREL_BIN=$TASKREL_BIN \
    sbatch --parsable --ntasks=2 --time=1 --signal=B:USR1@50 --output=job-%j.log \
    "$TASKREL_SOURCE_DIR/launch/slurm/train.sbatch" >jobid || { fail "sbatch failed"; finish; exit 1; }
job=$(cat jobid)
echo "submitted job $job"
t0=$(date +%s)
state=
for ((i = 0; i < 600; i++)); do
    state=$(scontrol show job "$job" 2>/dev/null | grep -o 'JobState=[A-Z_]*' | cut -d= -f2)
    [[ $state == COMPLETED || $state == FAILED || $state == CANCELLED || $state == TIMEOUT ]] && break
    sleep 1
done
echo "job $job: $state after $(($(date +%s) - t0)) s; $(scontrol show job "$job" | grep -o 'Restarts=[0-9]*')"
log=job-$job.log
cat "$log"
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
