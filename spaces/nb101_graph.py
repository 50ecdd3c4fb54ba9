"""Pure graph utilities of the NAS-Bench-101 space (Ying et al. 2019, Sec. 2.1-2.2).

A NAS-Bench-101 cell ("module") is a DAG of ``v`` vertices in topological order: vertex 0 is the
input, vertex ``v-1`` the output, each of the ``n = v-2`` interior vertices carries one op label.
The adjacency matrix is strictly upper triangular. NAS-Bench-101 enumerates, for ``v = 2..7``,
every matrix with at most 9 edges that is a *full DAG* (every non-input vertex has an in-edge,
every non-output vertex an out-edge; in topological order this means every vertex lies on an
input -> output path, so the matrix is already pruned), times every labelling of its interior
vertices, and merges isomorphic graphs: 1,293,208 labelled specs, 423,624 classes (Sec. 2.2).

Everything here is vectorised over matrices and works on integer *masks*: bit ``e`` of a mask is
the edge ``i -> j`` with ``e = i + j(j-1)/2`` (column-major over the upper triangle, the bit order
of NAS-Bench-101's ``generate_graphs`` script), so masks enumerate in that script's order.

Isomorphism: two specs of ``v`` vertices are isomorphic when a permutation of the interior vertices
maps one matrix and labelling onto the other (input and output are fixed by their labels). The
canonical representative of a class is its member of smallest ``(mask, label code)`` among the
*upper-triangular* relabellings, i.e. its first member in NAS-Bench-101's enumeration order.
Classes are counted exactly by Burnside's lemma: the labellings of one unlabelled matrix ``G``
fall into ``(1/|Aut G|) * sum_{g in Aut G} k^{cycles(g)}`` classes.

:func:`nb101_hash` is an independent implementation of NAS-Bench-101's iterative MD5 fingerprint
(``graph_util.hash_module``: Weisfeiler-Lehman-style refinement of in/out-degree and label hashes),
kept for interoperability; the exact canonical form above does not depend on it.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["INPUT", "OUTPUT", "NONE", "NB101_OPS", "edge_bit", "edge_pairs", "full_dag_masks", "mask_to_matrix",
           "matrix_to_mask", "is_full_dag", "prune", "PermTable", "perm_table", "canonical_keys",
           "automorphisms", "burnside_classes", "orbit_minimal_codes", "label_digits", "Level",
           "build_level", "nb101_hash", "is_isomorphic"]

INPUT = "input"
OUTPUT = "output"
#: the label of an unused padding slot in the fixed-width decision vector
NONE = "none"
#: NAS-Bench-101's interior ops, in the order of its ``available_ops`` (label indices 0, 1, 2)
NB101_OPS: tuple[str, ...] = ("conv3x3-bn-relu", "conv1x1-bn-relu", "maxpool3x3")


def edge_bit(i: int, j: int) -> int:
    """Bit index of the edge ``i -> j`` (``i < j``): column-major over the upper triangle."""
    if not 0 <= i < j:
        raise ValueError(f"edge {i} -> {j}: an edge must go from a lower to a higher vertex index")
    return i + j * (j - 1) // 2


def edge_pairs(v: int) -> np.ndarray:
    """``(v(v-1)/2, 2)`` array of ``(source, target)`` for every bit index, in bit order."""
    return np.asarray([(i, j) for j in range(1, v) for i in range(j)], dtype=np.int64).reshape(-1, 2)


def full_dag_masks(v: int, max_edges: int) -> np.ndarray:
    """Sorted masks of every full DAG on ``v`` vertices with at most ``max_edges`` edges.

    Vectorised over all ``2^(v(v-1)/2)`` masks (2,097,152 for ``v = 7``, ~0.1 s): a mask is kept
    when every column but the first and every row but the last has a set bit.
    """
    if v < 2:
        raise ValueError(f"v={v}: a cell has at least 2 vertices (input and output)")
    pairs = edge_pairs(v)
    masks = np.arange(1 << len(pairs), dtype=np.int64)
    ok = np.ones(masks.shape, dtype=bool)
    for j in range(1, v):  # every non-input vertex has an in-edge
        ok &= (masks & int(sum(1 << e for e, (_, t) in enumerate(pairs.tolist()) if t == j))) != 0
    for i in range(v - 1):  # every non-output vertex has an out-edge
        ok &= (masks & int(sum(1 << e for e, (s, _) in enumerate(pairs.tolist()) if s == i))) != 0
    kept = masks[ok]
    count = np.zeros(kept.shape, dtype=np.int64)
    for e in range(len(pairs)):
        count += (kept >> e) & 1
    return kept[count <= max_edges]


def mask_to_matrix(mask: int, v: int) -> np.ndarray:
    """The ``v x v`` 0/1 upper-triangular matrix of a mask."""
    m = np.zeros((v, v), dtype=np.int64)
    for e, (i, j) in enumerate(edge_pairs(v).tolist()):
        m[i, j] = (int(mask) >> e) & 1
    return m


def matrix_to_mask(matrix: np.ndarray) -> int:
    """The mask of a strictly upper-triangular 0/1 matrix (entries below the diagonal ignored)."""
    m = np.asarray(matrix)
    return sum(1 << e for e, (i, j) in enumerate(edge_pairs(m.shape[0]).tolist()) if m[i, j])


def is_full_dag(matrix: np.ndarray) -> bool:
    """True when every non-input vertex has an in-edge and every non-output vertex an out-edge."""
    m = np.asarray(matrix) != 0
    return bool(m[:, 1:].any(axis=0).all() and m[:-1, :].any(axis=1).all())


def prune(matrix: np.ndarray, ops: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    """Drop vertices not on an input -> output path, keeping the order (NAS-Bench-101's
    ``ModelSpec`` pruning, Sec. 2.1). Raises ValueError when the output is unreachable."""
    m = np.asarray(matrix, dtype=np.int64)
    v = m.shape[0]
    fwd = np.zeros(v, dtype=bool)
    fwd[0] = True
    for j in range(1, v):
        fwd[j] = bool((m[:j, j] != 0)[fwd[:j]].any())
    bwd = np.zeros(v, dtype=bool)
    bwd[v - 1] = True
    for i in range(v - 2, -1, -1):
        bwd[i] = bool((m[i, i + 1:] != 0)[bwd[i + 1:]].any())
    keep = np.flatnonzero(fwd & bwd)
    if len(keep) < 2 or keep[0] != 0 or keep[-1] != v - 1:
        raise ValueError("invalid spec: there is no path from the input vertex to the output vertex")
    return m[np.ix_(keep, keep)].copy(), [str(ops[int(i)]) for i in keep]


@dataclass(frozen=True)
class PermTable:
    """Every permutation of the ``n = v-2`` interior vertices of a ``v``-vertex cell.

    Attributes:
        v: number of vertices.
        perms: ``(P, n)``; ``perms[p, a]`` is the new interior index of interior vertex ``a``.
        bad_mask: ``(P,)``; edges that the permutation would turn downwards (lower triangular).
        new_bit: ``(P, E)``; the bit index of each edge after the permutation (0 where bad).
        cycles: ``(P,)``; number of cycles of each permutation (fixed points included).
    """

    v: int
    perms: np.ndarray
    bad_mask: np.ndarray
    new_bit: np.ndarray
    cycles: np.ndarray

    def permuted_masks(self, masks: np.ndarray) -> np.ndarray:
        """``(N, P)`` masks after each permutation (garbage where ``masks & bad_mask != 0``)."""
        pairs = edge_pairs(self.v)
        if len(pairs) == 0:
            return np.zeros((len(masks), len(self.perms)), dtype=np.int64)
        bits = ((np.asarray(masks, dtype=np.int64)[:, None] >> np.arange(len(pairs))) & 1).astype(np.float64)
        weights = np.exp2(self.new_bit.T.astype(np.float64))  # (E, P); exact below 2^53
        return np.rint(bits @ weights).astype(np.int64)

    def permuted_codes(self, digits: np.ndarray, k: int) -> np.ndarray:
        """``(N, P)`` label codes after each permutation; ``digits`` is ``(N, n)``, most
        significant interior vertex first."""
        n = self.v - 2
        if n == 0:
            return np.zeros((len(digits), len(self.perms)), dtype=np.int64)
        w = (k ** (n - 1 - self.perms.T)).astype(np.float64)  # (n, P): weight of old vertex a
        return np.rint(np.asarray(digits, dtype=np.float64) @ w).astype(np.int64)

    def valid(self, masks: np.ndarray) -> np.ndarray:
        """``(N, P)`` True where the permuted matrix is still upper triangular."""
        return (np.asarray(masks, dtype=np.int64)[:, None] & self.bad_mask[None, :]) == 0


def perm_table(v: int) -> PermTable:
    """Build the :class:`PermTable` of ``v`` vertices (``(v-2)!`` permutations, at most 120 for 7)."""
    n = max(v - 2, 0)
    perm_list = list(itertools.permutations(range(n)))
    perms = np.asarray(perm_list, dtype=np.int64).reshape(len(perm_list), n)
    full = np.concatenate([np.zeros((len(perms), 1), np.int64), perms + 1,
                           np.full((len(perms), 1), v - 1, np.int64)], axis=1)[:, :v]
    pairs = edge_pairs(v)
    src, dst = full[:, pairs[:, 0]], full[:, pairs[:, 1]]  # (P, E)
    bad = src > dst
    new_bit = np.where(bad, 0, src + dst * (dst - 1) // 2)
    bad_mask = (bad.astype(np.int64) << np.arange(len(pairs))).sum(axis=1) if len(pairs) else np.zeros(len(perms),
                                                                                                        np.int64)
    cycles = np.asarray([_cycle_count(p) for p in perms.tolist()], dtype=np.int64)
    return PermTable(v, perms, bad_mask.astype(np.int64), new_bit.astype(np.int64), cycles)


def _cycle_count(perm: Sequence[int]) -> int:
    seen = [False] * len(perm)
    cycles = 0
    for start in range(len(perm)):
        if not seen[start]:
            cycles += 1
            x = start
            while not seen[x]:
                seen[x] = True
                x = perm[x]
    return cycles


def label_digits(codes: np.ndarray, n: int, k: int) -> np.ndarray:
    """``(N, n)`` base-``k`` digits of label codes, most significant (interior vertex 1) first."""
    codes = np.asarray(codes, dtype=np.int64)
    return (codes[:, None] // (k ** np.arange(n - 1, -1, -1, dtype=np.int64))[None, :]) % k


def canonical_keys(table: PermTable, masks: np.ndarray, codes: np.ndarray, k: int,
                   chunk: int = 32_768) -> tuple[np.ndarray, np.ndarray]:
    """Canonical ``(mask, code)`` of each labelled spec: the smallest ``mask * k^n + code`` over
    the interior relabellings that keep the matrix upper triangular (an exact class invariant)."""
    masks = np.asarray(masks, dtype=np.int64)
    codes = np.asarray(codes, dtype=np.int64)
    n = table.v - 2
    kn = k ** n
    out_m = np.empty_like(masks)
    out_c = np.empty_like(codes)
    for s in range(0, len(masks), chunk):
        m, c = masks[s:s + chunk], codes[s:s + chunk]
        key = table.permuted_masks(m) * kn + table.permuted_codes(label_digits(c, n, k), k)
        key = np.where(table.valid(m), key, np.iinfo(np.int64).max)
        best = key.min(axis=1)
        out_m[s:s + chunk], out_c[s:s + chunk] = np.divmod(best, kn)
    return out_m, out_c


def automorphisms(table: PermTable, masks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For unlabelled matrices: ``(canonical masks (N,), automorphism indicator (N, P))``."""
    masks = np.asarray(masks, dtype=np.int64)
    pm = table.permuted_masks(masks)
    valid = table.valid(masks)
    canon = np.where(valid, pm, np.iinfo(np.int64).max).min(axis=1)
    return canon, valid & (pm == masks[:, None])


def burnside_classes(table: PermTable, aut: np.ndarray, k: int) -> np.ndarray:
    """Labelled classes per unlabelled matrix: ``(1/|Aut|) sum_{g in Aut} k^cycles(g)`` (exact)."""
    n = table.v - 2
    weights = np.asarray([k ** int(c) if n else 1 for c in table.cycles], dtype=np.int64)
    total = aut.astype(np.int64) @ weights
    size = aut.sum(axis=1).astype(np.int64)
    if np.any(total % size):
        raise AssertionError("Burnside sum not divisible by |Aut|: the automorphism table is wrong")
    return total // size


def orbit_minimal_codes(table: PermTable, aut_row: np.ndarray, k: int) -> np.ndarray:
    """Label codes that are the smallest of their orbit under the automorphisms ``aut_row``
    (one per labelled class on that matrix), sorted."""
    n = table.v - 2
    codes = np.arange(k ** n, dtype=np.int64)
    if n == 0:
        return codes
    sub = PermTable(table.v, table.perms[aut_row], table.bad_mask[aut_row], table.new_bit[aut_row],
                    table.cycles[aut_row])
    orbit = sub.permuted_codes(label_digits(codes, n, k), k)
    return codes[codes == orbit.min(axis=1)]


@dataclass(frozen=True)
class Level:
    """All full DAGs of one vertex count, with what counting and canonical forms need.

    Attributes:
        v: vertices; ``n = v - 2`` interior vertices, each with one of ``k`` labels.
        masks: sorted masks of the full DAGs (the unlabelled matrices, in enumeration order).
        table: the interior permutations of ``v`` vertices.
        canon_index: ``(M,)`` index into ``masks`` of each matrix's canonical (smallest-mask)
            isomorphic matrix.
        coset: ``(M, P)`` True for the permutations that map the matrix onto its canonical matrix
            (for a canonical matrix: its automorphism group).
        coset_index: ``(M, C)`` those permutations' indices, padded by repeating the first.
        classes: ``(M,)`` labelled classes whose canonical matrix is this one (Burnside; 0 for
            non-canonical matrices).
    """

    v: int
    k: int
    masks: np.ndarray
    table: PermTable
    canon_index: np.ndarray
    coset: np.ndarray
    coset_index: np.ndarray
    classes: np.ndarray

    @property
    def n(self) -> int:
        return self.v - 2

    @property
    def labellings(self) -> int:
        """``k^n`` labellings per matrix."""
        return int(self.k ** self.n)

    @property
    def nominal(self) -> int:
        """Labelled specs of this vertex count."""
        return len(self.masks) * self.labellings

    @property
    def unique(self) -> int:
        """Isomorphism classes of labelled specs of this vertex count."""
        return int(self.classes.sum())

    def canonical(self, matrix_index: np.ndarray, codes: np.ndarray,
                  chunk: int = 65_536) -> tuple[np.ndarray, np.ndarray]:
        """Canonical ``(matrix index, label code)`` of labelled specs: the canonical matrix and
        the smallest label code over the permutations mapping the matrix onto it."""
        mi = np.asarray(matrix_index, dtype=np.int64)
        codes = np.asarray(codes, dtype=np.int64)
        if self.n == 0:
            return self.canon_index[mi], codes.copy()
        out = np.empty_like(codes)
        powers = self.k ** (self.n - 1 - self.table.perms)  # (P, n): weight of old vertex a
        for s in range(0, len(mi), chunk):
            perms = self.coset_index[mi[s:s + chunk]]  # (N, C)
            digits = label_digits(codes[s:s + chunk], self.n, self.k)  # (N, n)
            out[s:s + chunk] = (digits[:, None, :] * powers[perms]).sum(axis=2).min(axis=1)
        return self.canon_index[mi], out

    def representatives(self) -> tuple[np.ndarray, np.ndarray]:
        """``(matrix index, label code)`` of every class's canonical member, sorted."""
        reps = np.flatnonzero(self.canon_index == np.arange(len(self.masks)))
        out_m, out_c = [], []
        groups, inverse = np.unique(self.coset[reps], axis=0, return_inverse=True)
        for g, aut in enumerate(groups):
            codes = orbit_minimal_codes(self.table, aut, self.k)
            members = reps[np.asarray(inverse).reshape(-1) == g]
            out_m.append(np.repeat(members, len(codes)))
            out_c.append(np.tile(codes, len(members)))
        mi, c = np.concatenate(out_m), np.concatenate(out_c)
        order = np.lexsort((c, mi))
        return mi[order], c[order]


def build_level(v: int, max_edges: int, k: int) -> Level:
    """Enumerate the full DAGs of ``v`` vertices and their isomorphism structure (vectorised)."""
    masks = full_dag_masks(v, max_edges)
    table = perm_table(v)
    pm = table.permuted_masks(masks)
    valid = table.valid(masks)
    canon = np.where(valid, pm, np.iinfo(np.int64).max).min(axis=1)
    coset = valid & (pm == canon[:, None])
    canon_index = np.searchsorted(masks, canon)
    if not np.array_equal(masks[canon_index], canon):
        raise AssertionError("a relabelled full DAG fell outside the enumeration")
    width = int(coset.sum(axis=1).max()) if len(masks) else 1
    order = np.argsort(~coset, axis=1, kind="stable")[:, :width]  # True columns first
    first = order[:, :1]
    coset_index = np.where(np.take_along_axis(coset, order, axis=1), order, first)
    is_rep = canon_index == np.arange(len(masks))
    classes = np.zeros(len(masks), dtype=np.int64)
    classes[is_rep] = burnside_classes(table, coset[is_rep], k)
    return Level(v, k, masks, table, canon_index, coset, coset_index, classes)


def nb101_hash(matrix: np.ndarray | Sequence[Sequence[int]], labels: Sequence[object]) -> str:
    """NAS-Bench-101-style isomorphism fingerprint of a labelled directed graph (MD5 hex).

    The recipe of NAS-Bench-101's ``generate_graphs``/``hash_module`` (Ying et al. 2019, Sec. 2.2),
    written independently: each vertex starts from the hash of ``(out-degree, in-degree, label)``;
    ``v`` times, each vertex is re-hashed from its sorted in-neighbour hashes, its sorted
    out-neighbour hashes and its own hash; the graph hash is that of the sorted vertex hashes.
    With labels ``[-1, op indices..., -2]`` this is the scheme NAS-Bench-101 keys its data set
    by. It is an invariant (isomorphic graphs hash equal); NAS-Bench-101 verified that it has no
    collisions on its 7-vertex space, which ``tests/test_nb101.py`` re-checks on small variants
    against the exact canonical form.
    """
    m = np.asarray(matrix) != 0
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        raise ValueError(f"matrix must be square, got shape {m.shape}")
    v = m.shape[0]
    if len(labels) != v:
        raise ValueError(f"labels has {len(labels)} entries; the matrix has {v} vertices")

    def md5(text: str) -> str:
        return hashlib.md5(text.encode("utf-8")).hexdigest()

    ins, outs = m.sum(axis=0).tolist(), m.sum(axis=1).tolist()
    preds = [np.flatnonzero(m[:, x]).tolist() for x in range(v)]
    succs = [np.flatnonzero(m[x, :]).tolist() for x in range(v)]
    h = [md5(str((outs[x], ins[x], labels[x]))) for x in range(v)]
    for _ in range(v):
        h = [md5("".join(sorted(h[u] for u in preds[x])) + "|" + "".join(sorted(h[w] for w in succs[x]))
                 + "|" + h[x]) for x in range(v)]
    return md5(str(sorted(h)))


def is_isomorphic(m1: np.ndarray, l1: Sequence[object], m2: np.ndarray, l2: Sequence[object]) -> bool:
    """Exhaustive check: some permutation of all vertices maps ``(m1, l1)`` onto ``(m2, l2)``.

    Exponential (``v!`` permutations): meant for tests and for graphs of a few vertices.
    """
    a, b = np.asarray(m1) != 0, np.asarray(m2) != 0
    if a.shape != b.shape or len(l1) != len(l2) or sorted(map(str, l1)) != sorted(map(str, l2)):
        return False
    v = a.shape[0]
    for p in itertools.permutations(range(v)):
        if all(l1[x] == l2[p[x]] for x in range(v)) and np.array_equal(b[np.ix_(p, p)], a):
            return True  # vertex x of graph 1 is vertex p[x] of graph 2
    return False
