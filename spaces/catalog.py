"""Declarations of the built-in search spaces, each a few lines over the primitives.

Every count these declarations imply is derived, never typed in: the tests compare the derived
numbers with the papers' figures. Counting conventions, with sources:

* ``nb201`` — Dong & Yang 2020, NAS-Bench-201, Sec. 2.1: 4 nodes, 6 edges, 5 ops: 5^6.
* ``darts`` — Liu et al. 2019, DARTS, Sec. 2.1 and 3.1.1: 4 intermediate nodes, each keeps its 2
  strongest edges from distinct predecessors, 7 non-zero ops; normal x reduction cells.
* ``nasnet`` — Zoph et al. 2018, Sec. 3 (B=5 blocks, 13 ops, add or concat); ``pnas`` — Liu et al.
  2018, PNAS, Sec. 3.1 (B=5, 8 ops, add); ``amoebanet`` — Real et al. 2019, AmoebaNet, Sec. 3
  (NASNet-style cells with AmoebaNet's 8 ops); ``enas_micro`` — Pham et al. 2018, Sec. 2.3
  (B=5, 5 ops). Block inputs are ordered and drawn with replacement among the earlier states.
* ``autodeeplab`` — Liu et al. 2019, Auto-DeepLab, Sec. 3 (cell B=5, 8 ops; trellis L=12).
* ``proxylessnas`` — Cai et al. 2019, Sec. 4 / Appendix; ``fbnet`` — Wu et al. 2019, Table 1-2;
  ``mnasnet`` — Tan et al. 2019, Sec. 4.1, Fig. 4; ``mobilenet`` — a generic MobileNetV2 chain
  (Sandler et al. 2018, Table 2) with kernel x expansion per layer.
* ``enas_macro`` — Pham et al. 2018, Sec. 2.2: 12 layers, 6 ops, skip connections to any earlier
  layer: 6^12 * 2^66; the NAS-RL formula of the survey (Elsken et al. 2019) is reported beside.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from .cell import CellDAG
from .primitives import Chain, ChainLayer, EdgeDAG
from .space import Space
from .trellis import TrellisPath

__all__ = ["nb201", "darts", "nasnet", "pnas", "amoebanet", "enas_micro", "autodeeplab", "proxylessnas",
           "fbnet", "mnasnet", "mobilenet", "enas_macro", "NB201_OPS", "DARTS_OPS", "NASNET_OPS", "PNAS_OPS",
           "AMOEBANET_OPS", "ENAS_OPS", "AUTODEEPLAB_OPS", "survey_cell_formula"]

NB201_OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
DARTS_OPS = ("max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3", "sep_conv_5x5",
             "dil_conv_3x3", "dil_conv_5x5")
#: NASNet's 13 ops (Zoph et al. 2018, Sec. 3); identity is ``skip_connect`` (TF's "none"); the
#: 1x7-then-7x1 conv and the dilated (separable) conv carry DARTS's op names
NASNET_OPS = ("skip_connect", "conv_1x3_3x1", "conv_7x1_1x7", "dil_conv_3x3", "avg_pool_3x3", "max_pool_3x3",
              "max_pool_5x5", "max_pool_7x7", "conv_1x1", "conv_3x3", "sep_conv_3x3", "sep_conv_5x5",
              "sep_conv_7x7")
#: PNAS's 8 ops (Liu et al. 2018, Sec. 3.1)
PNAS_OPS = ("skip_connect", "avg_pool_3x3", "max_pool_3x3", "conv_7x1_1x7", "sep_conv_3x3", "sep_conv_5x5",
            "sep_conv_7x7", "dil_conv_3x3")
#: AmoebaNet's 8 ops (Real et al. 2019, Sec. 3); its 1x7-7x1 is the bottleneck variant of the TPU code
AMOEBANET_OPS = ("skip_connect", "sep_conv_3x3", "sep_conv_5x5", "sep_conv_7x7", "avg_pool_3x3", "max_pool_3x3",
                 "dil_conv_3x3", "conv_1x7_7x1_bottleneck")
#: ENAS micro's 5 ops (Pham et al. 2018, Sec. 2.3)
ENAS_OPS = ("sep_conv_3x3", "sep_conv_5x5", "avg_pool_3x3", "max_pool_3x3", "skip_connect")
#: Auto-DeepLab cell ops (Liu et al. 2019, Sec. 3.1); atrous convs are regular (non-separable), rate 2
AUTODEEPLAB_OPS = ("sep_conv_3x3", "sep_conv_5x5", "atr_conv_3x3", "atr_conv_5x5", "avg_pool_3x3",
                   "max_pool_3x3", "skip_connect", "none")
#: in the official op-id order (melodyguan/enas macro_child.py), so strings are ENAS fixed_arc strings
ENAS_MACRO_OPS = ("conv_3x3", "sep_conv_3x3", "conv_5x5", "sep_conv_5x5", "avg_pool_3x3", "max_pool_3x3")


def survey_cell_formula(n_ops: int, n_combine: int, blocks: int, n_inputs: int = 2) -> int:
    """The survey's cell-space size (C1^2 * C2)^B * prod_i C(i+1, 2).

    ``C1`` ops, ``C2`` combine ops, ``B`` blocks; ``i`` runs over the number of hidden states
    available to each block (``n_inputs`` .. ``n_inputs + B - 1``), and C(i+1, 2) counts the
    unordered pairs of inputs drawn with replacement among them. It differs from the literal
    rule (ordered pairs, i^2) because it treats a block's two inputs as unordered.
    """
    return (n_ops ** 2 * n_combine) ** blocks * math.prod(math.comb(i + 1, 2)
                                                          for i in range(n_inputs, n_inputs + blocks))


def _cell_count(space: Space) -> int:
    cells = [p for p in space.primitives if isinstance(p, CellDAG)]
    return cells[0].cardinality()


def _unique(convention: str) -> Any:
    return lambda s: s.unique_cardinality(convention)


def nb201() -> Space:
    """NAS-Bench-201 / NATS-Bench topology space: one cell of 4 nodes, an op on each of 6 edges."""
    return Space(
        "nb201", [EdgeDAG("cell", nodes=4, ops=NB201_OPS)], family="nb201",
        description="NAS-Bench-201 cell: 4 nodes, 6 edges, 5 ops per edge; network C=16, N=5, 3 stages.",
        sources=["Dong & Yang 2020, NAS-Bench-201 (ICLR), Sec. 2.1", "Dong et al. 2021, NATS-Bench, topology space"],
        counts={"unique_semantic": (_unique("semantic"), "cells merged when they compute the same function: "
                                    "zero terms dropped, skip = identity, sums flattened (nasatlas's own rule)"),
                "unique_nozero": (_unique("published_nozero"), "NB201 to_unique_str(consider_zero=False)")},
    )


def _darts_cell(name: str, nodes: int, ops: Sequence[str]) -> CellDAG:
    return CellDAG(name, nodes=nodes, ops=ops, k=2, ordered=False, replacement=False, concat="all")


def darts(nodes: int = 4, ops: Sequence[str] = DARTS_OPS) -> Space:
    """DARTS CNN space: normal and reduction cells, each node keeps 2 distinct inputs, 7 ops."""
    return Space(
        "darts", [_darts_cell("normal", nodes, ops), _darts_cell("reduce", nodes, ops)], family="darts",
        params={"nodes": nodes, "ops": list(ops)},
        description="DARTS: 4 intermediate nodes per cell, each with 2 edges from distinct earlier nodes, "
                    "7 non-zero ops; normal x reduction cell.",
        sources=["Liu et al. 2019, DARTS (ICLR), Sec. 2.1, 3.1.1", "quark0/darts cnn/genotypes.py"],
        counts={"cardinality_cell": (_cell_count, "one cell")},
    )


def _tf_cell(name: str, blocks: int, ops: Sequence[str], combine: Sequence[str],
             concat: str | Sequence[int] | None = "unused") -> CellDAG:
    concat = "unused" if concat is None else concat
    return CellDAG(name, nodes=blocks, ops=ops, k=2, ordered=True, replacement=True, combine_ops=combine,
                   concat=concat, zero_op=None)


def _survey(n_ops: int, n_combine: int, blocks: int, cells: int) -> Any:
    return lambda s: survey_cell_formula(n_ops, n_combine, blocks) ** cells


def _listed(params: dict[str, Any], concat_normal: Sequence[int] | None,
            concat_reduce: Sequence[int] | None) -> dict[str, Any]:
    """Record fixed output lists in the space's parameters (only when given)."""
    if (concat_normal is None) != (concat_reduce is None):
        raise ValueError("give both concat_normal and concat_reduce (the cells' fixed outputs) or neither")
    if concat_normal is not None and concat_reduce is not None:
        params.update(concat_normal=[int(c) for c in concat_normal], concat_reduce=[int(c) for c in concat_reduce])
    return params


def nasnet(blocks: int = 5, ops: Sequence[str] = NASNET_OPS, combine: Sequence[str] = ("add", "concat"),
           concat_normal: Sequence[int] | None = None, concat_reduce: Sequence[int] | None = None) -> Space:
    """NASNet space: normal and reduction cells of B blocks, ordered inputs with replacement.

    ``concat_normal``/``concat_reduce`` (DARTS-convention state ids, cell inputs included) replace the
    derived "unused states" output by a fixed list per cell: the variant the official NASNet-A cell is
    a member of (its ``used_hiddenstates`` are listed by hand). The count does not change."""
    return Space(
        "nasnet", [_tf_cell("normal", blocks, ops, combine, concat_normal),
                   _tf_cell("reduce", blocks, ops, combine, concat_reduce)],
        family="tf_cell",
        params=_listed({"blocks": blocks, "ops": list(ops), "combine": list(combine)}, concat_normal, concat_reduce),
        description="NASNet: B=5 blocks per cell; each block picks 2 inputs among earlier states (ordered, with "
                    "replacement), an op for each (13 ops) and a combine op (add, concat); unused states are "
                    "concatenated.",
        sources=["Zoph et al. 2018, Learning Transferable Architectures (CVPR), Sec. 3, Fig. 3"],
        counts={"cardinality_cell": (_cell_count, "one cell"),
                "cardinality_survey": (_survey(len(ops), len(combine), blocks, 2),
                                       "(C1^2*C2)^B * prod C(i+1,2), both cells")},
    )


def pnas(blocks: int = 5, ops: Sequence[str] = PNAS_OPS) -> Space:
    """PNAS space: one cell type of B blocks (the reduction cell is the same cell at stride 2)."""
    return Space(
        "pnas", [_tf_cell("cell", blocks, ops, ("add",), concat="all")], family="tf_cell",
        params={"blocks": blocks, "ops": list(ops)},
        description="PNAS: one cell of B=5 blocks, ordered inputs with replacement, 8 ops, add; the output "
                    "concatenates all B blocks (used or not), as the official PNASNet code does.",
        sources=["Liu et al. 2018, Progressive NAS (ECCV), Sec. 3.1",
                 "tensorflow/models research/slim/nets/nasnet/pnasnet.py PNasNetNormalCell: "
                 "used_hiddenstates = [1, 1, 0, 0, 0, 0, 0] (every block concatenated, also the one a later "
                 "block reads); chenxi116/PNASNet.pytorch genotypes.py: concat [2, 3, 4, 5, 6]"],
        counts={"cardinality_cell": (_cell_count, "one cell"),
                "cardinality_survey": (_survey(len(ops), 1, blocks, 1), "(C1^2*C2)^B * prod C(i+1,2)")},
    )


def amoebanet(blocks: int = 5, ops: Sequence[str] = AMOEBANET_OPS, concat_normal: Sequence[int] | None = None,
              concat_reduce: Sequence[int] | None = None) -> Space:
    """AmoebaNet space: NASNet-style normal and reduction cells with AmoebaNet's 8 ops, add
    (``concat_normal``/``concat_reduce``: fixed outputs, as for :func:`nasnet`)."""
    return Space(
        "amoebanet", [_tf_cell("normal", blocks, ops, ("add",), concat_normal),
                      _tf_cell("reduce", blocks, ops, ("add",), concat_reduce)],
        family="tf_cell", params=_listed({"blocks": blocks, "ops": list(ops)}, concat_normal, concat_reduce),
        description="AmoebaNet: NASNet-style cells (B=5, ordered inputs with replacement, add) with 8 ops.",
        sources=["Real et al. 2019, Regularized Evolution (AAAI), Sec. 3, Fig. 2"],
        counts={"cardinality_cell": (_cell_count, "one cell"),
                "cardinality_survey": (_survey(len(ops), 1, blocks, 2), "(C1^2*C2)^B * prod C(i+1,2), both cells")},
    )


def enas_micro(blocks: int = 5, ops: Sequence[str] = ENAS_OPS) -> Space:
    """ENAS micro space: normal and reduction cells of B nodes, 5 ops, inputs with replacement."""
    return Space(
        "enas_micro", [_tf_cell("normal", blocks, ops, ("add",)), _tf_cell("reduce", blocks, ops, ("add",))],
        family="tf_cell", params={"blocks": blocks, "ops": list(ops)},
        description="ENAS micro: B=5 nodes per cell, each picks 2 earlier states (with replacement) and 2 of 5 "
                    "ops, add; unused nodes concatenated.",
        sources=["Pham et al. 2018, ENAS (ICML), Sec. 2.3"],
        counts={"cardinality_cell": (_cell_count, "one cell"),
                "cardinality_survey": (_survey(len(ops), 1, blocks, 2), "(C1^2*C2)^B * prod C(i+1,2), both cells")},
    )


def autodeeplab(layers: int = 12, paths: str = "paper", blocks: int = 5) -> Space:
    """Auto-DeepLab: a trellis path across /4../32 (L layers) and one cell of B blocks."""
    if paths not in ("paper", "literal"):
        raise ValueError(f"autodeeplab: paths={paths!r}; allowed: 'paper' (first layer at /4) or 'literal' "
                         "(first layer at /4 or /8)")
    first = (0,) if paths == "paper" else (0, 1)
    cell = CellDAG("cell", nodes=blocks, ops=AUTODEEPLAB_OPS, k=2, ordered=True, replacement=True,
                   concat="all", zero_op="none")
    return Space(
        "autodeeplab", [TrellisPath("path", layers, (4, 8, 16, 32), first_levels=first), cell],
        family="autodeeplab", params={"layers": layers, "paths": paths, "blocks": blocks},
        description="Auto-DeepLab: network-level trellis path (L=12 layers, downsample 4/8/16/32, +-1 level per "
                    "layer) and a cell of B=5 blocks (ordered inputs with replacement, 8 ops).",
        sources=["Liu et al. 2019, Auto-DeepLab (CVPR), Sec. 3.1-3.2, Fig. 1"],
        counts={"cardinality_cell": (_cell_count, "one cell"),
                "paths_paper": (lambda s: TrellisPath("p", layers, first_levels=(0,)).cardinality(),
                                "first layer pinned at /4 (paper: 2.9e4)"),
                "paths_literal": (lambda s: TrellisPath("p", layers, first_levels=(0, 1)).cardinality(),
                                  "first layer at /4 or /8")},
    )


def _mb_layer(name: str, ops: Sequence[str], stride: int, channels: int, skippable: bool) -> ChainLayer:
    return ChainLayer(name, [("", tuple(ops) + (("zero",) if skippable else ()))], stride=stride,
                      channels=channels, skippable=skippable)


PROXYLESS_OPS = tuple(f"MB{e}_{k}x{k}" for k in (3, 5, 7) for e in (3, 6))
#: ProxylessNAS ImageNet stages after the fixed MB1 3x3 block: (layers, channels, stride)
PROXYLESS_STAGES = ((4, 24, 2), (4, 40, 2), (4, 80, 2), (4, 96, 1), (4, 192, 2), (1, 320, 1))
FBNET_OPS = ("k3_e1", "k3_e1_g2", "k3_e3", "k3_e6", "k5_e1", "k5_e1_g2", "k5_e3", "k5_e6", "skip")
#: FBNet's macro-architecture (Wu et al. 2019, Table 1): (layers, channels, first stride)
FBNET_STAGES = ((1, 16, 1), (4, 24, 2), (4, 32, 2), (4, 64, 2), (4, 112, 1), (4, 184, 2), (1, 352, 1))


def _chain_stages(stages: Sequence[tuple[int, int, int]], ops: Sequence[str], zero_after_first: bool,
                  prefix: str) -> list[ChainLayer]:
    out = []
    for si, (n, c, s) in enumerate(stages):
        for li in range(n):
            out.append(_mb_layer(f"{prefix}{si}.{li}", ops, s if li == 0 else 1, c, zero_after_first and li > 0))
    return out


def proxylessnas() -> Space:
    """ProxylessNAS mobile space: 21 searchable MBConv blocks, 15 of them skippable."""
    return Space(
        "proxylessnas", [Chain("blocks", _chain_stages(PROXYLESS_STAGES, PROXYLESS_OPS, True, "stage"))],
        family="chain",
        description="ProxylessNAS: 21 searchable blocks after a fixed MB1 3x3 block; the first block of each of "
                    "the 6 stages picks MBConv k in {3,5,7} x e in {3,6}; the other 15 may also be zero (skipped).",
        sources=["Cai et al. 2019, ProxylessNAS (ICLR), Sec. 4, Fig. 4", "mit-han-lab/proxylessnas"],
    )


def fbnet() -> Space:
    """FBNet space: 22 searchable layers, 9 candidate blocks each (one of them skip)."""
    return Space(
        "fbnet", [Chain("layers", _chain_stages(FBNET_STAGES, FBNET_OPS, False, "stage"))], family="chain",
        description="FBNet: 22 searchable layers (TBS), 9 candidate blocks each including skip.",
        sources=["Wu et al. 2019, FBNet (CVPR), Tables 1-2"],
    )


MNASNET_FACTORS = (
    ("conv", ("conv", "dconv", "mbconv3", "mbconv6")),
    ("kernel", ("k3", "k5")),
    ("se", ("se0", "se0.25")),
    ("skip", ("none", "identity", "pool")),
    ("filters", ("f0.75", "f1.0", "f1.25")),
    ("layers", ("n-1", "n+0", "n+1")),
)
#: MnasNet's base network per block (Tan et al. 2019, Fig. 4 / MnasNet-A1): (layers, channels, stride)
MNASNET_BASE = ((1, 16, 1), (2, 24, 2), (3, 40, 2), (4, 80, 2), (2, 112, 1), (3, 160, 2), (1, 320, 1))


def mnasnet(blocks: int = 5) -> Space:
    """MnasNet factorised hierarchical space: B blocks, 6 factorised decisions each (432 choices)."""
    if not 1 <= blocks <= len(MNASNET_BASE):
        raise ValueError(f"mnasnet: blocks={blocks}; allowed 1..{len(MNASNET_BASE)} (the base network's blocks)")
    base = MNASNET_BASE[:blocks]
    layers = [ChainLayer(f"block{b}", MNASNET_FACTORS, stride=s, channels=c) for b, (_n, c, s) in enumerate(base)]
    return Space(
        "mnasnet", [Chain("blocks", layers)], family="chain", params={"blocks": blocks},
        description="MnasNet: B blocks, each choosing conv op, kernel, SE ratio, skip op, filter-size factor and "
                    "a layer-count offset relative to the base network: 432 choices per block.",
        sources=["Tan et al. 2019, MnasNet (CVPR), Sec. 4.1, Fig. 4"],
    )


MOBILENET_OPS = tuple(f"ir_k{k}_e{e}" for k in (3, 5, 7) for e in (3, 6))
MOBILENET_STAGES = ((2, 24, 2), (3, 32, 2), (4, 64, 2), (3, 96, 1), (3, 160, 2), (1, 320, 1))


def mobilenet(stages: Sequence[Sequence[int]] = MOBILENET_STAGES, ops: Sequence[str] = MOBILENET_OPS,
              skippable: bool = True) -> Space:
    """A generic MobileNetV2-style chain: per layer an inverted-residual kernel x expansion,
    every non-first layer of a stage optionally skipped."""
    st: list[tuple[int, int, int]] = []
    for s in stages:
        if len(s) != 3 or int(s[0]) < 1:
            raise ValueError(f"mobilenet: stage {list(s)} must be [layers>=1, channels, stride]")
        st.append((int(s[0]), int(s[1]), int(s[2])))
    return Space(
        "mobilenet", [Chain("layers", _chain_stages(st, ops, skippable, "stage"))], family="chain",
        params={"stages": [list(s) for s in st], "ops": list(ops), "skippable": skippable},
        description="Generic MobileNetV2-style chain (inverted residual blocks, kernel x expansion per layer).",
        sources=["Sandler et al. 2018, MobileNetV2 (CVPR), Table 2"],
    )


class EnasMacro(Chain):
    """ENAS macro chain written in ENAS's ``fixed_arc`` form: per layer its op id followed by one
    skip bit per earlier layer (Pham et al. 2018, Sec. 2.2)."""

    kind = "chain"

    def to_value(self, row: np.ndarray) -> Any:
        return " ".join(str(int(v)) for v in row)

    def from_value(self, value: Any) -> np.ndarray:
        try:
            vals = [int(t) for t in str(value).split()]
        except ValueError:
            raise ValueError(f"{self.name}: expected space-separated integers (ENAS fixed_arc), "
                             f"got {value!r}") from None
        if len(vals) != self.width:
            raise ValueError(f"{self.name}: expected {self.width} integers (per layer: op id, then one skip bit per "
                             f"earlier layer), got {len(vals)}")
        row = np.asarray(vals, dtype=np.int64)
        self.validate(row)
        return row


def enas_macro(layers: int = 12, ops: Sequence[str] = ENAS_MACRO_OPS) -> Space:
    """ENAS macro space: L layers, an op each, a skip connection from any earlier layer."""
    chain_layers = [ChainLayer(f"layer{i}", [("op", tuple(ops))] + [(f"skip{j}", ("0", "1")) for j in range(i)])
                    for i in range(layers)]
    n = len(ops)
    return Space(
        "enas_macro", [EnasMacro("layers", chain_layers)], family="enas_macro",
        params={"layers": layers, "ops": list(ops)},
        description="ENAS macro: 12 layers, 6 ops each, skip connections from any earlier layer.",
        sources=["Pham et al. 2018, ENAS (ICML), Sec. 2.2", "Zoph & Le 2017, NAS-RL"],
        counts={"cardinality_nasrl": (lambda s: n ** layers * 2 ** ((layers - 1) * (layers - 2) // 2),
                                      "C^N * 2^((N-1)(N-2)/2), survey formula for NAS-RL")},
    )

