"""The Auto-DeepLab search network: a trellis of cells over four resolutions, relaxed at both levels.

Liu et al., "Auto-DeepLab: Hierarchical Neural Architecture Search for Semantic Image Segmentation",
CVPR 2019, Sec. 3.1-3.3 and 4.1.

* **Trellis.** A stem brings the image to downsample /4. Layer ``l = 0 .. L-1`` holds one cell
  output ``^sH^l`` at every level ``s`` (downsample 4, 8, 16, 32) the path can reach by then: with the
  first layer pinned at /4 (the paper's convention, ``TrellisPath.first_levels = (0,)``) layer 0 has
  /4 only, layer 1 /4 and /8, and so on, as in the paper's Fig. 1. Unreachable nodes do not exist.
* **Eq. 6.** ``^sH^l = sum_r beta_{r->s} Cell(^rH^{l-1}, ^sH^{l-2}; alpha)`` over the levels ``r``
  of layer ``l-1`` that can move to ``s`` (``s/2``, ``s``, ``2s``). One cell module per node
  ``(l, s)``: its ops are shared by its (up to three) incoming transitions, each incoming input has its
  own preprocessing that resamples it to level ``s``: a stride-2 ``FactorizedReduce`` from the finer
  level, bilinear upsampling then a 1x1 ReLU-Conv-BN from the coarser one, a 1x1 ReLU-Conv-BN from the
  same level (all non-affine, DARTS A.1.1). ``^sH^{l-2}`` is the node two layers back at the *same*
  level; where that node does not exist the cell has no second input (its edges contribute nothing).
  The first layer takes the stem's /4 output as ``H^{l-1}`` and its /2 output, resampled, as
  ``H^{l-2}`` (as the stand-alone network :class:`~nasatlas.spaces.nets.autodeeplab_net.AutoDeepLab`).
* **Cell (alpha, group "cell").** ``B`` blocks; block ``b`` sums a mixed op (Eq. 1-2, DARTS style)
  over all ``2 + b`` earlier states; the cell outputs the concatenation of its blocks. The space's 8
  ops include ``none``. One alpha is shared by every cell of the network.
* **Network (beta, group "beta").** One row per trellis node ``(l, s)`` with outgoing moves
  (``l < L-1``), its options the levels the path may move to, named by downsample ("/4", "/8", ...),
  finer first. A softmax over each row normalises beta over the node's *outgoing* transitions (paper
  Sec. 3.2: ``beta_{s->s/2} + beta_{s->s} + beta_{s->2s} = 1``); moves off the trellis (finer than /4,
  coarser than /32) are not options (masked to probability 0). When the first layer may take several
  levels (``paths = "literal"``) a first row, the stem's, chooses among them.
* **Channels.** Filter multiplier ``F`` (paper: 8 at search time): the ops of a cell at downsample
  ``s`` have ``F * s / 4`` filters and its output ``B * F * s / 4`` channels (Sec. 4.1).
* **Head.** On every level of the last layer an ASPP of 3 branches (1x1 conv, one 3x3 atrous conv of
  rate ``96 / s``, image pooling), upsampled bilinearly to the input size and summed (Sec. 4.1).
* **Derivation.** The network path by Viterbi over the beta transition probabilities
  (:func:`~nasatlas.spaces.derive.viterbi_path`, Sec. 3.3); the cell by the DARTS rule (per block the
  2 strongest non-``none`` incoming edges, each with its strongest non-``none`` op).

Subnets (``mixing_for``) are the supernet restricted to one path: only the path's cells compute, each
with the preprocessing of the move the path makes into it and the ops of the row's cell. A path cell
receives ``^sH^{l-2}`` only when the path itself was at level ``s`` two layers earlier (Eq. 6's
input, computed); otherwise it has no second input, exactly like a supernet node at the trellis border.
(The stand-alone network instead resizes the path's previous-previous output; weights inherited from
the supernet exist only for Eq. 6's wiring.)

Choices the paper leaves open, documented here: the search stem is the stand-alone stem (3x3 stride-2
conv, 3x3 conv, 3x3 stride-2 conv) with ``4F`` and ``8F`` filters; each ASPP branch has as many filters
as the cell output it reads, the image-pooling branch has no BatchNorm (it normalises a 1x1 map, which
batches of one cannot do); architecture parameters start at ``1e-3 * N(0, 1)`` (DARTS). Training
batches of one fail on levels whose map is 1x1 (BatchNorm needs two values per channel).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from .cell import CellDAG
from .derive import darts_top_k_edges, edge_index, viterbi_path
from .ops import FactorizedReduce, ReLUConvBN, make_op
from .space import Space
from .supernet import EdgeMix, MixedOp, Mixing, Supernet, add_terms
from .trellis import TrellisPath

__all__ = ["AutoDeepLabSupernet", "AUTODEEPLAB_SUPERNET_DEFAULTS", "reachable_levels"]

AUTODEEPLAB_SUPERNET_DEFAULTS: dict[str, Any] = {"F": 8, "num_classes": 19, "input": (3, 321, 321), "layers": None}
"""The paper's search setting (Sec. 4.1): F = 8, Cityscapes 19 classes, 321 x 321 crops; ``layers``
defaults to the space's L."""

Node = tuple[int, int]
"""A trellis node ``(layer, level)``; layer ``-1`` is the stem (at level 0, /4)."""


def reachable_levels(path: TrellisPath) -> list[list[int]]:
    """Per layer, the levels a valid path can occupy (the nodes of the paper's trellis)."""
    out = [list(path.first_levels)]
    for _ in range(1, path.layers):
        out.append(sorted({t for s in out[-1] for t in path._moves(s)}))
    return out


def _config(space: Space, path: TrellisPath, cfg: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(AUTODEEPLAB_SUPERNET_DEFAULTS)
    for k, v in cfg.items():
        if k not in out:
            raise ValueError(f"autodeeplab supernet: net.{k} is not a setting; settings: {sorted(out)}")
        out[k] = tuple(v) if k == "input" else v
    if out["layers"] is None:
        out["layers"] = path.layers
    for k in ("F", "num_classes", "layers"):
        v = out[k]
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"autodeeplab supernet: net.{k}={v!r} must be an integer >= 1")
    if out["F"] % 2:
        raise ValueError(f"autodeeplab supernet: net.F={out['F']} must be even (the stride-2 FactorizedReduce "
                         "splits a cell's filters in two halves); the paper searches with F = 8")
    if out["layers"] != path.layers:
        raise ValueError(f"autodeeplab supernet: net.layers={out['layers']} but space {space.name!r} declares a "
                         f"path of {path.layers} layers; declare the space with layers={out['layers']} "
                         f"(get_space('autodeeplab', layers={out['layers']})) or drop net.layers")
    inp = out["input"]
    if len(inp) != 3 or any(isinstance(d, bool) or not isinstance(d, int) or d < 1 for d in inp):
        raise ValueError(f"autodeeplab supernet: net.input={list(inp)} must be [C, H, W] positive integers")
    return out


def _blocks(space: Space) -> tuple[TrellisPath, CellDAG]:
    paths = [p for p in space.primitives if isinstance(p, TrellisPath)]
    cells = [p for p in space.primitives if isinstance(p, CellDAG)]
    if len(paths) != 1 or len(cells) != 1 or len(space.primitives) != 2:
        raise ValueError(f"space {space.name!r}: the Auto-DeepLab supernet relaxes one trellis path and one cell, "
                         f"got {[type(p).__name__ for p in space.primitives]}")
    cell = cells[0]
    if cell.n_inputs != 2 or cell.has_combine:
        raise ValueError(f"space {space.name!r}: the Auto-DeepLab cell takes 2 inputs and adds its edges "
                         f"(got n_inputs={cell.n_inputs}, combine ops {list(cell.combine_ops)})")
    return paths[0], cell


class _Resample(nn.Module):
    """Bring a feature map ``steps`` levels coarser (> 0: stride-2 ``FactorizedReduce`` per level) or
    finer (< 0: bilinear upsampling to the target size, then a 1x1 ReLU-Conv-BN), with ``C_out``
    channels; ``steps == 0``: a 1x1 ReLU-Conv-BN."""

    def __init__(self, C_in: int, C_out: int, steps: int) -> None:
        super().__init__()
        self.steps = steps
        if steps > 0:
            self.op: nn.Module = nn.Sequential(FactorizedReduce(C_in, C_out, affine=False),
                                               *[FactorizedReduce(C_out, C_out, affine=False)
                                                 for _ in range(steps - 1)])
        else:
            self.op = ReLUConvBN(C_in, C_out, 1, 1, 0, 1, affine=False)

    def forward(self, x: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
        if self.steps < 0:
            x = F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=False)
        return self.op(x)  # type: ignore[no-any-return]


class _SearchCell(nn.Module):
    """The cell at one trellis node: preprocessing per incoming level (``pre1``) and for ``^sH^{l-2}``
    (``pre0``, absent where that node does not exist), and ``B`` blocks of mixed ops over all earlier
    states (Sec. 3.1; DARTS ``model_search.py``), shared by the node's incoming transitions."""

    def __init__(self, ops: tuple[str, ...], blocks: int, C: int, pre1: Mapping[int, tuple[int, int]],
                 pre0: tuple[int, int] | None) -> None:
        super().__init__()
        self.blocks = blocks
        self.pre1 = nn.ModuleDict({str(r): _Resample(c_in, C, steps) for r, (c_in, steps) in pre1.items()})
        self.pre0 = _Resample(pre0[0], C, pre0[1]) if pre0 is not None else None
        self.edges = nn.ModuleList()
        for b in range(blocks):
            for _ in range(2 + b):
                mods = []
                for o in ops:
                    op = make_op(o, C, C, 1, affine=False)
                    if "pool" in o:  # DARTS MixedOp: non-affine BN after pooling
                        op = nn.Sequential(op, nn.BatchNorm2d(C, affine=False))
                    mods.append(op)
                self.edges.append(MixedOp(mods, ops))

    def dag(self, h0: torch.Tensor | None, h1: torch.Tensor, mixes: Sequence[EdgeMix]) -> torch.Tensor:
        """Blocks on the preprocessed inputs; the concatenated block outputs (``B * C`` channels)."""
        states: list[torch.Tensor | None] = [h0, h1]
        k = 0
        for _ in range(self.blocks):
            terms = [self.edges[k + j](h, mixes[k + j]) if h is not None else None for j, h in enumerate(states)]
            k += len(states)
            states.append(add_terms(terms, h1))
        return torch.cat([s for s in states[2:] if s is not None], dim=1)


class _SearchASPP(nn.Module):
    """The search-time ASPP of one level (Sec. 4.1): a 1x1 conv, a 3x3 conv of atrous ``rate`` and
    image pooling, each with ``C`` filters, concatenated and mapped to class logits by a 1x1 conv."""

    def __init__(self, C: int, num_classes: int, rate: int) -> None:
        super().__init__()
        self.conv1 = nn.Sequential(nn.Conv2d(C, C, 1, bias=False), nn.BatchNorm2d(C), nn.ReLU(inplace=False))
        self.atrous = nn.Sequential(nn.Conv2d(C, C, 3, padding=rate, dilation=rate, bias=False), nn.BatchNorm2d(C),
                                    nn.ReLU(inplace=False))
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(C, C, 1), nn.ReLU(inplace=False))
        self.classify = nn.Conv2d(3 * C, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(x)
        pooled = self.pool(x).expand(-1, -1, *x.shape[-2:])
        return self.classify(torch.cat([self.conv1(x), self.atrous(x), pooled], dim=1))  # type: ignore[no-any-return]


class AutoDeepLabSupernet(Supernet):
    """The Auto-DeepLab search network (see the module docstring).

    ``cfg``: ``F`` (filter multiplier, even; paper 8), ``num_classes``, ``input`` (C, H, W), ``layers``
    (must equal the space's L). Groups: ``"cell"`` (one row per edge of the B-block cell, the space's
    ops) and ``"beta"`` (one row per trellis node with outgoing moves; :attr:`beta_nodes` names them).
    ``forward(x, mixing)`` returns per-pixel logits of the input's size.
    """

    def __init__(self, space: Space, cfg: Mapping[str, Any], *, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.space = space
        self.path, self.cell = _blocks(space)
        c = _config(space, self.path, cfg)
        self.config = c
        Fm, B, L = int(c["F"]), self.cell.nodes, self.path.layers
        space_ops = self.cell.ops
        self.ops: tuple[str, ...] = space_ops if "none" in space_ops else ("none",) + space_ops
        self._zero = self.ops.index("none")
        self._col = {i: self.ops.index(o) for i, o in enumerate(space_ops)}  # space op index -> column
        self.downsample = self.path.downsample
        self.reach = reachable_levels(self.path)
        width = [Fm * 2 ** s for s in range(self.path.n_levels)]  # filters of a cell's ops per level
        out_ch = [B * w for w in width]  # a cell's output channels per level
        C_half, C_stem = 4 * Fm, 8 * Fm
        C_in = int(c["input"][0])
        self.stem0 = nn.Sequential(nn.Conv2d(C_in, C_half, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(C_half),
                                   nn.ReLU(inplace=False), nn.Conv2d(C_half, C_half, 3, padding=1, bias=False),
                                   nn.BatchNorm2d(C_half))
        self.stem1 = nn.Sequential(nn.ReLU(inplace=False),
                                   nn.Conv2d(C_half, C_stem, 3, stride=2, padding=1, bias=False),
                                   nn.BatchNorm2d(C_stem))
        # beta rows: the stem's (when the first layer has a choice), then every node with outgoing moves
        self.beta_nodes: list[Node] = [(-1, 0)] if len(self.path.first_levels) > 1 else []
        self.beta_nodes += [(l, s) for l in range(L - 1) for s in self.reach[l]]
        self._targets: list[tuple[int, ...]] = [
            tuple(self.path.first_levels) if l < 0 else tuple(self.path._moves(s)) for l, s in self.beta_nodes]
        self._row_of = {node: r for r, node in enumerate(self.beta_nodes)}
        self.cells = nn.ModuleDict()
        for l in range(L):
            for s in self.reach[l]:
                sources = [0] if l == 0 else [r for r in self.reach[l - 1] if s in self.path._moves(r)]
                pre1 = {r: (C_stem if l == 0 else out_ch[r], s - r) for r in sources}
                pre0: tuple[int, int] | None
                if l == 0:
                    pre0 = (C_half, s + 1)
                elif l == 1:
                    pre0 = (C_stem, 0) if s == 0 else None
                else:
                    pre0 = (out_ch[s], 0) if s in self.reach[l - 2] else None
                self.cells[self._key(l, s)] = _SearchCell(self.ops, B, width[s], pre1, pre0)
        self.heads = nn.ModuleDict({str(s): _SearchASPP(out_ch[s], int(c["num_classes"]),
                                                        max(1, 96 // self.downsample[s])) for s in self.reach[L - 1]})
        n_edges = edge_index(B)[-1][-1] + 1
        beta_options = [tuple(f"/{self.downsample[t]}" for t in ts) for ts in self._targets]
        options: dict[str, list[tuple[str, ...]]] = {"cell": [self.ops] * n_edges}
        if beta_options:
            options["beta"] = beta_options
        self._init_alphas(options, generator)

    @staticmethod
    def _key(layer: int, level: int) -> str:
        return f"{layer}_{level}"

    # -- forward ----------------------------------------------------------------------------------
    def forward(self, x: torch.Tensor, mixing: Mixing) -> torch.Tensor:
        """Per-pixel logits ``(N, num_classes, H, W)``: Eq. 6 over the nodes the mixing activates."""
        cell_mix = list(mixing["cell"])
        beta_mix = list(mixing["beta"]) if "beta" in mixing else []
        half = self.stem0(x)
        stem = self.stem1(half)
        sizes = [tuple(int(d) for d in stem.shape[-2:])]
        for _ in range(1, self.path.n_levels):
            sizes.append(tuple((d + 1) // 2 for d in sizes[-1]))
        states: dict[Node, torch.Tensor] = {(-1, 0): stem}
        for l in range(self.path.layers):
            incoming: dict[int, list[tuple[torch.Tensor, int, torch.Tensor | None]]] = {}
            if l == 0 and (-1, 0) not in self._row_of:
                for s in self.path.first_levels:
                    incoming[s] = [(stem, 0, None)]
            for r in ([0] if l == 0 else self.reach[l - 1]):
                node = (l - 1, r)
                if node not in states or node not in self._row_of:
                    continue
                mix = beta_mix[self._row_of[node]]
                for j in mix.active:
                    w = mix.weights[j] if mix.weights is not None else None
                    incoming.setdefault(self._targets[self._row_of[node]][j], []).append((states[node], r, w))
            for s, terms in sorted(incoming.items()):
                cell: _SearchCell = self.cells[self._key(l, s)]  # type: ignore[assignment]
                h0: torch.Tensor | None = None
                if cell.pre0 is not None:
                    prev2 = half if l == 0 else states.get((l - 2, s))
                    h0 = cell.pre0(prev2, sizes[s]) if prev2 is not None else None
                out: torch.Tensor | None = None
                for h, r, w in terms:
                    y = cell.dag(h0, cell.pre1[str(r)](h, sizes[s]), cell_mix)
                    y = y * w if w is not None else y
                    out = y if out is None else out + y
                assert out is not None
                states[(l, s)] = out
        last = [s for s in self.reach[-1] if (self.path.layers - 1, s) in states]
        if not last:
            raise ValueError("the mixing activates no node of the last layer; give each beta row on the path an "
                             "active move (mixing_for(row) or dense_mixing)")
        logits: torch.Tensor | None = None
        for s in last:
            y = F.interpolate(self.heads[str(s)](states[(self.path.layers - 1, s)]), size=tuple(x.shape[-2:]),
                              mode="bilinear", align_corners=False)
            logits = y if logits is None else logits + y
        assert logits is not None
        return logits

    # -- architectures ----------------------------------------------------------------------------
    def _split(self, row: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        row = np.asarray(row, dtype=np.int64).reshape(-1)
        self.space.validate(row[None, :])
        blocks = dict(zip((p.name for p in self.space.primitives), self.space.blocks(row[None, :])))
        return blocks[self.path.name][0], blocks[self.cell.name][0]

    def mixing_for(self, row: np.ndarray) -> Mixing:
        """The single path of ``row``: beta activates only the path's moves (no weights), alpha only the
        row's cell edges and ops (a node taking one input twice adds both ops' outputs)."""
        levels, cell_row = self._split(row)
        beta = [EdgeMix(()) for _ in self.beta_nodes]
        if (-1, 0) in self._row_of:
            beta[self._row_of[(-1, 0)]] = EdgeMix((self._targets[self._row_of[(-1, 0)]].index(int(levels[0])),))
        for l in range(self.path.layers - 1):
            r = self._row_of[(l, int(levels[l]))]
            beta[r] = EdgeMix((self._targets[r].index(int(levels[l + 1])),))
        idx = edge_index(self.cell.nodes)
        active: list[list[int]] = [[] for _ in range(idx[-1][-1] + 1)]
        for b, node in enumerate(self.cell.node_edges(cell_row)):
            for inp, op in node:
                active[idx[b][inp]].append(self._col[op])
        out: dict[str, list[EdgeMix]] = {"cell": [EdgeMix(tuple(a)) for a in active]}
        if beta:
            out["beta"] = beta
        return out

    def transitions(self, beta_probs: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Beta probabilities as a Viterbi trellis: ``(L-1, levels, levels)`` transition probabilities
        (zero for moves that do not exist) and the first layer's level probabilities (None when the
        first layer is pinned)."""
        p = np.asarray(beta_probs, dtype=np.float64)
        n = self.path.n_levels
        trans = np.zeros((self.path.layers - 1, n, n))
        start: np.ndarray | None = np.zeros(n) if (-1, 0) in self._row_of else None
        for r, (l, s) in enumerate(self.beta_nodes):
            for j, t in enumerate(self._targets[r]):
                if l < 0:
                    assert start is not None
                    start[t] = p[r, j]
                else:
                    trans[l, s, t] = p[r, j]
        return trans, start

    def derive_row(self, probs: Mapping[str, np.ndarray] | None = None) -> np.ndarray:
        """Path by Viterbi on beta (Sec. 3.3), cell by the DARTS rule on alpha; the space's row."""
        p = self.probabilities() if probs is None else probs
        if self.beta_nodes:
            trans, start = self.transitions(p["beta"])
            levels = viterbi_path(trans, self.path.first_levels, start)
        else:
            levels = [self.path.first_levels[0]]
        space_op = {col: i for i, col in self._col.items()}
        nodes = darts_top_k_edges(p["cell"], self.cell.nodes, 2, k=self.cell.k, zero_index=self._zero)
        cell_row = self.cell.row_from_edges([[(inp, space_op[col]) for inp, col in node] for node in nodes])
        parts = {self.path.name: np.asarray(levels, dtype=np.int64), self.cell.name: cell_row}
        row = np.concatenate([parts[pr.name] for pr in self.space.primitives])
        self.space.validate(row[None, :])
        return row
