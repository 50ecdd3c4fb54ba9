"""NAS-Bench-201 evaluation network (Dong & Yang, "NAS-Bench-201", ICLR 2020, section 2.1, fig. 1).

A cell is a DAG on 4 nodes; each edge ``j -> i`` (``j < i``) carries one of ``none``, ``skip_connect``,
``nor_conv_1x1``, ``nor_conv_3x3``, ``avg_pool_3x3``, and node ``i`` is the sum of its incoming edges;
node 3 is the cell output. The network (the "macro skeleton" of fig. 1, top): a 3x3 conv stem + BN,
three stages of ``N`` cells with ``C``, ``2C``, ``4C`` channels separated by residual reduction blocks
(a ResNet basic block with stride 2 whose shortcut is 2x2 average pooling then a 1x1 conv), then
BN-ReLU, global average pooling and a linear classifier.

Cost relation to the NAS-Bench-201 cost table (``nb201_cost_cifar10_subset.parquet``: C=16, N=5,
10 classes, 1x3x32x32 input; checked on all 491 cells in ``tests/test_nets_darts_nb201.py``):

* ``params_millions == count_params(net) / 1e6`` exactly (to the table's 6 decimals).
* ``flops_millions`` is *not* MACs. It matches exactly the torchstat convention (tensorwatch's
  ``ModelStats``, which NASLib's ``model_stats`` measure wraps; NASLib is the table's source): conv and
  linear MACs (``count_macs``, no bias terms) plus 2 FLOPs per input
  element of each affine BatchNorm, 1 per input element of each ReLU, k*k per output element of each
  average pool, and C*(H+1)*(W+1) for the final global pool. For this network that is exactly
  ``flops_millions * 1e6 == count_macs(net) + 160_832 + 430_080 * n_conv + 1_290_240 * n_avg_pool``,
  where ``n_conv`` counts ``nor_conv_1x1``/``nor_conv_3x3`` edges and ``n_avg_pool`` the
  ``avg_pool_3x3`` edges of the cell (none/skip add nothing). 160,832 is the stem, the two residual
  blocks and the head; 430,080 = 3 x 143,360 and 1,290,240 = 9 x 143,360, where 143,360 is the number
  of cell-output elements over the 15 cells. The table's FLOPs therefore exceed MACs by 0.16-7.04 M.
* NB201's own counter (``get_model_infos`` in its code) counts conv/linear multiply-adds plus the
  classifier bias, i.e. ``count_macs(net) + num_classes``: 7.783 M (all ``none``) to 220.120 M (all
  ``nor_conv_3x3``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from nasatlas.spaces.ops import ReLUConvBN, make_op
from torch import nn

__all__ = [
    "NB201_EDGES",
    "NB201_OPS",
    "NB201Cell",
    "NB201Network",
    "NB201ResidualReduction",
    "nb201_stages",
    "nb201_string",
    "parse_nb201_string",
]

NB201_OPS: tuple[str, ...] = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
"""The five NB201 candidate ops, in the benchmark's order."""

NB201_EDGES: tuple[tuple[int, int], ...] = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))
"""Edges ``(to, from)`` in NB201 string order: ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|``."""


def parse_nb201_string(s: str) -> list[str]:
    """Parse ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|`` into the 6 op names, in :data:`NB201_EDGES` order.

    Raises ``ValueError`` naming the offending part when the string has the wrong number of nodes or
    edges, a wrong input index, or an unknown op.
    """
    if not isinstance(s, str):
        raise TypeError(f"an NB201 string must be a str, got {type(s).__name__}")
    nodes = s.strip().split("+")
    if len(nodes) != 3:
        raise ValueError(f"NB201 string must have 3 nodes separated by '+', got {len(nodes)} in {s!r}; "
                         "expected '|op~0|+|op~0|op~1|+|op~0|op~1|op~2|'")
    ops: list[str] = []
    for node_i, node in enumerate(nodes, start=1):
        if not (node.startswith("|") and node.endswith("|")) or len(node) < 2:
            raise ValueError(f"node {node_i} of NB201 string {s!r} must be written '|op~j|...|', "
                             f"got {node!r}")
        parts = node[1:-1].split("|")
        if len(parts) != node_i:
            raise ValueError(f"node {node_i} of NB201 string {s!r} must have {node_i} input edge(s), "
                             f"got {len(parts)} in {node!r}")
        for j, part in enumerate(parts):
            op, sep, src = part.partition("~")
            if not sep or src != str(j):
                raise ValueError(f"edge {part!r} of node {node_i} in NB201 string {s!r} must read "
                                 f"'op~{j}' (inputs listed in order 0..{node_i - 1})")
            if op not in NB201_OPS:
                raise ValueError(f"unknown NB201 op {op!r} in {s!r}; choose one of {list(NB201_OPS)}")
            ops.append(op)
    return ops


def nb201_string(edges: Sequence[str]) -> str:
    """Inverse of :func:`parse_nb201_string`."""
    _check_edges(edges)
    nodes, k = [], 0
    for node_i in (1, 2, 3):
        nodes.append("|" + "|".join(f"{edges[k + j]}~{j}" for j in range(node_i)) + "|")
        k += node_i
    return "+".join(nodes)


def _check_edges(edges: Sequence[str]) -> None:
    if isinstance(edges, str):
        raise TypeError("edges must be a sequence of 6 op names; for an NB201 string use "
                        "parse_nb201_string(s) first")
    if len(edges) != len(NB201_EDGES):
        raise ValueError(f"edges must hold {len(NB201_EDGES)} op names (one per edge {NB201_EDGES}), "
                         f"got {len(edges)}")
    for k, op in enumerate(edges):
        if op not in NB201_OPS:
            raise ValueError(f"edges[{k}] is unknown op {op!r}; choose one of {list(NB201_OPS)}")


class NB201Cell(nn.Module):
    """An NB201 inference cell: node ``i`` = sum over ``j < i`` of ``op_(i,j)(node j)``; output node 3.

    Ops are built by :func:`nasatlas.spaces.ops.make_op` with NB201's settings (affine BN tracking
    running statistics; ``conv_bias = not affine``).
    """

    def __init__(self, edges: Sequence[str], C: int, affine: bool = True,
                 track_running_stats: bool = True) -> None:
        super().__init__()
        _check_edges(edges)
        self.edges = tuple(edges)
        self.ops = nn.ModuleList(
            make_op(op, C, C, 1, affine, track_running_stats=track_running_stats, conv_bias=not affine)
            for op in edges
        )
        # Skip 'none' edges entirely: they add zeros (same result, no work).
        self._live = [op != "none" for op in edges]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        k = 0
        for i in (1, 2, 3):
            total: torch.Tensor | None = None
            for j in range(i):
                if self._live[k]:
                    h = self.ops[k](nodes[j])
                    total = h if total is None else total + h
                k += 1
            nodes.append(total if total is not None else x.mul(0.0))
        return nodes[3]


class NB201ResidualReduction(nn.Module):
    """The residual block between NB201 stages: ResNet basic block, stride 2 (NB201 section 2.1).

    Main path: ReLU-Conv3x3(stride 2)-BN, ReLU-Conv3x3-BN. Shortcut: 2x2 average pooling (stride 2)
    then a 1x1 conv without BN. Output: their sum.
    """

    def __init__(self, C_in: int, C_out: int, affine: bool = True) -> None:
        super().__init__()
        self.conv_a = ReLUConvBN(C_in, C_out, 3, 2, 1, 1, affine)
        self.conv_b = ReLUConvBN(C_out, C_out, 3, 1, 1, 1, affine)
        self.downsample = nn.Sequential(
            nn.AvgPool2d(kernel_size=2, stride=2, padding=0),
            nn.Conv2d(C_in, C_out, 1, bias=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.downsample(x) + self.conv_b(self.conv_a(x))


def nb201_stages(C: int, N: int, make_cell: Callable[[int], nn.Module]) -> tuple[list[nn.Module], int]:
    """The macro skeleton's body (NB201 fig. 1): three stages of ``N`` cells with ``C``, ``2C``, ``4C``
    channels (``make_cell(channels)``), separated by residual reduction blocks. Returns the layers in
    order and the last stage's channels; shared by the evaluation network and the supernet."""
    layers: list[nn.Module] = []
    C_prev = C
    for stage in range(3):
        C_curr = C * 2**stage
        if stage > 0:
            layers.append(NB201ResidualReduction(C_prev, C_curr))
        layers.extend(make_cell(C_curr) for _ in range(N))
        C_prev = C_curr
    return layers, C_prev


class NB201Network(nn.Module):
    """The NAS-Bench-201 network for one cell (Dong & Yang 2020, fig. 1; reference ``TinyNetwork``).

    ``edges``: the 6 op names in NB201 string order (see :data:`NB201_EDGES`; use
    :func:`parse_nb201_string` for a string). ``C``: channels of the first stage; ``N``: cells per stage.
    """

    def __init__(self, edges: Sequence[str], C: int = 16, N: int = 5, num_classes: int = 10) -> None:
        super().__init__()
        _check_edges(edges)
        for field, value in (("C", C), ("N", N), ("num_classes", num_classes)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{field} must be an int >= 1, got {value!r}")
        self.edges = tuple(edges)
        self.stem = nn.Sequential(nn.Conv2d(3, C, 3, padding=1, bias=False), nn.BatchNorm2d(C))
        layers, C_prev = nb201_stages(C, N, lambda c: NB201Cell(edges, c))
        self.cells = nn.Sequential(*layers)
        self.lastact = nn.Sequential(nn.BatchNorm2d(C_prev), nn.ReLU(inplace=True))
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(C_prev, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.lastact(self.cells(self.stem(x)))
        return self.classifier(self.global_pooling(out).flatten(1))
