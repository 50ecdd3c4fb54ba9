"""The evaluator registry (lazy; see :class:`nasatlas.spaces.registry.Registry`)."""

from __future__ import annotations

from typing import Any

from nasatlas.spaces.registry import Registry

__all__ = ["EVALUATORS", "DATASETS", "get_evaluator", "list_evaluators", "register_evaluator"]

EVALUATORS: Registry[Any] = Registry("evaluator", {
    "tabular": "nasatlas.evaluators.tabular:TabularEvaluator",
})


#: data sets the ``train`` evaluator and one-shot searchers train on (``[data]`` in a study file)
DATASETS: Registry[Any] = Registry("data set", {
    "digits": "nasatlas.evaluators.datasets:digits",
    "mnist5k": "nasatlas.evaluators.datasets:mnist5k",
    "cifar10": "nasatlas.evaluators.datasets:cifar10",
    "imagenet16-120": "nasatlas.evaluators.datasets:imagenet16_120",
    "shapes": "nasatlas.evaluators.datasets:shapes",
    "cityscapes": "nasatlas.evaluators.datasets:cityscapes",
    "voc": "nasatlas.evaluators.datasets:voc",
})


def get_evaluator(name: str, **params: Any) -> Any:
    """A new evaluator from its registered name and keyword parameters."""
    return EVALUATORS.create(name, **params)


def list_evaluators(pattern: str = "*") -> list[str]:
    return EVALUATORS.names(pattern)


def register_evaluator(name: str, factory: Any = None) -> Any:
    return EVALUATORS.register(name, factory)
