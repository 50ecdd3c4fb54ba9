"""Single Path One-Shot (SPOS): Guo, Zhang, Mu, Heng, Liu, Wei & Sun, "Single Path One-Shot Neural
Architecture Search with Uniform Sampling", ECCV 2020.

**Supernet training** (Sec. 3.1-3.2, Eq. 4): every mini-batch trains the single path of one
architecture drawn uniformly from the space — the same training as RS-WS
(:class:`~nasatlas.searchers.random_ws.SinglePathSearcher`); no architecture parameters are learned.

**Architecture search** (Sec. 3.3, Algorithm 1): an evolutionary search over the trained supernet,
whose fitness is a subnet's accuracy on held-out data with inherited weights after BatchNorm
recalibration: before an architecture is scored, the statistics of every BN layer are re-estimated
on a random subset of the training data (Sec. 3.3). Here the held-out data are the latest
``eval_batches`` validation mini-batches and the recalibration uses the latest
``calibration_batches`` training mini-batches. The search:

1. a population of ``population_size`` distinct random architectures;
2. each of ``iterations`` generations: score every new member (a cache keeps each architecture's
   fitness, so none is scored twice), update the ``top_k`` best ever scored, then build the next
   population — ``population_size // 2`` children by **mutation** (a parent drawn from the top-k;
   every decision resampled uniformly with probability ``mutation_prob``) and ``population_size // 2``
   by **uniform crossover** (two parents drawn from the top-k; each decision from either), the rest
   random. A child must be valid (``space.is_valid``) and not scored before; otherwise it is drawn
   again (up to ``10 x`` the number wanted, as in the paper's code), then random architectures fill in;
3. the best architecture ever scored is returned (the first scored on ties).

The paper's experiments run population 50, top-k 10, 20 iterations, mutation probability 0.1, half
crossover and half mutation — 1,000 scored subnets. The defaults here are small for CPU (population
10, top-k 3, 4 iterations: at most 40 scored subnets); the paper's FLOPs/latency constraint is not
applied (a searcher here never reads costs).

**Cheap intermediate derivations** (``search_every``, :class:`~nasatlas.searchers.random_ws.SinglePathSearcher`).
The runner derives after every epoch and evaluates only the last ``evaluations`` derivations. The full
evolution runs after the final epoch and, with ``search_every = k > 0``, after every ``k``-th epoch;
the other epochs return the best of ``quick_candidates`` random architectures under the same
fitness. ``search_every = 1`` runs the evolution after every epoch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .random_ws import SinglePathSearcher, int_param

__all__ = ["SPOS", "mutate", "crossover", "evolve"]

Key = tuple[int, ...]


def mutate(parent: np.ndarray, sizes: np.ndarray, prob: float, rng: np.random.Generator) -> np.ndarray:
    """Each decision resampled uniformly over its options with probability ``prob`` (SPOS, Sec. 3.3;
    the new value may equal the old one, as in the paper's code)."""
    child = np.array(parent, dtype=np.int64, copy=True)
    hit = rng.random(child.shape[0]) < prob
    child[hit] = rng.integers(0, sizes[hit])
    return child


def crossover(a: np.ndarray, b: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Uniform crossover: each decision taken from ``a`` or ``b`` with probability 1/2 (SPOS, Sec. 3.3)."""
    take_a = rng.random(np.asarray(a).shape[0]) < 0.5
    return np.where(take_a, a, b).astype(np.int64)


def _offspring(kind: str, parents: list[np.ndarray], space: Any, sizes: np.ndarray, prob: float,
               rng: np.random.Generator) -> np.ndarray:
    """One candidate child: a mutation of a random parent, a crossover of two, or a random sample."""
    if kind == "mutation":
        return mutate(parents[int(rng.integers(len(parents)))], sizes, prob, rng)
    if kind == "crossover":
        a = parents[int(rng.integers(len(parents)))]
        b = parents[int(rng.integers(len(parents)))]
        return crossover(a, b, rng)
    return np.asarray(space.sample(rng, 1)[0], dtype=np.int64)


def evolve(space: Any, fitness: Callable[[np.ndarray], float], rng: np.random.Generator, *,
           population_size: int, top_k: int, iterations: int, mutation_prob: float,
           initial: np.ndarray) -> tuple[np.ndarray, float, dict[Key, float]]:
    """SPOS's evolutionary search (Guo et al. 2020, Algorithm 1) over ``space`` (see the module docstring).

    Args:
        fitness: the score to maximise (called once per distinct architecture).
        initial: the first population (distinct valid rows, at least one).

    Returns:
        The best row ever scored (the first scored on ties), its fitness and every scored row's
        fitness (in scoring order).
    """
    if len(initial) == 0:
        raise ValueError("spos: the initial population is empty; give at least one architecture")
    sizes = np.asarray(space.sizes, dtype=np.int64)
    cache: dict[Key, float] = {}
    population = [np.asarray(r, dtype=np.int64) for r in initial]
    top: list[Key] = []
    for it in range(iterations):
        for r in population:
            k = _key(r)
            if k not in cache:
                cache[k] = float(fitness(r))
        rank = {k: i for i, k in enumerate(cache)}
        top = sorted(cache, key=lambda k: (-cache[k], rank[k]))[:top_k]
        if it == iterations - 1:
            break
        parents = [np.asarray(k, dtype=np.int64) for k in top]
        taken: set[Key] = set()
        half = population_size // 2
        nxt: list[np.ndarray] = []
        for kind, want in (("mutation", half), ("crossover", half), ("random", population_size)):
            need = min(want, population_size - len(nxt))
            got = 0
            for _ in range(10 * need):   # the paper's code gives up after 10x the number wanted
                if got >= need:
                    break
                child = _offspring(kind, parents, space, sizes, mutation_prob, rng)
                ck = _key(child)
                if ck in cache or ck in taken or not bool(space.is_valid(child[None, :])[0]):
                    continue   # scored already, twice in this generation, or invalid: draw again
                taken.add(ck)
                nxt.append(child)
                got += 1
        if not nxt:   # a tiny space whose every architecture is scored
            break
        population = nxt
    best = top[0]
    return np.asarray(best, dtype=np.int64), cache[best], cache


def _key(row: np.ndarray) -> Key:
    return tuple(int(v) for v in row)


class SPOS(SinglePathSearcher):
    """Single Path One-Shot (Guo et al. 2020): uniform single-path supernet training, then the
    evolutionary search of Algorithm 1 in :meth:`derive`; see the module docstring.

    Args:
        population_size: architectures per generation (paper: 50).
        top_k: the parents' pool, the best ever scored (paper: 10).
        iterations: generations (paper: 20).
        mutation_prob: per-decision resampling probability of a mutation (paper: 0.1).
        eval_batches, calibration_batches, search_every, quick_candidates: the held-out and
            BN-recalibration batches and the cheap intermediate derivations
            (:class:`~nasatlas.searchers.random_ws.SinglePathSearcher`).
        **kw: the shared one-shot hyper-parameters (:class:`~nasatlas.searchers.oneshot_base.OneShotSearcher`).
    """

    name = "spos"
    spaces = ("nb201", "darts", "proxylessnas")

    def __init__(self, *, population_size: int = 10, top_k: int = 3, iterations: int = 4,
                 mutation_prob: float = 0.1, **kw: Any) -> None:
        super().__init__(**kw)
        self.population_size = int_param(self.name, "population_size", population_size, 2)
        self.top_k = int_param(self.name, "top_k", top_k, 1)
        if self.top_k > self.population_size:
            raise ValueError(f"spos: top_k={top_k} > population_size={population_size}; the parents are the best "
                             "of the scored architectures: give top_k <= population_size")
        self.iterations = int_param(self.name, "iterations", iterations, 1)
        if isinstance(mutation_prob, bool) or not isinstance(mutation_prob, (int, float)) \
                or not 0.0 < float(mutation_prob) <= 1.0:
            raise ValueError(f"spos: mutation_prob={mutation_prob!r} must be in (0, 1] (paper: 0.1)")
        self.mutation_prob = float(mutation_prob)

    def params(self) -> dict[str, Any]:
        return {**super().params(), "population_size": self.population_size, "top_k": self.top_k,
                "iterations": self.iterations, "mutation_prob": self.mutation_prob}

    def search(self) -> tuple[np.ndarray, float]:
        """Algorithm 1 from a random initial population, under :meth:`fitness` (held-out accuracy with
        inherited weights after BN recalibration, Sec. 3.3)."""
        row, score, _ = evolve(self.space, self.fitness, self.rng, population_size=self.population_size,
                               top_k=self.top_k, iterations=self.iterations, mutation_prob=self.mutation_prob,
                               initial=self.draw(self.population_size))
        return row, score
