"""The packaged space atlas in its smoke profile, through the CLI: every analysis section of the report
(cardinality, density per listed space, EDFs of the NB201 sub-spaces, landscape) with its plots."""

from __future__ import annotations

from pathlib import Path

import pytest
from nasatlas.results import ResultLog
from nasatlas.studies.cli import main

from .conftest import NB201_TABLE, need


def test_space_atlas_smoke_through_the_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    need(NB201_TABLE)
    monkeypatch.setenv("NB201_TABLE", str(NB201_TABLE))
    out = tmp_path / "atlas"
    assert main(["study", "space_atlas", "--profile", "smoke", "--out", str(out), "--quiet"]) == 0
    df = ResultLog(out / "evaluations").read()
    assert len(df) == 60 and (df["status"] == "ok").all()
    report = (out / "report.md").read_text()
    for heading in ("## How big is the space?", "## How dense is the space?", "### `darts`", "### `proxylessnas`",
                    "## Error EDFs", "with nor_conv_3x3", "without nor_conv_3x3", "## Landscape"):
        assert heading in report, heading
    for png in ("density_distances_darts.png", "density_nn_vs_n_nb201.png", "edf.png", "landscape_fdc.png"):
        assert (out / png).is_file(), png
        assert f"]({png})" in report
