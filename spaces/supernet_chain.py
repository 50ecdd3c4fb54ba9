"""Chain supernets: ProxylessNAS and FBNet as one chain of mixed layers.

The over-parameterised network of ProxylessNAS (Cai, Zhu & Han, ICLR 2019, Sec. 3.1, Fig. 2): the
stand-alone network's fixed stem, first block and head, and at every searchable position a mixed op
over that position's candidates (the "multi-path" block; mit-han-lab/proxylessnas ``MixedEdge`` inside
``MobileInvertedResidualBlock``). FBNet's supernet (Wu et al., CVPR 2019, Sec. 3.2) has the same shape
with its nine candidate blocks per layer.

* **one site per layer, one group.** The group is named after the space's chain primitive
  (``"blocks"`` for ProxylessNAS, ``"layers"`` for FBNet) and has one row per searchable layer; the
  options of row ``r`` are that layer's choices in the space's order, so an architecture row *is* the
  list of column indices. ProxylessNAS rows have 6 (first block of a stage) or 7 options; the base
  class masks the missing column.
* **the same blocks as the stand-alone network.** The fixed parts come from the network
  :func:`nasatlas.spaces.build.build` makes for the space, and every candidate is the
  :class:`~nasatlas.spaces.ops_mobile.BlockSpec` that builder uses at that position
  (:func:`~nasatlas.spaces.ops_mobile.mobile_op_spec`, identity shortcut included where stride is 1
  and widths match). The single path of an architecture therefore holds exactly the stand-alone
  network's modules: same parameter count and, with the same weights, the same output.
* **skipping.** ProxylessNAS's ``zero`` candidate of a skippable layer skips the block: the layer
  passes its input through (the ``Zero`` op plus the block's identity shortcut of the reference code),
  so it is an identity option, computed and free (0 parameters, 0 MACs). FBNet's ``skip`` is the
  identity where the shape is kept and the reference builder's 1x1 conv projection where it changes.
  Because every candidate of a layer carries the same identity shortcut, weighing candidates
  ``w_i * (body_i(x) + x)`` differs from the reference's ``sum w_i body_i(x) + x`` only when the
  weights do not sum to 1; the binary-gate gradient of ProxylessNAS over two sampled paths (their
  renormalised probabilities sum to 1) is unchanged by the common ``x`` term.

Derivation: the most probable candidate per layer (:func:`~nasatlas.spaces.derive.argmax_per_row`),
ProxylessNAS's ``set_chosen_op_active``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from .derive import argmax_per_row
from .ops_mobile import BlockSpec, mobile_op_spec
from .primitives import Chain
from .space import Space
from .supernet import EdgeMix, MixedOp, Mixing, Supernet

__all__ = ["ChainSupernet", "CHAIN_SUPERNET_DEFAULTS", "RELAXABLE_CHAINS"]

CHAIN_SUPERNET_DEFAULTS: dict[str, Any] = {"width_mult": 1.0, "num_classes": 1000, "input": (3, 224, 224)}
"""The papers' search setting: the full-width ImageNet network (ProxylessNAS Sec. 4.2, FBNet Sec. 4.1)."""

RELAXABLE_CHAINS: tuple[str, ...] = ("proxylessnas", "fbnet")
"""The chain spaces with a supernet: one op choice per layer at fixed widths and strides."""

_NOT_RELAXED = {
    "mnasnet": "MnasNet's filter-size and layer-count choices change the layers' widths and the number of layers, "
               "so its options cannot share one site of fixed shape",
    "mobilenet": "the generic MobileNetV2 chain takes user-defined stages and op names and has no fixed "
                 "relaxation here",
}


def _config(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """The resolved chain supernet settings, validated field by field (errors name ``net.<field>``)."""
    out = dict(CHAIN_SUPERNET_DEFAULTS)
    for k, v in cfg.items():
        if k not in CHAIN_SUPERNET_DEFAULTS:
            raise ValueError(f"chain supernet: net.{k} is not a setting; settings: {sorted(CHAIN_SUPERNET_DEFAULTS)}")
        out[k] = v
    wm = out["width_mult"]
    if isinstance(wm, bool) or not isinstance(wm, (int, float)) or not math.isfinite(wm) or wm <= 0:
        raise ValueError(f"chain supernet: net.width_mult={wm!r} must be a positive number (e.g. 0.25 for a tiny "
                         "CPU search, 1.0 for the paper's network)")
    out["width_mult"] = float(wm)
    nc = out["num_classes"]
    if isinstance(nc, bool) or not isinstance(nc, int) or nc < 1:
        raise ValueError(f"chain supernet: net.num_classes={nc!r} must be an integer >= 1")
    inp = out["input"]
    if (isinstance(inp, (str, bytes)) or not hasattr(inp, "__len__") or len(inp) != 3
            or any(isinstance(x, bool) or not isinstance(x, int) or x < 1 for x in inp)):
        raise ValueError(f"chain supernet: net.input={inp!r} must be three positive integers (C, H, W)")
    if int(inp[0]) != 3:
        raise ValueError(f"chain supernet: net.input={tuple(inp)} has {inp[0]} channels; the chain networks' stem "
                         "takes 3-channel images (the one-shot runner makes grey images 3-channel)")
    out["input"] = tuple(int(x) for x in inp)
    return out


def _chain(space: Space) -> Chain:
    if space.name not in RELAXABLE_CHAINS:
        why = _NOT_RELAXED.get(space.name, "no chain supernet is declared for it")
        raise ValueError(f"space {space.name!r} has no chain supernet: {why}; the relaxable chain spaces are "
                         f"{list(RELAXABLE_CHAINS)} (one op per layer at fixed widths and strides)")
    prims = space.primitives
    if len(prims) != 1 or not isinstance(prims[0], Chain) or any(len(la.decisions) != 1 for la in prims[0].layers):
        raise ValueError(f"space {space.name!r}: the chain supernet relaxes one chain with one op decision per layer")
    return prims[0]


class _ChainLayer(nn.Module):
    """One searchable position: a :class:`MixedOp` over its candidate blocks (one site)."""

    def __init__(self, specs: list[BlockSpec], names: tuple[str, ...]) -> None:
        super().__init__()
        self.specs = tuple(specs)
        self.mixed = MixedOp([s.build() for s in specs], names)

    def forward(self, x: torch.Tensor, mix: EdgeMix) -> torch.Tensor:
        out = self.mixed(x, mix)
        if out is None:
            raise ValueError("a chain layer computed no candidate: every layer of a chain needs one active option "
                             "(EdgeMix.active is empty)")
        return out


class ChainSupernet(Supernet):
    """Weight-sharing ProxylessNAS / FBNet network (see the module docstring).

    Args:
        space: ``proxylessnas`` or ``fbnet``.
        cfg: ``width_mult``, ``num_classes``, ``input`` (defaults :data:`CHAIN_SUPERNET_DEFAULTS`).
        generator: seeds the architecture parameters (weights use torch's default generator).

    Raises:
        ValueError: for another space (naming the relaxable ones and why) or an invalid setting.
    """

    def __init__(self, space: Space, cfg: Mapping[str, Any], *, generator: torch.Generator | None = None) -> None:
        super().__init__()
        from .build import build
        self.space = space
        self.chain = _chain(space)
        c = _config(cfg)
        self.config = c
        self.group = self.chain.name
        # the stand-alone network of the first option of every layer (an MBConv everywhere): its fixed
        # parts are this supernet's, its block specs give each position's widths, stride, act and bias
        first_row = np.zeros(len(self.chain.layers), dtype=np.int64)
        ref = build(space, first_row, {"width_mult": c["width_mult"], "num_classes": c["num_classes"],
                                       "input": c["input"]})
        n_fixed = len(ref.block_specs) - len(self.chain.layers)
        if n_fixed < 0:
            raise RuntimeError(f"space {space.name!r}: the stand-alone network has fewer blocks than layers")
        self.first_conv = ref.first_conv
        self.fixed_blocks = nn.Sequential(*list(ref.blocks)[:n_fixed])
        self.feature_mix = ref.feature_mix
        self.fc_hidden = ref.fc_hidden
        self.dropout = ref.dropout
        self.classifier = ref.classifier
        options: list[tuple[str, ...]] = []
        layers = []
        for r, layer in enumerate(self.chain.layers):
            pos = ref.block_specs[n_fixed + r]
            names = layer.decisions[0].choices
            specs = [self._spec(n, pos) for n in names]
            if specs[0] != pos:
                raise RuntimeError(f"space {space.name!r} layer {layer.name!r}: candidate {names[0]!r} does not "
                                   "match the stand-alone builder's block; the chain supernet is out of date")
            layers.append(_ChainLayer(specs, names))
            options.append(names)
        self.layers = nn.ModuleList(layers)
        self._init_alphas({self.group: options}, generator)

    @staticmethod
    def _spec(name: str, pos: BlockSpec) -> BlockSpec:
        """The block the stand-alone builder puts at position ``pos`` for candidate ``name``."""
        if name == "zero":  # ProxylessNAS: the block is skipped (identity position)
            return BlockSpec("skip", pos.C_in, pos.C_out, 1, op="zero")
        return mobile_op_spec(name, pos.C_in, pos.C_out, pos.stride, act=pos.act, bias=pos.bias)

    def forward(self, x: torch.Tensor, mixing: Mixing) -> torch.Tensor:
        mixes = mixing[self.group]
        if len(mixes) != len(self.layers):
            raise ValueError(f"mixing[{self.group!r}] has {len(mixes)} entries; the chain has {len(self.layers)} "
                             "layers")
        h = self.fixed_blocks(self.first_conv(x))
        for layer, mix in zip(self.layers, mixes):
            h = layer(h, mix)
        h = self.feature_mix(h).mean((2, 3))
        return self.classifier(self.dropout(self.fc_hidden(h)))  # type: ignore[no-any-return]

    def mixing_for(self, row: np.ndarray) -> Mixing:
        row = np.asarray(row, dtype=np.int64).reshape(-1)
        self.space.validate(row[None, :])
        return {self.group: [EdgeMix((int(v),)) for v in row]}

    def derive_row(self, probs: Mapping[str, np.ndarray] | None = None) -> np.ndarray:
        p = self.probabilities() if probs is None else probs
        return argmax_per_row(p[self.group], sizes=[len(o) for o in self.options[self.group]])
