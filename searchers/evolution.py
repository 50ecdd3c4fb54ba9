"""Regularized (aging) evolution: Real, Aggarwal, Huang & Le, "Regularized Evolution for Image
Classifier Architecture Search", AAAI 2019, Algorithm 1 (Sec. 2).

Algorithm 1, with the ask/tell loop standing in for "train and evaluate":

1. Initialise the population (a queue) with ``P`` random architectures.
2. Each cycle: draw ``S`` population members uniformly at random (with replacement, as in the
   example code released with the paper and NAS-Bench-201's ``R_EA.py``), take the best as
   parent (the first drawn on ties) and propose one mutation of it; when its result is in, push
   the child onto the queue and pop the *oldest* member (aging, not the worst).

Mutation is one uniformly chosen valid neighbour of the parent (``space.neighbours``: every
one-edit change), so every child is valid by construction and the operator is the same on every
space. (NB201's ``R_EA.py`` picks a node, then an edge, then a new op, which weights the edges
of a node with fewer inputs more; here every one-edit change is equally likely.) NAS-Bench-201
(Dong & Yang, ICLR 2020; ``scripts-search/algos/R-EA.sh``) runs it with ``P = 10, S = 3``: the
defaults here.

Failed evaluations are not members of the population (they have no fitness); until ``P``
successful results are in, proposals are uniform random samples. The paper re-evaluates
repeated architectures (``dedupe="none"``, the default); ``"string"``/``"canonical"`` restrict
the mutation to unseen neighbours (a random unseen sample when every neighbour was seen).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from typing import Any

import numpy as np
from nasatlas.results import EvalResult

from ._common import DEDUPE, Dedupe, check_choice, check_int, check_requires, row_tuple
from .base import BlackBoxSearcher, Proposal, objective_value, rng_state, set_rng_state

__all__ = ["RegularizedEvolution"]


class RegularizedEvolution(BlackBoxSearcher):
    """Aging evolution with tournament selection (Real et al. 2019, Algorithm 1).

    Args:
        population_size: ``P``, the number of members kept (the oldest is removed).
        sample_size: ``S``, the tournament size (1 <= S <= P).
        dedupe: ``"none"`` (as in the paper), ``"string"`` or ``"canonical"``.
        max_tries: draws per random proposal before declaring the space exhausted (dedupe only).
    """

    requires = ("neighbours",)

    def __init__(self, population_size: int = 10, sample_size: int = 3, dedupe: str = "none",
                 max_tries: int = 10_000) -> None:
        self.population_size = population_size
        self.sample_size = sample_size
        self.dedupe = dedupe
        self.max_tries = max_tries

    def _setup(self) -> None:
        check_requires(self.space, self.requires, "evolution")
        check_int("evolution", "sample_size", self.sample_size, 1)
        check_int("evolution", "population_size", self.population_size, 1)
        if self.population_size < self.sample_size:
            raise ValueError(f"evolution: population_size={self.population_size} < sample_size={self.sample_size}; "
                             "the tournament samples from the population: give population_size >= sample_size")
        check_choice("evolution", "dedupe", self.dedupe, DEDUPE)
        check_int("evolution", "max_tries", self.max_tries, 1)
        self._dedupe = Dedupe(self.space, self.dedupe)
        #: the population, oldest first: (architecture row, objective value)
        self.population: deque[tuple[tuple[int, ...], float]] = deque()

    # -- ask -----------------------------------------------------------------------------------
    def ask(self, n: int = 1) -> list[Proposal]:
        out = []
        for _ in range(n):
            if len(self.population) < self.population_size:
                row = self._dedupe.sample(self.rng, "evolution", self.max_tries)
            else:
                row = self._mutate(self._tournament())
            self._dedupe.add(row)
            out.append(self._next(row))
        return out

    def _tournament(self) -> tuple[int, ...]:
        """The best of ``S`` members drawn uniformly with replacement (first one on ties)."""
        pop = self.population
        idx = self.rng.integers(0, len(pop), size=self.sample_size)
        best = int(idx[0])
        for i in idx[1:].tolist():
            if pop[i][1] > pop[best][1]:
                best = i
        return pop[best][0]

    def _mutate(self, parent: tuple[int, ...]) -> np.ndarray:
        """One uniformly chosen valid neighbour of ``parent`` (unseen ones under dedupe)."""
        nbrs = self.space.neighbours(np.asarray(parent, dtype=np.int64))
        if self._dedupe.active:
            keep = [i for i in range(len(nbrs)) if self._dedupe.is_new(nbrs[i])]
            if not keep:
                return self._dedupe.sample(self.rng, "evolution", self.max_tries)
            nbrs = nbrs[keep]
        if len(nbrs) == 0:  # an isolated architecture (a space with one option per decision)
            return self._dedupe.sample(self.rng, "evolution", self.max_tries)
        child: np.ndarray = nbrs[int(self.rng.integers(len(nbrs)))]
        return child

    # -- tell ----------------------------------------------------------------------------------
    def tell(self, proposal: Proposal, result: EvalResult) -> None:
        """Push the child onto the queue and pop the oldest member; failed results are skipped."""
        if not result.ok:
            return
        value = objective_value(result, self.objective, self.mode)
        self.population.append((row_tuple(proposal.row), value))
        while len(self.population) > self.population_size:
            self.population.popleft()

    # -- state ---------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"rng": rng_state(self.rng), "n_asked": self.n_asked,
                "population": [[list(r), v] for r, v in self.population], "seen": sorted(self._dedupe.seen)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        set_rng_state(self.rng, state["rng"])
        self.n_asked = int(state["n_asked"])
        self.population = deque((row_tuple(r), float(v)) for r, v in state["population"])
        self._dedupe.seen = set(state["seen"])
