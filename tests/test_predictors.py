"""Performance predictors: ranking scores, the NB201 parameter formula, fit/save/load, the evaluator,
bad inputs, and the packaged study's smoke profile through the CLI."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from nasatlas.evaluators.predictor_eval import (
    PREDICTOR_KINDS,
    PredictorEvaluator,
    features,
    fit_predictor,
    knn_predict,
    load_predictor,
    save_predictor,
)
from nasatlas.evaluators.registry import EVALUATORS
from nasatlas.spaces import get_space
from nasatlas.spaces.build import cost_report
from nasatlas.studies.predictors import (
    arch_targets,
    kendall_tau,
    nb201_params,
    precision_at_k,
    predictor_curves,
    predictors_section,
    spearman,
    summarise_curves,
    top_k_size,
)

from .conftest import NB201_COST, NB201_TABLE, need

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SMALL = {"mlp": {"members": 2, "max_iter": 200}, "rf": {"n_estimators": 10}, "gb": {"n_estimators": 20}}


@pytest.fixture(scope="module")
def nb201():
    return get_space("nb201")


def _table(space, n: int, seed: int = 0, noise: float = 0.3) -> pd.DataFrame:
    """n distinct NB201 cells whose metric is a fixed linear function of the one-hot encoding plus noise."""
    rng = np.random.default_rng(seed)
    rows = np.unique(space.sample(rng, 3 * n), axis=0)[:n]
    rng.shuffle(rows)
    x = features(space, rows)
    w = np.random.default_rng(99).normal(size=x.shape[1])
    y = 80 + x @ w + noise * rng.normal(size=n)
    return pd.DataFrame({"arch": [space.to_str(r) for r in rows], "status": "ok", "metric_valid_acc": y})


# ----------------------------------------------------------------------------- ranking scores

def test_tau_and_spearman_on_hand_computed_cases() -> None:
    # 6 pairs, one discordant (2, 3): tau = (5 - 1) / 6; rank differences (0, 1, -1, 0): rho = 1 - 6*2/(4*15)
    assert kendall_tau([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(2 / 3)
    assert spearman([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(0.8)
    # tau_b with a tie in the prediction: P = 2, Q = 0, one pair tied in y_pred only: 2 / sqrt(2 * 3)
    assert kendall_tau([1, 2, 3], [1, 1, 2]) == pytest.approx(2 / np.sqrt(6))
    assert kendall_tau([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert np.isnan(kendall_tau([1, 2, 3], [5, 5, 5]))            # a constant prediction has no ranking
    with pytest.raises(ValueError, match="at least 2"):
        kendall_tau([1], [1])
    with pytest.raises(ValueError, match="NaN"):
        spearman([1, 2, np.nan], [1, 2, 3])


def test_precision_at_k_hand_computed_and_edge_cases() -> None:
    y = [10, 9, 8, 7, 6, 5]
    assert precision_at_k(y, [10, 8, 9, 1, 2, 3], 2) == pytest.approx(0.5)   # true {0, 1}, predicted {0, 2}
    assert precision_at_k(y, y, 3) == 1.0
    assert precision_at_k(y, [-v for v in y], 3) == 0.0                      # reversed ranking
    assert precision_at_k(y, [1, 2, 3, 4, 5, 6], 6) == 1.0                   # K = n: everything is in both sets
    assert precision_at_k(y, [0] * 6, 2) == pytest.approx(2 / 6)             # constant: random expectation K/n
    # ties in the truth: all three tied at the 2nd place are true top-2 members, so equal rankings score 1
    assert precision_at_k([5, 3, 3, 3, 1], [5, 3, 3, 3, 1], 2) == pytest.approx(1.0)
    assert precision_at_k([5, 3, 3, 3, 1], [5, 1, 1, 1, 3], 2) == pytest.approx(0.5)
    for bad in (0, 7, 2.0, True):
        with pytest.raises(ValueError, match="K="):
            precision_at_k(y, y, bad)


def test_precision_at_k_ties_equal_the_mean_over_every_tie_break() -> None:
    y = np.array([4.0, 3.0, 2.0, 1.0, 0.5])
    pred = np.array([5.0, 1.0, 1.0, 1.0, 0.0])
    # item 0 is in; one slot among the 3 tied items -> 1 + 1/3 of the true top-2 {0, 1}: (4/3) / 2
    assert precision_at_k(y, pred, 2) == pytest.approx(2 / 3)
    # brute force: average the overlap over every order of the tied items
    tied = [1, 2, 3]
    hits = []
    for order in itertools.permutations(tied):
        chosen = {0, order[0]}
        hits.append(len(chosen & {0, 1}) / 2)
    assert precision_at_k(y, pred, 2) == pytest.approx(np.mean(hits))


def test_top_k_size() -> None:
    assert top_k_size(500, 0.1) == 50 and top_k_size(40, 0.1) == 4 and top_k_size(5, 0.1) == 1
    with pytest.raises(ValueError, match="top_fraction"):
        top_k_size(10, 0.0)


def test_knn_averages_ties_in_expectation() -> None:
    x_train = np.array([[0.0], [1.0], [1.0], [3.0]])
    y_train = np.array([10.0, 20.0, 40.0, 100.0])
    # k = 2 at x = 0: the point at 0 (weight 1) and one of the two tied at distance 1 (1/2 each)
    assert knn_predict(x_train, y_train, np.array([[0.0]]), 2)[0] == pytest.approx((10 + 0.5 * 20 + 0.5 * 40) / 2)
    # the training order does not matter
    perm = [3, 2, 0, 1]
    assert knn_predict(x_train[perm], y_train[perm], np.array([[0.0]]), 2)[0] == pytest.approx(20.0)


# ----------------------------------------------------------------------------- NB201 parameter count

def test_params_formula_equals_cost_report(nb201) -> None:
    rows = np.vstack([np.zeros(6, dtype=int), np.full(6, 3), np.full(6, 2), nb201.sample(np.random.default_rng(3), 5)])
    for net in ("tiny", "cifar", {"preset": "tiny", "C": 6, "N": 2, "num_classes": 7}):
        got = nb201_params(nb201, rows, net)
        want = [cost_report(nb201, r, net, macs=False)["params"] for r in rows]
        assert got.tolist() == want
    # the C=16, N=5 network: 0.073306 M with no conv edge, 1.531546 M with six 3x3 convs (NB201's range)
    assert nb201_params(nb201, rows[:2]).tolist() == [73306, 1531546]


def test_params_formula_matches_nb201s_recorded_params(nb201) -> None:
    cost = pd.read_parquet(need(NB201_COST))
    rows = np.asarray([nb201.from_str(a).indices for a in cost["arch"]])
    assert np.abs(nb201_params(nb201, rows) / 1e6 - cost["params_millions"].to_numpy()).max() < 5e-7


def test_params_formula_refuses_other_spaces() -> None:
    with pytest.raises(ValueError, match="not NAS-Bench-201"):
        nb201_params(get_space("darts"), np.zeros((1, get_space("darts").width), dtype=int))


# ----------------------------------------------------------------------------- fit / save / load

@pytest.mark.parametrize("kind", PREDICTOR_KINDS)
def test_fit_save_load_round_trip(nb201, kind: str, tmp_path: Path) -> None:
    table = _table(nb201, 80)
    data = arch_targets(table, nb201, "valid_acc")
    x = features(nb201, np.asarray(data["row"].tolist()))
    y = data["y"].to_numpy()
    model = fit_predictor(kind, x[:60], y[:60], seed=5, params=SMALL.get(kind))
    path = save_predictor(tmp_path / f"{kind}.npz", model, space=nb201, encoding="onehot", metric="valid_acc")
    loaded = load_predictor(path)
    np.testing.assert_allclose(loaded.predict(x[60:]), model.predict(x[60:]), rtol=1e-12, atol=1e-12)
    assert loaded.meta["kind"] == kind and loaded.meta["n_train"] == 60 and loaded.meta["space"] == "nb201"
    with np.load(path, allow_pickle=False) as z:               # a plain numpy archive: no pickled object
        assert all(z[k].dtype != object for k in z.files)
    # same seed, same model
    again = fit_predictor(kind, x[:60], y[:60], seed=5, params=SMALL.get(kind))
    np.testing.assert_array_equal(again.predict(x[60:]), model.predict(x[60:]))


def test_saved_file_errors(nb201, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="does not exist"):
        load_predictor(tmp_path / "missing.npz")
    np.savez(tmp_path / "other.npz", a=np.zeros(3))
    with pytest.raises(ValueError, match="no 'meta' header"):
        load_predictor(tmp_path / "other.npz")
    model = fit_predictor("knn", np.eye(3), np.arange(3.0), seed=0)
    with pytest.raises(ValueError, match=r"\.npz"):
        save_predictor(tmp_path / "p.json", model, space=nb201, encoding="onehot", metric="m")


# ----------------------------------------------------------------------------- the evaluator

def test_predictor_evaluator_scores_a_cell(nb201, tmp_path: Path) -> None:
    table = _table(nb201, 60)
    data = arch_targets(table, nb201, "valid_acc")
    rows = np.asarray(data["row"].tolist())
    model = fit_predictor("rf", features(nb201, rows), data["y"].to_numpy(), seed=1, params=SMALL["rf"])
    path = save_predictor(tmp_path / "rf.npz", model, space=nb201, encoding="onehot", metric="valid_acc")
    ev = EVALUATORS.create("predictor", path=str(path))
    assert isinstance(ev, PredictorEvaluator) and ev.metric_names() == ["predicted_valid_acc"]
    ev.setup(nb201)
    arch = nb201.from_str("|nor_conv_3x3~0|+|nor_conv_3x3~0|skip_connect~1|+|none~0|nor_conv_1x1~1|avg_pool_3x3~2|")
    res = ev.evaluate(arch, budget={}, seed=0)
    assert res.status == "ok" and set(res.metrics) == {"predicted_valid_acc"}
    want = model.predict(features(nb201, np.asarray([arch.indices])))[0]
    assert res.metrics["predicted_valid_acc"] == pytest.approx(want, rel=1e-12)
    assert res.costs["predict_seconds"] >= 0
    named = PredictorEvaluator(str(path), metric="score")
    named.setup(nb201)
    assert set(named.evaluate(arch, budget={}, seed=0).metrics) == {"score"}
    with pytest.raises(ValueError, match="fitted on space 'nb201'"):
        PredictorEvaluator(str(path)).setup(get_space("darts"))


# ----------------------------------------------------------------------------- curves and bad inputs

def test_curves_protocol_and_baselines(nb201) -> None:
    table = _table(nb201, 90)
    kw = dict(metric="valid_acc", sizes=[10, 40], trials=3, predictors=["rf", "knn"], test_size=30,
              predictor_params=SMALL)
    long = predictor_curves(table, nb201, rng=np.random.default_rng(7), **kw)
    assert len(long) == 3 * (1 + 2 * 2)                         # per trial: params + 2 predictors x 2 sizes
    assert set(long["n_train"]) == {0, 10, 40} and (long["k"] == 3).all() and (long["n_test"] == 30).all()
    assert long[long["predictor"] == "params"]["source"].eq("formula").all()
    again = predictor_curves(table, nb201, rng=np.random.default_rng(7), **kw)
    pd.testing.assert_frame_equal(long.drop(columns=["fit_s", "query_s"]), again.drop(columns=["fit_s", "query_s"]))
    summ = summarise_curves(long)
    assert (summ["trials"] == 3).all() and {"tau_mean", "tau_std", "p_at_k_mean"} <= set(summ.columns)
    # with enough data a forest ranks a linear target well
    rf40 = summ[(summ["predictor"] == "rf") & (summ["n_train"] == 40)]["spearman_mean"].iloc[0]
    assert rf40 > 0.5


def test_params_floor_is_perfect_when_the_metric_is_params_and_min_mode_flips(nb201) -> None:
    table = _table(nb201, 60)
    rows = np.asarray([nb201.from_str(a).indices for a in table["arch"]])
    table["metric_p"] = nb201_params(nb201, rows).astype(float)
    long = predictor_curves(table, nb201, metric="p", rng=np.random.default_rng(0), sizes=[10], trials=2,
                            predictors=["knn"], test_size=40)
    base = long[long["predictor"] == "params"]
    assert np.allclose(base[["tau", "spearman", "p_at_k"]].to_numpy(), 1.0)
    table["metric_negp"] = -table["metric_p"]
    flipped = predictor_curves(table, nb201, metric="negp", mode="min", rng=np.random.default_rng(0), sizes=[10],
                               trials=2, predictors=["knn"], test_size=40)
    pd.testing.assert_frame_equal(long.drop(columns=["fit_s", "query_s"]), flipped.drop(columns=["fit_s", "query_s"]))


def test_proxy_columns_of_the_log_are_used(nb201) -> None:
    table = _table(nb201, 50)
    table["metric_zc_synflow"] = table["metric_valid_acc"] * 2.0     # a perfect "proxy" logged by an extra evaluator
    long = predictor_curves(table, nb201, metric="valid_acc", rng=np.random.default_rng(0), sizes=[10], trials=2,
                            predictors=["knn"], test_size=20, proxies=["synflow"], params_floor=False)
    syn = long[long["predictor"] == "synflow"]
    assert syn["source"].eq("log").all() and np.allclose(syn["tau"], 1.0)


def test_bad_inputs_name_the_field(nb201) -> None:
    table = _table(nb201, 40)
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="metric: the table has no column 'test_acc'"):
        predictor_curves(table, nb201, metric="test_acc", rng=rng, sizes=[10], trials=1, test_size=10)
    with pytest.raises(ValueError, match="arch_column"):
        predictor_curves(table.rename(columns={"arch": "cell"}), nb201, metric="valid_acc", rng=rng, sizes=[10])
    with pytest.raises(ValueError, match="needs 60 distinct architectures .* has 40"):
        predictor_curves(table, nb201, metric="valid_acc", rng=rng, sizes=[10, 30], trials=1, test_size=30)
    with pytest.raises(ValueError, match="unknown predictor"):
        predictor_curves(table, nb201, metric="valid_acc", rng=rng, sizes=[10], test_size=10, predictors=["svm"])
    with pytest.raises(ValueError, match="sizes"):
        predictor_curves(table, nb201, metric="valid_acc", rng=rng, sizes=[], test_size=10)
    chain = get_space("mobilenet")
    rows = chain.sample(np.random.default_rng(0), 30)
    chain_table = pd.DataFrame({"arch": [chain.to_str(r) for r in rows], "metric_valid_acc": np.arange(30.0)})
    with pytest.raises(ValueError, match="encoding='path' is not available for space 'mobilenet'"):
        predictor_curves(chain_table, chain, metric="valid_acc", rng=rng, sizes=[10], trials=1, test_size=10,
                         encoding="path", params_floor=False)
    study = {"study": {"objective": "valid_acc"}, "space": {"name": "nb201"}}
    with pytest.raises(ValueError, match=r"\[analysis.predictors\] save"):
        predictors_section(table, {**study, "analysis": {"predictors": {"save": ["svm"]}}}, ".")
    with pytest.raises(ValueError, match=r"\[analysis.predictors\] sizez"):
        predictors_section(table, {"study": {"objective": "valid_acc"}, "space": {"name": "nb201"},
                                   "analysis": {"predictors": {"sizez": [10]}}}, ".")


# ----------------------------------------------------------------------------- the packaged study

def test_predictors_smoke_through_the_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from nasatlas.results import ResultLog
    from nasatlas.studies.cli import main
    monkeypatch.setenv("NB201_TABLE", str(need(NB201_TABLE)))
    out = tmp_path / "pred"
    assert main(["study", "predictors", "--profile", "smoke", "--out", str(out), "--quiet"]) == 0
    df = ResultLog(out / "evaluations").read()
    assert len(df) == 120 and df["arch"].nunique() == 120
    report = (out / "report.md").read_text()
    assert "## Performance predictors" in report and "![predictor curves](predictors.png)" in report
    assert "| params | formula |" in report and "| synflow | computed |" in report
    assert "published (not computed here)" in report and "~0.71" in report
    assert (out / "predictors.png").stat().st_size > 10_000
    long = pd.read_csv(out / "predictors.csv")
    assert set(long["n_train"]) == {0, 10, 30} and long["trial"].nunique() == 3
    ev = PredictorEvaluator(str(out / "predictor_rf.npz"))
    ev.setup(get_space("nb201"))
    arch = get_space("nb201").from_str(df["arch"].iloc[0])
    assert np.isfinite(ev.evaluate(arch, budget={}, seed=0).metrics["predicted_valid_acc"])
    meta = json.loads(json.dumps(load_predictor(out / "predictor_rf.npz").meta))
    assert meta["n_train"] == 120 and meta["encoding"] == "onehot"
