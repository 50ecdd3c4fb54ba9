"""Ops of the TensorFlow-convention cell networks that differ from the DARTS op table.

The NASNet (Zoph et al., "Learning Transferable Architectures for Scalable Image Recognition", CVPR
2018, sec. 3 and appendix A), PNASNet (Liu et al., "Progressive Neural Architecture Search", ECCV 2018,
sec. 3.1), AmoebaNet (Real et al., "Regularized Evolution for Image Classifier Architecture Search",
AAAI 2019, sec. 3) and Auto-DeepLab (Liu et al., CVPR 2019, sec. 3.1) official TF code, and the ENAS
official code (Pham et al., "Efficient Neural Architecture Search via Parameter Sharing", ICML 2018,
sec. 2.4), build some ops differently from DARTS's ``OPS``; those differences change parameter counts,
so they are expressed here, each once, composed from :mod:`nasatlas.spaces.ops` where possible:

* a stacked separable conv maps ``C_in -> C_out`` in its *first* layer (DARTS: in its last);
  it is two :class:`~nasatlas.spaces.ops.DilConv` at dilation 1 (ReLU, depthwise, pointwise, BN each);
* pooling keeps ``C_in`` and is *followed* by a 1x1 conv + BN when channels change (no ReLU in the
  NASNet code, ReLU first in the ENAS code); NAS-Bench-201 projects *before* pooling;
* a factorized reduction has no ReLU of its own (callers add one where the TF code does), allows an
  odd width, and at stride 1 it is a 1x1 conv + BN;
* ``skip_connect`` that must change shape (TF op ``none``) is a strided 1x1 ReLU-conv-BN in the
  NASNet code and a factorized reduction in the ENAS code.

Nothing here does work at import time.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn
from torch.nn import functional as F

from .ops import OPS, AtrousConv, DilConv, Identity, Pooling, ReLUConvBN

__all__ = [
    "TF_OP_NAMES",
    "TF_CELL_OPS",
    "CellStyle",
    "ConvBN",
    "TFAuxHead",
    "TFFactorizedReduce",
    "TFPooling",
    "TFSepConvStack",
    "drop_path",
    "make_tf_op",
    "nasatlas_op_name",
    "tf_factorized_reduction",
]

CellStyle = Literal["nasnet", "enas", "deeplab"]
"""Which official code a TF-convention cell follows: TF-slim NASNet/PNAS and TPU AmoebaNet
(``"nasnet"``), ENAS ``micro_child.py`` (``"enas"``) or DeepLab ``nas_cell.py`` (``"deeplab"``)."""

TF_OP_NAMES: dict[str, str] = {
    "separable_3x3_2": "sep_conv_3x3",
    "separable_5x5_2": "sep_conv_5x5",
    "separable_7x7_2": "sep_conv_7x7",
    "avg_pool_3x3": "avg_pool_3x3",
    "max_pool_3x3": "max_pool_3x3",
    "none": "skip_connect",
    "1x7_7x1": "conv_1x7_7x1_bottleneck",
    "atrous_3x3": "atr_conv_3x3",
    "atrous_5x5": "atr_conv_5x5",
}
"""TF op name (official code) -> nasatlas op name. TF's ``none`` is the identity, nasatlas's
``skip_connect``; nasatlas's ``none`` is the zero op, which no TF cell uses."""

TF_CELL_OPS: tuple[str, ...] = tuple(dict.fromkeys(TF_OP_NAMES.values()))
"""The nasatlas op names a TF-convention cell can hold."""

_SEP_KERNEL = {"sep_conv_3x3": 3, "sep_conv_5x5": 5, "sep_conv_7x7": 7}


def nasatlas_op_name(tf_name: str) -> str:
    """The nasatlas name of a TF op name (``'separable_3x3_2'`` -> ``'sep_conv_3x3'``)."""
    if tf_name not in TF_OP_NAMES:
        raise ValueError(f"unknown TF op name {tf_name!r}; choose one of {sorted(TF_OP_NAMES)}")
    return TF_OP_NAMES[tf_name]


class ConvBN(nn.Sequential):
    """Conv2d (no bias) followed by BatchNorm, no activation: TF-slim ``conv2d`` + ``batch_norm``."""

    def __init__(self, C_in: int, C_out: int, kernel_size: int, stride: int = 1, padding: int = 0,
                 affine: bool = True, *, dilation: int = 1) -> None:
        conv = nn.Conv2d(C_in, C_out, kernel_size, stride=stride, padding=padding, dilation=dilation,
                         bias=False)
        super().__init__(conv, nn.BatchNorm2d(C_out, affine=affine))


class TFFactorizedReduce(nn.Module):
    """TF ``factorized_reduction`` at stride 2 (NASNet code; Zoph et al. 2018, appendix A).

    Two 1x1 convs read the input at even positions and, after a one-pixel shift (zero padding on the
    right/bottom), at odd positions; their outputs are concatenated and batch-normalised. Unlike
    DARTS's :class:`~nasatlas.spaces.ops.FactorizedReduce` there is no ReLU inside (``relu=True`` adds
    the one ``_reduce_prev_layer`` applies first) and an odd ``C_out`` is allowed: the first path then
    gets the extra channel. TF asserts an even ``C_out``; AmoebaNet-A mobile (F = 50) needs 25 in its
    second stem cell, which the official code cannot build.
    """

    def __init__(self, C_in: int, C_out: int, affine: bool = True, *, relu: bool = False) -> None:
        super().__init__()
        if C_out < 2:
            raise ValueError(f"C_out={C_out}: a factorized reduction needs at least 2 output channels")
        self.relu: nn.Module = nn.ReLU(inplace=False) if relu else nn.Identity()
        self.conv_1 = nn.Conv2d(C_in, C_out - C_out // 2, 1, stride=2, bias=False)
        self.conv_2 = nn.Conv2d(C_in, C_out // 2, 1, stride=2, bias=False)
        self.bn = nn.BatchNorm2d(C_out, affine=affine)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(x)
        shifted = F.pad(x, (0, 1, 0, 1))[:, :, 1:, 1:]
        return self.bn(torch.cat([self.conv_1(x), self.conv_2(shifted)], dim=1))


def tf_factorized_reduction(C_in: int, C_out: int, stride: int, *, relu: bool = False,
                            affine: bool = True) -> nn.Module:
    """TF ``factorized_reduction(net, C_out, stride)``, optionally preceded by ReLU.

    Stride 2: two 1x1 convs of ``C_out // 2`` on offset grids, concatenated, BN. Stride 1: 1x1 conv
    + BN (NASNet ``path_conv``/``path_bn``).
    """
    if stride == 2:
        return TFFactorizedReduce(C_in, C_out, affine, relu=relu)
    if stride != 1:
        raise ValueError(f"stride must be 1 or 2 for a factorized reduction, got {stride!r}")
    if relu:
        return ReLUConvBN(C_in, C_out, 1, 1, 0, 1, affine)
    return ConvBN(C_in, C_out, 1, 1, 0, affine)


class TFSepConvStack(nn.Sequential):
    """TF ``_stacked_separable_conv``: ``num_layers`` x (ReLU, depthwise KxK, pointwise, BN).

    The first layer carries the stride and maps ``C_in -> C_out``; later layers keep ``C_out``
    (TF-slim ``separable_conv2d(net, filter_size, k, depth_multiplier=1)``). With ``C_in == C_out``
    this has exactly the parameters of DARTS ``SepConv``.
    """

    def __init__(self, C_in: int, C_out: int, kernel_size: int, stride: int, num_layers: int = 2,
                 affine: bool = True) -> None:
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        pad = kernel_size // 2
        layers = [DilConv(C_in, C_out, kernel_size, stride, pad, 1, affine)]
        layers += [DilConv(C_out, C_out, kernel_size, 1, pad, 1, affine) for _ in range(num_layers - 1)]
        super().__init__(*layers)


class TFPooling(nn.Module):
    """3x3 avg/max pooling (TF ``SAME``; avg excludes padding), then a 1x1 projection if channels change.

    NASNet/PNAS/AmoebaNet/DeepLab: 1x1 conv + BN; ENAS (``relu_projection=True``): ReLU, 1x1 conv, BN.
    """

    def __init__(self, C_in: int, C_out: int, stride: int, mode: str, *, relu_projection: bool = False,
                 affine: bool = True) -> None:
        super().__init__()
        self.pool = Pooling(C_in, C_in, stride, mode, affine)
        self.project: nn.Module | None = None
        if C_in != C_out:
            self.project = (ReLUConvBN(C_in, C_out, 1, 1, 0, 1, affine) if relu_projection
                            else ConvBN(C_in, C_out, 1, 1, 0, affine))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(x)
        return x if self.project is None else self.project(x)


def make_tf_op(name: str, C_in: int, C_out: int, stride: int, *, style: CellStyle = "nasnet",
               affine: bool = True) -> nn.Module:
    """Build nasatlas op ``name`` as the official TF-convention code of ``style`` builds it.

    ``C_in`` differs from ``C_out`` only where a cell reads a raw, unprojected input (the first cell
    after a stem); ops other than the separable stacks, pools and skip then start with a 1x1 projection.
    """
    if stride not in (1, 2):
        raise ValueError(f"stride must be 1 or 2, got {stride!r}")
    if name in _SEP_KERNEL:
        return TFSepConvStack(C_in, C_out, _SEP_KERNEL[name], stride, 2, affine)
    if name in ("avg_pool_3x3", "max_pool_3x3"):
        return TFPooling(C_in, C_out, stride, name[:3], relu_projection=style == "enas", affine=affine)
    if name == "skip_connect":
        if stride == 1 and C_in == C_out:
            return Identity()
        if style == "enas" and stride == 2:
            return tf_factorized_reduction(C_in, C_out, 2, relu=False, affine=affine)
        return ReLUConvBN(C_in, C_out, 1, stride, 0, 1, affine)
    if name in ("atr_conv_3x3", "atr_conv_5x5"):
        return AtrousConv(C_in, C_out, int(name[-1]), stride, affine)
    if name == "conv_1x7_7x1_bottleneck" and C_in != C_out:
        # no published AmoebaNet cell reads a raw, wider input with this op; a sampled one gets the
        # same 1x1 projection as the other extra ops below
        return nn.Sequential(ReLUConvBN(C_in, C_out, 1, 1, 0, 1, affine), OPS[name](C_out, stride, affine))
    if name in OPS:
        # ops of the search spaces that no published TF cell uses (NASNet's and PNAS's extra ops, zero):
        # the shared op table's op at C_out, after a 1x1 projection when the input width differs
        op = OPS[name](C_out, stride, affine)
        return op if C_in == C_out else nn.Sequential(ReLUConvBN(C_in, C_out, 1, 1, 0, 1, affine), op)
    raise ValueError(f"op {name!r} is not a TF-cell op; choose one of {list(TF_CELL_OPS) + sorted(OPS)}")


def drop_path(x: torch.Tensor, drop_prob: float, training: bool) -> torch.Tensor:
    """Zero whole examples with probability ``drop_prob`` and rescale the rest (NASNet sec. 4.1).

    Uses PyTorch's default generator, like dropout; scope it with ``torch.random.fork_rng``.
    """
    if not training or drop_prob <= 0.0:
        return x
    keep = 1.0 - drop_prob
    mask = torch.empty((x.shape[0], 1, 1, 1), device=x.device, dtype=x.dtype).bernoulli_(keep)
    return x * mask / keep


class TFAuxHead(nn.Module):
    """Auxiliary classifier of the NASNet/ENAS code: ReLU, 5x5/3 avg pool (VALID), 1x1 conv 128 + BN +
    ReLU, a conv covering the remaining ``feature_size`` x ``feature_size`` map to 768 + BN + ReLU,
    then a linear layer (Szegedy et al. 2016's auxiliary head as adapted in NASNet, appendix A).

    ``feature_size`` is the side of the map after the 5x5/3 pooling. ENAS pads that conv ``SAME``,
    global-averages and uses a bias-free linear layer (``enas=True``).
    """

    def __init__(self, C_in: int, num_classes: int, feature_size: int, *, enas: bool = False) -> None:
        super().__init__()
        if feature_size < 1:
            raise ValueError(
                f"feature_size={feature_size}: the auxiliary head's input map is smaller than its 5x5 "
                "pooling window; use a larger image_size or auxiliary=False"
            )
        self.features = nn.Sequential(
            nn.ReLU(inplace=False),
            nn.AvgPool2d(5, stride=3, padding=0),
            nn.Conv2d(C_in, 128, 1, bias=False),
            nn.BatchNorm2d(128),
            nn.ReLU(inplace=False),
            nn.Conv2d(128, 768, feature_size, padding="same" if enas else 0, bias=False),
            nn.BatchNorm2d(768),
            nn.ReLU(inplace=False),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.classifier = nn.Linear(768, num_classes, bias=not enas)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))
