"""Where evaluations run: in this process, a local process pool, or a Dask cluster.

An :class:`EvalTask` carries everything a worker needs (the space declaration, the evaluator
specs, the architecture, budget and seed), so workers build their space and evaluators once per
process and share nothing with the driver. Each worker process uses one torch thread: two 2-thread
trainings side by side on 2 cores ran 4x slower than two 1-thread ones (DESIGN §7). A failing
evaluation — an exception, a NaN loss, out of memory — comes back as a ``failed`` result; the
study goes on.

Every executor here returns ``concurrent.futures.Future`` objects, so a runner can wait on them
with :func:`concurrent.futures.wait` whatever runs them (the free-running runner does).

Dask: without a scheduler address a ``distributed.LocalCluster`` is started with one single-thread
worker *process* per ``--workers`` (``processes=True``, ``threads_per_worker=1``); with
``--scheduler ADDR`` the client joins that cluster. Either way a setup callback sets torch to one
thread on every worker, present and future. Start remote workers with ``--nthreads 1``: tasks that
share a worker process also share torch's global RNG, which each evaluation seeds (DESIGN §3), so
two of them at once in one process are not reproducible; a warning says so when a worker has more.

The driver, not the workers, writes the log: workers return their outcome, the runner turns it into
a row and appends it, so a remote worker needs no access to the run directory. The price is one
fsync'd append per batch (3-4 ms on a virtual disk): it bounds table lookups, not evaluations of
tens of milliseconds or more (``benchmarks/bench_runner.py``, docs/benchmarks.md "Runner").
"""

from __future__ import annotations

import json
import os
import sys
import traceback
import warnings
from collections.abc import Sequence
from concurrent.futures import BrokenExecutor, Executor, Future, ProcessPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from nasatlas.results import EvalResult, utc_now

__all__ = ["EvalTask", "InlineExecutor", "evaluate_task", "executor_slots", "make_executor", "outcome_of",
           "run_tasks"]

Outcome = tuple[EvalResult, dict[str, dict[str, float]], tuple[datetime, datetime]]


@dataclass(frozen=True)
class EvalTask:
    """One evaluation, self-contained and picklable."""

    space_decl: dict[str, Any]
    evaluator: Any           # studyfile.Component
    extra: tuple[Any, ...]   # extra evaluators (Components with labels)
    data: Any                # studyfile.Component or None
    row: tuple[int, ...]
    budget: dict[str, Any]
    seed: int
    device: str = "cpu"
    data_root: str | None = None


_CACHE: dict[str, Any] = {}


def _key(*parts: Any) -> str:
    return json.dumps(parts, sort_keys=True, default=lambda o: getattr(o, "__dict__", str(o)))


def _space(decl: dict[str, Any]) -> Any:
    from nasatlas.spaces.declaration import space_from_dict
    k = _key("space", decl)
    if k not in _CACHE:
        _CACHE[k] = space_from_dict(decl)
    return _CACHE[k]


def _evaluator(comp: Any, space: Any, data: Any, decl: dict[str, Any]) -> Any:
    from nasatlas.evaluators.registry import get_evaluator
    k = _key("evaluator", comp.name, comp.params, data and (data.name, data.params), decl)
    if k not in _CACHE:
        params = dict(comp.params)
        if data is not None and "data" in _accepted(comp.name) and "data" not in params:
            params["data"] = {"name": data.name, **data.params}
        ev = get_evaluator(comp.name, **params)
        ev.setup(space)
        _CACHE[k] = ev
    return _CACHE[k]


def _accepted(name: str) -> list[str]:
    import inspect

    from nasatlas.evaluators.registry import EVALUATORS
    return list(inspect.signature(EVALUATORS.factory(name)).parameters)


def _safe(ev: Any, arch: Any, task: EvalTask) -> EvalResult:
    try:
        res = ev.evaluate(arch, budget=task.budget, seed=task.seed, device=task.device)
        if not isinstance(res, EvalResult):
            raise TypeError(f"evaluator returned {type(res).__name__}, not EvalResult")
        return res
    except Exception as e:  # a failing evaluation is logged as failed; the study goes on
        tb = traceback.format_exception_only(type(e), e)[-1].strip()
        return EvalResult.failed(tb[:2000], budget=task.budget)


def evaluate_task(task: EvalTask) -> Outcome:
    """Evaluate one task in this process (with the main and the extra evaluators)."""
    started = utc_now()
    try:
        space = _space(task.space_decl)
        arch = space.archs([list(task.row)])[0]
        ev = _evaluator(task.evaluator, space, task.data, task.space_decl)
    except Exception as e:  # setup failures are reported on every row they affect
        return EvalResult.failed(f"{type(e).__name__}: {e}", budget=task.budget), {}, (started, utc_now())
    result = _safe(ev, arch, task)
    extra: dict[str, dict[str, float]] = {}
    for comp in task.extra:
        try:
            xev = _evaluator(comp, space, task.data, task.space_decl)
            xres = _safe(xev, arch, task)
        except Exception:
            continue
        if xres.ok:
            extra[comp.label] = {**xres.metrics, **{f"cost_{k}": v for k, v in xres.costs.items()}}
    return result, extra, (started, utc_now())


def _init_worker() -> None:
    """One torch thread in this worker process, without importing torch where no evaluator needs it:
    torch reads ``OMP_NUM_THREADS`` when it loads, and one loaded already is set directly."""
    os.environ["OMP_NUM_THREADS"] = "1"
    os.environ["MKL_NUM_THREADS"] = "1"
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(1)


class InlineExecutor(Executor):
    """Evaluate in this process at ``submit`` and return a finished future (one in-process slot)."""

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except Exception as e:  # the caller sees it through future.result(), as with a pool
            future.set_exception(e)
        return future


class _DaskExecutor(Executor):
    """A concurrent.futures adapter over a dask.distributed Client (futures are ``concurrent.futures``)."""

    def __init__(self, workers: int, scheduler: str | None) -> None:
        try:
            from dask.distributed import Client, LocalCluster
        except ImportError:
            raise ValueError("--executor dask needs the optional extra: pip install 'nasatlas[dask]'") from None
        self.workers = workers
        self._cluster: Any = None
        if scheduler:
            try:
                self.client = Client(scheduler)
            except (OSError, TimeoutError) as e:
                raise ValueError(f"--scheduler {scheduler}: cannot connect to a Dask scheduler there ({e}); start one "
                                 "(`dask scheduler`) or leave --scheduler out for a local cluster") from None
        else:
            self._cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                         dashboard_address=None)
            self.client = Client(self._cluster)
        self.client.register_worker_callbacks(setup=_init_worker)  # present and future workers
        crowded = {addr: n for addr, n in self.client.nthreads().items() if n > 1}
        if crowded:
            warnings.warn(f"Dask workers {sorted(crowded)} run {max(crowded.values())} tasks per process; "
                          "evaluations seed torch's process-wide RNG, so results are reproducible only with "
                          "one thread per worker (dask worker ADDR --nthreads 1)", RuntimeWarning, stacklevel=2)
        self._cf = self.client.get_executor(pure=False)

    @property
    def slots(self) -> int:
        """Concurrent evaluations: the cluster's task threads, at least ``workers``."""
        return max(self.workers, sum(self.client.nthreads().values()))

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = self._cf.submit(fn, *args, **kwargs)
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self.client.close()
        if self._cluster is not None:
            self._cluster.close()


def make_executor(kind: str, workers: int, scheduler: str | None = None) -> Executor | None:
    """``None`` (in-process) for one local worker, else a process pool or a Dask client."""
    if workers < 1:
        raise ValueError(f"--workers {workers}: give at least 1")
    if kind == "local":
        if workers == 1:
            return None
        import multiprocessing as mp
        return ProcessPoolExecutor(max_workers=workers, initializer=_init_worker,
                                   mp_context=mp.get_context("spawn"))
    if kind == "dask":
        return _DaskExecutor(workers, scheduler)
    raise ValueError(f"--executor {kind!r}; allowed: local, dask")


def executor_slots(pool: Executor | None, workers: int) -> int:
    """How many evaluations to keep in flight on ``pool`` (``make_executor``'s result)."""
    if pool is None or isinstance(pool, InlineExecutor):
        return 1
    if isinstance(pool, _DaskExecutor):
        return pool.slots
    return workers


def outcome_of(future: Future[Outcome], task: EvalTask) -> Outcome:
    """A finished future's outcome; a lost worker (e.g. killed for memory) is a failed evaluation.

    A broken local pool (a worker process died) is re-raised: every task in it is lost, not failed,
    and ``--resume`` evaluates them again.
    """
    try:
        return future.result()
    except BrokenExecutor:
        raise
    except Exception as e:
        now = utc_now()
        return EvalResult.failed(f"worker lost: {type(e).__name__}: {e}"[:2000], budget=task.budget), {}, (now, now)


def run_tasks(pool: Executor | None, tasks: Sequence[EvalTask]) -> list[Outcome]:
    """Evaluate tasks, in order of the input."""
    if pool is None:
        return [evaluate_task(t) for t in tasks]
    futures = [pool.submit(evaluate_task, t) for t in tasks]
    return [f.result() for f in futures]
