#!/usr/bin/python3
"""PyTorch reference for taskrel's HPS training throughput (tests/bench/README.md).

One training step = forward + backward + SGD update over a batch of B samples
for EACH of T tasks, all through one shared LeNet trunk:

    trunk:  conv5x5 1->32, ReLU, maxpool2, conv5x5 32->64, ReLU, maxpool2,
            flatten (64*4*4 = 1024), fc 1024->512, ReLU
    head t: fc7 512->256, ReLU, fc8 256->10        (one head per task)
    loss:   sum over tasks of the mean softmax cross-entropy of that task's batch
    update: SGD, momentum 0.9, weight decay 5e-4 (on every parameter), lr 0.01

float32, one process, one thread (torch.set_num_threads(1)). Inputs are
synthetic: uniform [0,1) images (B,1,28,28) and uniform labels per task, a few
fixed batches cycled so that no data work is timed. Throughput is
T*B*steps / time over the timed steps; warm-up steps are not timed.

Not a test; run by tests/bench/bench_hps.sh or directly:
    /usr/bin/python3 tests/bench/torch_hps.py --steps 50 --warmup 10
"""

import argparse
import json
import os
import platform
import sys
import time

# Must be set before torch loads its OpenMP/BLAS runtimes.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402


class LeNetTrunk(nn.Module):
    def __init__(self, fc=512):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 5)
        self.conv2 = nn.Conv2d(32, 64, 5)
        self.fc6 = nn.Linear(64 * 4 * 4, fc)

    def forward(self, x):  # x: (N, 1, 28, 28)
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)  # (N, 32, 12, 12)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)  # (N, 64, 4, 4)
        return F.relu(self.fc6(torch.flatten(x, 1)))  # (N, 512)


class Head(nn.Module):
    def __init__(self, din=512, hidden=256, classes=10):
        super().__init__()
        self.fc7 = nn.Linear(din, hidden)
        self.fc8 = nn.Linear(hidden, classes)

    def forward(self, h):  # h: (N, 512)
        return self.fc8(F.relu(self.fc7(h)))  # (N, classes)


class HPS(nn.Module):
    def __init__(self, tasks):
        super().__init__()
        self.trunk = LeNetTrunk()
        self.heads = nn.ModuleList([Head() for _ in range(tasks)])

    def loss(self, xs, ys, trunk_mode):
        """xs, ys: one (B,1,28,28) batch and (B,) labels per task."""
        if trunk_mode == "concat":  # one trunk pass over all T*B samples
            feats = self.trunk(torch.cat(xs)).split([x.shape[0] for x in xs])
        else:  # one trunk pass per task
            feats = [self.trunk(x) for x in xs]
        return sum(F.cross_entropy(head(f), y) for head, f, y in zip(self.heads, feats, ys))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=50, help="timed steps (50)")
    ap.add_argument("--warmup", type=int, default=10, help="untimed steps first (10)")
    ap.add_argument("--tasks", type=int, default=4, help="tasks T (4)")
    ap.add_argument("--batch", type=int, default=128, help="per-task batch B (128)")
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads (1)")
    ap.add_argument("--trunk-mode", choices=("concat", "per-task"), default="concat",
                    help="run the trunk once on all T*B samples (concat) or once per task")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    a = ap.parse_args()
    if a.steps < 1 or a.warmup < 0 or a.tasks < 1 or a.batch < 1:
        ap.error("need --steps >= 1, --warmup >= 0, --tasks >= 1, --batch >= 1")

    torch.set_num_threads(a.threads)
    torch.set_num_interop_threads(1)
    torch.manual_seed(a.seed)

    model = HPS(a.tasks)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    pool = 4  # fixed synthetic batches, cycled
    data = [([torch.rand(a.batch, 1, 28, 28) for _ in range(a.tasks)],
             [torch.randint(0, 10, (a.batch,)) for _ in range(a.tasks)]) for _ in range(pool)]

    def step(i):
        xs, ys = data[i % pool]
        opt.zero_grad(set_to_none=True)
        loss = model.loss(xs, ys, a.trunk_mode)
        loss.backward()
        opt.step()
        return loss

    for i in range(a.warmup):
        step(i)
    t0 = time.perf_counter()
    for i in range(a.steps):
        loss = step(a.warmup + i)
    loss = float(loss)
    dt = time.perf_counter() - t0
    if not (loss == loss):  # NaN check
        sys.exit("torch_hps: loss is NaN")

    sps = a.tasks * a.batch * a.steps / dt
    res = {
        "impl": "pytorch",
        "torch": torch.__version__,
        "python": platform.python_version(),
        "threads": torch.get_num_threads(),
        "tasks": a.tasks,
        "batch_per_task": a.batch,
        "trunk_mode": a.trunk_mode,
        "warmup_steps": a.warmup,
        "steps": a.steps,
        "time_s": round(dt, 4),
        "ms_per_step": round(1000 * dt / a.steps, 2),
        "train_samples_per_s": round(sps, 1),
        "final_loss": round(loss, 4),
        "params": sum(p.numel() for p in model.parameters()),
    }
    print(f"pytorch {torch.__version__}: {sps:.1f} samples/s "
          f"({1000 * dt / a.steps:.1f} ms/step, {a.steps} steps after {a.warmup} warm-up, "
          f"T={a.tasks} B={a.batch}, {torch.get_num_threads()} thread, trunk {a.trunk_mode})")
    if a.json:
        print(json.dumps(res))


if __name__ == "__main__":
    main()
