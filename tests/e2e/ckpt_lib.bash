# Helpers for the checkpoint e2e tests (sourced after lib.bash): a small
# multi-input dataset, one config, a reference run, background launches and
# a bitwise comparison of weights.
# 16 steps per epoch of ~15 ms on 2 idle ranks (steps big enough that the
# run lasts seconds, not milliseconds, so a signal can arrive mid-run)
EPOCHS=${EPOCHS:-20}
DATA=$SCRATCH/tn.h5
"$TASKREL_BIN" data synthetic-tn --classification --out "$DATA" --tasks 4 --dim 128 \
    --n-train 2000 --n-val 200 --n-test 200 >/dev/null 2>&1
CFG=(-c "$TASKREL_SOURCE_DIR/launch/configs/synthetic-tn-hps.ini" --set "data.path=$DATA"
    --set "train.epochs=$EPOCHS" --set train.batch_size=128 --set model.mlp_hidden=256,256
    --set model.head_hidden=128 --set run.progress=off --set train.log_every=1000000
    --set checkpoint.every_seconds=0)

MPI_FLAGS=(--oversubscribe --bind-to none --mca btl_vader_single_copy_mechanism none
    -x OPENBLAS_NUM_THREADS=1)
[[ $(id -u) -eq 0 ]] && MPI_FLAGS+=(--allow-run-as-root)

# train NP ARGS...: a foreground run (5 minute guard), output to stdout
train() {
    local np=$1
    shift
    timeout 300 mpirun -np "$np" "${MPI_FLAGS[@]}" "$TASKREL_BIN" train "${CFG[@]}" "$@"
}

# train_bg LOG NP ARGS...: start a run in the background; its mpirun pid in BG_PID
train_bg() {
    local log=$1 np=$2
    shift 2
    mpirun -np "$np" "${MPI_FLAGS[@]}" "$TASKREL_BIN" train "${CFG[@]}" "$@" >"$log" 2>&1 &
    BG_PID=$!
}

# wait_for FILE SECONDS: until FILE exists (1) or time is up (0)
wait_for() {
    local i
    for ((i = 0; i < $2 * 20; i++)); do
        [[ -e $1 ]] && return 0
        sleep 0.05
    done
    return 1
}

# same_weights A.h5 B.h5: every dataset under /params (and /buffers, /optim
# where A has them) bitwise equal (h5diff without tolerances compares exactly).
same_weights() {
    local g rc=0
    for g in /params /buffers /optim /best; do
        h5ls "$1/$g" >/dev/null 2>&1 || continue
        h5diff -q "$1" "$2" "$g" "$g" || rc=1
    done
    return $rc
}

# expect_same A B WHAT: a check that A and B hold the same weights
expect_same() {
    checks=$((checks + 1))
    if same_weights "$1" "$2"; then
        echo "ok: $3 (bitwise identical weights)"
    else
        fail "$3: $1 and $2 differ"
    fi
}
