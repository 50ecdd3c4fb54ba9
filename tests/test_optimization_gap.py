"""The optimization-gap statistics on hand-computed cases, and the packaged study's smoke profile
through the CLI (a SPOS supernet saved per epoch, cells trained stand-alone and scored with inherited
weights, the report section)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from nasatlas.results import ResultLog
from nasatlas.studies.cli import main
from nasatlas.studies.optimization_gap import (
    bootstrap_ci,
    precision_at_k,
    rank_statistics,
    ranking_table,
    sparse_kendall_tau,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_rank_statistics_by_hand() -> None:
    truth = [90.0, 80.0, 70.0, 60.0]
    score = [1.0, 3.0, 2.0, 4.0]
    st = rank_statistics(truth, score, k=2)
    # of the 6 pairs only (1, 2) is ordered alike: tau = (1 - 5) / 6
    assert st["kendall_tau"] == pytest.approx(-4 / 6)
    # ranks (ascending) truth 4 3 2 1, score 1 3 2 4: d = 3 0 0 -3, rho = 1 - 6 * 18 / (4 * 15)
    assert st["spearman"] == pytest.approx(-0.8)
    assert st["precision_at_k"] == 0.5          # true top-2 {0, 1}, the score's top-2 {3, 1}
    assert st["pick_rank"] == 4 and st["regret"] == pytest.approx(30.0)


def test_precision_at_k_and_sparse_tau_by_hand() -> None:
    truth = [90.0, 80.0, 70.0, 60.0]
    assert precision_at_k(truth, [4, 3, 2, 1], 2) == 1.0
    assert precision_at_k(truth, [1, 4, 3, 2], 2) == 0.5
    assert precision_at_k(truth, [1, 2, 3, 4], 1) == 0.0
    # differences below 0.05 points round to ties: tau-b of (a, a, b) vs (1, 2, 3)
    t = [91.01, 91.04, 92.0]
    assert sparse_kendall_tau(t, [1.0, 2.0, 3.0]) == pytest.approx(2 / np.sqrt(2 * 3))
    # ties: truth (3, 3, 3, 1) top-1 is any of the first three (1/3 each); score picks item 0 -> 1/3
    assert precision_at_k([3, 3, 3, 1], [9, 1, 1, 1], 1) == pytest.approx(1 / 3)
    # top-2 of (3, 3, 3, 1): 2/3 each of the first three; score top-2 = {0, 1} exactly -> (2/3 + 2/3) / 2
    assert precision_at_k([3, 3, 3, 1], [9, 8, 1, 0], 2) == pytest.approx(2 / 3)
    assert rank_statistics([5.0, 5.0, 4.0, 1.0], [0.0, 0.0, 9.0, 1.0], 1)["pick_rank"] == 3
    with pytest.raises(ValueError, match="k=5"):
        precision_at_k(truth, truth, 5)
    with pytest.raises(ValueError, match="too few"):
        rank_statistics([1.0, 2.0], [1.0, 2.0], 1)


def test_bootstrap_interval_contains_the_estimate_and_is_seeded() -> None:
    rng = np.random.default_rng(0)
    t = rng.normal(size=60)
    s = t + rng.normal(scale=1.0, size=60)

    def corr(a: np.ndarray, b: np.ndarray) -> float:
        return float(np.corrcoef(a, b)[0, 1])
    lo, hi = bootstrap_ci(corr, t, s, np.random.default_rng(1), n_boot=500)
    assert lo < corr(t, s) < hi and hi - lo < 0.5
    assert (lo, hi) == bootstrap_ci(corr, t, s, np.random.default_rng(1), n_boot=500)


def test_ranking_table_errors_name_the_missing_column() -> None:
    df = pd.DataFrame({"metric_valid_acc": [1.0, 2.0, 3.0]})
    with pytest.raises(ValueError, match="metric_ws_e5_valid_acc"):
        ranking_table(df, "metric_valid_acc", ["metric_ws_e5_valid_acc"], rng=np.random.default_rng(0))


def test_optimization_gap_smoke_through_the_cli(tmp_path: Path) -> None:
    out = tmp_path / "og"
    assert main(["study", "optimization_gap", "--profile", "smoke", "--out", str(out), "--quiet"]) == 0
    df = ResultLog(out / "evaluations").read()
    cells = df[df["searcher"] == "cells"]
    assert len(cells) == 6 and (cells["status"] == "ok").all() and cells["arch"].nunique() == 6
    for col in ("metric_valid_acc", "metric_seed2_valid_acc", "metric_shallow_valid_acc",
                "metric_ws_e1_valid_acc", "metric_ws_e2_valid_acc"):
        assert cells[col].between(0, 100).all(), col
    # the second seed trains the same cells differently
    assert not np.allclose(cells["metric_valid_acc"], cells["metric_seed2_valid_acc"])
    assert (out / "search" / "spos-r0-e1.pt").is_file() and (out / "search" / "spos-r0-e2.pt").is_file()
    report = (out / "report.md").read_text()
    assert "## Optimization gap" in report and "noise ceiling" in report and "Zhang et al. 2020" in report
    assert (out / "optimization_gap_tau.png").is_file()
