"""Error EDFs (Radosavovic et al. 2019): hand-computed EDFs and KS statistics, scipy as an independent
check, complexity normalisation, the NB201 sub-spaces with and without a 3x3 convolution, bad input,
the CLI and the report section."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from nasatlas.spaces import get_space
from nasatlas.studies.analyses import ANALYSES
from nasatlas.studies.cli import main
from nasatlas.studies.edf import (
    compare_edfs,
    complexity_bins,
    edf,
    edf_quantiles,
    edf_section,
    edf_table,
    ks_statistic,
    normalised_weights,
    op_presence,
    resolve_error_rule,
    to_error,
)
from scipy import stats

from .conftest import NB201_COST, NB201_TABLE, need


def test_edf_of_four_values_by_hand() -> None:
    t = edf([3.0, 1.0, 2.0, 2.0])
    assert t["error"].tolist() == [1.0, 2.0, 3.0]
    assert t["cdf"].tolist() == [0.25, 0.75, 1.0]             # share with error <= u
    assert t["cdf_below"].tolist() == [0.0, 0.25, 0.75]       # the paper's F(u) = share with error < u
    q = edf_quantiles([3.0, 1.0, 2.0, 2.0], probs=(0.1, 0.25, 0.5, 0.9))
    assert q == {"0.1": 1.0, "0.25": 1.0, "0.5": 2.0, "0.9": 3.0}
    for p in (0.1, 0.25, 0.5, 0.9):
        assert q[str(p)] == np.quantile([3.0, 1.0, 2.0, 2.0], p, method="inverted_cdf")


def test_weighted_edf_with_known_weights() -> None:
    t = edf([4.0, 1.0, 3.0, 2.0], [0.4, 0.1, 0.3, 0.2])
    assert t["cdf"].to_numpy() == pytest.approx([0.1, 0.3, 0.6, 1.0])
    assert t["cdf_below"].to_numpy() == pytest.approx([0.0, 0.1, 0.3, 0.6])
    same = edf([4.0, 1.0, 3.0, 2.0], [4, 1, 3, 2])            # weights are normalised to sum 1
    assert same["cdf"].to_numpy() == pytest.approx(t["cdf"].to_numpy())
    assert edf_quantiles([4.0, 1.0, 3.0, 2.0], [4, 1, 3, 2], probs=(0.3, 0.5, 0.61)) == {
        "0.3": 2.0, "0.5": 3.0, "0.61": 4.0}
    zero = edf([1.0, 2.0, 9.0], [1, 1, 0])                    # a zero weight adds a flat step only
    assert zero["cdf"].to_numpy() == pytest.approx([0.5, 1.0, 1.0])


def test_ks_by_hand_and_against_scipy() -> None:
    # a = {1,2,3}, b = {2.5,4}: F_a - F_b on the pooled values 1,2,2.5,3,4 = 1/3, 2/3, 1/6, 1/2, 0
    ks = ks_statistic([1.0, 2.0, 3.0], [2.5, 4.0])
    ref = stats.ks_2samp([1.0, 2.0, 3.0], [2.5, 4.0])
    assert ks["D"] == pytest.approx(2 / 3) and ks["D"] == pytest.approx(ref.statistic)
    assert ks["p_value"] == pytest.approx(ref.pvalue) and ks["p_value_approx"] is None and not ks["weighted"]
    # ties across samples: F_a = .5,.75,1,1 and F_b = .25,.75,.75,1 at 1,2,3,4
    assert ks_statistic([1, 1, 2, 3], [1, 2, 2, 4])["D"] == pytest.approx(0.25)
    rng = np.random.default_rng(0)
    for _ in range(20):
        a, b = rng.integers(0, 8, rng.integers(2, 30)), rng.integers(0, 8, rng.integers(2, 30))
        assert ks_statistic(a, b)["D"] == pytest.approx(stats.ks_2samp(a, b).statistic)


def test_weighted_ks() -> None:
    w = ks_statistic([1.0, 2.0], [1.0, 2.0], [0.9, 0.1], [0.1, 0.9])
    assert w["D"] == pytest.approx(0.8) and w["weighted"] and w["p_value"] is None
    assert w["n_eff_a"] == pytest.approx(1 / 0.82)            # Kish: (Σw)² / Σw²
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=40), rng.normal(0.5, size=60)
    eq = ks_statistic(a, b, np.ones(40), np.full(60, 3.0))    # equal weights: the unweighted D, and the
    assert eq["D"] == pytest.approx(stats.ks_2samp(a, b).statistic)   # approximation is scipy's asymptotic p
    assert eq["p_value_approx"] == pytest.approx(stats.ks_2samp(a, b, method="asymp").pvalue)


def test_normalisation_equalises_the_complexity_histograms_by_hand() -> None:
    c = [1, 1, 10, 1, 10, 10, 10, 100]
    g = ["A"] * 3 + ["B"] * 5
    edges = [0.5, 5, 50, 500]                     # bins: 1 -> 0, 10 -> 1, 100 -> 2 (B only: outside support)
    w = normalised_weights(c, g, edges).to_numpy()
    assert w == pytest.approx([0.25, 0.25, 0.5, 0.5, 0.5 / 3, 0.5 / 3, 0.5 / 3, 0.0])
    u = normalised_weights(c, g, edges, target="union").to_numpy()   # pooled bin counts 3 and 4
    assert u == pytest.approx([3 / 14, 3 / 14, 4 / 7, 3 / 7, 4 / 21, 4 / 21, 4 / 21, 0.0])


@pytest.mark.parametrize("target", ["uniform", "union"])
def test_normalisation_equalises_random_complexity_histograms(target: str) -> None:
    rng = np.random.default_rng(2)
    c = np.concatenate([rng.lognormal(0.0, 1.0, 300), rng.lognormal(1.0, 0.7, 500)])
    g = np.array(["a"] * 300 + ["b"] * 500)
    w = normalised_weights(pd.Series(c), g, 8, target=target)
    idx, edges = complexity_bins(c, 8)
    assert len(edges) == 9 and edges[0] == pytest.approx(c.min()) and edges[-1] == pytest.approx(c.max())
    ha = np.bincount(idx[g == "a"], weights=w[g == "a"], minlength=8)
    hb = np.bincount(idx[g == "b"], weights=w[g == "b"], minlength=8)
    assert ha == pytest.approx(hb) and ha.sum() == pytest.approx(1.0)
    common = (np.bincount(idx[g == "a"], minlength=8) > 0) & (np.bincount(idx[g == "b"], minlength=8) > 0)
    expected = np.where(common, 1.0 if target == "uniform" else np.bincount(idx, minlength=8), 0.0)
    assert ha == pytest.approx(expected / expected.sum())


def test_error_rule() -> None:
    assert resolve_error_rule("valid_acc", [91.0, 0.5]) == "percent"
    assert resolve_error_rule("metric_accuracy", [0.91, 0.5]) == "fraction"
    assert resolve_error_rule("valid_error", [9.0]) == "error" and resolve_error_rule("loss", [2.3]) == "error"
    assert resolve_error_rule("score", [1.0], "fraction") == "fraction"
    assert to_error([91.0, 50.0], "percent") == pytest.approx([9.0, 50.0])
    assert to_error([0.91], "fraction") == pytest.approx([0.09])
    with pytest.raises(ValueError, match="--error-from"):
        resolve_error_rule("score", [1.0])
    with pytest.raises(ValueError, match="outside"):
        resolve_error_rule("valid_acc", [101.0])


def test_nb201_with_and_without_a_3x3_convolution_against_scipy() -> None:
    """KS between NB201 cells with and without a nor_conv_3x3 edge, recomputed with scipy on string tests."""
    table = pd.read_parquet(need(NB201_TABLE))
    has = op_presence(get_space("nb201"), table["arch"].tolist(), "nor_conv_3x3")
    assert (has == table["arch"].str.contains("nor_conv_3x3~").to_numpy()).all()
    assert int((~has).sum()) == 4 ** 6                          # cells drawn from the 4 other ops only
    pairs = compare_edfs(table, np.where(has, "with", "without"), metric="valid_acc")
    err = 100.0 - table["valid_acc"].to_numpy()
    ref = stats.ks_2samp(err[has], err[~has])
    assert len(pairs) == 1 and pairs["D"].iloc[0] == pytest.approx(ref.statistic)
    assert pairs["D"].iloc[0] == pytest.approx(0.6103, abs=1e-4)
    assert pairs["p_value"].iloc[0] == pytest.approx(ref.pvalue)
    none = op_presence(get_space("nb201"), table["arch"].tolist(), "none")
    p2 = compare_edfs(table, np.where(none, "with none", "without none"), metric="valid_acc")
    assert p2["D"].iloc[0] == pytest.approx(stats.ks_2samp(err[none], err[~none]).statistic)


def test_bad_input() -> None:
    t = pd.DataFrame({"arch": ["x"] * 4, "valid_acc": [90.0, 91.0, 92.0, 93.0], "g": ["a", "a", "a", "b"],
                      "params": [1.0, 2.0, np.nan, 3.0]})
    with pytest.raises(ValueError, match="--metric"):
        compare_edfs(t, "g", metric="test_acc")
    with pytest.raises(ValueError, match="--group-by"):
        compare_edfs(t, "nope", metric="valid_acc")
    with pytest.raises(ValueError, match="fewer than 2 models.*'b': 1"):
        compare_edfs(t, "g", metric="valid_acc")
    t2 = t.assign(g=["a", "a", "b", "b"])
    with pytest.raises(ValueError, match="have no 'params'"):
        compare_edfs(t2, "g", metric="valid_acc", complexity_column="params")
    with pytest.raises(ValueError, match="positive"):
        compare_edfs(t2.assign(params=[0.0, 1, 2, 3]), "g", metric="valid_acc", complexity_column="params")
    with pytest.raises(ValueError, match="do not overlap"):
        compare_edfs(t2.assign(params=[1.0, 1.0, 100, 100]), "g", metric="valid_acc", complexity_column="params")
    with pytest.raises(ValueError, match="at least 2 groups"):
        compare_edfs(t, ["a"] * 4, metric="valid_acc")
    with pytest.raises(ValueError, match="at least 2"):
        ks_statistic([1.0], [1.0, 2.0])
    space = get_space("nb201")
    with pytest.raises(ValueError, match="row 1: .* not an architecture"):
        op_presence(space, ["|none~0|+|none~0|none~1|+|none~0|none~1|none~2|",
                            "|conv_9x9~0|+|none~0|none~1|+|none~0|none~1|none~2|"], "none")
    with pytest.raises(ValueError, match="no decision .* has that option"):
        op_presence(space, [], "sep_conv_3x3")


def _cost_table() -> pd.DataFrame:
    """The NB201 cells of the cost table with their valid_acc and real params (millions)."""
    cost = pd.read_parquet(need(NB201_COST))
    table = pd.read_parquet(need(NB201_TABLE))[["arch", "valid_acc"]]
    return cost.merge(table, on="arch")


def test_cli_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    t = _cost_table()
    csv = tmp_path / "cells.csv"
    t.to_csv(csv, index=False)
    assert main(["analyze", "edf", "--space", "nb201", "--table", str(csv), "--metric", "valid_acc",
                 "--contains", "none", "--complexity", "params_millions", "--bins", "5", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    for key in ("groups", "ks", "p_value", "p_value_approx", "quantiles", "normalised", "n_eff", "pairs",
                "error_rule", "n_outside_support"):
        assert key in out
    has = t["arch"].str.contains("none~")
    assert out["groups"] == {"with none": int(has.sum()), "without none": int((~has).sum())}
    assert out["normalised"] and out["p_value"] is None and 0 <= out["p_value_approx"] <= 1
    assert out["error_rule"] == "percent" and set(out["quantiles"]["with none"]) == {"0.1", "0.5", "0.9"}
    long = edf_table(t, np.where(has, "with", "without"), metric="valid_acc", complexity_column="params_millions",
                     bins=5)
    wa, wb = (long[long["group"] == k] for k in ("with", "without"))
    assert out["ks"] == pytest.approx(ks_statistic(wa["error"], wb["error"], wa["weight"], wb["weight"])["D"])
    # unnormalised, two tables: the same KS as scipy on the split
    (tmp_path / "a.csv").write_text(t[has].to_csv(index=False))
    (tmp_path / "b.csv").write_text(t[~has].to_csv(index=False))
    assert main(["analyze", "edf", "--space", "nb201", "--table", str(tmp_path / "a.csv"),
                 "--table2", str(tmp_path / "b.csv"), "--json"]) == 0
    out2 = json.loads(capsys.readouterr().out)
    err = 100 - t["valid_acc"].to_numpy()
    ref = stats.ks_2samp(err[has], err[~has])
    assert list(out2["groups"]) == ["a", "b"] and not out2["normalised"]
    assert out2["ks"] == pytest.approx(ref.statistic) and out2["p_value"] == pytest.approx(ref.pvalue)
    # NB201 params are lexicographic in (#3x3, #1x1): one 3x3 conv outweighs six 1x1, so cells with and
    # without a 3x3 convolution share no params bin and cannot be params-normalised
    assert main(["analyze", "edf", "--space", "nb201", "--table", str(csv), "--contains", "nor_conv_3x3",
                 "--complexity", "params_millions"]) == 2
    assert "do not overlap" in capsys.readouterr().err
    assert main(["analyze", "edf", "--space", "nb201", "--table", str(csv), "--table2", str(csv),
                 "--contains", "none"]) == 2
    assert "--table2" in capsys.readouterr().err
    assert main(["analyze", "edf", "--space", "nb201", "--table", str(csv), "--group-by", "nb201_index"]) == 2
    assert "fewer than 2 models" in capsys.readouterr().err


def test_report_section(tmp_path: Path) -> None:
    """Two 'searchers' sampling real NB201 cells: the section's KS values are the module's, normalised over
    the log's cost_params."""
    t = _cost_table()
    rng = np.random.default_rng(3)
    small = t.nsmallest(200, "params_millions").sample(60, random_state=np.random.RandomState(4))
    pick = t.iloc[rng.choice(len(t), 80, replace=False)]
    log = pd.concat([small.assign(searcher="cheap"), pick.assign(searcher="random"),
                     t.iloc[:1].assign(searcher="lonely")])
    log = log.assign(status="ok", metric_valid_acc=log["valid_acc"], cost_params=log["params_millions"] * 1e6)
    study = {"study": {"objective": "valid_acc", "mode": "max"}}
    md = ANALYSES.factory("edf")(log, study, tmp_path)
    assert (tmp_path / "edf.png").is_file() and "![error EDFs](edf.png)" in md
    assert "Left out" in md and "'lonely': 1" in md and "Normalised" in md
    long = edf_table(log[log["searcher"] != "lonely"], "searcher", metric="metric_valid_acc",
                     complexity_column="cost_params")
    a, b = (long[long["group"] == k] for k in ("cheap", "random"))
    d = ks_statistic(a["error"], b["error"], a["weight"], b["weight"])["D"]
    assert f"| cheap | random | {d:.4f} |" in md
    with pytest.raises(ValueError, match="objective"):
        edf_section(log, {"study": {}}, tmp_path)
    plain = edf_section(log, {**study, "analysis": {"edf": {"complexity": "none"}}}, tmp_path)
    raw = compare_edfs(log[log["searcher"] != "lonely"], "searcher", metric="metric_valid_acc")
    assert "Not complexity-normalised" in plain and f"| cheap | random | {raw['D'].iloc[0]:.4f} |" in plain
    with pytest.raises(ValueError, match="allowed keys"):
        edf_section(log, {**study, "analysis": {"edf": {"binz": 3}}}, tmp_path)
    one = edf_section(log[log["searcher"] == "random"], study, tmp_path)
    assert "One searcher: no KS comparison" in one and "| random | 80 |" in one
