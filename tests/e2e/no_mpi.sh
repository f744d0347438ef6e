#!/usr/bin/env bash
# --version, --help, every `COMMAND --help` and the serial commands (config,
# data, inspect, plot) never start MPI, so they work on a login node without
# a process manager. Two ways to catch an MPI_Init: an LD_PRELOAD shim that
# exits 97 from MPI_Init (any MPI), and Open MPI with a component that does not
# exist (OMPI_MCA_pml), which makes a real MPI_Init fail. Both are first shown
# to catch `taskrel train`.
source "$(dirname "${BASH_SOURCE[0]}")/lib.bash"
: "${TASKREL_MPI_TRAP:?TASKREL_MPI_TRAP must point to the mpi_init_trap shim}"
cd "$TASKREL_SOURCE_DIR"
BIN=$TASKREL_BIN
CFG=launch/configs/synthetic-tn-hps.ini
DATA=$SCRATCH/tn.h5
trap_env=(env LD_PRELOAD="$TASKREL_MPI_TRAP")
ompi_env=(env OMPI_MCA_pml=taskrel_nonexistent)

# the traps work: a collective command is caught by each
"$BIN" data synthetic-tn --out "$DATA" --tasks 2 --n-train 32 --n-val 8 --n-test 8 >/dev/null 2>&1 ||
    { echo "could not build test data"; exit 1; }
train=("$BIN" train -c "$CFG" --set data.path="$DATA" --set train.epochs=1 --run-dir "$SCRATCH/run")
expect_exit 97 "mpi_init_trap: MPI_Init called" "${trap_env[@]}" "${train[@]}"
# the same training runs without the Open MPI trap and fails with it (Open MPI's
# own message about it is not always printed, so the exit code decides)
"${train[@]}" >/dev/null 2>&1 || check_fail "training without a trap"
checks=$((checks + 1))
rc=0
"${ompi_env[@]}" "${train[@]}" --run-dir "$SCRATCH/run-ompi" >/dev/null 2>&1 || rc=$?
if [[ $rc -ne 0 && ! -e $SCRATCH/run-ompi/metrics.jsonl ]]; then
    pass "OMPI_MCA_pml=taskrel_nonexistent makes MPI_Init fail (exit $rc)"
else
    check_fail "OMPI_MCA_pml=taskrel_nonexistent did not make MPI_Init fail (exit $rc)"
fi

# no MPI: expect_no_mpi CODE PATTERN ARGS... under both traps
expect_no_mpi() {
    local code=$1 pattern=$2
    shift 2
    expect_exit "$code" "$pattern" "${trap_env[@]}" "$BIN" "$@"
    expect_exit "$code" "$pattern" "${ompi_env[@]}" "$BIN" "$@"
}
expect_no_mpi 0 "^taskrel [0-9]+\.[0-9]+\.[0-9]+$" --version
expect_no_mpi 0 "usage: taskrel COMMAND" --help
expect_no_mpi 0 "usage: taskrel COMMAND" help
expect_no_mpi 0 "^\[data\]" config --defaults
expect_no_mpi 0 "^\| " config --markdown
expect_no_mpi 0 "epochs = 1" config -c "$CFG" --set train.epochs=1
expect_no_mpi 0 "epochs = 2" config --config="$CFG" --set=train.epochs=2
expect_no_mpi 2 "train\.epoch.*did you mean train\.epochs" config -c "$CFG" --set train.epoch=3
for c in train eval calibrate data inspect plot config; do
    expect_no_mpi 0 "usage: taskrel $c" "$c" --help
done
expect_no_mpi 0 "usage: taskrel train" train -c "$CFG" -h
expect_no_mpi 0 "usage: taskrel data import" data import --help
expect_no_mpi 0 "wrote" data synthetic-tn --out "$SCRATCH/tn2.h5" --tasks 2 --n-train 8 --n-val 4 --n-test 4
expect_no_mpi 0 "model\.h5" inspect "$SCRATCH/run"
expect_no_mpi 2 "did you mean 'train'" trian
expect_no_mpi 2 "no command given" 
finish
