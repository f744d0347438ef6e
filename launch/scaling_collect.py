#!/usr/bin/env python3
"""launch/scaling_collect.py DIR — turn a sweep directory of launch/scaling.sh
into scaling.csv, prediction.csv, efficiency.png, phases.png and report.md.

Reads DIR/sweep.json, DIR/calibration.json (optional: no prediction without
it) and, per point, DIR/points/pP/point.json and run/metrics.jsonl. Phases
and collective kinds are whatever metrics.jsonl holds (phases_s, comm), so new
phases (mrn, mran, checkpoint) and kinds appear as columns without changes
here. All per-step figures are rank 0's, over the timed window: from the
validation at the end of the warm-up to the last one. Exit 1 if no point has
usable metrics.
"""
import csv
import json
import math
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import scaling_model  # noqa: E402

SKIP_PHASES = ("eval",)  # not part of a training step
SKIP_COMM = ("eval",)


def load_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def window(metrics, warmup):
    rows = []
    for line in open(metrics):
        if line.strip():
            rows.append(json.loads(line))
    final = next((r for r in rows if r.get("final")), None)
    timed = [r for r in rows if not r.get("final") and "train_seconds" in r and "phases_s" in r]
    if final is None or not timed:
        return None
    b = timed[-1]
    a = next((r for r in timed if r["step"] >= warmup and r is not b), None)
    if a is None:  # too few steps for a warm-up window: time from the start
        a = {"step": 0, "train_seconds": 0.0, "train_samples_per_s": 0.0, "phases_s": {},
             "comm": {}}
    return final, a, b


def median_step_ms(run_dir, lo, hi):
    """Rank 0's median step (sum of its non-eval phases) in [lo, hi) from timeline.json."""
    ev = load_json(os.path.join(run_dir, "timeline.json"))
    if not ev:
        return None
    per = {}
    for e in ev.get("traceEvents", []):
        k = e.get("args", {}).get("step")
        if e.get("ph") == "X" and e.get("tid") == 0 and e.get("name") != "eval" \
                and k is not None and lo <= k < hi:
            per[k] = per.get(k, 0.0) + e["dur"]
    if not per:
        return None
    v = sorted(per.values())
    return (v[len(v) // 2] if len(v) % 2 else 0.5 * (v[len(v) // 2 - 1] + v[len(v) // 2])) / 1e3


def point_row(sweep, p):
    """The point's row: the run with the median step time of its repeats."""
    n = sweep.get("repeat", 1)
    dirs = [os.path.join(sweep["dir"], "points", f"p{p}" + (f".{k}" if n > 1 else ""))
            for k in range(1, n + 1)]
    got = [run_row(sweep, p, d) for d in dirs]
    ok = sorted((g for g in got if g[1]), key=lambda g: g[0]["step_ms"])
    if not ok:
        return got[0]
    row, run = ok[(len(ok) - 1) // 2]
    row["runs"] = len(ok)
    row["step_ms_min"], row["step_ms_max"] = ok[0][0]["step_ms"], ok[-1][0]["step_ms"]
    return row, run


def run_row(sweep, p, d):
    info = load_json(os.path.join(d, "point.json")) or {}
    row = {"P": p, "exit_code": info.get("exit_code", "")}
    m = os.path.join(d, "run", "metrics.jsonl")
    w = window(m, sweep["warmup"]) if os.path.exists(m) else None
    if w is None or info.get("exit_code", 0) != 0:
        row["error"] = f"no usable metrics in {m}"
        return row, None
    final, a, b = w
    n = b["step"] - a["step"]
    dt = b["train_seconds"] - a["train_seconds"]
    samples = b["train_samples_per_s"] * b["train_seconds"] - a["train_samples_per_s"] * a["train_seconds"]
    cores = info.get("cores") or sweep["machine"]["cores"]
    med = median_step_ms(os.path.join(d, "run"), a["step"], b["step"])
    if med is not None:
        row["median_step_ms"] = med
    row.update({
        "replicas": final["replicas"], "shards": final["shards"],
        "oversubscribed": int(p > cores), "batch_size": final["sizes"]["batch"],
        "samples_per_step": round(samples / n), "timed_steps": n,
        "step_ms": 1e3 * dt / n, "samples_per_s": samples / dt,
    })
    pa, pb = a["phases_s"], b["phases_s"]
    phases = {k: (pb[k] - pa.get(k, 0.0)) / n for k in pb if k not in SKIP_PHASES}
    for k, v in phases.items():
        row[f"phase_{k}_ms"] = 1e3 * v
    row["compute_ms"] = 1e3 * (phases.get("forward", 0.0) + phases.get("backward", 0.0))
    for k, cb in b["comm"].items():
        if k in SKIP_COMM:
            continue
        ca = a["comm"].get(k, {"calls": 0, "bytes": 0, "s": 0.0})
        row[f"comm_{k}_ms"] = 1e3 * (cb["s"] - ca["s"]) / n
        row[f"comm_{k}_bytes"] = round((cb["bytes"] - ca["bytes"]) / n)
    tb, ta = b["comm"].get("trunk_allreduce"), a["comm"].get("trunk_allreduce", {"bytes": 0, "s": 0.0})
    if tb and tb["s"] - ta["s"] > 0 and p > 1:
        algbw = (tb["bytes"] - ta["bytes"]) / (tb["s"] - ta["s"]) / 1e9
        row["trunk_algbw_GBps"] = algbw
        row["trunk_busbw_GBps"] = algbw * 2 * (p - 1) / p
    row["loadavg_before"] = info.get("loadavg_before", "")
    row["loadavg_after"] = info.get("loadavg_after", "")
    c0, c1 = info.get("cpu_some_us_before"), info.get("cpu_some_us_after")
    if c0 is not None and c1 is not None and info.get("wall_s"):
        row["cpu_wait_pct"] = 100 * (c1 - c0) / 1e6 / info["wall_s"]
    row["host"] = info.get("host", "")
    row["cores"] = cores
    row["slurm_job_id"] = info.get("slurm_job_id", "")
    return row, (final, a, b)


def fmt(v):
    if isinstance(v, float):
        return f"{v:.6g}"
    return v


def write_csv(path, rows, fixed, tail):
    keys = list(fixed)
    for r in rows:
        for k in r:
            if k not in keys and k not in tail:
                keys.append(k)
    keys += [k for k in tail if any(k in r for r in rows)]
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        for r in rows:
            w.writerow({k: fmt(r.get(k, "")) for k in keys})
    return keys


def kind_of(sweep):
    cfg = os.path.join(sweep["dir"], "points", f"p{sweep['ranks'][0]}", "run", "config.ini")
    kind = scaling_model.ini_value(cfg, "model", "kind", "hps") if os.path.exists(cfg) else "hps"
    every = scaling_model.ini_value(cfg, "mrn", "update_every", "50") if os.path.exists(cfg) else "50"
    shards = scaling_model.ini_value(cfg, "dist", "task_shards", "0") if os.path.exists(cfg) else "0"
    return kind, int(every), int(shards)


def build_model(sweep, base_run, calib, local):
    final, a, b = base_run
    kind, every, shards = kind_of(sweep)
    base = scaling_model.base_from_window(a, b, final["ranks"], final["shards"], final["sizes"]["batch"])
    cores = sweep["machine"]["cores"] if local else None
    return scaling_model.Model(calib, final, base, cores, kind, every, shards)


def gnuplot(script, cwd):
    if not shutil.which("gnuplot"):
        print("scaling_collect: gnuplot not found, no plots (apt-get install gnuplot-nox)", file=sys.stderr)
        return False
    r = subprocess.run(["gnuplot"], input=script, text=True, cwd=cwd, capture_output=True)
    if r.returncode != 0:
        print("scaling_collect: gnuplot failed:\n" + r.stderr, file=sys.stderr)
    return r.returncode == 0


def plots(d, rows, keys, mode):
    ok = [r for r in rows if "efficiency" in r]
    with open(os.path.join(d, "efficiency.dat"), "w") as f:
        f.write("# P efficiency predicted_efficiency oversubscribed\n")
        for r in ok:
            f.write(f"{r['P']} {r['efficiency']:.4f} {r.get('pred_efficiency', float('nan')):.4f} "
                    f"{r['oversubscribed']}\n")
    stack = [k for k in keys if (k.startswith("phase_") and k != "phase_comm_ms")
             or (k.startswith("comm_") and k.endswith("_ms"))]
    stack = [k for k in stack if any(r.get(k, 0) > 0 for r in ok)]
    with open(os.path.join(d, "phases.dat"), "w") as f:
        f.write("P " + " ".join(k.replace("_ms", "").replace("phase_", "").replace("comm_", "comm:")
                              for k in stack) + "\n")
        for r in ok:
            f.write(f"{r['P']}{'*' if r['oversubscribed'] else ''} "
                    + " ".join(f"{r.get(k, 0.0):.4f}" for k in stack) + "\n")
    eff = f"""set terminal png size 800,500 noenhanced
set output 'efficiency.png'
set title '{mode} scaling efficiency (vs the first point); open points: P > cores'
set xlabel 'ranks P'; set ylabel 'efficiency'
set logscale x 2; set yrange [0:*]; set grid; set key bottom left
plot 'efficiency.dat' u 1:($4==0?$2:1/0) w lp pt 7 ps 1.5 t 'measured', \\
     'efficiency.dat' u 1:($4==1?$2:1/0) w p pt 6 ps 1.5 t 'measured, oversubscribed', \\
     'efficiency.dat' u 1:3 w lp dt 2 pt 2 t 'model', 1 w l lc 'gray' t ''
"""
    ph = f"""set terminal png size 800,500 noenhanced
set output 'phases.png'
set title 'step time by phase, rank 0 ({mode} scaling; * = oversubscribed)'
set ylabel 'ms per step'; set xlabel 'ranks P'
set style data histograms; set style histogram rowstacked; set style fill solid 0.8 border -1
set boxwidth 0.6; set key outside right; set yrange [0:*]; set grid y
plot for [i=2:{len(stack) + 1}] 'phases.dat' u i:xtic(1) t columnheader(i)
"""
    return gnuplot(eff, d) and (not stack or gnuplot(ph, d))


def predictions(sweep, model, rows, base_row):
    """Model vs measured for each point, and the table beyond the machine."""
    p0, b0 = sweep["ranks"][0], sweep["base_batch"]
    mode = sweep["mode"]

    def batch(p):
        return b0 * p // p0 if mode == "weak" else b0

    ref = model.predict(p0, None, batch(p0))
    for r in rows:
        if "step_ms" not in r:
            continue
        pr = model.predict(r["P"], None, batch(r["P"]))
        r["pred_step_ms"] = 1e3 * pr["step_s"]
        r["pred_error_pct"] = 100 * (r["step_ms"] - r["pred_step_ms"]) / r["step_ms"]
        r["pred_efficiency"] = pr["samples_per_s"] * p0 / (ref["samples_per_s"] * r["P"])
    # beyond the machine: no oversubscription, P up to 4096, T up to 1024
    model.cores = None
    T0 = model.sizes["tasks"]
    table = []
    for t in sorted({T0, 16, 64, 256, 1024}):
        first = None
        for p in [2 ** i for i in range(13)]:
            pr = model.predict(p, t, b0 * p if mode == "weak" else b0)
            first = first or pr
            pr["efficiency"] = pr["samples_per_s"] * first["P"] / (first["samples_per_s"] * p)
            table.append(pr)
    return table


def report(d, sweep, rows, keys, table, calib, model, plotted):
    mode = sweep["mode"]
    m = sweep["machine"]
    L = [f"# Scaling report: {mode} scaling, ranks {','.join(map(str, sweep['ranks']))}", ""]
    L += [f"- config: `{sweep['config']}`{' with ' + ' '.join('--set ' + s for s in sweep['sets']) if sweep['sets'] else ''}"
          f" (config hash `{sweep['config_hash']}`), git `{sweep['git_rev']}`",
          f"- machine: {m['host']}, {m['cpu']}, {m['cores']} cores; "
          f"{'SLURM (one job per point, singleton chain)' if sweep['slurm'] else 'mpirun (launch/local.sh)'}",
          f"- {sweep['warmup']} warm-up + {sweep['steps']} timed steps per point; "
          f"train.batch_size = {sweep['base_batch']}{' x P / ' + str(sweep['ranks'][0]) if mode == 'weak' else ''}",
          "- per-step figures are rank 0's over the timed steps; comm times include waiting for "
          "slower ranks; load average and CPU wait (share of wall time some task waited for a "
          "CPU) say how busy the machine was", ""]
    cols = [("P", "P"), ("replicas", "R"), ("shards", "S"), ("batch_size", "batch"),
            ("samples_per_s", "samples/s"), ("step_ms", "step ms"), ("median_step_ms", "median ms"),
            ("efficiency", "eff"),
            ("compute_ms", "compute ms"), ("phase_comm_ms", "comm ms"),
            ("pred_step_ms", "model ms"), ("pred_error_pct", "model err"),
            ("loadavg_before", "load"), ("cpu_wait_pct", "cpu wait"), ("oversubscribed", "oversub")]
    L += ["| " + " | ".join(c[1] for c in cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        cells = []
        for k, _ in cols:
            v = r.get(k, "")
            if k == "efficiency" and v != "":
                v = f"{100 * v:.1f} %"
            elif k in ("pred_error_pct", "cpu_wait_pct") and v != "":
                v = f"{v:+.1f} %" if k == "pred_error_pct" else f"{v:.1f} %"
            elif k == "oversubscribed":
                v = "**yes**" if v == 1 else "no" if v == 0 else ""
            elif isinstance(v, float):
                v = f"{v:.2f}" if v < 100 else f"{v:.0f}"
            cells.append(str(v) if v != "" else (r.get("error", "") if k == "step_ms" else ""))
        L.append("| " + " | ".join(cells) + " |")
    L.append("")
    comm_kinds = [k for k in keys if k.startswith("comm_") and k.endswith("_bytes")
                  and any(r.get(k, 0) for r in rows)]
    if comm_kinds:
        L += ["Bytes per step and time per step of each collective (rank 0):", "",
              "| P | " + " | ".join(k[5:-6] for k in comm_kinds) + " | trunk algbw / busbw GB/s |",
              "|---|" + "---|" * (len(comm_kinds) + 1)]
        for r in rows:
            if "step_ms" in r:
                bw = (f"{r['trunk_algbw_GBps']:.2f} / {r['trunk_busbw_GBps']:.2f}"
                      if "trunk_algbw_GBps" in r else "")
                L.append(f"| {r['P']} | " + " | ".join(
                    f"{r.get(k, 0) / 1e6:.3f} MB, {r.get(k[:-6] + '_ms', 0):.2f} ms" for k in comm_kinds)
                    + f" | {bw} |")
        L.append("")
    if plotted:
        L += ["![efficiency](efficiency.png)", "", "![phases](phases.png)", ""]
    L += ["## Cost model", ""]
    if model is None:
        L += ["No calibration.json: no prediction (run `taskrel calibrate` on 2 ranks).", ""]
    else:
        L += [f"Calibration (`taskrel calibrate`, 2 ranks): all-reduce alpha = {model.alpha * 1e6:.3g} us, "
              f"beta = {model.beta * 1e9:.4g} ns/byte ({1e-9 / model.beta:.1f} GB/s); ping-pong alpha = "
              f"{calib['pingpong']['alpha_s'] * 1e6:.3g} us, beta = {calib['pingpong']['beta_s_per_byte'] * 1e9:.4g} ns/byte; "
              f"GEMM per rank {calib['sgemm_flops'] / 1e9:.0f} GFLOP/s (sgemm), {calib['dgemm_flops'] / 1e9:.0f} (dgemm). "
              f"Compute per step is the first point's, rescaled by flop-weighted rows per rank "
              f"(and by P / cores when P > cores on this machine). See docs/scaling.md.", ""]
        small = [r for r in rows if "pred_error_pct" in r and r["P"] <= 2]
        for r in small:
            ok = abs(r["pred_error_pct"]) <= 25
            L.append(f"- P = {r['P']}: model {r['pred_step_ms']:.2f} ms, measured {r['step_ms']:.2f} ms, "
                     f"error {r['pred_error_pct']:+.1f} % — **{'within' if ok else 'NOT within'} 25 %**")
        if small:
            allok = all(abs(r["pred_error_pct"]) <= 25 for r in small)
            L += ["", f"Prediction for 1 and 2 ranks within 25 % of the measured step time: "
                      f"**{'yes' if allok else 'no'}**.", ""]
        L += [f"Predicted {mode} scaling beyond this machine (this machine's alpha and beta, no "
              "oversubscription; efficiency vs P = 1 at the same T):", "",
              "| T | " + " | ".join(f"P={p}" for p in sorted({t['P'] for t in table})) + " |",
              "|---|" + "---|" * len({t["P"] for t in table})]
        for t in sorted({t["T"] for t in table}):
            cells = [f"{100 * x['efficiency']:.0f} %" + ("" if x["feasible"] else " (x)")
                     for x in table if x["T"] == t]
            L.append(f"| {t} | " + " | ".join(cells) + " |")
        L += ["", "(x): more replicas than examples per task in a batch: not a valid grid.",
              "Full table with the phases: prediction.csv.", ""]
    with open(os.path.join(d, "report.md"), "w") as f:
        f.write("\n".join(L))


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: scaling_collect.py SWEEP_DIR")
    d = os.path.abspath(sys.argv[1])
    sweep = load_json(os.path.join(d, "sweep.json"))
    if sweep is None:
        sys.exit(f"scaling_collect: {d}/sweep.json missing or not JSON")
    sweep["dir"] = d
    rows, runs = [], {}
    for p in sweep["ranks"]:
        row, run = point_row(sweep, p)
        rows.append(row)
        if run:
            runs[p] = run
    if not runs:
        sys.exit(f"scaling_collect: no point of {d} has usable metrics (see points/p*/run.log)")
    base = next((r for r in rows if "samples_per_s" in r), None)
    for r in rows:
        if "samples_per_s" in r:
            r["efficiency"] = r["samples_per_s"] * base["P"] / (base["samples_per_s"] * r["P"])
    calib = load_json(os.path.join(d, "calibration.json"))
    model, table = None, []
    if calib and base["P"] in runs:
        model = build_model(sweep, runs[base["P"]], calib, not sweep["slurm"])
        table = predictions(sweep, model, rows, base)
        with open(os.path.join(d, "prediction.csv"), "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(table[0].keys()))
            w.writeheader()
            for t in table:
                w.writerow({k: fmt(v) for k, v in t.items()})
    for r in rows:
        r.update({"mode": sweep["mode"], "git_rev": sweep["git_rev"],
                  "config_hash": sweep["config_hash"], "machine": sweep["machine"]["cpu"]})
    fixed = ["P", "replicas", "shards", "oversubscribed", "batch_size", "samples_per_step",
             "timed_steps", "step_ms", "samples_per_s", "efficiency", "compute_ms"]
    tail = ["median_step_ms", "runs", "step_ms_min", "step_ms_max", "trunk_algbw_GBps", "trunk_busbw_GBps", "pred_step_ms", "pred_error_pct",
            "pred_efficiency", "loadavg_before", "loadavg_after", "cpu_wait_pct", "exit_code",
            "error", "mode", "git_rev", "config_hash", "machine", "host", "cores", "slurm_job_id"]
    keys = write_csv(os.path.join(d, "scaling.csv"), rows, fixed, tail)
    plotted = plots(d, rows, keys, sweep["mode"])
    report(d, sweep, rows, keys, table, calib, model, plotted)
    print(f"scaling_collect: wrote {d}/scaling.csv, report.md"
          f"{', efficiency.png, phases.png' if plotted else ''}"
          f"{', prediction.csv' if table else ''}")
    bad = [r["P"] for r in rows if "step_ms" not in r]
    if bad:
        print(f"scaling_collect: points without results: {bad}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
