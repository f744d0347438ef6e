#!/usr/bin/env bash
# Run directories and checkpoint provenance:
# - reusing a run directory without --resume exits 2 on every rank and changes
#   nothing in it; --overwrite starts the run again; without --run-dir every
#   run gets a new directory;
# - a checkpoint knows its run and its data: another run's checkpoints left in
#   the directory are never resumed and never rotate out this run's; another
#   run's checkpoint given as PATH, a checkpoint past the run's end, and a
#   dataset swapped under the same path are refused (exit 2), nothing changed;
# - a checkpoint of this run with a dataset deleted is damage: --resume auto
#   names it, falls back to the previous one and ends with the same weights.
source "$(dirname "${BASH_SOURCE[0]}")/lib.bash"
command -v h5diff >/dev/null || { echo "h5diff (hdf5-tools) is needed"; exit 1; }
BIN=$TASKREL_BIN
PY=/usr/bin/python3
cd "$SCRATCH"
data() { # data OUT SEED
    "$BIN" data synthetic-tn --classification --out "$1" --tasks 4 --dim 32 --n-train 300 \
        --n-val 50 --n-test 50 --seed "$2" >/dev/null 2>&1 || { echo "no data"; exit 1; }
}
data tn.h5 1
# 10 steps per epoch, a checkpoint every 10 steps, the newest 3 kept
CFG=(-c "$TASKREL_SOURCE_DIR/launch/configs/synthetic-tn-hps.ini" --set data.path=tn.h5
    --set train.batch_size=32 --set run.progress=off --set train.log_every=1000000
    --set checkpoint.every_steps=10 --set checkpoint.keep=3 --set checkpoint.every_seconds=0)
train() { "$BIN" train "${CFG[@]}" "$@"; }
# snapshot DIR: names, sizes, modification times and contents of every file
snapshot() { (cd "$1" && find . -printf '%p %s %T@ %l\n' | sort && find . -type f -exec md5sum {} + | sort); }
ckpts() { (cd "$1/checkpoints" && ls ckpt-*.h5 | sort -V | tr '\n' ' '); }
same_params() { h5diff -q "$1" "$2" /params /params; }

# ---- reusing a run directory -------------------------------------------------------
train --set train.max_steps=60 --run-dir A >A.log 2>&1 || { cat A.log; exit 1; }
cp A/model.h5 A-model.h5
before=$(snapshot A)
for how in "" "--resume none"; do
    # shellcheck disable=SC2086
    expect_exit 2 "run directory A already holds a run .*nothing was changed.*--resume auto.*--overwrite.*--run-dir" \
        train --set train.max_steps=60 --run-dir A $how
done
expect_exit 2 "run directory A already holds a run" \
    mpirun_np 2 "$BIN" train "${CFG[@]}" --set train.max_steps=60 --run-dir A
checks=$((checks + 1))
[[ $(snapshot A) == "$before" ]] || fail "a refused run changed the run directory"
expect_exit 2 "cannot be combined with --resume auto" train --run-dir A --overwrite --resume auto
id_a=$(cat A/run.id)
checks=$((checks + 1))
for f in A/model.h5 A/checkpoints/ckpt-60.h5; do
    got=$(h5dump -a /run_id "$f" | grep -o '"[^"]*"' | tail -1)
    [[ $got == "\"$id_a\"" ]] || fail "$f: run_id $got, want $id_a"
    h5dump -a /data_fingerprint "$f" | grep -q '"v2-' || fail "$f: no data_fingerprint"
done

# provenance: config.ini's header, metrics.jsonl's first line, model.h5
checks=$((checks + 1))
[[ $(head -1 A/config.ini) == "; run $id_a, taskrel "*" on 1 rank(s), hosts "* ]] ||
    fail "config.ini header: $(head -1 A/config.ini)"
checks=$((checks + 1))
$PY - "$id_a" <<'PY' || fail "metrics.jsonl provenance or training lines"
import json, sys
lines = [json.loads(l) for l in open("A/metrics.jsonl")]
p = lines[0]["provenance"]
assert p["run_id"] == sys.argv[1] and p["world_size"] == 1 and p["start_step"] == 0, p
assert "--run-dir A" in p["command_line"] and p["hosts"] and p["data_fingerprint"].startswith("v2-"), p
train = [l for l in lines if l.get("train") is True]
assert train and train[-1]["step"] == 60 and len(train[-1]["loss"]) == 4 and train[-1]["lr"] > 0, train
PY
checks=$((checks + 1))
for a in command_line hosts taskrel_version; do
    h5dump -a "/$a" A/model.h5 >/dev/null 2>&1 || fail "model.h5 lacks the attribute $a"
done

# ---- another run's checkpoints in the directory ------------------------------------
train --set train.max_steps=120 --run-dir OLD >OLD.log 2>&1 || { cat OLD.log; exit 1; }
cp OLD/checkpoints/ckpt-110.h5 OLD/checkpoints/ckpt-120.h5 A/checkpoints/ # left behind
train --set train.max_steps=60 --run-dir A --resume auto >stale.log 2>&1 || fail "stale: exit $?"
checks=$((checks + 1))
if ! grep -q "ignoring A/checkpoints/ckpt-120.h5: it belongs to another run" stale.log ||
    ! grep -q "resumed from A/checkpoints/ckpt-60.h5 at step 60" stale.log; then
    fail "stale: the other run's ckpt-120.h5 was not ignored"
    grep -E "resumed|warning" stale.log | head -3 >&2
elif ! same_params A-model.h5 A/model.h5; then
    fail "stale: model.h5 is not this run's"
else
    pass "another run's newer checkpoints ignored; resumed this run's ckpt-60"
fi
# rotation keeps this run's newest 3 and leaves the other run's files alone
train --set train.max_steps=80 --run-dir A --resume auto >rot.log 2>&1 || fail "rotation: exit $?"
checks=$((checks + 1))
[[ $(ckpts A) == "ckpt-60.h5 ckpt-70.h5 ckpt-80.h5 ckpt-110.h5 ckpt-120.h5 " ]] ||
    fail "rotation: checkpoints are $(ckpts A)"
expect_exit 0 "resumed from A/checkpoints/ckpt-80.h5 at step 80" \
    train --set train.max_steps=80 --run-dir A --resume auto
# PATH of another run into this directory, and a checkpoint past the run's end
before=$(snapshot A)
expect_exit 2 "checkpoint OLD/checkpoints/ckpt-110.h5 belongs to another run .*--resume auto" \
    train --set train.max_steps=80 --run-dir A --resume OLD/checkpoints/ckpt-110.h5
checks=$((checks + 1))
[[ $(snapshot A) == "$before" ]] || fail "a refused resume changed the run directory"
expect_exit 2 "ckpt-120.h5 is at step 120, past the end of this run \(60 steps" \
    train --set train.max_steps=60 --run-dir P --resume OLD/checkpoints/ckpt-120.h5
# --overwrite: the previous run's outputs and checkpoints are gone, a new id
expect_exit 0 "removed .* file\(s\) of the previous run in A" \
    train --set train.max_steps=60 --run-dir A --overwrite
checks=$((checks + 1))
[[ $(ckpts A) == "ckpt-40.h5 ckpt-50.h5 ckpt-60.h5 " && $(cat A/run.id) != "$id_a" ]] ||
    fail "--overwrite: checkpoints $(ckpts A), run id $(cat A/run.id)"

# ---- the dataset swapped under the same path -----------------------------------------
train --set train.max_steps=60 --run-dir D >D.log 2>&1 || { cat D.log; exit 1; }
cp tn.h5 tn-1.h5
data tn.h5 7
before=$(snapshot D)
expect_exit 2 "checkpoint D/checkpoints/ckpt-60.h5 was trained on other data than data.path = tn.h5 now holds" \
    train --set train.max_steps=70 --run-dir D --resume auto
checks=$((checks + 1))
[[ $(snapshot D) == "$before" ]] || fail "swapped data: the run directory changed"
cp tn-1.h5 tn.h5
expect_exit 0 "resumed from D/checkpoints/ckpt-60.h5" \
    train --set train.max_steps=70 --run-dir D --resume auto
# the same contents under another path are the same data (a warning only)
expect_exit 0 "data.path changed.*resumed from D/checkpoints/ckpt-70.h5|resumed from D/checkpoints/ckpt-70.h5" \
    train --set train.max_steps=70 --set data.path=tn-1.h5 --run-dir D --resume auto

# ---- a deleted dataset in the newest checkpoint: fall back ---------------------------
train --set train.max_steps=60 --run-dir F >F.log 2>&1 || { cat F.log; exit 1; }
cp F/model.h5 F-model.h5
$PY -c "import h5py,sys; f=h5py.File(sys.argv[1],'a'); del f['/optim/m/trunk.fc1.w']" \
    F/checkpoints/ckpt-60.h5
expect_exit 2 "ckpt-60.h5 has no /optim/m/trunk.fc1.w, although it was written with this run's config: it is damaged" \
    train --set train.max_steps=60 --run-dir F --resume F/checkpoints/ckpt-60.h5
train --set train.max_steps=60 --run-dir F --resume auto >F2.log 2>&1 || fail "fallback: exit $?"
checks=$((checks + 1))
if ! grep -q "ckpt-60.h5 has no /optim/m/trunk.fc1.w.*damaged" F2.log ||
    ! grep -q "falling back to the previous checkpoint" F2.log ||
    ! grep -q "resumed from F/checkpoints/ckpt-50.h5 at step 50" F2.log; then
    fail "deleted dataset: no fallback to ckpt-50"
    grep -E "resumed|warning|error" F2.log | head -3 >&2
elif ! same_params F-model.h5 F/model.h5; then
    fail "deleted dataset: model.h5 differs from the uninterrupted run's"
else
    pass "deleted dataset named, fell back to ckpt-50, same weights"
fi

# ---- no --run-dir: a new directory each time -----------------------------------------
mkdir fresh && cd fresh
"$BIN" train "${CFG[@]}" --set data.path=../tn.h5 --set train.max_steps=10 >/dev/null 2>&1 || fail "fresh 1"
"$BIN" train "${CFG[@]}" --set data.path=../tn.h5 --set train.max_steps=10 >/dev/null 2>&1 || fail "fresh 2"
checks=$((checks + 1))
n=$(find runs -maxdepth 2 -name model.h5 | grep -c -E "runs/hps-[0-9]{8}-[12]/model.h5")
[[ $n -eq 2 ]] || fail "default run directories: $(ls runs)"
cd ..
finish
