"""Model-based searchers: amortised ask+tell cost per evaluation at N observations.

Run: python benchmarks/bench_model_searchers.py [--sizes 300 1000] [--tpe-evals 50]

* BANANAS with the paper's settings (ensemble of 5 MLPs, 10 layers x 20, Adam lr 0.01, 200 epochs,
  batch 32, MAPE; 100 candidates; k = 10 proposals per fit). Its first N proposals are made random
  (``n_init = N``) and told, then ``k`` asks+tells are timed: one ensemble fit on N points, the
  candidate generation and the acquisition, amortised over the ``k`` evaluations of the batch.
* Optuna TPE through the ``optuna`` searcher, driven to N trials by itself, then ``--tpe-evals``
  asks+tells timed. Baseline: plain Optuna (``TPESampler``, the same 6 categorical parameters,
  ``study.ask``/``study.tell``) driven the same way in the same process; the ratio is the adapter's
  overhead (a sampler rebuilt per ask from the run's generator, decoding, bookkeeping). Reference
  from the issue: Optuna TPE ~5 ms per trial at 1,000 trials.

The objective is synthetic (a per-edge score on NB201), so only searcher time is measured.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np
from nasatlas.results import EvalResult
from nasatlas.searchers import get_searcher
from nasatlas.searchers.optuna_space import OptunaSpace, quiet_optuna
from nasatlas.spaces import get_space

SPACE = get_space("nb201")
W = np.random.default_rng(0).normal(size=(SPACE.width, 5))


def score(row: Any) -> float:
    return float(W[np.arange(SPACE.width), np.asarray(row)].sum())


def told(row: Any) -> EvalResult:
    return EvalResult(status="ok", metrics={"acc": score(row)})


def bananas_cost(n: int, iterations: int) -> tuple[float, float]:
    """(seconds per evaluation, seconds per fit) at ``n`` observations."""
    s = get_searcher("bananas", n_init=n)
    s.start(SPACE, np.random.default_rng(0), objective="acc")
    for p in s.ask(n):
        s.tell(p, told(p.row))
    k = s.k
    t = time.perf_counter()
    for _ in range(iterations * k):
        p = s.ask(1)[0]
        s.tell(p, told(p.row))
    total = time.perf_counter() - t
    return total / (iterations * k), total / iterations


def optuna_cost(n: int, evals: int) -> float:
    s = get_searcher("optuna", sampler="tpe")
    s.start(SPACE, np.random.default_rng(0), objective="acc")
    for _ in range(n):
        p = s.ask(1)[0]
        s.tell(p, told(p.row))
    t = time.perf_counter()
    for _ in range(evals):
        p = s.ask(1)[0]
        s.tell(p, told(p.row))
    return (time.perf_counter() - t) / evals


def plain_optuna_cost(n: int, evals: int) -> float:
    import optuna

    dists = OptunaSpace(SPACE, "bench").distributions
    with quiet_optuna():
        study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=0))

        def step() -> None:
            trial = study.ask(dists)
            row = [SPACE.decisions[j].choices.index(trial.params[d.name]) for j, d in enumerate(SPACE.decisions)]
            study.tell(trial, score(row))

        for _ in range(n):
            step()
        t = time.perf_counter()
        for _ in range(evals):
            step()
    return (time.perf_counter() - t) / evals


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sizes", type=int, nargs="+", default=[300, 1000])
    ap.add_argument("--bananas-iterations", type=int, default=2, help="fits timed per size (k = 10 evals each)")
    ap.add_argument("--tpe-evals", type=int, default=50)
    args = ap.parse_args()
    import torch

    print(f"torch {torch.__version__}, {torch.get_num_threads()} intra-op threads (BANANAS fits use 1)")
    print(f"{'searcher':<44} {'N':>6} {'ms / eval':>10}  note")
    for n in args.sizes:
        per_eval, per_fit = bananas_cost(n, args.bananas_iterations)
        print(f"{'bananas (paper settings, k=10 per fit)':<44} {n:>6} {per_eval * 1e3:>10.1f}  "
              f"one ensemble fit + acquisition: {per_fit:.2f} s")
    for n in args.sizes:
        ours = optuna_cost(n, args.tpe_evals)
        plain = plain_optuna_cost(n, args.tpe_evals)
        print(f"{'optuna tpe (nasatlas searcher)':<44} {n:>6} {ours * 1e3:>10.1f}  "
              f"plain Optuna TPE: {plain * 1e3:.1f} ms ({ours / plain:.2f}x)")


if __name__ == "__main__":
    main()
