"""The ENAS macro search space network (Pham et al., "Efficient Neural Architecture Search via Parameter
Sharing", ICML 2018, sec. 2.3 and fig. 7; after Zoph & Le 2017's NAS-RL chain of layers).

A chain of ``L`` layers, each one of six ops applied to the previous layer's output (conv 3x3, conv
5x5, depthwise-separable conv 3x3, 5x5, avg pool 3x3, max pool 3x3), plus skip connections from any
earlier layer. Layout of the official code (melodyguan/enas ``src/cifar10/general_child.py``):

* stem: 3x3 conv to ``C`` + BN; the stem is "layer -1", a possible skip source;
* each layer: ReLU-1x1 conv-BN to ``C``, then the op (ReLU-conv-BN for the convs; ReLU, depthwise,
  pointwise, BN for the separable convs; 3x3 stride-1 pooling for the pools);
* skips: layer ``k`` (``k >= 1``) holds ``k`` bits over ``[stem, layer 0, ..., layer k-2]`` (its direct
  input, layer ``k-1``, is always used). The fixed network of the official code concatenates the chosen
  outputs with the op output and fuses them with ReLU-1x1 conv-BN (``skip_combine="concat"``, applied
  from layer 1 on even with no skip chosen); the search-time layer sums them and applies BN
  (``"sum"``). The paper's fig. 7 draws concatenation.
* after layers ``L//3 - 1`` and ``2L//3 - 1`` the width doubles and every stored output (stem
  included) is reduced by a factorized reduction (no ReLU) so that later skips can read it;
* global average pooling (no ReLU before it), dropout, a bias-free linear classifier.

The official ``_fixed_layer`` builds op ids 1 and 3 (the separable convs) as *full* 3x3/5x5 convs and
cannot build the pools; ``separable_as_full_conv=True`` reproduces the former for parameter counts.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from torch import nn
from torch.nn import functional as F

from ..ops import DilConv, Pooling, ReLUConvBN
from ..ops_tf import ConvBN, tf_factorized_reduction

__all__ = ["ENAS_MACRO_FINAL_ARC", "ENAS_MACRO_OP_IDS", "ENASMacroNetwork", "parse_enas_macro_arc"]

ENAS_MACRO_OP_IDS: tuple[str, ...] = ("conv_3x3", "sep_conv_3x3", "conv_5x5", "sep_conv_5x5", "avg_pool_3x3",
                                   "max_pool_3x3")
"""Op names by official op id (``general_child.py`` branch order 0..5); the same names as the
``enas_macro`` space of :mod:`nasatlas.spaces.catalog`, which lists them in the paper's order."""

ENAS_MACRO_FINAL_ARC = " ".join((
    "0",
    "3 0",
    "0 1 0",
    "2 0 0 1",
    "2 0 0 0 0",
    "3 1 1 0 1 0",
    "2 0 0 0 0 0 1",
    "2 0 1 1 0 1 1 1",
    "1 0 1 1 1 0 1 0 1",
    "0 0 0 0 0 0 0 0 0 0",
    "2 0 0 0 0 0 1 0 0 0 0",
    "0 1 0 0 1 1 0 0 0 0 1 1",
    "2 0 1 0 0 0 0 0 1 0 1 1 0",
    "1 0 0 1 0 0 0 1 1 1 0 1 0 1",
    "0 1 1 0 1 0 1 0 0 0 0 0 1 0 0",
    "2 0 0 1 0 0 0 0 0 0 0 1 0 1 0 1",
    "2 0 1 0 0 0 1 0 0 1 1 1 1 0 0 1 0",
    "2 0 0 0 0 1 0 1 0 1 0 0 1 0 1 0 0 1",
    "3 0 1 1 0 1 0 0 0 0 0 1 0 1 0 1 0 0 0",
    "3 0 1 1 0 0 0 0 0 0 0 0 0 1 1 0 0 0 0 1",
    "0 1 0 0 1 0 1 1 0 0 0 1 0 0 0 0 0 1 1 0 0",
    "3 0 1 0 1 1 0 0 1 0 1 1 0 1 1 0 1 0 0 1 0 0",
    "0 1 0 1 0 1 0 0 0 0 0 0 0 0 1 0 1 0 0 1 0 0 0",
    "0 1 1 0 0 0 1 1 1 0 1 0 0 0 1 0 1 0 0 1 1 0 0 0",
))
"""The official final macro architecture, 24 layers (melodyguan/enas ``scripts/cifar10_macro_final.sh``;
trained there with ``out_filters=96``)."""


def parse_enas_macro_arc(arc: str | Sequence[int], num_layers: int) -> tuple[list[str], list[list[int]]]:
    """Split an official macro arc (per layer: op id, then ``layer_id`` skip bits) into ops and skips."""
    vals = [int(t) for t in arc.split()] if isinstance(arc, str) else [int(a) for a in arc]
    need = num_layers + num_layers * (num_layers - 1) // 2
    if len(vals) != need:
        raise ValueError(f"arc has {len(vals)} integers; a {num_layers}-layer macro arc has {need} "
                         "(one op id per layer plus k skip bits for layer k)")
    ops: list[str] = []
    skips: list[list[int]] = []
    pos = 0
    for k in range(num_layers):
        if not 0 <= vals[pos] < len(ENAS_MACRO_OP_IDS):
            raise ValueError(f"arc position {pos}: op id {vals[pos]} is not in "
                             f"0..{len(ENAS_MACRO_OP_IDS) - 1}")
        ops.append(ENAS_MACRO_OP_IDS[vals[pos]])
        skips.append(vals[pos + 1: pos + 1 + k])
        pos += 1 + k
    return ops, skips


class _MacroLayer(nn.Module):
    """One macro layer: ReLU-1x1-BN to ``C``, the op, then the skip combination."""

    def __init__(self, op: str, C_in: int, C: int, n_skips: int, has_skip_stage: bool, skip_combine: str,
                 separable_as_full_conv: bool) -> None:
        super().__init__()
        self.op_name = op
        self.project = ReLUConvBN(C_in, C, 1, 1, 0)
        if op in ("conv_3x3", "conv_5x5") or (separable_as_full_conv and op.startswith("sep_conv")):
            k = int(op[-1])
            self.op: nn.Module = ReLUConvBN(C, C, k, 1, k // 2)
        elif op in ("sep_conv_3x3", "sep_conv_5x5"):
            k = int(op[-1])
            self.op = DilConv(C, C, k, 1, k // 2, 1)  # ReLU, depthwise, pointwise, BN
        else:
            self.op = Pooling(C, C, 1, op[:3])
        self.skip_combine = skip_combine
        self.fuse: nn.Module | None = None
        if has_skip_stage:
            self.fuse = (ReLUConvBN((n_skips + 1) * C, C, 1, 1, 0) if skip_combine == "concat"
                         else nn.BatchNorm2d(C))

    def forward(self, x: torch.Tensor, skipped: list[torch.Tensor]) -> torch.Tensor:
        out = self.op(self.project(x))
        if self.fuse is None:
            return out
        if self.skip_combine == "concat":
            return self.fuse(torch.cat([*skipped, out], dim=1))
        return self.fuse(torch.stack([*skipped, out]).sum(0))


class ENASMacroNetwork(nn.Module):
    """A network of the ENAS macro space (see the module docstring).

    Args:
        ops: one op name per layer, from :data:`ENAS_MACRO_OP_IDS`.
        skips: per layer ``k``, ``k`` bits over ``[stem, layer 0, ..., layer k-2]`` (the official order;
            layer 0 has none). ``skips[k][0]`` is the stem, ``skips[k][j]`` the output of layer ``j-1``.
        C: stem and first-stage width (official: 36 in search, 96 for the final network).
        num_classes: classifier outputs.
        skip_combine: ``"concat"`` (official fixed network) or ``"sum"`` (official search-time layer).
        dropout: dropout before the classifier (official final: 0.5).
        separable_as_full_conv: build separable ops as full convs, as the official ``_fixed_layer`` does.
    """

    def __init__(self, ops: Sequence[str], skips: Sequence[Sequence[int]], C: int = 36, num_classes: int = 10,
                 *, skip_combine: Literal["concat", "sum"] = "concat", dropout: float = 0.0,
                 separable_as_full_conv: bool = False) -> None:
        super().__init__()
        L = len(ops)
        if L < 1:
            raise ValueError("ops is empty; give one op name per layer")
        if len(skips) != L:
            raise ValueError(f"skips has {len(skips)} entries but ops has {L}; give one skip list per layer")
        for k, op in enumerate(ops):
            if op not in ENAS_MACRO_OP_IDS:
                raise ValueError(f"ops[{k}]={op!r} is not an ENAS macro op; choose one of "
                                 f"{list(ENAS_MACRO_OP_IDS)}")
        for k, bits in enumerate(skips):
            if len(bits) != k or any(b not in (0, 1) for b in bits):
                raise ValueError(f"skips[{k}]={list(bits)} must be {k} bits (0/1) over [stem, layer 0, ..., "
                                 f"layer {k - 2}]")
        if skip_combine not in ("concat", "sum"):
            raise ValueError(f"skip_combine={skip_combine!r}; choose 'concat' or 'sum'")
        if isinstance(C, bool) or not isinstance(C, int) or C < 2:
            raise ValueError(f"C={C!r} must be an int >= 2 (factorized reductions split it in halves)")
        self.skips = [[j for j, b in enumerate(bits) if b] for bits in skips]
        pool_distance = L // 3
        self.pool_layers = [pool_distance - 1, 2 * pool_distance - 1] if pool_distance >= 1 else []
        self.stem = ConvBN(3, C, 3, 1, 1)
        self.layers = nn.ModuleList()
        self.reductions = nn.ModuleList()
        width = C
        n_stored = 1  # stem
        for k, op in enumerate(ops):
            self.layers.append(_MacroLayer(op, width, width, len(self.skips[k]), k > 0, skip_combine,
                                           separable_as_full_conv))
            n_stored += 1
            if k in self.pool_layers:
                self.reductions.append(nn.ModuleList(
                    tf_factorized_reduction(width, 2 * width, 2, relu=False) for _ in range(n_stored)))
                width *= 2
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.classifier = nn.Linear(width, num_classes, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        stored = [self.stem(x)]
        r = 0
        for k, layer in enumerate(self.layers):
            out = layer(stored[-1], [stored[j] for j in self.skips[k]])
            stored.append(out)
            if k in self.pool_layers:
                reduce = self.reductions[r]
                assert isinstance(reduce, nn.ModuleList)
                stored = [fr(s) for fr, s in zip(reduce, stored)]
                r += 1
        return self.classifier(self.dropout(torch.flatten(F.adaptive_avg_pool2d(stored[-1], 1), 1)))

    @classmethod
    def from_arc(cls, arc: str | Sequence[int] = ENAS_MACRO_FINAL_ARC, num_layers: int = 24, C: int = 96,
                 num_classes: int = 10, *, skip_combine: Literal["concat", "sum"] = "concat",
                 dropout: float = 0.0, separable_as_full_conv: bool = False) -> ENASMacroNetwork:
        """Build from an official arc string (default: the published final network, 24 layers, C = 96)."""
        ops, skips = parse_enas_macro_arc(arc, num_layers)
        return cls(ops, skips, C, num_classes, skip_combine=skip_combine, dropout=dropout,
                   separable_as_full_conv=separable_as_full_conv)
