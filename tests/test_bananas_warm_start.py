"""BANANAS started from a saved predictor (``warm_start``): the initial proposals are the predictor's
best-ranked cells of a seeded pool, they beat uniform random initial proposals on the real NAS-Bench-201
table, runs reproduce and resume, bad files are refused, and the searcher still never imports
``nasatlas.evaluators``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from nasatlas.evaluators.predictor_eval import features, fit_predictor, load_predictor, save_predictor
from nasatlas.results import EvalResult
from nasatlas.searchers.bananas import Bananas
from nasatlas.spaces import get_space
from nasatlas.spaces.encodings import encode

from .conftest import NB201_TABLE, need

pytestmark = pytest.mark.usefixtures("one_torch_thread")

NB201 = get_space("nb201")
METRIC = "valid_acc"
N_TRAIN = 200


@pytest.fixture(scope="module")
def table() -> dict[str, float]:
    """arch string -> mean CIFAR-10 validation accuracy of the real NB201 table (15,625 cells)."""
    df = pd.read_parquet(need(NB201_TABLE), columns=["arch", METRIC])
    return dict(zip(df["arch"], df[METRIC].astype(float)))


def _fit_and_save(table: dict[str, float], path: Path, kind: str, encoding: str, params: dict[str, Any] | None,
                  seed: int = 11) -> Path:
    """Fit ``kind`` on ``N_TRAIN`` random table cells (their ``encoding``) and save it."""
    rows = np.unique(NB201.sample(np.random.default_rng(seed), 3 * N_TRAIN), axis=0)[:N_TRAIN]
    y = np.asarray([table[NB201.to_str(r)] for r in rows])
    model = fit_predictor(kind, features(NB201, rows, encoding), y, seed=seed, params=params)
    return save_predictor(path, model, space=NB201, encoding=encoding, metric=METRIC, mode="max")


@pytest.fixture(scope="module")
def rf_path(table: dict[str, float], tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _fit_and_save(table, tmp_path_factory.mktemp("pred") / "rf.npz", "rf", "onehot", {"n_estimators": 30})


def _started(seed: int, objective: str = METRIC, mode: str = "max", **params: Any) -> Bananas:
    s = Bananas(**{"n_init": 10, "n_candidates": 100, **params})
    s.start(NB201, np.random.default_rng(seed), objective=objective, mode=mode)
    return s


def _predictions(path: Path, rows: list[tuple[int, ...]]) -> np.ndarray:
    pred = load_predictor(path)
    return pred.predict(encode(NB201, np.asarray(rows, dtype=np.int64), pred.meta["encoding"]))


# ----------------------------------------------------------------------------- the ranking

@pytest.mark.parametrize("kind,encoding,params", [("rf", "onehot", {"n_estimators": 30}), ("knn", "path", None)])
def test_first_proposals_are_the_predictors_top_of_the_pool(table: dict[str, float], tmp_path: Path, kind: str,
                                                           encoding: str, params: dict[str, Any] | None) -> None:
    path = _fit_and_save(table, tmp_path / f"{kind}.npz", kind, encoding, params)
    s = _started(0, warm_start=str(path))
    pool = s.warm_ranked
    assert len(pool) == 100 and len({NB201.canonical_id(np.asarray(r)) for r in pool}) == 100  # distinct cells
    props = s.ask(10)
    assert [p.row for p in props] == pool[:10]
    pool_pred = _predictions(path, pool)
    assert np.all(np.diff(pool_pred) <= 0)                      # the pool is ranked best (highest) first
    np.testing.assert_allclose(_predictions(path, [p.row for p in props]), np.sort(pool_pred)[::-1][:10])
    # the file's encoding is used for the pool, whatever the ensemble's own encoding is
    assert s.encoding_used == "path"


def test_warm_start_beats_random_initial_proposals(table: dict[str, float], rf_path: Path) -> None:
    warm: list[float] = []
    cold: list[float] = []
    for seed in range(5):
        for out, ws in ((warm, str(rf_path)), (cold, None)):
            s = _started(seed, warm_start=ws)
            out.append(float(np.mean([table[NB201.to_str(p.row)] for p in s.ask(10)])))
    # the predictor's top 10 of 100 random cells against 10 uniform random cells, by the real table
    assert np.mean(warm) > np.mean(cold) + 3.0, (warm, cold)
    assert sum(w > c for w, c in zip(warm, cold)) >= 4, (warm, cold)


def test_direction_follows_the_searchers_mode_on_its_own_metric(rf_path: Path) -> None:
    best_first = _started(2, warm_start=str(rf_path)).warm_ranked
    worst_first = _started(2, mode="min", warm_start=str(rf_path))        # same pool, minimising valid_acc
    assert set(worst_first.warm_ranked) == set(best_first)
    assert np.all(np.diff(_predictions(rf_path, worst_first.warm_ranked)) >= 0)
    # a predictor of another metric is a proxy used in its own direction (the file's mode 'max')
    proxy = _started(2, objective="test_error", mode="min", warm_start=str(rf_path)).warm_ranked
    assert proxy == best_first


# ----------------------------------------------------------------------------- reproducibility, resume, the rest

def test_same_seed_same_proposals_and_resume(rf_path: Path) -> None:
    rows = [[p.row for p in _started(3, warm_start=str(rf_path)).ask(10)] for _ in range(2)]
    assert rows[0] == rows[1]
    assert [p.row for p in _started(4, warm_start=str(rf_path)).ask(10)] != rows[0]
    a = _started(3, warm_start=str(rf_path))
    first = a.ask(4)
    state = json.loads(json.dumps(a.state_dict()))
    b = _started(99, warm_start=str(rf_path))                 # another pool, replaced by the state
    b.load_state_dict(state)
    assert [p.row for p in b.ask(6)] == [p.row for p in a.ask(6)] == rows[0][4:]
    assert [p.row for p in first] == rows[0][:4]


def test_cold_start_state_is_unchanged_and_the_search_continues(table: dict[str, float], rf_path: Path) -> None:
    assert "warm_ranked" not in _started(0).state_dict() and Bananas().params()["warm_start"] is None
    s = _started(5, n_init=5, k=3, epochs=5, warm_start=str(rf_path))
    seen = []
    for _ in range(11):
        (p,) = s.ask(1)
        s.tell(p, EvalResult(status="ok", metrics={METRIC: table[NB201.to_str(p.row)]}))
        seen.append(p.row)
    assert seen[:5] == s.warm_ranked[:5] and s.n_fits >= 1    # then BANANAS proper, on the told results
    assert len({NB201.canonical_id(np.asarray(r)) for r in seen}) == 11


# ----------------------------------------------------------------------------- bad files

def test_bad_files_name_warm_start(rf_path: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="warm_start=.*does not exist"):
        _started(0, warm_start=str(tmp_path / "missing.npz"))
    np.savez(tmp_path / "other.npz", a=np.zeros(3))
    with pytest.raises(ValueError, match="warm_start=.*no 'meta' header"):
        _started(0, warm_start=str(tmp_path / "other.npz"))
    (tmp_path / "text.npz").write_text("not an archive")
    with pytest.raises(ValueError, match="warm_start=.*not a numpy .npz archive"):
        _started(0, warm_start=str(tmp_path / "text.npz"))
    with pytest.raises(ValueError, match="warm_start=123"):
        _started(0, warm_start=123)
    darts = get_space("darts")
    rows = darts.sample(np.random.default_rng(0), 8)
    model = fit_predictor("knn", features(darts, rows), np.arange(8.0), seed=0)
    other = save_predictor(tmp_path / "darts.npz", model, space=darts, encoding="onehot", metric=METRIC)
    with pytest.raises(ValueError, match="warm_start=.*fitted on space 'darts', not 'nb201'"):
        _started(0, warm_start=str(other))
    # a file whose header names an encoding the predictor was not fitted on: the widths disagree
    rows = NB201.sample(np.random.default_rng(1), 10)
    model = fit_predictor("knn", features(NB201, rows), np.arange(10.0), seed=0)
    wrong = save_predictor(tmp_path / "wrong.npz", model, space=NB201, encoding="path", metric=METRIC)
    with pytest.raises(ValueError, match="warm_start=.*expects 30 path features but space 'nb201' gives 84"):
        _started(0, warm_start=str(wrong))


def test_bananas_does_not_import_evaluators() -> None:
    code = ("import sys, nasatlas.searchers.bananas; "
            "bad = sorted(m for m in sys.modules if m.startswith('nasatlas.evaluators')); "
            "assert not bad, bad")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
