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
* strict (weak) local maxima: f(a) > (≥) f(b) for every b ∈ N(a) (architectures without a tabulated
  neighbour are neither);
* basin of the global optimum (Ochoa, Tomassini, Vérel & Darabos 2008, local optima networks): the
  number (and share) of architectures from which hill climbing ends at the global best (the one the
  FDC uses; a climb ending at another architecture of equal value is not counted). Best
  improvement (steepest ascent) moves to the best neighbour while it is strictly better, ties to the
  lowest table index; first improvement moves to the first strictly better neighbour in
  ``space.neighbours`` order (a fixed scan order, so both climbs are deterministic). Every climb ends
  at a weak local maximum (or at an architecture without a tabulated neighbour).

:func:`neighbour_correlation_by_distance` gives the correlation of f over all ordered pairs at
distance exactly d = 1..D (the lag-d generalisation of the pair autocorrelation; d = 1 is the
autocorrelation above wherever the distance-1 pairs are the one-edit neighbours).
Separately, :func:`random_walk_autocorrelation` estimates ρ(k) along random walks of the one-edit
move (Weinberger 1990) and the correlation length ℓ = −1 / ln ρ(1) (Stadler 1996), reported with the
number and length of the walks.

Ochoa & Veerapen 2022 ("Neural architecture search: a visual analysis", PPSN) and the NAS landscape
literature report these for NAS-Bench-201. Everything is vectorised over the table: all 15,625 NB201
cells take ~0.1 s from the table's strings (``benchmarks/bench_landscape.py``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["LandscapeStats", "landscape", "landscape_from_table", "random_walk_autocorrelation", "table_rows",
           "neighbour_pairs", "neighbour_correlation_by_distance", "hill_climb_ends", "landscape_section"]

#: cap on the pairs whose distance the slow (per-pair Python) path computes
MAX_SLOW_PAIRS = 2_000_000


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
    basin_size_global: int
    basin_share_global: float
    basin_size_global_first: int
    basin_share_global_first: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# -- neighbour pairs ----------------------------------------------------------------------------------

def _single_decision_moves(space: Any) -> bool:
    """True when every block's one-edit move is "change one decision" (the base ``Primitive.neighbours``),
    so the tabulated neighbours of a row are the tabulated rows at Hamming distance 1."""
    from nasatlas.spaces.primitives import Primitive
    return all(getattr(type(p), "neighbours", None) is Primitive.neighbours for p in space.primitives)


def _hamming_edit(space: Any) -> bool:
    """True when the space's edit distance is the Hamming distance over decisions (no block overrides it)."""
    from nasatlas.spaces.primitives import Primitive
    return all(getattr(type(p), "edit_distance", None) is Primitive.edit_distance for p in space.primitives)


def _strides(sizes: tuple[int, ...]) -> np.ndarray | None:
    """Mixed-radix strides (the last decision fastest), or None where the product overflows int64."""
    if math.prod(sizes) >= 2 ** 62:
        return None
    out = np.ones(len(sizes), dtype=np.int64)
    for j in range(len(sizes) - 2, -1, -1):
        out[j] = out[j + 1] * sizes[j + 1]
    return out


def _check_in_range(space: Any, rows: np.ndarray) -> None:
    sizes = np.asarray(space.sizes, dtype=np.int64)
    bad = (rows < 0) | (rows >= sizes)
    if bad.any():
        i, j = (int(v) for v in np.argwhere(bad)[0])
        raise ValueError(f"row {i}: decision {space.decisions[j].name!r} = {int(rows[i, j])} is out of range "
                         f"0..{int(sizes[j]) - 1}; give rows of space {space.name!r}")


def _lookup(keys: np.ndarray, card: int) -> Any:
    """``find(cand) -> table index or −1`` over the tabulated ``keys``: a direct array where the space is
    small, a binary search otherwise."""
    if card <= max(1 << 22, 8 * len(keys)):
        table = np.full(card, -1, dtype=np.int64)
        table[keys] = np.arange(len(keys))
        return lambda cand: table[np.clip(cand, 0, card - 1)]
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]

    def find(cand: np.ndarray) -> np.ndarray:
        pos = np.minimum(np.searchsorted(sorted_keys, cand), len(sorted_keys) - 1)
        return np.where(sorted_keys[pos] == cand, order[pos], -1)
    return find


def neighbour_pairs(space: Any, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """All ordered pairs ``(i, j)`` with ``rows[j]`` a one-edit neighbour of ``rows[i]`` (``space.neighbours``),
    grouped by ``i`` ascending and, within ``i``, in ``space.neighbours`` order.

    Where every block's move changes one decision, candidates are keys of a mixed radix looked up among
    the tabulated keys (vectorised); otherwise each row's ``space.neighbours`` is looked up in a dict.
    """
    rows = np.asarray(rows, dtype=np.int64)
    strides = _strides(space.sizes) if _single_decision_moves(space) else None
    if strides is None:
        key = {tuple(r): i for i, r in enumerate(rows.tolist())}
        src, dst = [], []
        for i, r in enumerate(rows):
            for nb in space.neighbours(r):
                j = key.get(tuple(int(v) for v in nb))
                if j is not None:
                    src.append(i)
                    dst.append(j)
        return np.asarray(src, dtype=np.int64), np.asarray(dst, dtype=np.int64)
    _check_in_range(space, rows)
    keys = rows @ strides
    find = _lookup(keys, math.prod(space.sizes))
    cols = np.repeat(np.arange(space.width), space.sizes)
    vals = np.concatenate([np.arange(s, dtype=np.int64) for s in space.sizes])
    step = max(1, (1 << 22) // max(1, len(cols)))          # bound the (rows x moves) candidate block
    srcs, dsts = [], []
    for a in range(0, len(rows), step):
        r = rows[a:a + step]
        hit = find(keys[a:a + step, None] + (vals[None, :] - r[:, cols]) * strides[cols][None, :])
        ii, cc = np.nonzero((hit >= 0) & (vals[None, :] != r[:, cols]))
        srcs.append(ii + a)
        dsts.append(hit[ii, cc])
    return np.concatenate(srcs).astype(np.int64), np.concatenate(dsts).astype(np.int64)


# -- hill climbing ------------------------------------------------------------------------------------

def _follow(succ: np.ndarray) -> np.ndarray:
    """End point of every chain of ``succ`` (pointer doubling; chains strictly improve, so never cycle)."""
    end = succ.copy()
    while True:
        nxt = end[end]
        if np.array_equal(nxt, end):
            return end
        end = nxt


def hill_climb_ends(values: np.ndarray, src: np.ndarray, dst: np.ndarray, *,
                    rule: str = "best") -> np.ndarray:
    """Index of the architecture where hill climbing from each architecture ends.

    ``rule="best"``: steepest ascent — move to the neighbour of highest value while it is strictly better
    than the current one; among equal best neighbours, the lowest table index. ``rule="first"``: move to
    the first strictly better neighbour in pair order (``space.neighbours`` order, see
    :func:`neighbour_pairs`). Both stop at a weak local maximum (no strictly better neighbour).
    """
    values = np.asarray(values, dtype=float)
    src, dst = np.asarray(src, dtype=np.int64), np.asarray(dst, dtype=np.int64)
    n = len(values)
    succ = np.arange(n)
    if rule not in ("best", "first"):
        raise ValueError(f"rule={rule!r}; allowed: 'best' (steepest ascent) or 'first' (first improvement)")
    if len(src) and (np.diff(src) < 0).any():                # group by source, keeping the pair order
        order = np.argsort(src, kind="stable")
        src, dst = src[order], dst[order]
    if rule == "first":
        better = values[dst] > values[src]
        src, dst = src[better], dst[better]
    if len(src) == 0:
        return succ
    starts = np.flatnonzero(np.r_[True, src[1:] != src[:-1]])
    s = src[starts]
    if rule == "best":
        fb = values[dst]
        seg = np.repeat(np.arange(len(starts)), np.diff(np.r_[starts, len(src)]))
        top = np.maximum.reduceat(fb, starts)
        d = np.minimum.reduceat(np.where(fb == top[seg], dst, n), starts)   # lowest index among the best
    else:
        d = dst[starts]                                       # the first strictly better neighbour
    up = values[d] > values[s]
    succ[s[up]] = d[up]
    return _follow(succ)


# -- the statistics -----------------------------------------------------------------------------------

def _check_values(space: Any, rows: np.ndarray, values: np.ndarray, least: int) -> None:
    if rows.ndim != 2:
        raise ValueError(f"rows must be a 2-d array of decision indices, got shape {rows.shape}")
    if len(rows) != len(values):
        raise ValueError(f"{len(rows)} architectures but {len(values)} values")
    if len(rows) < least:
        raise ValueError(f"a landscape needs at least {least} architectures with a value; got {len(rows)}")
    if not np.isfinite(values).all():
        raise ValueError("values contain NaN or inf: drop those architectures first")
    strides = _strides(space.sizes)
    if strides is not None and ((rows < 0) | (rows >= np.asarray(space.sizes))).any():
        strides = None                                        # out of range: the slow check, errors later
    unique = len(np.unique(rows @ strides)) if strides is not None else len(np.unique(rows, axis=0))
    if unique != len(rows):
        raise ValueError("an architecture appears twice in the table; give one value per architecture")


def landscape(space: Any, rows: np.ndarray, values: np.ndarray) -> LandscapeStats:
    """Statistics over the architectures ``rows`` (decision indices, table order) with ``values``."""
    from scipy import stats
    rows = np.asarray(rows, dtype=np.int64)
    values = np.asarray(values, dtype=float)
    _check_values(space, rows, values, 3)
    best = int(np.argmax(values))      # first in table order among ties
    dist = (rows != rows[best]).sum(axis=1).astype(float)
    s, d = neighbour_pairs(space, rows)
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
    basin = int((hill_climb_ends(values, s, d, rule="best") == best).sum())
    basin_first = int((hill_climb_ends(values, s, d, rule="first") == best).sum())
    return LandscapeStats(
        n=len(rows), n_pairs=len(s), best_arch=space.to_str(rows[best]), best_value=float(values[best]),
        fdc_pearson=float(stats.pearsonr(values, dist).statistic),
        fdc_spearman=float(stats.spearmanr(values, dist).statistic),
        autocorr_lag1=float(stats.pearsonr(fa, fb).statistic),
        neighbour_mean_corr=float(stats.pearsonr(values[has], nb_mean).statistic),
        strict_local_maxima=strict, weak_local_maxima=weak,
        basin_size_global=basin, basin_share_global=basin / len(rows),
        basin_size_global_first=basin_first, basin_share_global_first=basin_first / len(rows))


# -- correlation by distance --------------------------------------------------------------------------

#: largest (D + 1) x (product of option counts) the distance transform holds (two float64 stacks)
MAX_TRANSFORM_CELLS = 1 << 23


def _pair_sums_transform(space: Any, rows: np.ndarray, fc: np.ndarray) -> tuple[np.ndarray, ...]:
    """(ordered pair count, Σ f(a), Σ f(a)², Σ f(a) f(b)) at each Hamming distance 0..D without enumerating
    pairs. The table sits in the tensor of every combination of options (F: its values, 0 elsewhere; I: 1
    where tabulated). Σ_{d(a,b)=d} u(a) v(b) is the z^d coefficient of <u, ⊗_i (I + z (J_i − I)) v>, J_i
    summing over decision i, applied one decision at a time to the D + 1 coefficients: O(D² ∏ k_i)."""
    sizes = tuple(int(k) for k in space.sizes)
    width = len(sizes)
    keys = rows @ _strides(sizes)  # type: ignore[operator]
    h = np.zeros((2, width + 1, math.prod(sizes)))
    h[0, 0, keys] = fc
    h[1, 0, keys] = 1.0
    f_flat, i_flat = h[0, 0].copy(), h[1, 0].copy()
    h = h.reshape(2, width + 1, *sizes)
    for i in range(width):
        summed = h.sum(axis=i + 2, keepdims=True)
        h[:, 1:] = h[:, 1:] + summed[:, :-1] - h[:, :-1]
    hf, hi = h[0].reshape(width + 1, -1), h[1].reshape(width + 1, -1)
    return hi @ i_flat, hi @ f_flat, hi @ (f_flat ** 2), hf @ f_flat


def _pair_sums_blocks(space: Any, rows: np.ndarray, fc: np.ndarray, kind: str,
                      block_elements: int) -> tuple[np.ndarray, ...]:
    """(ordered pair count, Σ f(a), Σ f(a)², Σ f(a) f(b)) at each distance over all ordered pairs, one block
    of rows against the table at a time (at most ``block_elements`` pair distances in memory)."""
    n = len(rows)
    hamming = kind == "hamming" or _hamming_edit(space)
    if not hamming and n * (n - 1) > MAX_SLOW_PAIRS:
        raise ValueError(f"space {space.name!r}: its edit distance is computed pair by pair in Python and "
                         f"{n:,} architectures make {n * (n - 1):,} pairs (more than {MAX_SLOW_PAIRS:,}); "
                         "use kind='hamming' (--distance hamming) or a smaller table")
    if hamming:
        from nasatlas.spaces.encodings import onehot
        oh = onehot(space, rows).astype(np.float32)        # Hamming = width − matching decisions
    step = max(1, block_elements // max(1, n))
    sums = [np.zeros(0) for _ in range(4)]
    for a in range(0, n, step):
        fa = fc[a:a + step]
        if hamming:
            dist = np.rint(space.width - oh[a:a + step] @ oh.T).astype(np.int64)
        else:
            dist = np.asarray(space.distance(rows[a:a + step, None, :], rows[None, :, :], kind=kind), dtype=np.int64)
        m = int(dist.max()) + 1
        # partners of each block row at each distance, then one weighted count for the products
        per_row = np.bincount((np.arange(len(fa))[:, None] * m + dist).ravel(), minlength=len(fa) * m)
        per_row = per_row.reshape(len(fa), m).astype(float)
        new = [per_row.sum(axis=0), fa @ per_row, (fa ** 2) @ per_row,
               np.bincount(dist.ravel(), weights=(fa[:, None] * fc[None, :]).ravel(), minlength=m)]
        m = max(len(sums[0]), m)
        sums = [np.pad(x, (0, m - len(x))) + np.pad(y, (0, m - len(y))) for x, y in zip(sums, new)]
    return tuple(sums)


def neighbour_correlation_by_distance(space: Any, rows: np.ndarray, values: np.ndarray, *, kind: str = "edit",
                                      method: str = "auto", block_elements: int = 1 << 22) -> pd.DataFrame:
    """Pearson correlation of (f(a), f(b)) over all ordered pairs of tabulated architectures at distance
    exactly d, for d = 1 .. the largest distance in the table.

    The lag-d pair autocorrelation (Weinberger 1990's ρ(d) with distance in place of walk lag): with the
    pair list symmetric, both sides have the table's pair-weighted mean and variance, and ρ_d =
    cov_d / var_d. ``kind`` is a distance of ``space.distance``: ``edit`` (default: the one-edit move's
    graph distance, so d = 1 pairs are the neighbour pairs of :func:`landscape` wherever the neighbours
    are tabulated) or ``hamming`` (differing decisions). Under a Hamming-type distance, a table of a space
    whose option combinations number at most :data:`MAX_TRANSFORM_CELLS` / (D + 1) (NB201: 15,625, any
    subset of them) is done by a tensor transform in O(D² ∏ k_i), never listing pairs; other tables by
    blocks of rows against the table (one-hot products; O(N²) time, memory bounded by ``block_elements``);
    a non-Hamming edit distance pair by pair, refused past :data:`MAX_SLOW_PAIRS` pairs. ``method`` forces
    ``"transform"`` or ``"blocks"`` (default ``"auto"``).

    Returns one row per distance: ``distance``, ``n_pairs`` (ordered pairs), ``corr`` (NaN where undefined:
    no pair, or no variance among the pairs' values).
    """
    rows = np.asarray(rows, dtype=np.int64)
    values = np.asarray(values, dtype=float)
    if kind not in ("edit", "hamming"):
        raise ValueError(f"kind={kind!r}; allowed: 'edit' or 'hamming'")
    if kind not in getattr(space, "distance_kinds", ()):
        raise ValueError(f"space {space.name!r} has no {kind!r} distance; its distances: "
                         f"{list(getattr(space, 'distance_kinds', ()))}")
    _check_values(space, rows, values, 2)
    fc = values - values.mean()                            # centred: sums of products stay well conditioned
    hamming = kind == "hamming" or _hamming_edit(space)
    strides = _strides(space.sizes)
    small = hamming and strides is not None and (space.width + 1) * math.prod(space.sizes) <= MAX_TRANSFORM_CELLS
    if method not in ("auto", "transform", "blocks"):
        raise ValueError(f"method={method!r}; allowed: 'auto', 'transform' or 'blocks'")
    if method == "transform" and not small:
        raise ValueError(f"method='transform' needs a Hamming-type distance and at most {MAX_TRANSFORM_CELLS:,} "
                         "cells of (D + 1) x (option combinations); use method='auto' or 'blocks'")
    if small and method != "blocks":
        _check_in_range(space, rows)
        count, sum_a, sum_aa, prod = _pair_sums_transform(space, rows, fc)
    else:
        count, sum_a, sum_aa, prod = _pair_sums_blocks(space, rows, fc, kind, block_elements)
    scale = max(1e-300, float((fc ** 2).mean()))
    present = np.flatnonzero(np.rint(count[1:]) > 0)
    out = []
    for d in range(1, int(present[-1]) + 2 if len(present) else 1):
        n_d = int(round(count[d]))
        if n_d == 0:
            out.append({"distance": d, "n_pairs": 0, "corr": float("nan")})
            continue
        mean = sum_a[d] / n_d
        var = sum_aa[d] / n_d - mean ** 2
        cov = prod[d] / n_d - mean ** 2
        corr = float(cov / var) if var > 1e-12 * scale else float("nan")
        out.append({"distance": d, "n_pairs": n_d, "corr": corr})
    table = pd.DataFrame(out, columns=["distance", "n_pairs", "corr"])
    if not table["corr"].notna().any():
        raise ValueError("no distance has a defined correlation: every pair's values are equal, or there are no "
                         "pairs; give a table whose values vary")
    return table


# -- tables ---------------------------------------------------------------------------------------------

def _edge_dag_rows(space: Any, texts: list[str]) -> np.ndarray:
    """Rows of canonical NB201-format strings (``|op~0|+|op~0|op~1|+|...|``), one split per string and
    one hash lookup per edge over the table; −1 rows where a string is not exactly the canonical form
    (those go through ``space.from_str``). A string equal to the canonical rendering of the parsed row is
    exactly what ``space.from_str`` parses to that row."""
    prim = space.primitives[0]
    out = np.full((len(texts), space.width), -1, dtype=np.int64)
    template = "+".join("|" + "|".join(["{}"] * j) + "|" for j in range(1, prim.nodes))
    toks = [x[1:-1].replace("|+|", "|").split("|") for x in texts]
    good = np.fromiter((len(t) == space.width and template.format(*t) == x for t, x in zip(toks, texts)),
                       dtype=bool, count=len(texts))
    if not good.any():
        return out
    cols = np.array([t for t, g in zip(toks, good) if g], dtype=object).reshape(-1, space.width)
    codes = np.stack([pd.Index([f"{op}~{i}" for op in prim.ops]).get_indexer(cols[:, k])
                      for k, (_j, i) in enumerate(prim.edges)], axis=1)
    parsed = (codes >= 0).all(axis=1)
    where = np.flatnonzero(good)[parsed]
    out[where] = codes[parsed]
    return out


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
    texts = [str(x) for x in t[arch_column].tolist()]
    single = len(space.primitives) == 1 and getattr(space.primitives[0], "kind", "") == "edge_dag"
    rows = _edge_dag_rows(space, texts) if single else np.full((len(t), space.width), -1, dtype=np.int64)
    for i in np.flatnonzero((rows < 0).any(axis=1)):
        text = texts[i]
        try:
            rows[i] = space.from_str(text).indices
        except ValueError as e:
            raise ValueError(f"row {i}: {text!r} is not an architecture of space {space.name!r}: {e}") from None
    return rows, t[col].to_numpy(dtype=float)


def landscape_from_table(space: Any, table: pd.DataFrame, *, arch_column: str = "arch",
                         metric: str = "valid_acc") -> LandscapeStats:
    """:func:`landscape` over a table of architecture strings and a metric column."""
    rows, values = table_rows(space, table, arch_column=arch_column, metric=metric)
    return landscape(space, rows, values)


def _neighbour_lists(space: Any, rows: np.ndarray) -> list[np.ndarray]:
    src, dst = neighbour_pairs(space, rows)
    return np.split(dst, np.searchsorted(src, np.arange(1, len(rows))))


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


def _json_float(x: float) -> float | None:
    return None if not math.isfinite(x) else float(x)


# -- nasatlas analyze landscape -----------------------------------------------------------------------

def add_arguments(p: Any) -> None:
    """Options of ``nasatlas analyze landscape``."""
    from .analyze_common import add_table_arguments
    add_table_arguments(p)
    p.add_argument("--walks", type=int, default=0, help="also estimate rho(k) on this many random walks")
    p.add_argument("--walk-length", type=int, default=1000)
    p.add_argument("--max-lag", type=int, default=10)
    p.add_argument("--seed", type=int, default=0, help="seed of the random walks")
    p.add_argument("--distance", choices=("edit", "hamming"), default="edit",
                   help="distance of neighbour_corr_by_distance (default: edit, the one-edit move's)")


def run_cli(args: Any) -> dict[str, Any]:
    """``nasatlas analyze landscape``: the keys of :class:`LandscapeStats` (with ``basin_size_global``,
    ``basin_share_global`` and their first-improvement ``*_first`` twins), ``neighbour_corr_by_distance``
    (a list of ``{distance, n_pairs, corr}``, corr null where undefined) and, with ``--walks``,
    ``random_walk`` (``rho``, ``correlation_length``, ``walks``, ``length``)."""
    from nasatlas.spaces.declaration import load_space

    from .analyze_common import read_table
    space = load_space(args.space)
    table = read_table(args.table)
    rows, values = table_rows(space, table, arch_column=args.arch_column, metric=args.metric)
    stats: dict[str, Any] = landscape(space, rows, values).to_dict()
    by_d = neighbour_correlation_by_distance(space, rows, values, kind=getattr(args, "distance", "edit"))
    stats["neighbour_corr_by_distance"] = [
        {"distance": int(r.distance), "n_pairs": int(r.n_pairs), "corr": _json_float(r.corr)}
        for r in by_d.itertuples()]
    if args.walks:
        stats["random_walk"] = random_walk_autocorrelation(space, rows, values, rng=np.random.default_rng(args.seed),
                                                           walks=args.walks, length=args.walk_length,
                                                           max_lag=args.max_lag)
    return stats


# -- report section -----------------------------------------------------------------------------------

def _largest_component(n: int, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Indices of the largest connected component of the tabulated neighbour graph."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components
    graph = coo_matrix((np.ones(len(src)), (src, dst)), shape=(n, n))
    _, label = connected_components(graph, directed=False)
    return np.flatnonzero(label == np.bincount(label).argmax())


def _plots(run_dir: Path, rows: np.ndarray, shown: np.ndarray, best: int, objective: str,
           rho: list[float] | None, by_d: pd.DataFrame) -> list[str]:
    """``landscape_fdc.png``, ``landscape_rho.png``, ``landscape_corr_distance.png``; their names (none
    without matplotlib, a dev extra)."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    dist = (rows != rows[best]).sum(axis=1)
    fig, ax = plt.subplots(figsize=(5.5, 3.6), dpi=110)
    ax.scatter(dist + np.linspace(-0.25, 0.25, len(rows)), shown, s=3, alpha=0.25 if len(rows) > 2000 else 0.7, lw=0)
    means = pd.Series(shown).groupby(dist).mean()
    ax.plot(means.index, means.values, "k-o", ms=4, label="mean at each distance")
    ax.set(xlabel="Hamming distance to the best architecture", ylabel=objective)
    ax.legend(fontsize=8)
    plots = [(fig, "landscape_fdc.png")]
    lines = [("landscape_corr_distance.png", by_d["distance"], by_d["corr"], "distance d between two architectures",
              f"corr of {objective} over pairs at d")]
    if rho is not None:
        lines.insert(0, ("landscape_rho.png", np.arange(1, len(rho) + 1), rho, "lag k (random-walk steps)", "ρ(k)"))
    for name, x, y, xlabel, ylabel in lines:
        fig, ax = plt.subplots(figsize=(5.5, 3.2), dpi=110)
        ax.plot(x, y, "o-")
        ax.axhline(0, color="grey", lw=0.5)
        ax.set(xlabel=xlabel, ylabel=ylabel)
        plots.append((fig, name))
    for fig, name in plots:
        fig.tight_layout()
        fig.savefig(run_dir / name)
        plt.close(fig)
    return [name for _, name in plots]


#: ``[analysis.landscape]`` keys and types
_SECTION_PARAMS: dict[str, type] = {"walks": int, "walk_length": int, "max_lag": int, "seed": int, "distance": str}


def _fmt(x: float) -> str:
    return f"{x:.4f}" if math.isfinite(x) else "undefined"


def landscape_section(df: pd.DataFrame, study: dict[str, Any], run_dir: Any = None) -> str:
    """Report section ``landscape``: the statistics of this module over the run's evaluated architectures
    (the log's ok rows, the objective averaged over repeated evaluations of one architecture; negated for
    ``mode = "min"`` so that "best" and "maxima" read as the study's), with plots: fitness vs distance
    to the best, random-walk ρ(k) on the largest connected part of the evaluated neighbour graph, and the
    correlation by distance. ``[analysis.landscape]``: ``walks`` (20; 0: none), ``walk_length`` (1000),
    ``max_lag`` (10), ``seed`` (the study's) and ``distance`` (``edit`` or ``hamming``)."""
    from .analyses import section_params
    from .studyfile import study_space
    params = section_params(study, "landscape", _SECTION_PARAMS)
    st = study.get("study", {})
    objective = st.get("objective")
    if not objective:
        raise ValueError("the landscape analysis needs [study] objective = \"<metric>\" (the value it analyses)")
    space = study_space(study)
    col = f"metric_{objective}"
    ok = df[df["status"] == "ok"] if "status" in df.columns else df
    if col not in ok.columns:
        raise ValueError(f"the landscape analysis: the log has no column {col!r} (objective {objective!r}); "
                         f"metric columns: {[c for c in ok.columns if str(c).startswith('metric_')]}")
    sign = -1.0 if st.get("mode", "max") == "min" else 1.0
    per_arch = ok.dropna(subset=[col]).groupby("arch", sort=False)[col].mean()
    table = pd.DataFrame({"arch": per_arch.index, "value": sign * per_arch.to_numpy(dtype=float)})
    lines = ["## Landscape", ""]
    try:
        rows, values = table_rows(space, table, metric="value")
        stats = landscape(space, rows, values)
        by_d = neighbour_correlation_by_distance(space, rows, values, kind=params.get("distance", "edit"))
    except ValueError as e:
        return "\n".join(lines + [f"The landscape of the {len(table):,} evaluated architectures is undefined: {e}.",
                                  ""])
    s, d = neighbour_pairs(space, rows)
    comp = _largest_component(len(rows), s, d)
    rho: list[float] | None = None
    if len(comp) >= 2 and params.get("walks", 20) > 0:
        rho = random_walk_autocorrelation(space, rows[comp], values[comp],
                                          rng=np.random.default_rng(params.get("seed", int(st.get("seed", 0)))),
                                          walks=params.get("walks", 20), length=params.get("walk_length", 1000),
                                          max_lag=params.get("max_lag", 10))["rho"]
    run = Path(run_dir) if run_dir is not None else None
    best = int(np.argmax(values))
    plots = _plots(run, rows, sign * values, best, objective, rho, by_d) if run is not None else []
    shown_best = sign * stats.best_value
    lines += [f"Over the {stats.n:,} evaluated architectures of `{space.name}` ({objective}, mean over repeated "
              f"evaluations{'; minimised, so maxima below are minima of the objective' if sign < 0 else ''}), "
              "under the one-edit move restricted to evaluated architectures "
              f"({stats.n_pairs:,} ordered neighbour pairs). Best: `{stats.best_arch}` = {shown_best:.4f}.", "",
              "| statistic | value |", "|---|---|",
              f"| fitness–distance correlation (Pearson / Spearman) | {_fmt(stats.fdc_pearson)} / "
              f"{_fmt(stats.fdc_spearman)} |",
              f"| lag-1 pair autocorrelation | {_fmt(stats.autocorr_lag1)} |",
              f"| neighbour-mean correlation | {_fmt(stats.neighbour_mean_corr)} |",
              f"| local maxima (strict / weak) | {stats.strict_local_maxima} / {stats.weak_local_maxima} |",
              f"| basin of the global best, best improvement | {stats.basin_size_global:,} "
              f"({stats.basin_share_global:.1%}) |",
              f"| basin of the global best, first improvement | {stats.basin_size_global_first:,} "
              f"({stats.basin_share_global_first:.1%}) |"]
    if rho is not None:
        ell = -1.0 / math.log(rho[0]) if 0 < rho[0] < 1 else float("nan")
        lines.append(f"| random-walk ρ(1), correlation length ℓ ({len(comp):,} connected architectures) | "
                     f"{_fmt(rho[0])}, {_fmt(ell)} |")
    lines += ["", f"Correlation over all pairs at {params.get('distance', 'edit')} distance d: "
              + ", ".join(f"d={int(r.distance)}: {_fmt(float(r.corr))} ({int(r.n_pairs):,} pairs)"
                          for r in by_d.itertuples()) + ".", ""]
    lines += [f"![{name.removesuffix('.png')}]({name})" for name in plots]
    return "\n".join(lines) + "\n"
