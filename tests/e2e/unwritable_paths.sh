#!/usr/bin/env bash
# Output paths the user names that cannot be created or written — the run
# directory, checkpoint.dir, `taskrel data --out`, `taskrel plot -o`,
# `taskrel calibrate --out` — are a usage error: exit 2 on every rank, seen
# as mpirun's own exit code, with a message naming the path and the system's
# reason (strerror), and nothing is run first.
source "$(dirname "${BASH_SOURCE[0]}")/lib.bash"
cd "$SCRATCH"
BIN=$TASKREL_BIN
DATA=$SCRATCH/tn.h5
"$BIN" data synthetic-tn --out "$DATA" --tasks 2 --n-train 16 --n-val 8 --n-test 8 --dim 4 \
    >/dev/null 2>&1 || { echo "could not build test data"; exit 1; }
ok=(-c "$TASKREL_SOURCE_DIR/launch/configs/synthetic-tn-hps.ini" --set data.path="$DATA"
    --set train.epochs=1 --set run.progress=off)
touch afile # a regular file where a directory is expected

# the run directory: under a file, or a file itself (1 rank and 2)
expect_exit 2 "cannot create run directory afile/run: afile: Not a directory" \
    "$BIN" train "${ok[@]}" --run-dir afile/run
expect_exit 2 "cannot create run directory afile: Not a directory" \
    "$BIN" train "${ok[@]}" --run-dir afile
expect_exit 2 "cannot create run directory afile/run: afile: Not a directory" \
    mpirun_np 2 "$BIN" train "${ok[@]}" --run-dir afile/run
expect_exit 2 "run directory afile/deep/er/run: afile: Not a directory" \
    mpirun_np 2 "$BIN" train "${ok[@]}" --set run.dir=afile/deep/er/run
# a directory without write permission (root writes anywhere: checked as a user only)
if [[ $(id -u) -ne 0 ]]; then
    mkdir locked && chmod 555 locked
    expect_exit 2 "cannot (create|write into) run directory locked/run.*Permission denied" \
        "$BIN" train "${ok[@]}" --run-dir locked/run
fi
# checkpoint.dir
expect_exit 2 "cannot create checkpoint directory afile/ckpt: afile: Not a directory" \
    mpirun_np 2 "$BIN" train "${ok[@]}" --run-dir run-ok --set checkpoint.dir=afile/ckpt
# taskrel data --out: under a file, and a directory
expect_exit 2 "cannot write --out afile/x.h5: afile: Not a directory" \
    "$BIN" data synthetic-tn --out afile/x.h5
expect_exit 2 "cannot write --out $SCRATCH: Is a directory" \
    mpirun_np 2 "$BIN" data synthetic-tn --out "$SCRATCH"
# taskrel plot -o (checked before the input is read)
expect_exit 2 "cannot write -o afile/r.png: afile: Not a directory" \
    "$BIN" plot relations "$DATA" -o afile/r.png
# taskrel calibrate --out (checked before the measurements)
expect_exit 2 "cannot write --out afile/c.json: afile: Not a directory" \
    mpirun_np 2 "$BIN" calibrate --out afile/c.json
# nothing was left behind by the refused commands
checks=$((checks + 1))
if [[ -e run-ok/model.h5 || -n $(find . -name '.taskrel-write-*') ]]; then
    fail "a refused command left files behind"
else
    pass "refused commands left no files behind"
fi
finish
