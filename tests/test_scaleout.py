"""Scale-out: the Dask executor on a LocalCluster, and the free-running (``--async``) runner."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from nasatlas.evaluators import Evaluator, register_evaluator
from nasatlas.evaluators.registry import EVALUATORS
from nasatlas.results import EvalResult, ResultLog
from nasatlas.spaces import Arch
from nasatlas.studies.cli import main
from nasatlas.studies.runner import build_space, run_study, trial_seed
from nasatlas.studies.runner_async import run_study_async
from nasatlas.studies.studyfile import Study, load_study, parse_study

from .conftest import NB201_TABLE, need

STUDY = """
[study]
name = "scaleout"
seed = 11
repeats = 2
objective = "valid_acc"

[space]
name = "nb201"

[evaluator]
name = "tabular"
params = {{ table = "{table}", metrics = ["valid_acc", "test_acc"], time_column = "train_time_total_s" }}

[[extra_evaluators]]
label = "again"
name = "tabular"
params = {{ table = "{table}", metrics = ["train_acc"], time_column = "train_time_total_s" }}

[[searchers]]
name = "random"

[[searchers]]
name = "random"
label = "random_canonical"
params = {{ dedupe = "canonical" }}

[budget]
evaluations = {n}
"""

# every column a row's content depends on (not the timestamps, host or row id), metrics and costs included
KEYS = ["searcher", "repeat", "trial", "arch", "canonical_id", "seed", "status", "error", "budget", "params"]


def _study(tmp_path: Path, n: int, table: Path) -> Path:
    path = tmp_path / "s.toml"
    path.write_text(STUDY.format(table=table, n=n))
    return path


def _rows(out: Path) -> pd.DataFrame:
    df = ResultLog(out / "evaluations").read()
    cols = KEYS + sorted(c for c in df.columns if c.startswith(("metric_", "cost_")))
    return df[cols].sort_values(["searcher", "repeat", "trial"]).reset_index(drop=True)


def _check_rows(df: pd.DataFrame, study: Study, n: int) -> None:
    """Exactly ``n`` trials 0..n-1 per (searcher, repeat), each once, each row well formed."""
    space = build_space(study)
    labels = {c.label: i for i, c in enumerate(study.searchers)}
    assert not df.duplicated(["searcher", "repeat", "trial"]).any()
    for (label, repeat), group in df.groupby(["searcher", "repeat"]):
        assert sorted(group["trial"]) == list(range(n)), (label, repeat)
    assert {(s, r) for s, r in zip(df["searcher"], df["repeat"])} == {(s, r) for s in labels
                                                                      for r in range(study.repeats)}
    for row in df.to_dict("records"):
        assert space.to_str(space.from_str(row["arch"])) == row["arch"]
        assert row["seed"] == trial_seed(study.seed, labels[row["searcher"]], row["repeat"], row["trial"])
        if row["status"] == "ok":
            assert math.isfinite(row["metric_valid_acc"]) and isinstance(row["params"], str)
        else:
            assert row["status"] == "failed" and "is not in table" in row["error"]
            assert math.isnan(row["metric_valid_acc"])


def test_dask_local_cluster_matches_in_process(tmp_path: Path) -> None:
    """One LocalCluster (2 single-thread worker processes, torch on 1 thread), built by the code path
    `--executor dask` takes without `--scheduler`; the CLI then runs the study against its address,
    batch-synchronous and free-running; both logs hold the in-process run's rows."""
    try:
        import distributed  # noqa: F401
    except ImportError:
        pytest.skip("dask.distributed is not installed (pip install 'nasatlas[dask]')")
    from nasatlas.studies.executors import make_executor
    study = _study(tmp_path, 6, need(NB201_TABLE))
    run_study(load_study(study), tmp_path / "inproc", progress=False)
    pool: Any = make_executor("dask", 2)
    try:
        assert sorted(pool.client.nthreads().values()) == [1, 1]
        import torch
        assert set(pool.client.run(torch.get_num_threads).values()) == {1}
        address = pool.client.scheduler.address
        for mode, extra in (("batch", []), ("async", ["--async"])):
            out = tmp_path / mode
            args = ["run", str(study), "--out", str(out), "--executor", "dask", "--scheduler", address, "--quiet"]
            assert main(args + extra) == 0
            pd.testing.assert_frame_equal(_rows(tmp_path / "inproc"), _rows(out))
        assert sorted(pool.client.nthreads().values()) == [1, 1], "a run on a given scheduler leaves the cluster up"
    finally:
        pool.shutdown()


def test_async_two_local_workers_log_every_trial_once_failures_included(tmp_path: Path) -> None:
    """Free-running on a 2-process pool against a table that lacks half of NB201: every trial is
    logged once, the missing architectures as failed, and (random search does not adapt) the rows are
    those of the batch-synchronous in-process run."""
    table = pd.read_parquet(need(NB201_TABLE))
    half = tmp_path / "half.parquet"
    table[table["nb201_index"] % 2 == 0].to_parquet(half)
    path = _study(tmp_path, 8, half)
    study = load_study(path)
    summary = run_study_async(study, tmp_path / "async", workers=2, progress=False)
    df = _rows(tmp_path / "async")
    assert len(df) == 2 * 2 * 8 and summary.evaluated == len(df) and summary.replayed == 0
    _check_rows(df, study, 8)
    assert df["metric_again_train_acc"].notna().sum() == (df["status"] == "ok").sum()  # the extra evaluator's
    failed = int((df["status"] == "failed").sum())
    assert 0 < failed < len(df) and summary.failed == failed
    run_study(study, tmp_path / "batch", progress=False)
    pd.testing.assert_frame_equal(_rows(tmp_path / "batch"), df)


class _Crash(BaseException):
    """Stands in for a kill: not an evaluation failure, so it stops the runner."""


class _Countdown(Evaluator):
    """Scores the sum of the decision indices; raises :class:`_Crash` at call ``crash_at``."""

    calls = 0
    crash_at = -1

    def metric_names(self) -> list[str]:
        return ["score"]

    def evaluate(self, arch: Arch, *, budget: Mapping[str, Any], seed: int, device: str = "cpu") -> EvalResult:
        type(self).calls += 1
        if type(self).calls == type(self).crash_at:
            raise _Crash
        return EvalResult(status="ok", metrics={"score": float(sum(arch.indices))}, budget=dict(budget))


@pytest.fixture
def countdown() -> Iterator[type[_Countdown]]:
    register_evaluator("countdown_test", _Countdown)
    _Countdown.calls, _Countdown.crash_at = 0, -1
    yield _Countdown
    EVALUATORS.unregister("countdown_test")


def test_async_resume_replays_logged_trials_by_key(tmp_path: Path, countdown: type[_Countdown]) -> None:
    raw = {"study": {"name": "crash", "seed": 5, "repeats": 2, "objective": "score"}, "space": {"name": "nb201"},
           "evaluator": {"name": "countdown_test"}, "searchers": [{"name": "random"}], "budget": {"evaluations": 10}}
    study = parse_study(raw)
    countdown.crash_at = 13
    with pytest.raises(_Crash):
        run_study_async(study, tmp_path / "run", progress=False)
    logged = len(ResultLog(tmp_path / "run" / "evaluations").read())
    assert logged == 12
    countdown.crash_at = -1
    summary = run_study_async(study, tmp_path / "run", resume=True, progress=False)
    assert (summary.replayed, summary.evaluated) == (12, 20 - 12)
    df = ResultLog(tmp_path / "run" / "evaluations").read()
    assert len(df) == 20 and not df.duplicated(["searcher", "repeat", "trial"]).any()
    assert not list((tmp_path / "run" / "evaluations").glob("_wal-*"))
    clean = run_study_async(study, tmp_path / "clean", progress=False)
    assert clean.evaluated == 20
    cols = ["searcher", "repeat", "trial", "arch", "seed", "metric_score"]
    # one slot and a searcher that ignores results: here the resumed log does equal a clean one
    pd.testing.assert_frame_equal(df[cols].sort_values(cols[:3]).reset_index(drop=True),
                                  _rows_of(tmp_path / "clean", cols))


def _rows_of(out: Path, cols: list[str]) -> pd.DataFrame:
    return ResultLog(out / "evaluations").read()[cols].sort_values(cols[:3]).reset_index(drop=True)
