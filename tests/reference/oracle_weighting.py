"""PyTorch cross-check of train.weighting (tests/reference/README.md).

For each weighting it trains HPS on a tiny multi-input dataset with taskrel on
1 rank (a checkpoint after every step) and replays the same steps in PyTorch
from the same initial weights and batches (the machinery of oracle.py), with
the weighting written from docs/algorithms.md ("Loss weighting and gradient
surgery") after LibMTL's implementations: per-task gradients of the shared
parameters by autograd, the methods on the gradient vectors themselves (not
on a Gram matrix), CAGrad's simplex problem by exponentiated gradient (taskrel
uses projected gradient descent), MGDA by the Frank-Wolfe loop of the MGDA
code. At every step it compares the per-task training losses, every parameter
tensor and the learned weighting parameters (uncertainty's log-variances,
GradNorm's logits), and fails when a relative difference exceeds the
tolerance.

Usage:
    /usr/bin/python3 tests/reference/oracle_weighting.py --taskrel build/taskrel \\
        [--methods uncertainty,dwa,...] [--work DIR] [--tol 1e-4] [--perturb pcgrad_order]
Exit code 0 when every method matches (with --perturb: when one does not),
1 otherwise, 77 when torch or h5py is missing.
"""

import argparse
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import oracle as O  # noqa: E402  (exits 77 without torch or h5py)

import numpy as np  # noqa: E402
import torch  # noqa: E402

RNG_PCGRAD = 7  # TR_RNG_PCGRAD of taskrel/core.h

METHODS = {
    # name: extra config
    "uncertainty": {"train.weighting": "uncertainty"},
    "dwa": {"train.weighting": "dwa"},
    "gradnorm": {"train.weighting": "gradnorm"},
    "mgda": {"train.weighting": "mgda"},
    "mgda-l2": {"train.weighting": "mgda", "train.mgda_norm": "l2"},
    "mgda-rep": {"train.weighting": "mgda", "train.rep_grad": "true"},
    "pcgrad": {"train.weighting": "pcgrad"},
    "cagrad": {"train.weighting": "cagrad"},
}


def f32(x):
    return np.float32(x)


# ---- the methods on gradient vectors (LibMTL's formulations) -------------------------

def pcgrad(grads, seed, step, perturb):
    T = grads.shape[0]
    pc = grads.clone()
    for i in range(T):
        order = O.permutation(T, seed, RNG_PCGRAD, step * 65536 + i)
        if perturb == "pcgrad_order":
            order = list(range(T))
        for j in order:
            gij = torch.dot(pc[i], grads[j])
            if gij < 0:
                pc[i] -= gij * grads[j] / grads[j].norm().pow(2)
    return pc.sum(0)


def mgda_solve(grads):
    """The MGDA code's Frank-Wolfe solver, on the vectors."""
    G = (grads @ grads.t()).double().numpy()
    T = G.shape[0]

    def from2(v11, v12, v22):
        if v12 >= v11:
            return 0.999, v11
        if v12 >= v22:
            return 0.001, v22
        g = -1.0 * ((v12 - v22) / (v11 + v22 - 2 * v12))
        return g, v22 + g * (v12 - v22)

    best, sol = np.inf, None
    for i in range(T):
        for j in range(i + 1, T):
            c, d = from2(G[i, i], G[i, j], G[j, j])
            if d < best:
                best, sol = d, (i, j, c)
    x = np.zeros(T)
    x[sol[0]], x[sol[1]] = sol[2], 1 - sol[2]
    if T < 3:
        return x

    def project(y):
        s = np.sort(y)[::-1]
        tmax = (y.sum() - 1.0) / T
        run = 0.0
        for i in range(T - 1):
            run += s[i]
            t = (run - 1) / (i + 1.0)
            if t > s[i + 1]:
                tmax = t
                break
        return np.maximum(y - tmax, 0.0)

    for _ in range(250):
        grad = -G @ x
        p = grad - grad.sum() / T
        tm1 = -x[p < 0] / p[p < 0]
        tm2 = (1.0 - x[p > 0]) / p[p > 0]
        t = 1.0
        if (tm1 > 1e-7).sum() > 0:
            t = tm1[tm1 > 1e-7].min()
        if (tm2 > 1e-7).sum() > 0:
            t = min(t, tm2[tm2 > 1e-7].min())
        nxt = project(p * t + x)
        nc, _ = from2(x @ G @ x, x @ G @ nxt, nxt @ G @ nxt)
        new = nc * x + (1 - nc) * nxt
        if np.abs(new - x).sum() < 1e-5:
            return x
        x = new
    return x


def cagrad(grads, calpha, rescale):
    G = (grads @ grads.t()).double().numpy()
    T = G.shape[0]
    c = calpha * np.sqrt(G.mean() + 1e-8) + 1e-8
    b = np.full(T, 1.0 / T)

    def f(w):
        return w @ G @ b + c * np.sqrt(w @ G @ w + 1e-8)

    # exponentiated gradient on the simplex, step from the gradient's scale
    w = np.full(T, 1.0 / T)
    scale = np.abs(np.diag(G)).max() + 1e-30
    eta = 1.0 / scale
    for _ in range(40000):
        g = G @ b + c * (G @ w) / np.sqrt(w @ G @ w + 1e-8)
        nw = w * np.exp(-eta * (g - g.min()))
        nw /= nw.sum()
        if f(nw) > f(w):
            eta *= 0.5
            continue
        if np.abs(nw - w).sum() < 1e-15:
            w = nw
            break
        w = nw
    ww = torch.tensor(w, dtype=torch.float32)
    gw = (grads * ww.view(-1, 1)).sum(0)
    lmbda = c / (float(gw.norm()) + 1e-8)
    g = grads.mean(0) + lmbda * gw
    return g / {0: 1.0, 1: 1.0 + calpha ** 2, 2: 1.0 + calpha}[rescale]


# ---- the reference trainer --------------------------------------------------------

class Weighted(O.Hps):
    """HPS with a train.weighting (multi-input data)."""

    def setup(self, cfg):
        self.kind = cfg["train.weighting"]
        self.rep = cfg.get("train.rep_grad", "false") == "true"
        self.norm = cfg.get("train.mgda_norm", "none")
        self.seed = int(cfg["train.seed"])
        self.T = self.data["T"]
        init = -0.5 if self.kind == "uncertainty" else 0.0
        self.wp = torch.full((self.T,), f32(init))  # s or z
        self.wmom = torch.zeros(self.T)
        self.hist = []  # epoch-mean losses
        self.cur = np.zeros(self.T)
        self.cur_n = 0
        self.shared = [k for k in self.p if k.startswith("trunk.")]
        self.heads = [k for k in self.p if k.startswith("head.")]

    def wstep(self, grad, lr):
        """The weighting parameters' SGD step: momentum, no weight decay."""
        self.wmom = f32(self.opt["momentum"]) * self.wmom + grad.to(torch.float32)
        self.wp = self.wp - f32(lr) * f32(self.opt["mult_trunk"]) * self.wmom

    def batch(self, step):
        d = self.data
        xs, ys = [], []
        for t in range(d["T"]):
            idx = d["batches"].indices(step, t)
            xs.append(torch.tensor(d["x"][t][idx]))
            ys.append(torch.tensor(d["y"][t][idx]))
        return xs, ys

    def heads_losses(self, params, feats, ys):
        out = []
        for t, (h, y) in enumerate(zip(feats, ys)):
            h = torch.relu(h @ params["head.fc7.w"][t] + params["head.fc7.b"][t])
            o = h @ params["head.fc8.w"][t] + params["head.fc8.b"][t]
            out.append(O.task_loss(o, y, self.data["regression"]))
        return out

    def task_grads(self, losses, params):
        rows = []
        for L in losses:
            g = torch.autograd.grad(L, [params[k] for k in self.shared], retain_graph=True)
            rows.append(torch.cat([x.reshape(-1) for x in g]))
        return torch.stack(rows)

    def unflatten(self, vec, params):
        out, o = {}, 0
        for k in self.shared:
            n = params[k].numel()
            out[k] = vec[o:o + n].reshape(params[k].shape)
            o += n
        return out

    def step(self, step, lr):
        T, spe = self.T, self.data["batches"].spe
        epoch = step // spe
        if step % spe == 0 and self.cur_n > 0:
            self.hist.append(self.cur / self.cur_n)
            self.cur, self.cur_n = np.zeros(T), 0
        xs, ys = self.batch(step)
        params = {k: v.clone().requires_grad_(True) for k, v in self.p.items()}
        feat = O.mlp_trunk(params, torch.cat(xs))
        rep = feat.detach().requires_grad_(True) if self.rep else feat
        losses = self.heads_losses(params, rep.split([x.shape[0] for x in xs]), ys)
        lv = np.array([float(v) for v in losses])
        grads = {}
        w = torch.ones(T)
        if self.kind == "uncertainty":
            s = self.wp.clone().requires_grad_(True)
            total = sum(losses[t] / (2 * torch.exp(s[t])) + s[t] / 2 for t in range(T))
        elif self.kind == "dwa" and epoch >= 2:
            r = torch.tensor(self.hist[-1] / self.hist[-2], dtype=torch.float64)
            w = (T * torch.softmax(r / 2.0, dim=-1)).to(torch.float32)
            total = sum(w[t] * losses[t] for t in range(T))
        else:
            total = sum(losses)
        names = list(params)
        surgery = self.kind in ("mgda", "pcgrad", "cagrad") or (
            self.kind == "gradnorm" and epoch >= 1)
        if not surgery:
            inputs = [params[k] for k in names] + ([s] if self.kind == "uncertainty" else [])
            gr = torch.autograd.grad(total, inputs, retain_graph=True, allow_unused=True)
            grads = dict(zip(names, gr[:len(names)]))
            if self.kind == "uncertainty":
                ds = gr[-1]
        elif self.rep:  # MGDA-UB: the features' per-task gradients summed over the rows
            per = [torch.autograd.grad(L, rep, retain_graph=True)[0] for L in losses]
            vec = torch.stack([p.sum(0) for p in per])
            sol = torch.tensor(mgda_solve(vec.double()), dtype=torch.float32)
            comb = sum(sol[t] * per[t] for t in range(T))
            gsh = torch.autograd.grad(feat, [params[k] for k in self.shared], comb,
                                      retain_graph=True)
            grads.update(dict(zip(self.shared, gsh)))
            gh = torch.autograd.grad(sum(losses), [params[k] for k in self.heads])
            grads.update(dict(zip(self.heads, gh)))
        else:
            G = self.task_grads(losses, params)
            if self.kind == "pcgrad":
                new = pcgrad(G, self.seed, step, self.perturb)
            elif self.kind == "cagrad":
                new = cagrad(G, 0.5, 1)
            elif self.kind == "mgda":
                gn = torch.ones(T)
                if self.norm == "l2":
                    gn = G.norm(dim=1)
                Gn = G / gn.view(-1, 1)
                sol = torch.tensor(mgda_solve(Gn.double()), dtype=torch.float32)
                new = (sol.view(-1, 1) * Gn).sum(0)
            else:  # gradnorm, LibMTL's form
                z = self.wp.clone().requires_grad_(True)
                scale = T * torch.softmax(z, dim=-1)
                norms = G.norm(dim=1).detach()
                gpl = scale * norms
                L0 = self.hist[0]
                Li = torch.tensor(lv / L0, dtype=torch.float32)
                ri = Li / Li.mean()
                target = (gpl.mean() * ri ** 1.5).detach()
                (dz,) = torch.autograd.grad((gpl - target).abs().sum(), z)
                new = (scale.detach().view(-1, 1) * G).sum(0)
                self.wstep(dz, lr)
            grads.update(self.unflatten(new, params))
            gh = torch.autograd.grad(sum(losses), [params[k] for k in self.heads])
            grads.update(dict(zip(self.heads, gh)))
        self.optimizer_step(grads, lr)
        if self.kind == "uncertainty":
            self.wstep(ds, lr)
        self.cur += lv
        self.cur_n += 1
        return lv


def check(name, a, work, tol):
    data = O.build_data(a.taskrel, work, "tn")
    text = O.BASE.format(data=data, kind="hps")
    sets = dict(METHODS[name])
    cfg = O.ini_values(text, sets)
    init, init_dir, run_dir, losses, steps, t_taskrel = O.taskrel_runs(a, work, name, text, sets)
    seed, B = int(cfg["train.seed"]), int(cfg["train.batch_size"])
    d = O.load_data(data, O.task_order(init_dir), seed, B)
    opt = {"kind": "sgd", "wd": float(cfg["train.weight_decay"]),
           "momentum": float(cfg["train.momentum"]), "beta1": 0.9, "beta2": 0.999, "eps": 1e-8,
           "mult_head": 1.0, "mult_trunk": 1.0}
    ref = Weighted({"kind": "hps"}, d, init, O.initial_buffers(init_dir), opt, a.perturb)
    ref.setup(cfg)
    lr = float(cfg["train.lr"])
    tr = O.Tracker()
    t0 = time.time()
    for step in range(steps):
        lo = ref.step(step, lr)
        if step + 1 in losses:
            tr.add("loss", step + 1, lo, losses[step + 1])
        ck = os.path.join(run_dir, "checkpoints", f"ckpt-{step + 1}.h5")
        for k, v in O.read_params(ck).items():
            tr.add("weights", step + 1, ref.p[k].numpy(), v, k)
        if ref.kind in ("uncertainty", "gradnorm"):
            wst = O.read_group(ck, "/weighting")
            tr.add("weighting", step + 1, ref.wp.numpy().astype(np.float64),
                   wst["params"][0], "s" if ref.kind == "uncertainty" else "z")
    ok = all(v[0] <= tol for v in tr.worst.values())
    parts = ", ".join(f"{k} {v[0]:.2e} (abs {v[1]:.1e}, step {v[2]}{' ' + v[3] if v[3] else ''})"
                      for k, v in tr.worst.items())
    print(f"{name:12s} {'PASS' if ok else 'FAIL'}  {steps} steps; max rel diff: {parts}; "
          f"taskrel {t_taskrel:.1f} s, reference {time.time() - t0:.1f} s", flush=True)
    return ok


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--taskrel", default="build/taskrel")
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--work", default=None)
    ap.add_argument("--tol", type=float, default=1e-4)
    ap.add_argument("--perturb", default=None, choices=("pcgrad_order",),
                    help="change one formula on the reference side (with --methods pcgrad: "
                         "the check must fail)")
    a = ap.parse_args()
    a.taskrel = os.path.abspath(a.taskrel)
    work = a.work or tempfile.mkdtemp(prefix="taskrel-oracle-w-")
    os.makedirs(work, exist_ok=True)
    print(f"oracle_weighting: torch {torch.__version__}, work directory {work}", flush=True)
    t0 = time.time()
    res = [check(m.strip(), a, work, a.tol) for m in a.methods.split(",") if m.strip()]
    print(f"oracle_weighting: {sum(res)}/{len(res)} weightings match in {time.time() - t0:.1f} s")
    if not a.work:
        shutil.rmtree(work, ignore_errors=True)
    if a.perturb:
        sys.exit(0 if not all(res) else 1)
    sys.exit(0 if all(res) else 1)


if __name__ == "__main__":
    main()
