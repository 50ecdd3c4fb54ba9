"""The packaged studies in their smoke profiles, through the CLI, and the calibration analysis."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from nasatlas.results import ResultLog
from nasatlas.studies.calibration import calibrate_protocols, calibrated_protocol, choose
from nasatlas.studies.cli import main
from nasatlas.studies.report_html import markdown_to_html


def test_calibrate_smoke_through_the_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cal"
    assert main(["study", "calibrate", "--profile", "smoke", "--out", str(out), "--quiet"]) == 0
    df = ResultLog(out / "evaluations").read()
    assert set(df["searcher"]) == {"cells", "seeds"}
    assert (df["searcher"] == "cells").sum() == 4 and (df["searcher"] == "seeds").sum() == 2
    seeds = df[df["searcher"] == "seeds"]
    assert seeds["arch"].nunique() == 1 and seeds["seed"].nunique() == 2   # one cell, two seeds
    # both protocols on every row, each with its own training time
    assert df["metric_valid_acc"].notna().all() and df["metric_n1e2_valid_acc"].notna().all()
    assert (df["cost_train_seconds"] > 0).all() and (df["cost_n1e2_train_seconds"] > 0).all()
    report = (out / "report.md").read_text()
    assert "## Calibration" in report and "| n1e2 |" in report
    cal = json.loads((out / "calibration.json").read_text())
    assert [p["protocol"] for p in cal["protocols"]] == ["primary", "n1e2"]
    assert (out / "report.html").read_text().startswith("<!doctype html>")


def test_quickstart_smoke_through_the_cli(tmp_path: Path) -> None:
    out = tmp_path / "qs"
    assert main(["study", "quickstart", "--profile", "smoke", "--out", str(out), "--quiet"]) == 0
    df = ResultLog(out / "evaluations").read()
    assert len(df) == 2 and (df["status"] == "ok").all() and df["metric_valid_acc"].between(0, 100).all()
    report = (out / "report.md").read_text()
    assert "## How big is the space?" in report and "15,625 architectures" in report
    assert "calibration:" in report   # every report that trains on CPU states the calibrated ratio


def _synthetic_log() -> tuple[pd.DataFrame, dict]:
    """40 cells whose accuracy spreads with std ~5 and 3 archs x 4 seeds with noise std ~1."""
    rng = np.random.default_rng(0)
    cell_acc = 80 + 5 * rng.standard_normal(40)
    rows = [{"searcher": "cells", "arch": f"c{i}", "status": "ok", "metric_valid_acc": a,
             "metric_long_valid_acc": a + 0.5 * rng.standard_normal(), "cost_train_seconds": 2.0,
             "cost_long_train_seconds": 8.0} for i, a in enumerate(cell_acc)]
    for j in range(3):
        for _ in range(4):
            rows.append({"searcher": "seeds", "arch": f"s{j}", "status": "ok",
                         "metric_valid_acc": 70 + j + rng.standard_normal(), "metric_long_valid_acc": 70 + j,
                         "cost_train_seconds": 2.0, "cost_long_train_seconds": 8.0})
    study = {"study": {"objective": "valid_acc"}, "evaluator": {"params": {"epochs": 1}},
             "extra_evaluators": [{"label": "long", "params": {"epochs": 4}}],
             "searchers": [{"label": "cells", "name": "random"}, {"label": "seeds", "name": "fixed"}]}
    return pd.DataFrame(rows), study


def test_calibration_ratio_is_spread_over_pooled_seed_std() -> None:
    df, study = _synthetic_log()
    primary, long = calibrate_protocols(df, study)
    cells = df[df["searcher"] == "cells"]["metric_valid_acc"]
    seeds = df[df["searcher"] == "seeds"]
    pooled = math.sqrt(seeds.groupby("arch")["metric_valid_acc"].var(ddof=1).mean())
    assert primary.spread == pytest.approx(cells.std(ddof=1))
    assert primary.noise == pytest.approx(pooled)
    assert primary.ratio == pytest.approx(cells.std(ddof=1) / pooled)
    assert primary.n_cells == 40 and primary.n_seed_archs == 3 and primary.n_seed_evals == 12
    assert long.noise == 0.0 and math.isnan(long.ratio)       # a noiseless protocol has no finite ratio
    assert long.spearman_vs_last == 1.0 and 0.9 < primary.spearman_vs_last < 1.0
    assert primary.seconds_per_eval == 2.0 and long.seconds_per_eval == 8.0
    assert choose([primary, long]) is primary                  # the cheapest one that reaches 3


def test_calibration_needs_a_seed_searcher() -> None:
    df, study = _synthetic_log()
    study["searchers"] = [{"label": "cells", "name": "random"}]
    with pytest.raises(ValueError, match="name = 'fixed'"):
        calibrate_protocols(df, study)


def test_shipped_calibration_meets_the_requirement() -> None:
    cal = calibrated_protocol()
    assert cal["ratio"] >= 3.0 and cal["protocol"]["epochs"] >= 1
    from nasatlas.evaluators.train import CALIBRATED_NETS, TrainEvaluator
    # the train evaluator's defaults are the calibrated protocol
    assert TrainEvaluator().epochs == cal["protocol"]["epochs"]
    assert all(CALIBRATED_NETS["nb201"][k] == v for k, v in cal["protocol"]["net"].items() if k != "preset")


def test_markdown_to_html_tables_and_escaping() -> None:
    page = markdown_to_html("# T\n\n| a | b |\n|---|---|\n| `x<y` | **1** |\n\n- item\n")
    assert "<h1>T</h1>" in page and "<td><code>x&lt;y</code></td>" in page and "<strong>1</strong>" in page
    assert "<li>item</li>" in page
