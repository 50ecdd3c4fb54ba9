"""Random vs DARTS: the equal-seconds arms on a hand-made log, bad input, and the packaged study's
smoke profile through the CLI."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from nasatlas.results import ResultLog
from nasatlas.studies.cli import main
from nasatlas.studies.random_vs_darts import darts_arms, random_arms

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _log() -> pd.DataFrame:
    rows = [{"searcher": "darts", "repeat": 0, "trial": 0, "arch": "D", "cost_search_seconds": 8.0,
             "cost_train_seconds": 2.0, "cost_params": 5.0, "metric_valid_acc": 50.0, "metric_final_test_acc": 60.0}]
    # random: train seconds 3, 3, 3, 3 -> within 10 s: k = 3; valid best at trial 1, params largest at trial 2
    for t, (valid, params, final) in enumerate([(40, 1, 41), (70, 2, 71), (60, 9, 61), (99, 99, 99)]):
        rows.append({"searcher": "random", "repeat": 0, "trial": t, "arch": f"R{t}", "cost_search_seconds": None,
                     "cost_train_seconds": 3.0, "cost_params": float(params), "metric_valid_acc": float(valid),
                     "metric_final_test_acc": float(final)})
    return pd.DataFrame(rows)


def test_random_arms_take_the_architectures_that_fit_in_darts_seconds() -> None:
    df = _log()
    d = darts_arms(df, ["darts"])
    assert d.loc[0, "seconds"] == 10.0 and d.loc[0, "arch"] == "D"
    arms = random_arms(df, "random", {0: 10.0}).set_index("arm")
    assert (arms["k"] == 3).all()                    # 3 + 3 + 3 <= 10 < 12: trial 3 (the best) is out of budget
    assert arms.loc["random best-of-k", "arch"] == "R1"
    assert arms.loc["random largest-of-k", "arch"] == "R2"
    assert arms.loc["random single draw", "arch"] == "R0"
    assert random_arms(df, "random", {0: 1.0}).iloc[0]["k"] == 1    # at least one architecture


def test_bad_logs_name_what_is_missing() -> None:
    with pytest.raises(ValueError, match="cost_search_seconds"):
        darts_arms(_log().drop(columns=["cost_search_seconds"]), ["darts"])
    with pytest.raises(ValueError, match="no rows of searcher 'gdas'"):
        darts_arms(_log(), ["gdas"])
    with pytest.raises(ValueError, match="repeat 0"):
        random_arms(_log(), "random", {1: 10.0})


def test_random_vs_darts_smoke_through_the_cli(tmp_path: Path) -> None:
    out = tmp_path / "rvd"
    assert main(["study", "random_vs_darts", "--profile", "smoke", "--out", str(out), "--quiet"]) == 0
    df = ResultLog(out / "evaluations").read()
    assert (df["status"] == "ok").all() and set(df["searcher"]) == {"darts_1st", "darts_2nd", "random"}
    assert df["metric_final_test_acc"].notna().all() and df["metric_plain_test_acc"].notna().all()
    report = (out / "report.md").read_text()
    assert "## Random search vs DARTS" in report and "random best-of-k" in report and "Yang et al. 2020" in report
    arms = pd.read_csv(out / "random_vs_darts_arms.csv")
    assert set(arms["arm"]) == {"darts_1st", "darts_2nd", "random best-of-k", "random largest-of-k",
                                "random single draw"}
