#!/usr/bin/env python3
"""Compare finished runs task by task: one table of validation and test
metrics per task and their mean, each run a column, and the difference of
every further run to the first.

    python3 launch/compare.py RUN_A RUN_B [RUN_C ...] [--names A,B,C] [--markdown]

RUN is a run directory (its metrics.jsonl holds the final results). The runs
must have the same tasks and metric. The first run is the reference: a
"B - A" column gives each other run's difference to it (for an error metric
such as MSE a negative difference is the better one). Standard library only.
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from experiment_collect import read_run  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", metavar="RUN", help="run directories (the first is the reference)")
    ap.add_argument("--names", help="comma-separated column names (default: the directories' names)")
    ap.add_argument("--markdown", action="store_true", help="a markdown table")
    a = ap.parse_args()
    if len(a.runs) < 2:
        ap.error("give at least two runs")
    if a.names:
        names = a.names.split(",")
    else:  # the directories' names, with their parents' where those repeat (runs/hps/seed-1)
        names = [os.path.basename(os.path.normpath(r)) for r in a.runs]
        if len(set(names)) < len(names):
            names = ["/".join(os.path.normpath(r).split(os.sep)[-2:]) for r in a.runs]
    if len(names) != len(a.runs):
        ap.error(f"--names has {len(names)} names for {len(a.runs)} runs")
    runs = []
    for r in a.runs:
        x = read_run(r)
        if x is None:
            print(f"compare: {r}: no finished run there (no final line in metrics.jsonl)", file=sys.stderr)
            return 2
        runs.append(x)
    ref = runs[0]
    for r, x in zip(a.runs[1:], runs[1:]):
        if x["tasks"] != ref["tasks"] or x["metric"] != ref["metric"]:
            print(f"compare: {r} has other tasks or another metric than {a.runs[0]}", file=sys.stderr)
            return 2
    metric = ref["metric"]
    cols = []
    for split in ("val", "test"):
        cols += [f"{split} {metric} {n}" for n in names]
        cols += [f"{split} {n} - {names[0]}" for n in names[1:]]

    def row(i):  # task i, or the mean for i = None
        cells = []
        for split in ("val", "test"):
            vals = [x[f"{split}_mean"] if i is None else x[split][i] for x in runs]
            vals = [float("nan") if v is None else v for v in vals]
            cells += [f"{v:.4f}" for v in vals]
            cells += [f"{v - vals[0]:+.4f}" for v in vals[1:]]
        return cells

    rows = [(t, row(i)) for i, t in enumerate(ref["tasks"])] + [("mean", row(None))]
    if a.markdown:
        print("| task | " + " | ".join(cols) + " |")
        print("|---" * (len(cols) + 1) + "|")
        for t, cells in rows:
            b = "**" if t == "mean" else ""
            print(f"| {b}{t}{b} | " + " | ".join(f"{b}{c}{b}" for c in cells) + " |")
    else:
        w = max(12, max(len(c) for c in cols) + 1)
        tw = max(6, max(len(t) for t, _ in rows) + 1)
        print(f"{'task':<{tw}}" + "".join(f"{c:>{w}}" for c in cols))
        for t, cells in rows:
            print(f"{t:<{tw}}" + "".join(f"{c:>{w}}" for c in cells))
    for n, x in zip(names, runs):
        last = " (the last validation: the budget may be short)" if x["best_step"] >= x["last_step"] else ""
        print(f"{n}: selected step {x['best_step']} of {x['last_step']}{last}, "
              f"{x['ranks']} rank(s), {x['train_seconds']:.0f} s of training")
    return 0


if __name__ == "__main__":
    sys.exit(main())
