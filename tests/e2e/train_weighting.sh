#!/usr/bin/env bash
# train.weighting end to end: HPS with pcgrad on 2 ranks trains, writes
# grad.cos (T x T, unit diagonal) to relations.h5 and a "weighting" record to
# every validation line of metrics.jsonl; `taskrel inspect` prints grad.cos and
# `taskrel plot relations --name grad.cos` draws it; an uncertainty run's
# model.h5 evaluates with `taskrel eval`; a weighting that does not fit the
# model is exit code 2 with a message naming the keys, on every rank.
source "$(dirname "${BASH_SOURCE[0]}")/lib.bash"
command -v h5ls >/dev/null || { echo "h5ls (hdf5-tools) is needed"; exit 1; }
command -v gnuplot >/dev/null || { echo "gnuplot (gnuplot-nox) is needed"; exit 1; }
BIN=$TASKREL_BIN
CFG=$TASKREL_SOURCE_DIR/launch/configs/synthetic-tn-hps.ini
cd "$SCRATCH"
"$BIN" data synthetic-tn --out tn.h5 --tasks 4 --n-train 64 --n-val 32 --n-test 32 >/dev/null 2>&1 ||
    { echo "could not build test data"; exit 1; }
ok=(-c "$CFG" --set data.path=tn.h5 --set train.epochs=2 --set run.progress=off)

expect_exit 0 "" mpirun_np 2 "$BIN" train "${ok[@]}" --set train.weighting=pcgrad --run-dir pc
if python3 - pc 4 <<'PY'; then pass "pcgrad: grad.cos and metrics"; else check_fail "pcgrad outputs"; fi
import json, subprocess, sys
run, T = sys.argv[1], int(sys.argv[2])
lines = [json.loads(l) for l in open(run + "/metrics.jsonl")]
val = [l for l in lines if "val_mean" in l and not l.get("final")]
assert val and all(l["weighting"]["kind"] == "pcgrad" and len(l["weighting"]["trunk_coef"]) == T
                   for l in val), "no weighting record"
out = subprocess.run(["h5dump", "-d", "/relations/grad.cos", run + "/relations.h5"],
                     capture_output=True, text=True).stdout
assert f"( {T}, {T} )" in out, out[:400]
print("grad.cos", T, "x", T, "; coefficients", val[-1]["weighting"]["trunk_coef"])
PY
expect_exit 0 "grad\.cos" "$BIN" inspect pc
expect_exit 0 "wrote" "$BIN" plot relations pc -o cos.png --name grad.cos
[[ -s cos.png ]] && pass "grad.cos plotted" || check_fail "no cos.png"

expect_exit 0 "" "$BIN" train "${ok[@]}" --set train.weighting=uncertainty --run-dir uw
expect_exit 0 "mean" "$BIN" eval uw

expect_exit 2 "train\.weighting = dwa needs shared layers.*stl" mpirun_np 2 "$BIN" train "${ok[@]}" \
    --set model.kind=stl --set train.weighting=dwa --run-dir e1
expect_exit 2 "train\.rep_grad = true is only for train\.weighting = mgda" "$BIN" train "${ok[@]}" \
    --set train.weighting=pcgrad --set train.rep_grad=true --run-dir e2
expect_exit 2 "train\.weighting" "$BIN" train "${ok[@]}" --set train.weighting=sum --run-dir e3
expect_exit 2 "train\.cagrad_rescale" "$BIN" train "${ok[@]}" --set train.cagrad_rescale=3 --run-dir e4

finish
