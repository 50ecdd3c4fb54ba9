"""The two searcher protocols: black-box ask/tell and one-shot relax/step/derive.

Black-box searchers follow optuna's ask/tell (Akiba et al. 2019): the runner asks for proposals,
evaluates them with the study's evaluator, and tells each result back. Searchers never evaluate
and never do I/O; every random draw comes from the ``numpy.random.Generator`` given to
:meth:`BlackBoxSearcher.start`. A failed evaluation is told as failed, never as a zero.

One-shot searchers (DARTS, GDAS, ProxylessNAS, ...) train a supernet: the runner builds the
data context and calls ``step(train_batch, val_batch)`` per batch and ``derive()`` per epoch; the
derived architectures then go through the same evaluator and log as any proposal.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np
from nasatlas.results import EvalResult
from nasatlas.spaces import Space

__all__ = ["Proposal", "BlackBoxSearcher", "OneShotSearcher", "objective_value", "rng_state", "set_rng_state"]


@dataclass(frozen=True)
class Proposal:
    """One architecture to evaluate.

    Attributes:
        trial: index of the proposal within the searcher's run (0, 1, 2, ...).
        row: the architecture's decision indices.
        budget: an optional budget override the evaluator honours (e.g. ``{"epochs": 4}`` for
            Hyperband-style fidelity); ``None`` means the study's budget.
    """

    trial: int
    row: tuple[int, ...]
    budget: dict[str, Any] | None = field(default=None)


def objective_value(result: EvalResult, metric: str, mode: str) -> float:
    """The value a searcher maximises: the metric (negated for ``mode="min"``).

    Raises:
        ValueError: if the result is failed (callers must branch on ``result.ok`` first), the
            metric is missing, or it is not finite.
    """
    if not result.ok:
        raise ValueError("a failed result has no objective value; handle result.ok is False first")
    if metric not in result.metrics:
        raise ValueError(f"the result has no metric {metric!r}; it has {sorted(result.metrics)}: set the study's "
                         "objective to one of them")
    v = float(result.metrics[metric])
    if not math.isfinite(v):
        raise ValueError(f"metric {metric!r} is {v}; a searcher cannot be told a non-finite value")
    return v if mode == "max" else -v


def rng_state(rng: np.random.Generator) -> dict[str, Any]:
    """JSON-able state of a Generator (for ``state_dict``)."""
    return dict(rng.bit_generator.state)


def set_rng_state(rng: np.random.Generator, state: Mapping[str, Any]) -> None:
    """Restore a Generator's state saved by :func:`rng_state`."""
    rng.bit_generator.state = dict(state)


class BlackBoxSearcher(ABC):
    """Base class of ask/tell searchers.

    Subclasses store their keyword parameters in ``__init__`` and do no work there
    (scikit-learn's rule); :meth:`start` binds the space, the generator and the objective.
    """

    #: space capabilities the searcher needs (checked in :meth:`start`), e.g. ("neighbours",)
    requires: tuple[str, ...] = ()

    def start(self, space: Space, rng: np.random.Generator, *, objective: str, mode: str = "max") -> None:
        """Bind the searcher to a space, a seeded generator and the metric it optimises."""
        if not isinstance(rng, np.random.Generator):
            raise TypeError("rng must be a numpy.random.Generator")
        if mode not in ("max", "min"):
            raise ValueError(f"mode={mode!r}; allowed: 'max' or 'min'")
        from .capabilities import check_requires
        check_requires(space, self.requires, type(self).__name__)
        self.space = space
        self.rng = rng
        self.objective = objective
        self.mode = mode
        self.n_asked = 0
        self._setup()

    def _setup(self) -> None:
        """Hook for subclasses: initialise search state after :meth:`start`."""

    @abstractmethod
    def ask(self, n: int = 1) -> list[Proposal]:
        """Up to ``n`` new proposals: fewer when the space is exhausted, or, for searchers that work in
        rounds (Hyperband's rungs), while the current round waits for results; ``[]`` after the last."""

    @abstractmethod
    def tell(self, proposal: Proposal, result: EvalResult) -> None:
        """The result of evaluating ``proposal`` (``result.ok`` may be False)."""

    @abstractmethod
    def state_dict(self) -> dict[str, Any]:
        """A JSON-able state from which :meth:`load_state_dict` resumes exactly."""

    @abstractmethod
    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore the state saved by :meth:`state_dict` (after :meth:`start`)."""

    def params(self) -> dict[str, Any]:
        """The constructor's keyword parameters (logged in every row)."""
        return {k: v for k, v in vars(self).items() if k in self._param_names()}

    @classmethod
    def _param_names(cls) -> list[str]:
        import inspect
        return [p for p in inspect.signature(cls.__init__).parameters if p != "self"]

    def _next(self, row: np.ndarray, budget: dict[str, Any] | None = None) -> Proposal:
        p = Proposal(self.n_asked, tuple(int(v) for v in row), budget)
        self.n_asked += 1
        return p


@runtime_checkable
class OneShotSearcher(Protocol):
    """The one-shot protocol: relax a space into a supernet, step on batches, derive an arch.

    The runner, not the searcher, owns data loading and time accounting; the supernet training
    time is charged to the study budget as ``cost_search_seconds``.
    """

    def relax(self, space: Space, net_config: Mapping[str, Any]) -> Any:
        """Build the supernet (a ``torch.nn.Module``) from the space's declaration."""

    def step(self, train_batch: Any, val_batch: Any) -> dict[str, float]:
        """One search step on a training batch and a validation batch; returns losses."""

    def derive(self) -> np.ndarray:
        """The architecture (decision indices) the searcher currently believes best."""
