"""The Auto-DeepLab segmentation network: a trellis path of TF-convention cells, ASPP, DeepLabv3+ decoder.

Liu et al., "Auto-DeepLab: Hierarchical Neural Architecture Search for Semantic Image Segmentation",
CVPR 2019: sec. 3.1 (the cell, B = 5 blocks, outputs concatenated), sec. 3.2 and fig. 1 (the network
level: a path over downsample rates 4, 8, 16, 32, one level up/down/same per layer, after a
three-conv stem), sec. 5.1 and table 3 (the final networks: Auto-DeepLab-S/M/L with filter multiplier
F = 20/32/48, 10.15M/21.62M/44.42M parameters; a cell at downsample ``s`` outputs ``B * F * s / 4``
channels). The layout follows the official DeepLab code (tensorflow/models ``research/deeplab/core/
nas_network.py`` ``hnasnet`` and ``nas_cell.py``): moving down a level upsamples the previous output
bilinearly to ``2n - 1`` (``align_corners=True``) before the cell; ``c_{k-2}`` is resized bilinearly
to ``c_{k-1}``'s size inside the cell. The head is DeepLabv3+ (Chen et al., ECCV 2018, sec. 3.1):
ASPP with image pooling, a 1x1 and three 3x3 atrous branches of 256 filters, a 1x1 projection, and a
decoder that fuses 48 projected channels of the /4 features through two 3x3 convs of 256 filters.
As in the configuration that gives the paper's parameter counts, ASPP and decoder use regular (not
separable) 3x3 convolutions.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from ..ops_tf import ConvBN
from .tf_cell_net import TFCell, TFCellSpec, set_drop_prob

__all__ = ["AUTODEEPLAB_CELL", "AUTODEEPLAB_PATH", "ASPP", "AutoDeepLab", "DeepLabV3PlusDecoder",
           "check_path_levels", "upsample_size"]

AUTODEEPLAB_CELL = TFCellSpec.from_tf(
    ["atrous_5x5", "separable_3x3_2", "separable_3x3_2", "atrous_3x3", "separable_3x3_2", "separable_3x3_2",
     "separable_5x5_2", "separable_5x5_2", "separable_5x5_2", "atrous_5x5"],
    [1, 0, 1, 0, 3, 1, 4, 2, 3, 5], [1, 1, 0, 0, 0, 0, 0])
"""The searched Auto-DeepLab cell (official ``hnasnet``; paper fig. 3)."""

AUTODEEPLAB_PATH: tuple[int, ...] = (0, 0, 0, 1, 2, 1, 2, 2, 3, 3, 2, 1)
"""The searched network-level path as levels 0..3 = downsample 4, 8, 16, 32 (official ``backbone``)."""

_NUM_LEVELS = 4


def check_path_levels(path_levels: Sequence[int], num_levels: int = _NUM_LEVELS) -> tuple[int, ...]:
    """Validate a trellis path: levels in ``0..num_levels-1``, starting at 0 or 1 (one step from the
    /4 stem) and moving by at most one level per cell (paper sec. 3.2). Returns it as a tuple."""
    levels = tuple(path_levels)
    if not levels:
        raise ValueError("path_levels is empty; give one level (0..3 for /4../32) per cell")
    for i, v in enumerate(levels):
        if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v < num_levels:
            raise ValueError(f"path_levels[{i}]={v!r} is out of range; levels are ints 0..{num_levels - 1} "
                             "(downsample 4, 8, 16, 32)")
        prev = 0 if i == 0 else levels[i - 1]
        if abs(v - prev) > 1:
            where = "the /4 stem (level 0)" if i == 0 else f"path_levels[{i - 1}]={prev}"
            raise ValueError(f"path_levels[{i}]={v} jumps {abs(v - prev)} levels from {where}; the path "
                             "moves at most one level up or down per cell")
    return levels


def upsample_size(n: int) -> int:
    """DeepLab ``scale_dimension(n, 2)``: ``2n - 1``, the inverse of a SAME stride-2 conv on odd sizes."""
    return 2 * n - 1


def _conv_bn_relu(C_in: int, C_out: int, kernel_size: int, dilation: int = 1) -> nn.Sequential:
    pad = dilation * (kernel_size // 2)
    return nn.Sequential(ConvBN(C_in, C_out, kernel_size, 1, pad, dilation=dilation), nn.ReLU(inplace=False))


def _resize(x: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    return F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=True)


class ASPP(nn.Module):
    """Atrous spatial pyramid pooling of DeepLabv3 (Chen et al. 2017, sec. 3.3) as in DeepLab's
    ``model.py``: image pooling, 1x1 and one 3x3 atrous branch per rate, each conv + BN + ReLU, then a
    1x1 projection + BN + ReLU and dropout."""

    def __init__(self, C_in: int, depth: int = 256, rates: Sequence[int] = (12, 24, 36),
                 dropout: float = 0.1) -> None:
        super().__init__()
        self.image_pool = _conv_bn_relu(C_in, depth, 1)
        self.branches = nn.ModuleList([_conv_bn_relu(C_in, depth, 1)]
                                      + [_conv_bn_relu(C_in, depth, 3, int(r)) for r in rates])
        self.project = _conv_bn_relu(depth * (len(rates) + 2), depth, 1)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = self.image_pool(F.adaptive_avg_pool2d(x, 1)).expand(-1, -1, *x.shape[-2:])
        return self.dropout(self.project(torch.cat([pooled] + [b(x) for b in self.branches], dim=1)))


class DeepLabV3PlusDecoder(nn.Module):
    """DeepLabv3+ decoder (Chen et al. 2018, sec. 3.1; DeepLab ``refine_by_decoder``): project the
    low-level features to ``low_level_channels``, upsample the ASPP output to their size, concatenate,
    two 3x3 conv + BN + ReLU of ``channels`` filters."""

    def __init__(self, C_aspp: int, C_low: int, low_level_channels: int = 48, channels: int = 256) -> None:
        super().__init__()
        self.low_level = _conv_bn_relu(C_low, low_level_channels, 1)
        self.fuse = nn.Sequential(_conv_bn_relu(C_aspp + low_level_channels, channels, 3),
                                  _conv_bn_relu(channels, channels, 3))

    def forward(self, x: torch.Tensor, low: torch.Tensor) -> torch.Tensor:
        return self.fuse(torch.cat([_resize(x, low.shape[-2:]), self.low_level(low)], dim=1))


class AutoDeepLab(nn.Module):
    """Auto-DeepLab for dense prediction (see the module docstring).

    Args:
        path_levels: level (0..3 for /4, /8, /16, /32) of each cell; consecutive levels differ by <= 1.
        cell: the cell (default: the searched one).
        F: filter multiplier; a cell at level ``l`` has ops of ``F * 2**l`` filters (S/M/L: 20/32/48).
        num_classes: classes of the logits (Cityscapes: 19).
        aspp_depth: filters of every ASPP branch and of the projection.
        aspp_rates: atrous rates; default ``(6, 12, 18)`` scaled to the output stride (``(12, 24, 36)``
            at /8), the DeepLabv3 choice.
        decoder: add the DeepLabv3+ decoder when the output stride is above 4.
        decoder_end_point: index of the cell whose output feeds the decoder (default: the last cell at
            level 0, the official ``Cell_2``; the stem output if no cell is at level 0).
        drop_path: drop-path probability in the cells.
        upsample_logits: resize the logits bilinearly to the input size.

    Inputs whose sides are ``32k + 1`` (e.g. 1025 x 2049, 65 x 129) keep the up- and downsampled maps
    aligned, as in DeepLab. Training needs batches of two or more (the image-pooling branch normalises
    a 1x1 map).
    """

    def __init__(self, path_levels: Sequence[int] = AUTODEEPLAB_PATH, cell: TFCellSpec = AUTODEEPLAB_CELL,
                 F: int = 20, num_classes: int = 19, *, aspp_depth: int = 256,
                 aspp_rates: Sequence[int] | None = None, decoder: bool = True,
                 decoder_end_point: int | None = None, low_level_channels: int = 48,
                 decoder_channels: int = 256, drop_path: float = 0.0, aspp_dropout: float = 0.1,
                 upsample_logits: bool = True) -> None:
        super().__init__()
        levels = check_path_levels(path_levels)
        for field, v in (("F", F), ("num_classes", num_classes), ("aspp_depth", aspp_depth)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{field}={v!r} must be a positive int")
        if not isinstance(cell, TFCellSpec):
            raise TypeError(f"cell must be a TFCellSpec, got {type(cell).__name__}; build one with "
                            "TFCellSpec.from_tf(...)")
        self.path_levels, self.upsample_logits = levels, upsample_logits
        self.stem0 = nn.Sequential(ConvBN(3, 64, 3, 2, 1), nn.ReLU(inplace=False), ConvBN(64, 64, 3, 1, 1))
        self.stem1 = nn.Sequential(nn.ReLU(inplace=False), ConvBN(64, 128, 3, 2, 1))
        channels = [64, 128]  # outputs so far: stem conv1 (/2), stem conv2 (/4), then one per cell
        self.cells = nn.ModuleList()
        prev_level = 0
        for level in levels:
            C = F * 2 ** level
            cell_module = TFCell(cell, channels[-2], channels[-1], C, stride=2 if level > prev_level else 1,
                                 style="deeplab", drop_prob=drop_path)
            channels.append(cell_module.C_out)
            self.cells.append(cell_module)
            prev_level = level
        self.output_stride = 4 * 2 ** levels[-1]
        if aspp_rates is None:
            aspp_rates = tuple(r * 16 // self.output_stride for r in (6, 12, 18))
        if any(r < 1 for r in aspp_rates):
            raise ValueError(f"aspp_rates={list(aspp_rates)} must be positive; at output stride "
                             f"{self.output_stride} give them explicitly")
        self.aspp = ASPP(channels[-1], aspp_depth, aspp_rates, aspp_dropout)
        self.decoder: DeepLabV3PlusDecoder | None = None
        self.decoder_end_point: int | None = None  # cell index; -1 = the stem output
        if decoder and self.output_stride > 4:
            if decoder_end_point is None:
                at_four = [i for i, v in enumerate(levels) if v == 0]
                decoder_end_point = at_four[-1] if at_four else -1
            if not -1 <= decoder_end_point < len(levels) or (
                    decoder_end_point >= 0 and levels[decoder_end_point] != 0):
                raise ValueError(f"decoder_end_point={decoder_end_point} must be -1 (the stem) or the index "
                                 "of a cell at level 0 (/4)")
            self.decoder_end_point = decoder_end_point
            C_low = channels[decoder_end_point + 2] if decoder_end_point >= 0 else 128
            self.decoder = DeepLabV3PlusDecoder(aspp_depth, C_low, low_level_channels, decoder_channels)
            C_head = decoder_channels
        else:
            C_head = aspp_depth
        self.logits = nn.Conv2d(C_head, num_classes, 1)

    @property
    def drop_prob(self) -> float:
        """The drop-path probability of the cells (settable, e.g. for a linear schedule)."""
        return set_drop_prob(self.cells, None)

    @drop_prob.setter
    def drop_prob(self, p: float) -> None:
        set_drop_prob(self.cells, p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.stem0(x)
        outputs = [a, self.stem1(a)]
        low = outputs[1]
        prev_level = 0
        for i, (cell, level) in enumerate(zip(self.cells, self.path_levels)):
            net = outputs[-1]
            if level < prev_level:
                net = _resize(net, [upsample_size(n) for n in net.shape[-2:]])
            outputs.append(cell(net, outputs[-2]))
            if i == self.decoder_end_point:
                low = outputs[-1]
            prev_level = level
        y = self.aspp(F.relu(outputs[-1]))
        if self.decoder is not None:
            y = self.decoder(y, low)
        y = self.logits(y)
        return _resize(y, x.shape[-2:]) if self.upsample_logits else y
