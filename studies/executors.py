"""Where evaluations run: in this process, a local process pool, or a Dask cluster.

An :class:`EvalTask` carries everything a worker needs (the space declaration, the evaluator
specs, the architecture, budget and seed), so workers build their space and evaluators once per
process and share nothing with the driver. Each worker process uses one torch thread: two 2-thread
trainings side by side on 2 cores ran 4x slower than two 1-thread ones (DESIGN §7). A failing
evaluation — an exception, a NaN loss, out of memory — comes back as a ``failed`` result; the
study goes on.
"""

from __future__ import annotations

import json
import traceback
from collections.abc import Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from nasatlas.results import EvalResult, utc_now

__all__ = ["EvalTask", "evaluate_task", "make_executor", "run_tasks"]

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
            extra[comp.label] = dict(xres.metrics)
    return result, extra, (started, utc_now())


def _init_worker() -> None:
    import torch
    torch.set_num_threads(1)


class _DaskExecutor(Executor):
    """A concurrent.futures adapter over a dask.distributed Client."""

    def __init__(self, workers: int, scheduler: str | None) -> None:
        try:
            from dask.distributed import Client, LocalCluster
        except ImportError:
            raise ValueError("--executor dask needs the optional extra: pip install 'nasatlas[dask]'") from None
        if scheduler:
            self._cluster = None
            self.client = Client(scheduler)
        else:
            self._cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                         dashboard_address=None)
            self.client = Client(self._cluster)
        self.client.run(_init_worker)

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
        return self.client.submit(fn, *args, pure=False, **kwargs)

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


def run_tasks(pool: Executor | None, tasks: Sequence[EvalTask]) -> list[Outcome]:
    """Evaluate tasks, in order of the input."""
    if pool is None:
        return [evaluate_task(t) for t in tasks]
    futures = [pool.submit(evaluate_task, t) for t in tasks]
    return [f.result() for f in futures]
