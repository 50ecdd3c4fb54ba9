"""The study runner: reproducible, resumable after SIGKILL, failures logged, bad files refused."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest
from nasatlas.evaluators import Evaluator, register_evaluator
from nasatlas.evaluators.registry import EVALUATORS
from nasatlas.results import EvalResult, ResultLog
from nasatlas.studies.cli import main
from nasatlas.studies.runner import run_study
from nasatlas.studies.studyfile import StudyError, parse_study

from .conftest import NB201_TABLE, need

STUDY = """
[study]
name = "resume"
seed = 3
repeats = 2
objective = "valid_acc"

[space]
name = "nb201"

[evaluator]
name = "tabular"
params = {{ table = "{table}", metrics = ["valid_acc", "test_acc"], time_column = "train_time_total_s" }}

[[searchers]]
name = "random"

[[searchers]]
name = "random"
label = "random_canonical"
params = {{ dedupe = "canonical" }}

[budget]
evaluations = {n}
"""

KEYS = ["searcher", "repeat", "trial", "arch", "metric_valid_acc", "seed"]


def _rows(out: Path) -> pd.DataFrame:
    df = ResultLog(out / "evaluations").read()
    return df[KEYS].sort_values(["searcher", "repeat", "trial"]).reset_index(drop=True)


def test_sigkill_then_resume_equals_an_uninterrupted_run(tmp_path: Path) -> None:
    table = need(NB201_TABLE)
    study = tmp_path / "s.toml"
    study.write_text(STUDY.format(table=table, n=200))
    exe = [sys.executable, "-m", "nasatlas.studies.cli"]
    clean, killed = tmp_path / "clean", tmp_path / "killed"
    subprocess.run([*exe, "run", str(study), "--out", str(clean), "--quiet"], check=True, capture_output=True)
    proc = subprocess.Popen([*exe, "run", str(study), "--out", str(killed), "--quiet"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        time.sleep(0.05)
        try:
            n = len(ResultLog(killed / "evaluations").read(columns=["trial"]))
        except (ValueError, OSError):
            n = 0
        if n >= 100:
            break
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    partial = _rows(killed)
    assert 0 < len(partial) < 800, "the kill should land mid-run"
    assert main(["run", str(study), "--out", str(killed), "--resume", "--quiet"]) == 0
    a, b = _rows(clean), _rows(killed)
    assert len(a) == 800 and not b.duplicated(["searcher", "repeat", "trial"]).any()
    pd.testing.assert_frame_equal(a, b)
    assert not list((killed / "evaluations").glob("_wal-*")), "every write-ahead file is rolled into parts"
    assert (killed / "report.md").is_file() and (killed / "study.toml").is_file()


class _Flaky(Evaluator):
    """Fails on every third trial seed, returns NaN-free metrics otherwise."""

    def __init__(self, boom: int = 3) -> None:
        self.boom = boom

    def metric_names(self) -> list[str]:
        return ["score"]

    def evaluate(self, arch, *, budget, seed, device="cpu"):  # type: ignore[no-untyped-def]
        if sum(arch.indices) % self.boom == 0:
            raise RuntimeError("loss is NaN")
        return EvalResult(status="ok", metrics={"score": float(sum(arch.indices))}, budget=dict(budget))


@pytest.fixture
def flaky() -> None:
    if "flaky_test" not in EVALUATORS:
        register_evaluator("flaky_test", _Flaky)
    yield
    EVALUATORS.unregister("flaky_test")


def _flaky_study(n: int = 30) -> dict:
    return {"study": {"name": "flaky", "seed": 0, "objective": "score"}, "space": {"name": "nb201"},
            "evaluator": {"name": "flaky_test"}, "searchers": [{"name": "random"}], "budget": {"evaluations": n}}


def test_failed_evaluations_are_logged_and_the_study_goes_on(tmp_path: Path, flaky: None) -> None:
    summary = run_study(parse_study(_flaky_study()), tmp_path / "run", progress=False)
    df = ResultLog(tmp_path / "run" / "evaluations").read()
    assert len(df) == 30 and summary.evaluated == 30
    bad = df[df["status"] == "failed"]
    assert len(bad) > 0 and bad["error"].str.contains("loss is NaN").all()
    assert df.loc[df["status"] == "ok", "metric_score"].notna().all()
    assert bad["metric_score"].isna().all()


def test_same_seed_same_log_in_a_fresh_process_and_with_two_workers(tmp_path: Path, flaky: None) -> None:
    run_study(parse_study(_flaky_study(12)), tmp_path / "a", progress=False)
    code = textwrap.dedent(f"""
        from tests.test_runner import _Flaky, _flaky_study
        from nasatlas.evaluators import register_evaluator
        from nasatlas.studies.runner import run_study
        from nasatlas.studies.studyfile import parse_study
        register_evaluator("flaky_test", _Flaky)
        run_study(parse_study(_flaky_study(12)), {str(tmp_path / 'b')!r}, progress=False)
    """)
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[1])
    cols = ["searcher", "repeat", "trial", "arch", "seed", "status", "metric_score"]
    a = ResultLog(tmp_path / "a" / "evaluations").read()[cols].sort_values("trial").reset_index(drop=True)
    b = ResultLog(tmp_path / "b" / "evaluations").read()[cols].sort_values("trial").reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b)


def test_two_local_workers_match_one(tmp_path: Path) -> None:
    table = need(NB201_TABLE)
    study = tmp_path / "s.toml"
    study.write_text(STUDY.format(table=table, n=6))
    assert main(["run", str(study), "--out", str(tmp_path / "one"), "--quiet"]) == 0
    assert main(["run", str(study), "--out", str(tmp_path / "two"), "--workers", "2", "--quiet"]) == 0
    pd.testing.assert_frame_equal(_rows(tmp_path / "one"), _rows(tmp_path / "two"))


@pytest.mark.parametrize("edit,match", [
    (lambda d: d["study"].update(colour="red"), r"\[study\] has unknown key\(s\) \['colour'\]"),
    (lambda d: d["study"].update(seed="zero"), r"seed = 'zero' has the wrong type; expected int"),
    (lambda d: d["searchers"][0].update(name="evolutionn"), r"'evolutionn' is not registered; registered searchers: "),
    (lambda d: d["evaluator"].update(name="tabularr"), r"registered evaluators: .*tabular"),
    (lambda d: d["evaluator"]["params"].update(table="${NOPE_TABLE}"),
     r"\$\{NOPE_TABLE\} but it is not set; pass --var"),
    (lambda d: d.update(budget={}), r"\[budget\] needs evaluations"),
    (lambda d: d["space"].update(name="dartz"), r"unknown space 'dartz'"),
    (lambda d: d["searchers"].append({"name": "random"}), r"labels .* must be unique"),
])
def test_bad_study_files_fail_before_any_work(edit, match: str) -> None:  # type: ignore[no-untyped-def]
    d = {"study": {"name": "x", "seed": 0}, "space": {"name": "nb201"},
         "evaluator": {"name": "tabular", "params": {"table": "t.parquet", "metrics": ["a"]}},
         "searchers": [{"name": "random"}], "budget": {"evaluations": 3}}
    edit(d)
    with pytest.raises(StudyError, match=match):
        parse_study(d, where="bad.toml")


def test_missing_table_column_is_a_clear_failure(tmp_path: Path) -> None:
    table = need(NB201_TABLE)
    d = {"study": {"name": "x", "seed": 0}, "space": {"name": "nb201"},
         "evaluator": {"name": "tabular", "params": {"table": str(table), "metrics": ["valid_accuracy"]}},
         "searchers": [{"name": "random"}], "budget": {"evaluations": 2}}
    run_study(parse_study(d), tmp_path / "r", progress=False)
    df = ResultLog(tmp_path / "r" / "evaluations").read()
    assert (df["status"] == "failed").all()
    assert df["error"].str.contains("has no column\\(s\\) \\['valid_accuracy'\\]").all()
