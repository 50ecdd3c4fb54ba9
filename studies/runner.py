"""The study runner: ``ask -> evaluate -> tell -> append``, reproducible, resumable, parallel.

Every (searcher, repeat) pair is a *run* with its own seed spawned from the study seed
(``numpy.random.SeedSequence(seed, spawn_key=(searcher index, repeat))``); each trial's evaluation
seed is spawned from the run's. The loop is batch-synchronous: each active run asks for
``batch_size`` proposals, all pending evaluations go to the executor together, and results are told
back in trial order — so the trajectory does not depend on the number of workers, and the log of a
run killed at any moment and resumed with ``--resume`` holds exactly the rows of an uninterrupted run:
on resume each searcher is replayed from the log (asked and told the logged results, without
re-evaluating) and only missing trials are evaluated.
"""

from __future__ import annotations

import socket
import sys
import time
from collections.abc import Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from nasatlas.results import EvalResult, ResultLog, make_record, package_version
from nasatlas.spaces import Space
from nasatlas.spaces.declaration import space_from_dict

from .executors import EvalTask, make_executor, run_tasks
from .studyfile import Study, space_declaration

__all__ = ["run_study", "RunSummary", "build_space", "run_seed", "trial_seed", "logged_trials", "build_record"]

INT63 = (1 << 63) - 1


def build_space(study: Study) -> Space:
    return space_from_dict(space_declaration(study.space), where=f"{study.source} [space]")


def run_seed(study_seed: int, searcher_index: int, repeat: int) -> np.random.SeedSequence:
    """The seed sequence of one (searcher, repeat) run."""
    return np.random.SeedSequence(study_seed, spawn_key=(searcher_index, repeat))


def trial_seed(study_seed: int, searcher_index: int, repeat: int, trial: int) -> int:
    """The int64 seed of one evaluation."""
    ss = np.random.SeedSequence(study_seed, spawn_key=(searcher_index, repeat, 1, trial))
    return int(ss.generate_state(1, np.uint64)[0]) & INT63


@dataclass
class _Run:
    label: str
    index: int
    repeat: int
    searcher: Any
    params: dict[str, Any]
    done: int = 0
    failed: int = 0
    best: float = float("-inf")
    simulated: float = 0.0
    started: float = field(default_factory=time.monotonic)
    finished: bool = False


@dataclass
class RunSummary:
    """What a run did: rows evaluated now, rows replayed from the log, failures, the directory."""

    out: Path
    evaluated: int
    replayed: int
    failed: int
    seconds: float


class _DerivedQueue:
    """Black-box face of a one-shot run: the supernet is trained on the first ``ask`` (in the driver,
    see :mod:`nasatlas.studies.oneshot`) and its derived architectures are proposed in epoch order.
    When every trial is already in the log (``--resume``), nothing is trained again."""

    def __init__(self, searcher: Any, space: Space, study: Study, index: int, repeat: int,
                 replay_rows: dict[int, tuple[int, ...]], out: Path | None = None) -> None:
        self.searcher, self.space, self.study = searcher, space, study
        self.out = out
        self.index, self.repeat = index, repeat
        self.replay_rows = replay_rows
        self.derived: list[Any] | None = None
        self.n_asked = 0
        self.search_seconds: dict[int, float] = {}

    def _search(self) -> list[Any]:
        from .oneshot import run_one_shot_search
        n = int(evaluations_of(self.study, self.index) or 1)
        if all(t in self.replay_rows for t in range(n)):
            from .oneshot import DerivedArch
            return [DerivedArch(self.replay_rows[t], -1, float("nan")) for t in range(n)]
        ss = run_seed(self.study.seed, self.index, self.repeat)
        rng = np.random.default_rng(ss.spawn(1)[0])
        seed = int(ss.generate_state(1, np.uint64)[0]) & INT63
        return run_one_shot_search(self.searcher, self.space, data=self.study.data, evaluations=n, seed=seed,
                                   rng=rng, device=self.study.device,
                                   out_dir=None if self.out is None else self.out / "search",
                                   label=self.study.searchers[self.index].label, repeat=self.repeat)

    def ask(self, n: int = 1) -> list[Any]:
        from nasatlas.searchers.base import Proposal
        if self.derived is None:
            self.derived = self._search()
        out: list[Any] = []
        while len(out) < n and self.n_asked < len(self.derived):
            d = self.derived[self.n_asked]
            self.search_seconds[self.n_asked] = d.search_seconds
            out.append(Proposal(self.n_asked, d.row, None))
            self.n_asked += 1
        return out

    def tell(self, proposal: Any, result: EvalResult) -> None:
        """Derived architectures do not depend on their evaluation."""

    def params(self) -> dict[str, Any]:
        p = getattr(self.searcher, "params", None)
        return dict(p()) if callable(p) else {}


def evaluations_of(study: Study, index: int) -> int | None:
    """Evaluations per repeat of searcher ``index``: its own ``evaluations`` or the study's budget."""
    own = study.searchers[index].evaluations
    return int(own) if own is not None else study.budget.get("evaluations")


def _make_searcher(study: Study, index: int, repeat: int, space: Space,
                   replay_rows: dict[int, tuple[int, ...]] | None = None,
                   out: Path | None = None) -> tuple[Any, dict[str, Any]]:
    """A new searcher for one (searcher, repeat) run; one-shot searchers are wrapped so that they
    propose their derived architectures (their per-epoch table and supernet go under ``out/search``)."""
    from nasatlas.searchers.registry import get_searcher

    from .oneshot import is_one_shot
    comp = study.searchers[index]
    s = get_searcher(comp.name, **comp.params)
    if is_one_shot(s):
        q = _DerivedQueue(s, space, study, index, repeat, replay_rows or {}, out)
        return q, {"searcher": {"name": comp.name, "one_shot": True, **q.params()}}
    rng = np.random.default_rng(run_seed(study.seed, index, repeat))
    objective = study.objective
    s.start(space, rng, objective=objective, mode=study.mode)
    return s, {"searcher": {"name": comp.name, **s.params()}}


def _objective(study: Study, result: EvalResult) -> float | None:
    if not result.ok or study.objective not in result.metrics:
        return None
    v = result.metrics[study.objective]
    return v if study.mode == "max" else -v


def prepare_out(study: Study, out: Path, resume: bool, study_text: str | None) -> ResultLog:
    """Create the run directory (refusing to mix a finished run unless ``resume``), save the study."""
    ev = out / "evaluations"
    if ev.exists() and any(ev.iterdir()) and not resume:
        raise ValueError(f"{out} already holds a log; pass --resume to continue it or --out to start elsewhere")
    out.mkdir(parents=True, exist_ok=True)
    if study_text is not None:
        (out / "study.toml").write_text(study_text)
    (out / "study.resolved.json").write_text(study.to_json())
    log = ResultLog(ev)
    log.roll_orphans(force=True)
    return log


def run_study(study: Study, out: str | Path, *, workers: int = 1, executor: str = "local",
              scheduler: str | None = None, resume: bool = False, progress: bool = True,
              study_text: str | None = None, data_root: str | None = None) -> RunSummary:
    """Execute a study and log every evaluation under ``out/evaluations``.

    Args:
        study: the parsed study.
        out: run directory.
        workers: parallel evaluation processes (1 = evaluate in this process).
        executor: ``"local"`` (process pool) or ``"dask"`` (``scheduler`` address or a LocalCluster).
        resume: continue a run directory: logged trials are replayed, not re-evaluated.
        progress: print per-searcher progress to stderr.
        study_text: the study file's text, saved beside the log.
    """
    t0 = time.monotonic()
    out = Path(out)
    space = build_space(study)
    log = prepare_out(study, out, resume, study_text)
    trials = logged_trials(log, study, space) if resume else {}
    logged = {k: res for k, (res, _) in trials.items()}
    logged_rows = {k: row for k, (_, row) in trials.items() if row is not None}
    runs = []
    for i, comp in enumerate(study.searchers):
        for r in range(comp.repeats or study.repeats):
            replay = {t: row for (lab, rep, t), row in logged_rows.items() if lab == comp.label and rep == r}
            s, params = _make_searcher(study, i, r, space, replay, out)
            runs.append(_Run(comp.label, i, r, s, params))
    version = package_version()
    host = socket.gethostname()
    evaluated = replayed = failed = 0
    budget_evals = study.budget.get("evaluations")
    sim_limit = study.budget.get("simulated_seconds")
    wall_limit = study.budget.get("wall_seconds")
    pool: Executor | None = make_executor(executor, workers, scheduler)
    try:
        while True:
            active = [run for run in runs if not run.finished]
            if not active:
                break
            if wall_limit is not None and time.monotonic() - t0 > wall_limit:
                break
            batch: list[tuple[_Run, Any]] = []
            for run in active:
                cap = evaluations_of(study, run.index)
                n = study.batch_size if cap is None else min(study.batch_size, cap - run.done)
                props = run.searcher.ask(n) if n > 0 else []
                if not props:
                    run.finished = True
                batch.extend((run, p) for p in props)
            if not batch:
                break
            # replay what the log already holds; evaluate the rest
            todo: list[tuple[_Run, Any, EvalTask]] = []
            results: dict[int, tuple[EvalResult, Any, Any]] = {}
            for k, (run, prop) in enumerate(batch):
                key = (run.label, run.repeat, prop.trial)
                if key in logged:
                    results[k] = (logged[key], None, None)
                    continue
                budget = dict(prop.budget or {})
                task = EvalTask(space_decl=_space_decl(study), evaluator=study.evaluator, extra=study.extra_evaluators,
                                data=study.data, row=prop.row, budget=budget,
                                seed=trial_seed(study.seed, run.index, run.repeat, prop.trial), device=study.device,
                                data_root=data_root)
                todo.append((run, prop, task))
            outcomes = run_tasks(pool, [t for _, _, t in todo])
            it = iter(outcomes)
            for k in range(len(batch)):
                if k not in results:
                    results[k] = next(it)
            records = []
            for k, (run, prop) in enumerate(batch):
                result, extra, timing = results[k]
                run.searcher.tell(prop, result)
                run.done += 1
                if timing is None:
                    replayed += 1
                else:
                    evaluated += 1
                    records.append(build_record(study, space, run, prop, result, extra, timing,
                                                seed=trial_seed(study.seed, run.index, run.repeat, prop.trial),
                                                host=host, version=version))
                if not result.ok:
                    run.failed += 1
                    failed += 1 if timing is not None else 0
                obj = _objective(study, result)
                if obj is not None:
                    run.best = max(run.best, obj)
                run.simulated += float(result.costs.get("simulated_seconds", 0.0) or 0.0)
                cap = evaluations_of(study, run.index)
                if cap is not None and run.done >= cap:
                    run.finished = True
                if sim_limit is not None and run.simulated >= sim_limit:
                    run.finished = True
            if records:
                log.append(records)
            if progress:
                _progress(runs, study, budget_evals, t0)
    finally:
        if pool is not None:
            pool.shutdown(wait=True)
        log.close()
        log.roll_orphans(force=True)
    return RunSummary(out, evaluated, replayed, failed, time.monotonic() - t0)


def build_record(study: Study, space: Space, run: _Run, prop: Any, result: EvalResult,
                 extra: dict[str, dict[str, float]] | None, timing: tuple[Any, Any], *, seed: int, host: str,
                 version: str) -> Any:
    """The log row of one evaluation (both the batch-synchronous and the free-running runner).

    Extra evaluators' metrics become ``metric_<label>_<name>``; their costs, returned by the
    executor as ``cost_<name>``, become ``cost_<label>_<name>``. One-shot runs add
    ``cost_search_seconds`` (supernet training up to the derivation)."""
    arch = space.archs(np.asarray([prop.row]))[0]
    metrics = dict(result.metrics)
    costs = dict(result.costs)
    for label, name_values in (extra or {}).items():
        for name, v in name_values.items():
            if name.startswith("cost_"):
                costs[f"{label}_{name[5:]}"] = v
            else:
                metrics[f"{label}_{name}"] = v
    if isinstance(run.searcher, _DerivedQueue):
        costs["search_seconds"] = run.searcher.search_seconds.get(prop.trial, float("nan"))
    res = EvalResult(status=result.status, metrics=metrics, costs=costs, error=result.error, budget=result.budget)
    return make_record(
        res, study=study.name, run_id=study.name, trial=prop.trial, repeat=run.repeat, searcher=run.label,
        space=space.name, arch=space.to_str(arch), canonical_id=space.canonical_id(arch),
        evaluator=study.evaluator.name, seed=seed, started_at=timing[0], finished_at=timing[1],
        params=_params(study, run), host=host, device=study.device, nasatlas_version=version)


def _space_decl(study: Study) -> dict[str, Any]:
    return space_declaration(study.space)


def _params(study: Study, run: _Run) -> dict[str, Any]:
    return {**run.params, "evaluator": {"name": study.evaluator.name, **study.evaluator.params},
            "space": _space_decl(study), "study_seed": study.seed,
            **({"data": {"name": study.data.name, **study.data.params}} if study.data else {})}


Key = tuple[str, int, int]


def logged_trials(log: ResultLog, study: Study, space: Space) -> dict[Key, tuple[EvalResult, Any]]:
    """Logged results by (searcher, repeat, trial), as searchers see them (extra evaluators' metrics
    removed), with the logged decision row (None where the logged string no longer parses). Both
    runners replay these on ``--resume``."""
    df = log.read(filters={"study": study.name})
    extra = tuple(f"{c.label}_" for c in study.extra_evaluators)
    out: dict[Key, tuple[EvalResult, Any]] = {}
    for row in df.to_dict("records"):
        res = EvalResult.from_row(row)
        res = EvalResult(status=res.status, metrics={k: v for k, v in res.metrics.items() if not k.startswith(extra)},
                         costs=res.costs, error=res.error, budget=res.budget)
        try:
            indices: Any = tuple(int(v) for v in space.from_str(str(row["arch"])).indices)
        except ValueError:
            indices = None
        out[(str(row["searcher"]), int(row["repeat"]), int(row["trial"]))] = (res, indices)
    return out


def _progress(runs: Sequence[_Run], study: Study, budget_evals: int | None, t0: float) -> None:
    by_label: dict[str, list[_Run]] = {}
    for r in runs:
        by_label.setdefault(r.label, []).append(r)
    parts = []
    for label, rs in by_label.items():
        done = sum(r.done for r in rs)
        total = (evaluations_of(study, rs[0].index) or 0) * len(rs)
        best = max((r.best for r in rs), default=float("-inf"))
        best_txt = "-" if best == float("-inf") else f"{best if study.mode == 'max' else -best:.4g}"
        elapsed = time.monotonic() - t0
        eta = f"{elapsed / max(done, 1) * (total - done):.0f}s" if total else "?"
        parts.append(f"{label}: {done}/{total or '?'} best={best_txt} eta={eta}")
    print("[" + study.name + "] " + " | ".join(parts), file=sys.stderr, flush=True)

