"""Chain networks of MobileNet-style spaces, built from plain data.

A chain network is ``stem conv -> blocks -> 1x1 feature-mix conv -> global average pool ->
[hidden fc] -> classifier`` (MobileNetV2, Sandler et al. 2018, table 2; the layout every space below
shares). :class:`ChainNetwork` builds one from :class:`BlockSpec` rows; :func:`chain_from_reference`
builds any entry of ``shared/reference/chains.json`` or ``genotypes.json['ProxylessNAS_final']`` from
the JSON alone. Three search-space templates map per-block choices (names of
:data:`~nasatlas.spaces.ops_mobile.MOBILE_OPS`) onto their paper's macro skeleton:

* :func:`proxylessnas_chain` -- ProxylessNAS (Cai, Zhu & Han, ICLR 2019, section 4.2 / appendix):
  stem 32, fixed ``MB1_3x3`` block to 16, six stages of widths 24, 40, 80, 96, 192, 320, depths
  4, 4, 4, 4, 4, 1, strides 2, 2, 2, 1, 2, 1 (the reference ``imagenet_arch_search.py`` defaults),
  feature mix 1280; 21 searchable blocks, the 15 that are not first in their stage may be ``zero``.
* :func:`fbnet_chain` -- FBNet (Wu et al., CVPR 2019, table 1): stem 16, 22 searchable layers in
  stages 16x1, 24x4, 32x4, 64x4, 112x4, 184x4, 352x1 with strides 1, 2, 2, 2, 1, 2, 1, 1x1 conv to 1984
  (FBNet-A: 1504), 9 candidates per layer (table 2).
* :func:`mnasnet_chain` -- MnasNet's factorised hierarchical space (Tan et al., CVPR 2019, section
  4.1, fig. 4): per block ConvOp, KernelSize, SERatio, SkipOp, filter factor and layer-count offset
  relative to a base network (MobileNetV2 by default, as the paper says).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import nn

from ..ops_mobile import (
    ACTIVATIONS,
    FBNET_OPS,
    MNASNET_CONV_OPS,
    MNASNET_SE_RATIOS,
    MNASNET_SKIP_OPS,
    PROXYLESSNAS_OPS,
    BlockSpec,
    ConvBNAct,
    make_activation,
    make_divisible,
    mobile_op_spec,
)

__all__ = [
    "FBNET_STAGES",
    "MNASNET_BASE",
    "MNASNET_FILTER_FACTORS",
    "MNASNET_LAYER_OFFSETS",
    "PROXYLESSNAS_STAGES",
    "BlockSpec",
    "ChainNetwork",
    "ConvSpec",
    "LinearSpec",
    "MnasBaseBlock",
    "MnasBlockChoice",
    "StageSpec",
    "chain_from_reference",
    "fbnet_block_choices",
    "fbnet_chain",
    "mnasnet_chain",
    "proxylessnas_block_choices",
    "proxylessnas_chain",
]


@dataclass(frozen=True)
class ConvSpec:
    """A plain ``kxk conv -> [BN] -> act`` layer (stem, feature mix); ``act="none"`` = linear."""

    C_in: int
    C_out: int
    kernel: int = 1
    stride: int = 1
    act: str = "relu6"
    bias: bool = False
    bn: bool = True

    def build(self) -> nn.Module:
        """The :class:`~nasatlas.spaces.ops_mobile.ConvBNAct` this spec describes."""
        return ConvBNAct(self.C_in, self.C_out, self.kernel, self.stride, 1, self.act, self.bias, self.bn)


@dataclass(frozen=True)
class LinearSpec:
    """A hidden fully connected layer of the head (MobileNetV3's ``fc_hidden``): Linear -> act, no BN."""

    C_in: int
    C_out: int
    act: str = "none"
    bias: bool = True


class ChainNetwork(nn.Module):
    """``first_conv -> blocks -> feature_mix -> avg pool -> [fc_hidden] -> dropout -> Linear classifier``.

    ``blocks`` are :class:`BlockSpec` rows whose channels must chain: ``first_conv.C_out ==
    blocks[0].C_in``, each ``C_out`` feeds the next ``C_in``, the last feeds ``feature_mix``.
    ``block_specs`` keeps the rows; ``blocks`` is the matching ``nn.Sequential``. The classifier has a
    bias (every reference network does; FBNet's 1x1-conv classifier on the pooled map is the same map).
    """

    def __init__(self, blocks: Sequence[BlockSpec], first_conv: ConvSpec, feature_mix: ConvSpec | None,
                 num_classes: int = 1000, dropout: float = 0.0, *,
                 fc_hidden: LinearSpec | None = None) -> None:
        super().__init__()
        if not isinstance(first_conv, ConvSpec):
            raise TypeError(f"first_conv must be a ConvSpec, got {type(first_conv).__name__}")
        if feature_mix is not None and not isinstance(feature_mix, ConvSpec):
            raise TypeError(f"feature_mix must be a ConvSpec or None, got {type(feature_mix).__name__}")
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f"num_classes must be an int >= 1, got {num_classes!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        width = first_conv.C_out
        for i, spec in enumerate(blocks):
            if not isinstance(spec, BlockSpec):
                raise TypeError(f"blocks[{i}] must be a BlockSpec, got {type(spec).__name__}")
            if spec.C_in != width:
                raise ValueError(
                    f"blocks[{i}].C_in={spec.C_in} but the layer before it outputs {width} channels; "
                    "make each block's C_in equal the previous C_out"
                )
            width = spec.C_out
        if feature_mix is not None:
            if feature_mix.C_in != width:
                raise ValueError(
                    f"feature_mix.C_in={feature_mix.C_in} must equal the last block's C_out={width}"
                )
            width = feature_mix.C_out
        if fc_hidden is not None:
            if fc_hidden.C_in != width:
                raise ValueError(f"fc_hidden.C_in={fc_hidden.C_in} must equal the feature width {width}")
            if fc_hidden.act not in ACTIVATIONS:
                raise ValueError(f"fc_hidden.act must be one of {list(ACTIVATIONS)}, got {fc_hidden.act!r}")
        self.block_specs: tuple[BlockSpec, ...] = tuple(blocks)
        self.first_conv = first_conv.build()
        self.blocks = nn.Sequential(*(spec.build() for spec in self.block_specs))
        self.feature_mix: nn.Module = feature_mix.build() if feature_mix is not None else nn.Identity()
        self.fc_hidden: nn.Module = nn.Identity()
        if fc_hidden is not None:
            width = fc_hidden.C_out
            self.fc_hidden = nn.Sequential(nn.Linear(fc_hidden.C_in, width, bias=fc_hidden.bias),
                                           make_activation(fc_hidden.act))
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.classifier = nn.Linear(width, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The feature map after the feature-mix conv (before pooling)."""
        return self.feature_mix(self.blocks(self.first_conv(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.forward_features(x).mean((2, 3))
        return self.classifier(self.dropout(self.fc_hidden(x)))


# --------------------------------------------------------------------------- reference entries

_MB_RE = re.compile(r"^MB(\d+(?:\.\d+)?)_(\d+)x(\d+)$")
_GATES = {"sigmoid": "sigmoid", "hard_sigmoid": "hsigmoid", "hsigmoid": "hsigmoid"}


def _get(d: Mapping[str, Any], key: str, where: str) -> Any:
    if key not in d:
        raise ValueError(f"{where} has no field {key!r}; the reference entry needs it (see chains.json)")
    return d[key]


def _chains_json_block(b: Mapping[str, Any], where: str) -> BlockSpec:
    kind = _get(b, "type", where)
    c_in, c_out, stride = _get(b, "in", where), _get(b, "out", where), _get(b, "stride", where)
    if kind == "skip":
        return BlockSpec("skip", c_in, c_out, stride, act=b.get("act") or "relu", op=b.get("op", "skip"))
    se = _get(b, "se", where)
    groups = b.get("pwl_groups", 1)
    if b.get("pw_groups", groups) != groups and _get(b, "expand_conv", where):
        raise ValueError(f"{where}: pw_groups != pwl_groups is not supported; use equal 1x1 conv groups")
    gate = _GATES.get(se["gate"]) if se else "sigmoid"
    if gate is None:
        raise ValueError(f"{where}: unknown SE gate {se['gate']!r}; use one of {sorted(_GATES)}")
    return BlockSpec(
        kind, c_in, c_out, stride, _get(b, "kernel", where), _get(b, "expand_ratio", where),
        _get(b, "mid", where), _get(b, "expand_conv", where), se["reduced"] if se else None,
        se["act"] if se else "relu", gate, _get(b, "act", where), _get(b, "shortcut", where),
        bias=bool(b.get("bias", False)), groups=groups, shuffle_groups=b.get("shuffle_groups"),
        op=b.get("op", ""),
    )


def _proxyless_json_block(b: Mapping[str, Any], width: int, where: str) -> BlockSpec:
    op = _get(b, "op", where)
    if op == "zero":
        if b.get("stride", 1) != 1:
            raise ValueError(f"{where}: a 'zero' block must have stride 1, got {b.get('stride')!r}")
        return BlockSpec("skip", width, width, 1, op="zero")
    m = _MB_RE.match(op)
    if m is None or m[2] != m[3]:
        raise ValueError(f"{where}: op {op!r} is not 'zero' or MB<e>_<k>x<k> (e.g. 'MB6_5x5')")
    e, k = float(m[1]), int(m[2])
    c_in = _get(b, "in", where)
    if c_in != width:
        raise ValueError(f"{where}: in={c_in} but the previous layer outputs {width} channels")
    kind = "ds" if e == 1 else "ir"
    return BlockSpec(kind, c_in, _get(b, "out", where), _get(b, "stride", where), k,
                     int(e) if e.is_integer() else e, round(c_in * e), kind == "ir", act="relu6",
                     shortcut=_get(b, "shortcut", where), op=op)


def chain_from_reference(entry: Mapping[str, Any], *, num_classes: int | None = None,
                         dropout: float = 0.0) -> ChainNetwork:
    """Build a published chain from its JSON entry alone.

    Two formats: a ``chains.json`` entry (``stem``, ``blocks`` with explicit ``mid``/``se``/``act``/
    ``bias``/groups, ``feature_mix``, ``head``), or a ``genotypes.json['ProxylessNAS_final']`` entry
    (``first_conv_out``, ``blocks`` of ``op``/``in``/``out``/``stride``/``shortcut``,
    ``feature_mix_in_out``) with ProxylessNAS's conventions: 3x3 stride-2 stem, ReLU6, no conv bias,
    ``mid = round(in * e)``, ``zero`` blocks (identity positions), Linear classifier. ``num_classes``
    defaults to the entry's (1000).
    """
    if not isinstance(entry, Mapping) or "blocks" not in entry:
        raise ValueError("entry must be a chains.json or ProxylessNAS_final entry: a mapping with 'blocks'")
    blocks_json = entry["blocks"]
    fc_hidden: LinearSpec | None = None
    specs: list[BlockSpec] = []
    if "stem" in entry:
        stem = entry["stem"]
        first_conv = ConvSpec(3, _get(stem, "out", "stem"), _get(stem, "kernel", "stem"),
                              _get(stem, "stride", "stem"), _get(stem, "act", "stem"),
                              bool(stem.get("bias", False)), bool(stem.get("bn", True)))
        specs = [_chains_json_block(b, f"blocks[{i}]") for i, b in enumerate(blocks_json)]
        fm = _get(entry, "feature_mix", "entry")
        feature_mix = ConvSpec(_get(fm, "in", "feature_mix"), _get(fm, "out", "feature_mix"),
                               fm.get("kernel", 1), 1, _get(fm, "act", "feature_mix"),
                               bool(fm.get("bias", False)), bool(fm.get("bn", True)))
        head = _get(entry, "head", "entry")
        hidden = head.get("fc_hidden")
        if hidden:
            fc_hidden = LinearSpec(hidden["in"], hidden["out"], hidden.get("act") or "none",
                                   bool(hidden.get("bias", True)))
        classifier = _get(head, "classifier", "head")
        if not classifier.get("bias", True):
            raise ValueError("head.classifier.bias=false is not supported; reference classifiers have a bias")
        width = fc_hidden.C_out if fc_hidden else feature_mix.C_out
        if classifier.get("in", width) != width:
            raise ValueError(f"head.classifier.in={classifier['in']} does not match feature width {width}")
    elif "first_conv_out" in entry:
        width = entry["first_conv_out"]
        first_conv = ConvSpec(3, width, 3, 2, "relu6")
        for i, b in enumerate(blocks_json):
            specs.append(_proxyless_json_block(b, width, f"blocks[{i}]"))
            width = specs[-1].C_out
        mix_in, mix_out = _get(entry, "feature_mix_in_out", "entry")
        feature_mix = ConvSpec(mix_in, mix_out, 1, 1, "relu6")
    else:
        raise ValueError("entry has neither 'stem' (chains.json) nor 'first_conv_out' (ProxylessNAS_final)")
    if entry.get("n_blocks", len(specs)) != len(specs):
        raise ValueError(f"entry says n_blocks={entry['n_blocks']} but lists {len(specs)} blocks")
    if entry.get("first_conv_out", first_conv.C_out) != first_conv.C_out:
        raise ValueError(f"first_conv_out={entry['first_conv_out']} disagrees with stem {first_conv.C_out}")
    mix_io = [feature_mix.C_in, feature_mix.C_out]
    if list(entry.get("feature_mix_in_out", mix_io)) != mix_io:
        raise ValueError(f"feature_mix_in_out={entry['feature_mix_in_out']} disagrees with {mix_io}")
    n_cls = entry.get("num_classes", 1000) if num_classes is None else num_classes
    return ChainNetwork(specs, first_conv, feature_mix, n_cls, dropout, fc_hidden=fc_hidden)


# --------------------------------------------------------------------------- search-space templates


@dataclass(frozen=True)
class StageSpec:
    """One stage of a macro skeleton: ``depth`` layers of ``width`` channels, the first with ``stride``."""

    width: int
    depth: int
    stride: int


PROXYLESSNAS_STAGES: tuple[StageSpec, ...] = (
    StageSpec(24, 4, 2), StageSpec(40, 4, 2), StageSpec(80, 4, 2),
    StageSpec(96, 4, 1), StageSpec(192, 4, 2), StageSpec(320, 1, 1),
)
"""ProxylessNAS's searchable stages (reference ``width_stages``/``n_cell_stages``/``stride_stages``)."""

FBNET_STAGES: tuple[StageSpec, ...] = (
    StageSpec(16, 1, 1), StageSpec(24, 4, 2), StageSpec(32, 4, 2), StageSpec(64, 4, 2),
    StageSpec(112, 4, 1), StageSpec(184, 4, 2), StageSpec(352, 1, 1),
)
"""FBNet's TBS stages (Wu et al. 2019, table 1)."""


def _choice_list(choices: Sequence[Any], n: int, what: str) -> list[Any]:
    if isinstance(choices, str) or not isinstance(choices, Sequence):
        raise ValueError(f"{what} takes a list of {n} choices, got {type(choices).__name__}")
    if len(choices) != n:
        raise ValueError(f"{what} takes exactly {n} choices (one per searchable block), got {len(choices)}")
    return list(choices)


def _check_name(name: object, allowed: Sequence[str], where: str, known: Sequence[str] = ()) -> str:
    if isinstance(name, str) and name in known and name not in allowed:
        raise ValueError(
            f"{where}: op {name!r} is not allowed at this position; choose one of {list(allowed)}"
        )
    if not isinstance(name, str) or name not in allowed:
        raise ValueError(f"{where}: unknown op name {name!r}; choose one of {list(allowed)}")
    return name


def _positions(stages: Sequence[StageSpec], C_in: int) -> list[tuple[int, int, int, bool]]:
    """``(C_in, C_out, stride, first_in_stage)`` for every layer of ``stages``."""
    out = []
    for st in stages:
        for i in range(st.depth):
            out.append((C_in, st.width, st.stride if i == 0 else 1, i == 0))
            C_in = st.width
    return out


def _scaled_stages(stages: Sequence[StageSpec], width_mult: float) -> list[StageSpec]:
    if not width_mult > 0:
        raise ValueError(f"width_mult must be positive, got {width_mult!r}")
    return [replace(st, width=make_divisible(st.width * width_mult, 8)) for st in stages]


def proxylessnas_block_choices(
    stages: Sequence[StageSpec] = PROXYLESSNAS_STAGES,
) -> tuple[tuple[str, ...], ...]:
    """The op names allowed at each searchable ProxylessNAS position: no ``zero`` first in a stage."""
    mb = tuple(n for n in PROXYLESSNAS_OPS if n != "zero")
    return tuple(mb if first else PROXYLESSNAS_OPS for *_, first in _positions(stages, 1))


def proxylessnas_chain(choices: Sequence[str], width_mult: float = 1.0, num_classes: int = 1000, *,
                       stages: Sequence[StageSpec] = PROXYLESSNAS_STAGES,
                       dropout: float = 0.0) -> ChainNetwork:
    """A ProxylessNAS network (Cai et al. 2019, section 4.2) from its 21 per-block choices.

    ``choices[i]`` is one of ``MB{3,6}_{3,5,7}x{3,5,7}``, or ``zero`` (block skipped) for the 15
    blocks that are not first in their stage. Widths follow the reference super-net:
    ``make_divisible(w * width_mult, 8)`` for the stem (32), the fixed ``MB1_3x3`` block (16) and every
    stage; the feature mix is 1280, or ``make_divisible(1280 * width_mult, 8)`` when ``width_mult > 1``.
    ReLU6, no conv bias, ``mid = round(C_in * e)``. ``stages`` replaces the stage table. The released
    nets (``proxyless_{gpu,cpu,mobile}.config``) are ``width_mult=1.35``, ``width_mult=1.12`` and
    ``stages`` with a first-stage width of 32 instead of 24, respectively.
    """
    stages = _scaled_stages(stages, width_mult)
    first = make_divisible(32 * width_mult, 8)
    width = make_divisible(16 * width_mult, 8)
    specs = [BlockSpec("ds", first, width, 1, 3, act="relu6", op="MB1_3x3")]
    positions = _positions(stages, width)
    names = _choice_list(choices, len(positions), "proxylessnas_chain")
    allowed = proxylessnas_block_choices(stages)
    for i, (name, (c_in, c_out, stride, _)) in enumerate(zip(names, positions)):
        _check_name(name, allowed[i], f"proxylessnas_chain choices[{i}] (first block of a stage: no 'zero')"
                    if "zero" not in allowed[i] else f"proxylessnas_chain choices[{i}]", PROXYLESSNAS_OPS)
        spec = mobile_op_spec(name, c_in, c_out, stride) if name != "zero" else BlockSpec(
            "skip", c_in, c_out, 1, op="zero")
        specs.append(spec)
    last = make_divisible(1280 * width_mult, 8) if width_mult > 1.0 else 1280
    return ChainNetwork(specs, ConvSpec(3, first, 3, 2, "relu6"),
                        ConvSpec(specs[-1].C_out, last, 1, 1, "relu6"), num_classes, dropout)


def fbnet_block_choices(stages: Sequence[StageSpec] = FBNET_STAGES) -> tuple[tuple[str, ...], ...]:
    """The op names allowed at each FBNet layer: all nine everywhere (Wu et al. 2019, section 3.2)."""
    return tuple(FBNET_OPS for _ in _positions(stages, 1))


def fbnet_chain(choices: Sequence[str], num_classes: int = 1000, *, last_channels: int = 1984,
                width_mult: float = 1.0, bias: bool = True, dropout: float = 0.0) -> ChainNetwork:
    """An FBNet network (Wu et al. 2019, table 1) from its 22 per-layer choices (table 2 names).

    Stem ``3x3 conv, 16, stride 2``, stages of :data:`FBNET_STAGES`, ``1x1 conv`` to ``last_channels``
    (1984 for FBNet-B/C; FBNet-A uses 1504), ReLU throughout, ``mid = C_in * e``. ``bias=True``
    reproduces the released models (mobile-vision builds every conv with a bias, each still followed
    by BN). ``skip`` at a layer that changes the shape becomes the reference builder's 1x1
    conv-BN-ReLU projection. ``width_mult`` scales stem and stages with ``make_divisible(., 8)``
    (FBNet-x-0.35 style); at 1.0 the widths are the table's.
    """
    stages: Sequence[StageSpec] = FBNET_STAGES
    stem = 16
    if width_mult != 1.0:
        stages = _scaled_stages(FBNET_STAGES, width_mult)
        stem = make_divisible(16 * width_mult, 8)
    positions = _positions(stages, stem)
    names = _choice_list(choices, len(positions), "fbnet_chain")
    specs = [
        mobile_op_spec(_check_name(name, FBNET_OPS, f"fbnet_chain choices[{i}]"), c_in, c_out, stride,
                       bias=bias)
        for i, (name, (c_in, c_out, stride, _)) in enumerate(zip(names, positions))
    ]
    if isinstance(last_channels, bool) or not isinstance(last_channels, int) or last_channels < 1:
        raise ValueError(f"last_channels must be an int >= 1, got {last_channels!r}")
    return ChainNetwork(specs, ConvSpec(3, stem, 3, 2, "relu", bias),
                        ConvSpec(specs[-1].C_out, last_channels, 1, 1, "relu", bias), num_classes, dropout)


@dataclass(frozen=True)
class MnasBaseBlock:
    """One block of MnasNet's base network: output ``filters``, ``layers`` and first-layer ``stride``."""

    filters: int
    layers: int
    stride: int


MNASNET_BASE: tuple[MnasBaseBlock, ...] = (
    MnasBaseBlock(16, 1, 1), MnasBaseBlock(24, 2, 2), MnasBaseBlock(32, 3, 2), MnasBaseBlock(64, 4, 2),
    MnasBaseBlock(96, 3, 1), MnasBaseBlock(160, 3, 2), MnasBaseBlock(320, 1, 1),
)
"""MobileNetV2's seven bottleneck blocks (Sandler et al. 2018, table 2): MnasNet's reference (section 4.1)."""

MNASNET_FILTER_FACTORS: tuple[float, ...] = (0.75, 1.0, 1.25)
"""Filter size per block relative to the base network (MnasNet section 4.1)."""
MNASNET_LAYER_OFFSETS: tuple[int, ...] = (-1, 0, 1)
"""Layer count per block relative to the base network (MnasNet section 4.1)."""


@dataclass(frozen=True)
class MnasBlockChoice:
    """One block's decisions in MnasNet's factorised hierarchical space (Tan et al. 2019, section 4.1).

    ``conv_op`` in ``conv``, ``dconv``, ``mbconv3``, ``mbconv6``; ``kernel`` 3 or 5; ``se_ratio`` 0 or
    0.25; ``skip_op`` ``none``, ``identity`` or ``pool``; ``filter_factor`` 0.75, 1.0 or 1.25;
    ``layer_offset`` -1, 0 or +1. String form: ``mbconv6_k5_se0.25_identity_f1.25_n+0``.
    """

    conv_op: str
    kernel: int
    se_ratio: float
    skip_op: str
    filter_factor: float
    layer_offset: int

    def __post_init__(self) -> None:
        for field, value, allowed in (
            ("conv_op", self.conv_op, MNASNET_CONV_OPS), ("kernel", self.kernel, (3, 5)),
            ("se_ratio", self.se_ratio, MNASNET_SE_RATIOS), ("skip_op", self.skip_op, MNASNET_SKIP_OPS),
            ("filter_factor", self.filter_factor, MNASNET_FILTER_FACTORS),
            ("layer_offset", self.layer_offset, MNASNET_LAYER_OFFSETS),
        ):
            if isinstance(value, bool) or value not in allowed:
                raise ValueError(f"MnasBlockChoice.{field} must be one of {list(allowed)}, got {value!r}")

    @property
    def layer_op(self) -> str:
        """The per-layer :data:`MOBILE_OPS` name, e.g. ``mbconv6_k5_se0.25``."""
        return f"{self.conv_op}_k{self.kernel}_se{0 if self.se_ratio == 0 else self.se_ratio:g}"

    def to_str(self) -> str:
        """``{layer_op}_{skip_op}_f{filter_factor}_n{layer_offset:+d}``; :meth:`from_str` inverts it."""
        return f"{self.layer_op}_{self.skip_op}_f{self.filter_factor:g}_n{self.layer_offset:+d}"

    @classmethod
    def from_str(cls, text: str) -> MnasBlockChoice:
        """Parse :meth:`to_str`'s format."""
        m = re.fullmatch(r"(\w+?)_k(\d)_se([\d.]+)_(none|identity|pool)_f([\d.]+)_n([+-]\d)", text)
        if m is None:
            raise ValueError(
                f"cannot parse MnasNet block choice {text!r}; "
                "write e.g. 'mbconv6_k5_se0.25_identity_f1.25_n+0'"
            )
        return cls(m[1], int(m[2]), float(m[3]), m[4], float(m[5]), int(m[6]))


def mnasnet_chain(block_choices: Sequence[MnasBlockChoice | str], num_blocks: int = 7,
                  num_classes: int = 1000, *, base: Sequence[MnasBaseBlock] = MNASNET_BASE,
                  first_conv: int = 32, last_channels: int = 1280, dropout: float = 0.0) -> ChainNetwork:
    """A network of MnasNet's factorised hierarchical space (Tan et al. 2019, section 4.1, fig. 4).

    Block ``b`` repeats ``base[b].layers + layer_offset`` identical layers (0 drops the block) with
    ``round(base[b].filters * filter_factor)`` filters; its first layer has ``base[b].stride``. Layer =
    ConvOp x KernelSize x SERatio (``regular conv``, depthwise-separable ``dconv``, ``MBConv3/6``; SE
    reduced to ``max(1, round(C_in * ratio))``). SkipOp ``identity`` adds the input where stride is 1
    and channels match, ``pool`` adds a 3x3 average pool of it where channels match, ``none`` adds
    nothing. Stem ``3x3 conv, first_conv, stride 2``, head ``1x1 conv, last_channels``, ReLU throughout.
    """
    if isinstance(num_blocks, bool) or not isinstance(num_blocks, int) or num_blocks < 1:
        raise ValueError(f"num_blocks must be an int >= 1, got {num_blocks!r}")
    if len(base) != num_blocks:
        raise ValueError(
            f"num_blocks={num_blocks} but the base network has {len(base)} blocks; pass base= with "
            f"{num_blocks} MnasBaseBlock rows (the default MobileNetV2 base has 7)"
        )
    raw = _choice_list(block_choices, num_blocks, "mnasnet_chain")
    specs: list[BlockSpec] = []
    width = first_conv
    for b, (choice, ref) in enumerate(zip(raw, base)):
        c = MnasBlockChoice.from_str(choice) if isinstance(choice, str) else choice
        if not isinstance(c, MnasBlockChoice):
            raise ValueError(f"mnasnet_chain block_choices[{b}] must be a MnasBlockChoice or its string")
        n_layers = ref.layers + c.layer_offset
        filters = int(round(ref.filters * c.filter_factor))
        if n_layers < 0 or filters < 1:
            raise ValueError(f"block {b}: {n_layers} layers of {filters} filters; the base is too small")
        for i in range(n_layers):
            spec = mobile_op_spec(c.layer_op, width, filters, ref.stride if i == 0 else 1)
            if c.skip_op == "none" or (c.skip_op == "pool" and width != filters):
                spec = replace(spec, shortcut=False)
            elif c.skip_op == "pool":
                spec = replace(spec, shortcut=False, pool_skip=True)
            specs.append(spec)
            width = filters
    return ChainNetwork(specs, ConvSpec(3, first_conv, 3, 2, "relu"),
                        ConvSpec(width, last_channels, 1, 1, "relu"), num_classes, dropout)
