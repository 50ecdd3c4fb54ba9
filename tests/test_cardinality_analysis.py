"""The cardinality table: computed counts under every convention, "not enumerable" where a count cannot be
computed, the papers' figures kept apart with their sources, declaration files, and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from nasatlas.studies.cardinality import PAPER_FIGURES, cardinality_rows, cardinality_section
from nasatlas.studies.cli import main

REPO = Path(__file__).resolve().parents[1]
TINY = str(REPO / "docs" / "examples" / "tiny_cell.toml")


def test_counts_under_every_convention_and_paper_figures_apart() -> None:
    rows = {r["space"]: r for r in cardinality_rows(["nb201", "darts", "nb101"], unique=True, details=True)}
    nb = rows["nb201"]
    assert nb["origin"] == "registry" and nb["cardinality"] == 15_625
    assert nb["unique_counts"] == {"published": 6_466, "published_nozero": 12_751, "semantic": 4_930}
    assert nb["unique"] == 6_466 and nb["unique_note"] == ""
    assert nb["unique_semantic"] == 4_930 and "consider_zero=False" in nb["count_notes"]["unique_nozero"]
    assert any("NAS-Bench-201" in s for s in nb["sources"])
    figs = {p["count"]: p for p in nb["paper"]}
    assert set(figs) == {"cardinality", "unique:published"}
    assert all(isinstance(p["figure"], str) and p["source"] for p in nb["paper"])  # quoted text, not a count
    darts = rows["darts"]
    assert darts["unique"] is None and darts["unique_counts"] == {"default": "not enumerable"}
    assert "1,076,746,950,455,072,400 architectures" in darts["unique_note"]
    assert darts["cardinality_cell"] == 1_037_664_180 and darts["paper"] == []
    assert rows["nb101"]["unique_counts"] == {"default": 423_624}
    # every paper figure names a count the row has (a convention or an extra count)
    for name, figures in PAPER_FIGURES.items():
        row = cardinality_rows([name], unique=name in ("nb201", "nb101"), details=True)[0]
        for f in figures:
            if f.count.startswith("unique:"):
                assert f.count.split(":", 1)[1] in row["unique_counts"], (name, f.count)
            else:
                assert f.count in row, (name, f.count)


def test_without_details_rows_keep_their_old_keys() -> None:
    rows = {r["space"]: r for r in cardinality_rows(["nb201", "autodeeplab"], unique=True)}
    assert set(rows["nb201"]) == {"space", "cardinality", "unique", "unique_semantic", "unique_nozero"}
    assert set(rows["autodeeplab"]) == {"space", "cardinality", "unique", "cardinality_cell", "paths_paper",
                                        "paths_literal"}
    assert set(cardinality_rows(["nb201"])[0]) == {"space", "cardinality"}   # unique* counts need --unique


def test_declaration_file_shows_its_sources_and_no_paper_figure(tmp_path: Path) -> None:
    row = cardinality_rows([TINY], unique=True, details=True)[0]
    assert row["origin"] == TINY and row["space"] == "tiny_cell"
    assert row["cardinality"] == (1 * 9) * (3 * 9) * (6 * 9) * 3 and 0 < row["unique"] < row["cardinality"]
    assert row["sources"] == ["nasatlas docs/spaces.md example"] and row["paper"] == []
    # a file that reuses a registered name is not that space: no paper figure is attached
    fake = tmp_path / "nb201.json"
    fake.write_text(json.dumps({"name": "nb201", "blocks": [{"kind": "categorical", "name": "x",
                                                             "choices": ["a", "b"]}]}))
    row = cardinality_rows([str(fake)], details=True)[0]
    assert row["space"] == "nb201" and row["cardinality"] == 2 and row["paper"] == []


def test_cli_json_and_text(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["analyze", "cardinality", "--space", "nb201", TINY, "--unique", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["space"] for r in rows] == ["nb201", "tiny_cell"]
    assert rows[0]["unique_counts"]["semantic"] == 4_930 and rows[1]["origin"] == TINY
    assert main(["analyze", "cardinality", "--space", "darts", "--space", "fbnet", "--unique"]) == 0
    out = capsys.readouterr().out
    assert "unique[default]=not enumerable" in out and "Wu et al. 2019, FBNet" in out
    assert main(["analyze", "cardinality", "--json"]) == 0          # every registered space, no enumeration
    from nasatlas.spaces import list_spaces
    assert [r["space"] for r in json.loads(capsys.readouterr().out)] == list_spaces()
    assert main(["analyze", "cardinality", "--space", "dartz", "--json"]) == 2
    assert "unknown space 'dartz'" in capsys.readouterr().err


def test_report_section_puts_the_paper_beside_the_count() -> None:
    df = pd.DataFrame({"canonical_id": ["a", "b", "a"]})
    md = cardinality_section(df, {"space": {"name": "nb201"}}, None)
    assert "15,625 architectures (6,466 unique" in md and "evaluated 2 distinct" in md
    line = next(x for x in md.splitlines() if x.startswith("| nb201 "))
    assert "15,625 (5^6 cells) (Dong & Yang 2020" in line and "computed 15,625" in line
    assert "unique:published" in line and "computed not here (analyze cardinality --unique)" in line
