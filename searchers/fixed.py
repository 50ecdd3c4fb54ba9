"""Evaluate a fixed list of architectures: published cells, baselines, seed-variance estimates.

Not a search method: it proposes the architectures it is given (or ``sample`` architectures drawn
once from its seeded generator), each ``times`` times in a row, and then stops. Each proposal is a
new trial, so repeated evaluations of one architecture get different evaluation seeds: this is how
a study measures the seed-to-seed spread of one cell (``studies/calibrate.toml``) or puts
published architectures (e.g. DARTS_V2) beside searched ones under the same protocol.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from nasatlas.results import EvalResult

from .base import BlackBoxSearcher, Proposal, objective_value, rng_state, set_rng_state

__all__ = ["FixedList"]


class FixedList(BlackBoxSearcher):
    """Propose given architectures (strings of the space) and/or ``sample`` seeded random ones.

    Args:
        archs: architecture strings in the space's canonical string form.
        sample: how many random architectures to add (drawn once, uniformly, ``over`` as in
            :meth:`~nasatlas.spaces.Space.sample`).
        times: evaluations of each architecture (consecutive trials).
        over: ``"nominal"`` or ``"unique"`` for the sampled architectures.
        every: propose every architecture of the space, in enumeration order (exhaustive studies of a
            small space, e.g. all 15,625 NB201 cells against a table).
    """

    def __init__(self, archs: Sequence[str] = (), sample: int = 0, times: int = 1, over: str = "nominal",
                 every: bool = False) -> None:
        self.every = bool(every)
        self.archs = list(archs)
        self.sample = sample
        self.times = times
        self.over = over

    def _setup(self) -> None:
        if self.times < 1:
            raise ValueError(f"fixed: times={self.times}; give at least 1")
        if self.sample < 0:
            raise ValueError(f"fixed: sample={self.sample}; give 0 or more")
        if not self.archs and not self.sample and not self.every:
            raise ValueError("fixed: give archs = [\"...\"] (architecture strings), sample = N and/or every = true")
        rows: list[np.ndarray] = []
        for i, s in enumerate(self.archs):
            try:
                rows.append(np.asarray(self.space.from_str(s).indices))
            except ValueError as e:
                raise ValueError(f"fixed: archs[{i}] is not an architecture of space {self.space.name!r}: "
                                 f"{e}") from None
        if self.sample:
            rows.extend(self.space.sample(self.rng, self.sample, over=self.over))
        if self.every:
            try:
                rows.extend(self.space.enumerate())
            except ValueError as e:
                raise ValueError(f"fixed: every = true needs an enumerable space: {e}") from None
        self._rows = [tuple(int(v) for v in r) for r in rows]

    def ask(self, n: int = 1) -> list[Proposal]:
        out: list[Proposal] = []
        total = len(self._rows) * self.times
        while len(out) < n and self.n_asked < total:
            out.append(self._next(np.asarray(self._rows[self.n_asked // self.times])))
        return out

    def tell(self, proposal: Proposal, result: EvalResult) -> None:
        """The list does not depend on results."""
        if result.ok:  # results do not steer it, but a non-finite one is still refused
            objective_value(result, self.objective, self.mode)

    def state_dict(self) -> dict[str, Any]:
        return {"rng": rng_state(self.rng), "n_asked": self.n_asked, "rows": [list(r) for r in self._rows]}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        set_rng_state(self.rng, state["rng"])
        self.n_asked = int(state["n_asked"])
        self._rows = [tuple(int(v) for v in r) for r in state["rows"]]
