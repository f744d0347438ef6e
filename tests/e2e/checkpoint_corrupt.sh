#!/usr/bin/env bash
# Damaged checkpoints: the newest one truncated, or with one bit flipped in a
# weight tensor, is reported with a message naming the file, and
# `--resume auto` falls back to the previous checkpoint and finishes with the
# same final weights as an undamaged run. A damaged file given as the path to
# resume from is an error (exit 2, naming it); a directory with only damaged
# checkpoints starts again from step 0 with a warning. Left-over *.tmp files
# (a job killed while writing) are ignored and removed.
source "$(dirname "${BASH_SOURCE[0]}")/lib.bash"
EPOCHS=10 # 160 steps
source "$(dirname "${BASH_SOURCE[0]}")/ckpt_lib.bash"
command -v h5diff >/dev/null || { echo "h5diff (hdf5-tools) is needed"; exit 1; }
cd "$SCRATCH"
ARGS=(--set checkpoint.every_steps=40 --set checkpoint.keep=3)
train 2 "${ARGS[@]}" --run-dir straight >straight.log 2>&1 || { cat straight.log; exit 1; }
[[ $(readlink straight/checkpoints/latest) == ckpt-160.h5 ]] || fail "latest is not ckpt-160.h5"

# flip_bit FILE: flip one bit in the middle of the stored bytes of
# /params/trunk.fc1.w (found by searching the file for the dataset's raw data)
flip_bit() {
    h5dump -d /params/trunk.fc1.w -b LE -o "$SCRATCH/raw.bin" "$1" >/dev/null
    python3 - "$1" "$SCRATCH/raw.bin" <<'PY'
import sys
path, raw = sys.argv[1], open(sys.argv[2], "rb").read()
data = bytearray(open(path, "rb").read())
off = data.find(raw[:256])
assert off >= 0, "raw data not found"
off += len(raw) // 2
data[off] ^= 0x10
open(path, "wb").write(data)
print(f"flipped bit 4 of byte {off} of {len(data)}")
PY
}

for damage in truncate bitflip; do
    run=$damage
    mkdir -p "$run"
    cp -a straight/checkpoints "$run/"
    rm -f "$run/checkpoints/ckpt-160.h5.tmp"
    f=$run/checkpoints/ckpt-160.h5
    if [[ $damage == truncate ]]; then
        truncate -s $(($(stat -c %s "$f") / 2)) "$f"
    else
        flip_bit "$f"
    fi
    echo junk >"$run/checkpoints/ckpt-100.h5.tmp" # an unfinished write
    rc=0
    train 2 "${ARGS[@]}" --run-dir "$run" --resume auto >"$run.log" 2>&1 || rc=$?
    checks=$((checks + 1))
    if [[ $rc -ne 0 ]]; then
        fail "$damage: resume exited $rc"
        tail -5 "$run.log" >&2
    elif ! grep -Eq "checkpoint $f.*(truncated or damaged|does not read back)" "$run.log"; then
        fail "$damage: no message naming $f"
    elif ! grep -q "falling back to the previous checkpoint" "$run.log" ||
        ! grep -q "resumed from $run/checkpoints/ckpt-120.h5 at step 120" "$run.log"; then
        fail "$damage: did not fall back to ckpt-120.h5"
    else
        grep -E "warning" "$run.log" | head -2
        echo "ok: $damage: detected, fell back to ckpt-120.h5"
    fi
    checks=$((checks + 1))
    [[ -e $run/checkpoints/ckpt-100.h5.tmp ]] && fail "$damage: the stale .tmp file was not removed"
    expect_same straight/model.h5 "$run/model.h5" "$damage: model.h5 after falling back to ckpt-120"
done

# an explicit damaged path is an error naming it
cp straight/checkpoints/ckpt-160.h5 bad.h5
truncate -s 1000 bad.h5
expect_exit 2 "checkpoint bad.h5 does not open as HDF5" train 2 --run-dir explicit --resume bad.h5
# a weights file is not a checkpoint
expect_exit 2 "straight/model.h5 is not a taskrel checkpoint" \
    train 2 --run-dir explicit --resume straight/model.h5
# only damaged checkpoints: warn and start from step 0
mkdir -p alldamaged/checkpoints
cp bad.h5 alldamaged/checkpoints/ckpt-160.h5
expect_exit 0 "no checkpoint in alldamaged/checkpoints validates: starting from step 0" \
    train 2 --run-dir alldamaged --resume auto
# a checkpoint of another model is refused (exit 2) rather than ignored
expect_exit 2 "model.head_hidden = 16, but checkpoint .* was written with 128" \
    train 2 --run-dir other --set model.head_hidden=16 --resume straight/checkpoints/ckpt-120.h5
finish
