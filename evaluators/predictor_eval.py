"""Performance predictors: fit on logged architectures, save without pickle, score architectures.

The predictor families compared by White, Zela, Ru, Liu & Hutter, "How Powerful are Performance
Predictors in Neural Architecture Search?" (NeurIPS 2021; "White 2021" below), Sec. 3, fitted on a
vector encoding of the architecture (``onehot``, ``adjacency`` or ``path``; :mod:`nasatlas.spaces.encodings`):

=======  ==========================================================================================
kind     model (defaults; every one overridable through ``params``)
=======  ==========================================================================================
rf       ``sklearn.ensemble.RandomForestRegressor``: 100 trees (Breiman 2001), fully grown
gb       ``sklearn.ensemble.GradientBoostingRegressor``: 100 depth-3 trees, learning rate 0.1, squared
         error (Friedman 2001, Algorithm 2)
mlp      an ensemble of ``members`` = 5 ``sklearn.neural_network.MLPRegressor`` (2 ReLU layers of 64,
         Adam, ``max_iter`` 1000), each from its own seed, on standardised targets; the prediction is the
         members' mean (the ensemble of BANANAS, White, Neiswanger & Savani 2021, Sec. 5)
gp       ``sklearn.gaussian_process.GaussianProcessRegressor`` on standardised targets, kernel
         ``c · RBF(ℓ) + white noise`` with c, ℓ and the noise fitted by maximising the log marginal
         likelihood (Rasmussen & Williams 2006, eq. 2.25 for the mean ``k*ᵀ α``, α = (K + σ²I)⁻¹ y, eq. 5.8)
knn      k-nearest-neighbour regression (``n_neighbors`` = 5, Euclidean distance on the encoding, i.e.
         Hamming distance for 0/1 encodings); nasatlas's own :func:`knn_predict`, not scikit-learn's, so that ties are
         handled exactly: the prediction is the mean of the k nearest targets *in expectation over a
         uniformly random order among the training points tied at the k-th distance* (the closer points
         weigh 1, the m tied ones r/m each, r the slots left), which does not depend on the training order
=======  ==========================================================================================

Saved predictors (``save_predictor``/``load_predictor``) are one ``.npz`` file (numpy's own format,
read with ``allow_pickle=False``: no pickle anywhere) holding the exact fitted parameters as float64/int64
arrays and a JSON header (``meta``: kind, space, encoding, metric, mode, feature count, ...). The format, the
reader (:func:`load_predictor`), :class:`LoadedPredictor` and the numpy prediction rules it replays
(:func:`knn_predict`, tree traversal, the MLP forward pass, the GP mean) live in
:mod:`nasatlas.results.predictor_file`, so that searchers, which may not import ``evaluators`` (DESIGN §3),
can load a predictor too (BANANAS' ``warm_start``); they are re-exported here unchanged. Fitting and saving
(scikit-learn) stay in this module: ``save_predictor`` replays the arrays with :class:`LoadedPredictor` on
(up to 256 of) the training encodings before writing and refuses a file that does not reproduce the
in-memory predictor (to 1e-9 of the targets' scale; in practice ~1e-12 relative).

The ``predictor`` evaluator loads such a file and reports ``predicted_<metric>`` (or ``metric``).
"""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from nasatlas.results import EvalResult
from nasatlas.results.predictor_file import (
    ENCODINGS,
    FORMAT,
    FORMAT_VERSION,
    PREDICTOR_KINDS,
    LoadedPredictor,
    knn_predict,
    load_predictor,
)
from nasatlas.results.predictor_file import check_kind as _check_kind
from nasatlas.spaces import Arch, Space

from .base import Evaluator

__all__ = ["PREDICTOR_KINDS", "ENCODINGS", "DEFAULTS", "FittedPredictor", "LoadedPredictor", "PredictorEvaluator",
           "features", "fit_predictor", "save_predictor", "load_predictor", "knn_predict"]

#: default hyper-parameters per kind (``params`` of :func:`fit_predictor` override them)
DEFAULTS: dict[str, dict[str, Any]] = {
    "rf": {"n_estimators": 100},
    "gb": {"n_estimators": 100, "learning_rate": 0.1, "max_depth": 3},
    "mlp": {"members": 5, "hidden_layer_sizes": [64, 64], "max_iter": 1000, "activation": "relu",
            "alpha": 1e-4, "learning_rate_init": 1e-3},
    "gp": {"length_scale": 1.0, "noise_level": 1e-2},
    "knn": {"n_neighbors": 5},
}
_ACTIVATIONS = ("relu", "tanh", "logistic", "identity")


# ----------------------------------------------------------------------------- encodings

def features(space: Space, rows: np.ndarray, encoding: str = "onehot") -> np.ndarray:
    """The float64 ``(n, d)`` encoding predictors are fitted on; a space without that encoding (no graph
    block for ``adjacency``/``path``) raises a ValueError naming ``encoding`` and what to use instead."""
    from nasatlas.spaces.encodings import encode
    if encoding not in ENCODINGS:
        raise ValueError(f"encoding={encoding!r}: allowed encodings are {list(ENCODINGS)}")
    try:
        x = encode(space, np.asarray(rows, dtype=np.int64), encoding)
    except ValueError as e:
        raise ValueError(f"encoding={encoding!r} is not available for space {space.name!r}: {e}") from None
    return np.asarray(x, dtype=np.float64)


# ----------------------------------------------------------------------------- fitting

def _merged(kind: str, params: Mapping[str, Any] | None) -> dict[str, Any]:
    out = dict(DEFAULTS[kind])
    out.update(dict(params or {}))
    if kind == "mlp":
        if isinstance(out["members"], bool) or not isinstance(out["members"], int) or out["members"] < 1:
            raise ValueError(f"mlp: members={out['members']!r}; give an integer >= 1")
        if out["activation"] not in _ACTIVATIONS:
            raise ValueError(f"mlp: activation={out['activation']!r}; allowed: {list(_ACTIVATIONS)}")
    if kind == "knn":
        k = out["n_neighbors"]
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"knn: n_neighbors={k!r}; give an integer >= 1")
    if kind == "gb" and out.get("loss", "squared_error") != "squared_error":
        raise ValueError("gb: only loss='squared_error' is supported (its initial prediction is the mean, which "
                         "the saved format stores); drop loss")
    return out


def _scaling(y: np.ndarray) -> tuple[float, float]:
    mean = float(np.mean(y))
    std = float(np.std(y))
    return mean, (std if std > 0 else 1.0)


class FittedPredictor:
    """A predictor fitted in memory: ``predict`` uses the fitted scikit-learn estimators (k-NN: the
    implementation above); ``arrays`` gives the exact parameters :func:`save_predictor` writes."""

    def __init__(self, kind: str, params: dict[str, Any], models: list[Any], arrays: dict[str, np.ndarray],
                 x_check: np.ndarray, n_train: int) -> None:
        self.kind = kind
        self.params = params
        self.models = models
        self.arrays = arrays
        self.x_check = x_check
        self.n_train = n_train

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Predicted targets of the encodings ``x`` (``(n, d)``)."""
        x = np.asarray(x, dtype=np.float64)
        a = self.arrays
        if self.kind == "knn":
            return knn_predict(a["x_train"], a["y_train"], x, int(a["k"]))
        if self.kind in ("rf", "gb"):
            return np.asarray(self.models[0].predict(x), dtype=np.float64)
        if self.kind == "mlp":
            total = np.zeros(len(x))
            for m in self.models:
                total += m.predict(x)
            return (total / len(self.models)) * float(a["y_std"]) + float(a["y_mean"])
        # gp
        return np.asarray(self.models[0].predict(x), dtype=np.float64) * float(a["y_std"]) + float(a["y_mean"])


def _tree_arrays(trees: Sequence[Any]) -> dict[str, np.ndarray]:
    ts = [t.tree_ for t in trees]
    sizes = np.asarray([t.node_count for t in ts], dtype=np.int64)
    return {
        "tree_offsets": np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64),
        "left": np.concatenate([t.children_left for t in ts]).astype(np.int64),
        "right": np.concatenate([t.children_right for t in ts]).astype(np.int64),
        "feature": np.concatenate([t.feature for t in ts]).astype(np.int64),
        "threshold": np.concatenate([t.threshold for t in ts]).astype(np.float64),
        "value": np.concatenate([t.value.reshape(t.node_count, -1)[:, 0] for t in ts]).astype(np.float64),
    }


def fit_predictor(kind: str, x: np.ndarray, y: np.ndarray, *, seed: int,
                  params: Mapping[str, Any] | None = None) -> FittedPredictor:
    """Fit one predictor on encodings ``x`` ``(n, d)`` and targets ``y`` ``(n,)``.

    ``seed`` seeds every random choice of the fit (bootstrap samples, initial weights, the mlp members'
    seeds drawn from ``default_rng(seed)``); ``params`` override :data:`DEFAULTS`. scikit-learn's
    ``ConvergenceWarning`` (an MLP or a GP optimiser stopping at its iteration limit or a bound) is
    silenced: the fitted model is used as it is.
    """
    _check_kind(kind)
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64).ravel()
    if x.ndim != 2 or len(x) != len(y):
        raise ValueError(f"{kind}: x must be (n, d) and y (n,), got {x.shape} and {y.shape}")
    if len(y) < 2:
        raise ValueError(f"{kind}: {len(y)} training architecture(s); a predictor needs at least 2")
    if not np.isfinite(y).all() or not np.isfinite(x).all():
        raise ValueError(f"{kind}: training data has NaN or inf values; drop those architectures first")
    p = _merged(kind, params)
    seed = int(seed) % (2**32)
    from sklearn.exceptions import ConvergenceWarning
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        models: list[Any]
        if kind == "knn":
            models = []
            arrays = {"x_train": x.copy(), "y_train": y.copy(), "k": np.asarray(p["n_neighbors"], dtype=np.int64)}
        elif kind == "rf":
            from sklearn.ensemble import RandomForestRegressor
            rf = RandomForestRegressor(random_state=seed, n_jobs=1, **p).fit(x, y)
            models, arrays = [rf], _tree_arrays(rf.estimators_)
        elif kind == "gb":
            from sklearn.ensemble import GradientBoostingRegressor
            gb = GradientBoostingRegressor(random_state=seed, **p).fit(x, y)
            arrays = _tree_arrays(gb.estimators_[:, 0])
            arrays["init"] = np.asarray(float(np.ravel(gb.init_.constant_)[0]))
            arrays["learning_rate"] = np.asarray(float(gb.learning_rate))
            models = [gb]
        elif kind == "mlp":
            from sklearn.neural_network import MLPRegressor
            mean, std = _scaling(y)
            member_seeds = np.random.default_rng(seed).integers(0, 2**31 - 1, size=int(p["members"]))
            kw = {k: (tuple(v) if k == "hidden_layer_sizes" else v) for k, v in p.items() if k != "members"}
            models = [MLPRegressor(random_state=int(s), **kw).fit(x, (y - mean) / std) for s in member_seeds]
            arrays = {"y_mean": np.asarray(mean), "y_std": np.asarray(std), "members": np.asarray(len(models))}
            for i, m in enumerate(models):
                arrays[f"layers_{i}"] = np.asarray(len(m.coefs_))
                for j, (w, b) in enumerate(zip(m.coefs_, m.intercepts_)):
                    arrays[f"w_{i}_{j}"] = np.asarray(w, dtype=np.float64)
                    arrays[f"b_{i}_{j}"] = np.asarray(b, dtype=np.float64)
        else:  # gp
            from sklearn.gaussian_process import GaussianProcessRegressor
            from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel
            mean, std = _scaling(y)
            extra = {k: v for k, v in p.items() if k not in ("length_scale", "noise_level")}
            kernel = (ConstantKernel(1.0, (1e-3, 1e3)) * RBF(float(p["length_scale"]), (1e-2, 1e3))
                      + WhiteKernel(float(p["noise_level"]), (1e-6, 1e1)))
            gp = GaussianProcessRegressor(kernel=kernel, normalize_y=False, random_state=seed, **extra)
            gp.fit(x, (y - mean) / std)
            k = gp.kernel_
            arrays = {"x_train": x.copy(), "alpha": np.asarray(gp.alpha_, dtype=np.float64).ravel(),
                      "constant": np.asarray(float(k.k1.k1.constant_value)),
                      "length_scale": np.asarray(float(k.k1.k2.length_scale)),
                      "noise_level": np.asarray(float(k.k2.noise_level)),
                      "y_mean": np.asarray(mean), "y_std": np.asarray(std)}
            models = [gp]
    return FittedPredictor(kind, p, models, arrays, x[: min(len(x), 256)].copy(), len(y))


# ----------------------------------------------------------------------------- save (load: results/predictor_file.py)

def save_predictor(path: str | Path, predictor: FittedPredictor, *, space: Space, encoding: str, metric: str,
                   mode: str = "max", extra: Mapping[str, Any] | None = None) -> Path:
    """Write ``predictor`` to ``path`` (``.npz``, no pickle; see the module docstring).

    Before writing, the arrays are replayed by :class:`LoadedPredictor` on (up to 256 of) the training
    encodings and compared with the in-memory predictions; a mismatch beyond 1e-9 (relative to the
    targets' scale) is a ValueError, so a file that is written reproduces its predictor.
    """
    import sklearn
    p = Path(path)
    if p.suffix != ".npz":
        raise ValueError(f"save_predictor: path={str(p)!r} must end in .npz (numpy's format, read without pickle)")
    meta = {"format": FORMAT, "version": FORMAT_VERSION, "kind": predictor.kind, "params": predictor.params,
            "space": space.name, "space_width": int(space.width), "encoding": encoding,
            "n_features": int(predictor.x_check.shape[1]), "metric": metric, "mode": mode,
            "n_train": int(predictor.n_train), "sklearn_version": sklearn.__version__, **dict(extra or {})}
    loaded = LoadedPredictor(json.loads(json.dumps(meta)), predictor.arrays)
    want, got = predictor.predict(predictor.x_check), loaded.predict(predictor.x_check)
    scale = max(1.0, float(np.max(np.abs(want))) if len(want) else 1.0)
    if not np.allclose(got, want, rtol=0, atol=1e-9 * scale):
        raise ValueError(f"save_predictor: the saved {predictor.kind!r} arrays do not reproduce the fitted model "
                         f"(max difference {float(np.max(np.abs(got - want))):.3g}); a parameter outside the "
                         "supported set changes its prediction rule: drop it")
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(p.name + ".tmp.npz")
    arrays: dict[str, Any] = {"meta": np.asarray(json.dumps(meta, sort_keys=True)), **predictor.arrays}
    np.savez_compressed(tmp, **arrays)
    tmp.replace(p)
    return p


# ----------------------------------------------------------------------------- the evaluator

class PredictorEvaluator(Evaluator):
    """Score architectures with a saved predictor (no training, no table).

    Args:
        path: a ``.npz`` file written by :func:`save_predictor` (the ``predictors`` analysis writes
            ``predictor_<kind>.npz`` into its run directory).
        metric: the metric name to report (default ``predicted_<metric the predictor was fitted on>``).

    ``setup`` loads the file and checks that it was fitted on this space (name and encoding width).
    ``evaluate`` reports the prediction and ``cost_predict_seconds``.
    """

    def __init__(self, path: str, metric: str | None = None) -> None:
        self.path = path
        self.metric = metric

    def _metric(self, meta: Mapping[str, Any]) -> str:
        return self.metric or f"predicted_{meta['metric']}"

    def metric_names(self) -> list[str]:
        return [self._metric(load_predictor(self.path).meta)]

    def setup(self, space: Space) -> None:
        super().setup(space)
        self.predictor = load_predictor(self.path)
        meta = self.predictor.meta
        if meta["space"] != space.name:
            raise ValueError(f"predictor: {self.path!r} was fitted on space {meta['space']!r}, not {space.name!r}; "
                             "fit one on this space (the predictors analysis) or change [space]")
        width = features(space, space.sample(np.random.default_rng(0), 1), meta["encoding"]).shape[1]
        if width != int(meta["n_features"]):
            raise ValueError(f"predictor: {self.path!r} expects {meta['n_features']} {meta['encoding']} features but "
                             f"space {space.name!r} gives {width}; the space's declaration differs from the one "
                             "the predictor was fitted on")
        self._name = self._metric(meta)

    def predict_rows(self, rows: np.ndarray) -> np.ndarray:
        """Predictions for many architectures at once (rows of decision indices)."""
        if not hasattr(self, "predictor"):
            raise RuntimeError("predictor: call setup(space) before predicting")
        return self.predictor.predict(features(self.space, rows, self.predictor.meta["encoding"]))

    def evaluate(self, arch: Arch, *, budget: Mapping[str, Any], seed: int, device: str = "cpu") -> EvalResult:
        t0 = time.perf_counter()
        value = float(self.predict_rows(np.asarray([arch.indices], dtype=np.int64))[0])
        seconds = time.perf_counter() - t0
        if not np.isfinite(value):
            return EvalResult.failed(f"predictor: non-finite prediction {value!r}", budget=dict(budget))
        return EvalResult(status="ok", metrics={self._name: value}, costs={"predict_seconds": seconds},
                          budget=dict(budget))
