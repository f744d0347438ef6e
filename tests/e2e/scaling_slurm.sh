#!/usr/bin/env bash
# launch/scaling.sh --slurm on a real one-node SLURM cluster started for the
# test (tests/e2e/slurm_cluster.bash): a tiny 1,2-rank weak sweep submitted
# with --no-wait must queue one job per point plus the calibration, all with
# the same name and a singleton dependency; the jobs must run one at a time
# (their recorded start/end times do not overlap) inside SLURM allocations of
# P tasks; then --collect-only writes scaling.csv, the plots and report.md
# with the same columns as the local sweep. Skipped (exit 0 with a message)
# where SLURM cannot be installed or started.
source "$(dirname "${BASH_SOURCE[0]}")/lib.bash"
source "$(dirname "${BASH_SOURCE[0]}")/slurm_cluster.bash"
cd "$TASKREL_SOURCE_DIR"
export TASKREL_BIN
trap 'slurm_cluster_stop; rm -rf "$SCRATCH"' EXIT

if ! slurm_cluster_start "$SCRATCH/cluster"; then
    echo "SKIPPED: $SLURM_CLUSTER_WHY"
    exit 0
fi

"$TASKREL_BIN" data fashion-domains --out "$SCRATCH/fd.h5" --train-frac 0.05 >/dev/null 2>&1 ||
    { echo "dataset build failed"; exit 1; }
OUT=$SCRATCH/sweep
checks=$((checks + 1))
if ! launch/scaling.sh --slurm --no-wait --mode weak --ranks 1,2 -c launch/configs/fashion-hps.ini \
    --set "data.path=$SCRATCH/fd.h5" --set data.tasks=2 --set train.batch_size=16 \
    --steps 6 --warmup 2 --out "$OUT" >"$SCRATCH/submit.log" 2>&1; then
    fail "scaling.sh --slurm --no-wait failed"
    cat "$SCRATCH/submit.log" >&2
    finish
    exit 1
fi
cat "$SCRATCH/submit.log"
read -r -a jobs < <(sed -n 's/.*(singleton chain): //p' "$SCRATCH/submit.log")
checks=$((checks + 1))
[[ ${#jobs[@]} -eq 3 ]] || fail "want 3 jobs (calibrate, P=1, P=2), got '${jobs[*]}'"

# While queued: one name, a singleton dependency on every job not yet running.
checks=$((checks + 1))
queue=$(squeue -h -o '%i|%j|%T|%E|%D' -j "$(
    IFS=,
    echo "${jobs[*]}"
)" 2>&1)
echo "$queue"
names=$(cut -d'|' -f2 <<<"$queue" | sort -u | wc -l)
[[ $names -eq 1 ]] || fail "jobs do not share one name: $queue"
# the first job of the name has nothing to wait for; every later one that
# has not started yet must wait on its singleton dependency
later=$(grep -v "^${jobs[0]}|" <<<"$queue" || true)
pending=$(grep -c '|PENDING|' <<<"$later" || true)
singleton=$(grep -c '|PENDING|singleton' <<<"$later" || true)
[[ $pending -ge 1 && $pending -eq $singleton ]] ||
    fail "queued jobs must wait on singleton ($pending pending, $singleton singleton): $queue"

# Wait for the chain (hang guard: 240 s).
for ((i = 0; i < 240; i++)); do
    [[ -z $(squeue -h -j "$(
        IFS=,
        echo "${jobs[*]}"
    )" 2>/dev/null) ]] && break
    sleep 1
done
checks=$((checks + 1))
[[ -z $(squeue -h -j "$(
    IFS=,
    echo "${jobs[*]}"
)" 2>/dev/null) ]] || fail "jobs still queued after 240 s"

checks=$((checks + 1))
if ! launch/scaling.sh --collect-only --out "$OUT" >"$SCRATCH/collect.log" 2>&1; then
    fail "--collect-only failed"
    cat "$SCRATCH/collect.log" "$OUT"/points/*/slurm.out "$OUT"/points/*/run.log 2>/dev/null | tail -n 40 >&2
fi
for f in calibration.json scaling.csv prediction.csv report.md efficiency.png phases.png; do
    checks=$((checks + 1))
    [[ -s $OUT/$f ]] || fail "$f missing or empty"
done

checks=$((checks + 1))
python3 - "$OUT" "${jobs[@]}" <<'EOF' || fail "SLURM sweep checks (above)"
import csv, json, os, sys
out, jobs = sys.argv[1], sys.argv[2:]
errors = []
def check(c, m):
    if not c:
        errors.append(m)
pts = [json.load(open(os.path.join(out, d, "point.json")))
       for d in ("calibrate", "points/p1", "points/p2")]
for p, j, n in zip(pts, jobs, (2, 1, 2)):
    check(p["slurm_job_id"] == j, f"point ran in job {p['slurm_job_id']}, submitted {j}")
    check(p["exit_code"] == 0 and p["ranks"] == n and p["launcher"] == "mpirun", f"point {p}")
for a, b in zip(pts, pts[1:]):
    check(a["end_unix"] <= b["start_unix"], f"jobs overlap: {a['slurm_job_id']} ends after "
          f"{b['slurm_job_id']} starts")
rows = list(csv.DictReader(open(os.path.join(out, "scaling.csv"))))
check([r["P"] for r in rows] == ["1", "2"], "rows P=1, P=2")
if len(rows) == 2:
    check(rows[1]["replicas"] == "1" and rows[1]["shards"] == "2", "P=2 grid 1x2")
    check(int(rows[1]["samples_per_step"]) == 2 * int(rows[0]["samples_per_step"]), "weak batch")
    check([r["slurm_job_id"] for r in rows] == jobs[1:], "job ids in scaling.csv")
    check(float(rows[0]["efficiency"]) == 1.0 and float(rows[1]["step_ms"]) > 0, "efficiency, step")
    check(int(rows[1]["comm_trunk_allreduce_bytes"]) > 0, "trunk bytes at P=2")
rep = open(os.path.join(out, "report.md")).read()
check("SLURM (one job per point, singleton chain)" in rep, "report names the SLURM mode")
check("Prediction for 1 and 2 ranks within 25 %" in rep, "report verdict")
print("\n".join(errors) if errors else "SLURM sweep: ok")
sys.exit(1 if errors else 0)
EOF
finish
