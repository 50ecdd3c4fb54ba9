"""DARTS evaluation networks for CIFAR and ImageNet (Liu, Simonyan & Yang, ICLR 2019).

A DARTS cell (paper section 2.1, eq. 1) has two inputs, the outputs of the two previous cells, and
``len(genotype.normal) // 2`` intermediate nodes; node ``i + 2`` is the sum of two ops applied to two
earlier states, and the cell output concatenates the nodes listed in ``*_concat``. The networks stack
cells as in the paper's appendix A.2 / section 3.3: reduction cells (ops on the cell inputs have
stride 2 and channels double) at 1/3 and 2/3 of the depth, an optional auxiliary head after the second
reduction, global pooling and a linear classifier. All ops come from :mod:`nasatlas.spaces.ops`.

``forward`` returns the logits; ``forward_with_aux`` returns ``(logits, aux_logits)`` like the
reference code, where ``aux_logits`` is ``None`` unless the network has an auxiliary head and is in
training mode.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

import torch
from nasatlas.spaces.ops import OPS, FactorizedReduce, Identity, ReLUConvBN
from torch import nn

__all__ = [
    "AuxiliaryHeadCIFAR",
    "AuxiliaryHeadImageNet",
    "DartsCell",
    "DartsCifarNetwork",
    "DartsImageNetNetwork",
    "Genotype",
    "drop_path",
    "genotype_from_dict",
]


class Genotype(NamedTuple):
    """A DARTS cell pair in the reference layout (DARTS ``genotypes.py``).

    ``normal``/``reduce``: ``(op_name, input_index)`` pairs, two per intermediate node; pair ``2k`` and
    ``2k + 1`` feed node ``k + 2``. Index 0 is the output of cell k-2 (``s0``), 1 of cell k-1 (``s1``),
    ``j >= 2`` intermediate node ``j``. ``*_concat``: the node indices concatenated into the output.
    """

    normal: list[tuple[str, int]]
    normal_concat: list[int]
    reduce: list[tuple[str, int]]
    reduce_concat: list[int]


def genotype_from_dict(d: Mapping[str, Any]) -> Genotype:
    """Build a :class:`Genotype` from a mapping like an entry of ``reference/genotypes.json``."""
    missing = [k for k in Genotype._fields if k not in d]
    if missing:
        raise ValueError(f"genotype mapping is missing field(s) {missing}; it needs normal, "
                         "normal_concat, reduce and reduce_concat")
    try:
        return Genotype(
            normal=[(str(op), int(i)) for op, i in d["normal"]],
            normal_concat=[int(i) for i in d["normal_concat"]],
            reduce=[(str(op), int(i)) for op, i in d["reduce"]],
            reduce_concat=[int(i) for i in d["reduce_concat"]],
        )
    except (TypeError, ValueError) as err:
        raise ValueError(f"genotype mapping must hold [op, index] pairs and integer lists: {err}") from None


def _validate_cell(field: str, edges: Sequence[tuple[str, int]], concat: Iterable[int]) -> None:
    if len(edges) == 0 or len(edges) % 2:
        raise ValueError(f"genotype.{field} must hold an even, non-zero number of (op, input) pairs "
                         f"(two per node), got {len(edges)}")
    for k, edge in enumerate(edges):
        if len(edge) != 2:
            raise ValueError(f"genotype.{field}[{k}] must be an (op_name, input_index) pair, got {edge!r}")
        op, idx = edge
        if op not in OPS:
            raise ValueError(f"genotype.{field}[{k}] names unknown op {op!r}; choose one of {sorted(OPS)}")
        node = k // 2 + 2
        if not isinstance(idx, int) or not 0 <= idx < node:
            raise ValueError(f"genotype.{field}[{k}] feeds node {node}, so its input index must be in "
                             f"[0, {node - 1}], got {idx!r}")
    n_states = len(edges) // 2 + 2
    concat = list(concat)
    if not concat or any(not isinstance(j, int) or not 0 <= j < n_states for j in concat):
        raise ValueError(f"genotype.{field}_concat must list state indices in [0, {n_states - 1}], "
                         f"got {concat!r}")


def drop_path(x: torch.Tensor, drop_prob: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Drop whole examples' paths with probability ``drop_prob``, rescaling survivors by ``1/keep``.

    Zoph et al. 2018 (NASNet) section 4.1, as used by DARTS (appendix A.2): one Bernoulli(keep) draw per
    example. ``generator`` defaults to PyTorch's default generator (wrap training in ``fork_rng``).
    """
    keep = 1.0 - drop_prob
    mask = torch.empty(x.shape[0], 1, 1, 1, device=x.device, dtype=x.dtype)
    mask.bernoulli_(keep, generator=generator)
    return x / keep * mask


class DartsCell(nn.Module):
    """One DARTS cell (normal or reduction) built from a genotype (DARTS section 2.1, eq. 1)."""

    def __init__(
        self,
        genotype: Genotype,
        C_prev_prev: int,
        C_prev: int,
        C: int,
        reduction: bool,
        reduction_prev: bool,
    ) -> None:
        super().__init__()
        self.reduction = reduction
        self.preprocess0: nn.Module
        if reduction_prev:
            self.preprocess0 = FactorizedReduce(C_prev_prev, C)
        else:
            self.preprocess0 = ReLUConvBN(C_prev_prev, C, 1, 1, 0)
        self.preprocess1 = ReLUConvBN(C_prev, C, 1, 1, 0)
        edges = genotype.reduce if reduction else genotype.normal
        concat = genotype.reduce_concat if reduction else genotype.normal_concat
        self._indices = [idx for _, idx in edges]
        self._concat = list(concat)
        self._steps = len(edges) // 2
        self.multiplier = len(self._concat)
        self._ops = nn.ModuleList(
            OPS[name](C, 2 if reduction and idx < 2 else 1, True) for name, idx in edges
        )
        self._droppable = [not isinstance(op, Identity) for op in self._ops]

    def _branch(self, k: int, states: list[torch.Tensor], drop_prob: float) -> torch.Tensor:
        h = self._ops[k](states[self._indices[k]])
        if drop_prob > 0.0 and self.training and self._droppable[k]:
            h = drop_path(h, drop_prob)
        return h

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, drop_prob: float = 0.0) -> torch.Tensor:
        """Cell output; ``drop_prob`` applies drop-path to non-identity ops in training mode only."""
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        for i in range(self._steps):
            states.append(self._branch(2 * i, states, drop_prob) + self._branch(2 * i + 1, states, drop_prob))
        return torch.cat([states[j] for j in self._concat], dim=1)


class AuxiliaryHeadCIFAR(nn.Module):
    """DARTS/NASNet CIFAR auxiliary classifier for an 8x8 input (pooled to 2x2, then 768 channels)."""

    def __init__(self, C: int, num_classes: int) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.ReLU(inplace=False),
            nn.AvgPool2d(5, stride=3, padding=0, count_include_pad=False),
            nn.Conv2d(C, 128, 1, bias=False),
            nn.BatchNorm2d(128),
            nn.ReLU(inplace=True),
            nn.Conv2d(128, 768, 2, bias=False),
            nn.BatchNorm2d(768),
            nn.ReLU(inplace=True),
        )
        self.classifier = nn.Linear(768, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).flatten(1))


class AuxiliaryHeadImageNet(nn.Module):
    """DARTS ImageNet auxiliary classifier (no BN after the 2x2 conv, as in the DARTS code).

    The reference comment says "assuming input size 14x14"; placed after cell ``2 * layers // 3`` (the
    second reduction) at 224x224 input it sees 7x7 maps, which 5x5/2 pooling takes to 2x2 as well.
    """

    def __init__(self, C: int, num_classes: int) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.ReLU(inplace=False),
            nn.AvgPool2d(5, stride=2, padding=0, count_include_pad=False),
            nn.Conv2d(C, 128, 1, bias=False),
            nn.BatchNorm2d(128),
            nn.ReLU(inplace=True),
            nn.Conv2d(128, 768, 2, bias=False),
            nn.ReLU(inplace=True),
        )
        self.classifier = nn.Linear(768, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).flatten(1))


def _check_int(field: str, value: object, minimum: int = 1) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{field} must be an int >= {minimum}, got {value!r}")


def _check_common(genotype: Genotype, C: int, num_classes: int, layers: int, drop_path_prob: float) -> None:
    if not isinstance(genotype, tuple) or len(genotype) != 4:
        raise TypeError("genotype must be a Genotype(normal, normal_concat, reduce, reduce_concat); "
                        "use genotype_from_dict for a mapping")
    _validate_cell("normal", genotype.normal, genotype.normal_concat)
    _validate_cell("reduce", genotype.reduce, genotype.reduce_concat)
    _check_int("C", C)
    _check_int("num_classes", num_classes)
    _check_int("layers", layers, 3)
    if not 0.0 <= drop_path_prob < 1.0:
        raise ValueError(f"drop_path_prob must be in [0, 1), got {drop_path_prob!r}")


class _DartsNetwork(nn.Module):
    """Shared cell stack of the CIFAR and ImageNet networks."""

    cells: nn.ModuleList
    auxiliary_head: nn.Module | None
    global_pooling: nn.Module
    classifier: nn.Module
    drop_path_prob: float
    _layers: int

    def _build_cells(self, genotype: Genotype, C_pp: int, C_p: int, C: int, layers: int,
                     reduction_prev: bool) -> tuple[int, int]:
        """Stack ``layers`` cells; returns (channels after the last cell, channels at the aux point)."""
        self._layers = layers
        self.cells = nn.ModuleList()
        C_curr, C_aux = C, 0
        for i in range(layers):
            reduction = i in (layers // 3, 2 * layers // 3)
            if reduction:
                C_curr *= 2
            cell = DartsCell(genotype, C_pp, C_p, C_curr, reduction, reduction_prev)
            reduction_prev = reduction
            self.cells.append(cell)
            C_pp, C_p = C_p, cell.multiplier * C_curr
            if i == 2 * layers // 3:
                C_aux = C_p
        return C_p, C_aux

    def _stem_states(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def forward_with_aux(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(logits, aux_logits)``; ``aux_logits`` only with an auxiliary head in training mode."""
        aux: torch.Tensor | None = None
        s0, s1 = self._stem_states(x)
        aux_at = 2 * self._layers // 3
        for i, cell in enumerate(self.cells):
            s0, s1 = s1, cell(s0, s1, self.drop_path_prob)
            if i == aux_at and self.auxiliary_head is not None and self.training:
                aux = self.auxiliary_head(s1)
        logits = self.classifier(self.global_pooling(s1).flatten(1))
        return logits, aux

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_with_aux(x)[0]


class DartsCifarNetwork(_DartsNetwork):
    """DARTS CIFAR-10 evaluation network (DARTS section 3.3 and appendix A.2; reference ``NetworkCIFAR``).

    Stem: 3x3 conv to ``3 * C`` channels + BN. ``layers`` cells, reductions at ``layers // 3`` and
    ``2 * layers // 3``; after a reduction cell the next cell preprocesses ``s0`` with
    ``FactorizedReduce``, otherwise with a 1x1 ``ReLUConvBN``. Auxiliary head (for 8x8 maps, i.e. 32x32
    input) after cell ``2 * layers // 3``; global average pooling and a linear classifier.
    ``drop_path_prob`` may be changed between epochs (DARTS ramps it linearly).

    DARTS_V2 with C=36, 20 cells, 10 classes: 3,349,342 parameters (3,825,768 with the auxiliary head)
    and 528,359,040 MACs at 1x3x32x32.
    """

    def __init__(
        self,
        genotype: Genotype,
        C: int = 36,
        num_classes: int = 10,
        layers: int = 20,
        auxiliary: bool = False,
        drop_path_prob: float = 0.0,
    ) -> None:
        super().__init__()
        _check_common(genotype, C, num_classes, layers, drop_path_prob)
        self.drop_path_prob = drop_path_prob
        C_stem = 3 * C
        self.stem = nn.Sequential(nn.Conv2d(3, C_stem, 3, padding=1, bias=False), nn.BatchNorm2d(C_stem))
        C_last, C_aux = self._build_cells(genotype, C_stem, C_stem, C, layers, reduction_prev=False)
        self.auxiliary_head = AuxiliaryHeadCIFAR(C_aux, num_classes) if auxiliary else None
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(C_last, num_classes)

    def _stem_states(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        s = self.stem(x)
        return s, s


class DartsImageNetNetwork(_DartsNetwork):
    """DARTS ImageNet (mobile setting) network (DARTS section 3.4; reference ``NetworkImageNet``).

    Two stem stages bring a 224x224 input to 28x28 (three stride-2 3x3 convs: ``C // 2``, ``C``, ``C``
    channels); the first cell treats the stem as if it followed a reduction (``FactorizedReduce`` on
    ``s0``), so ``C`` must be even. Reductions at ``layers // 3`` and ``2 * layers // 3``; auxiliary
    head after cell ``2 * layers // 3`` (7x7 maps at 224x224); global average pooling (the reference's
    ``AvgPool2d(7)`` at 224x224) and a linear classifier.

    DARTS_V2 with C=48, 14 cells, 1000 classes: 4,718,752 parameters (5,979,528 with the auxiliary
    head) and 529,911,552 MACs at 1x3x224x224.
    """

    def __init__(
        self,
        genotype: Genotype,
        C: int = 48,
        num_classes: int = 1000,
        layers: int = 14,
        auxiliary: bool = False,
        drop_path_prob: float = 0.0,
    ) -> None:
        super().__init__()
        _check_common(genotype, C, num_classes, layers, drop_path_prob)
        if C % 2:
            raise ValueError(f"C must be even for DartsImageNetNetwork (the first cell's FactorizedReduce "
                             f"outputs C channels in two halves), got C={C}; use C={C + 1} or C={C - 1}")
        self.drop_path_prob = drop_path_prob
        self.stem0 = nn.Sequential(
            nn.Conv2d(3, C // 2, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(C // 2),
            nn.ReLU(inplace=True),
            nn.Conv2d(C // 2, C, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(C),
        )
        self.stem1 = nn.Sequential(
            nn.ReLU(inplace=False),
            nn.Conv2d(C, C, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(C),
        )
        C_last, C_aux = self._build_cells(genotype, C, C, C, layers, reduction_prev=True)
        self.auxiliary_head = AuxiliaryHeadImageNet(C_aux, num_classes) if auxiliary else None
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(C_last, num_classes)

    def _stem_states(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        s0 = self.stem0(x)
        return s0, self.stem1(s0)
