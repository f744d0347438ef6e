#!/usr/bin/env bash
# Bad input gets a clear error and exit code 2 — on one rank and on several,
# with no hang: misspelt keys, out-of-range values, missing files, malformed
# configs, rank counts that do not fit the tasks.
source "$(dirname "${BASH_SOURCE[0]}")/lib.bash"
cd "$TASKREL_SOURCE_DIR"
BIN=$TASKREL_BIN
DATA=$SCRATCH/tn.h5
"$BIN" data synthetic-tn --out "$DATA" --tasks 4 --n-train 64 --n-val 32 --n-test 32 >/dev/null 2>&1 ||
    { echo "could not build test data"; exit 1; }
CFG=launch/configs/synthetic-tn-hps.ini
ok=(-c "$CFG" --set data.path="$DATA" --set train.epochs=1 --set run.progress=off)

# a misspelt key, on the command line and in a file (with file:line)
expect_exit 2 "train\.epoch.*did you mean train\.epochs" "$BIN" train "${ok[@]}" --set train.epoch=3
printf '[train]\nepoch = 3\n' >"$SCRATCH/bad.ini"
expect_exit 2 "bad\.ini:2.*train\.epoch" "$BIN" train -c "$SCRATCH/bad.ini" --set data.path="$DATA"
printf '[trian]\nepochs = 3\n' >"$SCRATCH/badsec.ini"
expect_exit 2 "trian" "$BIN" train -c "$SCRATCH/badsec.ini" --set data.path="$DATA"
printf 'this is not ini\n' >"$SCRATCH/garbage.ini"
expect_exit 2 "garbage\.ini:1" "$BIN" train -c "$SCRATCH/garbage.ini"
# values that do not parse or are out of range
expect_exit 2 "train\.lr" "$BIN" train "${ok[@]}" --set train.lr=-1
expect_exit 2 "train\.epochs.*ten" "$BIN" train "${ok[@]}" --set train.epochs=ten
expect_exit 2 "model\.kind.*stl\|hps" "$BIN" train "${ok[@]}" --set model.kind=transformer
expect_exit 2 "train\.batch_size" "$BIN" train "${ok[@]}" --set train.batch_size=0
# missing files
expect_exit 2 "no-such-config\.ini" "$BIN" train -c "$SCRATCH/no-such-config.ini"
expect_exit 2 "not found.*missing\.h5" "$BIN" train "${ok[@]}" --set data.path="$SCRATCH/missing.h5"
expect_exit 2 "data\.tasks" "$BIN" train "${ok[@]}" --set data.tasks=nosuchtask
# a file that is not a dataset
echo "hello" >"$SCRATCH/notdata.h5"
expect_exit 2 "notdata\.h5" "$BIN" train "${ok[@]}" --set data.path="$SCRATCH/notdata.h5"
# wrong trunk for the data
expect_exit 2 "lenet" "$BIN" train "${ok[@]}" --set model.trunk=lenet
# usage errors
expect_exit 2 "unknown command" "$BIN" frobnicate
expect_exit 2 "unknown argument" "$BIN" train "${ok[@]}" --frob
# one parser everywhere: a near miss is named, --opt=value works as --opt value
expect_exit 2 "did you mean 'train'" "$BIN" trian
expect_exit 2 "did you mean --run-dir" "$BIN" train "${ok[@]}" --rundir "$SCRATCH/x"
expect_exit 2 "option --run-dir needs a value" "$BIN" train "${ok[@]}" --run-dir
expect_exit 2 "did you mean --checkpoint" "$BIN" eval "${ok[@]}" --checkpiont x.h5
expect_exit 2 "did you mean --truth" "$BIN" inspect "$SCRATCH" --trth x.h5
expect_exit 2 "unexpected argument 'stray'" "$BIN" train "${ok[@]}" stray
expect_exit 0 "" "$BIN" train --config="$CFG" --set=data.path="$DATA" --set=train.epochs=1 \
    --set=run.progress=off --run-dir="$SCRATCH/eq"
if [[ -s $SCRATCH/eq/metrics.jsonl ]]; then pass "--run-dir=DIR used"; else check_fail "--run-dir=DIR not used"; fi
expect_exit 2 "checkpoint" "$BIN" eval "${ok[@]}"
expect_exit 2 "not found" "$BIN" eval "${ok[@]}" --checkpoint "$SCRATCH/none.h5"

# the same errors on several ranks: every rank exits 2, nobody hangs
expect_exit 2 "train\.epoch" mpirun_np 2 "$BIN" train "${ok[@]}" --set train.epoch=3
expect_exit 2 "missing\.h5" mpirun_np 3 "$BIN" train "${ok[@]}" --set data.path="$SCRATCH/missing.h5"
# rank counts that do not fit the tasks (4 tasks)
expect_exit 2 "task_shards = 3" mpirun_np 2 "$BIN" train "${ok[@]}" --set dist.task_shards=3
expect_exit 2 "task_shards = 5 does not fit 4" mpirun_np 1 "$BIN" train "${ok[@]}" --set dist.task_shards=5
expect_exit 2 "batch_size" mpirun_np 4 "$BIN" train "${ok[@]}" --set dist.task_shards=1 --set train.batch_size=2

finish
