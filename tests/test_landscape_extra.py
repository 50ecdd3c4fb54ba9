"""Landscape extras: correlation by distance, hill-climbing basins, the vectorised neighbour pairs and
table parsing, the CLI keys and the ``landscape`` report section — hand-computed cases, independent
slow loops, and the released NB201 table."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from nasatlas.spaces import get_space
from nasatlas.spaces.declaration import space_from_dict
from nasatlas.studies.cli import main
from nasatlas.studies.landscape import (
    hill_climb_ends,
    landscape,
    landscape_section,
    neighbour_correlation_by_distance,
    neighbour_pairs,
    table_rows,
)

from .conftest import NB201_TABLE, need


def _grid_space() -> Any:
    """Two decisions x 3 options; rows in rank order (x, y) = (0,0), (0,1), ..., (2,2)."""
    return space_from_dict({"name": "grid", "blocks": [
        {"kind": "categorical", "name": "x", "choices": ["a", "b", "c"]},
        {"kind": "categorical", "name": "y", "choices": ["a", "b", "c"]}]})


GRID_ROWS = np.array(list(itertools.product(range(3), range(3))))


def _brute_corr(rows: np.ndarray, f: np.ndarray) -> dict[int, tuple[int, float]]:
    """Pearson correlation over ordered pairs at each Hamming distance, pair by pair."""
    pairs: dict[int, list[tuple[float, float]]] = {}
    for i, j in itertools.permutations(range(len(rows)), 2):
        pairs.setdefault(int((rows[i] != rows[j]).sum()), []).append((f[i], f[j]))
    return {d: (len(p), float(np.corrcoef(np.array(p).T)[0, 1])) for d, p in pairs.items()}


def test_corr_by_distance_hand_computed() -> None:
    """f = x + y on the 3x3 grid: var f = 2/3 + 2/3 = 4/3. Two distinct options of one decision give
    E[(x−1)(x'−1)] = −1/3, so cov at d = 1 is −1/3 + 2/3 = 1/3 (corr 1/4) and at d = 2 it is −2/3 (corr
    −1/2); each cell has 4 partners at d = 1 and 4 at d = 2 (36 ordered pairs each)."""
    space = _grid_space()
    f = GRID_ROWS.sum(axis=1).astype(float)
    for method in ("auto", "transform", "blocks"):
        t = neighbour_correlation_by_distance(space, GRID_ROWS, f, method=method)
        assert t["distance"].tolist() == [1, 2] and t["n_pairs"].tolist() == [36, 36]
        assert t["corr"].tolist() == pytest.approx([0.25, -0.5])


def test_corr_by_distance_partial_table_matches_brute_force() -> None:
    space = _grid_space()
    f = np.array([5.0, 0, 1, 0, 2, 3, 1, 3, 4])
    keep = np.array([0, 1, 2, 4, 5, 7, 8])                  # two cells untabulated
    brute = _brute_corr(GRID_ROWS[keep], f[keep])
    for method in ("transform", "blocks"):
        t = neighbour_correlation_by_distance(space, GRID_ROWS[keep], f[keep], method=method)
        for r in t.itertuples():
            assert (r.n_pairs, r.corr) == (brute[r.distance][0], pytest.approx(brute[r.distance][1]))


def test_basins_hand_computed() -> None:
    """f on the grid (x rows, y columns): [[5, 0, 1], [0, 2, 3], [1, 3, 4]]: optima (0,0) = 5 (global)
    and (2,2) = 4. Best improvement: (0,1), (0,2), (1,0), (2,0) jump to 5; (1,1) ties 3 = (1,2) and (2,1),
    takes (1,2) (lower index), then 4. First improvement scans x first, then y: (0,1) -> (1,1) -> (2,1)
    -> (2,2) and (0,2) -> (1,2) -> (2,2); only (1,0) and (2,0) reach 5."""
    space = _grid_space()
    f = np.array([5.0, 0, 1, 0, 2, 3, 1, 3, 4])
    st = landscape(space, GRID_ROWS, f)
    assert (st.strict_local_maxima, st.weak_local_maxima) == (2, 2)
    assert (st.basin_size_global, st.basin_share_global) == (5, pytest.approx(5 / 9))
    assert (st.basin_size_global_first, st.basin_share_global_first) == (3, pytest.approx(3 / 9))
    s, d = neighbour_pairs(space, GRID_ROWS)
    assert hill_climb_ends(f, s, d, rule="best").tolist() == [0, 0, 0, 0, 8, 8, 0, 8, 8]
    assert hill_climb_ends(f, s, d, rule="first").tolist() == [0, 8, 8, 0, 8, 8, 0, 8, 8]
    with pytest.raises(ValueError, match="rule="):
        hill_climb_ends(f, s, d, rule="steepest")


def _slow_climbs(space: Any, rows: np.ndarray, f: np.ndarray) -> tuple[list[int], list[int], int]:
    """Independent Python loop over ``space.neighbours``: best- and first-improvement end points, and
    the weak local maxima."""
    key = {tuple(r): i for i, r in enumerate(rows.tolist())}
    nbrs = [[key[t] for t in map(tuple, space.neighbours(r).tolist()) if t in key] for r in rows]
    weak = sum(1 for i, n in enumerate(nbrs) if n and all(f[i] >= f[j] for j in n))

    def climb(i: int, first: bool) -> int:
        while True:
            better = [j for j in nbrs[i] if f[j] > f[i]]
            if not better:
                return i
            i = better[0] if first else max(better, key=lambda j: (f[j], -j))

    return [climb(i, False) for i in range(len(rows))], [climb(i, True) for i in range(len(rows))], weak


def test_nb201_basin_and_weak_maxima_against_a_slow_loop() -> None:
    """On the whole NB201 table, and on a third of it with values rounded to whole points (many ties)."""
    table = pd.read_parquet(need(NB201_TABLE))
    space = get_space("nb201")
    rows, f = table_rows(space, table)
    st = landscape(space, rows, f)
    best_ends, first_ends, weak = _slow_climbs(space, rows, f)
    best = int(np.argmax(f))
    assert st.basin_size_global == best_ends.count(best) == 10958
    assert st.basin_size_global_first == first_ends.count(best)
    assert st.basin_share_global == pytest.approx(10958 / 15625)
    assert st.weak_local_maxima == weak
    sub = np.random.default_rng(0).permutation(len(rows))[:5000]
    r2, f2 = rows[sub], np.round(f[sub])
    s, d = neighbour_pairs(space, r2)
    best_ends, first_ends, weak = _slow_climbs(space, r2, f2)
    assert hill_climb_ends(f2, s, d, rule="best").tolist() == best_ends
    assert hill_climb_ends(f2, s, d, rule="first").tolist() == first_ends
    st2 = landscape(space, r2, f2)
    assert st2.weak_local_maxima == weak > st2.strict_local_maxima


def test_nb201_corr_by_distance() -> None:
    """d = 1 is the lag-1 pair autocorrelation (the one-edit neighbours are the Hamming-1 pairs); pair
    counts are 15,625 x C(6, d) x 4^d; the transform agrees with the block computation."""
    table = pd.read_parquet(need(NB201_TABLE))
    space = get_space("nb201")
    rows, f = table_rows(space, table)
    t = neighbour_correlation_by_distance(space, rows, f)
    assert t["distance"].tolist() == [1, 2, 3, 4, 5, 6]
    assert t["n_pairs"].tolist() == [15625 * int(np.prod(range(7 - d, 7))) // int(np.prod(range(1, d + 1))) * 4 ** d
                                     for d in range(1, 7)]
    assert t["corr"][0] == pytest.approx(0.5622, abs=0.002)
    assert t["corr"][0] == pytest.approx(landscape(space, rows, f).autocorr_lag1, abs=1e-12)
    assert t["corr"].is_monotonic_decreasing
    sub = np.random.default_rng(1).permutation(len(rows))[:3000]
    a = neighbour_correlation_by_distance(space, rows[sub], f[sub], method="transform")
    b = neighbour_correlation_by_distance(space, rows[sub], f[sub], method="blocks")
    assert a["n_pairs"].tolist() == b["n_pairs"].tolist()
    assert np.allclose(a["corr"], b["corr"], atol=1e-10)


def test_vectorised_pairs_and_parsing_match_the_space() -> None:
    """Neighbour pairs in ``space.neighbours`` order, and parsed rows equal to ``space.from_str``."""
    table = pd.read_parquet(need(NB201_TABLE))
    space = get_space("nb201")
    rows, _ = table_rows(space, table)
    assert rows.tolist() == [list(space.from_str(a).indices) for a in table["arch"]]
    sub = rows[np.random.default_rng(2).permutation(len(rows))[:4000]]
    key = {tuple(r): i for i, r in enumerate(sub.tolist())}
    expect = [(i, key[t]) for i, r in enumerate(sub) for t in map(tuple, space.neighbours(r).tolist()) if t in key]
    s, d = neighbour_pairs(space, sub)
    assert list(zip(s.tolist(), d.tolist())) == expect
    odd = pd.DataFrame({"arch": ["  " + table["arch"][0] + " ", table["arch"][1]], "v": [1.0, 2.0]})
    got, _ = table_rows(space, odd, metric="v")          # not canonical: parsed by space.from_str
    assert got.tolist() == [list(space.from_str(table["arch"][i]).indices) for i in (0, 1)]


def test_corr_by_distance_errors() -> None:
    space = _grid_space()
    f = GRID_ROWS.sum(axis=1).astype(float)
    with pytest.raises(ValueError, match="kind="):
        neighbour_correlation_by_distance(space, GRID_ROWS, f, kind="path")
    with pytest.raises(ValueError, match="method="):
        neighbour_correlation_by_distance(space, GRID_ROWS, f, method="fast")
    with pytest.raises(ValueError, match="whose values vary"):
        neighbour_correlation_by_distance(space, GRID_ROWS, np.ones(9))
    with pytest.raises(ValueError, match="twice"):
        neighbour_correlation_by_distance(space, GRID_ROWS[[0, 0, 1]], f[:3])
    with pytest.raises(ValueError, match="out of range"):
        neighbour_correlation_by_distance(space, np.array([[0, 0], [0, 7]]), np.array([1.0, 2.0]))
    darts = get_space("darts")
    rows = darts.sample(np.random.default_rng(0), 2000)
    with pytest.raises(ValueError, match="hamming"):
        neighbour_correlation_by_distance(darts, rows, np.arange(2000.0), kind="edit")


def test_cli_reports_the_new_keys(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    table = pd.read_parquet(need(NB201_TABLE))
    sub = table[table["arch"].str.count("nor_conv_3x3") >= 3][["arch", "valid_acc"]]
    csv = tmp_path / "t.csv"
    sub.to_csv(csv, index=False)
    assert main(["analyze", "landscape", "--space", "nb201", "--table", str(csv), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    rows, f = table_rows(get_space("nb201"), sub)
    st = landscape(get_space("nb201"), rows, f)
    assert out["basin_size_global"] == st.basin_size_global and out["basin_share_global"] == st.basin_share_global
    by_d = out["neighbour_corr_by_distance"]
    assert [r["distance"] for r in by_d] == list(range(1, len(by_d) + 1))
    assert by_d[0]["n_pairs"] == out["n_pairs"] and by_d[0]["corr"] == pytest.approx(out["autocorr_lag1"])


def _log(table: pd.DataFrame, metric: str = "valid_acc") -> pd.DataFrame:
    """A run log's columns: arch, status, metric_<objective>; every architecture evaluated twice."""
    one = pd.DataFrame({"arch": table["arch"], "status": "ok", f"metric_{metric}": table[metric]})
    failed = one.head(3).assign(status="failed", **{f"metric_{metric}": np.nan})
    return pd.concat([one, one, failed], ignore_index=True)


def test_report_section(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    table = pd.read_parquet(need(NB201_TABLE))
    sub = table[table["arch"].str.count("nor_conv_3x3") >= 3]
    study = {"study": {"objective": "valid_acc", "seed": 0}, "space": {"name": "nb201"}}
    md = landscape_section(_log(sub), study, tmp_path)
    st = landscape(get_space("nb201"), *table_rows(get_space("nb201"), sub))
    assert md.startswith("## Landscape") and f"{st.n:,} evaluated architectures" in md
    assert f"{st.autocorr_lag1:.4f}" in md and f"{st.basin_size_global:,}" in md
    for png in ("landscape_fdc.png", "landscape_rho.png", "landscape_corr_distance.png"):
        assert (tmp_path / png).stat().st_size > 1000 and f"]({png})" in md
    study_min = {"study": {"objective": "valid_loss", "mode": "min", "seed": 0}, "space": {"name": "nb201"}}
    md_min = landscape_section(_log(sub, "valid_loss"), study_min, tmp_path)
    best = sub.loc[sub["valid_loss"].idxmin(), "arch"]
    assert f"`{best}`" in md_min and "minimised" in md_min
    far = sub.head(3).assign(arch=["|none~0|+|none~0|none~1|+|none~0|none~1|none~2|",
                                   "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|"
                                   "nor_conv_3x3~2|",
                                   "|skip_connect~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|"
                                   "skip_connect~1|skip_connect~2|"])
    assert "undefined: no two tabulated architectures are neighbours" in landscape_section(_log(far), study, None)
    quiet = {**study, "analysis": {"landscape": {"walks": 0, "distance": "hamming"}}}
    (tmp_path / "landscape_rho.png").unlink()
    md_quiet = landscape_section(_log(sub), quiet, tmp_path)
    assert "ρ(1)" not in md_quiet and not (tmp_path / "landscape_rho.png").exists() and "hamming distance" in md_quiet
    with pytest.raises(ValueError, match=r"\[analysis.landscape\] walks"):
        landscape_section(_log(sub), {**study, "analysis": {"landscape": {"walks": "many"}}}, tmp_path)
    with pytest.raises(ValueError, match="objective"):
        landscape_section(_log(sub), {"study": {}, "space": {"name": "nb201"}}, tmp_path)
    with pytest.raises(ValueError, match="metric_test_acc"):
        landscape_section(_log(sub), {"study": {"objective": "test_acc"}, "space": {"name": "nb201"}}, tmp_path)
