"""The packaged one-shot study (DARTS 1st/2nd order, GDAS, RS-WS, SPOS on NB201) in its smoke profile,
through the CLI: derived cells trained stand-alone, their NB201 table accuracy beside them, per-epoch
search tables and supernet checkpoints on disk, the `oneshot` report section; and the supernet
evaluator scoring a logged architecture with a checkpoint the study wrote."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from nasatlas.results import ResultLog
from nasatlas.studies.cli import main

from .conftest import NB201_TABLE, need

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SEARCHERS = {"darts_1st", "darts_2nd", "gdas", "random_ws", "spos"}


def test_oneshot_nb201_smoke_through_the_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    need(NB201_TABLE)
    monkeypatch.setenv("NB201_TABLE", str(NB201_TABLE))
    out = tmp_path / "os"
    assert main(["study", "oneshot_nb201", "--profile", "smoke", "--out", str(out), "--quiet"]) == 0
    df = ResultLog(out / "evaluations").read()
    assert set(df["searcher"]) == SEARCHERS and len(df) == 5 and (df["status"] == "ok").all()
    assert df["metric_valid_acc"].between(0, 100).all()           # trained stand-alone on digits
    assert df["metric_cifar10_test_acc"].between(0, 100).all()    # the same cell in the NB201 table
    assert (df["cost_search_seconds"] > 0).all()
    for lab in SEARCHERS:
        ep = pd.read_parquet(out / "search" / f"{lab}-r0.parquet")
        assert list(ep["epoch"]) == [0] and (ep["status"] == "ok").all()
        assert ep["arch"].iloc[0] == df.loc[df["searcher"] == lab, "arch"].iloc[0]
        for col in ("supernet_accuracy", "subnet_accuracy_inherited", "subnet_accuracy_recalibrated"):
            assert ep[col].between(0, 1).all()
        assert sum(json.loads(ep["op_histogram"].iloc[0]).values()) == 6
        assert (out / "search" / f"{lab}-r0.pt").is_file()
    alpha = json.loads(pd.read_parquet(out / "search" / "darts_2nd-r0.parquet")["alpha"].iloc[0])
    assert len(alpha["cell"]) == 6 and len(alpha["cell"][0]) == 5
    report = (out / "report.md").read_text()
    assert "## One-shot search" in report and "transfer" in report and "parameter-free" in report

    # the supernet evaluator scores the DARTS cell with the weights DARTS trained
    from nasatlas.evaluators.registry import get_evaluator
    from nasatlas.spaces import get_space
    space = get_space("nb201")
    ev = get_evaluator("supernet", checkpoint=str(out / "search" / "darts_1st-r0.pt"), calibration_batches=2)
    arch = space.from_str(df.loc[df["searcher"] == "darts_1st", "arch"].iloc[0])
    ev.setup(space)
    res = ev.evaluate(arch, budget={}, seed=0, device="cpu")
    assert res.ok and 0 <= res.metrics["valid_acc"] <= 100


def test_autodeeplab_shapes_smoke_through_the_cli(tmp_path: Path) -> None:
    """Auto-DeepLab's search through the runner on segmentation data: Viterbi-decoded path + cell,
    trained stand-alone (mean IoU), the per-epoch table with the path."""
    out = tmp_path / "adl"
    assert main(["study", "autodeeplab_shapes", "--profile", "smoke", "--out", str(out), "--quiet"]) == 0
    df = ResultLog(out / "evaluations").read()
    assert len(df) == 1 and (df["status"] == "ok").all() and df["metric_valid_miou"].between(0, 1).all()
    ep = pd.read_parquet(out / "search" / "autodeeplab-r0.parquet")
    assert list(ep["epoch"]) == [0, 1] and (ep["status"] == "ok").all()
    assert set(json.loads(ep["alpha"].iloc[-1])) == {"cell", "beta"}
    from nasatlas.spaces import get_space
    space = get_space("autodeeplab", layers=4)
    arch = space.from_str(df["arch"].iloc[0])
    assert list(arch.indices)[0] == 0          # the paper's trellis: the first layer at /4
    assert "## One-shot search" in (out / "report.md").read_text()
