"""Searcher overhead: ask + tell per evaluation after 1,000 observations, on NAS-Bench-201.

Run: python benchmarks/bench_searchers.py [--history 1000] [--measure 200] [--repeat 3]

Each searcher is driven through ``--history`` ask(1)/tell pairs on a synthetic objective (a seeded
score per architecture, read from a table, results built beforehand so that only the searcher is
timed), then the next ``--measure`` pairs are timed; the best of ``--repeat`` runs is reported in
microseconds per evaluation. Target (2-core CPU): < 100 us for random, evolution, local_search and
reinforce. The baseline is optuna's in-memory ``RandomSampler`` driven the same way (ask, six
``suggest_categorical`` calls, tell) in this process.

``random_largest`` counts the params of every candidate by building its network (``cost_report``),
which dominates; it is reported twice: the first ``--largest-evals`` evaluations with a cold count
cache, and the same evaluations again with every count cached (its ask/tell overhead proper, which
does not grow with the number of observations: set lookups only).
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np
from nasatlas.results import EvalResult
from nasatlas.searchers import get_searcher
from nasatlas.spaces import get_space

SPACE = get_space("nb201")
RADIX = tuple(int(5 ** (5 - j)) for j in range(6))
SCORES = np.random.default_rng(0).random(15_625)
RESULTS = [EvalResult(status="ok", metrics={"score": float(v)}) for v in SCORES]
TARGET_US = 100.0


def rank(row: tuple[int, ...]) -> int:
    return sum(v * r for v, r in zip(row, RADIX))


def searcher_run(name: str, params: dict[str, Any], history: int, measure: int, seed: int) -> float:
    """Seconds per ask+tell over ``measure`` evaluations after ``history`` ones."""
    s = get_searcher(name, **params)
    s.start(SPACE, np.random.default_rng(seed), objective="score", mode="max")
    for _ in range(history):
        p = s.ask(1)[0]
        s.tell(p, RESULTS[rank(p.row)])
    t = time.perf_counter()
    for _ in range(measure):
        p = s.ask(1)[0]
        s.tell(p, RESULTS[rank(p.row)])
    return (time.perf_counter() - t) / measure


def optuna_run(history: int, measure: int, seed: int) -> float:
    import optuna
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=seed))
    ops = list(range(5))

    def one() -> None:
        trial = study.ask()
        row = tuple(trial.suggest_categorical(f"e{j}", ops) for j in range(6))
        study.tell(trial, float(SCORES[rank(row)]))  # type: ignore[arg-type]
    for _ in range(history):
        one()
    t = time.perf_counter()
    for _ in range(measure):
        one()
    return (time.perf_counter() - t) / measure


def largest_runs(evals: int, seed: int) -> tuple[float, float]:
    """random_largest seconds per evaluation: cold count cache, then the same run fully cached."""
    def run(counts: dict[str, int] | None) -> tuple[float, dict[str, int]]:
        s: Any = get_searcher("random_largest", net="tiny")
        s.start(SPACE, np.random.default_rng(seed), objective="score", mode="max")
        if counts is not None:
            s.counts = dict(counts)
        t = time.perf_counter()
        for _ in range(evals):
            p = s.ask(1)[0]
            s.tell(p, RESULTS[rank(p.row)])
        return (time.perf_counter() - t) / evals, s.counts
    cold, counts = run(None)
    warm, _ = run(counts)
    return cold, warm


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--history", type=int, default=1000)
    ap.add_argument("--measure", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--largest-evals", type=int, default=30)
    args = ap.parse_args()
    h, m = args.history, args.measure

    import optuna  # noqa: F401  (imported before timing)
    base = min(optuna_run(h, m, seed) for seed in range(args.repeat))
    rows: list[tuple[str, float, str]] = []
    plain: dict[str, Any] = {}
    for name, params in (("random", plain), ("evolution", plain), ("local_search", plain), ("reinforce", plain)):
        sec = min(searcher_run(name, params, h, m, seed) for seed in range(args.repeat))
        ok = "ok" if sec * 1e6 < TARGET_US else "OVER TARGET"
        rows.append((name, sec, f"target < {TARGET_US:.0f} us: {ok}"))
    rows.append(("optuna RandomSampler (in-memory)", base, "peer baseline"))
    cold, warm = largest_runs(args.largest_evals, 0)
    rows.append((f"random_largest k=10, counts cold ({args.largest_evals} evals)", cold, "builds k networks per ask"))
    rows.append((f"random_largest k=10, counts cached ({args.largest_evals} evals)", warm, "overhead without counting"))

    print(f"NB201, ask(1)+tell per evaluation after {h} observations (best of {args.repeat} runs of {m})")
    print(f"{'searcher':<52} {'us/eval':>10} {'vs optuna':>10}  note")
    for name, sec, note in rows:
        print(f"{name:<52} {sec * 1e6:>10.1f} {base / sec:>9.1f}x  {note}")


if __name__ == "__main__":
    main()
