#!/usr/bin/env bash
# `taskrel data import`: a dataset written with NumPy (.npz, compressed and
# stored; .npy) and one from CSV are imported, their arrays come out equal,
# and each trains with HPS. A CSV with task names holding quotes, a backslash
# and non-ASCII letters trains too, and every line of its metrics.jsonl is
# valid JSON with those names intact. Bad input exits 2 with the reason.
source "$(dirname "${BASH_SOURCE[0]}")/lib.bash"
cd "$SCRATCH"
BIN=$TASKREL_BIN
CFG=$TASKREL_SOURCE_DIR/launch/configs/synthetic-tn-hps.ini
need_numpy_python

"$PY" - <<'PYEOF'
import csv
import numpy as np
r = np.random.default_rng(7)
x = r.normal(size=(240, 6)).astype(np.float32)
w = r.normal(size=(6, 2))
y = (x @ w > 0).astype(np.int32)  # two classification tasks
np.savez_compressed("shared.npz", x_train=x[:160], y_train=y[:160], x_val=x[160:200],
                    y_val=y[160:200], x_test=x[200:], y_test=y[200:])
# multi-input, regression, stored (not compressed) members, big-endian float64 y
np.savez("multi.npz", **{"left/x_train": x[:120], "left/y_train": (x[:120] @ w[:, 0]).astype(">f8"),
                         "right/x_train": x[120:], "right/y_train": (x[120:] @ w[:, 1])})
np.save("fortran.npy", np.asfortranarray(x[:10].astype(np.float64)))
np.save("x_train.npy", x)
np.save("y_train.npy", y[:, 0].astype(np.uint8))
with open("table.csv", "w", newline="", encoding="utf-8") as f:
    wr = csv.writer(f)
    wr.writerow(["f%d" % i for i in range(6)] + ["label", "split", "task"])
    names = ['say "hi"', "back\\slash", "naïve Ñandú"]
    for i in range(240):
        s = "train" if i < 180 else "val" if i < 210 else "test"
        wr.writerow(["%.9g" % v for v in x[i]] + [int(y[i, 0]), s, names[i % 3]])
np.save("expect_x.npy", x)
PYEOF


expect_exit 0 "wrote shared\.h5" "$BIN" data import shared.npz --out shared.h5
expect_exit 0 "task left: regression, train 108, val 12" \
    "$BIN" data import multi.npz --out multi.h5 --val-frac=0.1
expect_exit 0 "task t0: classification, classes 2, train 192, val 48" \
    "$BIN" data import x_train.npy y_train.npy --out npy.h5 --val-frac 0.2
expect_exit 0 "task c: classification, classes 2, train 60, val 10, test 10" \
    "$BIN" data import table.csv --label label --out table.h5 --task-column task --task a \
    --task b --task c
expect_exit 0 "task say \"hi\": classification" \
    "$BIN" data import table.csv --label label --task-column task --out names.h5
cp table.csv tasks.csv
# the shared-input data set: the same table without its task column
sed -i 's/^\(.*\),[^,]*$/\1/' table.csv # drop the task column
expect_exit 0 "task label: classification, classes 2, train 180, val 30, test 30" \
    "$BIN" data import table.csv --label label --out csv.h5

# the arrays are the ones NumPy wrote
h5data shared.h5 /train/x >got_x.txt
h5data shared.h5 /train/y >got_y.txt
"$PY" - <<'PYEOF' && pass "shared.npz: /train/x and /train/y equal the arrays" || check_fail "shared.npz arrays differ"
import numpy as np
x = np.load("expect_x.npy")[:160]
gx = np.loadtxt("got_x.txt", dtype=np.float64)
gy = np.loadtxt("got_y.txt", dtype=np.int64)
assert gx.size == x.size, (gx.size, x.size)
assert np.allclose(gx, x.ravel().astype(np.float64), rtol=1e-6, atol=1e-6)
assert gy.size == 160 * 2 and set(np.unique(gy)) <= {0, 1}
PYEOF

# each imported dataset trains with HPS
for d in shared multi npy csv names; do
    expect_exit 0 "run directory: run-$d" "$BIN" train -c "$CFG" --set data.path=$d.h5 \
        --set train.epochs=2 --set run.progress=off --run-dir run-$d
done

# metrics.jsonl is valid JSON, with the task names as they were written
"$PY" - <<'PYEOF' && pass "metrics.jsonl: valid JSON with quoted, backslashed and non-ASCII task names" ||
import json
lines = open("run-names/metrics.jsonl", encoding="utf-8").read().splitlines()
assert len(lines) >= 2, len(lines)
objs = [json.loads(l) for l in lines]  # raises on any invalid line
final = [o for o in objs if o.get("final")]
assert final and final[-1]["tasks"] == ['say "hi"', "back\\slash", "naïve Ñandú"], final[-1]["tasks"]
PYEOF
    check_fail "metrics.jsonl of run-names is not valid JSON or lost the task names"

# bad input: exit 2 and the reason
printf 'a,b\n1,2,3\n' >ragged.csv
expect_exit 2 "ragged\.csv:2: 3 fields, the header has 2" "$BIN" data import ragged.csv --label b --out x.h5
expect_exit 2 "feature column 'task'.*--task-column" "$BIN" data import tasks.csv --label label --out x.h5
cp table.csv text.csv && sed -i '3s/^[^,]*/abc/' text.csv
expect_exit 2 "row 3, feature column 'f0': 'abc' is not a number" \
    "$BIN" data import text.csv --label label --out x.h5
expect_exit 2 "Fortran order" "$BIN" data import fortran.npy y_train.npy --out x.h5
cp y_train.npy weights.npy
expect_exit 2 "array 'weights': expected names x_train" "$BIN" data import weights.npy --out x.h5
head -c 2000 shared.npz >cut.npz
expect_exit 2 "cut\.npz" "$BIN" data import cut.npz --out x.h5
expect_exit 2 "did you mean --label" "$BIN" data import table.csv --lable label --out x.h5
expect_exit 2 "needs --label" "$BIN" data import table.csv --out x.h5
expect_exit 2 "missing --out" "$BIN" data import shared.npz
[[ ! -e x.h5 && ! -e x.h5.tmp ]] && pass "no output after failed imports" || check_fail "a failed import left x.h5"
finish
