"""The evaluator registry (lazy; see :class:`nasatlas.spaces.registry.Registry`)."""

from __future__ import annotations

from typing import Any

from nasatlas.spaces.registry import Registry

__all__ = ["EVALUATORS", "DATASETS", "get_evaluator", "list_evaluators", "register_evaluator"]

EVALUATORS: Registry[Any] = Registry("evaluator", {
    "tabular": "nasatlas.evaluators.tabular:TabularEvaluator",
    "supernet": "nasatlas.evaluators.supernet_eval:SupernetEvaluator",
    "cost": "nasatlas.evaluators.cost_eval:CostEvaluator",
    "train": "nasatlas.evaluators.train:TrainEvaluator",
    "proxy": "nasatlas.evaluators.proxy:ProxyEvaluator",
    "predictor": "nasatlas.evaluators.predictor_eval:PredictorEvaluator",
})


#: data sets the ``train`` evaluator and one-shot searchers train on (``[data]`` in a study file)
DATASETS: Registry[Any] = Registry("data set", {
    "digits": "nasatlas.evaluators.data:digits",
    "mnist5k": "nasatlas.evaluators.data:mnist5k",
    "cifar10": "nasatlas.evaluators.data:cifar10",
    "imagenet16-120": "nasatlas.evaluators.data:imagenet16_120",
    "shapes": "nasatlas.evaluators.data:shapes",
    "cityscapes": "nasatlas.evaluators.data:cityscapes",
    "voc": "nasatlas.evaluators.data:voc",
})


def get_evaluator(name: str, **params: Any) -> Any:
    """A new evaluator from its registered name and keyword parameters."""
    return EVALUATORS.create(name, **params)


def list_evaluators(pattern: str = "*") -> list[str]:
    return EVALUATORS.names(pattern)


def register_evaluator(name: str, factory: Any = None) -> Any:
    return EVALUATORS.register(name, factory)
