"""Cell supernets: NAS-Bench-201 (one shared edge DAG) and DARTS (normal and reduction cells).

* :class:`NB201Supernet` — the NB201 macro skeleton (Dong & Yang 2020, Sec. 2.1; the search network
  of their DARTS/GDAS baselines, Sec. 5) with a mixed op on each of the 6 edges of every cell; one
  group ``"cell"`` of 6 rows x 5 ops shared by all cells. Derivation: argmax op per edge, ``none``
  included (the benchmark's own rule: an NB201 cell may hold ``none`` edges).
* :class:`DartsSupernet` — the DARTS search network (Liu et al. 2019, Sec. 2.1-2.2 and A.1.1;
  ``model_search.py``): a 3C stem, ``layers`` cells with reductions at 1/3 and 2/3 depth, every
  intermediate node summing a mixed op over *all* earlier states (14 edges for 4 nodes), the ``none``
  op added to the space's ops as in the paper, a non-affine BN after pooling ops. Groups ``"normal"``
  and ``"reduce"``: 14 rows x (1 + ops). Derivation: :func:`~nasatlas.spaces.derive.darts_top_k_edges`.

Search-time BN is non-affine (DARTS A.1.1: "we disable learnable affine parameters in all batch
normalizations") and tracks running statistics, so that subnets can be scored with inherited and with
recalibrated statistics.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from .cell import CellDAG
from .derive import argmax_per_row, darts_top_k_edges, edge_index
from .nets.nb201_net import nb201_stages
from .ops import FactorizedReduce, ReLUConvBN, make_op
from .primitives import EdgeDAG
from .space import Space
from .supernet import EdgeMix, MixedOp, Mixing, Supernet, add_terms

__all__ = ["NB201Supernet", "DartsSupernet", "NB201_SUPERNET_DEFAULTS", "DARTS_SUPERNET_DEFAULTS"]

NB201_SUPERNET_DEFAULTS: dict[str, Any] = {"C": 16, "N": 5, "num_classes": 10, "input": (3, 32, 32)}
"""NB201's search network for its DARTS/GDAS baselines: C=16, N=5."""
DARTS_SUPERNET_DEFAULTS: dict[str, Any] = {"C": 16, "layers": 8, "num_classes": 10, "input": (3, 32, 32),
                                           "stem_multiplier": 3}
"""DARTS's search network (Sec. 3.1.1): 8 cells, C=16."""


def _config(name: str, defaults: Mapping[str, Any], cfg: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(defaults)
    for k, v in cfg.items():
        if k not in defaults:
            raise ValueError(f"{name} supernet: net.{k} is not a setting; settings: {sorted(defaults)}")
        out[k] = tuple(v) if k == "input" else v
    for k in ("C", "N", "layers", "num_classes"):
        if k in out and (isinstance(out[k], bool) or not isinstance(out[k], int) or out[k] < 1):
            raise ValueError(f"{name} supernet: net.{k}={out[k]!r} must be an integer >= 1")
    return out


def _edge_dag(space: Space) -> EdgeDAG:
    p = space.primitives[0]
    if len(space.primitives) != 1 or not isinstance(p, EdgeDAG):
        raise ValueError(f"space {space.name!r}: the NB201 supernet relaxes one edge DAG, got "
                         f"{[type(q).__name__ for q in space.primitives]}")
    return p


class _NB201SearchCell(nn.Module):
    """NB201 cell with a mixed op per edge; node ``i`` sums its incoming mixed edges."""

    def __init__(self, nodes: int, ops: tuple[str, ...], C: int) -> None:
        super().__init__()
        self.nodes = nodes
        self.edges = nn.ModuleList(
            MixedOp([make_op(o, C, C, 1, affine=False, track_running_stats=True, conv_bias=True) for o in ops], ops)
            for j in range(1, nodes) for _ in range(j))

    def forward(self, x: torch.Tensor, mixes: list[EdgeMix]) -> torch.Tensor:
        states = [x]
        k = 0
        for j in range(1, self.nodes):
            terms = []
            for i in range(j):
                terms.append(self.edges[k](states[i], mixes[k]))
                k += 1
            states.append(add_terms(terms, x))
        return states[-1]


class NB201Supernet(Supernet):
    """Weight-sharing NB201 network (see the module docstring). ``cfg``: ``C``, ``N``, ``num_classes``,
    ``input``."""

    def __init__(self, space: Space, cfg: Mapping[str, Any], *, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.space = space
        self.cell = _edge_dag(space)
        c = _config("nb201", NB201_SUPERNET_DEFAULTS, cfg)
        self.config = c
        C, N = int(c["C"]), int(c["N"])
        self.stem = nn.Sequential(nn.Conv2d(int(c["input"][0]), C, 3, padding=1, bias=False), nn.BatchNorm2d(C))
        layers, C_prev = nb201_stages(C, N, lambda ch: _NB201SearchCell(self.cell.nodes, self.cell.ops, ch))
        self.cells = nn.ModuleList(layers)
        self.lastact = nn.Sequential(nn.BatchNorm2d(C_prev), nn.ReLU(inplace=False))
        self.classifier = nn.Linear(C_prev, int(c["num_classes"]))
        self._init_alphas({"cell": [self.cell.ops] * len(self.cell.edges)}, generator)

    def forward(self, x: torch.Tensor, mixing: Mixing) -> torch.Tensor:
        mixes = list(mixing["cell"])
        h = self.stem(x)
        for m in self.cells:
            h = m(h, mixes) if isinstance(m, _NB201SearchCell) else m(h)
        h = self.lastact(h)
        return self.classifier(h.mean(dim=(2, 3)))  # type: ignore[no-any-return]

    def mixing_for(self, row: np.ndarray) -> Mixing:
        self.space.validate(np.asarray(row)[None, :])
        return {"cell": [EdgeMix((int(v),)) for v in np.asarray(row).reshape(-1)]}

    def derive_row(self, probs: Mapping[str, np.ndarray] | None = None) -> np.ndarray:
        p = self.probabilities() if probs is None else probs
        return argmax_per_row(p["cell"])


class _DartsSearchCell(nn.Module):
    """DARTS search cell (``model_search.py`` ``Cell``): preprocess both inputs, each node sums a mixed
    op over every earlier state, output concatenates the intermediate nodes."""

    def __init__(self, nodes: int, ops: tuple[str, ...], C_pp: int, C_p: int, C: int, reduction: bool,
                 reduction_prev: bool) -> None:
        super().__init__()
        self.reduction = reduction
        self.nodes = nodes
        self.pre0: nn.Module = (FactorizedReduce(C_pp, C, affine=False) if reduction_prev
                                else ReLUConvBN(C_pp, C, 1, 1, 0, 1, affine=False))
        self.pre1 = ReLUConvBN(C_p, C, 1, 1, 0, 1, affine=False)
        self.edges = nn.ModuleList()
        for b in range(nodes):
            for j in range(2 + b):
                stride = 2 if reduction and j < 2 else 1
                mods = []
                for o in ops:
                    op = make_op(o, C, C, stride, affine=False)
                    if "pool" in o:  # DARTS MixedOp: BN after pooling
                        op = nn.Sequential(op, nn.BatchNorm2d(C, affine=False))
                    mods.append(op)
                self.edges.append(MixedOp(mods, ops))

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, mixes: list[EdgeMix]) -> torch.Tensor:
        states = [self.pre0(s0), self.pre1(s1)]
        k = 0
        for _ in range(self.nodes):
            terms = [self.edges[k + j](h, mixes[k + j]) for j, h in enumerate(states)]
            k += len(states)
            like = states[1] if not self.reduction else states[1][:, :, ::2, ::2]
            states.append(add_terms(terms, like))
        return torch.cat(states[2:], dim=1)


class DartsSupernet(Supernet):
    """Weight-sharing DARTS network (see the module docstring). ``cfg``: ``C``, ``layers``,
    ``num_classes``, ``input``, ``stem_multiplier``."""

    def __init__(self, space: Space, cfg: Mapping[str, Any], *, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.space = space
        cells = [p for p in space.primitives if isinstance(p, CellDAG)]
        if len(cells) != 2 or len(space.primitives) != 2 or any(c.ordered or c.replacement or c.k != 2
                                                                  or c.n_inputs != 2 for c in cells):
            raise ValueError(f"space {space.name!r}: the DARTS supernet relaxes a normal and a reduction cell whose "
                             "nodes keep 2 distinct unordered inputs among the 2 cell inputs and earlier nodes")
        self.normal_cell, self.reduce_cell = cells
        if self.normal_cell.nodes != self.reduce_cell.nodes or self.normal_cell.ops != self.reduce_cell.ops:
            raise ValueError(f"space {space.name!r}: normal and reduction cells must share nodes and ops")
        c = _config("darts", DARTS_SUPERNET_DEFAULTS, cfg)
        self.config = c
        space_ops = self.normal_cell.ops
        self.ops: tuple[str, ...] = space_ops if "none" in space_ops else ("none",) + space_ops
        self._zero = self.ops.index("none")
        self._col = {i: self.ops.index(o) for i, o in enumerate(space_ops)}  # space op index -> column
        nodes = self.normal_cell.nodes
        C, layers = int(c["C"]), int(c["layers"])
        C_curr = int(c["stem_multiplier"]) * C
        self.stem = nn.Sequential(nn.Conv2d(int(c["input"][0]), C_curr, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(C_curr))
        C_pp, C_p, C_curr = C_curr, C_curr, C
        self.cells = nn.ModuleList()
        reduction_prev = False
        for i in range(layers):
            reduction = layers >= 3 and i in (layers // 3, 2 * layers // 3)
            if reduction:
                C_curr *= 2
            cell = _DartsSearchCell(nodes, self.ops, C_pp, C_p, C_curr, reduction, reduction_prev)
            reduction_prev = reduction
            self.cells.append(cell)
            C_pp, C_p = C_p, nodes * C_curr
        self.classifier = nn.Linear(C_p, int(c["num_classes"]))
        n_edges = sum(2 + b for b in range(nodes))
        self._init_alphas({"normal": [self.ops] * n_edges, "reduce": [self.ops] * n_edges}, generator)

    def forward(self, x: torch.Tensor, mixing: Mixing) -> torch.Tensor:
        normal, reduce = list(mixing["normal"]), list(mixing["reduce"])
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            s0, s1 = s1, cell(s0, s1, reduce if cell.reduction else normal)
        return self.classifier(s1.mean(dim=(2, 3)))  # type: ignore[no-any-return]

    def mixing_for(self, row: np.ndarray) -> Mixing:
        row = np.asarray(row, dtype=np.int64).reshape(-1)
        self.space.validate(row[None, :])
        out: dict[str, list[EdgeMix]] = {}
        start = 0
        for cell in (self.normal_cell, self.reduce_cell):
            block = row[start:start + cell.width]
            start += cell.width
            idx = edge_index(cell.nodes)
            mixes = [EdgeMix(()) for _ in range(idx[-1][-1] + 1)]
            for b, node in enumerate(cell.node_edges(block)):
                for inp, op in node:
                    mixes[idx[b][inp]] = EdgeMix((self._col[op],))
            out[cell.name] = mixes
        return {"normal": out[self.normal_cell.name], "reduce": out[self.reduce_cell.name]}

    def derive_row(self, probs: Mapping[str, np.ndarray] | None = None) -> np.ndarray:
        p = self.probabilities() if probs is None else probs
        space_op = {col: i for i, col in self._col.items()}
        parts = []
        for group, cell in (("normal", self.normal_cell), ("reduce", self.reduce_cell)):
            nodes = darts_top_k_edges(p[group], cell.nodes, 2, k=2, zero_index=self._zero)
            parts.append(cell.row_from_edges([[(inp, space_op[col]) for inp, col in node] for node in nodes]))
        return np.concatenate(parts)
