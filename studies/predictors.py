"""How well do performance predictors rank held-out architectures, against how many training cells?

The protocol of White, Zela, Ru, Liu & Hutter, "How Powerful are Performance Predictors in Neural
Architecture Search?" (NeurIPS 2021; "White 2021"), Sec. 4, on any table with an architecture column and
a metric (a run's log, or a benchmark table):

* the architectures are the table's distinct architectures, each with the mean of its metric values;
* each of ``trials`` trials draws, from its own generator (spawned from the one passed in), a random
  permutation: the first ``test_size`` architectures are held out, and the training set of size n is the
  next n (nested across sizes within a trial, so that a curve compares sizes on the same test set);
* learned predictors (:mod:`nasatlas.evaluators.predictor_eval`: random forest, gradient boosting, an
  MLP ensemble, a Gaussian process, k-NN) are fitted on the chosen encoding of the training set and
  scored on the held-out set; zero-training baselines are scored on the same held-out sets: the
  parameter count (the floor every predictor must beat) and zero-cost proxies
  (:mod:`nasatlas.evaluators.proxy`), read from the log where it has them, else computed at
  initialisation on a small network for the held-out cells only.

Scores (all on "goodness" g = metric for ``mode="max"``, -metric for ``"min"``; a predictor's goodness is
its prediction, or minus it for ``"min"``; a baseline's is its value, larger = better architecture):

* Kendall's τ_b (Kendall 1945, ties in either ranking corrected): (P - Q) / sqrt((P + Q + T_x)(P + Q + T_y)),
  P/Q the concordant/discordant pairs, T_x/T_y the pairs tied in one ranking only (``scipy.stats.kendalltau``);
* Spearman's ρ: Pearson's correlation of the average ranks (``scipy.stats.spearmanr``);
* precision@K: the fraction of the true top-K that is among the predicted top-K,
  K = ceil(``top_fraction`` · n_test). Ties in the prediction at the K-th place (a parameter count has only
  28 distinct values on NB201) are resolved in expectation: under a uniformly random order among the m
  items tied at the boundary, each is in the predicted top-K with probability r/m (r = slots left). In the
  truth, every architecture at least as good as the K-th best is a top-K member (for distinct values:
  exactly the top K; a prediction equal to the truth scores 1). So P@K = Σ_i t_i p_i / K, t_i ∈ {0, 1},
  p_i = 1 above the predicted boundary, r/m on it, 0 below: exact and deterministic. Its value for a
  random ranking is K/n_test (distinct true values).

Non-finite baseline values (``jacob_cov`` is NaN on a cell whose output ignores its input) rank last.

The parameter count of an NB201 cell depends only on its numbers n3 of ``nor_conv_3x3`` and n1 of
``nor_conv_1x1`` edges (every op is instantiated, connected or not; pools, skips and zeros have no
parameters). With C the first stage's channels, c_s = C·2^s (s = 0, 1, 2), N cells per stage and k classes:

    params = 29C + Σ_{s=1,2} (9 c_{s-1} c_s + 9 c_s² + c_{s-1} c_s + 4 c_s) + 2 c_2 + (c_2 + 1) k
             + N Σ_s [n3 (9 c_s² + 2 c_s) + n1 (c_s² + 2 c_s)]

(stem conv + BN; the two residual reduction blocks; the last BN and the classifier; per conv edge a
k×k conv without bias and an affine BN). :func:`nb201_params` evaluates it vectorised and checks it against
``cost_report`` on one cell per call; on other spaces :func:`arch_params` builds each network
(``cost_report``).
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from nasatlas.evaluators.predictor_eval import (
    ENCODINGS,
    PREDICTOR_KINDS,
    features,
    fit_predictor,
    save_predictor,
)

__all__ = ["kendall_tau", "spearman", "precision_at_k", "top_k_inclusion", "top_k_size", "nb201_params", "arch_params",
           "arch_targets", "proxy_scores", "predictor_curves", "summarise_curves",
           "params_correlation", "fit_and_save", "plot_curves", "predictors_section", "REFERENCES"]

#: published reference points (NB201 CIFAR-10, validation accuracy), shown beside the computed values;
#: never computed here
REFERENCES = {
    "rf_tau_1000": (0.7, "random forest on one-hot encodings, Kendall τ at 1,000 training cells (White et al. "
                         "2021, NeurIPS, 'How Powerful are Performance Predictors in NAS?')"),
    "params_spearman": (0.71, "#params alone, Spearman ρ against valid_acc (zero-cost-proxy baselines: "
                              "Abdelfattah et al. 2021, ICLR; White et al. 2022, ICLR blog track)"),
}


# ----------------------------------------------------------------------------- ranking scores

def _pair(y_true: Any, y_pred: Any) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(y_true, dtype=np.float64).ravel()
    b = np.asarray(y_pred, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise ValueError(f"y_true has {a.size} values but y_pred has {b.size}")
    if a.size < 2:
        raise ValueError(f"ranking scores need at least 2 architectures, got {a.size}")
    if np.isnan(a).any() or np.isnan(b).any():
        raise ValueError("NaN in the values to rank; map undefined scores to -inf (rank last) first")
    return a, b


def kendall_tau(y_true: Any, y_pred: Any) -> float:
    """Kendall's τ_b between two score vectors (NaN when either is constant)."""
    from scipy.stats import kendalltau
    a, b = _pair(y_true, y_pred)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(kendalltau(a, b).statistic)


def spearman(y_true: Any, y_pred: Any) -> float:
    """Spearman's ρ (average ranks for ties; NaN when either vector is constant)."""
    from scipy.stats import spearmanr
    a, b = _pair(y_true, y_pred)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(spearmanr(a, b).statistic)


def top_k_inclusion(scores: np.ndarray, k: int) -> np.ndarray:
    """Probability that each item is among the k largest, under a uniformly random order of ties."""
    kth = np.sort(scores)[::-1][k - 1]
    above = scores > kth
    tied = scores == kth
    p = above.astype(np.float64)
    p[tied] = (k - int(above.sum())) / int(tied.sum())
    return p


def precision_at_k(y_true: Any, y_pred: Any, k: int) -> float:
    """Expected fraction of the predicted top-``k`` (largest ``y_pred``, ties at the k-th place broken
    uniformly at random) that is in the true top-``k`` (every ``y_true`` at least the k-th largest); see the
    module docstring. 1 <= k <= n."""
    a, b = _pair(y_true, y_pred)
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or not 1 <= k <= a.size:
        raise ValueError(f"precision@K: K={k!r} must be an integer between 1 and the {a.size} architectures ranked")
    true_top = a >= np.sort(a)[::-1][int(k) - 1]
    return float(np.dot(true_top, top_k_inclusion(b, int(k))) / k)


def top_k_size(n: int, fraction: float) -> int:
    """K = ceil(fraction · n), at least 1."""
    if not 0 < fraction <= 1:
        raise ValueError(f"top_fraction={fraction!r} must lie in (0, 1], e.g. 0.1 for the top 10%")
    return max(1, math.ceil(fraction * n - 1e-9))


# ----------------------------------------------------------------------------- parameter counts

def nb201_params(space: Any, rows: np.ndarray, net: str | Mapping[str, Any] | None = None) -> np.ndarray:
    """Exact parameter counts of NB201 cells' networks (module docstring formula), int64 per row.

    ``net``: a preset (default: the paper's C=16, N=5 CIFAR network) or overrides. The formula is checked
    against :func:`nasatlas.spaces.build.cost_report` on the first row (a ValueError if they differ).
    """
    from nasatlas.spaces.build import cost_report
    from nasatlas.spaces.nets.nb201_net import NB201_OPS
    if getattr(space, "family", None) != "nb201" or any(tuple(d.choices) != NB201_OPS for d in space.decisions):
        raise ValueError(f"nb201_params: space {space.name!r} is not NAS-Bench-201 (6 edges over {list(NB201_OPS)}); "
                         "use arch_params, which builds each network")
    rows = np.asarray(rows, dtype=np.int64).reshape(-1, space.width)
    if len(rows) == 0:
        return np.zeros(0, dtype=np.int64)
    check = cost_report(space, rows[0], net, macs=False)
    cfg = check["net"]
    c0, n_cells, k = int(cfg["C"]), int(cfg["N"]), int(cfg["num_classes"])
    cs = [c0 * 2**s for s in range(3)]
    base = 29 * c0 + sum(9 * cs[s - 1] * cs[s] + 9 * cs[s] ** 2 + cs[s - 1] * cs[s] + 4 * cs[s] for s in (1, 2))
    base += 2 * cs[2] + (cs[2] + 1) * k
    per3 = n_cells * sum(9 * c * c + 2 * c for c in cs)
    per1 = n_cells * sum(c * c + 2 * c for c in cs)
    n3 = (rows == NB201_OPS.index("nor_conv_3x3")).sum(axis=1)
    n1 = (rows == NB201_OPS.index("nor_conv_1x1")).sum(axis=1)
    out: np.ndarray = (base + per3 * n3 + per1 * n1).astype(np.int64)
    if int(out[0]) != int(check["params"]):
        raise ValueError(f"nb201_params: the formula gives {int(out[0])} but the built network has {check['params']} "
                         f"parameters for {check['arch']} with net {cfg}; the NB201 network changed: fix the formula")
    return out


def arch_params(space: Any, rows: np.ndarray, net: str | Mapping[str, Any] | None = None) -> np.ndarray:
    """Parameter counts per row: the exact formula on NB201 (default: its CIFAR network), else each
    network built with ``cost_report`` (default net: the space's ``tiny`` preset where it has one)."""
    from nasatlas.spaces.build import cost_report, presets
    rows = np.asarray(rows, dtype=np.int64).reshape(-1, space.width)
    if getattr(space, "family", None) == "nb201":
        return nb201_params(space, rows, net)
    if net is None and "tiny" in presets(space):
        net = "tiny"
    out = np.empty(len(rows), dtype=np.float64)
    seen: dict[tuple[int, ...], float] = {}
    for i, r in enumerate(rows):
        key = tuple(int(v) for v in r)
        if key not in seen:
            seen[key] = float(cost_report(space, r, net, macs=False)["params"])
        out[i] = seen[key]
    return out


# ----------------------------------------------------------------------------- the table

def _column(table: pd.DataFrame, name: str, field: str) -> str:
    for c in (name, f"metric_{name}"):
        if c in table.columns:
            return c
    raise ValueError(f"{field}: the table has no column {name!r} (nor metric_{name}); columns: "
                     f"{sorted(map(str, table.columns))[:40]}; set {field} to one of them")


def arch_targets(table: pd.DataFrame, space: Any, metric: str, arch_column: str = "arch",
                 extra: Sequence[str] = ()) -> pd.DataFrame:
    """One row per distinct architecture with a finite ``metric`` (``metric`` or ``metric_<metric>``):
    ``arch`` (the space's string), ``y`` (mean over its rows), ``n_rows``, the mean of each ``extra``
    column, and ``row`` (the decision indices). Failed rows (``status`` != ok) are left out."""
    if arch_column not in table.columns:
        raise ValueError(f"arch_column: the table has no column {arch_column!r}; columns: "
                         f"{sorted(map(str, table.columns))[:40]}")
    col = _column(table, metric, "metric")
    t = table[table["status"] == "ok"] if "status" in table.columns else table
    t = t[np.isfinite(pd.to_numeric(t[col], errors="coerce").to_numpy(dtype=np.float64))]
    if t.empty:
        raise ValueError(f"metric: no architecture has a finite {col!r} value")
    parsed: dict[str, tuple[str, tuple[int, ...]]] = {}
    for i, text in enumerate(pd.unique(t[arch_column].astype(str))):
        try:
            a = space.from_str(text)
        except ValueError as e:
            raise ValueError(f"{arch_column}: value #{i} {text!r} is not an architecture of space {space.name!r}: "
                             f"{e}") from None
        parsed[text] = (space.to_str(a), tuple(int(v) for v in a.indices))
    key = t[arch_column].astype(str).map(lambda s: parsed[s][0])
    cols = {"y": pd.to_numeric(t[col]).astype(float)}
    cols.update({c: pd.to_numeric(t[c], errors="coerce").astype(float) for c in extra})
    frame = pd.DataFrame({"arch": key.to_numpy(), **{k: v.to_numpy() for k, v in cols.items()}})
    g = frame.groupby("arch", sort=True)
    out = g.mean()
    out["n_rows"] = g.size()
    out = out.reset_index()
    rows = {s: r for s, r in parsed.values()}
    out["row"] = [rows[s] for s in out["arch"]]
    return out


# ----------------------------------------------------------------------------- zero-cost proxies

def proxy_scores(space: Any, rows: np.ndarray, names: Sequence[str], *, net: str | Mapping[str, Any] = "tiny",
                 data: str | Mapping[str, Any] | None = None, batch_size: int = 64,
                 seed: int = 0) -> tuple[dict[str, np.ndarray], float]:
    """Zero-cost proxies (Abdelfattah et al. 2021; :mod:`nasatlas.evaluators.proxy`) of each row's
    untrained network: ``({name: values}, seconds per architecture)``. Every network is built under the
    same seed (``seeded(seed)``) on one torch thread (restored after); the batch is the proxy evaluator's
    (``data``, default digits, ``batch_size`` images). Values may be NaN (see the proxy module)."""
    import torch
    from nasatlas.evaluators.base import seeded
    from nasatlas.evaluators.proxy import PROXIES, ProxyEvaluator
    from nasatlas.spaces.build import build
    unknown = [n for n in names if n not in PROXIES]
    if unknown:
        raise ValueError(f"proxies: unknown proxy name(s) {unknown}; known: {list(PROXIES)}")
    rows = np.asarray(rows, dtype=np.int64).reshape(-1, space.width)
    ev = ProxyEvaluator(proxies=list(names), net=net, data=data, batch_size=batch_size)
    ev.setup(space)
    x, y = ev.batch("cpu")
    out = {n: np.empty(len(rows)) for n in names}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    try:
        for i, r in enumerate(rows):
            with seeded(seed):
                model = build(space, r, net)
            for n in names:
                with seeded(seed):
                    out[n][i] = PROXIES[n](model, x, y)
    finally:
        torch.set_num_threads(threads)
    return out, (time.perf_counter() - t0) / max(len(rows), 1)


def _log_proxy_column(table: pd.DataFrame, name: str) -> str | None:
    """``metric_<name>`` or an extra evaluator's ``metric_<label>_<name>`` (the first such column)."""
    if f"metric_{name}" in table.columns:
        return f"metric_{name}"
    hits = sorted(c for c in map(str, table.columns) if c.startswith("metric_") and c.endswith(f"_{name}"))
    return hits[0] if hits else None


# ----------------------------------------------------------------------------- the curves

def _check_int_list(name: str, values: Any, minimum: int) -> list[int]:
    if isinstance(values, int | np.integer) and not isinstance(values, bool):
        values = [values]
    if not isinstance(values, Sequence) or not values or any(
            isinstance(v, bool) or not isinstance(v, int | np.integer) or v < minimum for v in values):
        raise ValueError(f"{name}={values!r}: give a non-empty list of integers >= {minimum}")
    return sorted({int(v) for v in values})


def _scores(g_true: np.ndarray, g_pred: np.ndarray, k: int) -> dict[str, float]:
    g_pred = np.where(np.isnan(g_pred), -np.inf, g_pred)
    return {"tau": kendall_tau(g_true, g_pred), "spearman": spearman(g_true, g_pred),
            "p_at_k": precision_at_k(g_true, g_pred, k)}


def predictor_curves(table: pd.DataFrame, space: Any, *, metric: str, rng: np.random.Generator,
                     sizes: Sequence[int] = (10, 30, 100, 300, 1000), trials: int = 10,
                     predictors: Sequence[str] = PREDICTOR_KINDS, encoding: str = "onehot", test_size: int = 200,
                     top_fraction: float = 0.1, mode: str = "max", arch_column: str = "arch",
                     params_floor: bool = True, params_net: str | Mapping[str, Any] | None = None,
                     proxies: Sequence[str] = (), proxy_net: str | Mapping[str, Any] = "tiny",
                     proxy_data: str | Mapping[str, Any] | None = None, proxy_batch: int = 64,
                     predictor_params: Mapping[str, Mapping[str, Any]] | None = None) -> pd.DataFrame:
    """Scores of every predictor on held-out architectures, per trial and training-set size (module docstring).

    Returns one row per (trial, predictor, n_train): ``trial``, ``predictor``, ``kind`` (``"learned"`` or
    ``"baseline"``; baselines have ``n_train`` = 0), ``source`` (baselines: ``formula``/``network``/``log``/
    ``computed``), ``n_train``, ``n_test``, ``k``, ``tau``, ``spearman``, ``p_at_k``, ``fit_s`` (seconds
    to fit) and ``query_s`` (seconds per held-out architecture to predict; baselines: to compute).
    """
    from nasatlas.evaluators.proxy import PROXIES
    sizes_ = _check_int_list("sizes", sizes, 2)
    if isinstance(trials, bool) or not isinstance(trials, int) or trials < 1:
        raise ValueError(f"trials={trials!r}: give an integer >= 1")
    if isinstance(test_size, bool) or not isinstance(test_size, int) or test_size < 2:
        raise ValueError(f"test_size={test_size!r}: give an integer >= 2 (held-out architectures per trial)")
    if mode not in ("max", "min"):
        raise ValueError(f"mode={mode!r}: 'max' (larger metric is better) or 'min'")
    unknown = [p for p in predictors if p not in PREDICTOR_KINDS]
    if unknown:
        raise ValueError(f"predictors: unknown predictor(s) {unknown}; known: {list(PREDICTOR_KINDS)}")
    bad = [p for p in proxies if p not in PROXIES]
    if bad:
        raise ValueError(f"proxies: unknown proxy name(s) {bad}; known: {list(PROXIES)}")
    if encoding not in ENCODINGS:
        raise ValueError(f"encoding={encoding!r}: allowed encodings are {list(ENCODINGS)}")
    k = top_k_size(test_size, top_fraction)
    log_cols = {p: _log_proxy_column(table, p) for p in proxies}
    data = arch_targets(table, space, metric, arch_column, extra=[c for c in log_cols.values() if c])
    n = len(data)
    if sizes_[-1] + test_size > n:
        raise ValueError(f"sizes/test_size: the largest training size {sizes_[-1]} plus test_size {test_size} "
                         f"needs {sizes_[-1] + test_size} distinct architectures with a {metric!r} value, but the "
                         f"table has {n}; lower sizes or test_size, or log more architectures")
    rows = np.asarray(data["row"].tolist(), dtype=np.int64).reshape(n, space.width)
    sign = 1.0 if mode == "max" else -1.0
    goodness = sign * data["y"].to_numpy(dtype=np.float64)
    x = features(space, rows, encoding) if predictors else np.zeros((n, 0))
    trial_rngs = rng.spawn(trials)
    perms = [r.permutation(n) for r in trial_rngs]
    held = np.unique(np.concatenate([p[:test_size] for p in perms]))
    baselines: dict[str, tuple[np.ndarray, str, float]] = {}
    if params_floor:
        t0 = time.perf_counter()
        vals = np.full(n, np.nan)
        vals[held] = arch_params(space, rows[held], params_net)
        src = "formula" if getattr(space, "family", None) == "nb201" else "network"
        baselines["params"] = (vals, src, (time.perf_counter() - t0) / len(held))
    need = [p for p in proxies if log_cols[p] is None]
    for p in proxies:
        if log_cols[p] is not None:
            baselines[p] = (data[log_cols[p]].to_numpy(dtype=np.float64), "log", 0.0)
    if need:
        vals_by, secs = proxy_scores(space, rows[held], need, net=proxy_net, data=proxy_data, batch_size=proxy_batch,
                                     seed=int(rng.integers(0, 2**31 - 1)))
        for p in need:
            full = np.full(n, np.nan)
            full[held] = vals_by[p]
            baselines[p] = (full, "computed", secs / len(need))
    out: list[dict[str, Any]] = []
    params = dict(predictor_params or {})
    for t, (perm, trng) in enumerate(zip(perms, trial_rngs)):
        test, pool = perm[:test_size], perm[test_size:]
        g_test = goodness[test]
        base = {"trial": t, "n_test": test_size, "k": k}
        for name, (vals, src, secs) in baselines.items():
            out.append({**base, "predictor": name, "kind": "baseline", "source": src, "n_train": 0,
                        **_scores(g_test, vals[test], k), "fit_s": 0.0, "query_s": secs})
        seeds = trng.integers(0, 2**31 - 1, size=(len(sizes_), len(predictors)))
        for i, size in enumerate(sizes_):
            train = pool[:size]
            for j, kind in enumerate(predictors):
                t0 = time.perf_counter()
                model = fit_predictor(kind, x[train], data["y"].to_numpy()[train], seed=int(seeds[i, j]),
                                      params=params.get(kind))
                t1 = time.perf_counter()
                pred = model.predict(x[test])
                t2 = time.perf_counter()
                out.append({**base, "predictor": kind, "kind": "learned", "source": encoding, "n_train": size,
                            **_scores(g_test, sign * pred, k), "fit_s": t1 - t0, "query_s": (t2 - t1) / test_size})
    cols = ["trial", "predictor", "kind", "source", "n_train", "n_test", "k", "tau", "spearman", "p_at_k", "fit_s",
            "query_s"]
    return pd.DataFrame(out, columns=cols)


def summarise_curves(long: pd.DataFrame) -> pd.DataFrame:
    """Mean and standard deviation (ddof 1; NaN for one trial) over trials per (predictor, n_train):
    ``<score>_mean``/``<score>_std`` for tau, spearman, p_at_k, fit_s and query_s, and ``trials``."""
    keys = ["kind", "predictor", "source", "n_train"]
    g = long.groupby(keys, sort=False)
    stats = g[["tau", "spearman", "p_at_k", "fit_s", "query_s"]].agg(["mean", "std"])
    stats.columns = [f"{a}_{b}" for a, b in stats.columns]
    stats["trials"] = g.size()
    return stats.reset_index()


def params_correlation(table: pd.DataFrame, space: Any, *, metric: str, arch_column: str = "arch",
                       mode: str = "max", net: str | Mapping[str, Any] | None = None) -> dict[str, float]:
    """Spearman ρ and Kendall τ_b of the parameter count against the metric's goodness over every
    distinct architecture of the table (no split), with ``n``."""
    data = arch_targets(table, space, metric, arch_column)
    rows = np.asarray(data["row"].tolist(), dtype=np.int64).reshape(len(data), space.width)
    g = (1.0 if mode == "max" else -1.0) * data["y"].to_numpy(dtype=np.float64)
    p = arch_params(space, rows, net).astype(np.float64)
    return {"spearman": spearman(g, p), "tau": kendall_tau(g, p), "n": float(len(data))}


def fit_and_save(table: pd.DataFrame, space: Any, kind: str, path: str | Path, *, metric: str, seed: int,
                 encoding: str = "onehot", mode: str = "max", arch_column: str = "arch",
                 params: Mapping[str, Any] | None = None) -> Path:
    """Fit ``kind`` on every distinct architecture of the table and save it (``.npz``, no pickle)."""
    data = arch_targets(table, space, metric, arch_column)
    rows = np.asarray(data["row"].tolist(), dtype=np.int64).reshape(len(data), space.width)
    model = fit_predictor(kind, features(space, rows, encoding), data["y"].to_numpy(), seed=seed, params=params)
    return save_predictor(path, model, space=space, encoding=encoding, metric=metric, mode=mode)


# ----------------------------------------------------------------------------- plot

def plot_curves(summary: pd.DataFrame, path: str | Path, *, references: bool = False) -> bool:
    """``path`` (PNG): τ, ρ and P@K against the training-set size (log x), one line per learned predictor
    (mean, shaded ± std), baselines as horizontal lines (params: black dashed, the floor). ``references``
    adds the published NB201 reference points, marked as published. False when matplotlib is missing."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # matplotlib is a dev extra
        return False
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.8), dpi=110, sharex=True)
    learned = summary[summary["kind"] == "learned"]
    base = summary[summary["kind"] == "baseline"]
    for ax, score, label in zip(axes, ("tau", "spearman", "p_at_k"), ("Kendall τ", "Spearman ρ", "precision@K")):
        for name, g in learned.groupby("predictor", sort=False):
            g = g.sort_values("n_train")
            m, s = g[f"{score}_mean"].to_numpy(), np.nan_to_num(g[f"{score}_std"].to_numpy())
            line, = ax.plot(g["n_train"], m, marker="o", ms=3, label=str(name))
            ax.fill_between(g["n_train"], m - s, m + s, color=line.get_color(), alpha=0.15)
        proxy_colours = iter(["tab:gray", "tab:brown", "tab:olive", "tab:pink", "tab:cyan", "darkkhaki"])
        for r in base.itertuples(index=False):
            is_params = r.predictor == "params"
            ax.axhline(getattr(r, f"{score}_mean"), color="black" if is_params else next(proxy_colours, "grey"),
                       ls="--" if is_params else ":", lw=1.2,
                       label=f"{r.predictor} (floor)" if is_params else f"{r.predictor} (zero-cost)")
        if references and score == "tau":
            ax.plot([1000], [REFERENCES["rf_tau_1000"][0]], marker="*", ms=11, color="tab:red", ls="none",
                    label="published: RF one-hot")
        if references and score == "spearman":
            ax.axhline(REFERENCES["params_spearman"][0], color="tab:red", ls="-.", lw=1,
                       label="published: #params")
        ax.set_xscale("log")
        ax.set_xlabel("training architectures (log scale)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    ticks = sorted(set(learned["n_train"].astype(int)) | ({1000} if references else set()))
    if ticks:
        axes[0].set_xticks(ticks, [str(t) for t in ticks])
        axes[0].minorticks_off()
    handles: dict[str, Any] = {}
    for ax in axes:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(lab, h)
    fig.legend(list(handles.values()), list(handles), fontsize=7, loc="center left", bbox_to_anchor=(0.86, 0.5))
    fig.tight_layout(rect=(0, 0, 0.86, 1))
    fig.savefig(path)
    plt.close(fig)
    return True


# ----------------------------------------------------------------------------- report section

_SECTION_PARAMS: dict[str, Any] = {
    "metric": str, "sizes": list, "trials": int, "test_size": int, "predictors": list, "encoding": str,
    "top_fraction": (int, float), "proxies": list, "proxy_net": (str, dict), "proxy_data": (str, dict),
    "proxy_batch": int, "params_floor": bool, "params_net": (str, dict), "save": list, "seed": int,
    "predictor_params": dict, "arch_column": str,
}


def _pm(mean: float, std: float, digits: int = 3) -> str:
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "n/a"
    return f"{mean:.{digits}f}" + ("" if std is None or math.isnan(std) else f" ± {std:.{digits}f}")


def _seconds(v: float) -> str:
    return f"{v * 1e6:.0f} µs" if v < 1e-3 else f"{v * 1e3:.1f} ms" if v < 1 else f"{v:.2f} s"


def predictors_section(df: pd.DataFrame, study: dict[str, Any], run_dir: str | Path) -> str:
    """The ``predictors`` report section: curves (``predictors.png``), tables per size, fit/query times,
    the zero-training baselines and the published reference points beside the computed values; writes
    ``predictors.csv`` (every trial) and ``predictor_<kind>.npz`` for each kind in ``save``.

    ``[analysis.predictors]``: ``metric`` (default: the objective), ``sizes`` ([10, 30, 100, 300, 1000]),
    ``trials`` (10), ``test_size`` (200), ``predictors`` (all five), ``encoding`` ("onehot"),
    ``top_fraction`` (0.1), ``proxies`` ([]), ``proxy_net`` ("tiny"), ``proxy_data`` (digits),
    ``proxy_batch`` (64), ``params_floor`` (true), ``params_net``, ``save`` (["rf"] when rf runs),
    ``seed`` (the study's), ``predictor_params`` ({kind = {...}}), ``arch_column`` ("arch").
    """
    from .studyfile import study_space
    st = study.get("study", {})
    prm = dict(study.get("analysis", {}).get("predictors", {}))
    for key, v in prm.items():
        if key not in _SECTION_PARAMS or isinstance(v, bool) != (_SECTION_PARAMS[key] is bool) \
                or not isinstance(v, _SECTION_PARAMS[key]):
            allowed = {n: (t.__name__ if isinstance(t, type) else "/".join(x.__name__ for x in t))
                       for n, t in _SECTION_PARAMS.items()}
            raise ValueError(f"[analysis.predictors] {key} = {v!r}: allowed keys and types: {allowed}")
    metric = prm.get("metric", st.get("objective"))
    if not metric:
        raise ValueError("the predictors analysis needs [study] objective or [analysis.predictors] metric")
    space = study_space(study)
    mode = str(st.get("mode", "max"))
    seed = int(prm.get("seed", st.get("seed", 0)))
    predictors = list(prm.get("predictors", PREDICTOR_KINDS))
    encoding = str(prm.get("encoding", "onehot"))
    arch_column = str(prm.get("arch_column", "arch"))
    save = list(prm.get("save", ["rf"] if "rf" in predictors else predictors[:1]))
    if any(k not in PREDICTOR_KINDS for k in save):
        raise ValueError(f"[analysis.predictors] save = {save}: name learned predictors among {list(PREDICTOR_KINDS)}")
    if not predictors and not prm.get("params_floor", True) and not prm.get("proxies"):
        raise ValueError("[analysis.predictors]: nothing to score; give predictors, proxies or params_floor = true")
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x9E3779B9]))
    long = predictor_curves(
        df, space, metric=metric, rng=rng, sizes=prm.get("sizes", [10, 30, 100, 300, 1000]),
        trials=prm.get("trials", 10), predictors=predictors, encoding=encoding, test_size=prm.get("test_size", 200),
        top_fraction=float(prm.get("top_fraction", 0.1)), mode=mode, arch_column=arch_column,
        params_floor=prm.get("params_floor", True), params_net=prm.get("params_net"),
        proxies=prm.get("proxies", []), proxy_net=prm.get("proxy_net", "tiny"), proxy_data=prm.get("proxy_data"),
        proxy_batch=prm.get("proxy_batch", 64), predictor_params=prm.get("predictor_params"))
    run = Path(run_dir)
    long.to_csv(run / "predictors.csv", index=False)
    summ = summarise_curves(long)
    n_arch = len(arch_targets(df, space, metric, arch_column))
    first = long.iloc[0]
    trials = int(long["trial"].nunique())
    lines = ["## Performance predictors", "",
             f"{n_arch} distinct architectures with a `{metric}` value (mean over an architecture's rows). Each of "
             f"{trials} trials (seed {seed}) holds out {int(first['n_test'])} random architectures and trains on "
             f"nested random sets of the others; learned predictors use the `{encoding}` encoding. Kendall τ_b, "
             f"Spearman ρ and precision@K (K = {int(first['k'])}: the share of the true top-K among the predicted "
             f"top-K, ties at the boundary in expectation; random ranking: "
             f"{int(first['k']) / int(first['n_test']):.3f}) on the held-out set, mean ± std over trials. "
             "Every trial: `predictors.csv`.", ""]
    base = summ[summ["kind"] == "baseline"]
    floor = None
    if not base.empty:
        lines += ["### Zero-training baselines", "",
                  "| baseline | source | Kendall τ | Spearman ρ | P@K | time per architecture |",
                  "|---|---|---|---|---|---|"]
        for r in base.to_dict("records"):
            lines.append(f"| {r['predictor']} | {r['source']} | {_pm(r['tau_mean'], r['tau_std'])} | "
                         f"{_pm(r['spearman_mean'], r['spearman_std'])} | {_pm(r['p_at_k_mean'], r['p_at_k_std'])} | "
                         f"{_seconds(r['query_s_mean'])} |")
            if r["predictor"] == "params":
                floor = r
        lines += ["", "`params`: the parameter count (NB201: exact formula, checked against the built network), the "
                  "floor every predictor must beat; proxies: at initialisation (Abdelfattah et al. 2021), `log` = "
                  "read from the log, `computed` = on the held-out cells' small networks.", ""]
    learned = summ[summ["kind"] == "learned"]
    if not learned.empty:
        lines += ["### Learned predictors against the training-set size", "",
                  "| n train | predictor | Kendall τ | Spearman ρ | P@K | fit | query per arch | τ above params |",
                  "|---|---|---|---|---|---|---|---|"]
        for r in learned.sort_values(["n_train"], kind="stable").to_dict("records"):
            beats = "n/a" if floor is None or math.isnan(r["tau_mean"]) else (
                "yes" if r["tau_mean"] > floor["tau_mean"] else "**no**")
            lines.append(f"| {r['n_train']} | {r['predictor']} | {_pm(r['tau_mean'], r['tau_std'])} | "
                         f"{_pm(r['spearman_mean'], r['spearman_std'])} | {_pm(r['p_at_k_mean'], r['p_at_k_std'])} | "
                         f"{_seconds(r['fit_s_mean'])} | {_seconds(r['query_s_mean'])} | {beats} |")
        lines.append("")
    is_nb201 = getattr(space, "family", None) == "nb201"
    if is_nb201:
        rf = learned[(learned["predictor"] == "rf") & (learned["n_train"] == 1000)]
        rf_txt = (_pm(float(rf["tau_mean"].iloc[0]), float(rf["tau_std"].iloc[0])) + f" ({encoding})"
                  if len(rf) else "not run (needs rf and size 1000)")
        pc = params_correlation(df, space, metric=metric, arch_column=arch_column, mode=mode,
                                net=prm.get("params_net"))
        lines += ["### Reference points", "",
                  "| quantity | published (not computed here) | computed here |", "|---|---|---|",
                  f"| RF on one-hot, Kendall τ at 1,000 training cells | ~{REFERENCES['rf_tau_1000'][0]} | {rf_txt} |",
                  f"| #params, Spearman ρ against valid_acc | ~{REFERENCES['params_spearman'][0]} | "
                  f"{pc['spearman']:.3f} against `{metric}` over all {int(pc['n'])} logged cells (τ_b "
                  f"{pc['tau']:.3f}) |", "",
                  f"Published sources: {REFERENCES['rf_tau_1000'][1]}; {REFERENCES['params_spearman'][1]}. Both "
                  "refer to NAS-Bench-201 CIFAR-10.", ""]
    png = run / "predictors.png"
    if plot_curves(summ, png, references=is_nb201):
        lines += ["![predictor curves](predictors.png)", ""]
    saved = []
    for kind in save:
        path = fit_and_save(df, space, kind, run / f"predictor_{kind}.npz", metric=metric, seed=seed,
                            encoding=encoding, mode=mode, arch_column=arch_column,
                            params=(prm.get("predictor_params") or {}).get(kind))
        saved.append(path.name)
    if saved:
        lines += [f"Saved (fitted on all {n_arch} architectures, no pickle): {', '.join(f'`{s}`' for s in saved)}; "
                  f"score architectures with `[evaluator] name = \"predictor\"`, `params = {{ path = \"<run>/"
                  f"{saved[0]}\" }}` (metric `predicted_{metric}`).", ""]
    return "\n".join(lines)
