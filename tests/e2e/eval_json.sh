#!/usr/bin/env bash
# `taskrel eval RUN_DIR` without -c uses the config stored in model.h5 and
# reproduces the run's final test numbers; --json prints one JSON object on
# stdout (the table goes to stderr), the same on 1 and 2 ranks.
source "$(dirname "${BASH_SOURCE[0]}")/lib.bash"
cd "$SCRATCH"
BIN=$TASKREL_BIN
CFG=$TASKREL_SOURCE_DIR/launch/configs/synthetic-tn-hps.ini
"$BIN" data synthetic-tn --out tn.h5 --tasks 3 --n-train 64 --n-val 32 --n-test 32 >/dev/null 2>&1 ||
    { echo "could not build test data"; exit 1; }
"$BIN" train -c "$CFG" --set data.path=tn.h5 --set train.epochs=2 --set run.progress=off \
    --run-dir run >/dev/null 2>&1 || { echo "could not train"; exit 1; }

expect_exit 0 "test mse" "$BIN" eval run                      # no -c: the stored config
"$BIN" eval run --json >eval1.json 2>eval1.err || check_fail "eval --json"
mpirun_np 2 "$BIN" eval run/model.h5 --json >eval2.json 2>/dev/null || check_fail "eval --json on 2 ranks"
grep -q "test mse" eval1.err && pass "the table goes to stderr with --json" || check_fail "no table on stderr"
PY=python3
"$PY" - <<'PYEOF' && pass "eval --json: valid, names the tasks, equals the run's final test numbers" ||
import json
e1 = json.load(open("eval1.json"))  # the whole stdout is one JSON object
e2 = json.load(open("eval2.json"))
final = [json.loads(l) for l in open("run/metrics.jsonl") if '"final":true' in l][-1]
assert e1["metric"] == "mse" and e1["tasks"] == final["tasks"], (e1["tasks"], final["tasks"])
assert all(abs(a - b) <= 1e-4 * max(1, abs(b)) for a, b in zip(e1["test"], final["test_mse"])), (e1, final)
assert abs(e1["test_mean"] - final["test_mean"]) <= 1e-4 * max(1, abs(final["test_mean"]))
assert all(abs(a - b) <= 1e-5 * max(1, abs(b)) for a, b in zip(e1["test"], e2["test"])), (e1, e2)
PYEOF
    check_fail "eval --json output"
expect_exit 2 "give the weights once" "$BIN" eval run --checkpoint run/model.h5
expect_exit 2 "weights file not found: empty/model.h5" bash -c "mkdir -p empty && '$BIN' eval empty"
expect_exit 2 "not found: missing\.h5" "$BIN" eval run --set data.path=missing.h5
finish
