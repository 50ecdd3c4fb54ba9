"""TF-convention cells and the NASNet / AmoebaNet / PNASNet / ENAS-micro networks built from them.

A TF-convention cell (``NasNetABaseCell`` of TF-slim ``nasnet_utils.py``, Zoph et al. 2018, sec. 3,
fig. 4 and appendix A) holds B blocks; block ``b`` applies ``operations[2b]`` to hidden state
``hiddenstate_indices[2b]`` and ``operations[2b+1]`` to ``hiddenstate_indices[2b+1]`` and adds them.
Hidden state 0 is the previous cell's output ``c_{k-1}`` (after ReLU-1x1-BN), 1 is ``c_{k-2}``
(matched to ``c_{k-1}``'s shape), ``2 + b`` is block ``b``. Every state with
``used_hiddenstates[k] == 0`` is concatenated into the cell output -- ``c_{k-2}`` included (NASNet-A's
normal cell does this). DARTS numbers the two inputs the other way round; :meth:`TFCellSpec.from_darts`
and :meth:`TFCellSpec.to_darts` convert.

Networks follow ``_build_nasnet_base`` (NASNet, AmoebaNet: a reduction cell inserted before normal
cells ``reduction_indices``) and ``_build_pnasnet_base`` (PNASNet, ENAS: the cell at those indices
strides instead), with the ImageNet stem (3x3/2 VALID conv, then two stride-2 cells at filter scaling
1/4 and 1/2) or the CIFAR stem (3x3 conv). Official settings of each network are in the subclasses.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn
from torch.nn import functional as F

from ..ops import OPS, Identity, ReLUConvBN
from ..ops_tf import (
    TF_CELL_OPS,
    CellStyle,
    ConvBN,
    TFAuxHead,
    drop_path,
    make_tf_op,
    nasatlas_op_name,
    tf_factorized_reduction,
)

__all__ = [
    "AMOEBANET_A_NORMAL",
    "AMOEBANET_A_REDUCE",
    "ENAS_MICRO_FINAL_ARC",
    "ENAS_MICRO_OPS",
    "NASNET_A_NORMAL",
    "NASNET_A_REDUCE",
    "PNASNET_5_CELL",
    "AmoebaNetMobileNetwork",
    "ENASMicroNetwork",
    "NASNetMobileNetwork",
    "PNASNetMobileNetwork",
    "TFCell",
    "TFCellNetwork",
    "TFCellSpec",
    "calc_reduction_layers",
    "enas_micro_specs",
    "set_drop_prob",
]


def _swap01(i: int) -> int:
    """TF <-> DARTS input index: the two conventions swap 0 (c_{k-1} in TF) and 1 (c_{k-2} in TF)."""
    return {0: 1, 1: 0}.get(i, i)


@dataclass(frozen=True)
class TFCellSpec:
    """A TF-convention cell (NASNet appendix A; field names as in ``NasNetABaseCell``).

    Args:
        operations: 2B nasatlas op names (TF names convert with :meth:`from_tf`).
        hiddenstate_indices: 2B input states; block ``b`` may read states ``0 .. b + 1``.
        used_hiddenstates: B + 2 flags; a state with flag 0 is concatenated into the output.
        combine: how a block merges its two inputs: ``"add"`` (every published TF cell), ``"concat"``,
            or one of them per block (NASNet's search space offers both).
    """

    operations: tuple[str, ...]
    hiddenstate_indices: tuple[int, ...]
    used_hiddenstates: tuple[int, ...]
    combine: str | tuple[str, ...] = "add"

    def block_combine(self, b: int) -> str:
        """How block ``b`` merges its two inputs: ``add`` (every published TF cell) or ``concat``
        (NASNet's search space, Zoph et al. 2018 Sec. 3: concatenation along the filters, followed
        here by a 1x1 ReLU-conv-BN back to the cell's width so every state keeps ``C`` filters)."""
        return self.combine if isinstance(self.combine, str) else self.combine[b]

    def __post_init__(self) -> None:
        object.__setattr__(self, "operations", tuple(self.operations))
        object.__setattr__(self, "hiddenstate_indices", tuple(int(i) for i in self.hiddenstate_indices))
        object.__setattr__(self, "used_hiddenstates", tuple(int(u) for u in self.used_hiddenstates))
        ops, idx, used = self.operations, self.hiddenstate_indices, self.used_hiddenstates
        if not ops or len(ops) % 2:
            raise ValueError(f"operations has length {len(ops)}; give two ops per block (an even, "
                             "non-zero length)")
        if len(idx) != len(ops):
            raise ValueError(f"hiddenstate_indices has length {len(idx)} but operations has {len(ops)}; "
                             "give one input state per op")
        n_states = 2 + len(ops) // 2
        if len(used) != n_states:
            raise ValueError(f"used_hiddenstates has length {len(used)}; it needs one flag per hidden "
                             f"state, 2 inputs + {len(ops) // 2} blocks = {n_states}")
        for i, op in enumerate(ops):
            if op not in TF_CELL_OPS and op not in OPS:
                raise ValueError(f"operations[{i}]={op!r} is not a TF-cell op; choose one of "
                                 f"{list(TF_CELL_OPS) + sorted(OPS)} (TF names convert with TFCellSpec.from_tf)")
        for i, s in enumerate(idx):
            if not 0 <= s < 2 + i // 2:
                raise ValueError(f"hiddenstate_indices[{i}]={s} is out of range for block {i // 2}: it may "
                                 f"read states 0..{i // 2 + 1} (0 = c_(k-1), 1 = c_(k-2), 2.. = earlier "
                                 "blocks)")
        if any(u not in (0, 1) for u in used):
            raise ValueError(f"used_hiddenstates={list(used)} must hold only 0 and 1")
        if all(used):
            raise ValueError("used_hiddenstates marks every state as used, so the cell output would be "
                             "empty; set the flag of at least one state (e.g. the last block) to 0")
        combine = (self.combine,) * (len(ops) // 2) if isinstance(self.combine, str) else tuple(self.combine)
        if len(combine) != len(ops) // 2 or any(c not in ("add", "concat") for c in combine):
            raise ValueError(f"combine={self.combine!r}: give 'add', 'concat', or one of them per block "
                             f"({len(ops) // 2} blocks)")
        object.__setattr__(self, "combine", combine[0] if len(set(combine)) == 1 and combine[0] == "add"
                           else combine)

    @property
    def num_blocks(self) -> int:
        """B, the number of blocks."""
        return len(self.operations) // 2

    @property
    def output_states(self) -> tuple[int, ...]:
        """The hidden states concatenated into the output, in order."""
        return tuple(k for k, u in enumerate(self.used_hiddenstates) if not u)

    @classmethod
    def from_tf(cls, operations: Sequence[str], hiddenstate_indices: Sequence[int],
                used_hiddenstates: Sequence[int]) -> TFCellSpec:
        """From the official code's arrays, TF op names included (``'none'`` is the identity)."""
        return cls(tuple(nasatlas_op_name(o) for o in operations), tuple(hiddenstate_indices),
                   tuple(used_hiddenstates))

    @classmethod
    def from_mapping(cls, entry: Mapping[str, Any]) -> TFCellSpec:
        """From a ``{"tf_operations", "tf_hiddenstate_indices", "tf_used_hiddenstates"}`` mapping."""
        missing = {"tf_operations", "tf_hiddenstate_indices", "tf_used_hiddenstates"} - set(entry)
        if missing:
            raise ValueError(f"entry lacks {sorted(missing)}; give the three tf_* arrays")
        return cls.from_tf(entry["tf_operations"], entry["tf_hiddenstate_indices"],
                           entry["tf_used_hiddenstates"])

    @classmethod
    def from_darts(cls, edges: Sequence[tuple[str, int]], concat: Sequence[int],
                   combine: str | Sequence[str] = "add") -> TFCellSpec:
        """From DARTS-convention edges (pair i feeds node i + 2; 0 = c_(k-2)) and concat indices."""
        pairs = [(str(op), int(i)) for op, i in edges]
        if not pairs or len(pairs) % 2:
            raise ValueError(f"edges has length {len(pairs)}; give two (op, input) edges per node")
        n_states = 2 + len(pairs) // 2
        bad = [c for c in concat if not 0 <= int(c) < n_states]
        if bad:
            raise ValueError(f"concat holds {bad}, outside the states 0..{n_states - 1}")
        out = {_swap01(int(c)) for c in concat}
        return cls(tuple(op for op, _ in pairs), tuple(_swap01(i) for _, i in pairs),
                   tuple(0 if k in out else 1 for k in range(n_states)),
                   combine if isinstance(combine, str) else tuple(combine))

    def to_darts(self) -> tuple[list[tuple[str, int]], list[int]]:
        """DARTS-convention ``(edges, concat)`` of the same cell (inputs 0 and 1 swapped)."""
        edges = [(op, _swap01(i)) for op, i in zip(self.operations, self.hiddenstate_indices)]
        return edges, sorted(_swap01(k) for k in self.output_states)


NASNET_A_NORMAL = TFCellSpec.from_tf(
    ["separable_5x5_2", "separable_3x3_2", "separable_5x5_2", "separable_3x3_2", "avg_pool_3x3", "none",
     "avg_pool_3x3", "avg_pool_3x3", "separable_3x3_2", "none"],
    [0, 1, 1, 1, 0, 1, 1, 1, 0, 0], [1, 0, 0, 0, 0, 0, 0])
"""NASNet-A normal cell (TF-slim ``nasnet_utils.NasNetANormalCell``; Zoph et al. 2018, fig. 4)."""

NASNET_A_REDUCE = TFCellSpec.from_tf(
    ["separable_5x5_2", "separable_7x7_2", "max_pool_3x3", "separable_7x7_2", "avg_pool_3x3",
     "separable_5x5_2", "none", "avg_pool_3x3", "separable_3x3_2", "max_pool_3x3"],
    [0, 1, 0, 1, 0, 1, 3, 2, 2, 0], [1, 1, 1, 0, 0, 0, 0])
"""NASNet-A reduction cell (``NasNetAReductionCell``)."""

AMOEBANET_A_NORMAL = TFCellSpec.from_tf(
    ["avg_pool_3x3", "max_pool_3x3", "separable_3x3_2", "none", "none", "avg_pool_3x3", "separable_3x3_2",
     "separable_5x5_2", "avg_pool_3x3", "separable_3x3_2"],
    [0, 0, 1, 1, 0, 1, 0, 2, 5, 0], [1, 0, 1, 0, 0, 1, 0])
"""AmoebaNet-A normal cell (tensorflow/tpu ``amoeba_net/model_specs.py``; Real et al. 2019, fig. 4)."""

AMOEBANET_A_REDUCE = TFCellSpec.from_tf(
    ["separable_3x3_2", "avg_pool_3x3", "max_pool_3x3", "separable_7x7_2", "max_pool_3x3", "max_pool_3x3",
     "separable_3x3_2", "1x7_7x1", "avg_pool_3x3", "separable_7x7_2"],
    [1, 0, 0, 2, 1, 0, 4, 0, 1, 0], [1, 1, 0, 0, 0, 0, 0])
"""AmoebaNet-A reduction cell."""

PNASNET_5_CELL = TFCellSpec.from_tf(
    ["separable_5x5_2", "max_pool_3x3", "separable_7x7_2", "max_pool_3x3", "separable_5x5_2",
     "separable_3x3_2", "separable_3x3_2", "max_pool_3x3", "separable_3x3_2", "none"],
    [1, 1, 0, 0, 0, 0, 4, 0, 1, 0], [1, 1, 0, 0, 0, 0, 0])
"""PNASNet-5 cell (TF-slim ``pnasnet.PNasNetNormalCell``; Liu et al. 2018, fig. 1), also the reduction
cell at stride 2."""

ENAS_MICRO_OPS: tuple[str, ...] = ("sep_conv_3x3", "sep_conv_5x5", "avg_pool_3x3", "max_pool_3x3",
                                   "skip_connect")
"""ENAS micro op ids 0..4 (``micro_child.py``: two stacked 3x3 / 5x5 separable convs, avg, max, identity)."""

ENAS_MICRO_FINAL_ARC = ("0 2 0 0 0 4 0 1 0 4 1 1 1 0 0 1 0 2 1 1 "
                        "1 0 1 0 0 3 0 2 1 1 3 1 1 0 0 4 0 3 1 1")
"""The official final ENAS micro cells (melodyguan/enas ``scripts/cifar10_micro_final.sh``)."""


def enas_micro_specs(arc: str | Sequence[int], num_blocks: int = 5) -> tuple[TFCellSpec, TFCellSpec]:
    """(normal, reduction) specs of an ENAS micro arc: per block ``[x_id, x_op, y_id, y_op]``, normal
    cell first (Pham et al. 2018, sec. 2.4). Ids use the DARTS order (0 = c_(k-2)); the output
    concatenates every state no block reads (``_fixed_combine``)."""
    if isinstance(arc, str):
        try:
            arc = [int(t) for t in arc.replace("|", " ").split()]
        except ValueError as err:
            raise ValueError(f"arc must hold integers separated by spaces: {err}") from None
    vals = [int(a) for a in arc]
    if len(vals) != 8 * num_blocks:
        raise ValueError(f"arc has {len(vals)} integers; an ENAS micro arc with num_blocks={num_blocks} "
                         f"has 4 per block per cell, {8 * num_blocks} in all")
    specs = []
    for half in (vals[: 4 * num_blocks], vals[4 * num_blocks:]):
        edges: list[tuple[str, int]] = []
        for j in range(0, len(half), 2):
            node, op = half[j], half[j + 1]
            if not 0 <= node < 2 + j // 4:
                raise ValueError(f"arc input id {node} at position {j} is out of range for block {j // 4}")
            if not 0 <= op < len(ENAS_MICRO_OPS):
                raise ValueError(f"arc op id {op} at position {j + 1} is not in 0..{len(ENAS_MICRO_OPS) - 1}")
            edges.append((ENAS_MICRO_OPS[op], node))
        read = {i for _, i in edges}
        specs.append(TFCellSpec.from_darts(edges, [k for k in range(2 + num_blocks) if k not in read]))
    return specs[0], specs[1]


def set_drop_prob(cells: nn.ModuleList, p: float | None) -> float:
    """Set the drop-path probability of every :class:`TFCell` in ``cells`` (``None``: leave it); return it."""
    if p is not None and not 0.0 <= p < 1.0:
        raise ValueError(f"drop_prob={p} must lie in [0, 1)")
    value = 0.0
    for c in cells:
        if isinstance(c, TFCell):
            if p is not None:
                c.drop_prob = p
            value = c.drop_prob
    return value


def calc_reduction_layers(num_cells: int, num_reduction_layers: int) -> list[int]:
    """Cell indices before which the network reduces (TF-slim ``calc_reduction_layers``)."""
    return [int(p / (num_reduction_layers + 1) * num_cells) for p in range(1, num_reduction_layers + 1)]


class TFCell(nn.Module):
    """One TF-convention cell (``NasNetABaseCell.__call__``; DeepLab ``NASBaseCell``; ENAS ``_fixed_layer``).

    Args:
        spec: the cell.
        C_prev_prev: channels of ``c_{k-2}``, or ``None`` when there is none (TF then reads ``c_{k-1}``
            raw as hidden state 1).
        C_prev: channels of ``c_{k-1}``.
        C: filters of every op (``num_conv_filters * filter_scaling``).
        stride: 2 in a reduction cell (only ops on states 0 and 1 stride).
        prev_prev_downsample: 2 when ``c_{k-2}`` has twice ``c_{k-1}``'s resolution (factorized
            reduction), else 1. The ``"deeplab"`` style resizes ``c_{k-2}`` bilinearly instead.
        style: official code followed (:data:`~nasatlas.spaces.ops_tf.CellStyle`). ``"enas"`` adds
            ENAS's extra ReLU-1x1-BN on ``c_{k-1}``; the DeepLab code concatenates unused states as they
            are, which equals the NASNet rule for every cell whose inputs are both used.
        drop_prob: drop-path probability on every op output except ``skip_connect`` (TF ``none``).
    """

    def __init__(self, spec: TFCellSpec, C_prev_prev: int | None, C_prev: int, C: int, *, stride: int = 1,
                 prev_prev_downsample: int = 1, style: CellStyle = "nasnet", drop_prob: float = 0.0) -> None:
        super().__init__()
        if prev_prev_downsample not in (1, 2):
            raise ValueError(f"prev_prev_downsample={prev_prev_downsample}; c_(k-2) may have the resolution "
                             "of c_(k-1) (1) or twice it (2)")
        self.spec, self.style, self.drop_prob = spec, style, drop_prob
        self.raw_prev = C_prev_prev is None
        pre0: list[nn.Module] = [ReLUConvBN(C_prev, C, 1, 1, 0)] if C_prev != C or style != "enas" else []
        if style == "enas":  # _maybe_calibrate_size, then layer_base (always)
            pre0.append(ReLUConvBN(C, C, 1, 1, 0))
        self.preprocess0 = nn.Sequential(*pre0)  # hidden state 0 <- c_{k-1}
        C_state1 = C_prev if C_prev_prev is None else C
        self.preprocess1: nn.Module = Identity()  # hidden state 1 <- c_{k-2}
        if C_prev_prev is not None:
            if style != "deeplab" and prev_prev_downsample == 2:
                self.preprocess1 = tf_factorized_reduction(C_prev_prev, C, 2, relu=True)
            elif C_prev_prev != C:
                self.preprocess1 = ReLUConvBN(C_prev_prev, C, 1, 1, 0)
        in_ch = [C, C_state1] + [C] * spec.num_blocks
        self.ops = nn.ModuleList()
        for op, s in zip(spec.operations, spec.hiddenstate_indices):
            self.ops.append(make_tf_op(op, in_ch[s], C, stride if s < 2 else 1, style=style))
        self.concat_proj = nn.ModuleDict({str(b): ReLUConvBN(2 * C, C, 1, 1, 0) for b in range(spec.num_blocks)
                                          if spec.block_combine(b) == "concat"})
        # _combine_unused_states: bring every concatenated state to the last block's shape.
        self.combine_reduce = nn.ModuleDict()
        for k in spec.output_states:
            reduce_res = stride == 2 and k < 2
            if reduce_res or in_ch[k] != C:
                self.combine_reduce[str(k)] = tf_factorized_reduction(in_ch[k], C, 2 if reduce_res else 1)
        self.C_out = C * len(spec.output_states)

    def forward(self, net: torch.Tensor, prev_layer: torch.Tensor | None) -> torch.Tensor:
        if self.raw_prev:
            h1 = net
        elif prev_layer is None:
            raise ValueError("this cell was built with C_prev_prev; pass prev_layer (the output of c_(k-2))")
        else:
            if self.style == "deeplab" and prev_layer.shape[-2:] != net.shape[-2:]:
                prev_layer = F.interpolate(prev_layer, size=net.shape[-2:], mode="bilinear",
                                           align_corners=True)
            h1 = self.preprocess1(prev_layer)
        states = [self.preprocess0(net), h1]
        for b in range(self.spec.num_blocks):
            pair = []
            for j in (2 * b, 2 * b + 1):
                out = self.ops[j](states[self.spec.hiddenstate_indices[j]])
                if self.drop_prob > 0 and self.spec.operations[j] != "skip_connect":
                    out = drop_path(out, self.drop_prob, self.training)
                pair.append(out)
            if str(b) in self.concat_proj:
                states.append(self.concat_proj[str(b)](torch.cat(pair, dim=1)))
            else:
                states.append(pair[0] + pair[1])
        outs = [self.combine_reduce[str(k)](states[k]) if str(k) in self.combine_reduce else states[k]
                for k in self.spec.output_states]
        return torch.cat(outs, dim=1)


class TFCellNetwork(nn.Module):
    """A classification network of TF-convention cells (TF-slim ``_build_nasnet_base`` /
    ``_build_pnasnet_base``, TPU AmoebaNet ``_build_network_base``, ENAS ``MicroChild._model``).

    Args:
        normal_cell, reduce_cell: the cells; ``reduce_cell=None`` uses ``normal_cell`` at stride 2.
        num_cells: number of normal cells (``"insert"``) or of all cells (``"replace"``).
        num_conv_filters: F, the filters of the first stage's ops.
        stem: ``"imagenet"`` (3x3/2 conv, two stride-2 stem cells) or ``"cifar"`` (3x3 conv).
        num_classes: classifier outputs.
        filter_scaling_rate: filter multiplier at each reduction.
        auxiliary: add the auxiliary head after the cell before the second reduction (ENAS: after
            the first cell past it); ``forward`` then returns ``(logits, aux_logits or None)``.
        drop_path: drop-path probability (constant; schedules can set ``drop_prob`` on the cells).
        stem_filters: filters of the stem conv (NASNet: ``32 * stem_multiplier`` on ImageNet,
            ``num_conv_filters * stem_multiplier`` on CIFAR).
        num_reduction_layers: reductions after the stem.
        reduction_indices: cell indices of the reductions (default ``calc_reduction_layers``).
        reduction_layout: ``"insert"`` a reduction cell before those normal cells (NASNet, AmoebaNet),
            or ``"replace"`` them by a stride-2 cell (PNASNet, ENAS).
        skip_reduction_layer_input: TF ``skip_reduction_layer_input`` (PNASNet, NASNet-large: 1).
        dropout: dropout before the classifier (TF ``1 - dense_dropout_keep_prob``).
        image_size: input side used to size the auxiliary head (224 ImageNet, 32 CIFAR by default).
        style: ``"nasnet"`` or ``"enas"`` (ENAS feeds the stem twice, uses a bias-free classifier).
    """

    def __init__(self, normal_cell: TFCellSpec, reduce_cell: TFCellSpec | None = None, *, num_cells: int,
                 num_conv_filters: int, stem: Literal["imagenet", "cifar"] = "imagenet",
                 num_classes: int = 1000, filter_scaling_rate: float = 2.0, auxiliary: bool = False,
                 drop_path: float = 0.0, stem_filters: int | None = None, num_reduction_layers: int = 2,
                 reduction_indices: Sequence[int] | None = None,
                 reduction_layout: Literal["insert", "replace"] = "insert",
                 skip_reduction_layer_input: bool = False, dropout: float = 0.0,
                 image_size: int | None = None, style: Literal["nasnet", "enas"] = "nasnet") -> None:
        super().__init__()
        for field, v in (("num_cells", num_cells), ("num_conv_filters", num_conv_filters),
                         ("num_classes", num_classes)):
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"{field}={v!r} must be a positive int")
        if stem not in ("imagenet", "cifar"):
            raise ValueError(f"stem={stem!r}; choose 'imagenet' or 'cifar'")
        if reduction_layout not in ("insert", "replace"):
            raise ValueError(f"reduction_layout={reduction_layout!r}; choose 'insert' or 'replace'")
        if style not in ("nasnet", "enas"):
            raise ValueError(f"style={style!r}; choose 'nasnet' or 'enas' (Auto-DeepLab has its own network)")
        if not 0.0 <= drop_path < 1.0 or not 0.0 <= dropout < 1.0:
            raise ValueError(f"drop_path={drop_path} and dropout={dropout} must lie in [0, 1)")
        red = list(calc_reduction_layers(num_cells, num_reduction_layers) if reduction_indices is None
                   else reduction_indices)
        if any(not 0 <= r < num_cells for r in red) or len(set(red)) != len(red):
            raise ValueError(f"reduction_indices={red} must be distinct cell indices in 0..{num_cells - 1}")
        reduce_spec = normal_cell if reduce_cell is None else reduce_cell
        self.auxiliary, self.style = auxiliary, style
        F0 = num_conv_filters
        # Bookkeeping of cell outputs as (channels, level); level = number of halvings after the stem conv.
        outs: list[tuple[int, int]] = []
        plan: list[tuple[TFCellSpec, int, int, int | None]] = []  # (spec, stride, filters, prev_prev slot)
        normal_slots: list[int] = []  # position in plan of each of the num_cells cells
        if stem == "imagenet":
            C_stem = 32 if stem_filters is None else stem_filters
            self.stem = ConvBN(3, C_stem, 3, 2, 0)
            outs.append((C_stem, 0))
            scaling = 1.0 / filter_scaling_rate ** 2
            for _ in range(2):
                plan.append((reduce_spec, 2, int(F0 * scaling), len(outs) - 2 if len(outs) >= 2 else None))
                outs.append((0, outs[-1][1] + 1))  # channels filled in when built
                scaling *= filter_scaling_rate
        else:
            C_stem = 3 * F0 if stem_filters is None else stem_filters
            self.stem = ConvBN(3, C_stem, 3, 1, 1)
            outs.append((C_stem, 0))
            if style == "enas":  # MicroChild._model: layers = [x, x]
                outs.append((C_stem, 0))
        self.stem_outputs = len(outs) - len(plan)
        scaling = 1.0
        prev_prev: int | None = None
        for i in range(num_cells):
            is_red = i in red
            if reduction_layout == "insert":
                if skip_reduction_layer_input:
                    prev_prev = len(outs) - 2
                if is_red:
                    scaling *= filter_scaling_rate
                    plan.append((reduce_spec, 2, int(F0 * scaling), len(outs) - 2))
                    outs.append((0, outs[-1][1] + 1))
                if not skip_reduction_layer_input:
                    prev_prev = len(outs) - 2
                normal_slots.append(len(plan))
                plan.append((normal_cell, 1, int(F0 * scaling), prev_prev))
                outs.append((0, outs[-1][1]))
            else:
                if is_red:
                    scaling *= filter_scaling_rate
                if skip_reduction_layer_input or not is_red:
                    prev_prev = len(outs) - 2
                normal_slots.append(len(plan))
                plan.append((reduce_spec if is_red else normal_cell, 2 if is_red else 1, int(F0 * scaling),
                             prev_prev))
                outs.append((0, outs[-1][1] + (1 if is_red else 0)))
        # Build the cells in order, now that every input's channels are known.
        self.cells = nn.ModuleList()
        self._prev_prev: list[int | None] = []
        base = self.stem_outputs
        for j, (spec, stride, C, pp) in enumerate(plan):
            pp_slot = None if pp is None or pp < 0 else pp
            C_p, lvl_p = outs[base + j - 1]
            C_pp, down = None, 1
            if pp_slot is not None:
                C_pp, lvl_pp = outs[pp_slot]
                down = 2 ** (lvl_p - lvl_pp)
            cell = TFCell(spec, C_pp, C_p, C, stride=stride, prev_prev_downsample=down, style=style,
                          drop_prob=drop_path)
            outs[base + j] = (cell.C_out, outs[base + j][1])
            self.cells.append(cell)
            self._prev_prev.append(pp_slot)
        self.aux_cell: int | None = None
        self.aux_head: TFAuxHead | None = None
        if auxiliary and len(red) >= 2:
            if style == "nasnet":  # the cell before the second reduction
                target = red[1] - 1
            else:  # ENAS: the cell after the second reduction
                target = red[1] + 1 if reduction_layout == "replace" else red[1]
            if target >= num_cells:
                raise ValueError(f"auxiliary=True needs a cell after reduction {red[1]}; add cells or set "
                                 "auxiliary=False")
            self.aux_cell = normal_slots[target]
            size = image_size or (224 if stem == "imagenet" else 32)
            if stem == "imagenet":
                size = (size - 3) // 2 + 1  # 3x3/2 VALID stem conv
            for _ in range(outs[base + self.aux_cell][1]):
                size = (size + 1) // 2  # SAME stride-2 ops
            C_aux = outs[base + self.aux_cell][0]
            self.aux_head = TFAuxHead(C_aux, num_classes, (size - 5) // 3 + 1, enas=style == "enas")
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.classifier = nn.Linear(outs[-1][0], num_classes, bias=style != "enas")
        self.num_output_features = outs[-1][0]

    @property
    def drop_prob(self) -> float:
        """The drop-path probability of the cells (settable, e.g. for a linear schedule)."""
        return set_drop_prob(self.cells, None)

    @drop_prob.setter
    def drop_prob(self, p: float) -> None:
        set_drop_prob(self.cells, p)

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor | None]:
        s = self.stem(x)
        outputs = [s] * self.stem_outputs
        aux = None
        for j, cell in enumerate(self.cells):
            pp = self._prev_prev[j]
            s = cell(outputs[-1], None if pp is None else outputs[pp])
            outputs.append(s)
            if self.aux_head is not None and j == self.aux_cell and self.training:
                aux = self.aux_head(s)
        logits = self.classifier(self.dropout(torch.flatten(F.adaptive_avg_pool2d(F.relu(s), 1), 1)))
        return (logits, aux) if self.auxiliary else logits


class NASNetMobileNetwork(TFCellNetwork):
    """NASNet-A Mobile, "4 @ 1056" (Zoph et al. 2018, table 2; TF-slim ``mobile_imagenet_config``:
    12 normal cells, F = 44, stem multiplier 1, ``skip_reduction_layer_input=0``, dropout 0.5)."""

    def __init__(self, num_classes: int = 1000, *, num_conv_filters: int = 44, num_cells: int = 12,
                 auxiliary: bool = False, drop_path: float = 0.0, dropout: float = 0.5,
                 image_size: int = 224) -> None:
        super().__init__(NASNET_A_NORMAL, NASNET_A_REDUCE, num_cells=num_cells,
                         num_conv_filters=num_conv_filters, stem="imagenet", num_classes=num_classes,
                         stem_filters=32, auxiliary=auxiliary,
                         drop_path=drop_path, dropout=dropout, image_size=image_size)


class AmoebaNetMobileNetwork(TFCellNetwork):
    """AmoebaNet-A mobile, N = 4, F = 50 (Real et al. 2019, table 2; tensorflow/tpu ``amoeba_net``:
    ImageNet stem with 32 filters and two reduction stem cells, 3N normal cells, 2 reductions)."""

    def __init__(self, num_classes: int = 1000, *, num_conv_filters: int = 50, num_cells: int = 12,
                 auxiliary: bool = False, drop_path: float = 0.0, dropout: float = 0.0,
                 image_size: int = 224) -> None:
        super().__init__(AMOEBANET_A_NORMAL, AMOEBANET_A_REDUCE, num_cells=num_cells,
                         num_conv_filters=num_conv_filters, stem="imagenet", num_classes=num_classes,
                         stem_filters=32, auxiliary=auxiliary, drop_path=drop_path, dropout=dropout,
                         image_size=image_size)


class PNASNetMobileNetwork(TFCellNetwork):
    """PNASNet-5 mobile (Liu et al. 2018, table 5; TF-slim ``pnasnet.mobile_imagenet_config``: 9 cells,
    F = 54, the PNASNet-5 cell at stride 2 for the stem cells and cells 3 and 6,
    ``skip_reduction_layer_input=1``, dropout 0.5)."""

    def __init__(self, num_classes: int = 1000, *, num_conv_filters: int = 54, num_cells: int = 9,
                 auxiliary: bool = False, drop_path: float = 0.0, dropout: float = 0.5,
                 image_size: int = 224) -> None:
        super().__init__(PNASNET_5_CELL, None, num_cells=num_cells, num_conv_filters=num_conv_filters,
                         stem="imagenet", num_classes=num_classes, stem_filters=32, auxiliary=auxiliary,
                         drop_path=drop_path, reduction_layout="replace", skip_reduction_layer_input=True,
                         dropout=dropout, image_size=image_size)


class ENASMicroNetwork(TFCellNetwork):
    """The ENAS micro CIFAR network (Pham et al. 2018, sec. 2.4 and 3.2; ``micro_child.py`` with
    ``scripts/cifar10_micro_final.sh``: 15 normal layers, out_filters 36, 5 blocks, stride-2 cells at
    layers ``num_layers // 3`` and ``2 * (num_layers // 3) + 1``, keep_prob 0.8).

    The stem (3x3 conv to ``3 * out_filters``) feeds the first cell as both inputs; every cell first
    calibrates both inputs to ``out_filters`` and then applies one more ReLU-1x1-BN to ``c_{k-1}``.
    """

    def __init__(self, arc: str | Sequence[int] = ENAS_MICRO_FINAL_ARC, num_classes: int = 10, *,
                 num_layers: int = 15, out_filters: int = 36, num_blocks: int = 5, auxiliary: bool = False,
                 drop_path: float = 0.0, dropout: float = 0.2, image_size: int = 32) -> None:
        if not isinstance(num_layers, int) or num_layers < 3:
            raise ValueError(f"num_layers={num_layers!r}; ENAS places two reductions, give at least 3")
        normal, reduce = enas_micro_specs(arc, num_blocks)
        pool = num_layers // 3
        super().__init__(normal, reduce, num_cells=num_layers + 2, num_conv_filters=out_filters, stem="cifar",
                         num_classes=num_classes, stem_filters=3 * out_filters, auxiliary=auxiliary,
                         drop_path=drop_path, reduction_indices=[pool, 2 * pool + 1],
                         reduction_layout="replace", skip_reduction_layer_input=True, dropout=dropout,
                         image_size=image_size, style="enas")
