"""A differentiable cost model of any supernet: the expected multiply-accumulates of its architecture.

ProxylessNAS (Cai, Zhu & Han, ICLR 2019, Sec. 3.3, Eq. 2-3) makes latency differentiable by taking
its expectation under the architecture distribution: for a mixed block ``j`` with path probabilities
``p_i`` (the softmax of ``alpha``) and per-path cost ``F(o_i^j)``,

    E[latency_j] = sum_i p_i^j * F(o_i^j),      E[latency] = sum_j E[latency_j],

and the expectation is differentiable w.r.t. ``alpha``. nasatlas counts the cost as MACs (the
reference code's ``expected_flops`` target, ``--target_hardware flops``), measured at each site:

* :func:`option_costs` forwards one batch-1 input through the supernet with every option active,
  records the input shape each :class:`~nasatlas.spaces.supernet.MixedOp` receives (a forward
  pre-hook) and which architecture row drove it, then counts every option op's MACs at that shape with
  :func:`nasatlas.spaces.cost.count_macs` (``FlopCounterMode``: convolutions and linear layers).
  ``none`` options and parameter-free ops (identity, pooling) cost 0; padded columns are 0. Sites that
  share one row of architecture parameters add up: an NB201 row holds the edge of every cell (3N cells,
  at three widths), so its cost is the sum over those cells.
* :func:`expected_cost` is ``sum_{group, row} sum_i softmax(alpha)_{row, i} * cost_{row, i}``.
* :func:`fixed_cost` is the part no decision changes (stem, reductions, head): the MACs of one
  single-path network minus its options' costs, so that ``fixed + expected`` is the whole network's
  expected MACs, the reference's ``expected_flops``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from .cost import count_macs
from .supernet import EdgeMix, MixedOp, Mixing, Supernet, dense_mixing

__all__ = ["option_costs", "expected_cost", "fixed_cost", "path_cost"]


def _batch1(input_shape: Sequence[int]) -> tuple[int, ...]:
    shape = tuple(int(s) for s in input_shape)
    if len(shape) == 3:
        shape = (1, *shape)
    if len(shape) != 4 or shape[0] != 1 or any(s < 1 for s in shape):
        raise ValueError(f"input_shape must be (C, H, W) or (1, C, H, W) with positive sizes, got "
                         f"{tuple(input_shape)!r}")
    return shape


def _device(supernet: Supernet) -> torch.device:
    p = next(iter(supernet.parameters()), None)
    return p.device if p is not None else torch.device("cpu")


def _has_macs(op: nn.Module) -> bool:
    """Whether ``op`` holds a convolution or linear layer (nasatlas's MACs count only those)."""
    return any(isinstance(m, (nn.modules.conv._ConvNd, nn.Linear)) for m in op.modules())


def option_costs(supernet: Supernet, input_shape: Sequence[int]) -> dict[str, torch.Tensor]:
    """MACs of every option at its site(s): per group a ``(rows, max_options)`` float64 tensor.

    Args:
        supernet: any :class:`Supernet` whose mixed ops are :class:`MixedOp` modules called as
            ``mixed_op(x, edge_mix)`` with the :class:`EdgeMix` of their row (every built-in one).
        input_shape: the network input, ``(C, H, W)`` or ``(1, C, H, W)``.

    Raises:
        ValueError: when a row drives no site (its cost would be unknown) or a shape is invalid.
    """
    shape = _batch1(input_shape)
    mixing = dense_mixing(supernet)
    where: dict[int, tuple[str, int]] = {id(m): (g, r) for g, rows in mixing.items() for r, m in enumerate(rows)}
    seen: list[tuple[MixedOp, str, int, tuple[int, ...]]] = []

    def hook(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        x = args[0] if args else kwargs.get("x")
        mix = args[1] if len(args) > 1 else kwargs.get("mix")
        if isinstance(mix, EdgeMix) and id(mix) in where and isinstance(x, torch.Tensor):
            g, r = where[id(mix)]
            seen.append((module, g, r, tuple(int(s) for s in x.shape)))  # type: ignore[arg-type]

    handles = [m.register_forward_pre_hook(hook, with_kwargs=True) for m in supernet.modules()
               if isinstance(m, MixedOp)]
    flags = [(m, m.training) for m in supernet.modules()]
    supernet.eval()
    try:
        with torch.no_grad():
            supernet(torch.zeros(shape, device=_device(supernet)), mixing)
    finally:
        for h in handles:
            h.remove()
        for m, flag in flags:
            m.training = flag
    out = {g: torch.zeros(a.shape, dtype=torch.float64) for g, a in supernet.alphas.items()}
    driven = {g: [False] * a.shape[0] for g, a in supernet.alphas.items()}
    for module, g, r, x_shape in seen:
        driven[g][r] = True
        for i, (op, zero) in enumerate(zip(module.ops, module._zero)):
            if not zero and _has_macs(op):
                out[g][r, i] += float(count_macs(op, x_shape))
    for g, flags_g in driven.items():
        missing = [r for r, d in enumerate(flags_g) if not d]
        if missing:
            raise ValueError(f"option_costs: rows {missing} of group {g!r} drive no MixedOp site of the supernet; "
                             "every row must be the EdgeMix of at least one MixedOp call")
    return out


def expected_cost(supernet: Supernet, costs: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """``sum_g sum_r sum_i softmax(alpha_g)_{r,i} * costs[g][r, i]`` (ProxylessNAS Eq. 2-3), a scalar
    differentiable w.r.t. the architecture parameters (float32 on their device)."""
    total: torch.Tensor | None = None
    for g in supernet.alphas:
        if g not in costs:
            raise ValueError(f"expected_cost: costs has no group {g!r}; pass option_costs(supernet, input_shape)")
        logits = supernet.masked_logits(g)
        c = costs[g].to(device=logits.device, dtype=logits.dtype)
        if c.shape != logits.shape:
            raise ValueError(f"expected_cost: costs[{g!r}] has shape {tuple(c.shape)}, alphas {tuple(logits.shape)}")
        term = (torch.softmax(logits, dim=-1) * c).sum()
        total = term if total is None else total + term
    if total is None:
        raise ValueError("expected_cost: the supernet has no architecture parameters")
    return total


def path_cost(costs: Mapping[str, torch.Tensor], choice: Mapping[str, Sequence[int] | np.ndarray]) -> float:
    """The cost of one option per row (``choice[group][row]``): a single path's searchable MACs."""
    return float(sum(float(costs[g][r, int(c)]) for g in costs for r, c in enumerate(np.asarray(choice[g]))))


def fixed_cost(supernet: Supernet, input_shape: Sequence[int], costs: Mapping[str, torch.Tensor],
               mixing: Mixing | None = None) -> float:
    """MACs no decision changes: a single path's total MACs minus its options' ``costs``.

    ``mixing`` is that single path (default: the first option of every row), one option per row.
    """
    shape = _batch1(input_shape)
    if mixing is None:
        mixing = {g: [EdgeMix((0,)) for _ in range(a.shape[0])] for g, a in supernet.alphas.items()}
    choice: dict[str, list[int]] = {}
    for g, rows in mixing.items():
        if any(len(m.active) != 1 for m in rows):
            raise ValueError("fixed_cost: the mixing must hold exactly one active option per row")
        choice[g] = [m.active[0] for m in rows]

    class _Path(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = supernet

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.net(x, mixing)  # type: ignore[no-any-return]

    return float(count_macs(_Path(), shape)) - path_cost(costs, choice)
