"""Local search: White, Nolen & Savani, "Exploring the Loss Landscape in Neural Architecture
Search", UAI 2021, Algorithm 1 (local search / hill climbing), as implemented by the same
authors in NASLib (``naslib/optimizers/discrete/ls``).

Algorithm 1 (best improvement): from the current architecture ``v``, evaluate every architecture
in its neighbourhood ``N(v)``, move to the best of them if it is better than ``v``, and repeat;
when no neighbour is better, ``v`` is a local optimum. As in NASLib, the first ``v`` is the best of
``n_init`` uniform random samples, neighbours are evaluated in a random order, and at a local
optimum the search restarts from a new uniform random sample. ``first_improvement=True`` is the
common variant that moves to the first neighbour (in that random order) that beats ``v``. The
neighbourhood is ``space.neighbours`` (every valid one-edit change), so every proposal is valid.

Dedupe (``"string"``, the default, or ``"canonical"``): an architecture already evaluated is never
proposed again; a neighbour whose value is known takes part in the comparison with that value
(one still being evaluated elsewhere is waited for).
With ``"none"`` every neighbour is evaluated again, as in NASLib.

Failed results have no value: a failed neighbour is never a move target, and a failed start
point ends the climb (the search restarts). In batch mode, a proposal asked for while the climb
waits for results it needs to decide is an extra uniform random sample; the search later uses
such samples (in order) as restart points instead of drawing new ones.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from nasatlas.results import EvalResult

from ._common import DEDUPE, Dedupe, check_choice, check_int, check_requires, row_tuple
from .base import BlackBoxSearcher, Proposal, objective_value, rng_state, set_rng_state

__all__ = ["LocalSearch"]

Row = tuple[int, ...]
#: roles of a proposal: an initial sample, a restart point, a neighbour, a spare random sample
ROLES = ("init", "start", "nbr", "spare")


class LocalSearch(BlackBoxSearcher):
    """Local search with restarts (White et al. 2021, Algorithm 1).

    Args:
        n_init: random samples whose best is the first start point.
        first_improvement: move to the first improving neighbour instead of the best one.
        dedupe: ``"string"`` (default), ``"canonical"`` or ``"none"``.
        max_tries: draws per random proposal before declaring the space exhausted (dedupe only).

    Attributes (after :meth:`start`):
        local_optima: ``(row, value)`` of every local optimum reached, in order.
        n_restarts: restarts from a random sample (after a local optimum or a failed start).
    """

    requires = ("neighbours",)

    def __init__(self, n_init: int = 10, first_improvement: bool = False, dedupe: str = "string",
                 max_tries: int = 10_000) -> None:
        self.n_init = n_init
        self.first_improvement = first_improvement
        self.dedupe = dedupe
        self.max_tries = max_tries

    def _setup(self) -> None:
        check_requires(self.space, self.requires, "local_search")
        check_int("local_search", "n_init", self.n_init, 1)
        check_int("local_search", "max_tries", self.max_tries, 1)
        check_choice("local_search", "dedupe", self.dedupe, DEDUPE)
        if not isinstance(self.first_improvement, bool):
            raise ValueError(f"local_search: first_improvement={self.first_improvement!r}; give true or false")
        self._dedupe = Dedupe(self.space, self.dedupe)
        self.values: dict[str, float | None] = {}      # dedupe key -> value (None: failed), told results
        self.pending: dict[int, tuple[str, int]] = {}  # trial -> (role, epoch)
        self.phase = "init"
        self.init_told = 0
        self.init_best: tuple[Row, float] | None = None
        self.epoch = 0                                 # one per climb step (current point)
        self.current: Row | None = None
        self.current_value: float | None = None
        self.current_state = "none"                    # "pending" | "ok" | "failed" | "none"
        self.queue: list[Row] = []                     # neighbours still to propose, popped from the end
        self.deferred: list[Row] = []                  # neighbours proposed earlier whose value is not in yet
        self.nbr_best: tuple[Row, float] | None = None
        self.spare: list[tuple[Row, float]] = []
        self.local_optima: list[tuple[Row, float]] = []
        self.n_restarts = 0

    # -- ask -----------------------------------------------------------------------------------
    def ask(self, n: int = 1) -> list[Proposal]:
        out = []
        for _ in range(n):
            row, role = self._propose()
            self._dedupe.add(row)
            p = self._next(np.asarray(row, dtype=np.int64))
            self.pending[p.trial] = (role, self.epoch)
            out.append(p)
        return out

    def _random(self) -> Row:
        return row_tuple(self._dedupe.sample(self.rng, "local_search", self.max_tries))

    def _propose(self) -> tuple[Row, str]:
        if self.phase == "init":
            return self._random(), "init"
        while True:
            if self.current_state == "failed":
                self._end_climb(local_optimum=False)
            if self.current is None:
                start = self._restart()
                if start is not None:
                    return start, "start"
                continue
            while self.queue:
                row = self.queue.pop()
                if not self._dedupe.active:
                    return row, "nbr"
                key = self._dedupe.key(row)
                if key not in self._dedupe.seen:
                    return row, "nbr"
                if key not in self.values:  # proposed earlier, result not in yet: wait for it
                    self.deferred.append(row)
                    continue
                value = self.values[key]
                if value is not None:  # evaluated before: compare with its known value, do not propose
                    self._neighbour_value(row, value)
            if self.deferred:
                self._use_deferred()
                if self.queue:  # a first-improvement move on a deferred value started a new step
                    continue
            if self._waiting():
                return self._random(), "spare"
            self._decide()

    def _use_deferred(self) -> None:
        """Compare the deferred neighbours whose results have come in since."""
        keep: list[Row] = []
        for row in self.deferred:
            key = self._dedupe.key(row)
            if key not in self.values:
                keep.append(row)
                continue
            value = self.values[key]
            epoch = self.epoch
            if value is not None:
                self._neighbour_value(row, value)
            if self.epoch != epoch:  # moved: the rest belong to the old step
                return
        self.deferred = keep

    def _waiting(self) -> bool:
        """Results of the current climb step still outstanding."""
        return bool(self.deferred) or any(ep == self.epoch and role in ("start", "nbr")
                                          for role, ep in self.pending.values())

    def _decide(self) -> None:
        """The neighbourhood is evaluated: move to the best improving neighbour or restart."""
        if self.current_state != "ok":
            self._end_climb(local_optimum=False)
        elif self.nbr_best is not None and self.current_value is not None and self.nbr_best[1] > self.current_value:
            self._move_to(*self.nbr_best)
        else:
            self._end_climb(local_optimum=True)

    def _move_to(self, row: Row, value: float) -> None:
        """Make ``row`` the current point and queue its neighbours in a random order."""
        self.epoch += 1
        self.current, self.current_value, self.current_state = row, value, "ok"
        self.nbr_best = None
        self.deferred = []
        self.queue = self._shuffled_neighbours(row)

    def _shuffled_neighbours(self, row: Row) -> list[Row]:
        nbrs = self.space.neighbours(np.asarray(row, dtype=np.int64))
        order = self.rng.permutation(len(nbrs))
        return [row_tuple(r) for r in nbrs[order[::-1]].tolist()]

    def _end_climb(self, *, local_optimum: bool) -> None:
        if local_optimum and self.current is not None and self.current_value is not None:
            self.local_optima.append((self.current, self.current_value))
        self.epoch += 1
        self.current, self.current_value, self.current_state = None, None, "none"
        self.queue = []
        self.deferred = []
        self.nbr_best = None
        self.n_restarts += 1

    def _restart(self) -> Row | None:
        """Start a climb from a random sample: an evaluated spare one if any (returns None), else
        a new one to propose (returned)."""
        if self.spare:
            row, value = self.spare.pop(0)
            self._move_to(row, value)
            return None
        row = self._random()
        self.epoch += 1
        self.current, self.current_value, self.current_state = row, None, "pending"
        self.nbr_best = None
        self.deferred = []
        self.queue = self._shuffled_neighbours(row)
        return row

    def _neighbour_value(self, row: Row, value: float) -> None:
        if self.nbr_best is None or value > self.nbr_best[1]:
            self.nbr_best = (row, value)
        if self.first_improvement and self.current_value is not None and value > self.current_value:
            self._move_to(row, value)

    # -- tell ----------------------------------------------------------------------------------
    def tell(self, proposal: Proposal, result: EvalResult) -> None:
        value = objective_value(result, self.objective, self.mode) if result.ok else None
        row = row_tuple(proposal.row)
        role, epoch = self.pending.pop(proposal.trial, ("spare", -1))
        if self._dedupe.active:
            self.values[self._dedupe.key(row)] = value
        if role == "init":
            self.init_told += 1
            if value is not None and (self.init_best is None or value > self.init_best[1]):
                self.init_best = (row, value)
            if self.phase == "init":
                if self.init_told >= self.n_init and self.init_best is not None:
                    self.phase = "climb"
                    self._move_to(*self.init_best)
                return
            role = "spare"  # a late initial sample: a random sample like any spare one
        if role == "start" and epoch == self.epoch:
            if value is None:
                self.current_state = "failed"
                return
            self.current_value, self.current_state = value, "ok"
            if self.first_improvement and self.nbr_best is not None and self.nbr_best[1] > value:
                self._move_to(*self.nbr_best)
            return
        if role == "nbr" and epoch == self.epoch:
            if value is not None:
                self._neighbour_value(row, value)
            return
        if role in ("spare", "start") and value is not None:  # random samples not (or no longer) in use
            self.spare.append((row, value))

    # -- state ---------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        def pair(p: tuple[Row, float] | None) -> list[Any] | None:
            return None if p is None else [list(p[0]), p[1]]
        return {
            "rng": rng_state(self.rng), "n_asked": self.n_asked, "seen": sorted(self._dedupe.seen),
            "values": self.values, "pending": {str(k): list(v) for k, v in self.pending.items()},
            "phase": self.phase, "init_told": self.init_told, "init_best": pair(self.init_best),
            "epoch": self.epoch, "current": None if self.current is None else list(self.current),
            "current_value": self.current_value, "current_state": self.current_state,
            "queue": [list(r) for r in self.queue], "deferred": [list(r) for r in self.deferred],
            "nbr_best": pair(self.nbr_best),
            "spare": [pair(p) for p in self.spare], "local_optima": [pair(p) for p in self.local_optima],
            "n_restarts": self.n_restarts,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        def pair(p: Any) -> tuple[Row, float] | None:
            return None if p is None else (row_tuple(p[0]), float(p[1]))
        set_rng_state(self.rng, state["rng"])
        self.n_asked = int(state["n_asked"])
        self._dedupe.seen = set(state["seen"])
        self.values = {k: (None if v is None else float(v)) for k, v in state["values"].items()}
        self.pending = {int(k): (str(v[0]), int(v[1])) for k, v in state["pending"].items()}
        self.phase = str(state["phase"])
        self.init_told = int(state["init_told"])
        self.init_best = pair(state["init_best"])
        self.epoch = int(state["epoch"])
        self.current = None if state["current"] is None else row_tuple(state["current"])
        cv = state["current_value"]
        self.current_value = None if cv is None else float(cv)
        self.current_state = str(state["current_state"])
        self.queue = [row_tuple(r) for r in state["queue"]]
        self.deferred = [row_tuple(r) for r in state["deferred"]]
        self.nbr_best = pair(state["nbr_best"])
        self.spare = [p for p in (pair(q) for q in state["spare"]) if p is not None]
        self.local_optima = [p for p in (pair(q) for q in state["local_optima"]) if p is not None]
        self.n_restarts = int(state["n_restarts"])
