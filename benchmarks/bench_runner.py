"""Benchmark of the study runner: evaluations per second and where the time goes.

Usage::

    python benchmarks/bench_runner.py                       # the figures in docs/benchmarks.md
    python benchmarks/bench_runner.py --evals 500 --pool-evals 100 --cost-evals 40 --no-dask

1. In process: random search on NAS-Bench-201 against the tabular evaluator (``--table``), ``--evals``
   evaluations through :func:`run_study` (batch-synchronous, ``batch_size`` 1 and 16) and
   :func:`run_study_async` (one slot), against the baseline of the evaluator alone in a plain loop
   over the same number of sampled architectures. The time inside ``ResultLog.append`` (one JSON line
   per row and one fsync per append, Parquet rolls included) is measured in the driver and reported
   per evaluation; "runner" is the rest (ask, tell, make_record, canonical ids, progress).
2. Two workers: the same study with ``--pool-evals`` evaluations (2 repeats) on a spawn process pool
   and on a Dask ``LocalCluster`` (2 single-thread worker processes), batch-synchronous and
   ``--async``; then with the ``cost`` evaluator on a small network (``--cost-net``; ``--cost-evals``
   evaluations), so that an evaluation costs tens of milliseconds and the comparison is not only
   overhead. Every run starts its own pool, as ``nasatlas run`` does: "wall" includes the start
   (spawn, imports, the table load or torch import in each worker); "steady" is the rate between the
   20th-percentile and the last finished row of the log (worker timestamps), i.e. without the start.

Before those, the round trip of a no-op task on each executor (after it has started) gives its
per-task overhead. The driver writes every row in every mode; the log column shows its share of the
wall time.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from nasatlas.evaluators.registry import get_evaluator
from nasatlas.results import ResultLog
from nasatlas.studies.runner import RunSummary, build_space, run_study
from nasatlas.studies.runner_async import run_study_async
from nasatlas.studies.studyfile import Study, parse_study

DEFAULT_TABLE = Path(__file__).resolve().parents[2] / "shared" / "data" / "nb201_cifar10valid_avg3seeds.parquet"


def make_study(name: str, evaluator: dict[str, Any], evaluations: int, repeats: int = 1, batch_size: int = 1,
               objective: str = "valid_acc") -> Study:
    """A random-search study on NB201 (one searcher, ``repeats`` runs)."""
    return parse_study({
        "study": {"name": name, "seed": 0, "repeats": repeats, "batch_size": batch_size, "objective": objective},
        "space": {"name": "nb201"}, "evaluator": evaluator, "searchers": [{"name": "random"}],
        "budget": {"evaluations": evaluations},
    }, where=name)


def tabular(table: Path) -> dict[str, Any]:
    return {"name": "tabular", "params": {"table": str(table), "metrics": ["valid_acc", "test_acc"],
                                          "time_column": "train_time_total_s"}}


class AppendTimer:
    """Time spent in ``ResultLog.append`` in this process (the driver writes every row)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.calls = 0

    @contextlib.contextmanager
    def active(self) -> Iterator[AppendTimer]:
        original = ResultLog.append

        def timed(log: ResultLog, records: Any) -> None:
            begin = time.perf_counter()
            try:
                original(log, records)
            finally:
                self.seconds += time.perf_counter() - begin
                self.calls += 1

        ResultLog.append = timed  # type: ignore[method-assign]
        try:
            yield self
        finally:
            ResultLog.append = original  # type: ignore[method-assign]


def timed_run(fn: Any, study: Study, out: Path, **kwargs: Any) -> tuple[RunSummary, float, AppendTimer]:
    timer = AppendTimer()
    with timer.active():
        begin = time.perf_counter()
        summary = fn(study, out, progress=False, **kwargs)
        wall = time.perf_counter() - begin
    df = ResultLog(out / "evaluations").read(columns=["status"])
    n_runs = len(study.searchers) * study.repeats
    expected = study.budget["evaluations"] * n_runs
    if len(df) != expected or summary.evaluated != expected:
        raise RuntimeError(f"{out}: {len(df)} rows, {summary.evaluated} evaluated; expected {expected}")
    return summary, wall, timer


def steady_rate(out: Path, skip: float = 0.2) -> float:
    """Rows per second between the ``skip`` quantile of finish times and the last one."""
    done = ResultLog(out / "evaluations").read(columns=["finished_at"])["finished_at"].sort_values()
    done = pd.to_datetime(done).reset_index(drop=True)
    k = int(skip * (len(done) - 1))
    span = (done.iloc[-1] - done.iloc[k]).total_seconds()
    return (len(done) - 1 - k) / span if span > 0 else float("nan")


def baseline_tabular(table: Path, evals: int) -> float:
    """Seconds per evaluation of the tabular evaluator alone, in a plain loop (setup excluded)."""
    space = build_space(make_study("baseline", tabular(table), 1))
    ev = get_evaluator("tabular", **tabular(table)["params"])
    ev.setup(space)
    archs = space.archs(space.sample(np.random.default_rng(0), evals))
    begin = time.perf_counter()
    for arch in archs:
        ev.evaluate(arch, budget={}, seed=0)
    return (time.perf_counter() - begin) / evals


def bench_in_process(work: Path, table: Path, evals: int) -> None:
    base = baseline_tabular(table, evals)
    print(f"\n1. in process: {evals:,} evaluations, random search on NB201, tabular evaluator")
    print(f"   {'':44s} {'evals/s':>9s} {'us/eval':>9s} {'log us':>8s} {'appends':>8s} {'runner us':>10s}")
    print(f"   {'baseline: evaluator alone, plain loop':44s} {1 / base:9.0f} {base * 1e6:9.0f}")
    for label, fn, batch in (("run_study, batch_size 1", run_study, 1),
                             ("run_study, batch_size 16", run_study, 16),
                             ("run_study_async (--async), 1 slot", run_study_async, 1)):
        study = make_study("inproc", tabular(table), evals, batch_size=batch)
        _, wall, timer = timed_run(fn, study, work / f"inproc-{batch}-{fn.__name__}")
        per = wall / evals
        log = timer.seconds / evals
        print(f"   {label:44s} {1 / per:9.0f} {per * 1e6:9.0f} {log * 1e6:8.0f} {timer.calls:8d} "
              f"{(per - log - base) * 1e6:10.0f}")


def noop(x: int) -> int:
    """A task that does nothing: its round trip is the executor's overhead."""
    return x


def bench_round_trip(dask: bool, tasks: int = 200) -> None:
    """Milliseconds per no-op task, submitted one at a time and waited for (pool already started)."""
    from nasatlas.studies.executors import make_executor
    print(f"\n   round trip of a no-op task ({tasks}, one at a time, after the pool has started)")
    for kind in ("local", "dask") if dask else ("local",):
        pool = make_executor(kind, 2)
        assert pool is not None
        try:
            pool.submit(noop, 0).result()
            begin = time.perf_counter()
            for i in range(tasks):
                pool.submit(noop, i).result()
            print(f"   {kind + ' x2':36s} {(time.perf_counter() - begin) / tasks * 1e3:7.2f} ms")
        finally:
            pool.shutdown()


def bench_two_workers(work: Path, label: str, evaluator: dict[str, Any], evals: int, objective: str,
                      dask: bool) -> None:
    per_run = max(1, evals // 2)
    study = make_study(label, evaluator, per_run, repeats=2, objective=objective)
    print(f"\n   {label}: {2 * per_run} evaluations (2 repeats x {per_run})")
    print(f"   {'':36s} {'wall s':>7s} {'evals/s':>8s} {'steady/s':>9s} {'log %':>6s}")
    modes: list[tuple[str, Any, dict[str, Any]]] = [("in process, 1 worker", run_study, {})]
    for executor in ("local", "dask") if dask else ("local",):
        for fn, name in ((run_study, "batch"), (run_study_async, "async")):
            modes.append((f"{executor} x2, {name}", fn, {"workers": 2, "executor": executor}))
    for i, (name, fn, kwargs) in enumerate(modes):
        out = work / f"{label}-{i}"
        _, wall, timer = timed_run(fn, study, out, **kwargs)
        total = 2 * per_run
        print(f"   {name:36s} {wall:7.2f} {total / wall:8.1f} {steady_rate(out):9.1f} "
              f"{100 * timer.seconds / wall:6.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--table", type=Path, default=DEFAULT_TABLE, help="the NB201 table (Parquet)")
    parser.add_argument("--evals", type=int, default=2000, help="in-process evaluations")
    parser.add_argument("--pool-evals", type=int, default=400, help="tabular evaluations on 2 workers")
    parser.add_argument("--cost-evals", type=int, default=120, help="cost evaluations on 2 workers")
    parser.add_argument("--cost-net", default='{"preset": "tiny", "N": 3}', help="cost evaluator net (JSON)")
    parser.add_argument("--no-dask", action="store_true", help="skip the Dask LocalCluster runs")
    parser.add_argument("--dir", type=Path, default=None, help="work directory (default: a temp dir)")
    args = parser.parse_args()
    if not args.table.is_file():
        parser.error(f"--table {args.table} does not exist")
    dask = not args.no_dask
    if dask:
        try:
            import distributed  # noqa: F401
        except ImportError:
            print("dask.distributed is not installed: the Dask rows are skipped")
            dask = False
    work = Path(tempfile.mkdtemp(prefix="bench-runner-", dir=args.dir))
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at start; work dir {work}")
    try:
        bench_in_process(work, args.table, args.evals)
        print("\n2. two workers (process pool vs Dask LocalCluster; wall includes starting the pool)")
        bench_round_trip(dask)
        bench_two_workers(work, "tabular", tabular(args.table), args.pool_evals, "valid_acc", dask)
        cost = {"name": "cost", "params": {"net": json.loads(args.cost_net)}}
        bench_two_workers(work, "cost", cost, args.cost_evals, "params", dask)
        print(f"\nload average {os.getloadavg()[0]:.2f} at the end (timings on a shared machine drift)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
