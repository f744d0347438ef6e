#!/usr/bin/env bash
# launch/scaling.sh end to end on this machine: a tiny 1,2-rank weak sweep
# (lenet HPS, 2 fashion-domains tasks, 2 warm-up + 6 timed steps) must write
# calibration.json, scaling.csv, prediction.csv, both PNGs and report.md, and
# the CSV must hold what docs/scaling.md promises: weak scaling doubles the
# batch, P = 1 is the efficiency baseline, the trunk all-reduce moves exactly
# the trunk's gradient floats per step at P = 2 and none at P = 1, algbw/busbw
# follow the nccl-tests definitions, the phases add up to the step time, and
# the model reproduces the P = 1 step it was calibrated on. Also: usage errors
# exit 2, `taskrel calibrate` on 1 rank exits 2. Timings are never asserted
# beyond being positive.
source "$(dirname "${BASH_SOURCE[0]}")/lib.bash"
cd "$TASKREL_SOURCE_DIR"
command -v gnuplot >/dev/null || { echo "gnuplot (gnuplot-nox) is needed"; exit 1; }
export TASKREL_BIN
S=launch/scaling.sh

"$TASKREL_BIN" data fashion-domains --out "$SCRATCH/fd.h5" --train-frac 0.05 >/dev/null 2>&1 ||
    { echo "dataset build failed"; exit 1; }
common=(-c launch/configs/fashion-hps.ini --set "data.path=$SCRATCH/fd.h5" --set data.tasks=2
    --set train.batch_size=16)

expect_exit 2 "--mode needs weak or strong" $S --mode sideways --ranks 1,2 "${common[@]}"
expect_exit 2 "--ranks needs" $S --mode weak --ranks 0,2 "${common[@]}"
expect_exit 2 "-c CONFIG is required" $S --mode weak --ranks 1,2
expect_exit 2 "given twice" $S --mode weak --ranks 1,1 "${common[@]}"
expect_exit 2 "unknown option" $S --mode weak --ranks 1 --bogus "${common[@]}"
expect_exit 2 "at least 2 ranks" mpirun_np 1 "$TASKREL_BIN" calibrate

OUT=$SCRATCH/sweep
checks=$((checks + 1))
t0=$SECONDS
if ! timeout 300 $S --mode weak --ranks 1,2 "${common[@]}" --steps 6 --warmup 2 --out "$OUT" \
    >"$SCRATCH/sweep.log" 2>&1; then
    fail "scaling.sh sweep failed"
    tail -n 30 "$SCRATCH/sweep.log" >&2
    finish
    exit 1
fi
echo "sweep took $((SECONDS - t0)) s"

for f in sweep.json calibration.json scaling.csv prediction.csv report.md efficiency.png phases.png; do
    checks=$((checks + 1))
    [[ -s $OUT/$f ]] || fail "$f missing or empty"
done
for f in efficiency.png phases.png; do
    checks=$((checks + 1))
    [[ $(head -c 4 "$OUT/$f" | od -An -c | tr -d ' ') == '211PNG' ]] || fail "$f is not a PNG"
done

checks=$((checks + 1))
# nproc honours OMP_NUM_THREADS, which launch/test.sh sets to 1: count the cores
# as the driver does
python3 - "$OUT" "$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc)" <<'EOF' || fail "scaling.csv / report.md checks (above)"
import csv, json, math, os, sys
out, cores = sys.argv[1], int(sys.argv[2])
errors = []
def check(cond, msg):
    if not cond:
        errors.append(msg)
rows = list(csv.DictReader(open(os.path.join(out, "scaling.csv"))))
check(len(rows) == 2, f"want 2 rows, got {len(rows)}")
need = ["P", "replicas", "shards", "oversubscribed", "batch_size", "samples_per_step", "step_ms",
        "samples_per_s", "efficiency", "compute_ms", "phase_data_ms", "phase_forward_ms",
        "phase_backward_ms", "phase_comm_ms", "phase_optimizer_ms", "comm_trunk_allreduce_ms",
        "comm_trunk_allreduce_bytes", "comm_scalars_bytes", "trunk_algbw_GBps", "trunk_busbw_GBps",
        "median_step_ms", "pred_step_ms", "pred_error_pct", "loadavg_before", "loadavg_after",
        "git_rev", "config_hash", "machine", "mode"]
for k in need:
    check(k in rows[0], f"column {k} missing")
if errors:
    print("\n".join(errors)); sys.exit(1)
r1, r2 = rows
f = lambda r, k: float(r[k])
check(r1["P"] == "1" and r2["P"] == "2", "rows are not P=1, P=2")
check(int(r2["batch_size"]) == 2 * int(r1["batch_size"]) == 32, "weak: batch_size 16 -> 32")
check(int(r2["samples_per_step"]) == 2 * int(r1["samples_per_step"]) == 64,
      f"weak: samples per step {r1['samples_per_step']} -> {r2['samples_per_step']}, want 32 -> 64")
check(f(r1, "efficiency") == 1.0, "efficiency of the first point must be 1")
eff = f(r2, "samples_per_s") / (2 * f(r1, "samples_per_s"))
check(abs(f(r2, "efficiency") - eff) < 1e-4 * eff, f"efficiency {r2['efficiency']} != {eff}")
for r in rows:
    check(r["oversubscribed"] == str(int(int(r["P"]) > cores)), f"P={r['P']}: oversubscribed flag")
    check(r["mode"] == "weak" and len(r["config_hash"]) == 12 and r["git_rev"], "metadata")
    check(float(r["loadavg_before"]) >= 0, "load average")
    step = f(r, "step_ms")
    check(step > 0 and f(r, "median_step_ms") > 0, "step times must be positive")
    phases = sum(f(r, k) for k in r if k.startswith("phase_") and r[k] != "")
    # the phases are the timed parts of a step and cannot exceed it; the rest
    # (the non-finite scan of the gradients, bookkeeping) is small, but how
    # small depends on the machine's load, so only a generous bound is checked
    check(phases <= step * 1.001 and phases >= 0.5 * step,
          f"P={r['P']}: phases sum {phases:.3f} ms vs step {step:.3f} ms")
    check(abs(f(r, "compute_ms") - f(r, "phase_forward_ms") - f(r, "phase_backward_ms")) < 1e-3,
          "compute = forward + backward")
final = [json.loads(l) for l in open(os.path.join(out, "points/p2/run/metrics.jsonl"))][-1]
trunk = final["sizes"]["trunk_floats"]
check(trunk > 500000, f"trunk_floats {trunk}")
check(int(r2["comm_trunk_allreduce_bytes"]) == 4 * trunk,
      f"P=2 trunk bytes/step {r2['comm_trunk_allreduce_bytes']} != 4 x {trunk}")
check(int(r1["comm_trunk_allreduce_bytes"]) == 0, "P=1 moves no trunk bytes")
algbw = int(r2["comm_trunk_allreduce_bytes"]) / (f(r2, "comm_trunk_allreduce_ms") / 1e3) / 1e9
check(abs(f(r2, "trunk_algbw_GBps") - algbw) < 1e-3 * algbw, f"algbw {r2['trunk_algbw_GBps']} vs {algbw}")
check(abs(f(r2, "trunk_busbw_GBps") - algbw) < 1e-3 * algbw, "busbw at P=2 = algbw x 2(1)/2")
c = final["comm"]["trunk_allreduce"]
check(c["ranks"] == 2 and abs(c["algbw_GBps"] - c["bytes"] / c["s"] / 1e9) < 1e-4 * c["algbw_GBps"],
      "metrics.jsonl trunk_allreduce algbw")
check(abs(f(r1, "pred_error_pct")) < 25, f"model at P=1 (its own calibration point): {r1['pred_error_pct']} %")
cal = json.load(open(os.path.join(out, "calibration.json")))
check(cal["allreduce"]["beta_s_per_byte"] > 0 and cal["pingpong"]["beta_s_per_byte"] > 0, "betas > 0")
check(len(cal["samples"]) >= 5, "calibration sizes")
pred = list(csv.DictReader(open(os.path.join(out, "prediction.csv"))))
check({int(p["P"]) for p in pred} >= {1, 4096} and {int(p["T"]) for p in pred} >= {2, 1024},
      "prediction.csv covers P 1..4096 and T up to 1024")
rep = open(os.path.join(out, "report.md")).read()
for p in (1, 2):
    r = rows[p - 1]
    want = "within" if abs(f(r, "pred_error_pct")) <= 25 else "NOT within"
    check(f"- P = {p}: model" in rep and f"**{want} 25 %**" in rep, f"report verdict for P={p}")
check("Prediction for 1 and 2 ranks within 25 %" in rep, "report: overall verdict")
print("\n".join(errors) if errors else "scaling.csv, prediction.csv, report.md: ok")
sys.exit(1 if errors else 0)
EOF

# --collect-only rebuilds the same CSV from the directory
checks=$((checks + 1))
cp "$OUT/scaling.csv" "$SCRATCH/first.csv"
$S --collect-only --out "$OUT" >/dev/null 2>&1 && cmp -s "$OUT/scaling.csv" "$SCRATCH/first.csv" ||
    fail "--collect-only did not reproduce scaling.csv"
finish
