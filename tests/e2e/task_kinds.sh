#!/usr/bin/env bash
# Tasks with their own class counts (10, 3, 7) and classification next to
# regression (2 + 1), imported from NumPy (multi- and shared-input) and CSV:
# HPS trains them on 1, 2 and 3 ranks with the same numbers (1e-5), the
# metrics are per task kind (accuracy or MSE, the mean loss when mixed), STL,
# MMoE and MRAN train them, and MRN (fc8 under its prior) refuses them with a
# message naming the task and why, exit 2 on every rank. eval --predictions
# writes each task's probabilities over its own classes (or its value), and a
# shared-input test-only file (imported with per-task --classes) evaluates.
source "$(dirname "${BASH_SOURCE[0]}")/lib.bash"
cd "$SCRATCH"
BIN=$TASKREL_BIN
CFG=$TASKREL_SOURCE_DIR/launch/configs/synthetic-tn-hps.ini
need_numpy_python

"$PY" - <<'PYEOF'
import csv
import numpy as np
r = np.random.default_rng(11)
d = 8
sizes = {"train": 120, "val": 40, "test": 40}

def labels(x, w, c):
    y = np.argmax(x @ w[:, :c], axis=1).astype(np.int32)
    y[0] = c - 1  # the largest class occurs, so max label + 1 = c
    return y

w = r.normal(size=(d, 10))
classes, mixed = {}, {}
for name, c in [("ten", 10), ("three", 3), ("seven", 7)]:
    for sp, n in sizes.items():
        x = r.normal(size=(n, d)).astype(np.float32)
        classes[f"{name}/x_{sp}"], classes[f"{name}/y_{sp}"] = x, labels(x, w, c)
        if name != "seven":
            mixed[f"{name}/x_{sp}"], mixed[f"{name}/y_{sp}"] = x, labels(x, w, c)
for sp, n in sizes.items():
    x = r.normal(size=(n, d)).astype(np.float32)
    mixed[f"reg/x_{sp}"], mixed[f"reg/y_{sp}"] = x, (x @ w[:, 0]).astype(np.float32)
np.savez("classes.npz", **classes)
np.savez("mixed.npz", **mixed)

# shared-input: every example labelled for every task
shared_c, shared_m = {}, {}
for sp, n in sizes.items():
    x = r.normal(size=(2 * n, d)).astype(np.float32)
    a, b, c = labels(x, w, 10), labels(x, w, 3), labels(x, w, 7)
    shared_c[f"x_{sp}"], shared_c[f"y_{sp}"] = x, np.stack([a, b, c], axis=1)
    shared_m[f"x_{sp}"] = x
    shared_m[f"y_{sp}"] = np.stack([a, b, x @ w[:, 1]], axis=1).astype(np.float32)
np.savez("sclasses.npz", **shared_c)
np.savez("smixed.npz", **shared_m)

# CSV, multi-input: task 'cls' has class ids, task 'val' real values
with open("mixed.csv", "w", newline="") as f:
    wr = csv.writer(f)
    wr.writerow(["f%d" % i for i in range(d)] + ["label", "split", "task"])
    for i in range(320):
        x = r.normal(size=d)
        k = (i // 2) % 8
        s = "train" if k < 6 else "val" if k == 6 else "test"
        if i % 2 == 0:
            wr.writerow(["%.6f" % v for v in x] + [int(np.argmax(x[:4])), s, "cls"])
        else:
            wr.writerow(["%.6f" % v for v in x] + ["%.6f" % (x @ w[:, 2]), s, "val"])
PYEOF

expect_exit 0 "task seven: classification, classes 7" "$BIN" data import classes.npz --out classes.h5
expect_exit 0 "task reg: regression" "$BIN" data import mixed.npz --out mixed.h5
expect_exit 0 "task t2: classification, classes 7" "$BIN" data import sclasses.npz --out sclasses.h5
expect_exit 0 "task t2: regression" "$BIN" data import smixed.npz --out smixed.h5 \
    --kind classification,classification,regression
expect_exit 0 "task val: regression" "$BIN" data import mixed.csv --label label \
    --task-column task --out csvmixed.h5
expect_exit 2 "--kind lists 2 kind\(s\) for 3 task\(s\)" "$BIN" data import smixed.npz --out x.h5 \
    --kind classification,regression
h5dump -a /tasks/three/classes classes.h5 | grep -q "(0): 3" &&
    h5dump -a /tasks/reg/kind mixed.h5 | grep -q '"regression"' &&
    pass "the file stores each task's kind and class count" || check_fail "kind/classes attributes"

common=(--set run.progress=off --set train.batch_size=16 --set train.epochs=100
    --set train.max_steps=24 --set train.eval_every=8 --set train.seed=5)

# HPS on 1, 2 and 3 ranks (3 ranks: one task each, each rank reads only its task)
for d in classes mixed; do
    expect_exit 0 "run directory: hps-$d-1" "$BIN" train -c "$CFG" --set data.path=$d.h5 \
        "${common[@]}" --run-dir hps-$d-1
    for np in 2 3; do
        expect_exit 0 "run directory: hps-$d-$np" mpirun_np $np "$BIN" train -c "$CFG" \
            --set data.path=$d.h5 --set dist.task_shards=$np "${common[@]}" --run-dir hps-$d-$np
    done
done
for d in csvmixed smixed sclasses; do
    expect_exit 0 "run directory: hps-$d" "$BIN" train -c "$CFG" --set data.path=$d.h5 \
        "${common[@]}" --run-dir hps-$d
done

"$PY" - <<'PYEOF' && pass "HPS: 1, 2 and 3 ranks agree within 1e-5 (every validation and the final metrics)" ||
import json, math
def lines(run):
    return [json.loads(l) for l in open(run + "/metrics.jsonl")]
def vals(run):
    out = []
    for o in lines(run):
        for k in ("val_loss", "val_acc", "val_mse", "test_acc", "test_mse", "test_loss"):
            if k in o:
                out += [(k, v) for v in o[k]]
    return out
for d in ("classes", "mixed"):
    a = vals("hps-%s-1" % d)
    assert len(a) > 20, len(a)
    for np_ in (2, 3):
        b = vals("hps-%s-%d" % (d, np_))
        assert [k for k, _ in a] == [k for k, _ in b], d
        for (k, x), (_, y) in zip(a, b):
            assert (x is None) == (y is None), (d, k)
            if x is not None:
                assert abs(x - y) <= 1e-5 * max(1.0, abs(x)), (d, np_, k, x, y)
PYEOF
    check_fail "HPS results differ between rank counts"

"$PY" - <<'PYEOF' && pass "metrics per task kind: accuracy for classification, MSE and MAE for regression, mean loss when mixed" ||
import json
def final(run):
    return [json.loads(l) for l in open(run + "/metrics.jsonl") if '"final":true' in l][-1]
c = final("hps-classes-1")
assert c["tasks"] == ["ten", "three", "seven"] and "val_mse" not in c and "mean_of" not in c, c
assert all(0 <= v <= 1 for v in c["test_acc"]), c["test_acc"]
assert abs(c["test_mean"] - sum(c["test_acc"]) / 3) < 1e-5
for run, reg in (("hps-mixed-1", 2), ("hps-smixed", 2), ("hps-csvmixed", 1)):
    m = final(run)
    T = len(m["tasks"])
    for t in range(T):
        if t == reg:
            assert m["test_acc"][t] is None and m["test_mse"][t] > 0 and m["test_mae"][t] > 0, m
        else:
            assert 0 <= m["test_acc"][t] <= 1 and m["test_mse"][t] is None, m
            assert m["test_mae"][t] is None, m
    assert m["mean_of"] == "loss", m
    assert abs(m["test_mean"] - sum(m["test_loss"]) / T) < 1e-5, m
    assert abs(m["test_loss"][reg] - m["test_mse"][reg]) < 1e-5 * max(1, m["test_mse"][reg])
PYEOF
    check_fail "final metrics per kind"
grep -Eq "^reg +regression +mse" <("$BIN" eval hps-mixed-1 2>&1) &&
    pass "the table names each task's metric" || check_fail "table lacks the per-task metric"

# the other methods where the model allows it
expect_exit 0 "run directory: stl-mixed" "$BIN" train -c "$CFG" --set data.path=mixed.h5 \
    --set model.kind=stl "${common[@]}" --run-dir stl-mixed
for k in mmoe mran; do
    for d in sclasses smixed; do
        expect_exit 0 "run directory: $k-$d" "$BIN" train -c "$CFG" --set data.path=$d.h5 \
            --set model.kind=$k "${common[@]}" --run-dir $k-$d
    done
done
expect_exit 0 "run directory: mrn-fc7" "$BIN" train -c "$CFG" --set data.path=classes.h5 \
    --set model.kind=mrn --set mrn.layers=fc7 "${common[@]}" --run-dir mrn-fc7

# MRN with fc8 under its prior: refused, naming the task and why, on every rank
why="MRN's prior stacks the tasks' fc8 layers into one tensor"
expect_exit 2 "mrn cannot train task 'three' \(3 classes\) next to task 'ten' \(10 classes\): $why" \
    "$BIN" train -c "$CFG" --set data.path=classes.h5 --set model.kind=mrn --run-dir mrn-x
expect_exit 2 "mrn cannot train task 'reg' \(a regression task\) next to task 'three' \(3 classes\): $why" \
    mpirun_np 2 "$BIN" train -c "$CFG" --set data.path=mixed.h5 --set data.tasks=three,reg \
    --set model.kind=mrn --run-dir mrn-y
expect_exit 2 "mrn cannot train task 'three'" mpirun_np 3 "$BIN" train -c "$CFG" \
    --set data.path=classes.h5 --set model.kind=mrn --run-dir mrn-z
# predictions: probabilities over each task's own classes, pred = argmax, accuracy as reported
expect_exit 0 "wrote predictions" mpirun_np 2 "$BIN" eval hps-mixed-1 --predictions pred.h5 --json
"$BIN" eval hps-mixed-1 --json >eval.json 2>/dev/null
for t in ten three; do
    h5data pred.h5 /tasks/$t/test/probs >probs-$t.txt
    h5data pred.h5 /tasks/$t/test/pred >pred-$t.txt
    h5data pred.h5 /tasks/$t/test/label >label-$t.txt
done
h5data pred.h5 /tasks/reg/test/pred >pred-reg.txt
h5ls pred.h5/tasks/reg/test | grep -q probs && check_fail "a regression task has probs" ||
    pass "a regression task's predictions have no probs"
"$PY" - <<'PYEOF' && pass "predictions: probabilities over each task's classes, pred = argmax, accuracy = the reported one" ||
import json
import numpy as np
e = json.load(open("eval.json"))
assert e["task_metrics"] == ["acc", "acc", "mse"], e
for t, (name, c) in enumerate((("ten", 10), ("three", 3))):
    p = np.loadtxt("probs-%s.txt" % name).reshape(40, c)
    pred = np.loadtxt("pred-%s.txt" % name).astype(int)
    lab = np.loadtxt("label-%s.txt" % name).astype(int)
    assert np.allclose(p.sum(axis=1), 1, atol=1e-5) and (p >= 0).all(), name
    assert (pred == p.argmax(axis=1)).all() and pred.max() < c, name
    assert abs((pred == lab).mean() - e["test"][t]) < 1e-6, (name, (pred == lab).mean(), e["test"][t])
assert np.loadtxt("pred-reg.txt").size == 40
PYEOF
    check_fail "classification predictions"

# a shared-input test-only file (per-task class counts given, as its labels may not show them all)
"$PY" - <<'PYEOF'
import numpy as np
z = np.load("sclasses.npz")
np.savez("sctest.npz", x_test=z["x_test"], y_test=z["y_test"])
PYEOF
expect_exit 0 "no train split" "$BIN" data import sctest.npz --classes 10,3,7 --out sctest.h5
"$BIN" eval hps-sclasses --json >full.json 2>/dev/null
"$BIN" eval hps-sclasses --json --set data.path=sctest.h5 >testonly.json 2>/dev/null ||
    check_fail "eval on a shared-input test-only file"
"$PY" - <<'PYEOF' && pass "a shared-input test-only file: eval gives the same test accuracies" ||
import json
a, b = json.load(open("full.json")), json.load(open("testonly.json"))
assert b["val"] == [None] * 3 and a["test"] == b["test"], (a, b)
PYEOF
    check_fail "test-only eval differs"
[[ ! -e mrn-x/model.h5 && ! -e mrn-y/model.h5 ]] && pass "a refused MRN run writes no model" ||
    check_fail "refused MRN run wrote a model"
finish
