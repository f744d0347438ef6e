#!/usr/bin/env bash
# `taskrel eval` of a run's model.h5 reproduces the run's final test metrics, on
# any rank count; a checkpoint that does not fit the model, or a damaged one, is
# a clear error (exit 2, the file named, no hang); a run's config.ini loads back.
source "$(dirname "${BASH_SOURCE[0]}")/lib.bash"
cd "$TASKREL_SOURCE_DIR"
BIN=$TASKREL_BIN
CFG=launch/configs/synthetic-tn-hps.ini
DATA=$SCRATCH/tn.h5
"$BIN" data synthetic-tn --classification --out "$DATA" --tasks 4 --n-train 1000 --n-val 300 \
    --n-test 1000 >/dev/null 2>&1 || { echo "could not build test data"; exit 1; }
common=(--set data.path="$DATA" --set run.progress=off)

# compare.py METRICS TABLE TRAIN_STDOUT: the table printed by eval (per-task
# rows and the "mean" row; test and val columns) must equal the final line of
# metrics.jsonl to 4 decimals (the table prints %.4f, the JSON %.6g), and its
# rows must be identical to those of the table printed by the training run.
COMPARE=$SCRATCH/compare.py
cat >"$COMPARE" <<'EOF'
import json, sys
final = json.loads(open(sys.argv[1]).read().splitlines()[-1])
assert final.get("final") is True, "last metrics line is not final"
kind = "acc" if "test_acc" in final else "mse"
want = dict(zip(final["tasks"], final["test_" + kind]))
want["mean"] = final["test_mean"]
want_val = dict(zip(final["tasks"], final["val_" + kind]))
want_val["mean"] = final["val_mean"]
def rows(path):
    out = {}
    for line in open(path):
        f = line.split()
        if f and f[0] in want and len(f) >= 3:
            try:
                out[f[0]] = (float(f[-2]), float(f[-1]), line.rstrip())
            except ValueError:
                pass
    return out
got_rows, train_rows = rows(sys.argv[2]), rows(sys.argv[3])
got = {k: v[1] for k, v in got_rows.items()}
got_val = {k: v[0] for k, v in got_rows.items()}
bad = []
for k in want:
    if k in got_rows and got_rows[k][2] != train_rows.get(k, (0, 0, "(missing)"))[2]:
        bad.append(f"eval row '{got_rows[k][2]}' != training row '{train_rows.get(k, (0, 0, '(missing)'))[2]}'")
for k in want:
    if k not in got:
        bad.append(f"{k}: no row in the eval table")
        continue
    for what, w, g in (("test", want[k], got[k]), ("val", want_val[k], got_val[k])):
        if abs(w - g) > 0.5e-4 + 5e-6 * abs(w):  # %.6g keeps fewer decimals above 10
            bad.append(f"{k} {what} {kind}: eval {g:.4f}, training run {w:.6g}")
if bad:
    print("; ".join(bad))
    sys.exit(1)
print(f"test mean {kind} {got['mean']:.4f} over {len(want) - 1} tasks")
EOF

# compare_eval NAME RUN OUTFILE (RUN.out holds the training run's stdout)
compare_eval() {
    local name=$1 run=$2 out=$3 msg
    checks=$((checks + 1))
    if msg=$(python3 "$COMPARE" "$run/metrics.jsonl" "$out" "$run.out" 2>&1); then
        echo "ok   $name: $msg"
    else
        fail "$name: $msg"
        tail -12 "$out" >&2
    fi
}

# eval_case NAME RUN NP [args...]: eval RUN/model.h5 on NP ranks, compare.
eval_case() {
    local name=$1 run=$2 np=$3 rc=0
    shift 3
    local launch=("$BIN")
    [[ $np -gt 1 ]] && launch=(mpirun_np "$np" "$BIN")
    "${launch[@]}" eval "$@" --checkpoint "$run/model.h5" >"$SCRATCH/$name.out" \
        2>"$SCRATCH/$name.err" || rc=$?
    if [[ $rc -ne 0 ]]; then
        checks=$((checks + 1))
        fail "$name: eval exited $rc"
        tail -5 "$SCRATCH/$name.err" >&2
        return 0
    fi
    compare_eval "$name" "$run" "$SCRATCH/$name.out"
}

# HPS trained on 2 ranks, evaluated on 1, 2 and 3
RUN=$SCRATCH/hps
checks=$((checks + 1))
if mpirun_np 2 "$BIN" train -c "$CFG" "${common[@]}" --set train.epochs=5 --run-dir "$RUN" \
    >"$RUN.out" 2>"$RUN.err" && [[ -s $RUN/model.h5 ]]; then
    echo "ok   train hps on 2 ranks"
else
    fail "train hps on 2 ranks"
    tail -5 "$RUN.err" >&2
    finish
    exit 1
fi
eval_case eval-1rank "$RUN" 1 -c "$CFG" "${common[@]}"
eval_case eval-2ranks "$RUN" 2 -c "$CFG" "${common[@]}"
# 3 ranks: 4 tasks on 3 shards, unequal blocks
eval_case eval-3ranks "$RUN" 3 -c "$CFG" "${common[@]}"
# the run's own config.ini is a complete config: it loads and evaluates
expect_exit 0 "" "$BIN" config -c "$RUN/config.ini"
eval_case eval-runconfig "$RUN" 1 -c "$RUN/config.ini"

# batch norm (running statistics are buffers in model.h5) and dropout (off at eval)
RUNBN=$SCRATCH/hps-bn
if mpirun_np 2 "$BIN" train -c "$CFG" "${common[@]}" --set train.epochs=5 \
    --set model.batchnorm=true --set model.dropout=0.2 --run-dir "$RUNBN" >"$RUNBN.out" 2>"$RUNBN.err"; then
    eval_case eval-bn-1rank "$RUNBN" 1 -c "$RUNBN/config.ini"
    eval_case eval-bn-2ranks "$RUNBN" 2 -c "$RUNBN/config.ini"
else
    checks=$((checks + 1))
    fail "train hps with batchnorm+dropout on 2 ranks"
    tail -5 "$RUNBN.err" >&2
fi

# regression (MSE) on shared-input data: trained on 1 rank, evaluated on 2
MM=$SCRATCH/mmoe.h5
"$BIN" data synthetic-mmoe --out "$MM" --n-train 2000 --n-val 500 --n-test 500 >/dev/null 2>&1 ||
    { echo "could not build mmoe data"; exit 1; }
RUNMM=$SCRATCH/mmoe
if "$BIN" train -c launch/configs/synthetic-mmoe-hps.ini --set data.path="$MM" \
    --set run.progress=off --set train.epochs=3 --run-dir "$RUNMM" >"$RUNMM.out" 2>"$RUNMM.err"; then
    eval_case eval-mmoe-2ranks "$RUNMM" 2 -c "$RUNMM/config.ini"
else
    checks=$((checks + 1))
    fail "train hps on synthetic-mmoe"
    tail -5 "$RUNMM.err" >&2
fi

# a model whose shape differs from the checkpoint's: exit 2, naming the file
expect_exit 2 "model\.h5" "$BIN" eval -c "$CFG" "${common[@]}" --set model.head_hidden=7 \
    --checkpoint "$RUN/model.h5"
expect_exit 2 "model\.h5" mpirun_np 2 "$BIN" eval -c "$CFG" "${common[@]}" \
    --set model.mlp_hidden=32 --checkpoint "$RUN/model.h5"
expect_exit 2 "model\.h5" "$BIN" eval -c "$CFG" "${common[@]}" --set data.tasks=3 \
    --checkpoint "$RUN/model.h5"
# damaged checkpoints: exit 2 (not a crash, not a hang), naming the file
size=$(stat -c %s "$RUN/model.h5")
for n in 2000 $((size / 2)) $((size - 8)); do
    head -c "$n" "$RUN/model.h5" >"$SCRATCH/trunc.h5"
    expect_exit 2 "trunc\.h5" timeout 60 "$BIN" eval -c "$CFG" "${common[@]}" \
        --checkpoint "$SCRATCH/trunc.h5"
done
head -c 2000 "$RUN/model.h5" >"$SCRATCH/trunc.h5"
expect_exit 2 "trunc\.h5" mpirun_np 2 "$BIN" eval -c "$CFG" "${common[@]}" \
    --checkpoint "$SCRATCH/trunc.h5"
echo "not hdf5" >"$SCRATCH/text.h5"
expect_exit 2 "text\.h5" "$BIN" eval -c "$CFG" "${common[@]}" --checkpoint "$SCRATCH/text.h5"
# a dataset file is HDF5 but not a weights file
expect_exit 2 "tn\.h5" "$BIN" eval -c "$CFG" "${common[@]}" --checkpoint "$DATA"

finish
