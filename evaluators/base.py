"""The evaluator protocol and the scoped seeding every evaluation runs under.

``evaluate(arch, *, budget, seed, device) -> EvalResult``: metrics (``metric_*`` in the log),
costs (``cost_*``), status and error. Cost is returned, never accumulated in hidden state.
PyTorch's layer initialisation, dropout and Gumbel sampling take no generator, so every
evaluation runs inside :func:`seeded`: ``torch.random.fork_rng`` with ``torch.manual_seed`` —
scoped, never leaking into the caller (DESIGN §4.3).
"""

from __future__ import annotations

import contextlib
import inspect
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from typing import Any

from nasatlas.results import EvalResult
from nasatlas.spaces import Arch, Space

__all__ = ["Evaluator", "seeded", "resolve_device"]


@contextlib.contextmanager
def seeded(seed: int, device: str = "cpu") -> Iterator[None]:
    """Run a block with torch's global generators forked and seeded, restoring them after."""
    import torch
    devices = [torch.device(device).index or 0] if str(device).startswith("cuda") else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(int(seed) & 0x7FFF_FFFF_FFFF_FFFF)
        yield


def resolve_device(device: str | None) -> str:
    """``"auto"``/None picks CUDA when present, else CPU; anything else is checked and returned."""
    import torch
    if device in (None, "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} but CUDA is not available here; use device='cpu' or 'auto'")
    return str(device)


class Evaluator(ABC):
    """Base class: store keyword parameters in ``__init__`` (no work), load in :meth:`setup`."""

    #: the metrics this evaluator reports (names without the ``metric_`` prefix)
    def metric_names(self) -> list[str]:
        return []

    def setup(self, space: Space) -> None:
        """Bind the space and load what evaluations need (tables, data). Called once per process."""
        self.space = space

    @abstractmethod
    def evaluate(self, arch: Arch, *, budget: Mapping[str, Any], seed: int, device: str = "cpu") -> EvalResult:
        """Score one architecture; raise or return ``EvalResult.failed`` on failure."""

    def params(self) -> dict[str, Any]:
        """The constructor's keyword parameters (logged in every row)."""
        names = [p for p in inspect.signature(type(self).__init__).parameters if p != "self"]
        return {k: getattr(self, k) for k in names if hasattr(self, k)}
