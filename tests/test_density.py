"""Density analysis: hand-computed distances and nearest neighbours, the Wilson interval against hand
values, the share within epsilon recomputed from the released NB201 table with pandas, bad inputs, the
CLI, the report section, and a property test of the chunked distance matrices."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nasatlas.spaces import get_space
from nasatlas.spaces.declaration import space_from_dict
from nasatlas.studies.cli import main
from nasatlas.studies.density import (
    density,
    density_section,
    density_tables,
    distance_kinds,
    histogram_summary,
    nn_curve,
    pair_scan,
    pairwise_distances,
    sample_distinct,
    share_within_epsilon,
    wilson_interval,
)

from .conftest import NB201_TABLE, need


def _grid() -> Any:
    """Two categorical decisions, x in {a, b} and y in {a, b, c}: six architectures."""
    return space_from_dict({"name": "grid", "blocks": [
        {"kind": "categorical", "name": "x", "choices": ["a", "b"]},
        {"kind": "categorical", "name": "y", "choices": ["a", "b", "c"]}]})


def _cell() -> Any:
    """One unordered 2-node cell over ops a, b (no zero op), inputs drawn without replacement."""
    return space_from_dict({"name": "cell", "blocks": [
        {"kind": "cell_dag", "name": "normal", "nodes": 2, "ops": ["a", "b"], "k": 2}]})


def test_two_decision_space_every_pair_known() -> None:
    space = _grid()
    rows = space.enumerate()                       # (0,0) (0,1) (0,2) (1,0) (1,1) (1,2)
    # 15 pairs: one decision differs for 2*C(3,2) + 3*1 = 9 of them, both for the other 6
    for max_block_bytes in (64, 1 << 20):           # one row per block, and everything in one block
        for kind in ("hamming", "edit"):
            scan = pair_scan(space, rows, kind, max_block_bytes=max_block_bytes)
            assert scan.hist.tolist() == [0, 9, 6]
            assert scan.nn.tolist() == [1] * 6     # every architecture has a one-edit neighbour
    s = histogram_summary(np.array([0, 9, 6]))
    assert s["count"] == 15 and s["mean"] == pytest.approx(21 / 15) and s["min"] == 1 and s["max"] == 2
    assert (s["q05"], s["q25"], s["median"], s["q75"], s["q95"]) == (1, 1, 1, 2, 2)   # cum. share 0.6 at 1
    assert s["std"] == pytest.approx(np.std([1] * 9 + [2] * 6))
    assert pairwise_distances(space, rows, kind="hamming")[0].tolist() == [0, 1, 1, 1, 2, 2]
    assert distance_kinds(space) == ("hamming", "edit")


def test_cell_edit_hamming_and_path_by_hand() -> None:
    space = _cell()
    p = space.primitives[0]
    a_, b_ = 0, 1                                  # op indices of "a" and "b"
    # node 2 equal in both; node 3: A = {(0, a), (2, b)}, B = {(1, b), (2, a)}
    ra = p.row_from_edges([[(0, a_), (1, b_)], [(0, a_), (2, b_)]])
    rb = p.row_from_edges([[(0, a_), (1, b_)], [(1, b_), (2, a_)]])
    rows = np.stack([ra, rb])
    # edit: pairing (0,a)-(2,a) and (2,b)-(1,b) costs 1 + 1 = 2 (the slot-wise pairing costs 3);
    # hamming: the input pair and both op slots of node 3 differ: 3
    assert pairwise_distances(space, rows, kind="edit")[0, 1] == 2
    assert pairwise_distances(space, rows, kind="hamming")[0, 1] == 3
    # paths into the concatenated nodes 2 and 3: A = {0a, 1b, 0ab, 1bb}, B = {0a, 1b, 0aa, 1ba}
    assert pairwise_distances(space, rows, kind="path")[0, 1] == 4
    for kind in ("edit", "hamming", "path"):
        assert pairwise_distances(space, rows, kind=kind)[0, 1] == int(space.distance(ra, rb, kind=kind))


def test_nearest_neighbour_curve_on_a_tiny_enumerated_space() -> None:
    space = _grid()
    rows = np.array([[0, 0], [1, 1], [0, 1], [1, 2], [0, 2], [1, 0]])
    curve = nn_curve(space, rows, "hamming", sizes=[2, 3, 6])
    # first 2: (0,0)-(1,1) differ in both decisions; adding (0,1) puts every one 1 away
    assert curve["n"].tolist() == [2, 3, 6] and curve["nn_mean"].tolist() == [2.0, 1.0, 1.0]
    with pytest.raises(ValueError, match="2 .. 6"):
        nn_curve(space, rows, "hamming", sizes=[1])


def test_sample_is_distinct_uniform_without_replacement_and_seeded() -> None:
    space = _grid()
    whole = sample_distinct(space, np.random.default_rng(0), 6)
    assert sorted(map(tuple, whole.tolist())) == sorted(map(tuple, space.enumerate().tolist()))
    nb = get_space("nb201")
    a = sample_distinct(nb, np.random.default_rng(5), 500)
    assert len({r.tobytes() for r in a}) == 500
    assert np.array_equal(a, sample_distinct(nb, np.random.default_rng(5), 500))
    darts = get_space("darts")                       # not enumerable: uniform draws, repeats dropped
    d = sample_distinct(darts, np.random.default_rng(1), 50)
    assert d.shape == (50, darts.width) and len({r.tobytes() for r in d}) == 50
    u = sample_distinct(nb, np.random.default_rng(2), 200, over="unique")
    assert len({nb.canonical_id(r) for r in u}) == 200


def test_wilson_interval_against_hand_values() -> None:
    # k=8, n=10, z=1.96: centre (0.8 + 0.19208) / 1.38416, half 1.96/1.38416 * sqrt(0.016 + 0.009604)
    lo, hi = wilson_interval(8, 10)
    assert lo == pytest.approx(0.4902, abs=2e-4) and hi == pytest.approx(0.9433, abs=2e-4)
    lo0, hi0 = wilson_interval(0, 10)                # the upper bound z^2/n / (1 + z^2/n)
    assert lo0 == pytest.approx(0.0, abs=1e-12) and hi0 == pytest.approx(0.2775, abs=2e-4)
    lo99, hi99 = wilson_interval(8, 10, confidence=0.99)
    assert lo99 < lo and hi99 > hi
    for bad in ((1, 0), (11, 10), (-1, 10)):
        with pytest.raises(ValueError):
            wilson_interval(*bad)


def test_nb201_share_within_one_point_of_the_best() -> None:
    table = pd.read_parquet(need(NB201_TABLE))
    best = table["valid_acc"].max()
    expect = int((table["valid_acc"] >= best - 1.0).sum())
    res = share_within_epsilon(get_space("nb201"), table, metric="valid_acc", epsilon=1.0, sample=2000,
                               rng=np.random.default_rng(0))
    assert res["best"] == best and res["table"]["within"] == expect
    assert res["table"]["share"] == pytest.approx(expect / 15625) and res["table"]["exhaustive"] is True
    s = res["sample"]
    assert s["n"] == 2000 and (s["ci_low"], s["ci_high"]) == wilson_interval(s["within"], 2000)
    assert s["ci_low"] <= res["table"]["share"] <= s["ci_high"]
    # minimising the loss: within 0.05 of the lowest valid loss
    lo = share_within_epsilon(get_space("nb201"), table, metric="valid_loss", epsilon=0.05, mode="min")
    assert lo["table"]["within"] == int((table["valid_loss"] <= table["valid_loss"].min() + 0.05).sum())
    part = share_within_epsilon(get_space("nb201"), table.iloc[:100], metric="valid_acc")
    assert part["table"]["exhaustive"] is False and "sample" not in part


def test_density_result_and_tables() -> None:
    space = get_space("nb201")
    res = density(space, rng=np.random.default_rng(0), sample=300, sizes=[100, 300])
    assert res["n"] == 300 and res["distance_kinds"] == ["hamming", "edit", "path"]
    ham = res["distances"]["hamming"]
    assert ham["pairwise"]["count"] == 300 * 299 // 2 and ham["nearest_neighbour"]["count"] == 300
    assert ham["pairwise"]["mean"] == pytest.approx(6 * 4 / 5, abs=0.1)   # uniform pairs: 6 edges x 4/5
    assert [c["n"] for c in ham["nn_vs_n"]] == [100, 300]
    assert ham["nn_vs_n"][1]["nn_mean"] == ham["nearest_neighbour"]["mean"]
    assert ham["nn_vs_n"][0]["nn_mean"] >= ham["nn_vs_n"][1]["nn_mean"]    # nested prefixes: never farther
    t = density_tables(res)
    assert set(t["quantiles"]["of"]) == {"pairwise", "nearest_neighbour"}
    h = t[("histogram")]
    assert h.loc[h["distance"] == "edit", "pairs"].sum() == 300 * 299 // 2
    assert json.loads(json.dumps(res)) is not None


def test_histogram_quantiles_match_numpy_inverted_cdf() -> None:
    v = np.random.default_rng(3).integers(0, 12, 1001)
    s = histogram_summary(np.bincount(v))
    for key, q in (("q05", 0.05), ("q25", 0.25), ("median", 0.5), ("q75", 0.75), ("q95", 0.95)):
        assert s[key] == int(np.quantile(v, q, method="inverted_cdf"))
    assert s["mean"] == pytest.approx(v.mean()) and s["std"] == pytest.approx(v.std())


def test_bad_inputs_raise_clear_errors() -> None:
    chain = get_space("proxylessnas")
    with pytest.raises(ValueError, match=r"no distance 'path'.*\['hamming', 'edit'\]"):
        density(chain, rng=np.random.default_rng(0), sample=10, kinds=["path"])
    with pytest.raises(ValueError, match="no distance 'manhattan'"):
        pairwise_distances(chain, chain.sample(np.random.default_rng(0), 2), kind="manhattan")
    with pytest.raises(ValueError, match="at least 2"):
        density(chain, rng=np.random.default_rng(0), sample=1)
    with pytest.raises(ValueError, match="at least 2"):
        pair_scan(chain, chain.sample(np.random.default_rng(0), 1))
    with pytest.raises(ValueError, match="only 6 architectures"):
        sample_distinct(_grid(), np.random.default_rng(0), 7)
    with pytest.raises(TypeError, match="Generator"):
        sample_distinct(_grid(), 0, 3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="over="):
        sample_distinct(_grid(), np.random.default_rng(0), 3, over="classes")
    nb = get_space("nb201")
    with pytest.raises(ValueError, match="out of range"):
        pair_scan(nb, np.array([[0] * 6, [9] * 6]))
    good = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
    t = pd.DataFrame({"arch": [good, "|conv~0|"], "acc": [1.0, 2.0]})
    with pytest.raises(ValueError, match="row 1"):
        share_within_epsilon(nb, t, metric="acc")
    with pytest.raises(ValueError, match="no column 'valid_acc'"):
        share_within_epsilon(nb, t.iloc[:1], metric="valid_acc")
    with pytest.raises(ValueError, match="epsilon"):
        share_within_epsilon(nb, t.iloc[:1], metric="acc", epsilon=-1)
    with pytest.raises(ValueError, match="mode"):
        share_within_epsilon(nb, t.iloc[:1], metric="acc", mode="best")
    with pytest.raises(ValueError, match="no architecture with a value"):
        share_within_epsilon(nb, t.iloc[:1].assign(acc=np.nan), metric="acc")


def test_cli_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    table = pd.read_parquet(need(NB201_TABLE))
    csv = tmp_path / "t.csv"
    table[["arch", "valid_acc"]].to_csv(csv, index=False)
    assert main(["analyze", "density", "--space", "nb201", "--table", str(csv), "--metric", "valid_acc",
                 "--epsilon", "1.0", "--distance", "edit", "--sample", "400", "--seed", "0", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["n"] == 400 and out["seed"] == 0 and out["distance_kinds"] == ["edit"]
    assert set(out["distances"]["edit"]) == {"pairwise", "nearest_neighbour", "nn_vs_n"}
    sh = out["share_within_eps"]
    best = table["valid_acc"].max()
    assert sh["table"]["within"] == int((table["valid_acc"] >= best - 1.0).sum()) and sh["sample"]["n"] == 400
    assert main(["analyze", "density", "--space", "nb201", "--distance", "edit", "--sample", "400", "--seed", "0",
                 "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["distances"] == out["distances"] and "share_within_eps" not in again
    assert main(["analyze", "density", "--space", "fbnet", "--distance", "path", "--json"]) == 2
    assert "has no distance 'path'" in capsys.readouterr().err
    assert main(["analyze", "density", "--space", "nb201", "--sample", "20000", "--json"]) == 2
    assert "only 15,625" in capsys.readouterr().err


def test_report_section_draws_both_plots(tmp_path: Path) -> None:
    nb = get_space("nb201")
    rows = sample_distinct(nb, np.random.default_rng(9), 30)
    df = pd.DataFrame({"arch": [nb.to_str(r) for r in rows], "status": "ok"})
    md = density_section(df, {"study": {"seed": 4}, "space": {"name": "nb201"}}, tmp_path)
    assert "## How dense is the space?" in md and "| edit | nearest neighbour |" in md
    assert "1,000 distinct architectures" in md and "30 distinct evaluated architectures" in md
    for png in ("density_distances_nb201.png", "density_nn_vs_n_nb201.png"):
        assert (tmp_path / png).stat().st_size > 0 and f"]({png})" in md
    # [analysis.density]: other spaces, a smaller sample, one distance, curve sizes
    study: dict[str, Any] = {"study": {"seed": 4}, "space": {"name": "nb201"},
             "analysis": {"density": {"spaces": ["fbnet", "nb201"], "sample": 200, "distances": ["edit"],
                                      "sizes": [50, 200]}}}
    md = density_section(df, study, tmp_path)
    assert "### `fbnet`" in md and "### `nb201`" in md and "200 distinct architectures" in md
    assert "n=50 → " in md and "| hamming |" not in md and (tmp_path / "density_nn_vs_n_fbnet.png").exists()
    study["analysis"]["density"]["samples"] = 10
    with pytest.raises(ValueError, match=r"\[analysis.density\] samples"):
        density_section(df, study, tmp_path)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2 ** 32 - 1), n=st.integers(2, 12))
def test_distance_matrices_are_metrics_and_match_space_distance(seed: int, n: int) -> None:
    space = get_space("darts", nodes=3)
    rows = space.sample(np.random.default_rng(seed), n)
    for kind in ("edit", "hamming", "path"):
        d = pairwise_distances(space, rows, kind=kind, max_block_bytes=4096)
        assert np.array_equal(d, d.T) and not d.diagonal().any()
        assert np.array_equal(d, space.distance(rows[:, None], rows[None, :], kind=kind))
        # triangle inequality d(i, k) <= d(i, j) + d(j, k) for every i, j, k
        assert (d[:, None, :] <= d[:, :, None] + d[None, :, :]).all()
