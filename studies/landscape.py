"""Landscape analysis of a tabulated space under the one-edit move: does a neighbour of a good cell
perform alike?

For architectures with a metric f (e.g. NAS-Bench-201's validation accuracy), with N(a) the valid
one-edit neighbours of a (``space.neighbours``) restricted to tabulated architectures:

* fitness–distance correlation (Jones & Forrest 1995): Pearson and Spearman correlation between f(a)
  and the Hamming distance (over decisions) from a to the global best (the first in table order
  where several tie);
* lag-1 autocorrelation: the Pearson correlation of (f(a), f(b)) over all ordered pairs with
  b ∈ N(a) — the exact pair definition, not a random-walk estimate (Weinberger 1990 defines ρ(1)
  along a random walk; on a regular neighbourhood graph the walk's stationary estimate converges
  to this);
* neighbour-mean correlation: Pearson correlation between f(a) and the mean of f over N(a);
* strict (weak) local maxima: f(a) > (≥) f(b) for every b ∈ N(a).

Separately, :func:`random_walk_autocorrelation` estimates ρ(k) along random walks of the one-edit
move (Weinberger 1990) and the correlation length ℓ = −1 / ln ρ(1) (Stadler 1996), reported with the
number and length of the walks.

Ochoa & Veerapen 2022 ("Neural architecture search: a visual analysis", PPSN) and the NAS landscape
literature report these for NAS-Bench-201.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["LandscapeStats", "landscape", "landscape_from_table", "random_walk_autocorrelation", "table_rows"]


@dataclass(frozen=True)
class LandscapeStats:
    """The landscape statistics (JSON keys of ``nasatlas analyze landscape``)."""

    n: int
    n_pairs: int
    best_arch: str
    best_value: float
    fdc_pearson: float
    fdc_spearman: float
    autocorr_lag1: float
    neighbour_mean_corr: float
    strict_local_maxima: int
    weak_local_maxima: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def landscape(space: Any, rows: np.ndarray, values: np.ndarray) -> LandscapeStats:
    """Statistics over the architectures ``rows`` (decision indices, table order) with ``values``."""
    from scipy import stats
    rows = np.asarray(rows, dtype=np.int64)
    values = np.asarray(values, dtype=float)
    if len(rows) != len(values):
        raise ValueError(f"{len(rows)} architectures but {len(values)} values")
    if len(rows) < 3:
        raise ValueError(f"a landscape needs at least 3 architectures with a value; got {len(rows)}")
    if not np.isfinite(values).all():
        raise ValueError("values contain NaN or inf: drop those architectures first")
    key = {tuple(r): i for i, r in enumerate(rows.tolist())}
    if len(key) != len(rows):
        raise ValueError("an architecture appears twice in the table; give one value per architecture")
    best = int(np.argmax(values))      # first in table order among ties
    dist = (rows != rows[best]).sum(axis=1).astype(float)
    src, dst = [], []
    for i, r in enumerate(rows):
        for nb in space.neighbours(r):
            j = key.get(tuple(int(v) for v in nb))
            if j is not None:
                src.append(i)
                dst.append(j)
    s, d = np.asarray(src), np.asarray(dst)
    if len(s) == 0:
        raise ValueError("no two tabulated architectures are neighbours: the landscape is undefined")
    fa, fb = values[s], values[d]
    nb_sum = np.bincount(s, weights=fb, minlength=len(rows))
    nb_cnt = np.bincount(s, minlength=len(rows))
    has = nb_cnt > 0
    nb_mean = nb_sum[has] / nb_cnt[has]
    nb_max = np.full(len(rows), -np.inf)
    np.maximum.at(nb_max, s, fb)
    strict = int(((values > nb_max) & has).sum())
    weak = int(((values >= nb_max) & has).sum())
    return LandscapeStats(
        n=len(rows), n_pairs=len(s), best_arch=space.to_str(rows[best]), best_value=float(values[best]),
        fdc_pearson=float(stats.pearsonr(values, dist).statistic),
        fdc_spearman=float(stats.spearmanr(values, dist).statistic),
        autocorr_lag1=float(stats.pearsonr(fa, fb).statistic),
        neighbour_mean_corr=float(stats.pearsonr(values[has], nb_mean).statistic),
        strict_local_maxima=strict, weak_local_maxima=weak)


def table_rows(space: Any, table: pd.DataFrame, *, arch_column: str = "arch",
               metric: str = "valid_acc") -> tuple[np.ndarray, np.ndarray]:
    """Decision rows and metric values of a table's architectures (rows without a value dropped); a
    log's ``metric_<name>`` works too: ``metric`` may be given with or without the prefix."""
    if arch_column not in table.columns:
        raise ValueError(f"the table has no column {arch_column!r} (--arch-column); columns: {list(table.columns)}")
    col = metric if metric in table.columns else f"metric_{metric}"
    if col not in table.columns:
        raise ValueError(f"the table has no column {metric!r} (--metric); columns: {list(table.columns)}")
    t = table[[arch_column, col]].dropna()
    rows = []
    for i, text in enumerate(t[arch_column].astype(str)):
        try:
            rows.append(space.from_str(text).indices)
        except ValueError as e:
            raise ValueError(f"row {i}: {text!r} is not an architecture of space {space.name!r}: {e}") from None
    return np.asarray(rows, dtype=np.int64), t[col].to_numpy(dtype=float)


def landscape_from_table(space: Any, table: pd.DataFrame, *, arch_column: str = "arch",
                         metric: str = "valid_acc") -> LandscapeStats:
    """:func:`landscape` over a table of architecture strings and a metric column."""
    rows, values = table_rows(space, table, arch_column=arch_column, metric=metric)
    return landscape(space, rows, values)

def _neighbour_lists(space: Any, rows: np.ndarray) -> list[np.ndarray]:
    key = {tuple(r): i for i, r in enumerate(rows.tolist())}
    out = []
    for r in rows:
        idx = [key.get(tuple(int(v) for v in nb)) for nb in space.neighbours(r)]
        out.append(np.asarray([j for j in idx if j is not None], dtype=np.int64))
    return out


def random_walk_autocorrelation(space: Any, rows: np.ndarray, values: np.ndarray, *, rng: np.random.Generator,
                                walks: int = 20, length: int = 1000, max_lag: int = 10) -> dict[str, Any]:
    """ρ(k), k = 1..``max_lag``, along ``walks`` random walks of ``length`` steps over the tabulated
    architectures (each step: a uniformly chosen tabulated one-edit neighbour; the start uniform), pooled
    over walks as the Pearson correlation of (f_t, f_{t+k}); and ℓ = −1 / ln ρ(1)."""
    rows = np.asarray(rows, dtype=np.int64)
    values = np.asarray(values, dtype=float)
    if walks < 1 or length < max_lag + 2 or max_lag < 1:
        raise ValueError(f"walks={walks}, length={length}, max_lag={max_lag}: need walks >= 1, max_lag >= 1 and "
                         "length >= max_lag + 2")
    nbrs = _neighbour_lists(space, rows)
    if all(len(n) == 0 for n in nbrs):
        raise ValueError("no two tabulated architectures are neighbours: no walk can move")
    series = np.empty((walks, length))
    for w in range(walks):
        i = int(rng.integers(len(rows)))
        for t in range(length):
            series[w, t] = values[i]
            n = nbrs[i]
            if len(n):
                i = int(n[rng.integers(len(n))])
    rho = []
    for k in range(1, max_lag + 1):
        a, b = series[:, :-k].ravel(), series[:, k:].ravel()
        rho.append(float(np.corrcoef(a, b)[0, 1]))
    ell = -1.0 / float(np.log(rho[0])) if 0 < rho[0] < 1 else float("nan")
    return {"walks": walks, "length": length, "rho": rho, "correlation_length": ell}
