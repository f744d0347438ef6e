#!/usr/bin/env python3
"""The share of the trunk all-reduce that dist.overlap hides, from the
timelines of tests/bench/overlap_bench.sh (OUT/SETTING/rK-{false,true}/).

Per run, over the steps >= --warmup, per rank: the median of the
"trunk_allreduce" events (the wait after the backward), of the
"trunk_allreduce_inflight" events (first bucket started -> last one done)
and of the step time (from one step's first event to the next step's);
the ranks averaged. Per setting, the median over runs of each figure and

    hidden = 1 - exposed wait with overlap / all-reduce wait without

(in brackets: the median over repetitions of the same ratio taken between
the two runs of one repetition), and the step time of the run with overlap
over that of the run without in the same repetition (they ran one after
the other, so under about the same load): median and range.

With runs rK-base (TASKREL_OVERLAP_BASE_BIN), also their all-reduce wait
and step time. Prints a Markdown table, one row per setting.
"""
import argparse
import glob
import json
import os
import statistics as st


def run_figures(path, warmup):
    ev = json.load(open(os.path.join(path, "timeline.json")))["traceEvents"]
    ranks = {}
    for e in ev:
        if e.get("ph") != "X":
            continue
        r = ranks.setdefault(e["tid"], {"ar": {}, "inf": {}, "start": {}})
        s = e["args"]["step"]
        r["start"][s] = min(r["start"].get(s, float("inf")), e["ts"])
        if e["name"] == "trunk_allreduce":
            r["ar"][s] = r["ar"].get(s, 0.0) + e["dur"]
        elif e["name"] == "trunk_allreduce_inflight":
            r["inf"][s] = e["dur"]
    out = {"ar": [], "inf": [], "step": []}
    for r in ranks.values():
        steps = sorted(s for s in r["start"] if s >= warmup)
        ar = [r["ar"][s] for s in steps if s in r["ar"]]
        inf = [r["inf"][s] for s in steps if s in r["inf"]]
        dt = [r["start"][b] - r["start"][a] for a, b in zip(steps, steps[1:]) if b == a + 1]
        if ar:
            out["ar"].append(st.median(ar) / 1e3)
        if inf:
            out["inf"].append(st.median(inf) / 1e3)
        if dt:
            out["step"].append(st.median(dt) / 1e3)
    return {k: (st.mean(v) if v else float("nan")) for k, v in out.items()}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("out")
    ap.add_argument("settings", nargs="+")
    a = ap.parse_args()
    loads = {}
    try:
        for line in open(os.path.join(a.out, "runs.csv")).read().split("\n")[1:]:
            f = line.split(",")
            if len(f) == 5:
                loads.setdefault(f[0], []).append(float(f[3]))
    except OSError:
        pass
    base = any(glob.glob(os.path.join(a.out, s, "r*-base")) for s in a.settings)
    print("| links | runs | all-reduce wait, no overlap (ms) | exposed wait, overlap (ms) "
          "| in flight, overlap (ms) | hidden | step no overlap (ms) | step overlap (ms) "
          "| step overlap / no overlap, same repetition: median (range) | " + ("before: wait / step (ms) | " if base else "") + "load (1 min) |")
    print("|---|---|---|---|---|---|---|---|---|" + ("---|" if base else "") + "---|")
    for s in a.settings:
        fig = {}
        for ov in ("false", "true", "base"):
            runs = [run_figures(d, a.warmup)
                    for d in sorted(glob.glob(os.path.join(a.out, s, f"r*-{ov}")))
                    if os.path.exists(os.path.join(d, "timeline.json"))]
            fig[ov] = {k: st.median([r[k] for r in runs]) if runs else float("nan")
                       for k in ("ar", "inf", "step")}
            fig[ov]["n"] = len(runs)
        # the same repetition's runs, side by side: their ratio, median over reps
        ratios, hid = [], []
        for d in sorted(glob.glob(os.path.join(a.out, s, "r*-true"))):
            d0 = d[: -len("true")] + "false"
            if all(os.path.exists(os.path.join(x, "timeline.json")) for x in (d, d0)):
                x1, x0 = run_figures(d, a.warmup), run_figures(d0, a.warmup)
                ratios.append(x1["step"] / x0["step"])
                hid.append(1 - x1["ar"] / x0["ar"])
        off, on = fig["false"], fig["true"]
        hidden = 1 - on["ar"] / off["ar"] if off["ar"] > 0 else float("nan")
        ld = loads.get(s, [])
        load = f"{min(ld):.1f}-{max(ld):.1f}" if ld else "?"
        label = "this machine, shared memory" if s == "local" else (
            "2 nodes, unshaped veth" if s == "none" else f"2 nodes, tbf {s}")
        b = fig["base"]
        before = f"{b['ar']:.2f} / {b['step']:.1f} | " if base else ""
        pr = (f"{st.median(ratios):.3f} ({min(ratios):.2f}-{max(ratios):.2f})" if ratios
              else "?")
        ph = f" ({100 * st.median(hid):.0f} %)" if hid else ""
        print(f"| {label} | {off['n']}+{on['n']} | {off['ar']:.2f} | {on['ar']:.2f} "
              f"| {on['inf']:.2f} | {100 * hidden:.0f} %{ph} | {off['step']:.1f} "
              f"| {on['step']:.1f} | {pr} | {before}{load} |")


if __name__ == "__main__":
    main()
