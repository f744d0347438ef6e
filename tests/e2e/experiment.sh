#!/usr/bin/env bash
# The experiment driver end to end (launch/experiment.sh): a grid of 4 labels
# (stl, hps, mrn at two values of mrn.lambda) x 2 seeds of tiny synthetic-tn runs,
# run 2 at a time, collected into results.csv, report.md (delta_p, paired
# interval, relation recovery, selected step) and report.png; a second call runs
# nothing, a run whose final line is missing is the only one run again; the
# delta_p and interval arithmetic on known inputs (the collector's self-test, and
# hand-made run directories through --collect-only); --slurm with a stand-in
# sbatch writes one job array of the unfinished runs and a collect job.
source "$(dirname "${BASH_SOURCE[0]}")/lib.bash"
cd "$TASKREL_SOURCE_DIR"
BIN=$TASKREL_BIN
EXP=launch/experiment.sh

DATA=$SCRATCH/tn.h5
"$BIN" data synthetic-tn --tasks 4 --n-train 64 --n-val 32 --n-test 32 --out "$DATA" \
    >/dev/null 2>&1 || check_fail "could not build synthetic-tn"
grid=(--out "$SCRATCH/exp" --taskrel "$BIN" --seeds 1-2 --jobs 2 --truth "$DATA"
    --set data.path="$DATA" --set train.epochs=2 --set mrn.update_every=4
    --method "stl=launch/configs/synthetic-tn-hps.ini model.kind=stl"
    --method "hps=launch/configs/synthetic-tn-hps.ini"
    --method "mrn=launch/configs/synthetic-tn-mrn.ini mrn.lambda=0.3|1")

# ---- run, collect -------------------------------------------------------------------
out=$("$EXP" "${grid[@]}" 2>&1) || check_fail "experiment failed: $(tail -5 <<<"$out")"
grep -q "8 run(s); 8 to run, 0 finished already" <<<"$out" && pass "8 runs planned and run" ||
    check_fail "unexpected plan: $(head -2 <<<"$out")"
rows=$(($(wc -l <"$SCRATCH/exp/results.csv") - 1))
[[ $rows -eq 8 ]] && pass "results.csv has 8 rows" || check_fail "results.csv has $rows rows"
for label in stl hps mrn/lambda=0.3 mrn/lambda=1; do
    grep -q "^| $label\( (best val)\)\? | 2 |" "$SCRATCH/exp/report.md" &&
        pass "report.md: $label over 2 seeds" || check_fail "report.md lacks $label"
done
grep -q "Δp vs stl" "$SCRATCH/exp/report.md" && grep -q "test − hps (95 % CI)" \
    "$SCRATCH/exp/report.md" && pass "report.md has delta_p and the paired interval" ||
    check_fail "report.md lacks delta_p or the interval"
grep -q "mrn.fc8.task_corr" "$SCRATCH/exp/report.md" && pass "report.md scores relations" ||
    check_fail "report.md lacks relation recovery"
grep -q "at last step" "$SCRATCH/exp/report.md" && pass "report.md flags the selected step" ||
    check_fail "report.md lacks the selected-step flag"
[[ -s $SCRATCH/exp/report.png ]] && pass "report.png written" || check_fail "no report.png"
grep -q -- "--set train.seed=2" "$SCRATCH/exp/runs/mrn/lambda=1/seed-2/run.sh" &&
    grep -q -- "--set mrn.lambda=1" "$SCRATCH/exp/runs/mrn/lambda=1/seed-2/run.sh" &&
    pass "run.sh holds the run's command" || check_fail "run.sh lacks the seed or the override"
python3 - "$SCRATCH/exp/results.csv" <<'EOF' && pass "each label's seeds differ, lambda changes MRN" || check_fail "results.csv values look wrong"
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
by = {(r["label"], r["seed"]): float(r["test_mean"]) for r in rows}
assert by[("hps", "1")] != by[("hps", "2")]
assert by[("mrn/lambda=0.3", "1")] != by[("mrn/lambda=1", "1")]
assert all(r["delta_p_vs_stl"] not in ("", "nan") for r in rows)
EOF

# ---- resume: nothing again, then only the unfinished run ---------------------------
stamp=$(stat -c %Y "$SCRATCH/exp/runs/hps/seed-1/metrics.jsonl")
out=$("$EXP" "${grid[@]}" 2>&1) || check_fail "second call failed"
grep -q "0 to run, 8 finished already" <<<"$out" && pass "second call runs nothing" ||
    check_fail "second call: $(head -1 <<<"$out")"
[[ $(stat -c %Y "$SCRATCH/exp/runs/hps/seed-1/metrics.jsonl") == "$stamp" ]] &&
    pass "finished run untouched" || check_fail "a finished run was touched"
m=$SCRATCH/exp/runs/mrn/lambda=0.3/seed-2/metrics.jsonl
grep -v '"final":true' "$m" >"$m.tmp" && mv "$m.tmp" "$m"
out=$("$EXP" "${grid[@]}" 2>&1) || check_fail "third call failed"
grep -q "1 to run, 7 finished already" <<<"$out" && grep -q '"final":true' "$m" &&
    pass "only the unfinished run ran again, and finished" ||
    check_fail "resume: $(head -2 <<<"$out")"

# ---- arithmetic on known inputs ------------------------------------------------------
python3 launch/experiment_collect.py --self-test >"$SCRATCH/selftest.out" 2>&1 &&
    pass "collector self-test (delta_p, t interval, std)" ||
    check_fail "collector self-test: $(grep FAIL "$SCRATCH/selftest.out")"
K=$SCRATCH/known
mkdir -p "$K"
printf 'label\tseed\trun_dir\tconfig\toverrides\n' >"$K/plan.tsv"
# stl: test acc (0.8, 0.8); hps: (0.88, 0.76) -> delta_p +2.5 %; x = hps + 0.01 s on task a
for s in 1 2 3; do
    for label in stl hps x; do
        case $label in
        stl) a=0.8 b=0.8 ;;
        hps) a=0.88 b=0.76 ;;
        x) a=$(python3 -c "print(0.88 + 0.02 * $s)") b=0.76 ;;
        esac
        d=$K/runs/$label/seed-$s
        mkdir -p "$d"
        tm=$(python3 -c "print(($a + $b) / 2)")
        echo "{\"step\":10,\"val_mean\":0.5}" >"$d/metrics.jsonl"
        echo "{\"final\":true,\"best_step\":$((s == 1 ? 10 : 5)),\"tasks\":[\"a\",\"b\"],\"val_acc\":[0.5,0.5],\"test_acc\":[$a,$b],\"val_mean\":0.5,\"test_mean\":$tm,\"train_seconds\":1}" >>"$d/metrics.jsonl"
        printf '%s\t%s\t%s\tc.ini\t\n' "$label" "$s" "runs/$label/seed-$s" >>"$K/plan.tsv"
    done
done
"$EXP" --out "$K" --collect-only --taskrel "$BIN" >"$SCRATCH/known.out" 2>&1 ||
    check_fail "collect-only failed: $(tail -3 "$SCRATCH/known.out")"
# x - hps per seed: 0.01, 0.02, 0.03 -> +0.0200, interval 0.02 -/+ 4.302653 * 0.01 / sqrt(3)
grep -q '^| x | 3 | .* | +0.0200 \[-0.0048, 0.0448\] (n=3) |' "$K/report.md" &&
    pass "paired difference and 95 % interval on known inputs" ||
    check_fail "interval: $(grep '^| x' "$K/report.md")"
grep -q '^| hps | 3 | 0.5000 ± 0.0000 | 0.8200 ± 0.0000 | 2.50 ± 0.00 |' "$K/report.md" &&
    pass "delta_p = +2.50 % on known inputs" || check_fail "delta_p: $(grep '^| hps' "$K/report.md")"
grep -q '| 1/3 ⚠ |' "$K/report.md" && pass "selected-last flag counts 1 of 3" ||
    check_fail "flag: $(grep '^| stl' "$K/report.md")"
# --add-rows: seeds 1-2 collected here plus seed 3's rows of the earlier results.csv
# give the same report line as all three seeds collected together
K2=$SCRATCH/known2
mkdir -p "$K2/runs"
cp -r "$K/runs/." "$K2/runs/"
rm -rf "$K2"/runs/*/seed-3
grep -v $'\t3\t' "$K/plan.tsv" >"$K2/plan.tsv"
python3 launch/experiment_collect.py --out "$K2" --taskrel "$BIN" --add-rows "$K/results.csv" \
    >"$SCRATCH/known2.out" 2>&1 || check_fail "--add-rows failed: $(tail -3 "$SCRATCH/known2.out")"
grep -q '^| x | 3 | .* | +0.0200 \[-0.0048, 0.0448\] (n=3) |' "$K2/report.md" &&
    [[ $(grep -c '^x,' "$K2/results.csv") -eq 3 ]] &&
    pass "--add-rows: earlier rows join the report and results.csv" ||
    check_fail "--add-rows: $(grep '^| x' "$K2/report.md")"
# launch/compare.py (the quickstart's table): two runs task by task, the difference
out=$(python3 launch/compare.py "$K/runs/stl/seed-3" "$K/runs/x/seed-3" --names STL,X --markdown 2>&1) ||
    check_fail "compare.py failed: $out"
grep -q '^| a | 0.5000 | 0.5000 | +0.0000 | 0.8000 | 0.9400 | +0.1400 |$' <<<"$out" &&
    grep -q '^| \*\*mean\*\* | .* | \*\*0.8000\*\* | \*\*0.8500\*\* | \*\*+0.0500\*\* |$' <<<"$out" &&
    grep -q '^X: selected step 5 of 10, ' <<<"$out" &&
    pass "compare.py: per task, mean and difference on known inputs" || check_fail "compare.py: $out"
python3 launch/compare.py "$K/runs/stl/seed-3" "$K/nothing" >/dev/null 2>&1 && rc=0 || rc=$?
[[ $rc -eq 2 ]] && pass "compare.py: an unfinished run is exit 2" || check_fail "compare.py: exit $rc for a missing run"

# ---- SLURM mode with a stand-in sbatch -------------------------------------------------
mkdir -p "$SCRATCH/bin"
cat >"$SCRATCH/bin/sbatch" <<EOF
#!/usr/bin/env bash
echo "\$*" >>"$SCRATCH/sbatch.calls"
echo \$((4000 + \$(wc -l <"$SCRATCH/sbatch.calls")))
EOF
chmod +x "$SCRATCH/bin/sbatch"
rm -f "$SCRATCH/exp/runs/hps/seed-2/metrics.jsonl" "$SCRATCH/exp/runs/stl/seed-1/metrics.jsonl"
out=$(PATH="$SCRATCH/bin:$PATH" "$EXP" "${grid[@]}" --slurm --sbatch-args "-p test" 2>&1) ||
    check_fail "--slurm failed: $(tail -3 <<<"$out")"
grep -q "^#SBATCH --array=0-1$" "$SCRATCH/exp/slurm/array.sbatch" &&
    [[ $(wc -l <"$SCRATCH/exp/slurm/runs.txt") -eq 2 ]] &&
    pass "--slurm: one array of the 2 unfinished runs" || check_fail "--slurm array: $out"
grep -q -- "-p test --dependency=afterany:4001" "$SCRATCH/sbatch.calls" &&
    grep -q "collect-only" "$SCRATCH/sbatch.calls" &&
    pass "--slurm: a collect job after the array" || check_fail "--slurm collect: $(cat "$SCRATCH/sbatch.calls")"

expect_exit 2 "is required" "$EXP" --method "x=launch/configs/fashion-hps.ini"
expect_exit 2 "not found" "$EXP" --out "$SCRATCH/e2" --method "x=nope.ini"
expect_exit 2 "same label|the label" "$EXP" --out "$SCRATCH/e3" --taskrel "$BIN" \
    --method "x=launch/configs/fashion-hps.ini" --method "x=launch/configs/fashion-stl.ini"
finish
