"""The shared operation library: every candidate op of every cell space, defined once.

``OPS[name](C, stride, affine)`` follows the DARTS op table (Liu, Simonyan & Yang, "DARTS:
Differentiable Architecture Search", ICLR 2019, section 3.1 and appendix A.1.1): an op maps ``C``
channels to ``C`` channels and halves the resolution when ``stride == 2`` (the ops on edges leaving
the two cell inputs of a reduction cell). The same table carries the NASNet/AmoebaNet factorised
7x1/1x7 bottleneck (Real et al., "Regularized Evolution for Image Classifier Architecture Search",
AAAI 2019, fig. 3), Auto-DeepLab's regular atrous convolutions (Liu et al., "Auto-DeepLab", CVPR 2019,
section 3.1) and NAS-Bench-201's ops under their NB201 names (Dong & Yang, "NAS-Bench-201", ICLR 2020,
section 2.1: ``none``, ``skip_connect``, ``nor_conv_1x1``, ``nor_conv_3x3``, ``avg_pool_3x3``).

Where NAS-Bench-201 differs from DARTS (convolution bias when ``affine=False``, BatchNorm
``track_running_stats``, a 1x1 ReLU-Conv-BN before pooling when the channel count changes) the
difference is a factory parameter of :func:`make_op`, not a second copy of the op.

Nothing here does work at import time; no op draws random numbers except through PyTorch's default
initialisers (run model construction inside ``torch.random.fork_rng`` for reproducibility).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "OPS",
    "AtrousConv",
    "BottleneckConv1x7",
    "Conv7x1x1x7",
    "DilConv",
    "FactorizedReduce",
    "Identity",
    "Pooling",
    "ReLUConvBN",
    "SepConv",
    "Zero",
    "make_op",
    "op_names",
]


def _check_positive(field: str, value: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{field} must be a positive int, got {value!r}; pass an integer >= 1")


def _check_stride(stride: int) -> None:
    if stride not in (1, 2):
        raise ValueError(f"stride must be 1 or 2, got {stride!r}; cell ops only keep or halve resolution")


class ReLUConvBN(nn.Module):
    """ReLU -> Conv2d -> BatchNorm2d (DARTS ``ReLUConvBN``; NB201 ``nor_conv_*``).

    ``bias`` adds a convolution bias; NAS-Bench-201 uses ``bias = not affine``.
    """

    def __init__(
        self,
        C_in: int,
        C_out: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int],
        padding: int | tuple[int, int],
        dilation: int = 1,
        affine: bool = True,
        *,
        bias: bool = False,
        track_running_stats: bool = True,
    ) -> None:
        super().__init__()
        _check_positive("C_in", C_in)
        _check_positive("C_out", C_out)
        self.op = nn.Sequential(
            nn.ReLU(inplace=False),
            nn.Conv2d(C_in, C_out, kernel_size, stride=stride, padding=padding, dilation=dilation, bias=bias),
            nn.BatchNorm2d(C_out, affine=affine, track_running_stats=track_running_stats),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class DilConv(nn.Module):
    """ReLU -> dilated depthwise conv -> pointwise conv -> BN (DARTS ``dil_conv_*``, rate 2 there)."""

    def __init__(
        self,
        C_in: int,
        C_out: int,
        kernel_size: int,
        stride: int,
        padding: int,
        dilation: int,
        affine: bool = True,
        *,
        track_running_stats: bool = True,
    ) -> None:
        super().__init__()
        _check_positive("C_in", C_in)
        _check_positive("C_out", C_out)
        self.op = nn.Sequential(
            nn.ReLU(inplace=False),
            nn.Conv2d(
                C_in, C_in, kernel_size, stride=stride, padding=padding, dilation=dilation,
                groups=C_in, bias=False,
            ),
            nn.Conv2d(C_in, C_out, 1, bias=False),
            nn.BatchNorm2d(C_out, affine=affine, track_running_stats=track_running_stats),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class SepConv(nn.Module):
    """Two stacked ReLU -> depthwise -> pointwise -> BN blocks (DARTS ``sep_conv_*``).

    The first block carries the stride and keeps ``C_in`` channels; the second maps to ``C_out``
    (DARTS appendix A.1.1: "separable convolutions are always applied twice").
    """

    def __init__(
        self,
        C_in: int,
        C_out: int,
        kernel_size: int,
        stride: int,
        padding: int,
        affine: bool = True,
        *,
        track_running_stats: bool = True,
    ) -> None:
        super().__init__()
        _check_positive("C_in", C_in)
        _check_positive("C_out", C_out)
        bn = {"affine": affine, "track_running_stats": track_running_stats}
        self.op = nn.Sequential(
            nn.ReLU(inplace=False),
            nn.Conv2d(C_in, C_in, kernel_size, stride=stride, padding=padding, groups=C_in, bias=False),
            nn.Conv2d(C_in, C_in, 1, bias=False),
            nn.BatchNorm2d(C_in, **bn),
            nn.ReLU(inplace=False),
            nn.Conv2d(C_in, C_in, kernel_size, stride=1, padding=padding, groups=C_in, bias=False),
            nn.Conv2d(C_in, C_out, 1, bias=False),
            nn.BatchNorm2d(C_out, **bn),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class Identity(nn.Module):
    """The identity op (``skip_connect`` at stride 1). Drop-path is never applied to it."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


class Zero(nn.Module):
    """The ``none`` op: zeros shaped like the op's output (strided subsample when ``stride > 1``)."""

    def __init__(self, stride: int) -> None:
        super().__init__()
        _check_positive("stride", stride)
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1:
            return x.mul(0.0)
        return x[:, :, :: self.stride, :: self.stride].mul(0.0)


class FactorizedReduce(nn.Module):
    """ReLU, two stride-2 1x1 convs on offset grids, concatenated, BN (DARTS/NB201 ``FactorizedReduce``).

    The second conv sees the input shifted by one pixel. The input is zero-padded by one on the
    right/bottom first (as NAS-Bench-201 does), which gives DARTS's exact result on even sizes and
    also works on odd ones. ``C_out`` must be even (each conv produces half). ``relu=False`` drops the
    leading ReLU (TF ``factorized_reduction`` has none inside).
    """

    def __init__(
        self,
        C_in: int,
        C_out: int,
        affine: bool = True,
        *,
        bias: bool = False,
        track_running_stats: bool = True,
        relu: bool = True,
    ) -> None:
        super().__init__()
        _check_positive("C_in", C_in)
        _check_positive("C_out", C_out)
        if C_out % 2 != 0:
            raise ValueError(
                f"C_out of FactorizedReduce must be even (two convs of C_out // 2), got {C_out}; "
                "choose an even channel count"
            )
        self.relu: nn.Module = nn.ReLU(inplace=False) if relu else nn.Identity()
        self.conv_1 = nn.Conv2d(C_in, C_out // 2, 1, stride=2, padding=0, bias=bias)
        self.conv_2 = nn.Conv2d(C_in, C_out // 2, 1, stride=2, padding=0, bias=bias)
        self.bn = nn.BatchNorm2d(C_out, affine=affine, track_running_stats=track_running_stats)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(x)
        shifted = F.pad(x, (0, 1, 0, 1))[:, :, 1:, 1:]
        return self.bn(torch.cat([self.conv_1(x), self.conv_2(shifted)], dim=1))


class Pooling(nn.Module):
    """KxK average (``count_include_pad=False``) or max pooling, padding K//2 (DARTS/NB201 pools are 3x3;
    NASNet's space adds 5x5 and 7x7 max pooling, Zoph et al. 2018, Sec. 3).

    When ``C_in != C_out`` NAS-Bench-201 first maps channels with a 1x1 ReLU-Conv-BN; DARTS pools
    never change channels.
    """

    def __init__(
        self,
        C_in: int,
        C_out: int,
        stride: int,
        mode: str,
        affine: bool = True,
        *,
        bias: bool = False,
        track_running_stats: bool = True,
        kernel_size: int = 3,
    ) -> None:
        super().__init__()
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be an odd positive integer, got {kernel_size!r}")
        self.preprocess: nn.Module | None = None
        if C_in != C_out:
            self.preprocess = ReLUConvBN(C_in, C_out, 1, 1, 0, 1, affine, bias=bias,
                                         track_running_stats=track_running_stats)
        self.op: nn.Module
        if mode == "avg":
            self.op = nn.AvgPool2d(kernel_size, stride=stride, padding=kernel_size // 2, count_include_pad=False)
        elif mode == "max":
            self.op = nn.MaxPool2d(kernel_size, stride=stride, padding=kernel_size // 2)
        else:
            raise ValueError(f"mode must be 'avg' or 'max', got {mode!r}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.preprocess is not None:
            x = self.preprocess(x)
        return self.op(x)


class Conv7x1x1x7(nn.Module):
    """DARTS ``conv_7x1_1x7``: ReLU, 1x7 conv (stride along width), 7x1 conv (stride along height), BN.

    ``kernel_size=3`` gives NASNet's "1x3 then 3x1 convolution" (Zoph et al. 2018, Sec. 3), built the
    same way.
    """

    def __init__(self, C: int, stride: int, affine: bool = True, *, track_running_stats: bool = True,
                 kernel_size: int = 7) -> None:
        super().__init__()
        _check_positive("C", C)
        k, p = kernel_size, kernel_size // 2
        self.op = nn.Sequential(
            nn.ReLU(inplace=False),
            nn.Conv2d(C, C, (1, k), stride=(1, stride), padding=(0, p), bias=False),
            nn.Conv2d(C, C, (k, 1), stride=(stride, 1), padding=(p, 0), bias=False),
            nn.BatchNorm2d(C, affine=affine, track_running_stats=track_running_stats),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class BottleneckConv1x7(nn.Module):
    """AmoebaNet's ``1x7_7x1`` op: a bottleneck of four ReLU-Conv-BN layers.

    Real et al. 2019, fig. 3 ("1x7 then 7x1 convolution"), laid out as the official TPU AmoebaNet
    ``network_utils`` builds it: 1x1 to ``C // 4`` channels, 1x7 (stride along the width), 7x1
    (stride along the height), 1x1 back to ``C``, each preceded by ReLU and followed by BN. When
    ``C // 4 < 1`` there is no bottleneck (only the 1x7 and 7x1 layers, at ``C`` channels).
    PyTorch BN keeps its scale (gamma); the TF original fixes it to 1.
    """

    def __init__(self, C: int, stride: int, affine: bool = True, *, track_running_stats: bool = True) -> None:
        super().__init__()
        _check_positive("C", C)
        _check_stride(stride)
        Cb = C // 4
        Cm = Cb or C  # channels of the 1x7 and 7x1 layers

        def rcb(ci: int, co: int, k: tuple[int, int], s: tuple[int, int], p: tuple[int, int]) -> ReLUConvBN:
            return ReLUConvBN(ci, co, k, s, p, 1, affine, track_running_stats=track_running_stats)

        inner: list[nn.Module] = [
            rcb(Cm, Cm, (1, 7), (1, stride), (0, 3)),
            rcb(Cm, Cm, (7, 1), (stride, 1), (3, 0)),
        ]
        if Cb >= 1:
            inner = [rcb(C, Cb, (1, 1), (1, 1), (0, 0)), *inner, rcb(Cb, C, (1, 1), (1, 1), (0, 0))]
        self.op = nn.Sequential(*inner)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


def _half_size(n: int) -> int:
    """DeepLab's ``scale_dimension(n, 0.5)``: ``int((n - 1) * 0.5 + 1)``, i.e. ``ceil(n / 2)``."""
    return int((n - 1) * 0.5 + 1.0)


class AtrousConv(nn.Module):
    """Auto-DeepLab's regular (non-separable) atrous conv: ReLU -> KxK conv, rate 2 -> BN.

    Liu et al., "Auto-DeepLab", CVPR 2019, section 3.1 ("3x3/5x5 atrous conv with rate 2"). As in the
    official DeepLab NAS cell, a stride-2 instance first halves the input with bilinear resizing
    (``align_corners=True``, output ``ceil(n/2)``) and then applies a rate-1 convolution.
    """

    def __init__(
        self,
        C_in: int,
        C_out: int,
        kernel_size: int,
        stride: int,
        affine: bool = True,
        *,
        rate: int = 2,
        track_running_stats: bool = True,
    ) -> None:
        super().__init__()
        _check_positive("C_in", C_in)
        _check_positive("C_out", C_out)
        _check_stride(stride)
        self.stride = stride
        dilation = 1 if stride == 2 else rate
        padding = dilation * (kernel_size - 1) // 2
        self.relu = nn.ReLU(inplace=False)
        self.conv = nn.Conv2d(C_in, C_out, kernel_size, padding=padding, dilation=dilation, bias=False)
        self.bn = nn.BatchNorm2d(C_out, affine=affine, track_running_stats=track_running_stats)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(x)
        if self.stride == 2:
            size = (_half_size(x.shape[-2]), _half_size(x.shape[-1]))
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=True)
        return self.bn(self.conv(x))


def make_op(
    name: str,
    C_in: int,
    C_out: int,
    stride: int,
    affine: bool = True,
    *,
    track_running_stats: bool = True,
    conv_bias: bool = False,
) -> nn.Module:
    """Build op ``name`` mapping ``C_in`` to ``C_out`` channels (the general factory behind ``OPS``).

    ``conv_bias`` and ``track_running_stats`` express NAS-Bench-201's settings (its ``ReLUConvBN`` and
    ``FactorizedReduce`` use ``bias = not affine``). Ops other than the ReLU-Conv-BN family, pooling,
    ``skip_connect`` and ``none`` require ``C_in == C_out``.
    """
    _check_stride(stride)
    _check_positive("C_in", C_in)
    _check_positive("C_out", C_out)
    trs = track_running_stats
    if name == "none":
        if C_in != C_out:
            raise ValueError(f"op 'none' keeps channels; got C_in={C_in} != C_out={C_out}")
        return Zero(stride)
    if name in ("avg_pool_3x3", "max_pool_3x3", "max_pool_5x5", "max_pool_7x7"):
        return Pooling(C_in, C_out, stride, name[:3], affine, bias=conv_bias, track_running_stats=trs,
                       kernel_size=int(name[-1]))
    if name == "skip_connect":
        if stride == 1 and C_in == C_out:
            return Identity()
        if stride == 1:
            raise ValueError(f"skip_connect at stride 1 keeps channels; got C_in={C_in} != C_out={C_out}")
        return FactorizedReduce(C_in, C_out, affine, bias=conv_bias, track_running_stats=trs)
    if name in ("nor_conv_1x1", "nor_conv_3x3", "nor_conv_7x7", "conv_1x1", "conv_3x3"):
        # NB201's nor_conv_*; NASNet's "1x1 convolution" / "3x3 convolution" (Zoph et al. 2018, Sec. 3)
        k = int(name[-1])
        return ReLUConvBN(C_in, C_out, k, stride, k // 2, 1, affine, bias=conv_bias, track_running_stats=trs)
    if name not in _SAME_CHANNEL:
        raise ValueError(f"unknown op name {name!r}; choose one of {op_names()}")
    if C_in != C_out:
        raise ValueError(f"op {name!r} keeps channels; got C_in={C_in} != C_out={C_out}")
    return _SAME_CHANNEL[name](C_in, stride, affine, trs)


_Factory = Callable[[int, int, bool, bool], nn.Module]

_SAME_CHANNEL: dict[str, _Factory] = {
    "sep_conv_3x3": lambda C, s, a, t: SepConv(C, C, 3, s, 1, a, track_running_stats=t),
    "sep_conv_5x5": lambda C, s, a, t: SepConv(C, C, 5, s, 2, a, track_running_stats=t),
    "sep_conv_7x7": lambda C, s, a, t: SepConv(C, C, 7, s, 3, a, track_running_stats=t),
    "dil_conv_3x3": lambda C, s, a, t: DilConv(C, C, 3, s, 2, 2, a, track_running_stats=t),
    "dil_conv_5x5": lambda C, s, a, t: DilConv(C, C, 5, s, 4, 2, a, track_running_stats=t),
    "conv_7x1_1x7": lambda C, s, a, t: Conv7x1x1x7(C, s, a, track_running_stats=t),
    "conv_1x3_3x1": lambda C, s, a, t: Conv7x1x1x7(C, s, a, track_running_stats=t, kernel_size=3),
    "conv_1x7_7x1_bottleneck": lambda C, s, a, t: BottleneckConv1x7(C, s, a, track_running_stats=t),
    "atr_conv_3x3": lambda C, s, a, t: AtrousConv(C, C, 3, s, a, track_running_stats=t),
    "atr_conv_5x5": lambda C, s, a, t: AtrousConv(C, C, 5, s, a, track_running_stats=t),
}

_ALL_NAMES: tuple[str, ...] = (
    "none",
    "avg_pool_3x3",
    "max_pool_3x3",
    "max_pool_5x5",
    "max_pool_7x7",
    "skip_connect",
    *_SAME_CHANNEL,
    "nor_conv_1x1",
    "nor_conv_3x3",
    "nor_conv_7x7",
    "conv_1x1",
    "conv_3x3",
)


def _table_entry(name: str) -> Callable[[int, int, bool], nn.Module]:
    def factory(C: int, stride: int, affine: bool) -> nn.Module:
        return make_op(name, C, C, stride, affine)

    factory.__name__ = f"op_{name}"
    factory.__doc__ = f"``{name}`` mapping C channels to C (DARTS-style ``OPS`` entry)."
    return factory


OPS: dict[str, Callable[[int, int, bool], nn.Module]] = {name: _table_entry(name) for name in _ALL_NAMES}
"""DARTS-style op table: ``OPS[name](C, stride, affine) -> nn.Module`` (C channels in and out)."""


def op_names() -> list[str]:
    """Names in :data:`OPS`, in table order."""
    return list(OPS)
