"""NAS-Bench-101 evaluation network (Ying et al., "NAS-Bench-101: Towards Reproducible Neural Architecture
Search", ICML 2019, section 2.1 and fig. 1).

A cell ("module") is a DAG of at most 7 vertices given by an upper-triangular 0/1 adjacency matrix and one
label per vertex: vertex 0 is the input, vertex ``V-1`` the output, each interior vertex one of
``conv3x3-bn-relu``, ``conv1x1-bn-relu`` or ``maxpool3x3``. The network (fig. 1, left): a 3x3
conv-BN-ReLU stem to 128 channels, 3 stacks of 3 cells, a 2x2/2 max-pool with the channels doubled before
stacks 2 and 3, global average pooling and a dense layer.

Inside a cell (sec. 2.1, "Cell encoding"; the official ``model_builder.build_module``):

* the output channels are split among the interior vertices that feed the output (earlier vertices take
  the remainder); every other interior vertex takes the largest channel count of its successors
  (:func:`compute_vertex_channels`);
* the cell input reaches a vertex through a 1x1 conv-BN-ReLU projection to that vertex's channels;
* an interior vertex sums its inputs (interior inputs truncated to its channel count) and applies its op;
* the output vertex concatenates its interior inputs and, when input -> output is an edge, adds a
  projection of the input; with no interior vertex the output is that projection alone.

Conv ops are Conv -> BN -> ReLU (post-activation, unlike DARTS's ReLU-Conv-BN), convolutions have no bias.

**Parameter counts.** NB101's ``trainable_parameters`` are TF's trainable variables: conv kernels, BN
``beta`` and ``gamma`` (``tf.layers.batch_normalization`` defaults ``center=scale=True``) and the dense
kernel and bias; BN moving mean/variance are non-trainable. These are exactly PyTorch's parameters here
(``BatchNorm2d.weight``/``bias`` are gamma/beta; running statistics are buffers), so
``nasatlas.spaces.cost.count_params(net) == trainable_parameters`` with no correction (checked in
``tests/test_nets_nb101.py`` against published values).

**Faithful details.** BN ``eps=1e-5`` and TF momentum 0.997, i.e. PyTorch ``momentum=0.003`` (pass
``bn_momentum=0.1`` for short trainings: with 0.003 the running statistics barely move in a few hundred
steps); conv kernels use TF's ``variance_scaling_initializer()`` (truncated normal, fan-in, scale 1) and
the dense kernel Glorot-uniform, biases zero. TF ``'same'`` 2x2/2 pooling is ``ceil_mode=True``.

Nothing here does work at import time; initialisation draws from PyTorch's default generator (build inside
``torch.random.fork_rng``, DESIGN.md section 4.3).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

__all__ = [
    "CONV1X1",
    "CONV3X3",
    "INPUT",
    "MAXPOOL3X3",
    "NB101_OPS",
    "OUTPUT",
    "NB101Cell",
    "NB101ConvBNReLU",
    "NB101Network",
    "compute_vertex_channels",
    "prune",
    "validate_spec",
]

INPUT = "input"
OUTPUT = "output"
CONV3X3 = "conv3x3-bn-relu"
CONV1X1 = "conv1x1-bn-relu"
MAXPOOL3X3 = "maxpool3x3"
NB101_OPS: tuple[str, ...] = (CONV3X3, CONV1X1, MAXPOOL3X3)
"""The interior vertex labels of NB101 (sec. 2.1), in the order of NB101's ``available_ops``."""

MAX_VERTICES = 7
_TF_BN_MOMENTUM = 1.0 - 0.997  # TF keeps 0.997 of the old moving average; PyTorch's momentum is the new share
_TRUNC_NORMAL_STD = 0.87962566103423978  # std of a unit normal truncated to [-2, 2] (TF variance scaling)

Matrix = Sequence[Sequence[int]] | np.ndarray


def _as_matrix(matrix: Matrix) -> np.ndarray:
    try:
        m = np.asarray(matrix)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"matrix must be a square 0/1 array (list of lists or numpy), got {matrix!r}") from exc
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        raise ValueError(f"matrix must be square (V x V), got shape {m.shape}")
    if m.size and not np.isin(m, (0, 1)).all():
        raise ValueError("matrix entries must be 0 or 1 (an edge src -> dst is matrix[src][dst] = 1)")
    return m.astype(np.int64)


def _check_labels(m: np.ndarray, ops: Sequence[str]) -> list[str]:
    if isinstance(ops, str) or not isinstance(ops, Sequence):
        raise TypeError(f"ops must be a sequence of V vertex labels, got {ops!r}")
    labels = list(ops)
    v = m.shape[0]
    if len(labels) != v:
        raise ValueError(f"ops has {len(labels)} labels but matrix has {v} vertices; give one label per vertex")
    if v < 2:
        raise ValueError(f"a cell needs at least the input and output vertices, got V={v}")
    if v > MAX_VERTICES:
        raise ValueError(f"NAS-Bench-101 cells have at most {MAX_VERTICES} vertices, got V={v}")
    if np.tril(m).any():
        src, dst = (int(i) for i in np.argwhere(np.tril(m))[0])
        raise ValueError(
            f"matrix must be strictly upper triangular (edges go from lower to higher vertex index); "
            f"found an entry at [{src}][{dst}]"
        )
    if labels[0] != INPUT or labels[-1] != OUTPUT:
        raise ValueError(f"ops must start with {INPUT!r} and end with {OUTPUT!r}, got {labels[0]!r} ... {labels[-1]!r}")
    for i, op in enumerate(labels[1:-1], start=1):
        if op not in NB101_OPS:
            raise ValueError(f"ops[{i}] = {op!r} is not an NB101 op; choose one of {list(NB101_OPS)}")
    return labels


def _reachable(m: np.ndarray) -> tuple[set[int], set[int]]:
    """Vertices reachable from the input, and vertices from which the output is reachable."""
    v = m.shape[0]
    fwd, bwd = {0}, {v - 1}
    for j in range(1, v):  # topological order: an edge always goes to a higher index
        if any(m[i, j] for i in fwd if i < j):
            fwd.add(j)
    for i in range(v - 2, -1, -1):
        if any(m[i, j] for j in bwd if j > i):
            bwd.add(i)
    return fwd, bwd


def prune(matrix: Matrix, ops: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    """Remove vertices not on an input -> output path (NB101 ``ModelSpec._prune``, sec. 2.1).

    Returns a new ``(matrix, ops)``; vertices keep their relative order. Raises ``ValueError`` when the
    output is unreachable from the input (NB101 marks such a spec invalid).
    """
    m = _as_matrix(matrix)
    labels = _check_labels(m, ops)
    fwd, bwd = _reachable(m)
    keep = sorted(fwd & bwd)
    if len(keep) < 2:
        raise ValueError("invalid cell: there is no path from the input vertex to the output vertex")
    return m[np.ix_(keep, keep)].copy(), [labels[i] for i in keep]


def validate_spec(matrix: Matrix, ops: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    """Check a *pruned* NB101 cell and return it as ``(int64 matrix, list of labels)``.

    ``ValueError`` names the problem: not square / not 0-1 / not strictly upper triangular, more than 7
    vertices, wrong labels, no input -> output path, or dangling vertices (use :func:`prune` first).
    """
    m = _as_matrix(matrix)
    labels = _check_labels(m, ops)
    fwd, bwd = _reachable(m)
    if m.shape[0] - 1 not in fwd:
        raise ValueError("invalid cell: there is no path from the input vertex to the output vertex")
    dangling = sorted(set(range(m.shape[0])) - (fwd & bwd))
    if dangling:
        raise ValueError(
            f"vertices {dangling} are not on an input -> output path (dangling); "
            "call nb101_net.prune(matrix, ops) first, as NB101's ModelSpec does"
        )
    return m, labels


def compute_vertex_channels(in_channels: int, out_channels: int, matrix: Matrix) -> list[int]:
    """Channels of every vertex of a pruned cell (NB101 ``compute_vertex_channels``, sec. 2.1).

    ``out_channels`` is split among the interior vertices feeding the output, the first
    ``out_channels % fan_in`` of them (by index) taking one extra channel; every other interior vertex
    takes the maximum over its interior successors, so channels never increase along an edge.
    """
    m = _as_matrix(matrix)
    v = m.shape[0]
    channels = [0] * v
    channels[0], channels[-1] = in_channels, out_channels
    if v == 2:
        return channels
    fan_in = int(m[1:-1, -1].sum())
    if fan_in == 0:
        raise ValueError("interior vertices exist but none feeds the output; prune the cell first")
    base, extra = divmod(out_channels, fan_in)
    if base < 1:
        raise ValueError(
            f"{out_channels} output channels cannot be split among {fan_in} vertices feeding the output; "
            "increase stem_channels"
        )
    for t in range(1, v - 1):
        if m[t, -1]:
            channels[t] = base + (1 if extra > 0 else 0)  # earlier vertices take the remainder
            extra = max(extra - 1, 0)
    for t in range(v - 3, 0, -1):
        if not m[t, -1]:
            channels[t] = max([channels[d] for d in range(t + 1, v - 1) if m[t, d]], default=0)
    if any(c < 1 for c in channels[1:-1]):
        raise ValueError("an interior vertex has no successor; prune the cell first")
    return channels


class NB101ConvBNReLU(nn.Sequential):
    """KxK conv (stride 1, 'same' padding, no bias) -> BN -> ReLU: NB101 ``base_ops.conv_bn_relu``.

    Used for the stem, the ``conv3x3-bn-relu``/``conv1x1-bn-relu`` vertices and the 1x1 input projections.
    """

    def __init__(self, C_in: int, C_out: int, kernel_size: int, *, bn_momentum: float = _TF_BN_MOMENTUM) -> None:
        for name, val in (("C_in", C_in), ("C_out", C_out), ("kernel_size", kernel_size)):
            if not isinstance(val, int) or isinstance(val, bool) or val < 1:
                raise ValueError(f"{name} must be a positive int, got {val!r}")
        if kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd for 'same' padding, got {kernel_size}")
        super().__init__(
            nn.Conv2d(C_in, C_out, kernel_size, padding=kernel_size // 2, bias=False),
            nn.BatchNorm2d(C_out, eps=1e-5, momentum=bn_momentum),
            nn.ReLU(inplace=False),
        )


def _vertex_op(label: str, C_in: int, C_out: int, bn_momentum: float) -> nn.Module:
    if label == CONV3X3:
        return NB101ConvBNReLU(C_in, C_out, 3, bn_momentum=bn_momentum)
    if label == CONV1X1:
        return NB101ConvBNReLU(C_in, C_out, 1, bn_momentum=bn_momentum)
    return nn.MaxPool2d(3, stride=1, padding=1)  # MAXPOOL3X3: keeps its input channels (== C_out)


class NB101Cell(nn.Module):
    """One NB101 module built from a pruned ``(matrix, ops)`` mapping ``C_in`` to ``C_out`` channels."""

    def __init__(
        self, matrix: Matrix, ops: Sequence[str], C_in: int, C_out: int, *, bn_momentum: float = _TF_BN_MOMENTUM
    ) -> None:
        super().__init__()
        m, labels = validate_spec(matrix, ops)
        v = m.shape[0]
        self.num_vertices = v
        self.vertex_channels = compute_vertex_channels(C_in, C_out, m)
        ch = self.vertex_channels
        # per interior vertex t: interior sources (in index order) and whether the input feeds it
        self._sources: list[list[int]] = [[s for s in range(1, t) if m[s, t]] for t in range(v)]
        self._from_input: list[bool] = [bool(m[0, t]) for t in range(v)]
        self._concat: list[int] = [t for t in range(1, v - 1) if m[t, -1]]
        self.vertex_ops = nn.ModuleDict(
            {str(t): _vertex_op(labels[t], ch[t], ch[t], bn_momentum) for t in range(1, v - 1)}
        )
        self.proj = nn.ModuleDict(
            {str(t): NB101ConvBNReLU(C_in, ch[t], 1, bn_momentum=bn_momentum) for t in range(1, v) if m[0, t]}
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ch = self.vertex_channels
        states: list[torch.Tensor] = [x]
        for t in range(1, self.num_vertices - 1):
            terms = [states[s][:, : ch[t]] for s in self._sources[t]]  # truncate to the vertex's channels
            if self._from_input[t]:
                terms.append(self.proj[str(t)](x))
            h = terms[0]
            for term in terms[1:]:
                h = h + term
            states.append(self.vertex_ops[str(t)](h))
        if not self._concat:  # only input -> output
            return self.proj[str(self.num_vertices - 1)](x)
        out = states[self._concat[0]] if len(self._concat) == 1 else torch.cat([states[t] for t in self._concat], 1)
        if self._from_input[-1]:
            out = out + self.proj[str(self.num_vertices - 1)](x)
        return out


def _truncated_normal_(w: torch.Tensor, std: float) -> None:
    """Normal(0, std) truncated to +-2 std, by inverse-CDF sampling (faster than ``nn.init.trunc_normal_``)."""
    lo = math.erf(-2.0 / math.sqrt(2.0))  # 2 * Phi(-2) - 1
    w.uniform_(lo, -lo).erfinv_().mul_(std * math.sqrt(2.0)).clamp_(-2.0 * std, 2.0 * std)


class NB101Network(nn.Module):
    """The NAS-Bench-101 CIFAR network around one cell (Ying et al. 2019, sec. 2.1, fig. 1).

    ``matrix``/``ops`` must be pruned (see :func:`prune`); ``stem_channels`` is the stem width and the
    first stack's cell width, doubled at each of the ``num_stacks - 1`` downsamplings. Defaults are NB101's
    (128, 3 stacks, 3 cells per stack, 10 classes). ``bn_momentum`` is PyTorch's (NB101: 0.003).
    """

    def __init__(
        self,
        matrix: Matrix,
        ops: Sequence[str],
        stem_channels: int = 128,
        num_stacks: int = 3,
        num_cells_per_stack: int = 3,
        num_classes: int = 10,
        *,
        in_channels: int = 3,
        bn_momentum: float = _TF_BN_MOMENTUM,
    ) -> None:
        super().__init__()
        for name, val in (
            ("stem_channels", stem_channels), ("num_stacks", num_stacks),
            ("num_cells_per_stack", num_cells_per_stack), ("num_classes", num_classes), ("in_channels", in_channels),
        ):
            if not isinstance(val, int) or isinstance(val, bool) or val < 1:
                raise ValueError(f"{name} must be a positive int, got {val!r}")
        if not 0.0 <= bn_momentum <= 1.0:
            raise ValueError(f"bn_momentum must be in [0, 1] (PyTorch convention), got {bn_momentum!r}")
        m, labels = validate_spec(matrix, ops)
        self.matrix, self.ops = m, labels
        self.stem = NB101ConvBNReLU(in_channels, stem_channels, 3, bn_momentum=bn_momentum)
        layers: list[nn.Module] = []
        c_prev = c = stem_channels
        for stack in range(num_stacks):
            if stack > 0:
                layers.append(nn.MaxPool2d(2, stride=2, ceil_mode=True))
                c *= 2
            for _ in range(num_cells_per_stack):
                layers.append(NB101Cell(m, labels, c_prev, c, bn_momentum=bn_momentum))
                c_prev = c
        self.cells = nn.Sequential(*layers)
        self.classifier = nn.Linear(c, num_classes)
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """TF initialisation of NB101: conv ``variance_scaling_initializer()``, dense Glorot-uniform, zero bias."""
        for mod in self.modules():
            if isinstance(mod, nn.Conv2d):
                fan_in = mod.in_channels * mod.kernel_size[0] * mod.kernel_size[1]
                _truncated_normal_(mod.weight, math.sqrt(1.0 / fan_in) / _TRUNC_NORMAL_STD)
            elif isinstance(mod, nn.BatchNorm2d):
                mod.reset_parameters()
        nn.init.xavier_uniform_(self.classifier.weight)
        nn.init.zeros_(self.classifier.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.cells(self.stem(x))
        return self.classifier(x.mean(dim=(2, 3)))
