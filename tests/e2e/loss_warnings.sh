#!/usr/bin/env bash
# A run that trains without learning warns (and still finishes): AdamW at a
# diverging learning rate warns that the loss climbs and that it has not left
# chance level after train.chance_steps; the same run at a sane rate warns of
# neither.
source "$(dirname "${BASH_SOURCE[0]}")/lib.bash"
cd "$SCRATCH"
BIN=$TASKREL_BIN
"$BIN" data synthetic-tn --classification --out tn.h5 --tasks 4 --dim 16 --n-train 400 \
    --n-val 50 --n-test 50 >/dev/null 2>&1 || { echo "could not build test data"; exit 1; }
args=(-c "$TASKREL_SOURCE_DIR/launch/configs/synthetic-tn-hps.ini" --set data.path=tn.h5
    --set train.optimizer=adamw --set train.epochs=10 --set train.batch_size=32
    --set train.chance_steps=100 --set run.progress=off --set train.log_every=100000)
expect_exit 0 "warning: training loss climbs.*lower train.lr" \
    "$BIN" train "${args[@]}" --set train.lr=3 --run-dir diverging
expect_exit 0 "has not gone below chance level \(mean ln C = 1.386\) after 100 steps" \
    "$BIN" train "${args[@]}" --set train.lr=3 --run-dir diverging2
checks=$((checks + 1))
out=$("$BIN" train "${args[@]}" --set train.lr=1e-3 --run-dir sane 2>&1) || fail "sane run failed"
if grep -qE "chance level|loss climbs" <<<"$out"; then
    fail "a run that learns warned: $(grep -E 'chance|climbs' <<<"$out")"
else
    pass "a run that learns does not warn"
fi
finish
