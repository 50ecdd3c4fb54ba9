"""Space primitives: labelled blocks of decisions with everything derived from the declaration.

A primitive owns a contiguous block of a space's decision vector. The base class implements the
generic behaviour of a *product* block (every combination of options is valid): exact
cardinality as a product, vectorised uniform sampling, mixed-radix rank/unrank, one-edit
neighbours, one-hot encoding. Constrained primitives (the Auto-DeepLab trellis path, the
NAS-Bench-101 graph) override the few methods whose product form does not hold.

Every method works on numpy arrays of option indices (``rows`` of shape ``(n, D)``) so that
sampling, encoding and distances vectorise over architectures (DESIGN §7).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from .decisions import Decision

__all__ = ["Primitive", "Categorical", "EdgeDAG", "ChainLayer", "Chain", "mixed_radix_rank",
           "mixed_radix_unrank", "check_rows"]


def mixed_radix_rank(rows: np.ndarray, sizes: Sequence[int]) -> list[int]:
    """Rank rows of a product block: the first decision is the most significant digit."""
    out: list[int] = []
    for row in np.asarray(rows, dtype=np.int64).reshape(-1, len(sizes)):
        r = 0
        for v, s in zip(row.tolist(), sizes):
            r = r * s + v
        out.append(r)
    return out


def mixed_radix_unrank(indices: Sequence[int], sizes: Sequence[int]) -> np.ndarray:
    """Inverse of :func:`mixed_radix_rank`; indices may be Python ints beyond int64."""
    card = math.prod(sizes)
    out = np.zeros((len(indices), len(sizes)), dtype=np.int64)
    for i, idx in enumerate(indices):
        idx = int(idx)
        if not 0 <= idx < card:
            raise ValueError(f"index {idx} is out of range: valid indices are 0 .. {card - 1}")
        for j in range(len(sizes) - 1, -1, -1):
            idx, out[i, j] = divmod(idx, sizes[j])
    return out


def check_rows(rows: np.ndarray, width: int, what: str) -> np.ndarray:
    """Return ``rows`` as a 2-D int64 array of the given width, or raise naming the problem."""
    arr = np.asarray(rows)
    if arr.ndim == 1:
        arr = arr.reshape(1, -1)
    if arr.ndim != 2 or arr.shape[1] != width:
        raise ValueError(f"{what}: expected rows of {width} decision indices, got an array of shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"{what}: decision indices must be integers, got dtype {arr.dtype}")
    return arr.astype(np.int64, copy=False)


class Primitive:
    """A block of decisions. Subclasses set ``name`` and ``decisions`` in ``__init__``.

    The defaults below are exact for product blocks; constrained blocks set ``is_product`` to
    False and override ``cardinality``, ``sample``, ``rank``/``unrank``, ``validate`` and
    ``neighbours``.
    """

    name: str
    decisions: tuple[Decision, ...]
    is_product: bool = True
    kind: str = "primitive"

    # -- sizes -------------------------------------------------------------------------------
    @property
    def width(self) -> int:
        """Number of decisions in the block."""
        return len(self.decisions)

    @property
    def sizes(self) -> tuple[int, ...]:
        """Number of options of each decision."""
        return tuple(d.size for d in self.decisions)

    def cardinality(self) -> int:
        """Exact number of valid assignments of the block (a Python int)."""
        return math.prod(self.sizes)

    # -- validity ----------------------------------------------------------------------------
    def validate(self, rows: np.ndarray) -> None:
        """Raise ValueError naming the first decision whose index is out of range."""
        rows = check_rows(rows, self.width, self.name)
        sizes = np.asarray(self.sizes, dtype=np.int64)
        bad = (rows < 0) | (rows >= sizes)
        if bad.any():
            r, c = map(int, np.argwhere(bad)[0])
            d = self.decisions[c]
            raise ValueError(
                f"decision {d.name!r}: index {int(rows[r, c])} is out of range; allowed 0 .. {d.size - 1} "
                f"({list(d.choices)})"
            )

    def is_valid(self, rows: np.ndarray) -> np.ndarray:
        """Boolean mask of valid rows (no exception)."""
        rows = check_rows(rows, self.width, self.name)
        sizes = np.asarray(self.sizes, dtype=np.int64)
        return np.all((rows >= 0) & (rows < sizes), axis=1)

    # -- sampling and enumeration ------------------------------------------------------------
    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` uniform samples of the block as an ``(n, width)`` int64 array."""
        if self.width == 0:
            return np.zeros((n, 0), dtype=np.int64)
        return rng.integers(0, np.asarray(self.sizes, dtype=np.int64), size=(n, self.width), dtype=np.int64)

    def rank(self, rows: np.ndarray) -> list[int]:
        """Index of each row in ``0 .. cardinality()-1``."""
        return mixed_radix_rank(rows, self.sizes)

    def unrank(self, indices: Sequence[int]) -> np.ndarray:
        """Rows for the given indices (inverse of :meth:`rank`)."""
        return mixed_radix_unrank(indices, self.sizes)

    # -- neighbours and distances ------------------------------------------------------------
    def neighbours(self, row: np.ndarray) -> np.ndarray:
        """Every row that differs from ``row`` by one edit and is valid (default: one decision)."""
        row = np.asarray(row, dtype=np.int64)
        cols, vals = self._single_edits()
        out = np.repeat(row[None, :], len(cols), axis=0)
        out[np.arange(len(cols)), cols] = vals
        return out[vals != row[cols]]

    _edits_cache: tuple[np.ndarray, np.ndarray] | None = None

    def _single_edits(self) -> tuple[np.ndarray, np.ndarray]:
        """(decision, value) of every single-decision assignment, cached."""
        cached = getattr(self, "_edits_cache", None)
        if cached is None:
            cols = np.repeat(np.arange(self.width), self.sizes)
            vals = np.concatenate([np.arange(s) for s in self.sizes]) if self.width else np.zeros(0, np.int64)
            cached = (cols.astype(np.int64), vals.astype(np.int64))
            self._edits_cache = cached
        return cached

    def edit_distance(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Number of one-edit moves between rows of ``a`` and ``b`` (broadcast); default Hamming."""
        return np.sum(np.asarray(a)[..., :] != np.asarray(b), axis=-1)

    # -- text --------------------------------------------------------------------------------
    def to_value(self, row: np.ndarray) -> Any:
        """A literal Python value (str, list, tuple of literals) for the block's string form."""
        return [self.decisions[j].choices[int(v)] for j, v in enumerate(row)]

    def from_value(self, value: Any) -> np.ndarray:
        """Inverse of :meth:`to_value`, with errors naming the decision and allowed options."""
        if not isinstance(value, (list, tuple)) or len(value) != self.width:
            raise ValueError(f"{self.name}: expected a list of {self.width} option labels, got {value!r}")
        return np.asarray([d.index(str(v)) for d, v in zip(self.decisions, value)], dtype=np.int64)

    def canonical(self, row: np.ndarray) -> str:
        """Isomorphism-aware canonical form of the block (default: its literal value)."""
        return repr(self.to_value(row))

    # -- encodings ---------------------------------------------------------------------------
    def onehot(self, rows: np.ndarray) -> np.ndarray:
        """Concatenated one-hot vectors of every decision, ``(n, sum(sizes))`` uint8."""
        rows = check_rows(rows, self.width, self.name)
        offsets = np.concatenate([[0], np.cumsum(self.sizes)[:-1]]).astype(np.int64)
        out = np.zeros((rows.shape[0], int(sum(self.sizes))), dtype=np.uint8)
        if rows.shape[0] and self.width:
            np.put_along_axis(out, rows + offsets, 1, axis=1)
        return out

    def describe(self) -> dict[str, Any]:
        """A JSON-able description of the declaration (for ``spaces show`` and declaration files)."""
        return {"kind": self.kind, "name": self.name}


class Categorical(Primitive):
    """A single categorical choice (an op, a kernel size, an expansion ratio)."""

    kind = "categorical"

    def __init__(self, name: str, choices: Sequence[str]) -> None:
        self.name = name
        self.choices = tuple(str(c) for c in choices)
        self.decisions = (Decision(name, self.choices),)

    def to_value(self, row: np.ndarray) -> Any:
        return self.choices[int(row[0])]

    def from_value(self, value: Any) -> np.ndarray:
        return np.asarray([self.decisions[0].index(str(value))], dtype=np.int64)

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "choices": list(self.choices)}


class EdgeDAG(Primitive):
    """An edge-labelled DAG with one op per edge, every node fed by every earlier node.

    This is the NAS-Bench-201 cell (Dong & Yang 2020, Sec. 2.1): ``nodes`` nodes, node 0 the
    input, each later node ``j`` summing ``op(x_i)`` over all ``i < j``. Edges are ordered by
    target, then source, which is the order of the NB201 string ``|op~0|+|op~0|op~1|+|...|``.
    """

    kind = "edge_dag"

    def __init__(self, name: str, nodes: int, ops: Sequence[str], zero_op: str | None = "none",
                 identity_op: str | None = "skip_connect") -> None:
        if nodes < 2:
            raise ValueError(f"{name}: nodes={nodes}; an edge DAG needs at least 2 nodes (input and output)")
        self.name = name
        self.nodes = nodes
        self.ops = tuple(ops)
        self.zero_op = zero_op if zero_op in self.ops else None
        self.identity_op = identity_op if identity_op in self.ops else None
        self.edges: tuple[tuple[int, int], ...] = tuple((j, i) for j in range(1, nodes) for i in range(j))
        self.decisions = tuple(Decision(f"{name}/edge{j}<-{i}", self.ops) for j, i in self.edges)

    def to_value(self, row: np.ndarray) -> Any:
        groups = []
        k = 0
        for j in range(1, self.nodes):
            terms = []
            for i in range(j):
                terms.append(f"{self.ops[int(row[k])]}~{i}")
                k += 1
            groups.append("|" + "|".join(terms) + "|")
        return "+".join(groups)

    def from_value(self, value: Any) -> np.ndarray:
        text = str(value).strip()
        groups = text.split("+")
        if len(groups) != self.nodes - 1:
            raise ValueError(
                f"{self.name}: {text!r} has {len(groups)} node groups separated by '+'; expected "
                f"{self.nodes - 1}, e.g. '|nor_conv_3x3~0|+|none~0|skip_connect~1|+|...|'"
            )
        out: list[int] = []
        for j, g in enumerate(groups, start=1):
            if not (g.startswith("|") and g.endswith("|")):
                raise ValueError(f"{self.name}: node group {g!r} must start and end with '|'")
            terms = [t for t in g[1:-1].split("|")]
            if len(terms) != j:
                raise ValueError(f"{self.name}: node {j} group {g!r} must have {j} terms 'op~i', one per input")
            for i, t in enumerate(terms):
                op, sep, src = t.rpartition("~")
                if not sep or src != str(i):
                    raise ValueError(f"{self.name}: term {t!r} of node {j} must read 'op~{i}'")
                out.append(self.decisions[len(out)].index(op))
        return np.asarray(out, dtype=np.int64)

    # -- canonical forms ---------------------------------------------------------------------
    conventions = ("published", "published_nozero", "semantic")

    def canonical(self, row: np.ndarray, convention: str = "published") -> str:
        """Canonical string under a named convention.

        * ``published``: NAS-Bench-201's ``to_unique_str(consider_zero=True)`` rule (Dong & Yang
          2020; NATS-Bench): a zero edge, or any edge from a zero node, is the term ``#``; the
          identity passes its input string through; every other op ``o`` on input ``x`` is
          ``(x)@o``; a node's terms are sorted and joined with ``+``.
        * ``published_nozero``: the same with ``consider_zero=False`` (zero is an ordinary op).
        * ``semantic``: merges cells that compute the same function: zero terms are dropped
          (a node with no term is ``#``), the identity contributes its input's terms, and a
          node is the sorted multiset of its atomic terms (addition is associative and
          commutative, so nested sums are flattened).
        """
        if convention not in self.conventions:
            raise ValueError(f"convention={convention!r}; allowed: {list(self.conventions)}")
        if convention == "semantic":
            return self._semantic(row)
        zero_aware = convention == "published"
        nodes = {0: "0"}
        k = 0
        for j in range(1, self.nodes):
            terms = []
            for i in range(j):
                op = self.ops[int(row[k])]
                k += 1
                if zero_aware and (op == self.zero_op or nodes[i] == "#"):
                    terms.append("#")
                elif op == self.identity_op:
                    terms.append(nodes[i])
                else:
                    terms.append(f"({nodes[i]})@{op}")
            nodes[j] = "+".join(sorted(terms))
        return nodes[self.nodes - 1]

    def _semantic(self, row: np.ndarray) -> str:
        nodes: dict[int, tuple[str, ...]] = {0: ("0",)}
        k = 0
        for j in range(1, self.nodes):
            terms: list[str] = []
            for i in range(j):
                op = self.ops[int(row[k])]
                k += 1
                if op == self.zero_op or not nodes[i]:
                    continue
                if op == self.identity_op:
                    terms.extend(nodes[i])
                else:
                    terms.append(f"({'+'.join(nodes[i])})@{op}")
            nodes[j] = tuple(sorted(terms))
        return "+".join(nodes[self.nodes - 1]) or "#"

    # -- encodings ---------------------------------------------------------------------------
    def graph_size(self) -> int:
        return self.nodes

    def adjacency(self, row: np.ndarray) -> np.ndarray:
        """``A[j, i, op] = 1`` for the edge ``i -> j`` carrying ``op``."""
        a = np.zeros((self.nodes, self.nodes, len(self.ops)), dtype=np.uint8)
        for k, (j, i) in enumerate(self.edges):
            a[j, i, int(row[k])] = 1
        return a

    def paths(self, row: np.ndarray) -> list[tuple[int, tuple[int, ...]]]:
        """Input-to-output paths as ``(0, op indices)``; zero edges cut paths (BANANAS,
        White et al. 2021, Sec. 4)."""
        zero = self.ops.index(self.zero_op) if self.zero_op else -1
        ending: dict[int, list[tuple[int, ...]]] = {0: [()]}
        for j in range(1, self.nodes):
            acc: list[tuple[int, ...]] = []
            for k, (jj, i) in enumerate(self.edges):
                if jj == j and int(row[k]) != zero:
                    acc.extend(seq + (int(row[k]),) for seq in ending[i])
            ending[j] = acc
        return [(0, seq) for seq in ending[self.nodes - 1]]

    def path_vocabulary_size(self) -> int:
        n_ops = len(self.ops) - (1 if self.zero_op else 0)
        return sum(n_ops ** length for length in range(1, self.nodes))

    def path_index(self, path: tuple[int, tuple[int, ...]]) -> int:
        _, seq = path
        zero = self.ops.index(self.zero_op) if self.zero_op else None
        n_ops = len(self.ops) - (1 if zero is not None else 0)
        offset = sum(n_ops ** length for length in range(1, len(seq)))
        code = 0
        for op in seq:
            code = code * n_ops + (op - (1 if zero is not None and op > zero else 0))
        return offset + code

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "nodes": self.nodes, "ops": list(self.ops)}


class ChainLayer:
    """One layer of a chain: a few decisions plus the fixed stride and width of its template."""

    def __init__(self, name: str, decisions: Sequence[tuple[str, Sequence[str]]], stride: int = 1,
                 channels: int | None = None, skippable: bool = False) -> None:
        self.name = name
        self.decisions = tuple(Decision(f"{name}/{dn}" if dn else name, tuple(str(c) for c in ch))
                               for dn, ch in decisions)
        self.stride = stride
        self.channels = channels
        self.skippable = skippable


class Chain(Primitive):
    """A chain of layers with per-layer choices, some skippable (MobileNet-style spaces).

    ProxylessNAS (Cai et al. 2019), FBNet (Wu et al. 2019) and MnasNet (Tan et al. 2019) are
    chains: each searchable layer picks an op (and for MnasNet a few more factors); a skippable
    layer has a ``zero``/``skip`` option. The string form is one token per layer, the layer's
    option labels joined by ``:``.
    """

    kind = "chain"

    def __init__(self, name: str, layers: Sequence[ChainLayer]) -> None:
        if not layers:
            raise ValueError(f"{name}: a chain needs at least one layer")
        self.name = name
        self.layers = tuple(layers)
        self.decisions = tuple(d for layer in self.layers for d in layer.decisions)
        names = [d.name for d in self.decisions]
        if len(set(names)) != len(names):
            raise ValueError(f"{name}: duplicate decision names in the chain; give layers unique names")

    def to_value(self, row: np.ndarray) -> Any:
        tokens, k = [], 0
        for layer in self.layers:
            labels = []
            for d in layer.decisions:
                labels.append(d.choices[int(row[k])])
                k += 1
            tokens.append(":".join(labels))
        return " ".join(tokens)

    def from_value(self, value: Any) -> np.ndarray:
        tokens = str(value).split()
        if len(tokens) != len(self.layers):
            raise ValueError(f"{self.name}: expected {len(self.layers)} space-separated layer tokens, "
                             f"got {len(tokens)}")
        out: list[int] = []
        for layer, tok in zip(self.layers, tokens):
            labels = tok.split(":")
            if len(labels) != len(layer.decisions):
                raise ValueError(
                    f"{self.name}: layer {layer.name!r} token {tok!r} needs {len(layer.decisions)} ':'-separated labels"
                )
            out.extend(d.index(lab) for d, lab in zip(layer.decisions, labels))
        return np.asarray(out, dtype=np.int64)

    def describe(self) -> dict[str, Any]:
        return {
            "kind": self.kind, "name": self.name,
            "layers": [{"name": la.name, "stride": la.stride, "channels": la.channels,
                        "decisions": {d.name: list(d.choices) for d in la.decisions}} for la in self.layers],
        }
