"""Coarsening a search space: a declared op-equivalence map and the spaces it induces.

A coarsening partitions the options of every decision of a product space into named groups, e.g. for
NAS-Bench-201 (Dong & Yang 2020) ``{nor_conv_1x1, nor_conv_3x3} -> "conv"``, ``{avg_pool_3x3,
skip_connect} -> "cheap"``, ``{none} -> "none"``. It is a surjection ``pi: A -> C`` from dense to
coarse architectures, applied decision by decision, ``pi(a)_j = g_j(a_j)``. From it:

* the **coarse space** ``C``: the same decisions, each over the groups that hold at least one of its
  options (exact cardinality ``prod_j |groups of decision j|``; NB201 -> ``3^6 = 729``);
* the **lift** of a coarse architecture ``c``: its fibre ``pi^-1(c) = prod_j members_j(c_j)``, of size
  ``prod_j |members_j(c_j)|`` (NB201: ``2^(conv + cheap edges)``);
* the **restricted space** of ``c``: its lift as a :class:`Space` of its own whose decision ``j`` offers
  only ``members_j(c_j)`` (indices mapped back to the dense space), so that any searcher can run
  inside one lift. Its neighbours are exactly the dense neighbours that stay in the lift
  (:meth:`Coarsening.lift_neighbours`), it prints its architectures in the dense space's format and
  its canonical forms are the dense space's (isomorphism-aware dedupe works inside a lift).

Coarse-to-fine search (:mod:`nasatlas.searchers.coarse_to_fine`) searches ``C`` first, then the
lift of its incumbent.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .decisions import Arch
from .primitives import Categorical, EdgeDAG, Primitive, check_rows
from .space import MAX_ENUMERATE, Space, enumerate_product

__all__ = ["COARSENINGS", "Coarsening", "RestrictedSpace", "get_coarsening"]

#: named coarsenings: preset name -> (the space it is declared for, coarse group -> member options)
COARSENINGS: dict[str, tuple[str, dict[str, tuple[str, ...]]]] = {
    # NAS-Bench-201's five ops as parametric convolutions, parameter-free cheap ops, and the zero op
    "nb201_conv_cheap": ("nb201", {"conv": ("nor_conv_1x1", "nor_conv_3x3"),
                                   "cheap": ("avg_pool_3x3", "skip_connect"),
                                   "none": ("none",)}),
}


def get_coarsening(space: Space, spec: str | Mapping[str, Sequence[str]], *, who: str = "coarsening") -> Coarsening:
    """A :class:`Coarsening` of ``space`` from a preset name in :data:`COARSENINGS` or an inline
    ``{coarse name: [options]}`` mapping; errors are prefixed with ``who``."""
    if isinstance(spec, str):
        if spec not in COARSENINGS:
            raise ValueError(f"{who}: unknown coarsening preset {spec!r}; presets: {sorted(COARSENINGS)}, or give "
                             "an inline table {coarse_name = [option, ...], ...}")
        declared_for, groups = COARSENINGS[spec]
        try:
            return Coarsening(space, groups, name=spec)
        except ValueError as e:
            raise ValueError(f"{who}: preset {spec!r} is declared for space {declared_for!r} and does not fit "
                             f"space {space.name!r}: {e}") from None
    if isinstance(spec, Mapping):
        try:
            return Coarsening(space, spec)
        except (ValueError, TypeError) as e:
            raise ValueError(f"{who}: {e}") from None
    raise TypeError(f"{who}: expected a preset name {sorted(COARSENINGS)} or a mapping coarse name -> options, "
                    f"got {type(spec).__name__}")


def _identifier(name: str, taken: set[str]) -> str:
    """A Python identifier (genotype key) derived from a decision name, unique within ``taken``."""
    base = re.sub(r"\W", "_", name)
    base = base if base and not base[0].isdigit() else f"d_{base}"
    out, k = base, 1
    while out in taken:
        k += 1
        out = f"{base}_{k}"
    taken.add(out)
    return out


class RestrictedSpace(Space):
    """The lift of one coarse architecture as a space: decision ``j`` offers only the dense options
    ``members[j]`` (sorted dense indices). Rows of this space are local indices; :meth:`to_dense` and
    :meth:`from_dense` map them. Strings and canonical forms are the dense space's.

    Args:
        dense: the product space the lift lies in.
        members: per decision, the dense option indices it may take (non-empty, increasing).
        name: the space's name (stored in its :class:`Arch` values).
    """

    def __init__(self, dense: Space, members: Sequence[Sequence[int] | np.ndarray], name: str) -> None:
        if len(members) != dense.width:
            raise ValueError(f"{name}: give members for each of the {dense.width} decisions, got {len(members)}")
        arrays = []
        for d, m in zip(dense.decisions, members):
            arr = np.asarray(m, dtype=np.int64)
            if arr.ndim != 1 or arr.size == 0 or (np.diff(arr) <= 0).any() or arr[0] < 0 or arr[-1] >= d.size:
                raise ValueError(f"{name}: decision {d.name!r} needs a non-empty increasing list of option indices "
                                 f"in 0 .. {d.size - 1}, got {list(np.atleast_1d(arr))}")
            arrays.append(arr)
        taken: set[str] = set()
        prims: list[Primitive] = [Categorical(_identifier(d.name, taken), [d.choices[int(i)] for i in arr])
                                  for d, arr in zip(dense.decisions, arrays)]
        super().__init__(name, prims, description=f"a lift in space {dense.name!r}: "
                         + ", ".join(f"{d.name} in {list(p.decisions[0].choices)}"
                                     for d, p in zip(dense.decisions, prims)),
                         family=None)  # rows are local indices: the dense builder cannot read them
        self.dense = dense
        self.members = tuple(arrays)
        self._inverse = []
        for d, arr in zip(dense.decisions, arrays):
            inv = np.full(d.size, -1, dtype=np.int64)
            inv[arr] = np.arange(len(arr))
            self._inverse.append(inv)

    def to_dense(self, rows: np.ndarray) -> np.ndarray:
        """Local rows ``(n, D)`` (or one row) -> the dense rows they stand for, ``(n, D)``."""
        rows = check_rows(rows, self.width, self.name)
        self.validate(rows)
        return np.stack([m[rows[:, j]] for j, m in enumerate(self.members)], axis=1).reshape(-1, self.width)

    def contains(self, dense_rows: np.ndarray) -> np.ndarray:
        """Boolean mask: which dense rows lie in this lift."""
        rows = check_rows(dense_rows, self.width, self.dense.name)
        self.dense.validate(rows)
        return np.all(np.stack([inv[rows[:, j]] >= 0 for j, inv in enumerate(self._inverse)], axis=1), axis=1)

    def from_dense(self, dense_rows: np.ndarray) -> np.ndarray:
        """Dense rows -> local rows; raises ``ValueError`` naming the first decision outside the lift."""
        rows = check_rows(dense_rows, self.width, self.dense.name)
        self.dense.validate(rows)
        local = np.stack([inv[rows[:, j]] for j, inv in enumerate(self._inverse)], axis=1).reshape(-1, self.width)
        if (local < 0).any():
            r, j = map(int, np.argwhere(local < 0)[0])
            d = self.dense.decisions[j]
            raise ValueError(f"{self.name}: the architecture takes option {d.choices[int(rows[r, j])]!r} at decision "
                             f"{d.name!r}, outside this lift (allowed: {list(self.decisions[j].choices)})")
        return local

    # strings and canonical forms are the dense space's
    def to_str(self, arch: Arch | np.ndarray) -> str:
        return self.dense.to_str(self.to_dense(self._row(arch))[0])

    def from_str(self, text: str) -> Arch:
        dense = self.dense.from_str(text)
        return Arch(self.name, tuple(int(v) for v in self.from_dense(np.asarray(dense.indices))[0]))

    def conventions(self) -> tuple[str, ...]:
        return self.dense.conventions()

    def canonical_form_row(self, row: np.ndarray, convention: str | None = None) -> str:
        return self.dense.canonical_form_row(self.to_dense(row)[0], convention)


class Coarsening:
    """A declared op-equivalence map on a product space (see the module docstring).

    Args:
        space: a product space (every combination of options valid).
        groups: coarse name -> the options it merges. Every option of every decision must be in
            exactly one group; an option label means the same in every decision that offers it.
        name: a label (a preset's name), used in the coarse space's name.

    Raises:
        ValueError: naming the option, decision or group at fault (an option in two groups, an option
            of a decision in no group, a group listing an option no decision offers, an empty group,
            a constrained space).
    """

    def __init__(self, space: Space, groups: Mapping[str, Sequence[str]], *, name: str = "") -> None:
        if not isinstance(space, Space):
            raise TypeError(f"a coarsening needs a Space, got {type(space).__name__}")
        if not space.is_product:
            blocks = [p.name for p in space.primitives if not p.is_product]
            raise ValueError(f"space {space.name!r} has constrained blocks {blocks} (not every combination of options "
                             "is valid), so a lift would hold invalid architectures; coarsen a product space")
        if not isinstance(groups, Mapping) or not groups:
            raise ValueError("groups must be a non-empty mapping coarse name -> [option, ...]")
        owner: dict[str, str] = {}
        clean: dict[str, tuple[str, ...]] = {}
        for g, ops in groups.items():
            if not isinstance(g, str) or not g:
                raise ValueError(f"coarse group names must be non-empty strings, got {g!r}")
            if isinstance(ops, str) or not isinstance(ops, Sequence) or len(ops) == 0:
                raise ValueError(f"group {g!r} must list at least one option, e.g. {g} = [\"op_a\", \"op_b\"]; "
                                 f"got {ops!r}")
            for op in ops:
                if not isinstance(op, str):
                    raise ValueError(f"group {g!r}: options are labels (strings), got {op!r}")
                if op in owner:
                    where = "twice in group" if owner[op] == g else f"in groups {owner[op]!r} and"
                    raise ValueError(f"option {op!r} is listed {where} {g!r}; each option must be in exactly one group")
                owner[op] = g
            clean[g] = tuple(ops)
        offered = {c for d in space.decisions for c in d.choices}
        for g, ops in clean.items():
            for op in ops:
                if op not in offered:
                    raise ValueError(f"group {g!r} lists option {op!r}, which no decision of space {space.name!r} "
                                     f"offers; options: {sorted(offered)}")
        for d in space.decisions:
            for c in d.choices:
                if c not in owner:
                    raise ValueError(f"option {c!r} of decision {d.name!r} is in no group; add it to one of "
                                     f"{list(clean)} (or a group of its own)")
        self.space = space
        self.groups = clean
        self.name = name
        order = list(clean)
        coarse_choices: list[tuple[str, ...]] = []
        to_coarse: list[np.ndarray] = []
        members: list[tuple[np.ndarray, ...]] = []
        for d in space.decisions:
            present = [g for g in order if any(owner[c] == g for c in d.choices)]
            coarse_choices.append(tuple(present))
            to_coarse.append(np.asarray([present.index(owner[c]) for c in d.choices], dtype=np.int64))
            members.append(tuple(np.asarray([i for i, c in enumerate(d.choices) if owner[c] == g], dtype=np.int64)
                                 for g in present))
        self._coarse_choices = tuple(coarse_choices)
        self._to_coarse = tuple(to_coarse)
        self._members = tuple(members)
        self.coarse_space = self._build_coarse_space()

    def __repr__(self) -> str:
        return (f"Coarsening({self.space.name!r}, {dict(self.groups)}, coarse cardinality="
                f"{self.coarse_space.cardinality():,})")

    # -- the coarse space --------------------------------------------------------------------------
    def _build_coarse_space(self) -> Space:
        """The same blocks over coarse options: an NB201-style edge DAG stays an edge DAG (its zero
        and identity ops keep their meaning when a group is exactly that op); a categorical block
        stays categorical; other blocks become one categorical decision per dense decision."""
        prims: list[Primitive] = []
        taken = {p.name for p in self.space.primitives}
        j = 0
        for p in self.space.primitives:
            choices = self._coarse_choices[j:j + p.width]
            if isinstance(p, EdgeDAG) and len(set(choices)) == 1:
                ops = choices[0]
                zero = next((g for g in ops if self.groups[g] == (p.zero_op,)), None) if p.zero_op else None
                ident = next((g for g in ops if self.groups[g] == (p.identity_op,)), None) if p.identity_op else None
                prims.append(EdgeDAG(p.name, p.nodes, ops, zero_op=zero, identity_op=ident))
            elif isinstance(p, Categorical):
                prims.append(Categorical(p.name, choices[0]))
            else:
                for d, ch in zip(p.decisions, choices):
                    prims.append(Categorical(_identifier(f"{p.name}_{d.name}", taken), ch))
            j += p.width
        label = self.name or "coarse"
        return Space(f"{self.space.name}~{label}", prims,
                     description=f"{self.space.name} coarsened by {dict(self.groups)}",
                     params={"coarsening": {g: list(m) for g, m in self.groups.items()}})

    def cardinality(self) -> int:
        """Exact number of coarse architectures: ``prod_j`` (groups present at decision ``j``)."""
        return self.coarse_space.cardinality()

    # -- dense -> coarse ---------------------------------------------------------------------------
    def coarsen(self, rows: np.ndarray | Arch) -> np.ndarray:
        """The coarse row of each dense row (``pi``), vectorised; a 1-D row gives a 1-D row."""
        one = not isinstance(rows, Arch) and np.asarray(rows).ndim == 1
        arr = np.asarray(rows.indices if isinstance(rows, Arch) else rows)
        dense = check_rows(arr, self.space.width, self.space.name)
        self.space.validate(dense)
        out = np.stack([m[dense[:, j]] for j, m in enumerate(self._to_coarse)], axis=1).reshape(-1, self.space.width)
        return out[0] if (one or isinstance(rows, Arch)) else out

    # -- coarse -> dense ---------------------------------------------------------------------------
    def _coarse_row(self, coarse_row: np.ndarray | Sequence[int]) -> np.ndarray:
        row = np.asarray(coarse_row, dtype=np.int64).reshape(-1)
        if row.shape != (self.coarse_space.width,):
            raise ValueError(f"expected one coarse row of {self.coarse_space.width} indices, got shape "
                             f"{np.asarray(coarse_row).shape}")
        self.coarse_space.validate(row)
        return row

    def members(self, coarse_row: np.ndarray | Sequence[int]) -> list[np.ndarray]:
        """Per decision, the dense option indices the coarse row's group stands for."""
        row = self._coarse_row(coarse_row)
        return [self._members[j][int(c)] for j, c in enumerate(row)]

    def lift_size(self, coarse_row: np.ndarray | Sequence[int]) -> int:
        """``|pi^-1(c)|`` = the product of the group sizes (a Python int)."""
        return math.prod(len(m) for m in self.members(coarse_row))

    def lift(self, coarse_row: np.ndarray | Sequence[int], limit: int = MAX_ENUMERATE) -> np.ndarray:
        """Every dense row mapping to ``coarse_row``, ``(lift_size, D)``, in dense rank order.

        Raises:
            ValueError: when the lift is larger than ``limit`` (use :meth:`sample_lift` instead).
        """
        mem = self.members(coarse_row)
        size = math.prod(len(m) for m in mem)
        if size > limit:
            raise ValueError(f"the lift has {size:,} architectures, more than limit={limit:,}; sample it with "
                             "sample_lift or raise the limit")
        local = enumerate_product([len(m) for m in mem])
        return np.stack([m[local[:, j]] for j, m in enumerate(mem)], axis=1).reshape(-1, self.space.width)

    def sample_lift(self, coarse_row: np.ndarray | Sequence[int], rng: np.random.Generator, n: int = 1) -> np.ndarray:
        """``n`` uniform members of the lift (with replacement), ``(n, D)``: one draw per decision."""
        if not isinstance(rng, np.random.Generator):
            raise TypeError("rng must be a numpy.random.Generator, e.g. numpy.random.default_rng(seed)")
        mem = self.members(coarse_row)
        sizes = np.asarray([len(m) for m in mem], dtype=np.int64)
        local = rng.integers(0, sizes, size=(n, len(mem)), dtype=np.int64)
        return np.stack([m[local[:, j]] for j, m in enumerate(mem)], axis=1).reshape(n, self.space.width)

    def restrict(self, coarse_row: np.ndarray | Sequence[int]) -> RestrictedSpace:
        """The lift of ``coarse_row`` as a :class:`RestrictedSpace` (run a searcher inside it)."""
        row = self._coarse_row(coarse_row)
        return RestrictedSpace(self.space, self.members(row),
                               name=f"{self.space.name}|{self.coarse_space.to_str(row)}")

    def lift_neighbours(self, row: np.ndarray | Arch) -> np.ndarray:
        """The dense neighbours of ``row`` that stay in its lift (same coarse architecture)."""
        arr = np.asarray(row.indices if isinstance(row, Arch) else row, dtype=np.int64)
        nbrs = self.space.neighbours(arr)
        if len(nbrs) == 0:
            return nbrs
        keep = np.all(self.coarsen(nbrs) == self.coarsen(arr)[None, :], axis=1)
        return nbrs[keep]

    def describe(self) -> dict[str, Any]:
        """A JSON-able summary: groups, coarse cardinality, the lift size range."""
        sizes = [[len(m) for m in ms] for ms in self._members]
        return {"name": self.name, "space": self.space.name, "groups": {g: list(m) for g, m in self.groups.items()},
                "coarse_cardinality": self.cardinality(),
                "lift_size_min": math.prod(min(s) for s in sizes), "lift_size_max": math.prod(max(s) for s in sizes)}
