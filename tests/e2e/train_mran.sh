#!/usr/bin/env bash
# MRAN and MMoE end to end on 2 ranks: brief training on synthetic-mmoe
# (regression, every attention type) and on a small multifashion (classification,
# the label-value path of the T-T module); `taskrel eval` of model.h5 (the test
# path: no T-T, no T-F, stored alpha) reproduces the run's final test metric on
# 1 and 2 ranks; relations.h5 holds the documented matrices with the right
# shapes; bad mran.* / mmoe.* values and unsupported data exit 2 on every rank.
source "$(dirname "${BASH_SOURCE[0]}")/lib.bash"
cd "$TASKREL_SOURCE_DIR"
BIN=$TASKREL_BIN
CFG=launch/configs/synthetic-mmoe-hps.ini
DATA=$SCRATCH/mmoe.h5 MF=$SCRATCH/mf.h5 TN=$SCRATCH/tn.h5
"$BIN" data synthetic-mmoe --out "$DATA" --n-train 1000 --n-val 200 --n-test 200 >/dev/null 2>&1 ||
    { echo "could not build synthetic-mmoe"; exit 1; }
"$BIN" data synthetic-tn --out "$TN" --tasks 4 --n-train 50 --n-val 10 --n-test 10 >/dev/null 2>&1 ||
    { echo "could not build synthetic-tn"; exit 1; }
common=(--set data.path="$DATA" --set run.progress=off --set train.epochs=2
    --set model.mlp_hidden=32,16 --set model.head_hidden=8)

# check.py RUN NAMES: relations.h5 of RUN has the named datasets "name=RxC";
# the final test mean is finite. Prints the shapes.
CHECK=$SCRATCH/check.py
cat >"$CHECK" <<'EOF'
import json, math, subprocess, sys
run, want = sys.argv[1], sys.argv[2].split()
final = json.loads(open(run + "/metrics.jsonl").read().splitlines()[-1])
assert final.get("final") is True and math.isfinite(final["test_mean"]), "bad final line"
out = subprocess.run(["h5ls", "-r", run + "/relations.h5"], capture_output=True, text=True).stdout
got = {}
for line in out.splitlines():
    f = line.split()
    if f and f[0].startswith("/relations/"):
        dims = line.split("{")[1].split("}")[0].replace(" ", "")
        got[f[0][len("/relations/"):]] = dims.replace(",", "x")
bad = [w for w in want if got.get(w.split("=")[0]) != w.split("=")[1]]
if bad:
    print(f"relations.h5 has {got}, want {want}")
    sys.exit(1)
print(f"relations {got}, test mean {final['test_mean']:.4f}")
EOF

# eval_matches RUN CONFIG NP: eval of RUN/model.h5 on NP ranks prints the run's test mean
eval_matches() {
    local run=$1 cfg=$2 np=$3 out want got
    checks=$((checks + 1))
    out=$(mpirun_np "$np" "$BIN" eval -c "$run/config.ini" --checkpoint "$run/model.h5" 2>&1) ||
        { fail "eval of $run on $np rank(s) failed: $(tail -2 <<<"$out")"; return 0; }
    want=$(python3 -c "import json,sys; print('%.4f' % json.loads(open(sys.argv[1]).read().splitlines()[-1])['test_mean'])" "$run/metrics.jsonl")
    got=$(awk '$1 == "mean" {print $NF}' <<<"$out")
    [[ "$got" == "$want" ]] || fail "eval of $run on $np rank(s): test mean $got, training run $want"
}

# train_case NAME NP RELATIONS ARGS...: train, check relations.h5, eval on 1 and 2 ranks
train_case() {
    local name=$1 np=$2 rel=$3
    shift 3
    local run=$SCRATCH/$name msg
    checks=$((checks + 1))
    if ! mpirun_np "$np" "$BIN" train -c "$CFG" "$@" --run-dir "$run" >"$run.out" 2>&1; then
        fail "$name: training failed: $(tail -3 "$run.out")"
        return 0
    fi
    if msg=$(python3 "$CHECK" "$run" "$rel"); then
        echo "ok   $name: $msg"
    else
        fail "$name: $msg"
    fi
    eval_matches "$run" "$CFG" 1
    eval_matches "$run" "$CFG" 2
}

for att in dot general concat multihead; do
    train_case "mran-$att" 2 "mran.tt=4x4 mran.ff=16x16 mran.alpha=4x16" "${common[@]}" \
        --set model.kind=mran --set mran.attention=$att
done
train_case mran-ablation 2 "mran.ff=16x16" "${common[@]}" --set model.kind=mran \
    --set mran.modules=ff --set mran.relation_penalty=l1
train_case mran-tf-only 2 "mran.alpha=4x16" "${common[@]}" --set model.kind=mran \
    --set mran.modules=tf --set dist.task_shards=1
train_case mmoe 2 "mmoe.gates=4x3" "${common[@]}" --set model.kind=mmoe --set mmoe.experts=3

# classification: multifashion (2 tasks, 10 classes each), lenet trunk
if "$BIN" data multifashion --out "$MF" --n-train 256 --n-val 64 --n-test 64 >/dev/null 2>&1; then
    train_case mran-multifashion 2 "mran.tt=2x2 mran.ff=32x32 mran.alpha=2x32" \
        --set data.path="$MF" --set run.progress=off --set train.epochs=1 --set model.trunk=lenet \
        --set model.lenet_fc=32 --set model.head_hidden=16 --set model.kind=mran \
        --set train.batch_size=32
else
    fail "could not build multifashion (Fashion-MNIST files missing?)"
fi

# user errors: exit 2 on every rank with the key named, no hang
bad=(train -c "$CFG" --set data.path="$DATA" --set run.progress=off --set train.max_steps=1
    --run-dir "$SCRATCH/bad")
expect_exit 2 "mran.modules: 'xx' is not one of tt, ff, tf" mpirun_np 2 "$BIN" "${bad[@]}" \
    --set model.kind=mran --set mran.modules=tt,xx
expect_exit 2 "mran.heads = 3 does not divide mran.embed_dim = 8" mpirun_np 2 "$BIN" "${bad[@]}" \
    --set model.kind=mran --set mran.attention=multihead --set mran.heads=3
expect_exit 2 "mran.attention: 'cosine' is not one of" mpirun_np 2 "$BIN" "${bad[@]}" \
    --set model.kind=mran --set mran.attention=cosine
expect_exit 2 "mran.alpha_momentum: 0 is out of range" mpirun_np 2 "$BIN" "${bad[@]}" \
    --set model.kind=mran --set mran.alpha_momentum=0
expect_exit 2 "mmoe.experts: 0 is out of range" "$BIN" "${bad[@]}" --set model.kind=mmoe \
    --set mmoe.experts=0
expect_exit 2 "needs towers with hidden layers" mpirun_np 2 "$BIN" "${bad[@]}" \
    --set model.kind=mmoe --set model.head_hidden=0
expect_exit 2 "model.kind = mran needs shared-input data" mpirun_np 2 "$BIN" train -c "$CFG" \
    --set data.path="$TN" --set run.progress=off --set model.kind=mran --run-dir "$SCRATCH/bad2"
finish
