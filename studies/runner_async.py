"""The free-running study runner (``nasatlas run --async``): a worker slot never waits for a batch.

:func:`run_study_async` keeps ``workers`` evaluations in flight (with ``--scheduler``, at least one
per thread of the Dask cluster). As soon as one finishes, its result is told to its searcher, its row
is appended to the log, and the freed slot gets a new proposal from the run (searcher, repeat) with
the fewest evaluations in flight, then the fewest asked. Searchers are asked one proposal at a time
and told results in completion order, so no slot idles while a batch's slowest evaluation finishes:
this is the throughput mode for evaluations whose cost varies (training, one-shot derivations).
``[study] batch_size`` does not apply here.

What stays the same as the batch-synchronous :func:`nasatlas.studies.runner.run_study`: each
(searcher, repeat) run has its own generator spawned from the study seed (``run_seed``), each trial
its own evaluation seed (``trial_seed``), so one evaluation of one (arch, seed) is as reproducible as
there; every evaluation is logged, failed ones as ``failed``; a budget of ``evaluations`` yields
exactly that many rows per (searcher, repeat), one per trial number. A searcher whose proposals do
not depend on results (random search) proposes and logs exactly the rows of the batch mode.

What is not the same: the order in which results reach a searcher depends on timing, so two runs of
an adaptive searcher can differ, and so can runs with different numbers of workers.

Resume (``--resume``) replays logged trials by key (searcher, repeat, trial): each run is asked for
proposals in trial order, and a proposal whose trial is logged is not evaluated; its searcher is told
the logged result *for the logged architecture* (which may differ from the one the resumed searcher
just proposed: the trial numbers and the seeds are the same, the ask/tell interleaving is not). A run's
logged trials up to its first unlogged one are all told before its first new evaluation starts.
Guaranteed: no logged trial is evaluated or logged again, every trial in flight at the kill is
evaluated (with its seed) under its trial number, and the finished log holds exactly ``evaluations``
rows per (searcher, repeat), each (searcher, repeat, trial) once. Not guaranteed: that the resumed
log equals an uninterrupted run's, or that a searcher's state after the replay equals its state
before the kill. The SIGKILL/``--resume`` exact-equality guarantee holds only in the default
batch-synchronous mode.
"""

from __future__ import annotations

import dataclasses
import socket
import time
from concurrent.futures import FIRST_COMPLETED, Executor, Future, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nasatlas.results import EvalRecord, EvalResult, package_version
from nasatlas.spaces import Space

from .executors import (
    EvalTask,
    InlineExecutor,
    Outcome,
    evaluate_task,
    executor_slots,
    make_executor,
    outcome_of,
)
from .runner import (
    Key,
    RunSummary,
    _make_searcher,
    _objective,
    _progress,
    _Run,
    _space_decl,
    build_record,
    build_space,
    evaluations_of,
    logged_trials,
    prepare_out,
    trial_seed,
)
from .studyfile import Study

__all__ = ["run_study_async"]

PROGRESS_SECONDS = 2.0
"""At most one progress line per this many seconds (and one at the end)."""



@dataclass
class _Flow:
    """The free-running bookkeeping of one run, beside its :class:`runner._Run`."""

    asked: int = 0
    in_flight: int = 0
    waiting: bool = False  # the searcher proposed nothing while its results were out


@dataclass
class _InFlight:
    run: int
    proposal: Any
    task: EvalTask
    order: int


class _FreeRunner:
    """One free-running execution of a study (state shared by the loop's steps)."""

    def __init__(self, study: Study, space: Space, logged: dict[Key, tuple[EvalResult, Any]], pool: Executor,
                 slots: int, data_root: str | None, out: Path | None = None) -> None:
        self.study = study
        self.space = space
        self.logged = logged
        self.pool = pool
        self.slots = slots
        self.data_root = data_root
        self.runs: list[_Run] = []
        for i, comp in enumerate(study.searchers):
            for r in range(comp.repeats or study.repeats):
                replay = {t: tuple(row) for (lab, rep, t), (_, row) in logged.items()
                          if lab == comp.label and rep == r and row is not None}
                searcher, params = _make_searcher(study, i, r, space, replay, out)
                self.runs.append(_Run(comp.label, i, r, searcher, params))
        self.flows = [_Flow() for _ in self.runs]
        self.pending: dict[Future[Outcome], _InFlight] = {}
        self.budget_evals: int | None = study.budget.get("evaluations")
        self.sim_limit: float | None = study.budget.get("simulated_seconds")
        self.host = socket.gethostname()
        self.version = package_version()
        self.decl = _space_decl(study)
        self.submitted = self.evaluated = self.replayed = self.failed = 0

    # ------------------------------------------------------------------ asking
    def _runnable(self, i: int) -> bool:
        run, flow = self.runs[i], self.flows[i]
        cap = evaluations_of(self.study, run.index)
        return not run.finished and not flow.waiting and (cap is None or flow.asked < cap)

    def fill(self) -> None:
        """Give every free slot a proposal (replaying logged trials on the way, without a slot)."""
        while len(self.pending) < self.slots:
            candidates = [i for i in range(len(self.runs)) if self._runnable(i)]
            if not candidates:
                return
            i = min(candidates, key=lambda j: (self.flows[j].in_flight, self.flows[j].asked, j))
            prop = self._next(i)
            if prop is not None:
                self._submit(i, prop)

    def _next(self, i: int) -> Any:
        """The run's next proposal to evaluate, or None (then the run is not runnable for now)."""
        run, flow = self.runs[i], self.flows[i]
        while self._runnable(i):
            props = run.searcher.ask(1)
            if not props:
                if flow.in_flight == 0:
                    run.finished = True
                else:
                    flow.waiting = True
                return None
            prop = props[0]
            flow.asked += 1
            hit = self.logged.get((run.label, run.repeat, prop.trial))
            if hit is None:
                return prop
            result, row = hit
            if row is not None:
                prop = dataclasses.replace(prop, row=row)
            self._tell(i, prop, result)
            self.replayed += 1
        return None

    def _submit(self, i: int, prop: Any) -> None:
        run = self.runs[i]
        task = EvalTask(space_decl=self.decl, evaluator=self.study.evaluator, extra=self.study.extra_evaluators,
                        data=self.study.data, row=prop.row, budget=dict(prop.budget or {}),
                        seed=trial_seed(self.study.seed, run.index, run.repeat, prop.trial),
                        device=self.study.device, data_root=self.data_root)
        future = self.pool.submit(evaluate_task, task)
        self.pending[future] = _InFlight(i, prop, task, self.submitted)
        self.submitted += 1
        self.flows[i].in_flight += 1

    # ------------------------------------------------------------------ telling
    def _tell(self, i: int, prop: Any, result: EvalResult) -> None:
        run, study = self.runs[i], self.study
        run.searcher.tell(prop, result)
        run.done += 1
        if not result.ok:
            run.failed += 1
        obj = _objective(study, result)
        if obj is not None:
            run.best = max(run.best, obj)
        run.simulated += float(result.costs.get("simulated_seconds", 0.0) or 0.0)
        cap = evaluations_of(study, run.index)
        if cap is not None and run.done >= cap:
            run.finished = True
        if self.sim_limit is not None and run.simulated >= self.sim_limit:
            run.finished = True

    def collect(self) -> list[EvalRecord]:
        """Wait for at least one evaluation; tell every finished one (in submission order among those
        that finished together) and return their rows."""
        done, _ = wait(self.pending, return_when=FIRST_COMPLETED)
        records = []
        for future in sorted(done, key=lambda f: self.pending[f].order):
            item = self.pending.pop(future)
            result, extra, timing = outcome_of(future, item.task)
            flow = self.flows[item.run]
            flow.in_flight -= 1
            flow.waiting = False
            self._tell(item.run, item.proposal, result)
            self.evaluated += 1
            self.failed += 0 if result.ok else 1
            records.append(self._record(item, result, extra, timing))
        return records

    def _record(self, item: _InFlight, result: EvalResult, extra: dict[str, dict[str, float]],
                timing: tuple[Any, Any]) -> EvalRecord:
        """The log row of one evaluation, built as the batch-synchronous runner builds it."""
        return build_record(self.study, self.space, self.runs[item.run], item.proposal, result, extra, timing,
                            seed=item.task.seed, host=self.host, version=self.version)




def run_study_async(study: Study, out: str | Path, *, workers: int = 1, executor: str = "local",
                    scheduler: str | None = None, resume: bool = False, progress: bool = True,
                    study_text: str | None = None, data_root: str | None = None) -> RunSummary:
    """Execute a study free-running (see the module docstring) and log every evaluation.

    Args:
        study: the parsed study.
        out: run directory.
        workers: evaluations kept in flight (1 = one at a time, in this process).
        executor: ``"local"`` (process pool) or ``"dask"`` (``scheduler`` address or a LocalCluster).
        scheduler: Dask scheduler address; the cluster's threads count as slots too.
        resume: continue a run directory: logged trials are replayed by key, not re-evaluated.
        progress: print per-searcher progress to stderr (at most every ``PROGRESS_SECONDS``).
        study_text: the study file's text, saved beside the log.
        data_root: where data sets are looked up, passed to the evaluators.
    """
    t0 = time.monotonic()
    out = Path(out)
    space = build_space(study)
    log = prepare_out(study, out, resume, study_text)
    logged = logged_trials(log, study, space) if resume else {}
    wall_limit = study.budget.get("wall_seconds")
    pool: Executor = InlineExecutor()
    cluster: Executor | None = None
    try:
        cluster = make_executor(executor, workers, scheduler)
        if cluster is not None:
            pool = cluster
        runner = _FreeRunner(study, space, logged, pool, executor_slots(cluster, workers), data_root, out)
        shown = time.monotonic()
        while True:
            if wall_limit is None or time.monotonic() - t0 <= wall_limit:
                runner.fill()  # past the wall budget nothing new starts; what is in flight is logged
            if not runner.pending:
                break
            records = runner.collect()
            if records:
                log.append(records)
            if progress and time.monotonic() - shown >= PROGRESS_SECONDS:
                _progress(runner.runs, study, runner.budget_evals, t0)
                shown = time.monotonic()
        if progress:
            _progress(runner.runs, study, runner.budget_evals, t0)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        log.close()
        log.roll_orphans(force=True)
    return RunSummary(out, runner.evaluated, runner.replayed, runner.failed, time.monotonic() - t0)
