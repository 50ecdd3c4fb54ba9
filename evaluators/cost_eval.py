"""Cost-only evaluator: parameters and MACs of the space's evaluation network, no training.

The definitions are those of :func:`nasatlas.spaces.build.cost_report`: ``params`` is the sum of
``numel`` over parameters without an auxiliary head, ``macs`` the Conv2d + Linear multiply-
accumulates at batch 1 in eval mode (FlopCounterMode FLOPs / 2).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nasatlas.results import EvalResult
from nasatlas.spaces import Arch

from .base import Evaluator, seeded

__all__ = ["CostEvaluator"]


class CostEvaluator(Evaluator):
    """Report ``params`` and ``macs`` as metrics (and as ``cost_params``/``cost_macs``).

    Args:
        net: the network preset (default: the space's standard evaluation network) or overrides.
        macs: also count MACs (a forward pass; slower for large inputs).
    """

    def __init__(self, net: str | dict[str, Any] | None = None, macs: bool = True) -> None:
        self.net = net
        self.macs = macs

    def metric_names(self) -> list[str]:
        return ["params", "macs"] if self.macs else ["params"]

    def evaluate(self, arch: Arch, *, budget: Mapping[str, Any], seed: int, device: str = "cpu") -> EvalResult:
        from nasatlas.spaces.build import cost_report
        with seeded(seed):
            rep = cost_report(self.space, arch, self.net, macs=self.macs)
        metrics = {"params": float(rep["params"])}
        costs = {"params": float(rep["params"])}
        if self.macs:
            metrics["macs"] = float(rep["macs"])
            costs["macs"] = float(rep["macs"])
        return EvalResult(status="ok", metrics=metrics, costs=costs, budget=dict(budget))
