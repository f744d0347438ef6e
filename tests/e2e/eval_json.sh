#!/usr/bin/env bash
# `taskrel eval RUN_DIR` without -c uses the config stored in model.h5 and
# reproduces the run's final test numbers; --json prints one JSON object on
# stdout (the table goes to stderr), the same on 1 and 2 ranks.
# --predictions FILE.h5 writes every val and test prediction in the
# documented layout (the same on 1 and 2 ranks, its MSE the reported one); a
# file with only a test split is evaluated (and refused by train); an
# unwritable predictions path exits 2 with the reason.
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
need_numpy_python
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

# --predictions: layout, the same on 1 and 2 ranks, the test MSE from the file
expect_exit 0 "wrote predictions to pred1\.h5" "$BIN" eval run/model.h5 --predictions pred1.h5
expect_exit 0 "wrote predictions to pred2\.h5" mpirun_np 2 "$BIN" eval run/model.h5 \
    --predictions pred2.h5
h5ls -r pred1.h5 | awk '{print $1}' | grep -E '^/tasks/task[0-2]/(val|test)/(index|label|pred)$' |
    wc -l | grep -qx 18 && pass "predictions: /tasks/<task>/{val,test}/{index,label,pred}" ||
    check_fail "predictions layout: $(h5ls -r pred1.h5 | head -20)"
h5diff -d 1e-5 pred1.h5 pred2.h5 >/dev/null && pass "predictions equal on 1 and 2 ranks" ||
    check_fail "predictions differ between 1 and 2 ranks"
for t in 0 1 2; do
    h5data pred1.h5 /tasks/task$t/test/pred >p$t.txt
    h5data pred1.h5 /tasks/task$t/test/label >l$t.txt
    h5data pred1.h5 /tasks/task$t/test/index >i$t.txt
    h5data tn.h5 /tasks/task$t/test/y >y$t.txt
done
"$PY" - <<'PYEOF' && pass "predictions: labels are the file's, index 0..n-1, MSE = the reported test MSE" ||
import json
e1 = json.load(open("eval1.json"))
for t in range(3):
    p = [float(v) for v in open("p%d.txt" % t)]
    l = [float(v) for v in open("l%d.txt" % t)]
    y = [float(v) for v in open("y%d.txt" % t)]
    i = [int(v) for v in open("i%d.txt" % t)]
    assert len(p) == 32 and l == y and i == list(range(32)), t
    mse = sum((a - b) ** 2 for a, b in zip(p, l)) / len(p)
    assert abs(mse - e1["test"][t]) <= 1e-4 * max(1, e1["test"][t]), (t, mse, e1["test"][t])
PYEOF
    check_fail "predictions values"
expect_exit 2 "eval --predictions: cannot write nodir/p\.h5: No such file or directory" \
    "$BIN" eval run --predictions nodir/p.h5
expect_exit 2 "eval --predictions: cannot write run: Is a directory" \
    mpirun_np 2 "$BIN" eval run --predictions run

# a file with only a test split: evaluated (same test numbers), not trained on
for t in 0 1 2; do h5data tn.h5 /tasks/task$t/test/x >x$t.txt; done
"$PY" - <<'PYEOF'
import numpy as np
a = {}
for t in range(3):
    a["task%d/x_test" % t] = np.loadtxt("x%d.txt" % t, dtype=np.float32).reshape(32, 16)
    a["task%d/y_test" % t] = np.loadtxt("y%d.txt" % t, dtype=np.float32)
np.savez("testonly.npz", **a)
PYEOF
expect_exit 0 "no train split" "$BIN" data import testonly.npz --out testonly.h5
"$BIN" eval run --json --set data.path=testonly.h5 >evalt.json 2>/dev/null || check_fail "eval on a test-only file"
"$PY" - <<'PYEOF' && pass "a test-only file: eval gives the same test numbers, no val" ||
import json
e1, et = json.load(open("eval1.json")), json.load(open("evalt.json"))
assert et["val"] == [None, None, None] and et["val_mean"] is None, et
assert all(abs(a - b) <= 1e-5 * max(1, abs(a)) for a, b in zip(e1["test"], et["test"])), (e1, et)
PYEOF
    check_fail "eval on a test-only file"
expect_exit 2 "testonly\.h5 has no train split: training needs the train and val splits" \
    "$BIN" train -c "$CFG" --set data.path=testonly.h5 --run-dir run-t
expect_exit 2 "give the weights once" "$BIN" eval run --checkpoint run/model.h5
expect_exit 2 "weights file not found: empty/model.h5" bash -c "mkdir -p empty && '$BIN' eval empty"
expect_exit 2 "not found: missing\.h5" "$BIN" eval run --set data.path=missing.h5
finish
