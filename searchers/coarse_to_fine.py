"""Coarse-to-fine search: search a coarsened space first, then the lift of its incumbent.

A coarsening (:mod:`nasatlas.spaces.coarsen`) merges options into groups, e.g. NAS-Bench-201's
``{nor_conv_1x1, nor_conv_3x3} -> conv``, ``{avg_pool_3x3, skip_connect} -> cheap``, ``none -> none``:
a map ``pi`` from the dense space ``A`` (5^6 = 15,625 cells) onto a coarse space ``C`` (3^6 = 729).
The search spends a total budget of ``B`` evaluations in two phases:

1. **Coarse phase** (evaluations ``0 .. B1-1``): a searcher from the registry (``phase1``: random,
   evolution or local search) runs on ``C``. Only dense architectures have metrics, so a coarse
   architecture ``c`` is evaluated through a *representative*: one member of its lift ``pi^-1(c)``
   drawn uniformly (one independent draw per decision among its group's members) from this searcher's
   seeded generator. The coarse searcher is told that representative's result as the value of
   ``c``: a one-sample, unbiased estimate of the lift's mean quality, not of its best member. This is
   the honest protocol: every proposal the runner evaluates and logs is a dense architecture, and
   phase 1 costs exactly ``B1`` evaluations.
2. **Fine phase** (evaluations ``B1 .. B-1``): once every phase-1 result is in, the *incumbent* is
   the coarse architecture of the best phase-1 evaluation (ties: the earlier trial). A searcher
   (``phase2``: local search or evolution) runs from scratch on the incumbent's lift, a
   :class:`~nasatlas.spaces.coarsen.RestrictedSpace` whose decision ``j`` offers only the members of
   the incumbent's group at ``j``; its proposals are mapped back to dense rows, so every phase-2
   proposal lies in that lift. A lift can be smaller than ``B - B1`` (NB201: ``2^k`` members for
   ``k`` non-``none`` edges): when the phase-2 searcher deduplicates and has proposed every member
   (every isomorphism class under ``dedupe="canonical"``), phase 2 moves on to the lift of the
   next-best coarse architecture of phase 1 with a fresh phase-2 searcher, then to uniformly drawn
   coarse architectures not yet refined. A phase-2 searcher with ``dedupe="none"`` re-proposes
   members instead and never moves on. When a deduplicating phase-2 searcher proposes a cell that
   phase 1 already evaluated successfully (the incumbent's representative, typically), it is told
   that logged result instead of the runner evaluating the cell again: no evaluation is spent twice
   on one cell, and the best phase-1 cell takes part in phase 2's search.

The switch happens at exactly ``B1`` proposals: while phase-1 results are outstanding (an
asynchronous runner), :meth:`CoarseToFine.ask` returns fewer proposals (``[]``) and waits. With a
``budget`` the searcher proposes exactly ``budget`` architectures, then ``[]``.

The design follows the density argument for coarse-to-fine search: when whole groups of ops behave
alike, ``|C| << |A|`` and a search of ``C`` locates a good region at a fraction of the cost of
searching ``A``; the studies/coarse_to_fine.toml study tests that claim against the same searcher on
the dense space with the same budget (paired by repeat, Wilcoxon signed-rank).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from nasatlas.results import EvalResult
from nasatlas.spaces import Space
from nasatlas.spaces.coarsen import Coarsening, RestrictedSpace, get_coarsening

from ._common import Dedupe, check_choice, row_tuple
from .base import BlackBoxSearcher, Proposal, objective_value, rng_state, set_rng_state

__all__ = ["CoarseToFine", "PHASE1", "PHASE2"]

#: registered searchers allowed in each phase
PHASE1 = ("random", "evolution", "local_search")
PHASE2 = ("local_search", "evolution")
INT63 = (1 << 63) - 1
Row = tuple[int, ...]


@dataclass
class _Region:
    """Phase 2 inside one lift: the coarse row, its restricted space, the fine searcher, the keys it
    proposed (under its dedupe policy) and how many it can propose (None: unbounded)."""

    row: Row
    space: RestrictedSpace
    searcher: BlackBoxSearcher
    keys: Dedupe
    room: int | None

    @property
    def spent(self) -> bool:
        return self.room is not None and len(self.keys.seen) >= self.room


def resolve_b1(b1: Any, budget: int | None) -> int:
    """The number of phase-1 evaluations: ``b1`` itself (an int >= 1) or ``round(b1 * budget)`` for a
    fraction ``0 < b1 <= 1`` (at least 1).

    Raises:
        ValueError: naming ``b1``/``budget`` and the fix.
    """
    if isinstance(b1, bool) or not isinstance(b1, (int, float, np.integer, np.floating)):
        raise ValueError(f"coarse_to_fine: b1={b1!r}; give an integer number of phase-1 evaluations or a fraction "
                         "0 < b1 <= 1 of the budget")
    if isinstance(b1, (int, np.integer)):
        if b1 < 1:
            raise ValueError(f"coarse_to_fine: b1={b1}; phase 1 needs at least 1 evaluation")
        n = int(b1)
    else:
        if not 0.0 < float(b1) <= 1.0:
            raise ValueError(f"coarse_to_fine: b1={b1}; a fraction of the budget must be in (0, 1]")
        if budget is None:
            raise ValueError(f"coarse_to_fine: b1={b1} is a fraction of the total budget, but budget is not set; give "
                             "budget = the study's [budget] evaluations (e.g. params = {budget = 100, b1 = 0.5}) "
                             "or an integer b1")
        n = max(1, int(np.floor(float(b1) * budget + 0.5)))
    if budget is not None and n > budget:
        raise ValueError(f"coarse_to_fine: b1={b1} gives {n} phase-1 evaluations, more than budget={budget}")
    return n


class CoarseToFine(BlackBoxSearcher):
    """Two-phase search: ``phase1`` on the coarse space for ``B1`` evaluations, then ``phase2`` inside
    the lift of the phase-1 incumbent (see the module docstring for the protocol).

    Args:
        coarsening: a preset name from :data:`nasatlas.spaces.coarsen.COARSENINGS` (``"nb201_conv_cheap"``)
            or an inline mapping ``{coarse name: [options]}``.
        b1: phase-1 evaluations: an integer, or a fraction ``0 < b1 <= 1`` of ``budget``.
        budget: the total number of evaluations ``B`` (set it to the study's ``[budget] evaluations``);
            None: phase 2 runs until the study stops it (then ``b1`` must be an integer).
        phase1: the coarse searcher, one of :data:`PHASE1`.
        phase2: the fine searcher, one of :data:`PHASE2`.
        phase1_params: keyword parameters of the coarse searcher.
        phase2_params: keyword parameters of the fine searcher (a fresh one per lift).

    Attributes (after :meth:`start`):
        coarse: the :class:`~nasatlas.spaces.coarsen.Coarsening`.
        n_phase1: ``B1``.
        regions: the coarse rows whose lifts phase 2 has searched, in order (the incumbent first).
    """

    requires = ("product",)

    def __init__(self, coarsening: str | Mapping[str, Any] = "nb201_conv_cheap", b1: int | float = 0.5,
                 budget: int | None = None, phase1: str = "random", phase2: str = "local_search",
                 phase1_params: Mapping[str, Any] | None = None,
                 phase2_params: Mapping[str, Any] | None = None) -> None:
        self.coarsening = coarsening
        self.b1 = b1
        self.budget = budget
        self.phase1 = phase1
        self.phase2 = phase2
        self.phase1_params = phase1_params
        self.phase2_params = phase2_params

    # -- setup ---------------------------------------------------------------------------------
    def _setup(self) -> None:
        check_choice("coarse_to_fine", "phase1", self.phase1, PHASE1)
        check_choice("coarse_to_fine", "phase2", self.phase2, PHASE2)
        if self.budget is not None and (isinstance(self.budget, bool) or not isinstance(self.budget, (int, np.integer))
                                        or self.budget < 1):
            raise ValueError(f"coarse_to_fine: budget={self.budget!r}; give the study's [budget] evaluations "
                             "(an integer >= 1) or leave it unset")
        for key in ("phase1_params", "phase2_params"):
            v = getattr(self, key)
            if v is not None and not isinstance(v, Mapping):
                raise ValueError(f"coarse_to_fine: {key}={v!r}; give a table of keyword parameters")
        self.n_phase1 = resolve_b1(self.b1, None if self.budget is None else int(self.budget))
        self.coarse: Coarsening = get_coarsening(self.space, self.coarsening, who="coarse_to_fine: coarsening")
        # phase 2's searcher is started once on a probe lift (private generator), so that bad
        # phase2_params fail at start, not at B1
        probe = self.coarse.restrict(self.coarse.coarse_space.sample(np.random.default_rng(0), 1)[0])
        self._make(self.phase2, self.phase2_params, "phase2_params").start(
            probe, np.random.default_rng(0), objective=self.objective, mode=self.mode)
        self._inner1 = self._make(self.phase1, self.phase1_params, "phase1_params")
        self._inner1.start(self.coarse.coarse_space, self._child_rng(), objective=self.objective, mode=self.mode)
        policy = str(getattr(self._inner1, "dedupe", "none"))
        room = self._capacity(self.coarse.coarse_space, policy)
        if room is not None and self.n_phase1 > room:
            raise ValueError(f"coarse_to_fine: phase 1 ({self.phase1}, dedupe={policy!r}) cannot propose "
                             f"{self.n_phase1} distinct architectures of a coarse space with {room:,}; lower b1 "
                             "or give phase1_params = {dedupe = 'none'}")
        self._pending1: dict[int, Proposal] = {}          # our trial -> the coarse searcher's proposal
        self._p1: dict[int, tuple[Row, Row, float | None]] = {}  # our trial -> (coarse, dense, value), told
        self._known: dict[Row, float] = {}  # dense row -> value of its first successful phase-1 evaluation
        #: phase-2 proposals answered with a phase-1 result instead of an evaluation
        self.n_reused = 0
        self.regions: list[Row] = []
        self._region: _Region | None = None
        self._pending2: dict[int, tuple[int, Proposal]] = {}  # our trial -> (region index, inner proposal)

    def _make(self, name: str, params: Mapping[str, Any] | None, key: str) -> BlackBoxSearcher:
        from .registry import get_searcher
        try:
            s: BlackBoxSearcher = get_searcher(name, **dict(params or {}))
        except (TypeError, ValueError) as e:
            raise ValueError(f"coarse_to_fine: {key}={dict(params or {})} does not fit searcher {name!r}: "
                             f"{e}") from None
        return s

    def _child_rng(self) -> np.random.Generator:
        """A generator for an inner searcher, seeded by a draw from this searcher's generator (its
        state then travels in the inner searcher's state_dict)."""
        return np.random.default_rng(int(self.rng.integers(0, INT63)))

    @staticmethod
    def _capacity(space: Space, policy: str) -> int | None:
        """How many proposals a searcher deduplicating under ``policy`` can make in ``space`` (None:
        unbounded, or too large to count)."""
        if policy == "string":
            return space.cardinality()
        if policy == "canonical":
            return space.unique_cardinality()
        return None

    # -- ask -----------------------------------------------------------------------------------
    @property
    def phase(self) -> int:
        """1 while fewer than ``B1`` architectures were proposed, else 2."""
        return 1 if self.n_asked < self.n_phase1 else 2

    def ask(self, n: int = 1) -> list[Proposal]:
        out: list[Proposal] = []
        while len(out) < n:
            if self.budget is not None and self.n_asked >= self.budget:
                break
            if self.n_asked < self.n_phase1:
                props = self._inner1.ask(min(n - len(out), self.n_phase1 - self.n_asked))
                if not props:
                    break
                for p in props:
                    rep = self.coarse.sample_lift(p.row, self.rng)[0]
                    q = self._next(rep, p.budget)
                    self._pending1[q.trial] = p
                    out.append(q)
                continue
            region = self._region
            if region is None or region.spent:
                if self._pending1:  # the incumbent needs every phase-1 result
                    break
                if not self._next_region():  # every coarse architecture's lift is spent: the space is exhausted
                    break
                continue
            props = region.searcher.ask(1)
            if not props:
                break
            p = props[0]
            local = np.asarray(p.row, dtype=np.int64)
            region.keys.add(local)
            dense = region.space.to_dense(local)[0]
            known = self._known.get(row_tuple(dense)) if region.keys.active else None
            if known is not None:  # evaluated in phase 1: tell that result, spend no evaluation
                raw = known if self.mode == "max" else -known
                region.searcher.tell(p, EvalResult(status="ok", metrics={self.objective: raw}))
                self.n_reused += 1
                continue
            q = self._next(dense, p.budget)
            self._pending2[q.trial] = (len(self.regions) - 1, p)
            out.append(q)
        return out

    def ranking(self) -> list[Row]:
        """Coarse rows of phase 1 by their best told value (best first; ties: the earlier trial)."""
        best: dict[Row, tuple[float, int]] = {}
        for trial in sorted(self._p1):
            row, _, value = self._p1[trial]
            if value is not None and (row not in best or value > best[row][0]):
                best[row] = (value, trial)
        return sorted(best, key=lambda r: (-best[r][0], best[r][1]))

    def _next_region(self) -> bool:
        """Start phase 2 in the next lift; False when every coarse architecture was refined."""
        done = set(self.regions)
        row = next((r for r in self.ranking() if r not in done), None)
        if row is None:
            row = self._uniform_unrefined(done)
        if row is None:
            return False
        self._start_region(row, self._child_rng())
        return True

    def _uniform_unrefined(self, done: set[Row]) -> Row | None:
        cs = self.coarse.coarse_space
        card = cs.cardinality()
        if len(done) >= card:
            return None
        if card <= 100_000:
            rest = [r for r in (row_tuple(x) for x in cs.enumerate()) if r not in done]
            return rest[int(self.rng.integers(len(rest)))]
        while True:  # |done| << card: rejection sampling ends fast
            cand = row_tuple(cs.sample(self.rng, 1)[0])
            if cand not in done:
                return cand

    def _start_region(self, row: Row, rng: np.random.Generator) -> _Region:
        space = self.coarse.restrict(row)
        searcher = self._make(self.phase2, self.phase2_params, "phase2_params")
        searcher.start(space, rng, objective=self.objective, mode=self.mode)
        policy = str(getattr(searcher, "dedupe", "none"))
        self._known = {}
        for trial in sorted(self._p1):
            _, dense, value = self._p1[trial]
            if value is not None:
                self._known.setdefault(dense, value)
        self.regions.append(row)
        self._region = _Region(row, space, searcher, Dedupe(space, policy), self._capacity(space, policy))
        return self._region

    # -- tell ----------------------------------------------------------------------------------
    def tell(self, proposal: Proposal, result: EvalResult) -> None:
        value = objective_value(result, self.objective, self.mode) if result.ok else None
        t = proposal.trial
        if t in self._pending1:
            p = self._pending1.pop(t)
            self._inner1.tell(p, result)
            self._p1[t] = (row_tuple(p.row), row_tuple(proposal.row), value)
        elif t in self._pending2:
            index, p = self._pending2.pop(t)
            if index == len(self.regions) - 1 and self._region is not None:
                self._region.searcher.tell(p, result)  # a result from an abandoned lift only stays in the log
        else:
            raise ValueError(f"coarse_to_fine: trial {t} is not pending: it was never asked of this searcher or "
                             "was already told")

    # -- state ---------------------------------------------------------------------------------
    @staticmethod
    def _prop(p: Proposal) -> list[Any]:
        return [p.trial, list(p.row), p.budget]

    @staticmethod
    def _unprop(v: Any) -> Proposal:
        return Proposal(int(v[0]), row_tuple(v[1]), None if v[2] is None else dict(v[2]))

    def state_dict(self) -> dict[str, Any]:
        return {
            "rng": rng_state(self.rng), "n_asked": self.n_asked,
            "inner1": self._inner1.state_dict(),
            "pending1": {str(k): self._prop(p) for k, p in self._pending1.items()},
            "p1": {str(k): [list(c), list(d), v] for k, (c, d, v) in self._p1.items()},
            "n_reused": self.n_reused,
            "regions": [list(r) for r in self.regions],
            "inner2": None if self._region is None else self._region.searcher.state_dict(),
            "pending2": {str(k): [g, self._prop(p)] for k, (g, p) in self._pending2.items()},
            "keys": [] if self._region is None else sorted(self._region.keys.seen),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        set_rng_state(self.rng, state["rng"])
        self.n_asked = int(state["n_asked"])
        self._inner1.load_state_dict(state["inner1"])
        self._pending1 = {int(k): self._unprop(v) for k, v in state["pending1"].items()}
        self._p1 = {int(k): (row_tuple(v[0]), row_tuple(v[1]), None if v[2] is None else float(v[2]))
                    for k, v in state["p1"].items()}
        self.n_reused = int(state["n_reused"])
        regions = [row_tuple(r) for r in state["regions"]]
        self.regions, self._region = regions[:-1], None
        if regions:
            region = self._start_region(regions[-1], np.random.default_rng(0))  # its generator is restored next
            region.searcher.load_state_dict(state["inner2"])
            region.keys.seen = set(state["keys"])
        self._pending2 = {int(k): (int(v[0]), self._unprop(v[1])) for k, v in state["pending2"].items()}
