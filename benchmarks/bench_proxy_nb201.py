"""Zero-cost proxies on the standard NB201 network vs the NAS-Bench-201 CIFAR-10 table: Spearman's ρ.

Run: python benchmarks/bench_proxy_nb201.py [--n 200] [--n-data 16] [--seed 0] [--threads 1] [--table PATH]

A seeded random sample of ``--n`` cells of the table (``../shared/data/nb201_cifar10valid_avg3seeds.parquet``
by default: all 15,625 cells, cifar10-valid split, 200-epoch accuracies averaged over 3 seeds) is scored by the
``proxy`` evaluator on NB201's standard network (C=16, N=5, 3x32x32, 10 classes), each cell with its own
initialisation seed. The data-free proxies (synflow, params, macs) score all ``--n`` cells; the five proxies
that need a mini-batch (snip, grad_norm, grasp, fisher, jacob_cov: batch 64 of ``digits`` resized to
32x32, as the evaluator's default) score the first ``--n-data`` of them, because on a 2-core CPU they cost
seconds per cell (grasp's double back-propagation the most). Each proxy runs through its own evaluator, so
its time per cell (network build + proxy) is its own; the baseline ratio is against one plain-PyTorch SGD
step (forward, cross-entropy, backward, update) of the same network on the same batch.

Printed per proxy: cells scored, cells with a non-finite value (left out of ρ; e.g. jacob_cov is NaN for
cells whose output does not depend on the input), Spearman's ρ with the table's test and validation
accuracy, seconds per cell and that time in SGD steps. Published reference (Abdelfattah et al. 2021,
table 2, all 15,625 cells, CIFAR-10 test accuracy of the train+valid run): synflow ρ = 0.74.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from nasatlas.evaluators import seeded
from nasatlas.evaluators.proxy import ProxyEvaluator
from nasatlas.evaluators.tabular import read_table
from nasatlas.spaces import get_space
from nasatlas.spaces.build import build
from scipy.stats import spearmanr

SHARED = Path(os.environ.get("NASATLAS_SHARED", Path(__file__).resolve().parents[2] / "shared"))
TABLE = SHARED / "data" / "nb201_cifar10valid_avg3seeds.parquet"
DATA_FREE = ("synflow", "params", "macs")
WITH_DATA = ("snip", "grad_norm", "grasp", "fisher", "jacob_cov")
PUBLISHED = {"synflow": 0.74}


def sgd_step_seconds(space: object, arch: object, x: torch.Tensor, y: torch.Tensor, seed: int) -> float:
    """One plain-PyTorch training step of the cell's network on the batch: the baseline."""
    with seeded(seed):
        model = build(space, arch, None).train()  # type: ignore[arg-type]
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    t0 = time.perf_counter()
    loss = F.cross_entropy(model(x), y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=200, help="cells for the data-free proxies (synflow, params, macs)")
    ap.add_argument("--n-data", type=int, default=16, help="of those, cells also scored by the 5 data proxies")
    ap.add_argument("--seed", type=int, default=0, help="seed of the cell sample and of the init seeds")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--table", default=str(TABLE))
    ap.add_argument("--csv", default=None, help="also write the per-cell scores to this CSV")
    args = ap.parse_args()
    if not 0 <= args.n_data <= args.n or args.n < 3:
        raise SystemExit(f"need 3 <= --n and 0 <= --n-data <= --n; got --n {args.n} --n-data {args.n_data}")
    torch.set_num_threads(args.threads)

    table = read_table(args.table)
    space = get_space("nb201")
    rng = np.random.default_rng(args.seed)
    rows = rng.choice(len(table), size=args.n, replace=False)
    seeds = rng.integers(0, 2**63 - 1, size=args.n)
    sample = table.iloc[rows].reset_index(drop=True)
    archs = [space.from_str(s) for s in sample["arch"]]

    names = list(DATA_FREE[:1]) + (list(WITH_DATA) if args.n_data else [])
    evaluators = {}
    for name in names:
        ev = ProxyEvaluator(proxies=[name], batch_size=args.batch_size)
        ev.setup(space)
        evaluators[name] = ev
    x, y = evaluators["snip"].batch("cpu") if args.n_data else (None, None)

    scores: dict[str, list[float]] = {n: [math.nan] * args.n for n in (*DATA_FREE, *WITH_DATA)}
    seconds: dict[str, list[float]] = {n: [] for n in (*names, "sgd_step")}
    t_start = time.perf_counter()
    for i, arch in enumerate(archs):
        for name in names if i < args.n_data else names[:1]:
            values, costs = evaluators[name].scores(arch, seed=int(seeds[i]))
            scores[name][i] = values[name]
            seconds[name].append(costs["proxy_seconds"])
            scores["params"][i], scores["macs"][i] = costs["params"], costs["macs"]
        if i < args.n_data and x is not None and y is not None:
            seconds["sgd_step"].append(sgd_step_seconds(space, arch, x, y, int(seeds[i])))
        if (i + 1) % 25 == 0 or i + 1 == args.n:
            print(f"  {i + 1}/{args.n} cells, {time.perf_counter() - t_start:.0f} s", flush=True)

    step = statistics.mean(seconds["sgd_step"]) if seconds["sgd_step"] else math.nan
    print(f"\nNB201 C=16 N=5, 3x32x32; table {Path(args.table).name}; sample seed {args.seed}; "
          f"torch threads {args.threads}; data-proxy batch {args.batch_size} of digits (32x32)")
    print(f"one plain SGD step of the network at batch {args.batch_size}: {step:.3f} s (mean over "
          f"{len(seconds['sgd_step'])} cells)\n")
    head = f"{'proxy':<10} {'cells':>5} {'nonfinite':>9} {'rho_test':>8} {'rho_valid':>9} {'s/cell':>7} " \
           f"{'x SGD step':>10} {'published':>9}"
    print(head)
    print("-" * len(head))
    for name in (*DATA_FREE, *WITH_DATA):
        n_cells = args.n if name in DATA_FREE else args.n_data
        if n_cells == 0:
            continue
        v = np.asarray(scores[name][:n_cells], dtype=float)
        ok = np.isfinite(v)
        rho_t = spearmanr(v[ok], sample["test_acc"].to_numpy()[:n_cells][ok]).statistic if ok.sum() > 2 else math.nan
        rho_v = spearmanr(v[ok], sample["valid_acc"].to_numpy()[:n_cells][ok]).statistic if ok.sum() > 2 else math.nan
        secs = statistics.mean(seconds[name]) if seconds.get(name) else math.nan
        pub = f"{PUBLISHED[name]:.2f}" if name in PUBLISHED else "-"
        ratio = secs / step if math.isfinite(secs) and math.isfinite(step) else math.nan
        print(f"{name:<10} {n_cells:>5} {int((~ok).sum()):>9} {rho_t:>8.3f} {rho_v:>9.3f} {secs:>7.3f} "
              f"{ratio:>10.2f} {pub:>9}")
    print("\nparams/macs: counted on the built network (no proxy time of their own; s/cell is synflow's run).")
    if args.csv:
        out = pd.DataFrame({"arch": sample["arch"], "test_acc": sample["test_acc"], "valid_acc": sample["valid_acc"],
                            "seed": seeds, **{k: v for k, v in scores.items()}})
        out.to_csv(args.csv, index=False)
        print(f"per-cell scores written to {args.csv}")


if __name__ == "__main__":
    main()
