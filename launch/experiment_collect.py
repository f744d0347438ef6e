#!/usr/bin/env python3
"""Collect an experiment directory (launch/experiment.sh) into results.csv,
report.md and report.png. Standard library only (plus gnuplot for the plot).

    python3 launch/experiment_collect.py --out DIR [--stl LABEL] [--hps LABEL]
        [--truth DATA.h5] [--taskrel build/taskrel] [--add-rows RESULTS.csv ...]

Per label: mean ± sample std over seeds of the mean test metric and of every
task's; delta_p against STL (LibMTL's definition, per seed against the STL run
of the same seed, then mean ± std); the paired difference to HPS over seeds
with a 95 % t interval; relation-recovery scores (taskrel inspect --truth);
the selected step and whether it was the last one. `--add-rows` joins the
per-run rows of an earlier results.csv (seeds run before or elsewhere), so a
table can grow by seeds without re-running the others. `--self-test` checks
the arithmetic on known inputs.
"""

import argparse
import csv
import json
import math
import os
import re
import shutil
import subprocess
import sys

# Two-sided 95 % quantiles of Student's t, df = 1..30.
T975 = [12.706205, 4.302653, 3.182446, 2.776445, 2.570582, 2.446912, 2.364624, 2.306004,
        2.262157, 2.228139, 2.200985, 2.178813, 2.160369, 2.144787, 2.131450, 2.119905,
        2.109816, 2.100922, 2.093024, 2.085963, 2.079614, 2.073873, 2.068658, 2.063899,
        2.059539, 2.055529, 2.051831, 2.048407, 2.045230, 2.042272]


def t975(df):
    if df < 1:
        return float("nan")
    if df <= 30:
        return T975[df - 1]
    z = 1.959964  # Cornish-Fisher expansion, < 1e-4 off above 30
    return z + (z ** 3 + z) / (4 * df) + (5 * z ** 5 + 16 * z ** 3 + 3 * z) / (96 * df ** 2)


def mean(xs):
    return sum(xs) / len(xs) if xs else float("nan")


def std(xs):
    """Sample standard deviation (n - 1); nan for fewer than 2 values."""
    if len(xs) < 2:
        return float("nan")
    m = mean(xs)
    return math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1))


def t_interval(diffs):
    """Mean of paired differences and its 95 % t interval (lo, hi)."""
    n = len(diffs)
    m = mean(diffs)
    if n < 2:
        return m, float("nan"), float("nan")
    h = t975(n - 1) * std(diffs) / math.sqrt(n)
    return m, m - h, m + h


def delta_p(method, base, lower_better):
    """LibMTL's delta_p in %: 100/T sum_t (-1)^l_t (M_t - B_t) / B_t, l_t = 1 if lower is
    better (one metric per task)."""
    T = len(base)
    s = 0.0
    for m, b in zip(method, base):
        sign = -1.0 if lower_better else 1.0
        s += sign * (m - b) / b
    return 100.0 * s / T


def fmt(x, digits=4):
    return "—" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def pm(xs, digits=4, scale=1.0):
    xs = [x * scale for x in xs if not (isinstance(x, float) and math.isnan(x))]
    if not xs:
        return "—"
    if len(xs) == 1:
        return fmt(xs[0], digits)
    return f"{fmt(mean(xs), digits)} ± {fmt(std(xs), digits)}"


# ---- reading runs -----------------------------------------------------------------------


def read_run(path):
    """The final line and the validation steps of a run's metrics.jsonl (None if unfinished)."""
    mpath = os.path.join(path, "metrics.jsonl")
    if not os.path.exists(mpath):
        return None
    final, steps = None, []
    with open(mpath) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                o = json.loads(line)
            except json.JSONDecodeError:
                continue
            if o.get("final"):
                final = o
            elif "step" in o and "val_mean" in o:  # validations, not training lines
                steps.append(o["step"])
    if final is None:
        return None
    metric = "acc" if "test_acc" in final else "mse"
    return {
        "metric": metric,
        "tasks": final["tasks"],
        "val": final[f"val_{metric}"],
        "test": final[f"test_{metric}"],
        "val_mean": final["val_mean"],
        "test_mean": final["test_mean"],
        "best_step": final["best_step"],
        "last_step": max(steps) if steps else final["best_step"],
        "train_seconds": final.get("train_seconds", float("nan")),
        "ranks": final.get("ranks", 1),
    }


def recovery(taskrel, run_dir, truth):
    """r per relation from `taskrel inspect RUN --truth DATA.h5` (empty if none)."""
    if not truth or not os.path.exists(os.path.join(run_dir, "relations.h5")):
        return {}
    try:
        out = subprocess.run([taskrel, "inspect", run_dir, "--truth", truth], capture_output=True,
                             text=True, timeout=300).stdout
    except (OSError, subprocess.TimeoutExpired):
        return {}
    r = {}
    for m in re.finditer(r"^\s+(\S+)\s+r = (\S+)\s*$", out, re.M):
        try:
            r[m.group(1)] = float(m.group(2))
        except ValueError:
            pass
    return r


def read_rows(path):
    """The runs of an earlier results.csv (its per-run rows), as read_run gives them."""
    out = []
    with open(path, newline="") as f:
        rd = csv.DictReader(f)
        tasks = [c[5:] for c in rd.fieldnames if c.startswith("test_") and c != "test_mean"]
        for row in rd:
            out.append({
                "metric": row["metric"], "tasks": tasks,
                "val": [float(row[f"val_{t}"]) for t in tasks],
                "test": [float(row[f"test_{t}"]) for t in tasks],
                "val_mean": float(row["val_mean"]), "test_mean": float(row["test_mean"]),
                "best_step": int(row["best_step"]), "last_step": int(row["last_step"]),
                "train_seconds": float(row["train_seconds"]), "ranks": int(row["ranks"]),
                "label": row["label"], "seed": int(row["seed"]), "dir": row["run_dir"],
                "config": row["config"], "overrides": row["overrides"],
                "recovery": {k[2:]: float(v) for k, v in row.items() if k.startswith("r_") and v},
            })
    return out


def read_plan(out):
    with open(os.path.join(out, "plan.tsv")) as f:
        return list(csv.DictReader(f, delimiter="\t"))


# ---- the report -------------------------------------------------------------------------


def collect(a):
    plan = read_plan(a.out)
    labels = []
    for row in plan:
        if row["label"] not in labels:
            labels.append(row["label"])
    runs = {}  # (label, seed) -> run
    missing = []
    for row in plan:
        path = os.path.join(a.out, row["run_dir"])
        r = read_run(path)
        if r is None:
            missing.append(row["run_dir"])
            continue
        r["label"], r["seed"], r["dir"] = row["label"], int(row["seed"]), row["run_dir"]
        r["config"], r["overrides"] = row["config"], row["overrides"]
        r["recovery"] = recovery(a.taskrel, path, a.truth)
        runs[(row["label"], int(row["seed"]))] = r
    for path in a.add_rows or []:  # runs collected earlier (other seeds, another machine)
        for r in read_rows(path):
            if (r["label"], r["seed"]) not in runs:
                runs[(r["label"], r["seed"])] = r
                if r["label"] not in labels:
                    labels.append(r["label"])
    if not runs:
        sys.exit(f"experiment: no finished run in {a.out}")
    any_run = next(iter(runs.values()))
    tasks, metric = any_run["tasks"], any_run["metric"]
    lower = metric == "mse"
    stl = a.stl if a.stl else ("stl" if "stl" in labels else None)
    hps = a.hps if a.hps else ("hps" if "hps" in labels else None)
    rel_names = sorted({k for r in runs.values() for k in r["recovery"]})

    # results.csv: one row per finished run
    fields = ["label", "seed", "metric", "val_mean", "test_mean", "best_step", "last_step",
              "selected_last", "train_seconds", "ranks"]
    fields += [f"test_{t}" for t in tasks] + [f"val_{t}" for t in tasks]
    fields += [f"delta_p_vs_{stl}" if stl else "delta_p"] + [f"r_{n}" for n in rel_names]
    fields += ["run_dir", "config", "overrides"]
    per_label = {lab: [runs[k] for k in sorted(runs) if k[0] == lab] for lab in labels}
    dps = {}
    with open(os.path.join(a.out, "results.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(fields)
        for lab in labels:
            for r in per_label[lab]:
                base = runs.get((stl, r["seed"])) if stl else None
                dp = delta_p(r["test"], base["test"], lower) if base else float("nan")
                if base:
                    dps.setdefault(lab, []).append(dp)
                row = [lab, r["seed"], metric, r["val_mean"], r["test_mean"], r["best_step"],
                       r["last_step"], int(r["best_step"] == r["last_step"]), r["train_seconds"],
                       r["ranks"]]
                row += r["test"] + r["val"] + [dp] + [r["recovery"].get(n, "") for n in rel_names]
                row += [r["dir"], r["config"], r["overrides"]]
                w.writerow(row)

    # report.md
    nseeds = sorted({k[1] for k in runs})
    budget = sorted({r["last_step"] for r in runs.values()})
    up = "↓ lower is better" if lower else "↑ higher is better"
    scale = 1.0
    L = []
    L.append(f"# Experiment report: {os.path.basename(os.path.normpath(a.out))}\n")
    L.append(f"{len(runs)} finished run(s) of {len(plan)} planned; seeds "
             f"{', '.join(map(str, nseeds))}; budget {', '.join(map(str, budget))} steps; "
             f"metric: test {metric} ({up}), mean over the {len(tasks)} tasks "
             f"({', '.join(tasks)}). Model selection on the validation split only; mean ± "
             f"sample std over seeds. Every run's command is in its run directory "
             f"(`run.sh`); `results.csv` has one row per run.\n")
    cmd_path = os.path.join(a.out, "command.sh")
    if os.path.exists(cmd_path):
        with open(cmd_path) as f:
            L.append("Command (from `command.sh`):\n\n```sh\n" + f.read().strip() + "\n```\n")
    if missing:
        L.append(f"**Not finished ({len(missing)}):** " + ", ".join(f"`{m}`" for m in missing)
                 + "\n")
    best_val = None
    for lab in labels:
        if per_label[lab]:
            v = mean([r["val_mean"] for r in per_label[lab]])
            if best_val is None or (v < best_val[1] if lower else v > best_val[1]):
                best_val = (lab, v)
    L.append("## Per method\n")
    head = ["label", "seeds", f"val {metric}", f"test {metric}"]
    if stl:
        head.append(f"Δp vs {stl} (%)")
    if hps:
        head.append(f"test − {hps} (95 % CI)")
    head += ["selected step", "at last step", "train s"]
    L.append("| " + " | ".join(head) + " |")
    L.append("|" + "---|" * len(head))
    for lab in labels:
        rs = per_label[lab]
        if not rs:
            L.append(f"| {lab} | 0 |" + " — |" * (len(head) - 2))
            continue
        cells = [lab + (" (best val)" if best_val and lab == best_val[0] else ""), str(len(rs)),
                 pm([r["val_mean"] for r in rs]), pm([r["test_mean"] for r in rs])]
        if stl:
            cells.append(pm(dps.get(lab, []), 2) if lab != stl else "0")
        if hps:
            if lab == hps:
                cells.append("—")
            else:
                d = [runs[(lab, s)]["test_mean"] - runs[(hps, s)]["test_mean"]
                     for s in nseeds if (lab, s) in runs and (hps, s) in runs]
                if d:
                    m, lo, hi = t_interval(d)
                    cells.append(f"{m:+.4f} [{fmt(lo)}, {fmt(hi)}] (n={len(d)})")
                else:
                    cells.append("—")
        at_end = sum(r["best_step"] == r["last_step"] for r in rs)
        cells += [pm([float(r["best_step"]) for r in rs], 0),
                  f"{at_end}/{len(rs)}" + (" ⚠" if at_end else ""),
                  fmt(mean([r["train_seconds"] for r in rs]), 1)]
        L.append("| " + " | ".join(cells) + " |")
    L.append("")
    L.append("Δp: LibMTL's relative improvement over single-task learning, "
             "100/T Σ_t (−1)^l_t (M_t − B_t)/B_t with l_t = 1 when lower is better, computed "
             "per seed against the STL run of the same seed. The paired difference to HPS is "
             "per seed; its interval is mean ± t(0.975, n−1)·sd/√n. ⚠ *at last step*: the run "
             "selected its last validation, so it was still improving — the budget is too "
             "short to compare converged models.\n")
    L.append(f"## Per task (test {metric})\n")
    L.append("| label | " + " | ".join(tasks) + " |")
    L.append("|---|" + "---|" * len(tasks))
    for lab in labels:
        rs = per_label[lab]
        if rs:
            L.append(f"| {lab} | " + " | ".join(pm([r["test"][i] for r in rs])
                                                for i in range(len(tasks))) + " |")
    L.append("")
    if rel_names:
        L.append(f"## Relation recovery (Pearson r against the true task correlation of "
                 f"`{a.truth}`)\n")
        L.append("| label | " + " | ".join(rel_names) + " |")
        L.append("|---|" + "---|" * len(rel_names))
        for lab in labels:
            rs = [r for r in per_label[lab] if r["recovery"]]
            if rs:
                L.append(f"| {lab} | " + " | ".join(
                    pm([r["recovery"][n] for r in rs if n in r["recovery"]], 3)
                    for n in rel_names) + " |")
        L.append("")
    png = plot(a.out, labels, per_label, metric, up)
    if png:
        L.append(f"![test {metric} per label](report.png)\n")
        L.append(f"`report.png`: mean test {metric} per label, error bars ± 1 sample std over "
                 f"seeds.\n")
    with open(os.path.join(a.out, "report.md"), "w") as f:
        f.write("\n".join(L))
    print(f"experiment: {len(runs)} run(s) collected into {a.out}/results.csv and report.md"
          + (f"; {len(missing)} unfinished" if missing else ""))
    sys.stdout.write("\n".join(L[L.index("## Per method\n"):L.index("## Per method\n") + 3
                               + len(labels)]) + "\n")


def plot(out, labels, per_label, metric, up):
    if not shutil.which("gnuplot"):
        return None
    dat = os.path.join(out, "report.dat")
    with open(dat, "w") as f:
        for i, lab in enumerate(labels):
            rs = per_label[lab]
            if rs:
                xs = [r["test_mean"] for r in rs]
                sd = std(xs) if len(xs) > 1 else 0.0
                f.write(f'{i} {mean(xs):.6g} {sd:.6g} "{lab}"\n')
    gp = f"""set terminal pngcairo size {max(640, 90 * len(labels) + 200)},480 noenhanced
set output '{os.path.join(out, "report.png")}'
set title 'mean test {metric} ({up}), ± 1 std over seeds'
set ylabel 'test {metric}'
set xtics rotate by -30 left
set grid ytics
set offsets 0.5, 0.5, graph 0.08, graph 0.08
set rmargin 8
unset key
plot '{dat}' using 1:2:3:xtic(4) with yerrorbars pt 7 ps 1.2 lw 2
"""
    r = subprocess.run(["gnuplot"], input=gp, text=True, capture_output=True)
    if r.returncode != 0:
        print(f"experiment: gnuplot failed: {r.stderr.strip()}", file=sys.stderr)
        return None
    return os.path.join(out, "report.png")


# ---- self-test on known inputs ------------------------------------------------------------


def self_test():
    ok = True

    def check(what, got, want, tol=1e-9):
        nonlocal ok
        good = abs(got - want) <= tol * max(1.0, abs(want))
        print(f"{'ok' if good else 'FAIL'}: {what} = {got:.10g} (want {want:.10g})")
        ok &= good

    # accuracy (higher better): tasks +10 % and -5 % relative -> (10 - 5) / 2 = 2.5 %
    check("delta_p acc", delta_p([0.88, 0.76], [0.80, 0.80], False), 2.5)
    # MSE (lower better): 0.5 vs 1.0 is +50 %, 3.0 vs 2.0 is -50 % -> 0
    check("delta_p mse", delta_p([0.5, 3.0], [1.0, 2.0], True), 0.0)
    check("delta_p mse one task", delta_p([0.9], [1.0], True), 10.0)
    # paired differences 1, 2, 3: mean 2, sd 1, t(0.975, 2) = 4.302653 -> 2 ± 2.484138
    m, lo, hi = t_interval([1.0, 2.0, 3.0])
    check("interval mean", m, 2.0)
    check("interval low", lo, 2.0 - 4.302653 / math.sqrt(3), 1e-6)
    check("interval high", hi, 2.0 + 4.302653 / math.sqrt(3), 1e-6)
    check("std", std([2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]), math.sqrt(32.0 / 7.0))
    check("t975(40)", t975(40), 2.021075, 1e-4)
    return ok


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", help="experiment directory (with plan.tsv)")
    ap.add_argument("--stl", default=None, help="STL label for delta_p (default: stl)")
    ap.add_argument("--hps", default=None, help="label paired differences refer to (default: hps)")
    ap.add_argument("--truth", default=None, help="dataset with the true task covariance")
    ap.add_argument("--taskrel", default="build/taskrel")
    ap.add_argument("--add-rows", action="append", metavar="RESULTS.csv",
                    help="also report the runs of an earlier results.csv (e.g. other seeds run "
                         "elsewhere); a run of this directory wins over a row of the same label "
                         "and seed")
    ap.add_argument("--self-test", action="store_true", help="check the arithmetic and exit")
    a = ap.parse_args()
    if a.self_test:
        sys.exit(0 if self_test() else 1)
    if not a.out:
        ap.error("--out is required")
    collect(a)


if __name__ == "__main__":
    main()
