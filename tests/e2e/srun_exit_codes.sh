#!/usr/bin/env bash
# The documented exit codes are the ones a job step returns under srun, as
# under mpirun (e2e.unwritable_paths, e2e.cli_errors, e2e.checkpoint_signal):
# on a real one-node SLURM cluster started here, `srun --mpi=pmix -n 2` returns
# 2 for an unwritable run directory (with the path and strerror), 2 for a bad
# config value, 3 for a run stopped by SIGUSR1 after its checkpoint (the signal
# sent to the step, as SLURM's --signal does), and 0 for a finished run.
# Skipped (exit 0, "SKIP") only where SLURM cannot be
# installed.
source "$(dirname "${BASH_SOURCE[0]}")/lib.bash"
source "$(dirname "${BASH_SOURCE[0]}")/slurm_cluster.bash"
cd "$SCRATCH"
export OMPI_MCA_mpi_yield_when_idle=1
slurm_test_cluster
BIN=$TASKREL_BIN
"$BIN" data synthetic-tn --classification --out tn.h5 --tasks 4 --dim 64 --n-train 400 \
    --n-val 50 --n-test 50 >/dev/null 2>&1 || { echo "could not build test data"; exit 1; }
ok=(-c "$TASKREL_SOURCE_DIR/launch/configs/synthetic-tn-hps.ini" --set data.path="$SCRATCH/tn.h5"
    --set run.progress=off)
step=(srun --mpi=pmix --kill-on-bad-exit=1 -n 2 -t 5)
touch afile

expect_exit 2 "cannot create run directory afile/run: afile: Not a directory" \
    "${step[@]}" "$BIN" train "${ok[@]}" --set train.epochs=1 --run-dir afile/run
expect_exit 2 "train.lr" \
    "${step[@]}" "$BIN" train "${ok[@]}" --set train.lr=-1 --run-dir bad-lr
checks=$((checks + 1))
[[ ! -e bad-lr/model.h5 ]] && pass "the refused run wrote no model" || fail "bad-lr/model.h5 exists"

# SIGUSR1 to the step's tasks while training: checkpoint, every rank exits 3
"${step[@]}" "$BIN" train "${ok[@]}" --set train.epochs=2000 --set train.log_every=5 \
    --run-dir sig >sig.out 2>&1 &
srun_pid=$!
for ((i = 0; i < 240; i++)); do # until the ranks train (a training line in metrics.jsonl)
    grep -q '"loss"' sig/metrics.jsonl 2>/dev/null && break
    sleep 0.25
done
job=$(squeue -h -o %i | head -1)
scancel --signal=USR1 "$job"
rc=0
wait "$srun_pid" || rc=$?
checks=$((checks + 1))
if [[ $rc -eq 3 ]] && ls sig/checkpoints/ckpt-*.h5 >/dev/null 2>&1; then
    pass "SIGUSR1 under srun: checkpoint written, srun exit 3"
else
    fail "SIGUSR1 under srun: exit $rc, checkpoints: $(ls sig/checkpoints 2>&1 | tr '\n' ' ')"
    tail -5 sig.out >&2
fi
expect_exit 0 "selected step" \
    "${step[@]}" "$BIN" train "${ok[@]}" --set train.epochs=1 --run-dir done
finish
