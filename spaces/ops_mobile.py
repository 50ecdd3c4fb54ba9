"""The inverted-residual op family of MobileNet-style chain spaces, every op defined once.

Blocks and their papers:

* :class:`MBConv` -- the inverted residual with linear bottleneck of MobileNetV2 (Sandler et al.,
  "MobileNetV2: Inverted Residuals and Linear Bottlenecks", CVPR 2018, section 3.3 and table 1):
  1x1 expansion conv + BN + act -> kxk depthwise conv + BN + act -> 1x1 projection conv + BN with *no*
  activation -> identity add when ``stride == 1`` and ``C_in == C_out``. The same block is
  ProxylessNAS's ``MBInvertedConvLayer`` (Cai, Zhu & Han, "ProxylessNAS", ICLR 2019, section 4.2:
  ``MB{e}_{k}x{k}``), FBNet's TBS block (Wu et al., "FBNet", CVPR 2019, section 3.2 and table 2,
  including the grouped 1x1 convs + channel shuffle of ``*_g2``) and MnasNet's MBConv with optional
  squeeze-and-excitation (Tan et al., "MnasNet", CVPR 2019, section 4.1; Hu, Shen & Sun,
  "Squeeze-and-Excitation Networks", CVPR 2018, section 3).
* :class:`DepthwiseSeparable` -- the MobileNet depthwise-separable block (``ds``; written ``MB1_kxk``).
* :class:`RegularConv` -- MnasNet's "regular conv" ConvOp (section 4.1).
* :class:`SkipLayer` / :data:`ZeroLayer` -- skippable chain positions (ProxylessNAS ``zero``, FBNet ``skip``).
* :class:`PoolResidual` -- MnasNet's pooling SkipOp.

The conventions are those of ``shared/reference/chains.json`` (mid channels, SE reduction, conv bias,
symmetric ``k // 2`` padding). :data:`MOBILE_OPS` is the name -> factory table of the searchable block
choices of ProxylessNAS, FBNet and MnasNet, named as the papers name them.

Nothing here does work at import time; weights come from PyTorch's default initialisers (build models
inside ``torch.random.fork_rng`` for reproducibility).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol

import torch
from torch import nn

from .ops import Identity, Pooling, Zero

__all__ = [
    "ACTIVATIONS",
    "BLOCK_TYPES",
    "BlockSpec",
    "FBNET_OPS",
    "MNASNET_CONV_OPS",
    "MNASNET_OPS",
    "MNASNET_SE_RATIOS",
    "MNASNET_SKIP_OPS",
    "MOBILE_OPS",
    "PROXYLESSNAS_OPS",
    "ChannelShuffle",
    "ConvBNAct",
    "DepthwiseSeparable",
    "MBConv",
    "MobileOpFactory",
    "PoolResidual",
    "RegularConv",
    "SkipLayer",
    "SqueezeExcite",
    "ZeroLayer",
    "make_activation",
    "make_divisible",
    "make_mobile_op",
    "mobile_op_spec",
    "mobile_op_names",
]

ACTIVATIONS: tuple[str, ...] = ("relu", "relu6", "hswish", "hsigmoid", "sigmoid", "none")
"""Activation names accepted everywhere in this module (``"none"`` = linear)."""

ZeroLayer = Zero
"""ProxylessNAS's ``ZeroLayer`` (the ``zero`` candidate): zeros shaped like the output (``ops.Zero``).

Inside a chain a ``zero`` candidate sits beside an identity shortcut, so the whole position computes
the identity; :func:`make_mobile_op` therefore builds ``zero`` as an identity :class:`SkipLayer`.
"""


# --------------------------------------------------------------------------- small helpers


def _check_int(field: str, value: object, minimum: int = 1) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{field} must be an int >= {minimum}, got {value!r}; pass an integer >= {minimum}")
    return value


def _check_stride(stride: int) -> int:
    if isinstance(stride, bool) or stride not in (1, 2):
        raise ValueError(
            f"stride must be 1 or 2, got {stride!r}; mobile chain blocks keep or halve the resolution"
        )
    return stride


def _check_kernel(kernel: object) -> int:
    k = _check_int("kernel", kernel)
    if k % 2 == 0:
        raise ValueError(f"kernel must be odd (symmetric k // 2 padding), got {k}; use 3, 5 or 7")
    return k


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None,
                   round_limit: float = 0.9) -> int:
    """Round ``value`` to the nearest multiple of ``divisor``, never below ``round_limit * value``.

    The TF-slim/MobileNetV2 rule (Sandler et al. 2018, reference code ``_make_divisible``) used by
    ProxylessNAS, timm and torchvision: ``max(min_value, int(v + d / 2) // d * d)``, plus ``d`` if that
    lost more than 10 %. ``min_value`` defaults to ``divisor``.
    """
    _check_int("divisor", divisor)
    if not value > 0:
        raise ValueError(f"value must be positive, got {value!r}; pass a channel count > 0")
    floor = divisor if min_value is None else min_value
    new = max(floor, int(value + divisor / 2) // divisor * divisor)
    if new < round_limit * value:
        new += divisor
    return new


def make_activation(name: str | None) -> nn.Module:
    """The activation module called ``name`` (one of :data:`ACTIVATIONS`; ``None``/``"none"`` = identity).

    ``hswish``/``hsigmoid`` are MobileNetV3's hard swish and hard sigmoid (Howard et al. 2019, section 5.2).
    """
    if name is None or name == "none":
        return nn.Identity()
    if name == "relu":
        return nn.ReLU()
    if name == "relu6":
        return nn.ReLU6()
    if name == "hswish":
        return nn.Hardswish()
    if name == "hsigmoid":
        return nn.Hardsigmoid()
    if name == "sigmoid":
        return nn.Sigmoid()
    raise ValueError(f"unknown activation {name!r}; choose one of {list(ACTIVATIONS)}")


# --------------------------------------------------------------------------- building blocks


class ConvBNAct(nn.Sequential):
    """``Conv2d(k, stride, padding k // 2, groups)`` -> ``BatchNorm2d`` (if ``bn``) -> activation.

    The stem, feature-mix and block convs of every chain network. ``act=None`` leaves it linear.
    """

    def __init__(self, C_in: int, C_out: int, kernel: int = 1, stride: int = 1, groups: int = 1,
                 act: str | None = "relu", bias: bool = False, bn: bool = True) -> None:
        _check_int("C_in", C_in)
        _check_int("C_out", C_out)
        _check_kernel(kernel)
        _check_stride(stride)
        _check_int("groups", groups)
        if C_in % groups or C_out % groups:
            raise ValueError(f"groups={groups} must divide C_in={C_in} and C_out={C_out}; pick a divisor")
        layers: list[nn.Module] = [
            nn.Conv2d(C_in, C_out, kernel, stride, kernel // 2, groups=groups, bias=bias)
        ]
        if bn:
            layers.append(nn.BatchNorm2d(C_out))
        if act is not None and act != "none":
            layers.append(make_activation(act))
        super().__init__(*layers)


class SqueezeExcite(nn.Module):
    """Squeeze-and-excitation (Hu et al. 2018, section 3, fig. 2), as MnasNet and MobileNetV3 use it.

    Global average pool -> 1x1 conv ``channels -> reduced`` (bias) -> ``act`` -> 1x1 conv back (bias)
    -> ``gate`` (``sigmoid``; MobileNetV3: ``hsigmoid``) -> channel-wise scaling of the input.
    """

    def __init__(self, channels: int, reduced: int, act: str = "relu", gate: str = "sigmoid") -> None:
        super().__init__()
        _check_int("channels", channels)
        _check_int("se_reduced", reduced)
        self.conv_reduce = nn.Conv2d(channels, reduced, 1, bias=True)
        self.act = make_activation(act)
        self.conv_expand = nn.Conv2d(reduced, channels, 1, bias=True)
        self.gate = make_activation(gate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.mean((2, 3), keepdim=True)
        return x * self.gate(self.conv_expand(self.act(self.conv_reduce(s))))


class ChannelShuffle(nn.Module):
    """ShuffleNet's channel shuffle (Zhang et al. 2018), used by FBNet's ``*_g2`` blocks."""

    def __init__(self, groups: int) -> None:
        super().__init__()
        self.groups = _check_int("shuffle_groups", groups)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        g = self.groups
        return x.view(n, g, c // g, h, w).transpose(1, 2).reshape(n, c, h, w)


def _auto_shortcut(shortcut: bool | None, C_in: int, C_out: int, stride: int) -> bool:
    possible = stride == 1 and C_in == C_out
    if shortcut is None:
        return possible
    if shortcut and not possible:
        raise ValueError(
            f"shortcut=True needs stride 1 and C_in == C_out, got stride={stride}, C_in={C_in}, "
            f"C_out={C_out}; pass shortcut=None (automatic) or False"
        )
    return bool(shortcut)


class MBConv(nn.Module):
    """Mobile inverted bottleneck (MobileNetV2 section 3.3; ProxylessNAS/FBNet/MnasNet's MBConv).

    ``[1x1 C_in->mid (+BN+act), if expand_conv] -> [ChannelShuffle(shuffle_groups)] -> kxk depthwise
    mid->mid, stride (+BN+act) -> [SE on mid, if se_reduced] -> 1x1 mid->C_out + BN, linear ->
    [+ input, if shortcut]``.

    ``mid`` defaults to ``round(C_in * expand_ratio)`` (ProxylessNAS ``feature_dim``; FBNet's
    mobile-vision builder multiplies exactly); pass it explicitly for make-divisible widths
    (MobileNetV3). Without an expansion conv ``mid`` must equal ``C_in``. ``groups`` groups both 1x1
    convs (FBNet ``g2``). ``shortcut=None`` adds the identity exactly when ``stride == 1`` and
    ``C_in == C_out``; ``False`` turns it off (MnasNet's ``noskip``); ``True`` insists on it.
    ``bias`` puts a bias on the three convs (mobile-vision FBNet); BN follows each conv regardless.
    """

    def __init__(self, C_in: int, C_out: int, kernel: int, stride: int, expand_ratio: float,
                 mid: int | None = None, se_reduced: int | None = None, act: str = "relu6",
                 expand_conv: bool = True, bias: bool = False, shuffle_groups: int | None = None,
                 groups: int = 1, shortcut: bool | None = None, *, se_act: str = "relu",
                 se_gate: str = "sigmoid") -> None:
        super().__init__()
        _check_int("C_in", C_in)
        _check_int("C_out", C_out)
        _check_kernel(kernel)
        _check_stride(stride)
        if not expand_ratio > 0:
            raise ValueError(f"expand_ratio must be positive, got {expand_ratio!r}; MBConv uses 1, 3 or 6")
        if mid is None:
            mid = int(round(C_in * expand_ratio))
        _check_int("mid", mid)
        if not expand_conv and mid != C_in:
            raise ValueError(
                f"expand_conv=False needs mid == C_in, got mid={mid}, C_in={C_in}; "
                "pass expand_conv=True or mid=C_in"
            )
        _check_int("groups", groups)
        if (expand_conv and C_in % groups) or mid % groups or C_out % groups:
            raise ValueError(f"groups={groups} must divide C_in={C_in}, mid={mid} and C_out={C_out}")
        if shuffle_groups is not None and mid % _check_int("shuffle_groups", shuffle_groups):
            raise ValueError(f"shuffle_groups={shuffle_groups} must divide mid={mid}")
        self.C_in, self.C_out, self.mid, self.stride = C_in, C_out, mid, stride
        self.kernel, self.expand_ratio = kernel, expand_ratio
        self.expand: nn.Module | None = (
            ConvBNAct(C_in, mid, 1, 1, groups, act, bias) if expand_conv else None
        )
        self.shuffle: nn.Module | None = (
            ChannelShuffle(shuffle_groups) if shuffle_groups is not None and shuffle_groups > 1 else None
        )
        self.depthwise = ConvBNAct(mid, mid, kernel, stride, mid, act, bias)
        self.se: nn.Module | None = (
            SqueezeExcite(mid, se_reduced, se_act, se_gate) if se_reduced is not None else None
        )
        self.project = ConvBNAct(mid, C_out, 1, 1, groups, None, bias)
        self.shortcut = _auto_shortcut(shortcut, C_in, C_out, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x
        if self.expand is not None:
            out = self.expand(out)
        if self.shuffle is not None:
            out = self.shuffle(out)
        out = self.depthwise(out)
        if self.se is not None:
            out = self.se(out)
        out = self.project(out)
        return out + x if self.shortcut else out


class DepthwiseSeparable(MBConv):
    """Depthwise-separable block (MobileNetV1; timm ``ds``; ProxylessNAS ``MB1_kxk``; MnasNet ``dconv``).

    kxk depthwise + BN + act -> [SE] -> 1x1 pointwise + BN (linear) -> [identity add]: an
    :class:`MBConv` with ``expand_ratio=1`` and no expansion conv.
    """

    def __init__(self, C_in: int, C_out: int, kernel: int, stride: int, act: str = "relu6",
                 se_reduced: int | None = None, bias: bool = False, shortcut: bool | None = None, *,
                 se_act: str = "relu", se_gate: str = "sigmoid") -> None:
        super().__init__(C_in, C_out, kernel, stride, 1, mid=C_in, se_reduced=se_reduced, act=act,
                         expand_conv=False, bias=bias, shortcut=shortcut, se_act=se_act, se_gate=se_gate)


class RegularConv(nn.Module):
    """MnasNet's regular-conv ConvOp (Tan et al. 2019, section 4.1): kxk conv + BN + act [-> SE] [+ x]."""

    def __init__(self, C_in: int, C_out: int, kernel: int, stride: int, act: str = "relu",
                 se_reduced: int | None = None, bias: bool = False, shortcut: bool | None = None, *,
                 se_act: str = "relu", se_gate: str = "sigmoid") -> None:
        super().__init__()
        self.conv = ConvBNAct(C_in, C_out, kernel, stride, 1, act, bias)
        self.se: nn.Module | None = (
            SqueezeExcite(C_out, se_reduced, se_act, se_gate) if se_reduced is not None else None
        )
        self.shortcut = _auto_shortcut(shortcut, C_in, C_out, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv(x)
        if self.se is not None:
            out = self.se(out)
        return out + x if self.shortcut else out


class SkipLayer(nn.Module):
    """A skipped chain position: the identity, or a 1x1 projection where the shape must change.

    ProxylessNAS's ``zero`` candidate only appears where the block has an identity shortcut, so the
    position computes ``x`` (Cai et al. 2019, section 4.2). FBNet's ``skip`` candidate (Wu et al. 2019,
    table 2) follows its reference builder (mobile-vision ``basic_blocks.Identity``): identity when
    ``stride == 1`` and ``C_in == C_out``, else ``1x1 conv (stride) + BN + act``.
    """

    def __init__(self, C_in: int, C_out: int, stride: int = 1, act: str = "relu", bias: bool = False) -> None:
        super().__init__()
        _check_int("C_in", C_in)
        _check_int("C_out", C_out)
        _check_stride(stride)
        self.C_in, self.C_out, self.stride = C_in, C_out, stride
        self.body: nn.Module = (
            Identity() if stride == 1 and C_in == C_out else ConvBNAct(C_in, C_out, 1, stride, 1, act, bias)
        )

    @property
    def is_identity(self) -> bool:
        """Whether the position passes its input through unchanged (no parameters)."""
        return isinstance(self.body, Identity)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class PoolResidual(nn.Module):
    """MnasNet's pooling SkipOp (section 4.1): ``body(x) + avgpool3x3(x, stride)``.

    The paper gives no further definition; nasatlas reads it as a parameter-free residual through a
    3x3 average pool (padding 1, ``count_include_pad=False``, the shared ``ops.Pooling``), so it also
    fits stride-2 layers. It needs ``C_in == C_out``; the body must not add its own shortcut.
    """

    def __init__(self, body: nn.Module, channels: int, stride: int) -> None:
        super().__init__()
        self.body = body
        self.pool = Pooling(channels, channels, _check_stride(stride), "avg")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + self.pool(x)


# --------------------------------------------------------------------------- declarative blocks

BLOCK_TYPES: tuple[str, ...] = ("ir", "ds", "conv", "skip")
"""Block types of :class:`BlockSpec`: MBConv, depthwise-separable, regular conv, skipped position."""


@dataclass(frozen=True)
class BlockSpec:
    """A chain position as data, mirroring a ``chains.json`` block (``in``/``out`` = ``C_in``/``C_out``).

    ``type``: ``"ir"`` (:class:`MBConv`), ``"ds"`` (:class:`DepthwiseSeparable`), ``"conv"``
    (:class:`RegularConv`) or ``"skip"`` (:class:`SkipLayer`). ``shortcut=None`` is automatic (identity
    add iff ``stride == 1`` and ``C_in == C_out``), ``False`` is MnasNet's ``noskip``. ``pool_skip``
    replaces the shortcut by MnasNet's pooling skip (:class:`PoolResidual`). ``op`` is a display name
    (``MB6_3x3``, ``k5_e1_g2`` ...). Field meanings follow ``shared/reference/chains.json``'s convention.
    """

    type: str
    C_in: int
    C_out: int
    stride: int = 1
    kernel: int = 3
    expand_ratio: float = 1.0
    mid: int | None = None
    expand_conv: bool = True
    se_reduced: int | None = None
    se_act: str = "relu"
    se_gate: str = "sigmoid"
    act: str = "relu6"
    shortcut: bool | None = None
    pool_skip: bool = False
    bias: bool = False
    groups: int = 1
    shuffle_groups: int | None = None
    op: str = ""

    def __post_init__(self) -> None:
        if self.type not in BLOCK_TYPES:
            raise ValueError(f"BlockSpec.type must be one of {list(BLOCK_TYPES)}, got {self.type!r}")
        _check_int("C_in", self.C_in)
        _check_int("C_out", self.C_out)
        _check_stride(self.stride)
        for field, value in (("act", self.act), ("se_act", self.se_act), ("se_gate", self.se_gate)):
            if value not in ACTIVATIONS:
                raise ValueError(f"BlockSpec.{field} must be one of {list(ACTIVATIONS)}, got {value!r}")
        if self.pool_skip and (self.C_in != self.C_out or self.shortcut or self.type == "skip"):
            raise ValueError(
                f"pool_skip needs a non-skip block with C_in == C_out and shortcut not True; got "
                f"type={self.type!r}, C_in={self.C_in}, C_out={self.C_out}, shortcut={self.shortcut}"
            )

    @property
    def residual(self) -> str:
        """``"identity"``, ``"pool"`` or ``"none"``: the skip path this position adds."""
        if self.pool_skip:
            return "pool"
        if self.type == "skip":
            return "none"
        return "identity" if _auto_shortcut(self.shortcut, self.C_in, self.C_out, self.stride) else "none"

    def resolved(self) -> BlockSpec:
        """This spec with every automatic or irrelevant field made canonical; ``op`` is dropped.

        Two specs with equal ``resolved()`` build the same layers (up to weights): ``mid`` and
        ``shortcut`` are explicit, an ``ir`` block without expansion conv, groups or shuffle is ``ds``,
        an identity skip keeps only its channels, unused SE and mid fields take their defaults.
        """
        if self.type == "skip":
            if self.stride == 1 and self.C_in == self.C_out:
                return BlockSpec("skip", self.C_in, self.C_out)
            return BlockSpec("skip", self.C_in, self.C_out, self.stride, act=self.act, bias=self.bias)
        kind, expand = self.type, self.type == "ir" and self.expand_conv
        shuffle = self.shuffle_groups if self.shuffle_groups and self.shuffle_groups > 1 else None
        if kind == "ir" and not expand and self.groups == 1 and shuffle is None:
            kind = "ds"
        mid = None if kind == "conv" else (
            self.mid if self.mid is not None else int(round(self.C_in * self.expand_ratio)))
        se_act, se_gate = (self.se_act, self.se_gate) if self.se_reduced is not None else ("relu", "sigmoid")
        return BlockSpec(
            kind, self.C_in, self.C_out, self.stride, self.kernel,
            float(self.expand_ratio) if kind == "ir" else 1.0, mid, expand, self.se_reduced, se_act,
            se_gate, self.act, self.residual == "identity", self.pool_skip, self.bias,
            self.groups if kind == "ir" else 1, shuffle,
        )

    def build(self) -> nn.Module:
        """The module this spec describes (fresh weights from PyTorch's default initialisers)."""
        if self.type == "skip":
            return SkipLayer(self.C_in, self.C_out, self.stride, self.act, self.bias)
        shortcut = False if self.pool_skip else self.shortcut
        se = {"se_act": self.se_act, "se_gate": self.se_gate}
        body: nn.Module
        if self.type == "ir":
            body = MBConv(self.C_in, self.C_out, self.kernel, self.stride, self.expand_ratio, self.mid,
                          self.se_reduced, self.act, self.expand_conv, self.bias, self.shuffle_groups,
                          self.groups, shortcut, **se)
        elif self.type == "ds":
            if self.mid not in (None, self.C_in) or self.expand_ratio != 1:
                raise ValueError(
                    f"a 'ds' block has no expansion: needs expand_ratio=1 and mid None or C_in={self.C_in}, "
                    f"got expand_ratio={self.expand_ratio}, mid={self.mid}; use type='ir' to expand"
                )
            body = DepthwiseSeparable(self.C_in, self.C_out, self.kernel, self.stride, self.act,
                                      self.se_reduced, self.bias, shortcut, **se)
        else:
            body = RegularConv(self.C_in, self.C_out, self.kernel, self.stride, self.act, self.se_reduced,
                               self.bias, shortcut, **se)
        return PoolResidual(body, self.C_in, self.stride) if self.pool_skip else body


# --------------------------------------------------------------------------- the op table


class MobileOpFactory(Protocol):
    """``factory(C_in, C_out, stride, *, act=None, bias=False) -> nn.Module`` (``act=None``: family's)."""

    def __call__(self, C_in: int, C_out: int, stride: int, *, act: str | None = None,
                 bias: bool = False) -> nn.Module: ...


PROXYLESSNAS_OPS: tuple[str, ...] = (
    "MB3_3x3", "MB6_3x3", "MB3_5x5", "MB6_5x5", "MB3_7x7", "MB6_7x7", "zero",
)
"""ProxylessNAS's candidates (Cai et al. 2019, section 4.2; reference ``conv_candidates`` + ``Zero``)."""

FBNET_OPS: tuple[str, ...] = (
    "k3_e1", "k3_e1_g2", "k3_e3", "k3_e6", "k5_e1", "k5_e1_g2", "k5_e3", "k5_e6", "skip",
)
"""FBNet's nine candidate blocks (Wu et al. 2019, table 2)."""

MNASNET_CONV_OPS: tuple[str, ...] = ("conv", "dconv", "mbconv3", "mbconv6")
"""MnasNet ConvOp (section 4.1): regular conv, depthwise(-separable) conv, MBConv (ratios 3, 6: fig. 7)."""
MNASNET_SE_RATIOS: tuple[float, ...] = (0.0, 0.25)
"""MnasNet SERatio (section 4.1)."""
MNASNET_SKIP_OPS: tuple[str, ...] = ("none", "identity", "pool")
"""MnasNet SkipOp (section 4.1): no skip, identity residual, pooling (see :class:`PoolResidual`)."""

MNASNET_OPS: tuple[str, ...] = tuple(
    f"{op}_k{k}_se{0 if r == 0 else r}" for op in MNASNET_CONV_OPS for k in (3, 5) for r in MNASNET_SE_RATIOS
)
"""MnasNet's per-layer op = ConvOp x KernelSize x SERatio, e.g. ``mbconv6_k5_se0.25`` (16 names)."""

_KNOWN = frozenset(PROXYLESSNAS_OPS + FBNET_OPS + MNASNET_OPS)
_FAMILY_ACT = {"proxylessnas": "relu6", "fbnet": "relu", "mnasnet": "relu"}
_PROXYLESS_RE = re.compile(r"^MB([36])_([357])x\2$")
_FBNET_RE = re.compile(r"^k([35])_e([136])(_g2)?$")
_MNAS_RE = re.compile(r"^(conv|dconv|mbconv3|mbconv6)_k([35])_se(0|0\.25)$")


def mobile_op_names(family: str | None = None) -> tuple[str, ...]:
    """Names in :data:`MOBILE_OPS`, optionally of one family: ``proxylessnas``, ``fbnet``, ``mnasnet``."""
    families = {"proxylessnas": PROXYLESSNAS_OPS, "fbnet": FBNET_OPS, "mnasnet": MNASNET_OPS}
    if family is None:
        return PROXYLESSNAS_OPS + FBNET_OPS + MNASNET_OPS
    if family not in families:
        raise ValueError(f"unknown op family {family!r}; choose one of {sorted(families)}")
    return families[family]


def mobile_op_spec(name: str, C_in: int, C_out: int, stride: int, *, act: str | None = None,
                   bias: bool = False) -> BlockSpec:
    """The :class:`BlockSpec` of searchable block ``name`` (a :data:`MOBILE_OPS` key), ``C_in -> C_out``.

    ``act=None`` takes the family's activation (ProxylessNAS ``relu6``; FBNet, MnasNet ``relu``).
    MBConv mids are ``C_in * e`` (ProxylessNAS ``round(C_in * e)``, mobile-vision exact); shortcuts are
    automatic. MnasNet's SE reduces to ``max(1, round(C_in * ratio))``: a ratio of the block's input
    filters, rounded as timm does (chains.json convention); TF MnasNet truncates with ``int``, which
    agrees whenever ``C_in * ratio`` is an integer (every width of the default MnasNet base).
    """
    if name not in _KNOWN:
        raise ValueError(f"unknown mobile op name {name!r}; choose one of {list(mobile_op_names())}")
    _check_stride(stride)
    _check_int("C_in", C_in)
    _check_int("C_out", C_out)
    if m := _PROXYLESS_RE.match(name):
        return BlockSpec("ir", C_in, C_out, stride, int(m[2]), int(m[1]), round(C_in * int(m[1])),
                         act=act or _FAMILY_ACT["proxylessnas"], bias=bias, op=name)
    if name == "zero":
        if stride != 1 or C_in != C_out:
            raise ValueError(
                f"'zero' skips a block and needs stride 1 and C_in == C_out, got stride={stride}, "
                f"C_in={C_in}, C_out={C_out}; ProxylessNAS offers it only where the block has an "
                "identity shortcut (not the first block of a stage)"
            )
        return BlockSpec("skip", C_in, C_out, 1, op=name)
    if m := _FBNET_RE.match(name):
        e, g = int(m[2]), 2 if m[3] else 1
        return BlockSpec("ir", C_in, C_out, stride, int(m[1]), e, C_in * e, expand_conv=e != 1,
                         act=act or _FAMILY_ACT["fbnet"], bias=bias, groups=g,
                         shuffle_groups=g if g > 1 else None, op=name)
    if name == "skip":
        return BlockSpec("skip", C_in, C_out, stride, act=act or _FAMILY_ACT["fbnet"], bias=bias, op=name)
    if m := _MNAS_RE.match(name):
        op, k, ratio = m[1], int(m[2]), float(m[3])
        se = max(1, round(C_in * ratio)) if ratio > 0 else None
        kind = {"conv": "conv", "dconv": "ds"}.get(op, "ir")
        e = int(op[-1]) if kind == "ir" else 1
        return BlockSpec(kind, C_in, C_out, stride, k, e, None if kind == "conv" else C_in * e,
                         expand_conv=kind == "ir",
                         se_reduced=se, act=act or _FAMILY_ACT["mnasnet"], bias=bias, op=name)
    raise ValueError(f"unknown mobile op name {name!r}; choose one of {list(mobile_op_names())}")


def make_mobile_op(name: str, C_in: int, C_out: int, stride: int, *, act: str | None = None,
                   bias: bool = False) -> nn.Module:
    """Build searchable block ``name`` mapping ``C_in`` to ``C_out`` channels (see :func:`mobile_op_spec`)."""
    return mobile_op_spec(name, C_in, C_out, stride, act=act, bias=bias).build()


def _table_entry(name: str) -> MobileOpFactory:
    def factory(C_in: int, C_out: int, stride: int, *, act: str | None = None,
                bias: bool = False) -> nn.Module:
        return make_mobile_op(name, C_in, C_out, stride, act=act, bias=bias)

    factory.__name__ = f"mobile_op_{name}"
    factory.__doc__ = f"Build ``{name}`` (see :func:`make_mobile_op`)."
    return factory


MOBILE_OPS: dict[str, MobileOpFactory] = {name: _table_entry(name) for name in mobile_op_names()}
"""Name -> factory of every searchable chain block: ``MOBILE_OPS[name](C_in, C_out, stride)``."""
