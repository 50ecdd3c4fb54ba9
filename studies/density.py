"""How dense is a search space? Distances between architectures of a seeded uniform sample, under every
distance the space defines, how the nearest neighbour comes closer as the sample grows, and, with a
table, what share of the architectures lies within epsilon of the best.

Distances (``Space.distance``; the kinds a space supports are :func:`distance_kinds`):

* ``hamming``: differing decisions;
* ``edit``: the space's one-edit move count (a cell edge's op or input changed costs 1 each, an
  unordered node's two edges matched at least cost; elsewhere Hamming);
* ``path``: Hamming distance between BANANAS path encodings (White et al. 2021, "BANANAS", Sec. 4),
  for spaces with graph blocks.

All pairwise distances of ``n`` architectures are computed without materialising the ``n x n``
matrix: rows are taken ``chunk`` at a time against the rows after them (the upper triangle), and only
the integer histogram of pair distances and each architecture's nearest-neighbour distance are kept.
``hamming`` and ``edit`` add per-group cost tables (a group = a cell node's decisions, or a few
categorical decisions; the table holds the cost between every two states of the group) gathered with
numpy; ``path`` is ``|a| + |b| - 2 a.b`` over sparse path indicators. Memory per block is bounded by
``max_block_bytes``.

The sample is uniform *without replacement* over the nominal architectures (or over canonical classes
with ``over="unique"``): a nearest neighbour is another architecture, never a second draw of the same
one. Prefixes of one seeded sample give the nearest-neighbour curve over sample sizes.

The share within epsilon (metric >= best - epsilon; <= best + epsilon for ``mode="min"``) is given
over the whole table (exact for the space when the table holds every architecture, e.g. the 15,625
NAS-Bench-201 cells) and over a seeded uniform sample of the table's rows with a Wilson score 95%
interval (Wilson 1927, "Probable inference, the law of succession, and statistical inference", JASA 22,
Eq. for the score interval; Brown, Cai & DasGupta 2001, Statistical Science 16, Eq. 4).

``nasatlas analyze density --space NAME [--table FILE --metric M --epsilon 1.0 --mode max]
[--distance KIND] [--sample 2000] [--sizes 100 300 ...] [--over nominal] [--seed 0] --json`` prints:

* ``space``, ``cardinality``, ``over``, ``n`` (architectures in the sample), ``seed``,
  ``distance_kinds`` (the kinds computed);
* ``distances``: ``{kind: {"pairwise": S, "nearest_neighbour": S, "nn_vs_n": [{"n", "nn_mean",
  "nn_median"}, ...]}}`` where ``S`` = ``{"count", "mean", "std", "min", "q05", "q25", "median", "q75",
  "q95", "max", "histogram": {distance: count}}`` (quantiles: the inverted-CDF definition, exact from the
  integer histogram; ``count`` = pairs, or architectures; JSON writes the histogram's keys as strings);
* with ``--table``: ``share_within_eps`` = ``{"metric", "mode", "epsilon", "best", "best_arch",
  "table": {"n", "within", "share", "exhaustive"}, "sample": {"n", "within", "share", "ci_low",
  "ci_high", "confidence"}}``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["DISTANCE_KINDS", "distance_kinds", "pairwise_distances", "pair_scan", "PairScan", "histogram_summary",
           "sample_distinct", "nn_curve", "wilson_interval", "share_within_epsilon", "density", "density_tables",
           "density_section", "add_arguments", "run_cli"]

DISTANCE_KINDS = ("hamming", "edit", "path")
#: largest number of states of a group whose cost table is precomputed (table = states^2 bytes)
MAX_STATES = 2048
#: default memory bound of one block of pairwise distances
MAX_BLOCK_BYTES = 64 << 20
#: nearest-neighbour curve sample sizes (those below the sample size, then the sample size)
DEFAULT_SIZES = (100, 300, 1000, 3000, 10000, 30000, 100000)
Z95 = 1.959963984540054  # the 0.975 quantile of the standard normal


# -- which distances a space has -------------------------------------------------------------------

def _graph_blocks(space: Any) -> list[int]:
    return [i for i, p in enumerate(space.primitives) if hasattr(p, "paths") and hasattr(p, "path_index")]


def distance_kinds(space: Any) -> tuple[str, ...]:
    """The distances ``space`` supports: ``hamming`` and ``edit`` always, ``path`` with a graph block."""
    return ("hamming", "edit") + (("path",) if _graph_blocks(space) else ())


def _check_kind(space: Any, kind: str) -> None:
    kinds = distance_kinds(space)
    if kind not in kinds:
        why = " (it has no graph block, so no path encoding)" if kind == "path" else ""
        raise ValueError(f"space {space.name!r} has no distance {kind!r}{why}; its distances: {list(kinds)}")


# -- distance kernels --------------------------------------------------------------------------------

@dataclass
class _Group:
    """Columns of the decision vector whose cost adds up independently of the other columns."""

    cols: np.ndarray
    sizes: tuple[int, ...]
    cost: Callable[[np.ndarray, np.ndarray], np.ndarray]   # (..., w) x (..., w) -> (...) ints, broadcast
    bound: int                                              # the largest cost
    table: np.ndarray | None = None                         # (S, S) cost between every two states
    tabulate: bool = True                                   # False: the cost needs valid rows (constrained block)

    def prepare(self) -> None:
        if self.tabulate and math.prod(self.sizes) <= MAX_STATES:
            from nasatlas.spaces.space import enumerate_product
            grid = enumerate_product(self.sizes)
            self.table = np.asarray(self.cost(grid[:, None, :], grid[None, :, :]), dtype=np.int64)
            self.bound = int(self.table.max())

    def codes(self, rows: np.ndarray) -> np.ndarray:
        code = np.zeros(len(rows), dtype=np.intp)
        for c, s in zip(self.cols, self.sizes):
            code = code * s + rows[:, c]
        return code


def _hamming_cost(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a != b, axis=-1)


def _hamming_groups(cols: Sequence[int], sizes: Sequence[int]) -> list[_Group]:
    """Consecutive decisions packed while their joint state count stays within :data:`MAX_STATES`."""
    groups: list[list[int]] = []
    cur: list[int] = []
    prod = 1
    for c, s in zip(cols, sizes):
        if cur and prod * s > MAX_STATES:
            groups.append(cur)
            cur, prod = [], 1
        cur.append(c)
        prod *= s
    if cur:
        groups.append(cur)
    size = dict(zip(cols, sizes))
    return [_Group(np.asarray(g), tuple(size[c] for c in g), _hamming_cost, len(g)) for g in groups]


def _cell_node_cost(p: Any, b: int) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """Edit cost of one cell node, exactly ``CellDAG._edit_one``'s term: per slot pairing, an edge
    costs [input differs] + [op differs]; unordered nodes take the cheapest pairing; + [combine
    differs]."""
    import itertools
    lookup = np.asarray(p.tuples[b], dtype=np.int64).reshape(-1, p.k)
    perms = [tuple(range(p.k))] if p.ordered else list(itertools.permutations(range(p.k)))

    def cost(a: np.ndarray, c: np.ndarray) -> np.ndarray:
        ia, ic = lookup[a[..., 0]], lookup[c[..., 0]]
        ka, kc = a[..., 1:1 + p.k], c[..., 1:1 + p.k]
        best: np.ndarray = np.full(np.broadcast_shapes(ia.shape[:-1], ic.shape[:-1]), 2 * p.k, dtype=np.int64)
        for perm in perms:
            tot = sum(((ia[..., s] != ic[..., t]).astype(np.int64) + (ka[..., s] != kc[..., t])
                       for s, t in enumerate(perm)), start=np.zeros_like(best))
            best = np.minimum(best, tot)
        if p.has_combine:
            best = best + (a[..., 1 + p.k] != c[..., 1 + p.k])
        return np.asarray(best)
    return cost


def _groups(space: Any, kind: str) -> list[_Group]:
    from nasatlas.spaces.cell import CellDAG
    from nasatlas.spaces.primitives import Primitive
    groups: list[_Group] = []
    offset = 0
    for p in space.primitives:
        cols = list(range(offset, offset + p.width))
        if kind == "edit" and isinstance(p, CellDAG) and type(p).edit_distance is CellDAG.edit_distance:
            for b in range(p.nodes):
                node = cols[b * p.stride:(b + 1) * p.stride]
                groups.append(_Group(np.asarray(node), tuple(p.sizes[b * p.stride:(b + 1) * p.stride]),
                                     _cell_node_cost(p, b), 2 * p.k + int(p.has_combine)))
        elif kind == "edit" and type(p).edit_distance is not Primitive.edit_distance:   # a block's own rule
            groups.append(_Group(np.asarray(cols), tuple(p.sizes), p.edit_distance, int(np.iinfo(np.int32).max),
                                 tabulate=p.is_product))
        else:
            groups.extend(_hamming_groups(cols, p.sizes))
        offset += p.width
    for g in groups:
        g.prepare()
    return groups


def _uint(maximum: int) -> Any:
    """The smallest unsigned dtype holding 0 .. ``maximum`` with one value to spare (the sentinel)."""
    for dt in (np.uint8, np.uint16, np.uint32):
        if maximum < np.iinfo(dt).max:
            return dt
    return np.uint64


class _Kernel:
    """Distances between row subsets of one fixed set of rows, for one kind, as the smallest unsigned
    dtype that holds the largest possible distance plus a sentinel (``np.iinfo(dtype).max``)."""

    def __init__(self, space: Any, rows: np.ndarray, kind: str) -> None:
        _check_kind(space, kind)
        self.rows = rows
        self.kind = kind
        if kind == "path":
            self.paths = _path_matrix(space, rows)
            self.norms = np.asarray(self.paths.sum(axis=1)).ravel().astype(np.int64)
            self.dtype = _uint(2 * int(self.norms.max(initial=0)))
            self.bytes_per_pair = 48
            return
        self.groups = _groups(space, kind)
        self.codes = [g.codes(rows) if g.table is not None else None for g in self.groups]
        self.dtype = _uint(sum(g.bound for g in self.groups))
        for g in self.groups:
            if g.table is not None:
                g.table = g.table.astype(self.dtype)
        direct = any(g.table is None for g in self.groups)
        # the block, a gathered term, bincount's intp copy, a mask
        self.bytes_per_pair = 2 * np.dtype(self.dtype).itemsize + 10 + (64 if direct else 0)

    @property
    def sentinel(self) -> int:
        return int(np.iinfo(self.dtype).max)

    def block(self, ia: np.ndarray, ib: np.ndarray) -> np.ndarray:
        """``(len(ia), len(ib))`` distances between rows ``ia`` and rows ``ib`` (index arrays)."""
        if self.kind == "path":
            dot = (self.paths[ia] @ self.paths[ib].T).toarray()
            return (self.norms[ia][:, None] + self.norms[ib][None, :] - 2 * dot).astype(self.dtype)
        ra, rb = self.rows[ia], self.rows[ib]
        out = np.zeros((len(ra), len(rb)), dtype=self.dtype)
        for g, code in zip(self.groups, self.codes):
            if g.table is not None and code is not None:
                out += g.table[code[ia]][:, code[ib]]
            else:
                out += g.cost(ra[:, g.cols][:, None, :], rb[:, g.cols][None, :, :]).astype(self.dtype)
        return out


def _path_matrix(space: Any, rows: np.ndarray) -> Any:
    """Sparse ``(n, vocabulary)`` 0/1 BANANAS path indicators, the graph blocks side by side (the
    layout of ``nasatlas.spaces.encodings.path_encoding``, without its dense matrix)."""
    from scipy import sparse
    idx = _graph_blocks(space)
    blocks = space.blocks(rows)
    indptr, indices = [0], []
    sizes = [space.primitives[i].path_vocabulary_size() for i in idx]
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    for r in range(len(rows)):
        ids: set[int] = set()
        for i, off in zip(idx, offsets):
            p = space.primitives[i]
            ids.update(int(off) + p.path_index(path) for path in p.paths(blocks[i][r]))
        indices.extend(sorted(ids))
        indptr.append(len(indices))
    data = np.ones(len(indices), dtype=np.int64)
    return sparse.csr_matrix((data, np.asarray(indices, dtype=np.int64), np.asarray(indptr, dtype=np.int64)),
                             shape=(len(rows), int(sum(sizes))))


def _as_rows(space: Any, rows: Any) -> np.ndarray:
    from nasatlas.spaces.primitives import check_rows
    arr = check_rows(np.asarray(rows), space.width, space.name)
    space.validate(arr)
    return arr


def _chunk(n: int, bytes_per_pair: int, max_block_bytes: int) -> int:
    if max_block_bytes < bytes_per_pair:
        raise ValueError(f"max_block_bytes={max_block_bytes} is too small; give at least {bytes_per_pair}")
    return int(max(1, min(n, max_block_bytes // max(1, n * bytes_per_pair))))


def pairwise_distances(space: Any, rows_a: Any, rows_b: Any = None, kind: str = "edit", *,
                       max_block_bytes: int = MAX_BLOCK_BYTES) -> np.ndarray:
    """The full ``(len(a), len(b))`` distance matrix (``b = a`` when omitted), chunked over ``a``;
    equal to ``space.distance(a[:, None], b[None], kind)``. For many architectures use
    :func:`pair_scan`, which never holds the matrix."""
    a = _as_rows(space, rows_a)
    b = a if rows_b is None else _as_rows(space, rows_b)
    both = np.concatenate([a, b]) if rows_b is not None else a
    kern = _Kernel(space, both, kind)
    ib = np.arange(len(a), len(both)) if rows_b is not None else np.arange(len(a))
    out = np.empty((len(a), len(b)), dtype=np.int64)
    c = _chunk(len(b), kern.bytes_per_pair, max_block_bytes)
    for i0 in range(0, len(a), c):
        out[i0:i0 + c] = kern.block(np.arange(i0, min(i0 + c, len(a))), ib)
    return out


@dataclass(frozen=True)
class PairScan:
    """The pair-distance histogram (``hist[d]`` = unordered pairs at distance ``d``) and each
    architecture's distance to its nearest other architecture."""

    kind: str
    hist: np.ndarray
    nn: np.ndarray


def pair_scan(space: Any, rows: Any, kind: str = "edit", *, max_block_bytes: int = MAX_BLOCK_BYTES) -> PairScan:
    """All ``n (n - 1) / 2`` pair distances of ``rows``, kept as a histogram, and nearest-neighbour
    distances; blocks of ``chunk x (n - i0)`` over the upper triangle, at most ``max_block_bytes``."""
    rows = _as_rows(space, rows)
    n = len(rows)
    if n < 2:
        raise ValueError(f"pairwise distances need at least 2 architectures; got {n}")
    kern = _Kernel(space, rows, kind)
    c = _chunk(n, kern.bytes_per_pair, max_block_bytes)
    big = kern.sentinel
    nn = np.full(n, big, dtype=kern.dtype)
    hist = np.zeros(1, dtype=np.int64)
    for i0 in range(0, n, c):
        i1 = min(n, i0 + c)
        d = kern.block(np.arange(i0, i1), np.arange(i0, n))
        for r in range(i1 - i0):
            d[r, :r + 1] = big                   # the diagonal, and pairs an earlier row counted
        flat = d.reshape(-1)
        h = np.bincount(flat, minlength=big + 1)[:big] if big < 1 << 16 else np.bincount(flat[flat != big])
        if len(h) > len(hist):
            hist = np.pad(hist, (0, len(h) - len(hist)))
        hist[:len(h)] += h
        np.minimum(nn[i0:i1], d.min(axis=1), out=nn[i0:i1])
        np.minimum(nn[i0:], d.min(axis=0), out=nn[i0:])
    hist = np.trim_zeros(hist, "b")
    return PairScan(kind, hist, nn)


# -- statistics --------------------------------------------------------------------------------------

_QUANTILES = {"q05": 0.05, "q25": 0.25, "median": 0.5, "q75": 0.75, "q95": 0.95}


def histogram_summary(hist: np.ndarray) -> dict[str, Any]:
    """Count, mean, std, min, q05..q95 (inverted-CDF: the smallest ``d`` whose cumulative share is at
    least ``q``, numpy's ``method="inverted_cdf"``), max and the histogram, of an integer histogram."""
    hist = np.asarray(hist, dtype=np.int64)
    total = int(hist.sum())
    if total == 0:
        raise ValueError("the histogram is empty: no distances to summarise")
    d = np.arange(len(hist))
    mean = float((d * hist).sum() / total)
    var = float((hist * (d - mean) ** 2).sum() / total)
    cum = np.cumsum(hist)
    nz = np.flatnonzero(hist)
    out: dict[str, Any] = {"count": total, "mean": mean, "std": math.sqrt(var), "min": int(nz[0])}
    for key, q in _QUANTILES.items():
        out[key] = int(np.searchsorted(cum, q * total, side="left"))
    out["max"] = int(nz[-1])
    out["histogram"] = {int(k): int(hist[k]) for k in nz}
    return out


def sample_distinct(space: Any, rng: np.random.Generator, n: int, over: str = "nominal") -> np.ndarray:
    """``n`` distinct architectures, uniform without replacement over the space's architectures
    (``over="nominal"``) or canonical classes (``over="unique"``, as ``space.sample`` represents them).

    A small enumerable space (``4 n`` above its size) is permuted; otherwise uniform draws are made
    and repeats dropped, keeping first occurrences in draw order, which is a uniform ordered sample
    without replacement (so every prefix is one too).
    """
    from nasatlas.spaces.space import MAX_ENUMERATE
    if not isinstance(rng, np.random.Generator):
        raise TypeError("rng must be a numpy.random.Generator, e.g. numpy.random.default_rng(seed)")
    if over not in ("nominal", "unique"):
        raise ValueError(f"over={over!r}; allowed: 'nominal' or 'unique'")
    if n < 2:
        raise ValueError(f"sample={n}: a density needs at least 2 architectures")
    if over == "nominal":
        total = space.cardinality()
    else:
        space.sample(rng, 0, over="unique")      # the space's own error where classes are not enumerable
        total = space.unique_cardinality()
    if total is not None and n > total:
        raise ValueError(f"sample={n} but space {space.name!r} has only {total:,} "
                         f"{'architectures' if over == 'nominal' else 'unique classes'}; ask for at most that")
    if over == "nominal" and total <= MAX_ENUMERATE and 4 * n > total:
        return np.asarray(space.enumerate()[rng.choice(total, size=n, replace=False)])
    out: list[np.ndarray] = []
    seen: set[bytes] = set()
    for _ in range(10_000):
        for row in space.sample(rng, max(1024, 2 * (n - len(out))), over=over):
            key = row.tobytes()
            if key not in seen:
                seen.add(key)
                out.append(row)
                if len(out) == n:
                    return np.asarray(out, dtype=np.int64)
    raise ValueError(f"could not draw {n} distinct architectures of {space.name!r} in 10,000 rounds; ask for fewer")


def _sizes(n: int, sizes: Sequence[int] | None) -> list[int]:
    if sizes is None:
        return [s for s in DEFAULT_SIZES if s < n] + [n]
    bad = [s for s in sizes if not 2 <= int(s) <= n]
    if bad:
        raise ValueError(f"sizes {bad}: each nearest-neighbour sample size must be in 2 .. {n} (the sample)")
    return sorted({int(s) for s in sizes})


def nn_curve(space: Any, rows: Any, kind: str = "edit", sizes: Sequence[int] | None = None, *,
             max_block_bytes: int = MAX_BLOCK_BYTES, full: PairScan | None = None) -> pd.DataFrame:
    """Mean and median nearest-neighbour distance within the first ``m`` rows, for each ``m`` in
    ``sizes`` (default 100, 300, 1000, ... below ``len(rows)``, and ``len(rows)``): with a uniform sample
    the prefixes are uniform samples of size ``m``. ``full`` reuses a scan of all rows."""
    rows = _as_rows(space, rows)
    out = []
    for m in _sizes(len(rows), sizes):
        scan = full if full is not None and m == len(rows) else pair_scan(space, rows[:m], kind,
                                                                           max_block_bytes=max_block_bytes)
        out.append({"distance": kind, "n": m, "nn_mean": float(scan.nn.mean()), "nn_median": float(np.median(scan.nn))})
    return pd.DataFrame(out)


def wilson_interval(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a binomial share ``k / n``: ``(p + z^2/2n ± z sqrt(p(1-p)/n +
    z^2/4n^2)) / (1 + z^2/n)`` (Wilson 1927; Brown, Cai & DasGupta 2001, Eq. 4)."""
    if n < 1:
        raise ValueError(f"n={n}: a share needs at least one architecture")
    if not 0 <= k <= n:
        raise ValueError(f"k={k} must lie in 0 .. n={n}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence={confidence} must lie strictly between 0 and 1")
    if confidence == 0.95:
        z = Z95
    else:
        from scipy.stats import norm
        z = float(norm.ppf(0.5 + confidence / 2))
    p = k / n
    den = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / den
    half = z / den * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def share_within_epsilon(space: Any, table: pd.DataFrame, *, metric: str, epsilon: float = 1.0,
                         mode: str = "max", arch_column: str = "arch", sample: int | None = None,
                         rng: np.random.Generator | None = None, confidence: float = 0.95) -> dict[str, Any]:
    """Share of the table's architectures with metric >= best - epsilon (``mode="max"``; <= best +
    epsilon for ``"min"``): exact over the whole table (``exhaustive`` when the table holds every
    architecture of the space once: then it is the space's share), and over a uniform sample of
    ``sample`` rows without replacement (drawn with ``rng``) with a Wilson ``confidence`` interval."""
    from .landscape import table_rows
    if mode not in ("max", "min"):
        raise ValueError(f"mode={mode!r}; allowed: 'max' (higher is better) or 'min'")
    if not (epsilon >= 0 and math.isfinite(epsilon)):
        raise ValueError(f"epsilon={epsilon}: give a finite value >= 0 in the metric's units")
    rows, values = table_rows(space, table, arch_column=arch_column, metric=metric)
    if len(values) == 0:
        raise ValueError(f"the table has no architecture with a value of {metric!r}")
    if not np.isfinite(values).all():
        raise ValueError(f"{metric!r} contains inf: drop those rows first")
    i_best = int(np.argmax(values) if mode == "max" else np.argmin(values))
    best = float(values[i_best])
    ok = values >= best - epsilon if mode == "max" else values <= best + epsilon
    distinct = len(np.unique(rows, axis=0))
    out: dict[str, Any] = {
        "metric": metric, "mode": mode, "epsilon": float(epsilon), "best": best,
        "best_arch": space.to_str(rows[i_best]),
        "table": {"n": len(values), "within": int(ok.sum()), "share": float(ok.mean()),
                  "exhaustive": bool(distinct == len(values) == space.cardinality())}}
    if sample is not None:
        if rng is None:
            raise ValueError("a sampled share needs rng, a numpy.random.Generator")
        m = min(int(sample), len(values))
        if m < 1:
            raise ValueError(f"sample={sample}: give at least 1 row")
        pick = rng.choice(len(values), size=m, replace=False)
        k = int(ok[pick].sum())
        lo, hi = wilson_interval(k, m, confidence)
        out["sample"] = {"n": m, "within": k, "share": k / m, "ci_low": lo, "ci_high": hi, "confidence": confidence}
    return out


# -- the analysis ------------------------------------------------------------------------------------

def density(space: Any, *, rng: np.random.Generator, sample: int = 2000, kinds: Sequence[str] | None = None,
            sizes: Sequence[int] | None = None, over: str = "nominal", rows: Any = None,
            max_block_bytes: int = MAX_BLOCK_BYTES) -> dict[str, Any]:
    """Pairwise and nearest-neighbour distance summaries and the nearest-neighbour curve of a uniform
    sample of ``sample`` distinct architectures drawn with ``rng`` (or of the given ``rows``), under
    each distance in ``kinds`` (default: every distance the space has). Keys: module docstring."""
    kinds = list(kinds) if kinds else list(distance_kinds(space))
    for k in kinds:
        _check_kind(space, k)
    rows = sample_distinct(space, rng, sample, over) if rows is None else _as_rows(space, rows)
    if len(rows) < 2:
        raise ValueError(f"a density needs at least 2 architectures; got {len(rows)}")
    out: dict[str, Any] = {"space": space.name, "cardinality": space.cardinality(), "over": over, "n": len(rows),
                           "distance_kinds": kinds, "distances": {}}
    for k in kinds:
        scan = pair_scan(space, rows, k, max_block_bytes=max_block_bytes)
        curve = nn_curve(space, rows, k, sizes, max_block_bytes=max_block_bytes, full=scan)
        out["distances"][k] = {
            "pairwise": histogram_summary(scan.hist),
            "nearest_neighbour": histogram_summary(np.bincount(scan.nn)),
            "nn_vs_n": curve.drop(columns="distance").to_dict("records")}
    return out


def density_tables(result: dict[str, Any]) -> dict[str, pd.DataFrame]:
    """The result of :func:`density` as DataFrames: ``histogram`` (distance, d, pairs, pair_share, nn,
    nn_share), ``quantiles`` (distance, of = pairwise | nearest_neighbour, count, mean, std, min, q05 ..
    q95, max) and ``nn_vs_n`` (distance, n, nn_mean, nn_median)."""
    hist, quant, curve = [], [], []
    for k, r in result["distances"].items():
        pw, nn = r["pairwise"], r["nearest_neighbour"]
        for d in sorted(set(pw["histogram"]) | set(nn["histogram"])):
            hist.append({"distance": k, "d": d, "pairs": pw["histogram"].get(d, 0),
                         "pair_share": pw["histogram"].get(d, 0) / pw["count"], "nn": nn["histogram"].get(d, 0),
                         "nn_share": nn["histogram"].get(d, 0) / nn["count"]})
        for of, s in (("pairwise", pw), ("nearest_neighbour", nn)):
            quant.append({"distance": k, "of": of, **{key: v for key, v in s.items() if key != "histogram"}})
        curve += [{"distance": k, **c} for c in r["nn_vs_n"]]
    return {"histogram": pd.DataFrame(hist), "quantiles": pd.DataFrame(quant), "nn_vs_n": pd.DataFrame(curve)}


# -- report section ----------------------------------------------------------------------------------

#: defaults of ``[analysis.density]``: sample size, and uniform samples the run's architectures are compared with
REPORT_SAMPLE = 1000
REPORT_REPEATS = 20
_SECTION_PARAMS: dict[str, type] = {"spaces": list, "sample": int, "distances": list, "sizes": list, "over": str,
                                    "seed": int}


def _plots(tables: dict[str, pd.DataFrame], run: Path, name: str) -> list[str]:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # matplotlib is a dev extra
        return []
    tag = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in name)
    h, c = tables["histogram"], tables["nn_vs_n"]
    kinds = list(dict.fromkeys(h["distance"]))
    fig, axes = plt.subplots(1, len(kinds), figsize=(3.2 * len(kinds), 3.0), squeeze=False)
    for ax, k in zip(axes[0], kinds):
        g = h[h["distance"] == k]
        ax.bar(g["d"] - 0.2, g["pair_share"], width=0.4, label="all pairs")
        ax.bar(g["d"] + 0.2, g["nn_share"], width=0.4, label="nearest neighbour")
        ax.set_xlabel(f"{k} distance")
        ax.set_ylabel("share")
    axes[0][0].legend(fontsize=7)
    fig.suptitle(f"{name}: distances in a uniform sample", fontsize=9)
    fig.tight_layout()
    fig.savefig(run / f"density_distances_{tag}.png", dpi=110)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(4.5, 3.2))
    for k, g in c.groupby("distance", sort=False):
        ax.plot(g["n"], g["nn_mean"], marker="o", ms=3, label=str(k))
    ax.set_xscale("log")
    ax.set_xlabel("sample size n")
    ax.set_ylabel("mean nearest-neighbour distance")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(run / f"density_nn_vs_n_{tag}.png", dpi=110)
    plt.close(fig)
    return [f"![{name} distance histograms](density_distances_{tag}.png)", "",
            f"![{name} nearest neighbour vs n](density_nn_vs_n_{tag}.png)", ""]


def _evaluated_vs_uniform(space: Any, df: pd.DataFrame, rng: np.random.Generator) -> list[str]:
    archs = df.loc[df["status"] == "ok", "arch"].dropna().unique() if len(df) and {"arch", "status"} <= set(df) else []
    ev = []
    for a in archs:
        try:
            ev.append(space.from_str(str(a)).indices)
        except ValueError:
            continue
    if not 2 <= len(ev) <= min(REPORT_SAMPLE, space.cardinality() // 2):
        return []
    own = float(pair_scan(space, np.asarray(ev), "edit").nn.mean())
    ref = np.array([pair_scan(space, sample_distinct(space, rng, len(ev)), "edit").nn.mean()
                    for _ in range(REPORT_REPEATS)])
    lo, hi = np.quantile(ref, [0.05, 0.95])
    return [f"The run's {len(ev)} distinct evaluated architectures lie {own:.2f} edits from their nearest evaluated "
            f"neighbour on average; {REPORT_REPEATS} uniform samples of {len(ev)} give {ref.mean():.2f} (5–95%: "
            f"{lo:.2f}–{hi:.2f}). Below that range, the search concentrated its evaluations; inside it, they are "
            "spread like uniform draws.", ""]


def density_section(df: pd.DataFrame, study: dict[str, Any], run_dir: str | Path) -> str:
    """Report section ``density``: per space, distances in a uniform sample of distinct architectures under
    each of its distances (a quantile table and ``density_distances_<space>.png``), the nearest-neighbour
    curve (``density_nn_vs_n_<space>.png``) and, for the study's own space (2 .. ``sample`` distinct
    evaluated architectures, at most half the space), their mean nearest-neighbour edit distance beside
    :data:`REPORT_REPEATS` uniform samples of the same size.

    ``[analysis.density]`` may set ``spaces`` (registered names or declaration files; default: the
    study's space; a listed space named like the study's is the study's, with its params), ``sample``
    (:data:`REPORT_SAMPLE`, or the whole of a smaller space), ``distances`` (default: every distance a
    space has), ``sizes`` (the curve's sample sizes), ``over`` (``"nominal"``) and ``seed`` (default:
    the study's).
    """
    from nasatlas.spaces.declaration import load_space

    from .analyses import section_params
    from .studyfile import study_space
    params = section_params(study, "density", _SECTION_PARAMS)
    own = study_space(study)
    listed = [load_space(str(n)) for n in params.get("spaces", [])] or [own]
    seed = int(params.get("seed", study.get("study", {}).get("seed", 0)))
    lines = ["## How dense is the space?", ""]
    for i, space in enumerate(own if s.name == own.name else s for s in listed):
        rng = np.random.default_rng(np.random.SeedSequence([seed, i]))
        n = int(min(params.get("sample", REPORT_SAMPLE), space.cardinality()))
        res = density(space, rng=rng, sample=n, kinds=params.get("distances"), sizes=params.get("sizes"),
                      over=params.get("over", "nominal"))
        tables = density_tables(res)
        lines += [f"### `{space.name}`", "",
                  f"{n:,} distinct architectures drawn uniformly ({res['over']}) from `{space.name}` "
                  f"({space.cardinality():,} architectures; seed {seed}); distances: "
                  f"{', '.join(res['distance_kinds'])}.",
                  "", "| distance | of | mean | median | q05 | q95 | max |", "|---|---|---|---|---|---|---|"]
        for r in tables["quantiles"].itertuples():
            lines.append(f"| {r.distance} | {r.of.replace('_', ' ')} | {r.mean:.2f} | {r.median} | {r.q05} "
                         f"| {r.q95} | {r.max} |")
        lines += ["", "Mean nearest-neighbour distance by sample size: "
                  + "; ".join(f"{k}: " + ", ".join(f"n={c['n']:,} → {c['nn_mean']:.2f}" for c in r["nn_vs_n"])
                              for k, r in res["distances"].items()), ""]
        if space is own:
            lines += _evaluated_vs_uniform(space, df, rng)
        lines += _plots(tables, Path(run_dir), space.name)
    return "\n".join(lines) + "\n"


# -- nasatlas analyze density ------------------------------------------------------------------------

def add_arguments(p: Any) -> None:
    """Options of ``nasatlas analyze density``."""
    from .analyze_common import add_table_arguments
    add_table_arguments(p, required=False)
    p.add_argument("--epsilon", type=float, default=1.0, help="within epsilon of the best, in the metric's units")
    p.add_argument("--mode", choices=["max", "min"], default="max", help="max: higher metric is better")
    p.add_argument("--distance", action="append", choices=list(DISTANCE_KINDS), default=None,
                   help="a distance (repeatable; default: every distance the space has)")
    p.add_argument("--sample", type=int, default=2000,
                   help="distinct architectures in the uniform sample (and table rows sampled for the share)")
    p.add_argument("--sizes", type=int, nargs="+", default=None, help="nearest-neighbour curve sample sizes")
    p.add_argument("--over", choices=["nominal", "unique"], default="nominal")
    p.add_argument("--seed", type=int, default=0)


def run_cli(args: Any) -> dict[str, Any]:
    """``nasatlas analyze density``: the keys listed in the module docstring."""
    from nasatlas.spaces.declaration import load_space

    from .analyze_common import read_table
    space = load_space(args.space)
    ss = np.random.SeedSequence(args.seed).spawn(2)
    res = density(space, rng=np.random.default_rng(ss[0]), sample=args.sample, kinds=args.distance,
                  sizes=args.sizes, over=args.over)
    res = {"seed": args.seed, **res}
    if args.table:
        res["share_within_eps"] = share_within_epsilon(
            space, read_table(args.table), metric=args.metric, epsilon=args.epsilon, mode=args.mode,
            arch_column=args.arch_column, sample=args.sample, rng=np.random.default_rng(ss[1]))
    return res
