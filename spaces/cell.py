"""The cell DAG primitive: intermediate nodes that each pick k inputs among earlier nodes.

This is the cell of NASNet (Zoph et al. 2018, Sec. 3), PNAS (Liu et al. 2018, Sec. 3.1), ENAS
micro (Pham et al. 2018, Sec. 2.3), DARTS (Liu et al. 2019, Sec. 2.1) and the Auto-DeepLab cell
(Liu et al. 2019, Sec. 3.1). Node ids follow the DARTS convention: ``0`` is the output of cell
``k-2``, ``1`` the output of cell ``k-1``, ``n_inputs + b`` the ``b``-th intermediate node.

Each intermediate node is three kinds of decision:
* ``inputs``: one categorical over the valid input tuples (unordered/ordered, with/without
  replacement), so the block stays a product and every point of it is valid;
* ``op{s}``: one op per picked input, slot ``s`` belonging to the ``s``-th input of the tuple;
* ``combine``: only where more than one combine op is offered (NASNet: add or concat).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from .decisions import Decision
from .primitives import Primitive

__all__ = ["CellDAG", "input_tuples"]


def input_tuples(n: int, k: int, ordered: bool, replacement: bool) -> tuple[tuple[int, ...], ...]:
    """All valid k-tuples of inputs among ``n`` candidates, in lexicographic order."""
    it: Iterable[tuple[int, ...]]
    if ordered and replacement:
        it = itertools.product(range(n), repeat=k)
    elif ordered:
        it = itertools.permutations(range(n), k)
    elif replacement:
        it = itertools.combinations_with_replacement(range(n), k)
    else:
        it = itertools.combinations(range(n), k)
    return tuple(it)


class CellDAG(Primitive):
    """A cell whose ``nodes`` intermediate nodes each take ``k`` inputs, an op on each.

    Args:
        name: block name, e.g. ``"normal"``; also the key of its genotype list.
        nodes: number of intermediate nodes (DARTS: 4, NASNet/PNAS: B=5 blocks).
        ops: op names offered on every input edge.
        k: inputs per node (2 in every published cell space).
        n_inputs: cell inputs (2: outputs of cells k-2 and k-1).
        ordered: whether the order of a node's inputs matters (NASNet/PNAS: yes, each input has
            its own op slot; DARTS: no, a node keeps its two strongest distinct edges).
        replacement: whether a node may take the same input twice.
        combine_ops: how a node merges its inputs; a decision only when more than one.
        concat: which states form the cell output: ``"all"`` intermediate nodes (DARTS; PNAS, whose
            official code concatenates every block), a fixed list of state ids (cell inputs included:
            the hand-listed outputs of the official NASNet-A and AmoebaNet-A cells, ``used_hiddenstates``
            in the TF code; not a decision, so the count is unchanged) or the ``"unused"`` ones, not consumed by a later
            node (NASNet and AmoebaNet as their papers describe the space, ENAS). The official TF
            NASNet-A and AmoebaNet-A cells list their output by hand (``used_hiddenstates``) and follow
            neither rule, so they are not members of a space with a derived concat.
        zero_op: the op that outputs zeros (``none``), if offered: it cuts paths in encodings.
    """

    kind = "cell_dag"

    def __init__(self, name: str, nodes: int, ops: Sequence[str], k: int = 2, n_inputs: int = 2,
                 ordered: bool = False, replacement: bool = False, combine_ops: Sequence[str] = ("add",),
                 concat: str | Sequence[int] = "all", zero_op: str | None = "none") -> None:
        if nodes < 1:
            raise ValueError(f"{name}: nodes={nodes}; a cell needs at least one intermediate node")
        if k < 1:
            raise ValueError(f"{name}: k={k}; each node must pick at least one input")
        if n_inputs < 1:
            raise ValueError(f"{name}: n_inputs={n_inputs}; a cell needs at least one input")
        if not replacement and k > n_inputs:
            raise ValueError(
                f"{name}: impossible declaration: node {n_inputs} must pick k={k} distinct inputs but has "
                f"only {n_inputs} candidates; lower k, raise n_inputs or set replacement=true"
            )
        if isinstance(concat, str):
            if concat not in ("all", "unused"):
                raise ValueError(f"{name}: concat={concat!r}; allowed: 'all', 'unused' or a list of state ids")
        else:
            ids = [int(c) for c in concat]
            if not ids or len(set(ids)) != len(ids) or any(not 0 <= c < n_inputs + nodes for c in ids):
                raise ValueError(f"{name}: concat={list(concat)}; a fixed output is a non-empty list of distinct "
                                 f"state ids in 0..{n_inputs + nodes - 1} (0..{n_inputs - 1} are the cell inputs)")
            concat = tuple(sorted(ids))
        if not ops:
            raise ValueError(f"{name}: ops is empty; give at least one op name")
        self.name = name
        self.nodes = nodes
        self.ops = tuple(ops)
        self.k = k
        self.n_inputs = n_inputs
        self.ordered = ordered
        self.replacement = replacement
        self.combine_ops = tuple(combine_ops)
        self.concat = concat
        self.zero_op = zero_op if zero_op in self.ops else None
        self.tuples = tuple(input_tuples(n_inputs + b, k, ordered, replacement) for b in range(nodes))
        self._tuple_index = [{t: i for i, t in enumerate(ts)} for ts in self.tuples]
        self.has_combine = len(self.combine_ops) > 1
        self.stride = 1 + k + (1 if self.has_combine else 0)  # decisions per node
        decs: list[Decision] = []
        for b in range(nodes):
            nid = n_inputs + b
            decs.append(Decision(f"{name}/node{nid}/inputs", tuple(",".join(map(str, t)) for t in self.tuples[b])))
            decs.extend(Decision(f"{name}/node{nid}/op{s}", self.ops) for s in range(k))
            if self.has_combine:
                decs.append(Decision(f"{name}/node{nid}/combine", self.combine_ops))
        self.decisions = tuple(decs)

    # -- structure ---------------------------------------------------------------------------
    def node_edges(self, row: np.ndarray) -> list[list[tuple[int, int]]]:
        """Per intermediate node, its ``(input id, op index)`` pairs in slot order."""
        out = []
        for b in range(self.nodes):
            base = b * self.stride
            tup = self.tuples[b][int(row[base])]
            out.append([(tup[s], int(row[base + 1 + s])) for s in range(self.k)])
        return out

    def combine_of(self, row: np.ndarray, b: int) -> str:
        """Combine op of intermediate node ``b``."""
        if not self.has_combine:
            return self.combine_ops[0]
        return self.combine_ops[int(row[b * self.stride + 1 + self.k])]

    def output_nodes(self, row: np.ndarray) -> list[int]:
        """Node ids concatenated into the cell output."""
        if not isinstance(self.concat, str):
            return list(self.concat)
        ids = list(range(self.n_inputs, self.n_inputs + self.nodes))
        if self.concat == "all":
            return ids
        used = {i for edges in self.node_edges(row) for i, _ in edges}
        return [i for i in ids if i not in used]

    def row_from_edges(self, edges: list[list[tuple[int, int]]], combines: list[int] | None = None) -> np.ndarray:
        """The block's row from, per node, its ``(input id, op index)`` pairs (and combine indices)."""
        row = np.zeros(self.width, dtype=np.int64)
        for b, node in enumerate(edges):
            nid = self.n_inputs + b
            if len(node) != self.k:
                raise ValueError(f"{self.name}: node {nid} needs {self.k} (op, input) pairs, got {len(node)}")
            if not self.ordered:
                node = sorted(node)
            tup = tuple(i for i, _ in node)
            idx = self._tuple_index[b].get(tup)
            if idx is None:
                rule = ("distinct " if not self.replacement else "") + f"inputs among 0..{nid - 1}"
                raise ValueError(f"{self.name}: node {nid} has inputs {list(tup)}; each node takes {self.k} {rule}")
            base = b * self.stride
            row[base] = idx
            for s, (_, op) in enumerate(node):
                row[base + 1 + s] = op
            if self.has_combine:
                row[base + 1 + self.k] = 0 if combines is None else combines[b]
        return row

    # -- text --------------------------------------------------------------------------------
    def keys(self) -> list[str]:
        """Genotype keys this block reads and writes."""
        return [self.name, f"{self.name}_concat"] + ([f"{self.name}_combine"] if self.has_combine else [])

    def to_value(self, row: np.ndarray) -> Any:
        pairs = [(self.ops[op], i) for node in self.node_edges(row) for i, op in node]
        out: dict[str, Any] = {self.name: pairs, f"{self.name}_concat": self.output_nodes(row)}
        if self.has_combine:
            out[f"{self.name}_combine"] = [self.combine_of(row, b) for b in range(self.nodes)]
        return out

    def from_value(self, value: Any) -> np.ndarray:
        if not isinstance(value, dict) or self.name not in value:
            raise ValueError(f"{self.name}: expected a genotype entry {self.name}=[(op, input), ...]")
        pairs = value[self.name]
        if not isinstance(pairs, (list, tuple)) or len(pairs) != self.nodes * self.k:
            raise ValueError(
                f"{self.name}: expected {self.nodes * self.k} (op, input) pairs ({self.k} per node, "
                f"{self.nodes} nodes), got {len(pairs) if isinstance(pairs, (list, tuple)) else pairs!r}"
            )
        edges: list[list[tuple[int, int]]] = []
        for b in range(self.nodes):
            node = []
            for p in pairs[b * self.k:(b + 1) * self.k]:
                if not (isinstance(p, (list, tuple)) and len(p) == 2 and isinstance(p[1], int)):
                    raise ValueError(f"{self.name}: {p!r} is not an (op, input) pair such as ('sep_conv_3x3', 0)")
                op = Decision(f"{self.name}/node{self.n_inputs + b}/op", self.ops).index(str(p[0]))
                node.append((p[1], op))
            edges.append(node)
        combines = None
        if self.has_combine:
            cl = value.get(f"{self.name}_combine")
            if cl is None or len(cl) != self.nodes:
                raise ValueError(f"{self.name}: expected {self.name}_combine with {self.nodes} entries "
                                 f"of {self.combine_ops}")
            combines = [Decision(f"{self.name}/combine", self.combine_ops).index(str(c)) for c in cl]
        row = self.row_from_edges(edges, combines)
        concat = value.get(f"{self.name}_concat")
        if concat is not None and list(concat) != self.output_nodes(row):
            raise ValueError(
                f"{self.name}_concat={list(concat)} does not follow this space's rule "
                f"({self.concat if isinstance(self.concat, str) else list(self.concat)!r} nodes): "
                f"expected {self.output_nodes(row)}"
            )
        return row

    # -- canonical form ----------------------------------------------------------------------
    def expressions(self, row: np.ndarray) -> dict[int, str]:
        """Expression string of every node: a function of the cell inputs, invariant under
        relabelling the intermediate nodes and, for commutative combines, under input order."""
        expr: dict[int, str] = {i: f"in{i}" for i in range(self.n_inputs)}
        for b, node in enumerate(self.node_edges(row)):
            terms = [f"{self.ops[op]}({expr[i]})" for i, op in node]
            comb = self.combine_of(row, b)
            expr[self.n_inputs + b] = f"{comb}[{','.join(sorted(terms))}]"
        return expr

    def canonical(self, row: np.ndarray) -> str:
        expr = self.expressions(row)
        return "concat{" + ";".join(sorted(expr[i] for i in self.output_nodes(row))) + "}"

    def relabel(self, row: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """A random isomorphic copy: intermediate nodes renumbered along a random topological
        order and, for ordered nodes, slots shuffled (every combine op here is commutative up to
        a channel permutation). With a fixed output list, node ids carry meaning (which states are
        concatenated), so only the slot shuffle applies."""
        edges = self.node_edges(row)
        combines = [int(row[b * self.stride + 1 + self.k]) for b in range(self.nodes)] if self.has_combine else None
        deps = [{i - self.n_inputs for i, _ in node if i >= self.n_inputs} for node in edges]
        order: list[int] = []
        remaining = set(range(self.nodes))
        while remaining:
            ready = sorted(b for b in remaining if deps[b] <= set(order))
            pick = ready[int(rng.integers(len(ready)))] if isinstance(self.concat, str) else ready[0]
            order.append(pick)
            remaining.remove(pick)
        new_id = {self.n_inputs + old: self.n_inputs + new for new, old in enumerate(order)}
        new_id.update({i: i for i in range(self.n_inputs)})
        new_edges = []
        for old in order:
            node = [(new_id[i], op) for i, op in edges[old]]
            if self.ordered:
                node = [node[j] for j in rng.permutation(len(node))]
            new_edges.append(node)
        new_comb = [combines[old] for old in order] if combines is not None else None
        return self.row_from_edges(new_edges, new_comb)

    # -- neighbours and distances ------------------------------------------------------------
    def neighbours(self, row: np.ndarray) -> np.ndarray:
        """Every valid cell one edit away: one edge's op changed, one edge moved to another
        input, or one node's combine op changed."""
        row = np.asarray(row, dtype=np.int64)
        edges = self.node_edges(row)
        combines = [int(row[b * self.stride + 1 + self.k]) for b in range(self.nodes)] if self.has_combine else None
        seen = {row.tobytes()}
        out = []

        def push(cand: np.ndarray) -> None:
            key = cand.tobytes()
            if key not in seen:
                seen.add(key)
                out.append(cand)

        for b in range(self.nodes):
            nid = self.n_inputs + b
            for s in range(self.k):
                i0, op0 = edges[b][s]
                for op in range(len(self.ops)):
                    if op != op0:
                        new = [list(e) for e in edges]
                        new[b][s] = (i0, op)
                        push(self.row_from_edges(new, combines))
                for i in range(nid):
                    if i == i0:
                        continue
                    new = [list(e) for e in edges]
                    new[b][s] = (i, op0)
                    tup = tuple(x for x, _ in (new[b] if self.ordered else sorted(new[b])))
                    if tup in self._tuple_index[b]:
                        push(self.row_from_edges(new, combines))
            if self.has_combine and combines is not None:
                for c in range(len(self.combine_ops)):
                    if c != combines[b]:
                        nc = list(combines)
                        nc[b] = c
                        push(self.row_from_edges(edges, nc))
        return np.asarray(out, dtype=np.int64).reshape(-1, self.width)

    def _edit_one(self, ra: np.ndarray, rb: np.ndarray) -> int:
        ea, eb = self.node_edges(ra), self.node_edges(rb)
        total = 0
        for b in range(self.nodes):
            def cost(x: tuple[int, int], y: tuple[int, int]) -> int:
                return int(x[0] != y[0]) + int(x[1] != y[1])
            if self.ordered:
                total += sum(cost(x, y) for x, y in zip(ea[b], eb[b]))
            else:
                total += min(sum(cost(x, y) for x, y in zip(ea[b], perm))
                             for perm in itertools.permutations(eb[b]))
            if self.has_combine:
                total += int(self.combine_of(ra, b) != self.combine_of(rb, b))
        return total

    def edit_distance(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Edge edits between cells: changing one edge's op or its input costs 1 each."""
        a2, b2 = np.broadcast_arrays(np.asarray(a), np.asarray(b))
        flat_a, flat_b = a2.reshape(-1, self.width), b2.reshape(-1, self.width)
        out = np.fromiter((self._edit_one(x, y) for x, y in zip(flat_a, flat_b)), dtype=np.int64, count=len(flat_a))
        return out.reshape(a2.shape[:-1])

    # -- encodings ---------------------------------------------------------------------------
    def graph_size(self) -> int:
        return self.n_inputs + self.nodes

    def adjacency(self, row: np.ndarray) -> np.ndarray:
        """``A[node, input, op]`` = number of edges from ``input`` into ``node`` with ``op``."""
        n = self.graph_size()
        a = np.zeros((n, n, len(self.ops)), dtype=np.uint8)
        for b, node in enumerate(self.node_edges(row)):
            for i, op in node:
                a[self.n_inputs + b, i, op] += 1
        return a

    def paths(self, row: np.ndarray) -> list[tuple[int, tuple[int, ...]]]:
        """Every path from a cell input to an output node as ``(input id, op indices)``; paths
        through the zero op are cut (BANANAS path encoding, White et al. 2021, Sec. 4)."""
        zero = self.ops.index(self.zero_op) if self.zero_op else -1
        ending: dict[int, list[tuple[int, tuple[int, ...]]]] = {i: [(i, ())] for i in range(self.n_inputs)}
        for b, node in enumerate(self.node_edges(row)):
            acc: list[tuple[int, tuple[int, ...]]] = []
            for i, op in node:
                if op == zero:
                    continue
                acc.extend((src, seq + (op,)) for src, seq in ending[i])
            ending[self.n_inputs + b] = acc
        return [p for nid in self.output_nodes(row) for p in ending[nid]]

    def path_vocabulary_size(self) -> int:
        """Number of distinct ``(input, op sequence)`` paths of length 1..nodes."""
        n_ops = len(self.ops) - (1 if self.zero_op else 0)
        return self.n_inputs * sum(n_ops ** length for length in range(1, self.nodes + 1))

    def path_index(self, path: tuple[int, tuple[int, ...]]) -> int:
        """Position of a path in the path-encoding vector."""
        src, seq = path
        zero = self.ops.index(self.zero_op) if self.zero_op else None
        n_ops = len(self.ops) - (1 if zero is not None else 0)
        offset = sum(n_ops ** length for length in range(1, len(seq)))
        code = 0
        for op in seq:
            code = code * n_ops + (op - (1 if zero is not None and op > zero else 0))
        per_input = sum(n_ops ** length for length in range(1, self.nodes + 1))
        return src * per_input + offset + code

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "nodes": self.nodes, "ops": list(self.ops), "k": self.k,
                "n_inputs": self.n_inputs, "ordered": self.ordered, "replacement": self.replacement,
                "combine_ops": list(self.combine_ops),
                "concat": self.concat if isinstance(self.concat, str) else list(self.concat)}

    def cardinality(self) -> int:
        per_node = (len(self.tuples[b]) * len(self.ops) ** self.k * len(self.combine_ops) for b in range(self.nodes))
        return math.prod(per_node)
