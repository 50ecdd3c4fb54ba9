"""The spaces CLI, run as a user runs it (a subprocess of the installed console script)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from nasatlas.studies.cli import main

REPO = Path(__file__).resolve().parents[1]


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("nasatlas") or str(Path(sys.executable).parent / "nasatlas")
    return subprocess.run([exe, *args], capture_output=True, text=True, cwd=REPO)


def test_cardinality_json_from_the_console_script() -> None:
    p = run_cli("spaces", "cardinality", "nb201", "darts", "pnas", "autodeeplab", "enas_macro", "nasnet",
                "--unique", "--json")
    assert p.returncode == 0, p.stderr
    rows = {r["space"]: r for r in json.loads(p.stdout)}
    assert rows["nb201"]["cardinality"] == 15_625 and rows["nb201"]["unique"] == 6_466
    assert rows["nb201"]["unique_semantic"] < 6_466
    assert rows["darts"]["cardinality"] == 1_076_746_950_455_072_400 and rows["darts"]["unique"] is None
    assert rows["pnas"]["cardinality"] == 556_627_761_561_600
    assert rows["autodeeplab"]["paths_paper"] == 28_657 and rows["autodeeplab"]["paths_literal"] == 75_025
    assert "cardinality_nasrl" in rows["enas_macro"] and "cardinality_survey" in rows["nasnet"]


def test_list_show_sample(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list", "spaces", "--json"]) == 0
    names = {r["name"] for r in json.loads(capsys.readouterr().out)}
    assert {"nb201", "darts", "nasnet", "pnas", "autodeeplab", "proxylessnas", "fbnet", "mnasnet"} <= names
    assert main(["spaces", "list"]) == 0
    assert "darts" in capsys.readouterr().out
    assert main(["spaces", "show", "darts"]) == 0
    out = capsys.readouterr().out
    assert "normal/node2/inputs" in out and "Liu et al. 2019" in out
    assert main(["spaces", "sample", "nb201", "-n", "3", "--seed", "0"]) == 0
    first = capsys.readouterr().out.splitlines()
    assert len(first) == 3 and all(line.startswith("|") for line in first)
    assert main(["spaces", "sample", "nb201", "-n", "3", "--seed", "0"]) == 0
    assert capsys.readouterr().out.splitlines() == first
    assert main(["spaces", "show", "mnasnet", "--param", "blocks=7", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["cardinality"] == 432 ** 7


def test_declaration_file_through_the_cli(capsys: pytest.CaptureFixture[str]) -> None:
    path = str(REPO / "docs" / "examples" / "tiny_cell.toml")
    assert main(["spaces", "cardinality", path, "--unique", "--json"]) == 0
    row = json.loads(capsys.readouterr().out)[0]
    assert row["space"] == "tiny_cell"
    assert row["cardinality"] == (1 * 9) * (3 * 9) * (6 * 9) * 3
    assert 0 < row["unique"] < row["cardinality"]


def test_bad_input_exits_2_with_a_clear_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["spaces", "show", "dartz"]) == 2
    err = capsys.readouterr().err
    assert "unknown space 'dartz'" in err and "nb201" in err
    assert main(["spaces", "show", "darts", "--param", "nodes"]) == 2
    assert "key=value" in capsys.readouterr().err
