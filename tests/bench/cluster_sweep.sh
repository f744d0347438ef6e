#!/usr/bin/env bash
# tests/bench/cluster_sweep.sh [OUT] — the scaling driver's SLURM weak sweep
# over 1, 2 and 4 emulated nodes (tests/e2e/cluster.bash, one rank per node),
# once per link setting: unshaped, then tbf at 10 Gbit/s, 1 Gbit/s and
# 100 Mbit/s on every node's link (TASKREL_SWEEP_RATES, space separated).
# Each sweep calibrates alpha/beta on 2 nodes under the same shaping and
# writes the cost model's prediction next to the measurement
# (OUT/<setting>/scaling.csv, report.md); a summary table at the end.
# Root only; not run by ctest (minutes per setting). Run from the repository:
#
#   sudo tests/bench/cluster_sweep.sh scaling/cluster
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
OUT=${1:-scaling/cluster-$(date -u +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
export TASKREL_BIN=${TASKREL_BIN:-$ROOT/build/taskrel}
[[ -x $TASKREL_BIN ]] || { echo "build first (launch/setup.sh)"; exit 1; }
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
source "$ROOT/tests/e2e/cluster.bash"
trap 'cluster_stop' EXIT
cluster_start "$OUT/cluster" 4 || { echo "cluster: $CLUSTER_WHY"; exit 1; }
echo "cluster up: $(cluster_run sinfo -h -o '%D nodes %t %N'); load: $(cut -d' ' -f1-3 /proc/loadavg)"
export TASKREL_SBATCH_ARGS="--ntasks-per-node=1" TASKREL_POINT_LAUNCHER=srun
for rate in none ${TASKREL_SWEEP_RATES:-10gbit 1gbit 100mbit}; do
    if [[ $rate == none ]]; then cluster_shape off; else cluster_shape "$rate"; fi
    echo "== links: $rate (load $(cut -d' ' -f1-3 /proc/loadavg))"
    cluster_run "$ROOT/launch/scaling.sh" --slurm --mode weak --ranks 1,2,4 \
        -c launch/configs/synthetic-tn-hps.ini --set "data.path=$OUT/synthetic-tn.h5" \
        --steps "${TASKREL_SWEEP_STEPS:-30}" --warmup 5 --out "$OUT/$rate" >"$OUT/$rate.log" 2>&1 ||
        echo "sweep at $rate failed (see $OUT/$rate.log)"
done
cluster_shape off
python3 - "$OUT" none ${TASKREL_SWEEP_RATES:-10gbit 1gbit 100mbit} <<'EOF'
import csv, json, os, sys
out = sys.argv[1]
print("| links | alpha (us) | beta (ns/B) = GB/s | P | measured step ms | model ms | error % | load |")
print("|---|---|---|---|---|---|---|---|")
for rate in sys.argv[2:]:
    d = os.path.join(out, rate)
    try:
        cal = json.load(open(os.path.join(d, "calibration.json")))["allreduce"]
        rows = list(csv.DictReader(open(os.path.join(d, "scaling.csv"))))
    except (OSError, ValueError, KeyError):
        print(f"| {rate} | (no result) |")
        continue
    for r in rows:
        print(f"| {rate} | {1e6 * cal['alpha_s']:.1f} | {1e9 * cal['beta_s_per_byte']:.3f} = "
              f"{1e-9 / cal['beta_s_per_byte']:.2f} | {r['P']} | {float(r['step_ms']):.2f} | "
              f"{float(r['pred_step_ms'] or 'nan'):.2f} | {r['pred_error_pct']} | {r['loadavg_before']} |")
EOF
