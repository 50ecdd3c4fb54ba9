"""The NAS-Bench-101 space: a labelled DAG under vertex and edge limits (Ying et al. 2019).

Ying et al., "NAS-Bench-101: Towards Reproducible Neural Architecture Search", ICML 2019,
Sec. 2.1 (cell encoding) and 2.2 (cell enumeration): a cell has at most 7 vertices (input and
output fixed) and at most 9 edges; each interior vertex is ``conv3x3-bn-relu``,
``conv1x1-bn-relu`` or ``maxpool3x3``; the adjacency matrix is upper triangular. The nominal
space is what the benchmark's ``generate_graphs`` enumerates (every full DAG of 2..7 vertices with
at most 9 edges times every labelling): 1,293,208 specs, 423,624 up to isomorphism.

**Decision vector** (fixed width ``V(V-1)/2 + (V-2)`` for ``V = max_vertices``; 21 + 5 for 7):

* ``{name}/edge{j}<-{i}``: one 0/1 decision per vertex slot pair ``i < j``, ordered by target then
  source (bit ``i + j(j-1)/2``, NAS-Bench-101's bit order);
* ``{name}/op{s}``: the label of interior slot ``s = 1..V-2``: one of ``ops`` or ``"none"``.

A spec of ``v <= V`` vertices is *padded*: its input is slot 0, its interior vertices slots
``1..v-2`` in order, its output slot ``V-1``; the unused slots ``v-1..V-2`` have no edges and op
``"none"``. Every valid row is therefore one pruned spec and every spec one row. ``validate``
rejects, naming the decision: a used vertex without an in-edge or out-edge (dangling), edges on
a ``"none"`` slot, an op on an unused slot, gaps between used slots, more than ``max_edges``
edges, and (for ``v = 2``) a missing input -> output edge.

**Rank** is the position in ``generate_graphs``'s order: by vertex count, then matrix bit mask,
then labelling (the first interior vertex most significant). **String form** is the pruned
``(matrix, ops)`` pair of NAS-Bench-101's ``ModelSpec``, one matrix row per ``/``::

    adj=0111/0001/0001/0000 ops=input,conv3x3-bn-relu,maxpool3x3,output

**Neighbours** (NASLib's NB101 moves, applied to pruned specs) flip one edge bit or change one op
of the padded row; the edit distance is the Hamming distance between padded rows (each edge and
op one edit). A move never changes the vertex count (adding a vertex needs two edges and an op),
so the lone 2-vertex spec (input -> output) has no neighbour; every other spec has some.

**Unique** classes and canonical forms are exact (Burnside's lemma and relabelling tables, see
:mod:`nasatlas.spaces.nb101_graph`); the canonical member of a class is its first in rank order.
All tables are built on first use (~0.15 s for 7 vertices) and kept on the instance.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .decisions import Decision
from .nb101_graph import (
    INPUT,
    NB101_OPS,
    NONE,
    OUTPUT,
    Level,
    build_level,
    edge_bit,
    edge_pairs,
    label_digits,
    nb101_hash,
    prune,
)
from .primitives import Primitive, check_rows
from .space import Space

__all__ = ["NB101Graph", "nb101", "NB101_OPS", "nb101_hash"]

#: the enumeration covers 2^(V(V-1)/2) matrices; 7 vertices (2^21) is NAS-Bench-101's setting
MAX_SUPPORTED_VERTICES = 7


class NB101Graph(Primitive):
    """The NAS-Bench-101 cell as one constrained block (see the module docstring for the row).

    Args:
        name: block name (decision prefix), e.g. ``"cell"``.
        max_vertices: most vertices per cell, input and output included (NB101: 7; 2..7).
        max_edges: most edges per cell (NB101: 9).
        ops: interior vertex labels (NB101: conv3x3-bn-relu, conv1x1-bn-relu, maxpool3x3).
    """

    kind = "nb101"
    is_product = False

    def __init__(self, name: str = "cell", max_vertices: int = 7, max_edges: int = 9,
                 ops: Sequence[str] = NB101_OPS) -> None:
        if isinstance(max_vertices, bool) or not isinstance(max_vertices, int) \
                or not 2 <= max_vertices <= MAX_SUPPORTED_VERTICES:
            raise ValueError(f"{name}: max_vertices={max_vertices!r}; give an int in 2..{MAX_SUPPORTED_VERTICES} "
                             "(input and output included; NAS-Bench-101 uses 7)")
        if isinstance(max_edges, bool) or not isinstance(max_edges, int) or max_edges < 1:
            raise ValueError(f"{name}: max_edges={max_edges!r}; give an int >= 1 (NAS-Bench-101 uses 9)")
        ops = tuple(str(o) for o in ops)
        if not ops or len(set(ops)) != len(ops) or {INPUT, OUTPUT, NONE} & set(ops) or "" in ops:
            raise ValueError(f"{name}: ops={list(ops)}; give distinct non-empty op names other than "
                             f"{INPUT!r}, {OUTPUT!r} and {NONE!r}, e.g. {list(NB101_OPS)}")
        self.name = name
        self.max_vertices = max_vertices
        self.max_edges = max_edges
        self.ops = ops
        self._pairs = edge_pairs(max_vertices)  # (E, 2) slot pairs in bit order
        self.decisions = tuple(Decision(f"{name}/edge{j}<-{i}", ("0", "1")) for i, j in self._pairs.tolist()) + \
            tuple(Decision(f"{name}/op{s}", ops + (NONE,)) for s in range(1, max_vertices - 1))
        self._cache: dict[str, Any] = {}

    # -- layout helpers ----------------------------------------------------------------------
    @property
    def n_edge_slots(self) -> int:
        """Number of edge decisions, ``V(V-1)/2``."""
        return len(self._pairs)

    def edge_index(self, i: int, j: int) -> int:
        """Decision column of the edge slot ``i -> j`` (``0 <= i < j < max_vertices``)."""
        if not 0 <= i < j < self.max_vertices:
            raise ValueError(f"{self.name}: edge {i} -> {j}; slots satisfy 0 <= i < j <= {self.max_vertices - 1}")
        return edge_bit(i, j)

    def _slot(self, a: int, v: int) -> int:
        return a if a < v - 1 else self.max_vertices - 1

    def _levels(self) -> list[Level]:
        """Per vertex count 2..V: its full DAGs and isomorphism tables (built once, ~0.3 s)."""
        if "levels" not in self._cache:
            self._cache["levels"] = [build_level(v, self.max_edges, len(self.ops))
                                     for v in range(2, self.max_vertices + 1)]
            self._cache["offsets"] = np.cumsum([0] + [lv.nominal for lv in self._cache["levels"]])
        return self._cache["levels"]  # type: ignore[no-any-return]

    def _offsets(self) -> np.ndarray:
        self._levels()
        return self._cache["offsets"]  # type: ignore[no-any-return]

    def _slot_columns(self, v: int) -> np.ndarray:
        """Decision column of each edge bit of a ``v``-vertex spec."""
        key = f"cols{v}"
        if key not in self._cache:
            self._cache[key] = np.asarray([edge_bit(self._slot(a, v), self._slot(b, v))
                                           for a, b in edge_pairs(v).tolist()], dtype=np.int64)
        return self._cache[key]  # type: ignore[no-any-return]

    def _adjacency(self, rows: np.ndarray) -> np.ndarray:
        """``(N, V, V)`` 0/1 slot adjacency of rows."""
        v = self.max_vertices
        a = np.zeros((rows.shape[0], v, v), dtype=np.int64)
        a[:, self._pairs[:, 0], self._pairs[:, 1]] = rows[:, :self.n_edge_slots]
        return a

    def _decode(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(v, matrix index, label code)`` of valid rows."""
        ops = rows[:, self.n_edge_slots:]
        n = np.sum(ops != len(self.ops), axis=1)
        vs, mi, codes = n + 2, np.zeros(len(rows), np.int64), np.zeros(len(rows), np.int64)
        for lv in self._levels():
            sel = np.flatnonzero(vs == lv.v)
            if len(sel) == 0:
                continue
            bits = rows[np.ix_(sel, self._slot_columns(lv.v))]
            masks = (bits << np.arange(bits.shape[1], dtype=np.int64)).sum(axis=1)
            mi[sel] = np.searchsorted(lv.masks, masks)
            weights = len(self.ops) ** np.arange(lv.n - 1, -1, -1, dtype=np.int64)
            codes[sel] = ops[sel, :lv.n] @ weights if lv.n else 0
        return vs, mi, codes

    def _encode(self, lv: Level, mi: np.ndarray, codes: np.ndarray) -> np.ndarray:
        """Rows of ``v``-vertex specs given matrix indices and label codes."""
        key = f"rows{lv.v}"
        if key not in self._cache:  # the padded row of each matrix, unlabelled
            cols = self._slot_columns(lv.v)
            table = np.zeros((len(lv.masks), self.width), dtype=np.int64)
            table[:, self.n_edge_slots:] = len(self.ops)
            table[:, cols] = (lv.masks[:, None] >> np.arange(len(cols))) & 1
            self._cache[key] = table
        rows = self._cache[key][mi]
        if lv.n:
            rows[:, self.n_edge_slots:self.n_edge_slots + lv.n] = label_digits(codes, lv.n, len(self.ops))
        return rows

    # -- counting ----------------------------------------------------------------------------
    def cardinality(self) -> int:
        """Labelled specs, exactly as ``generate_graphs`` enumerates them (Sec. 2.2)."""
        return int(self._offsets()[-1])

    def cardinality_by_vertices(self) -> dict[int, int]:
        """Nominal specs per vertex count."""
        return {lv.v: lv.nominal for lv in self._levels()}

    def unique_cardinality(self) -> int:
        """Isomorphism classes (Burnside's lemma per unlabelled class): 423,624 for NB101."""
        return sum(lv.unique for lv in self._levels())

    def unique_by_vertices(self) -> dict[int, int]:
        """Isomorphism classes per vertex count."""
        return {lv.v: lv.unique for lv in self._levels()}

    # -- validity ----------------------------------------------------------------------------
    def is_valid(self, rows: np.ndarray) -> np.ndarray:
        rows = check_rows(rows, self.width, self.name)
        ok = super().is_valid(rows)
        r = np.where(ok[:, None], rows, 0)
        r[~ok, self.n_edge_slots:] = len(self.ops)
        a = self._adjacency(r)
        indeg, outdeg = a.sum(axis=1), a.sum(axis=2)
        labelled = r[:, self.n_edge_slots:] != len(self.ops)
        touched = (indeg[:, 1:-1] + outdeg[:, 1:-1]) > 0
        full = (indeg[:, 1:-1] > 0) & (outdeg[:, 1:-1] > 0)
        ok &= np.all(np.where(labelled, full, ~touched), axis=1)
        ok &= np.all(labelled[:, :-1] >= labelled[:, 1:], axis=1)  # used slots form a prefix
        ok &= (outdeg[:, 0] > 0) & (indeg[:, -1] > 0)
        ok &= rows[:, :self.n_edge_slots].sum(axis=1) <= self.max_edges
        return ok

    def validate(self, rows: np.ndarray) -> None:
        """Raise ValueError naming the decision and the rule a row breaks."""
        super().validate(rows)
        rows = check_rows(rows, self.width, self.name)
        bad = np.flatnonzero(~self.is_valid(rows))
        if len(bad):
            raise ValueError(self._diagnose(rows[bad[0]]))

    def _diagnose(self, row: np.ndarray) -> str:
        V, E, nm, none = self.max_vertices, self.n_edge_slots, self.name, len(self.ops)
        a = self._adjacency(row[None, :])[0]
        for s in range(1, V - 1):
            op = f"{nm}/op{s}"
            used, has_in, has_out = int(row[E + s - 1]) != none, a[:, s].any(), a[s, :].any()
            if not used and (has_in or has_out):
                return (f"decision {op!r}: vertex {s} has edges but op 'none'; give it one of {list(self.ops)} "
                        "or remove its edges")
            if used and not (has_in or has_out):
                return (f"decision {op!r}: slot {s} has op {self.ops[int(row[E + s - 1])]!r} but no edges; an "
                        f"unused slot (padding) must have op 'none'")
            if used and not has_in:
                return (f"decision {op!r}: vertex {s} has no incoming edge, so it is dangling (unreachable from the "
                        f"input); add one, e.g. {nm}/edge{s}<-0 = 1")
            if used and not has_out:
                return (f"decision {op!r}: vertex {s} has no outgoing edge, so it is dangling (it does not reach "
                        f"the output); add one, e.g. {nm}/edge{V - 1}<-{s} = 1")
            if used and s > 1 and int(row[E + s - 2]) == none:
                return (f"decision {op!r}: vertex {s} is used while slot {s - 1} is unused; interior vertices fill "
                        f"slots 1..v-2 in order and the output stays in slot {V - 1} (from_spec pads this way)")
        if not a[0, :].any() or not a[:, V - 1].any():
            return (f"decision {nm}/edge{V - 1}<-0: the input is not connected to the output; with no interior "
                    "vertex this edge must be 1")
        edges = int(row[:E].sum())
        return (f"decisions {nm}/edge*: the spec has {edges} edges, more than max_edges={self.max_edges}; "
                f"remove {edges - self.max_edges}")

    # -- rank, unrank, sampling --------------------------------------------------------------
    def _index_array(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        if isinstance(indices, range):
            idx = np.arange(indices.start, indices.stop, indices.step, dtype=np.int64)
        elif isinstance(indices, np.ndarray):
            if indices.size and not np.issubdtype(indices.dtype, np.integer):
                raise TypeError(f"{self.name}: indices must be integers, got dtype {indices.dtype}")
            idx = indices.astype(np.int64).reshape(-1)
        else:
            ints = [int(i) for i in indices]
            big = [i for i in ints if not -(2 ** 62) < i < 2 ** 62]
            if big:
                raise ValueError(f"index {big[0]} is out of range: valid indices are 0 .. {self.cardinality() - 1}")
            idx = np.asarray(ints, dtype=np.int64)
        card = self.cardinality()
        if len(idx) and (idx.min() < 0 or idx.max() >= card):
            badv = int(idx[(idx < 0) | (idx >= card)][0])
            raise ValueError(f"index {badv} is out of range: valid indices are 0 .. {card - 1}")
        return idx

    def rank(self, rows: np.ndarray) -> list[int]:
        """Position of each spec in NAS-Bench-101's enumeration order."""
        self.validate(rows)
        return self._rank_array(check_rows(rows, self.width, self.name)).tolist()  # type: ignore[no-any-return]

    def _rank_array(self, rows: np.ndarray) -> np.ndarray:
        vs, mi, codes = self._decode(rows)
        off = self._offsets()
        kn = np.asarray([lv.labellings for lv in self._levels()], dtype=np.int64)
        return off[vs - 2] + mi * kn[vs - 2] + codes  # type: ignore[no-any-return]

    def unrank(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        """Rows of the given enumeration indices (vectorised; inverse of :meth:`rank`)."""
        idx = self._index_array(indices)
        off = self._offsets()
        level = np.searchsorted(off, idx, side="right") - 1
        rows = np.zeros((len(idx), self.width), dtype=np.int64)
        for li, lv in enumerate(self._levels()):
            sel = np.flatnonzero(level == li)
            if len(sel):
                mi, codes = np.divmod(idx[sel] - off[li], lv.labellings)
                rows[sel] = self._encode(lv, mi, codes)
        return rows

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` specs uniform over the nominal space: uniform indices, unranked (no rejection)."""
        return self.unrank(rng.integers(0, self.cardinality(), size=n, dtype=np.int64))

    def unique_ranks(self) -> np.ndarray:
        """Sorted ranks of every class's canonical member (its first in enumeration order)."""
        if "unique" not in self._cache:
            parts = [off + mi * lv.labellings + c for lv, off in zip(self._levels(), self._offsets())
                     for mi, c in [lv.representatives()]]
            self._cache["unique"] = np.concatenate(parts).astype(np.int64)
        return self._cache["unique"]  # type: ignore[no-any-return]

    def sample_unique(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` specs uniform over isomorphism classes, each as its canonical member."""
        ranks = self.unique_ranks()
        return self.unrank(ranks[rng.integers(0, len(ranks), size=n)])

    # -- canonical forms ---------------------------------------------------------------------
    def canonical_ranks(self, rows: np.ndarray) -> np.ndarray:
        """Rank of the canonical member of each row's class: an exact integer class id."""
        rows = check_rows(rows, self.width, self.name)
        self.validate(rows)
        vs, mi, codes = self._decode(rows)
        off = self._offsets()
        out = np.zeros(len(rows), dtype=np.int64)
        for li, lv in enumerate(self._levels()):
            sel = np.flatnonzero(vs == lv.v)
            if len(sel):
                cm, cc = lv.canonical(mi[sel], codes[sel])
                out[sel] = off[li] + cm * lv.labellings + cc
        return out

    def canonical(self, row: np.ndarray) -> str:
        """The string of the class's canonical member: equal exactly for isomorphic specs."""
        return str(self.to_value(self.unrank(self.canonical_ranks(row))[0]))

    def fingerprint(self, row: np.ndarray) -> str:
        """:func:`nb101_hash` of the pruned spec with NAS-Bench-101's labels ``[-1, op index.., -2]``."""
        matrix, ops = self.spec(row)
        return nb101_hash(matrix, [-1] + [self.ops.index(o) for o in ops[1:-1]] + [-2])

    def relabel(self, row: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """A uniformly random relabelling of the interior vertices among those that keep the
        matrix upper triangular (another topological order): an isomorphic spec."""
        row = np.asarray(row, dtype=np.int64)
        vs, mi, codes = self._decode(row[None, :])
        lv = self._levels()[int(vs[0]) - 2]
        mask = lv.masks[mi[0]]
        ok = np.flatnonzero(lv.table.valid(np.asarray([mask]))[0])
        p = int(ok[rng.integers(0, len(ok))])
        new_mask = int(lv.table.permuted_masks(np.asarray([mask]))[0, p])
        digits = label_digits(codes, lv.n, len(self.ops))[0]
        new_digits = np.zeros_like(digits)
        new_digits[lv.table.perms[p]] = digits
        new_code = int(new_digits @ (len(self.ops) ** np.arange(lv.n - 1, -1, -1))) if lv.n else 0
        return self._encode(lv, np.searchsorted(lv.masks, [new_mask]), np.asarray([new_code]))[0]

    # -- neighbours --------------------------------------------------------------------------
    def neighbours(self, row: np.ndarray) -> np.ndarray:
        """Every valid spec one edit away: one edge flipped or one op changed (NASLib's NB101
        neighbourhood), at Hamming (edit) distance 1 in the padded row."""
        cand = super().neighbours(row)
        return cand[self.is_valid(cand)] if len(cand) else cand

    # -- specs and strings -------------------------------------------------------------------
    def spec(self, row: np.ndarray) -> tuple[np.ndarray, list[str]]:
        """The pruned NAS-Bench-101 ``(matrix, ops)`` of a row (``ops`` with input and output)."""
        row = np.asarray(row, dtype=np.int64)
        self.validate(row)
        used = [s for s in range(1, self.max_vertices - 1) if int(row[self.n_edge_slots + s - 1]) != len(self.ops)]
        keep = [0] + used + [self.max_vertices - 1]
        matrix = self._adjacency(row[None, :])[0][np.ix_(keep, keep)]
        ops = [INPUT] + [self.ops[int(row[self.n_edge_slots + s - 1])] for s in used] + [OUTPUT]
        return matrix, ops

    def from_spec(self, matrix: np.ndarray | Sequence[Sequence[int]], ops: Sequence[str],
                  prune_spec: bool = False) -> np.ndarray:
        """The row of a NAS-Bench-101 ``(matrix, ops)``; ``prune_spec=True`` first drops vertices
        off every input -> output path, as NAS-Bench-101's ``ModelSpec`` does."""
        m = np.asarray(matrix)
        if m.ndim != 2 or m.shape[0] != m.shape[1]:
            raise ValueError(f"{self.name}: the matrix must be square, got shape {m.shape}")
        if not np.isin(m, (0, 1)).all():
            raise ValueError(f"{self.name}: the matrix must hold 0/1 entries")
        m = m.astype(np.int64)
        labels = [str(o) for o in ops]
        if len(labels) != m.shape[0]:
            raise ValueError(f"{self.name}: {len(labels)} ops for a {m.shape[0]}x{m.shape[0]} matrix; give one op "
                             "per vertex, 'input' first and 'output' last")
        if np.tril(m).any():
            i, j = (int(x) for x in np.argwhere(np.tril(m))[0])
            raise ValueError(f"{self.name}: matrix[{i}][{j}] = 1 is on or below the diagonal; the matrix must be "
                             "strictly upper triangular (vertices in topological order)")
        if len(labels) < 2 or labels[0] != INPUT or labels[-1] != OUTPUT:
            raise ValueError(f"{self.name}: ops must start with {INPUT!r} and end with {OUTPUT!r}, got {labels}")
        for i, o in enumerate(labels[1:-1], start=1):
            if o not in self.ops:
                raise ValueError(f"{self.name}: ops[{i}] = {o!r} is not an op of this space; allowed: {list(self.ops)}")
        if prune_spec:
            m, labels = prune(m, labels)
        v = m.shape[0]
        for x in range(1, v - 1):
            if not m[:, x].any() or not m[x, :].any():
                side = "incoming" if not m[:, x].any() else "outgoing"
                raise ValueError(f"{self.name}: vertex {x} ({labels[x]}) has no {side} edge, so it is dangling; "
                                 "NAS-Bench-101 prunes such vertices: pass prune_spec=True or remove it")
        if v > self.max_vertices:
            raise ValueError(f"{self.name}: the spec has {v} vertices, more than max_vertices={self.max_vertices}")
        if v == 2 and not m[0, 1]:
            raise ValueError(f"{self.name}: the input is not connected to the output")
        if int(m.sum()) > self.max_edges:
            raise ValueError(f"{self.name}: the spec has {int(m.sum())} edges, more than "
                             f"max_edges={self.max_edges}; remove {int(m.sum()) - self.max_edges}")
        row = np.zeros(self.width, dtype=np.int64)
        row[self.n_edge_slots:] = len(self.ops)
        for a, b in zip(*np.nonzero(m)):
            row[edge_bit(self._slot(int(a), v), self._slot(int(b), v))] = 1
        for x in range(1, v - 1):
            row[self.n_edge_slots + x - 1] = self.ops.index(labels[x])
        self.validate(row)
        return row

    def to_value(self, row: np.ndarray) -> Any:
        """``"adj=<matrix rows joined by '/'> ops=<labels joined by ','>"`` of the pruned spec."""
        matrix, ops = self.spec(row)
        return "adj=" + "/".join("".join(str(int(x)) for x in r) for r in matrix) + " ops=" + ",".join(ops)

    def from_value(self, value: Any) -> np.ndarray:
        """Parse :meth:`to_value`'s string (a pruned spec; see :meth:`from_spec` to prune)."""
        example = "e.g. 'adj=011/001/000 ops=input,conv3x3-bn-relu,output'"
        if not isinstance(value, str):
            raise ValueError(f"{self.name}: expected a string 'adj=... ops=...', {example}; got {value!r}")
        fields: dict[str, str] = {}
        for token in value.split():
            key, sep, text = token.partition("=")
            if not sep or key not in ("adj", "ops") or key in fields:
                raise ValueError(f"{self.name}: bad field {token!r}: give 'adj=' and 'ops=' once each, {example}")
            fields[key] = text
        if set(fields) != {"adj", "ops"}:
            raise ValueError(f"{self.name}: {value!r} needs both an 'adj=' and an 'ops=' field, {example}")
        lines = fields["adj"].split("/")
        if any(len(r) != len(lines) or set(r) - {"0", "1"} for r in lines):
            raise ValueError(f"{self.name}: adj={fields['adj']!r} must be {len(lines)} rows of {len(lines)} "
                             f"'0'/'1' characters separated by '/', {example}")
        matrix = np.asarray([[int(c) for c in r] for r in lines], dtype=np.int64)
        return self.from_spec(matrix, fields["ops"].split(","))

    # -- encodings ---------------------------------------------------------------------------
    def graph_size(self) -> int:
        return self.max_vertices

    def adjacency(self, row: np.ndarray) -> np.ndarray:
        """``A[target, source, op]`` over the padded slots: an edge into an interior vertex sits
        on that vertex's op channel; an edge into the output (no op) on every channel."""
        row = np.asarray(row, dtype=np.int64)
        a = self._adjacency(row[None, :])[0]
        out = np.zeros((self.max_vertices, self.max_vertices, len(self.ops)), dtype=np.uint8)
        out[-1, :, :] = a[:, -1][:, None]
        for t in range(1, self.max_vertices - 1):
            op = int(row[self.n_edge_slots + t - 1])
            if op < len(self.ops):
                out[t, :, op] = a[:, t]
        return out

    def adjacency_features(self, rows: np.ndarray) -> np.ndarray:
        """The usual NB101 adjacency encoding (White et al. 2020, Sec. 3), vectorised: the padded
        edge bits, then a one-hot of each interior slot's op (all zero for unused slots)."""
        rows = check_rows(rows, self.width, self.name)
        ops = rows[:, self.n_edge_slots:]
        onehot = (ops[:, :, None] == np.arange(len(self.ops))[None, None, :]).reshape(len(rows), -1)
        return np.concatenate([rows[:, :self.n_edge_slots], onehot], axis=1).astype(np.uint8)

    def paths(self, row: np.ndarray) -> list[tuple[int, tuple[int, ...]]]:
        """Distinct input -> output paths as ``(0, interior op indices)`` (BANANAS, White et al.
        2021, Sec. 4), sorted by :meth:`path_index`."""
        matrix, ops = self.spec(row)
        labels = [self.ops.index(o) for o in ops[1:-1]]
        ending: list[set[tuple[int, ...]]] = [{()}]
        for t in range(1, len(ops)):
            inc = set().union(*[ending[s] for s in range(t) if matrix[s, t]])
            ending.append(inc if t == len(ops) - 1 else {seq + (labels[t - 1],) for seq in inc})
        return sorted(((0, seq) for seq in ending[-1]), key=self.path_index)

    def path_vocabulary_size(self) -> int:
        """``sum_{l=0}^{V-2} k^l`` paths (364 for NB101: 0..5 interior ops over 3 ops)."""
        return sum(len(self.ops) ** length for length in range(self.max_vertices - 1))

    def path_index(self, path: tuple[int, tuple[int, ...]]) -> int:
        """Index of a path: shorter paths first, then the op sequence read in base ``k``."""
        _, seq = path
        k = len(self.ops)
        code = 0
        for op in seq:
            code = code * k + int(op)
        return sum(k ** length for length in range(len(seq))) + code

    def path_features(self, rows: np.ndarray, chunk: int = 8192) -> np.ndarray:
        """Vectorised BANANAS path encoding ``(N, path_vocabulary_size())`` uint8 of valid rows."""
        rows = check_rows(rows, self.width, self.name)
        k, V, size = len(self.ops), self.max_vertices, self.path_vocabulary_size()
        lengths = np.concatenate([np.full(k ** length, length) for length in range(V - 1)])
        src = np.flatnonzero(lengths < V - 2)
        dst = [np.asarray([self.path_index((0, (*self._path_of(int(i)), op))) for i in src], dtype=np.int64)
               for op in range(k)]
        out = np.zeros((len(rows), size), dtype=np.uint8)
        for s0 in range(0, len(rows), chunk):
            r = rows[s0:s0 + chunk]
            a = self._adjacency(r).astype(bool)
            reach = [np.zeros((len(r), size), dtype=bool) for _ in range(V)]
            reach[0][:, 0] = True
            for t in range(1, V):
                inc = np.zeros((len(r), size), dtype=bool)
                for s in range(t):
                    inc |= a[:, s, t][:, None] & reach[s]
                if t == V - 1:
                    reach[t] = inc
                    continue
                for op in range(k):
                    sel = np.flatnonzero(r[:, self.n_edge_slots + t - 1] == op)
                    reach[t][np.ix_(sel, dst[op])] = inc[np.ix_(sel, src)]
            out[s0:s0 + chunk] = reach[V - 1]
        return out

    def _path_of(self, index: int) -> tuple[int, ...]:
        k, length = len(self.ops), 0
        while index >= k ** length:
            index -= k ** length
            length += 1
        return tuple(int(d) for d in label_digits(np.asarray([index]), length, k)[0]) if length else ()

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "max_vertices": self.max_vertices,
                "max_edges": self.max_edges, "ops": list(self.ops),
                "padding": f"v-vertex specs use slots 0..v-2 and {self.max_vertices - 1} (output); unused op slots "
                           f"are {NONE!r}"}


def nb101(max_vertices: int = 7, max_edges: int = 9) -> Space:
    """NAS-Bench-101: cells of at most ``max_vertices`` vertices and ``max_edges`` edges, 3 ops."""
    return Space(
        "nb101", [NB101Graph("cell", max_vertices=max_vertices, max_edges=max_edges)], family="nb101",
        params={"max_vertices": max_vertices, "max_edges": max_edges},
        description=(f"NAS-Bench-101 cell: a DAG of at most {max_vertices} vertices (input and output fixed) and "
                     f"{max_edges} edges, interior vertices labelled conv3x3-bn-relu, conv1x1-bn-relu or maxpool3x3; "
                     "every vertex on an input->output path. Nominal count = NB101's enumerated specs "
                     "(1,293,208 for 7/9); unique = isomorphism classes (423,624)."),
        sources=["Ying et al. 2019, NAS-Bench-101 (ICML), Sec. 2.1-2.2",
                 "google-research/nasbench scripts/generate_graphs.py, lib/graph_util.py",
                 "White et al. 2021, BANANAS (AAAI), Sec. 4 (path encoding)"],
    )
