#!/usr/bin/python3
"""Per run directory: the norm of the selected heads' fc7/fc8 weights over all tasks,
and their task spread mean_t ||W_t - W_mean|| / ||W_mean||, from model.h5; and, for
MRN runs, the largest task-mode precision of each prior layer at every validation
(metrics.jsonl). Used for the MRN analysis in docs/results.md.

    /usr/bin/python3 tests/reference/head_stats.py RUN_DIR...
"""
import json
import os
import sys

import h5py
import numpy as np


def main():
    for d in sys.argv[1:]:
        path = os.path.join(d, "model.h5")
        if not os.path.exists(path):
            print(f"{d}: no model.h5")
            continue
        parts = []
        with h5py.File(path, "r") as f:
            for layer in ("fc7", "fc8"):
                key = f"/params/head.{layer}.w"
                if key not in f:
                    continue
                w = np.array(f[key], dtype=np.float64)
                m = w.mean(0)
                spread = np.mean([np.linalg.norm(wt - m) for wt in w]) / np.linalg.norm(m)
                parts.append(f"{layer} |W| {np.linalg.norm(w):.2f} spread {spread:.3f}")
        p3 = {}
        with open(os.path.join(d, "metrics.jsonl")) as f:
            for line in f:
                o = json.loads(line)
                for layer, v in o.get("mrn", {}).get("layers", {}).items():
                    p3.setdefault(layer, []).append(f"{v['max_precision'][2]:.3g}")
        for layer, vals in p3.items():
            parts.append(f"{layer} max task precision by validation: {' '.join(vals)}")
        print(f"{d}: " + "; ".join(parts))


if __name__ == "__main__":
    main()
