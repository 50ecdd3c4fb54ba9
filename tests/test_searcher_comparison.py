"""The searcher-comparison analysis: the exact random-search expectation, Kaplan–Meier medians and
the per-run selection, checked against brute force and hand-made cases."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from nasatlas.studies.searcher_comparison import km_median, random_best_of_n, selection_table

from .conftest import NB201_TABLE, need


@pytest.mark.parametrize("n", [1, 2, 4, 7])
def test_random_best_of_n_equals_brute_force_over_all_subsets(n: int) -> None:
    rng = np.random.default_rng(n)
    valid = rng.integers(0, 3, 7).astype(float)        # many ties: the index tie-break matters
    test = rng.normal(size=7)
    index = rng.permutation(7)
    picks = []
    for c in itertools.combinations(range(7), n):
        c = np.array(c)
        picks.append(test[c][np.lexsort((index[c], -valid[c]))[0]])
    mean, std = random_best_of_n(valid, test, index, n)
    assert mean == pytest.approx(np.mean(picks)) and std == pytest.approx(np.std(picks))


def test_random_best_of_n_rejects_impossible_budgets() -> None:
    with pytest.raises(ValueError, match="n=4"):
        random_best_of_n(np.zeros(3), np.zeros(3), np.arange(3), 4)


def test_km_median_with_and_without_censoring() -> None:
    assert km_median(np.array([1, 2, 3, 4]), np.array([True] * 4)) == 2.0
    # two censored at 10: S drops 1 -> 3/4 -> 2/4 at t=2
    assert km_median(np.array([1, 2, 10, 10]), np.array([True, True, False, False])) == 2.0
    assert math.isnan(km_median(np.array([1, 10, 10, 10]), np.array([True, False, False, False])))


def test_selection_table_picks_best_by_valid_with_index_ties_and_hits() -> None:
    table = pd.DataFrame({"arch": list("abcd"), "nb201_index": [3, 2, 1, 0],
                          "valid_acc": [90.0, 95.0, 95.0, 80.0], "test_acc": [1.0, 2.0, 3.0, 4.0]})
    log = pd.DataFrame({"searcher": ["s"] * 3 + ["t"] * 2, "repeat": [0] * 5, "trial": [0, 1, 2, 0, 1],
                        "status": ["ok"] * 5, "arch": ["a", "b", "c", "d", "a"],
                        "metric_valid_acc": [90.0, 95.0, 95.0, 80.0, 90.0]})
    sel = selection_table(log, table).set_index("searcher")
    assert sel.loc["s", "arch"] == "c" and sel.loc["s", "selected_test"] == 3.0   # tie 95: lowest index (c)
    assert sel.loc["s", "hit_best"] and sel.loc["s", "evals_to_best"] == 2
    assert not sel.loc["t", "hit_best"] and sel.loc["t", "evals_to_best"] == 2     # censored at its length
    assert selection_table(log, table, budget=1).set_index("searcher").loc["s", "arch"] == "a"


def test_nb201_searchers_smoke_profile(tmp_path: Path) -> None:
    """The packaged comparison study runs every searcher on the real table in its smoke profile, and
    random search lands within 4 standard errors of its exact expectation."""
    from nasatlas.results import ResultLog
    from nasatlas.studies.cli import main
    table = need(NB201_TABLE)
    out = tmp_path / "nbs"
    assert main(["study", "nb201_searchers", "--profile", "smoke", "--var", f"NB201_TABLE={table}",
                 "--out", str(out), "--quiet"]) == 0
    df = ResultLog(out / "evaluations").read()
    assert (df["status"] == "ok").all()
    counts = df.groupby("searcher")["repeat"].nunique().to_dict()
    assert counts == {"random": 2, "random_largest": 2, "evolution": 2, "local_search": 2, "reinforce": 2,
                      "tpe": 2, "bananas": 1}
    assert (df.groupby(["searcher", "repeat"]).size() == 20).all()
    report = (out / "report.md").read_text()
    assert "Exact expectation for random search" in report and "it agrees" in report
    sel = pd.read_csv(out / "selections.csv")
    assert set(sel["searcher"]) == set(counts)
