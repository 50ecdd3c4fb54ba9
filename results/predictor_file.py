"""Saved performance predictors: the file format, the reader and the numpy prediction rules.

A predictor saved by :func:`nasatlas.evaluators.predictor_eval.save_predictor` is one ``.npz`` file
(numpy's own format, read here with ``allow_pickle=False``: no pickle anywhere) holding the exact fitted
parameters as float64/int64 arrays and a JSON header (``meta``: format, version, kind, space, encoding,
metric, mode, feature count, ...):

* rf/gb: every tree's ``left``/``right`` children, split ``feature``, ``threshold`` and leaf ``value``
  (concatenated, ``tree_offsets`` marking each tree's first node), plus gb's ``init`` constant and
  ``learning_rate``;
* mlp: every member's weight matrices ``w_<member>_<layer>`` and biases ``b_<member>_<layer>``, the
  activation (``meta["params"]``) and the target scaling ``y_mean``/``y_std``;
* gp: the training encodings ``x_train``, ``alpha``, the kernel's ``constant`` and ``length_scale`` and the
  target scaling; knn: the training set ``x_train``/``y_train`` and ``k``.

:class:`LoadedPredictor` predicts from those arrays alone, replaying scikit-learn's arithmetic:

* trees (Breiman 2001; Friedman 2001, Algorithm 2): go left when ``x ≤ threshold`` on the float32 input;
  a forest's prediction is the mean of its trees accumulated tree by tree, boosting's is
  ``init + Σ_m lr · tree_m(x)`` stage by stage;
* mlp: the forward pass ``h_{j+1} = act(h_j W_j + b_j)`` with a linear last layer, averaged over the ensemble's
  members (White, Neiswanger & Savani 2021, BANANAS, Sec. 5) and mapped back through the target scaling;
* gp: the posterior mean ``k*ᵀ α`` (Rasmussen & Williams 2006, eq. 2.25) with the RBF kernel
  ``c · exp(-|x - x'|² / 2ℓ²)``; the white-noise term adds nothing off the training points;
* knn: :func:`knn_predict`, the mean of the k nearest targets in expectation over the order of the points
  tied at the k-th distance.

This module lives in ``results/`` because it is a file format every layer reads: evaluators (the
``predictor`` evaluator) and searchers (BANANAS' ``warm_start``) load predictors through it, while fitting and
saving (scikit-learn) stay in ``evaluators/``. It imports numpy at module level and scipy's ``cdist`` (a core
dependency) inside the k-NN and GP rules; no other nasatlas package, no scikit-learn, no pickle.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["FORMAT", "FORMAT_VERSION", "PREDICTOR_KINDS", "ENCODINGS", "LoadedPredictor", "load_predictor",
           "knn_predict", "check_kind"]

PREDICTOR_KINDS: tuple[str, ...] = ("rf", "gb", "mlp", "gp", "knn")
ENCODINGS: tuple[str, ...] = ("onehot", "adjacency", "path")
FORMAT = "nasatlas-predictor"
FORMAT_VERSION = 1


def check_kind(kind: str) -> None:
    """ValueError unless ``kind`` is one of :data:`PREDICTOR_KINDS`."""
    if kind not in PREDICTOR_KINDS:
        raise ValueError(f"predictor {kind!r} is not known; known predictors: {list(PREDICTOR_KINDS)}")


# ----------------------------------------------------------------------------- k-NN (exact ties)

def knn_predict(x_train: np.ndarray, y_train: np.ndarray, x: np.ndarray, k: int) -> np.ndarray:
    """Mean target of the ``k`` nearest training points (Euclidean), in expectation over a uniformly
    random order of the points tied at the k-th smallest distance: the closer points weigh 1, the ``m``
    tied ones ``r/m`` each (``r`` the slots left), so the result does not depend on the training order."""
    from scipy.spatial.distance import cdist
    xt = np.asarray(x_train, dtype=np.float64)
    yt = np.asarray(y_train, dtype=np.float64)
    k = min(int(k), len(yt))
    d = cdist(np.asarray(x, dtype=np.float64), xt, metric="sqeuclidean")
    kth = np.partition(d, k - 1, axis=1)[:, k - 1:k]            # the k-th smallest distance per query
    closer = d < kth
    tied = d == kth
    n_closer = closer.sum(axis=1)
    share = (k - n_closer) / tied.sum(axis=1)                    # r / m: each tied point's chance to be drawn
    out: np.ndarray = (closer @ yt + share * (tied @ yt)) / k
    return out


# ----------------------------------------------------------------------------- trees and networks

def _trees_predict(a: Mapping[str, np.ndarray], x: np.ndarray, tree: int) -> np.ndarray:
    """Leaf value of tree ``tree`` for every row of ``x`` (scikit-learn's rule: left when x ≤ threshold,
    on the float32 input)."""
    off = int(a["tree_offsets"][tree])
    left, right = a["left"], a["right"]
    feat, thr = a["feature"], a["threshold"]
    xf = x.astype(np.float32)
    node = np.full(len(x), off, dtype=np.int64)
    rows = np.arange(len(x))
    active = left[node] != -1
    while active.any():
        n = node[active]
        go_left = xf[rows[active], feat[n]] <= thr[n]
        node[active] = np.where(go_left, left[n], right[n]) + off
        active = left[node] != -1
    out: np.ndarray = a["value"][node]
    return out


def _activate(h: np.ndarray, name: str) -> np.ndarray:
    if name == "relu":
        return np.maximum(h, 0)
    if name == "tanh":
        return np.tanh(h)
    if name == "logistic":
        out: np.ndarray = 1.0 / (1.0 + np.exp(-h))
        return out
    return h


class LoadedPredictor:
    """A saved predictor: ``meta`` (the JSON header) and ``arrays``; ``predict`` uses numpy (and scipy's
    ``cdist`` for k-NN and GP) only."""

    def __init__(self, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        self.meta = meta
        self.arrays = arrays
        self.kind = str(meta["kind"])

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Predicted targets of the encodings ``x`` (``(n, d)``, ``d`` = ``meta["n_features"]``)."""
        x = np.asarray(x, dtype=np.float64)
        d = int(self.meta["n_features"])
        if x.ndim != 2 or x.shape[1] != d:
            raise ValueError(f"predictor {self.kind!r} takes ({d})-wide {self.meta['encoding']} encodings; got "
                             f"shape {x.shape}")
        a = self.arrays
        if self.kind == "knn":
            return knn_predict(a["x_train"], a["y_train"], x, int(a["k"]))
        if self.kind == "rf":
            n_trees = len(a["tree_offsets"]) - 1
            total = np.zeros(len(x))
            for t in range(n_trees):
                total += _trees_predict(a, x, t)
            return total / n_trees
        if self.kind == "gb":
            raw = np.full(len(x), float(a["init"]))
            lr = float(a["learning_rate"])
            for t in range(len(a["tree_offsets"]) - 1):
                raw += lr * _trees_predict(a, x, t)
            return raw
        if self.kind == "mlp":
            act = str(self.meta["params"].get("activation", "relu"))
            members = int(a["members"])
            total = np.zeros(len(x))
            for i in range(members):
                h = x
                n_layers = int(a[f"layers_{i}"])
                for j in range(n_layers):
                    h = h @ a[f"w_{i}_{j}"] + a[f"b_{i}_{j}"]
                    if j < n_layers - 1:
                        h = _activate(h, act)
                total += h[:, 0]
            return (total / members) * float(a["y_std"]) + float(a["y_mean"])
        if self.kind == "gp":
            from scipy.spatial.distance import cdist
            ls = float(a["length_scale"])
            k_star = float(a["constant"]) * np.exp(-0.5 * cdist(x / ls, a["x_train"] / ls, metric="sqeuclidean"))
            out: np.ndarray = (k_star @ a["alpha"]) * float(a["y_std"]) + float(a["y_mean"])
            return out
        raise ValueError(f"saved predictor kind {self.kind!r} is not known; known: {list(PREDICTOR_KINDS)}")


# ----------------------------------------------------------------------------- the reader

def load_predictor(path: str | Path) -> LoadedPredictor:
    """Read a file written by ``save_predictor`` (``allow_pickle=False``).

    Raises:
        ValueError: the file does not exist, has no ``meta`` header, is another format or version, or
            names an unknown predictor kind.
    """
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"predictor: path={str(p)!r} does not exist; give a .npz file written by save_predictor "
                         "(e.g. the predictor_rf.npz of a run with the predictors analysis)")
    try:
        z = np.load(p, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise ValueError(f"predictor: {str(p)!r} is not a numpy .npz archive ({e}); give a file written by "
                         "save_predictor") from None
    if isinstance(z, np.ndarray):
        raise ValueError(f"predictor: {str(p)!r} is a single .npy array, not a .npz archive; give a file written by "
                         "save_predictor")
    with z:
        if "meta" not in z.files:
            raise ValueError(f"predictor: {str(p)!r} has no 'meta' header; it was not written by save_predictor")
        meta = json.loads(str(z["meta"]))
        arrays = {k: z[k] for k in z.files if k != "meta"}
    if meta.get("format") != FORMAT or int(meta.get("version", -1)) != FORMAT_VERSION:
        raise ValueError(f"predictor: {str(p)!r} is format {meta.get('format')!r} v{meta.get('version')}; this "
                         f"nasatlas reads {FORMAT!r} v{FORMAT_VERSION}")
    check_kind(str(meta.get("kind")))
    return LoadedPredictor(meta, arrays)
