"""Evaluators: train from scratch, look up a table, zero-cost proxies, cost only."""

from .base import Evaluator, resolve_device, seeded
from .registry import EVALUATORS, get_evaluator, list_evaluators, register_evaluator

__all__ = ["Evaluator", "seeded", "resolve_device", "EVALUATORS", "get_evaluator", "list_evaluators",
           "register_evaluator"]
