#!/usr/bin/env python3
"""launch/scaling_model.py — the cost model of a taskrel training step.

Predicts the step time of `taskrel train` on P ranks with T tasks from
  * the machine: MPI latency alpha and inverse bandwidth beta, GEMM rates
    (`taskrel calibrate`, calibration.json);
  * the model's sizes (the "sizes" object of the final metrics.jsonl line);
  * one measured run (the sweep's first point): compute time per step, which
    the model rescales by the flop-weighted rows a rank processes.
See docs/scaling.md for the formulas and the choices behind them.

Usage (also imported by launch/scaling_collect.py):
  scaling_model.py --calibration C.json --metrics RUN/metrics.jsonl
      [--mode weak|strong] [--ranks 1,2,...,4096] [--tasks T,...]
      [--alpha S --beta S_PER_BYTE] [--cores N]
prints predicted step time, throughput and efficiency per (T, P).
"""
import argparse
import json
import math
import re

BUCKET_BYTES = 16 << 20  # tr_grid.bucket_floats * 4: one MPI call per 16 MiB
TRUNK_BUCKET_BYTES = 1 << 20  # dist.bucket_mb default: the trunk's ring all-reduce buckets
EIG_FLOPS = 9.0  # symmetric eigendecomposition with vectors, ~9 n^3 (Golub & Van Loan)
SCALAPACK_MIN_DIM = 256  # linalg.scalapack_min_dim default (ALGORITHMS.md)
EIG_MSGS_PER_COL = 5  # latency-bound reductions per column in pdsytrd (assumption)


def ring_allreduce(nbytes, p, alpha, beta, bucket=BUCKET_BYTES):
    """Ring all-reduce: 2(p-1)/p n beta + 2(p-1) alpha, per bucket (16 MiB)."""
    if p <= 1 or nbytes <= 0:
        return 0.0
    buckets = max(1, math.ceil(nbytes / bucket))
    return buckets * 2 * (p - 1) * alpha + 2 * (p - 1) / p * nbytes * beta


def recdbl_allreduce(nbytes, p, alpha, beta):
    """Recursive doubling (what MPI uses for small messages): log2 p rounds."""
    if p <= 1:
        return 0.0
    return math.ceil(math.log2(p)) * (alpha + nbytes * beta)


def ring_allgather(nbytes_total, p, alpha, beta):
    """Ring all-gather (or reduce-scatter) of nbytes_total over p ranks."""
    if p <= 1 or nbytes_total <= 0:
        return 0.0
    return (p - 1) * alpha + (p - 1) / p * nbytes_total * beta


def default_shards(p, t):
    """dist.task_shards = 0: the largest divisor of P that is <= T."""
    s = 1
    for d in range(1, min(p, t) + 1):
        if p % d == 0:
            s = d
    return s


def trunk_flops_per_row(sizes):
    """Forward flops of the shared trunk per example (multiply-add = 2)."""
    tensors = [t for t in sizes["tensors"] if not t["task_axis"] and t["name"].endswith(".w")]
    flops, side = 0.0, None
    for t in tensors:
        sh = t["shape"]
        if len(sh) == 4:  # conv (Cout, Cin, k, k), valid padding, then maxpool 2
            cout, cin, k = sh[0], sh[1], sh[2]
            if side is None:
                side = int(round(math.sqrt(sizes["in_size"] / cin)))
            side = side - k + 1
            flops += 2.0 * cout * cin * k * k * side * side
            side //= 2
        elif len(sh) == 2:
            flops += 2.0 * sh[0] * sh[1]
    return flops


def head_flops_per_row(sizes):
    """Forward flops of one task's head per example."""
    return sum(2.0 * t["shape"][1] * t["shape"][2] for t in sizes["tensors"]
               if t["task_axis"] and t["name"].endswith(".w") and len(t["shape"]) == 3)


def prior_layers(sizes):
    """(D1, D2) of every task weight matrix: the layers an MRN prior sits on."""
    return [(t["shape"][1], t["shape"][2]) for t in sizes["tensors"]
            if t["task_axis"] and t["name"].endswith(".w") and len(t["shape"]) == 3]


def grid(p, t, batch, setting, trunk_per_task, shards=0):
    """Per-rank work of the R x S grid: (R, S, tn, trunk rows, head rows per task)."""
    s = shards if shards and p % shards == 0 and shards <= t else default_shards(p, t)
    r = p // s
    tn = math.ceil(t / s)
    rep = math.ceil(batch / r)
    if setting == "multi-input":
        trunk_rows, head_rows = tn * rep, rep
    else:
        trunk_rows = tn * rep if trunk_per_task else math.ceil(rep / s)
        head_rows = rep
    return r, s, tn, trunk_rows, head_rows, rep >= 1 and batch >= r


class Model:
    """Step-time model calibrated on one measured point."""

    def __init__(self, calib, final, base, cores=None, kind="hps", update_every=50, shards=0):
        ar = calib.get("allreduce", {})
        pp = calib.get("pingpong", {})
        self.alpha = ar.get("alpha_s") or 0.0
        if self.alpha <= 0:  # a fit can put the intercept below zero; fall back
            self.alpha = max(pp.get("alpha_s") or 0.0, 1e-7)
        self.beta = ar.get("beta_s_per_byte") or pp.get("beta_s_per_byte")
        self.sgemm = calib.get("sgemm_flops") or 1e10
        self.dgemm = calib.get("dgemm_flops") or 5e9
        self.sizes = final["sizes"]
        self.cores = cores
        self.kind = kind
        self.update_every = max(1, update_every)
        self.shards = shards
        sz = self.sizes
        self.ft = 3.0 * trunk_flops_per_row(sz)  # forward + backward = 3 x forward
        self.fh = 3.0 * head_flops_per_row(sz)
        # the base point: what one rank did per step, and how long it took
        self.base = base
        r, s, tn, tr_rows, hd_rows, _ = grid(base["P"], sz["tasks"], base["batch"],
                                             sz["setting"], sz["trunk_per_task"], base["S"])
        self.base_work = self.work(tr_rows, hd_rows, tn)
        self.base_params = sz["trunk_floats"] + tn * sz["task_floats_per_task"]

    def work(self, trunk_rows, head_rows, tn):
        return trunk_rows * self.ft + tn * head_rows * self.fh

    def predict(self, p, t=None, batch=None):
        """Predicted seconds per step by phase, for P ranks, T tasks, global batch."""
        sz = self.sizes
        t = t or sz["tasks"]
        batch = batch or sz["batch"]
        r, s, tn, trunk_rows, head_rows, ok = grid(p, t, batch, sz["setting"],
                                                   sz["trunk_per_task"], self.shards)
        a, b = self.alpha, self.beta
        base = self.base
        over = max(1.0, p / self.cores) if self.cores else 1.0
        ph = {}
        ph["compute"] = base["compute_s"] * self.work(trunk_rows, head_rows, tn) / self.base_work * over
        params = sz["trunk_floats"] + tn * sz["task_floats_per_task"]
        ph["optimizer"] = base["optimizer_s"] * params / self.base_params * over
        ph["other"] = base.get("other_s", 0.0)
        ph["trunk_allreduce"] = 0.0 if sz["trunk_per_task"] else ring_allreduce(
            4 * sz["trunk_floats"], p, a, b, TRUNK_BUCKET_BYTES)
        ph["head_allreduce"] = ring_allreduce(4 * tn * sz["task_floats_per_task"], r, a, b)
        ph["scalars"] = recdbl_allreduce(8 * (4 * t + 2), p, a, b)
        ph["features"] = 0.0
        if sz["setting"] == "shared-input" and not sz["trunk_per_task"] and s > 1:
            n = 4 * math.ceil(batch / r) * sz["feat_dim"]
            ph["features"] = 2 * ring_allgather(n, s, a, b)  # all-gather + reduce-scatter
        if self.kind == "mrn":
            ph["mrn"] = self.mrn(p, t, s, tn)
        if self.kind == "mran":
            d = sz["feat_dim"]
            ph["mran"] = ring_allreduce(8 * (t * t + d * d), p, a, b)
        ph["step"] = sum(ph.values())
        samples = batch * (t if sz["setting"] == "multi-input" else 1)
        return {"P": p, "T": t, "R": r, "S": s, "batch": batch, "feasible": ok,
                "oversub": over, "samples_per_step": samples,
                "samples_per_s": samples / ph["step"], **{k + "_s": v for k, v in ph.items()}}

    def mrn(self, p, t, s, tn):
        """MRN per step: weight all-gather + prior gradient every step; the
        covariance update (rows, all-reduce, eigendecompositions) every
        update_every steps, amortised."""
        a, b = self.alpha, self.beta
        step, update = 0.0, 0.0
        for d1, d2 in prior_layers(self.sizes):
            step += ring_allgather(4 * t * d1 * d2, s, a, b)
            step += 2.0 * tn * (t * d1 * d2 + d1 * d1 * d2 + d1 * d2 * d2) / self.sgemm
            update += 2.0 * tn * t * (d1 * d1 * d2 + d1 * d2 * d2) / self.dgemm
            for n in (d1, d2, t):
                update += ring_allreduce(8 * n * n, p, a, b)
                if n >= SCALAPACK_MIN_DIM and p > 1:
                    update += EIG_FLOPS * n ** 3 / (p * self.dgemm)
                    update += EIG_MSGS_PER_COL * n * math.ceil(math.log2(p)) * a
                    update += 8.0 * n * n / math.sqrt(p) * math.ceil(math.log2(p)) * b
                else:
                    update += EIG_FLOPS * n ** 3 / self.dgemm
        return step + update / self.update_every


def base_from_window(rows_a, rows_b, P, S, batch):
    """Per-step compute/optimizer/other seconds of a measured window (rank 0)."""
    n = rows_b["step"] - rows_a["step"]
    d = {k: rows_b["phases_s"][k] - rows_a["phases_s"].get(k, 0.0) for k in rows_b["phases_s"]}
    compute = sum(d.get(k, 0.0) for k in ("data", "forward", "backward")) / n
    other = sum(v for k, v in d.items()
                if k not in ("data", "forward", "backward", "comm", "optimizer", "eval")) / n
    return {"P": P, "S": S, "batch": batch, "compute_s": compute,
            "optimizer_s": d.get("optimizer", 0.0) / n, "other_s": other}


def load_run(metrics_path, warmup):
    rows = [json.loads(x) for x in open(metrics_path) if x.strip()]
    final = next(r for r in rows if r.get("final"))
    timed = [r for r in rows if not r.get("final") and "train_seconds" in r]
    a = next((r for r in timed if r["step"] >= warmup and r is not timed[-1]), timed[0])
    return final, a, timed[-1]


def ini_value(path, section, key, default=None):
    sec = None
    for line in open(path):
        line = line.strip()
        m = re.match(r"\[(.+)\]", line)
        if m:
            sec = m.group(1)
        elif sec == section and "=" in line:
            k, v = (x.strip() for x in line.split("=", 1))
            if k == key:
                return v
    return default


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--calibration", required=True)
    ap.add_argument("--metrics", required=True, help="metrics.jsonl of the base run")
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--mode", choices=("weak", "strong"), default="weak")
    ap.add_argument("--ranks", default=",".join(str(2 ** i) for i in range(13)))
    ap.add_argument("--tasks", default="")
    ap.add_argument("--alpha", type=float)
    ap.add_argument("--beta", type=float)
    ap.add_argument("--cores", type=int)
    ap.add_argument("--kind", default="")
    args = ap.parse_args()
    calib = json.load(open(args.calibration))
    if args.alpha is not None:
        calib.setdefault("allreduce", {})["alpha_s"] = args.alpha
    if args.beta is not None:
        calib.setdefault("allreduce", {})["beta_s_per_byte"] = args.beta
    final, a, b = load_run(args.metrics, args.warmup)
    sz = final["sizes"]
    base = base_from_window(a, b, final["ranks"], final["shards"], sz["batch"])
    m = Model(calib, final, base, args.cores, args.kind or "hps")
    ranks = [int(x) for x in args.ranks.split(",")]
    tasks = [int(x) for x in args.tasks.split(",")] if args.tasks else [sz["tasks"]]
    print(f"alpha {m.alpha * 1e6:.3g} us, beta {m.beta * 1e9:.4g} ns/B; base P={base['P']}: "
          f"compute {base['compute_s'] * 1e3:.2f} ms/step")
    print(f"{'T':>5} {'P':>5} {'RxS':>10} {'step ms':>9} {'comm ms':>9} {'eff':>7}")
    for t in tasks:
        ref = None
        for p in ranks:
            bt = sz["batch"] * p // ranks[0] if args.mode == "weak" else sz["batch"]
            r = m.predict(p, t, bt)
            ref = ref or r
            comm = sum(r[k] for k in r if k.endswith("allreduce_s") or k in ("scalars_s", "features_s"))
            eff = r["samples_per_s"] * ref["P"] / (ref["samples_per_s"] * p)
            print(f"{t:5d} {p:5d} {str(r['R']) + 'x' + str(r['S']):>10} {r['step_s'] * 1e3:9.2f} "
                  f"{comm * 1e3:9.3f} {100 * eff:6.1f}%{'' if r['feasible'] else ' (infeasible)'}")


if __name__ == "__main__":
    main()
