"""Landscape analysis: a hand-computed case, the values recomputed from the released NB201 data, and
the CLI on any table."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from nasatlas.spaces import get_space
from nasatlas.spaces.declaration import space_from_dict
from nasatlas.studies.cli import main
from nasatlas.studies.landscape import landscape, landscape_from_table

from .conftest import NB201_TABLE, need


def _line_space() -> object:
    """One categorical decision with 4 options: every option neighbours every other (a complete graph)."""
    return space_from_dict({"name": "line", "blocks": [{"kind": "categorical", "name": "x",
                                                        "choices": ["a", "b", "c", "d"]}]})


def test_hand_computed_complete_graph() -> None:
    space = _line_space()
    rows = np.array([[0], [1], [2], [3]])
    f = np.array([1.0, 3.0, 2.0, 3.0])          # tie for the best: the first in table order (index 1)
    st = landscape(space, rows, f)
    assert st.n == 4 and st.n_pairs == 12 and st.best_value == 3.0 and st.best_arch == space.to_str(rows[1])
    dist = np.array([1, 0, 1, 1])               # Hamming to option b
    assert st.fdc_pearson == pytest.approx(np.corrcoef(f, dist)[0, 1])
    pairs = [(f[i], f[j]) for i in range(4) for j in range(4) if i != j]
    a, b = np.array(pairs).T
    assert st.autocorr_lag1 == pytest.approx(np.corrcoef(a, b)[0, 1])
    nb_mean = np.array([(f.sum() - v) / 3 for v in f])
    assert st.neighbour_mean_corr == pytest.approx(np.corrcoef(f, nb_mean)[0, 1])
    assert st.strict_local_maxima == 0 and st.weak_local_maxima == 2   # the two 3.0s tie


def test_nb201_values_from_the_released_data() -> None:
    """Recomputed from the released NB201 data (cifar10-valid, mean of 3 seeds), valid_acc."""
    table = pd.read_parquet(need(NB201_TABLE))
    st = landscape_from_table(get_space("nb201"), table, metric="valid_acc")
    assert st.n == 15625 and st.n_pairs == 15625 * 24
    assert st.fdc_pearson == pytest.approx(-0.2306, abs=0.002)
    assert st.fdc_spearman == pytest.approx(-0.4164, abs=0.002)
    assert st.autocorr_lag1 == pytest.approx(0.5622, abs=0.002)
    assert st.neighbour_mean_corr == pytest.approx(0.946, abs=0.005)
    assert st.strict_local_maxima == 13


def test_cli_on_any_table_and_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    table = pd.read_parquet(need(NB201_TABLE))
    sub = table[table["arch"].str.count("nor_conv_3x3") >= 3][["arch", "valid_acc"]]
    csv = tmp_path / "t.csv"
    sub.rename(columns={"arch": "cell"}).to_csv(csv, index=False)
    assert main(["analyze", "landscape", "--space", "nb201", "--table", str(csv), "--arch-column", "cell",
                 "--metric", "valid_acc", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    for key in ("n", "fdc_pearson", "fdc_spearman", "strict_local_maxima", "weak_local_maxima", "autocorr_lag1",
                "neighbour_mean_corr"):
        assert key in out
    assert out["n"] == len(sub)
    assert main(["analyze", "landscape", "--space", "nb201", "--table", str(csv), "--arch-column", "arch"]) == 2
    assert "--arch-column" in capsys.readouterr().err
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"arch": ["|conv_9x9~0|+|none~0|none~1|+|none~0|none~1|none~2|"] * 3,
                  "valid_acc": [1.0, 2.0, 3.0]}).to_csv(bad, index=False)
    assert main(["analyze", "landscape", "--space", "nb201", "--table", str(bad)]) == 2
    assert "row 0" in capsys.readouterr().err


def test_too_few_or_duplicate_architectures() -> None:
    space = _line_space()
    with pytest.raises(ValueError, match="at least 3"):
        landscape(space, np.array([[0], [1]]), np.array([1.0, 2.0]))
    with pytest.raises(ValueError, match="twice"):
        landscape(space, np.array([[0], [0], [1]]), np.array([1.0, 2.0, 3.0]))


def test_random_walk_rho1_agrees_with_the_exact_pair_correlation() -> None:
    """On a regular neighbourhood graph the walk's stationary pairs are the (architecture, neighbour)
    pairs, so the walk estimate of ρ(1) converges to the exact lag-1 value; ρ(k) decays with k."""
    from nasatlas.studies.landscape import random_walk_autocorrelation, table_rows
    table = pd.read_parquet(need(NB201_TABLE))
    space = get_space("nb201")
    rows, values = table_rows(space, table)
    exact = landscape(space, rows, values).autocorr_lag1
    rw = random_walk_autocorrelation(space, rows, values, rng=np.random.default_rng(0), walks=20, length=1000)
    assert rw["rho"][0] == pytest.approx(exact, abs=0.03)
    assert rw["rho"][0] > rw["rho"][2] > rw["rho"][9]
    assert rw["correlation_length"] == pytest.approx(-1 / np.log(rw["rho"][0]))
    again = random_walk_autocorrelation(space, rows, values, rng=np.random.default_rng(0), walks=20, length=1000)
    assert again == rw
    with pytest.raises(ValueError, match="length >= max_lag"):
        random_walk_autocorrelation(space, rows, values, rng=np.random.default_rng(0), walks=2, length=5, max_lag=10)
