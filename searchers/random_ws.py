"""Random search with weight sharing (RS-WS): Li & Talwalkar, "Random Search and Reproducibility for
Neural Architecture Search", UAI 2019, Sec. 4 — and the single-path supernet training it shares with
SPOS (:mod:`nasatlas.searchers.spos`).

**Supernet training** (Sec. 4, "random search with weight-sharing"): for every mini-batch, an
architecture is drawn uniformly from the space (:meth:`~nasatlas.spaces.supernet.Supernet.sample_row`)
and only its single path through the supernet is computed and updated
(:meth:`~nasatlas.spaces.supernet.Supernet.mixing_for`): one op per edge, none of the others. No
architecture parameters are learned: the supernet still carries its ``alphas`` (every supernet does),
but nothing reads or moves them — :meth:`SinglePathSearcher.arch_updates_now` is False and no
architecture optimiser exists.

**Derivation** (Sec. 4, "architecture selection": many random architectures are evaluated with the
shared weights on held-out data and the best is kept; the reference code screens each on a few
validation batches, then re-evaluates the best few on the whole validation set).
:meth:`RandomWS.search` draws ``n_candidates`` distinct uniform architectures and screens each by its
subnet's accuracy with inherited weights on the latest ``eval_batches`` validation mini-batches (the
half of the data the weights do not train on), using the supernet's BN statistics; the ``top_k`` best
are re-scored after BatchNorm recalibration on the latest ``calibration_batches`` training
mini-batches (SPOS, Guo et al. 2020, Sec. 3.3: statistics gathered over random paths fit no single
subnet well) and the best of those is returned. ``screen_recalibrate = true`` recalibrates in the
screen too (slower; on small supernets the inherited statistics can leave the screen near chance).

**Cheap intermediate derivations** (``search_every``, shared with SPOS). The runner derives after every
epoch and evaluates only the last ``evaluations`` derivations. The full search runs after the final
epoch and, with ``search_every = k > 0``, after every ``k``-th epoch; other epochs return the best of
``quick_candidates`` random architectures by :meth:`SinglePathSearcher.fitness` (recalibrated
accuracy). This relies on the protocol's order — ``end_epoch()`` before ``derive()`` — to know the
epoch.

Every random draw comes from a numpy generator created in :meth:`SinglePathSearcher.setup` from
torch's global generator, which the runner seeds per run, so the run's seed fixes the sampled paths
and the candidates.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from nasatlas.spaces.supernet import Mixing, subnet_accuracy

from .oneshot_base import Batch, OneShotSearcher

__all__ = ["SinglePathSearcher", "RandomWS", "int_param"]


def int_param(searcher: str, field: str, value: Any, low: int) -> int:
    """``value`` as an int, or a ValueError naming the searcher and field when it is not an integer >= ``low``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{searcher}: {field}={value!r} must be an integer >= {low}")
    return int(value)


class SinglePathSearcher(OneShotSearcher):
    """Uniform single-path supernet training and subnet scoring on buffered batches (RS-WS, SPOS).

    Subclasses implement :meth:`search`, the full derivation from the current supernet weights.

    Args:
        eval_batches: how many of the latest validation mini-batches (from the half of the data the
            weights do not train on) are kept to score subnets.
        calibration_batches: how many of the latest training mini-batches are kept to recalibrate
            BatchNorm statistics per scored subnet (0: score with the supernet's statistics).
        search_every: run the full search after every ``k``-th epoch as well as after the final one
            (0: only after the final epoch; 1: after every epoch).
        quick_candidates: random architectures scored at the other epochs (the best is returned).
        **kw: the shared one-shot hyper-parameters (:class:`OneShotSearcher`); the architecture
            optimiser's (``arch_lr``, ...) are accepted and unused: nothing is learned for alpha.
    """

    def __init__(self, *, eval_batches: int = 4, calibration_batches: int = 4, search_every: int = 0,
                 quick_candidates: int = 5, **kw: Any) -> None:
        super().__init__(**kw)
        self.eval_batches = int_param(self.name, "eval_batches", eval_batches, 1)
        self.calibration_batches = int_param(self.name, "calibration_batches", calibration_batches, 0)
        self.search_every = int_param(self.name, "search_every", search_every, 0)
        self.quick_candidates = int_param(self.name, "quick_candidates", quick_candidates, 1)

    def params(self) -> dict[str, Any]:
        return {**super().params(), "eval_batches": self.eval_batches,
                "calibration_batches": self.calibration_batches, "search_every": self.search_every,
                "quick_candidates": self.quick_candidates}

    # -- the one-shot protocol -----------------------------------------------------------------
    def setup(self) -> None:
        """Seeded numpy generator (from torch's seeded global one), batch buffers, no arch optimiser."""
        self.rng = np.random.default_rng(int(torch.randint(2**62, (1,))))
        self.a_optimizer = None   # single-path training learns no architecture parameters
        self._val: deque[Batch] = deque(maxlen=self.eval_batches)
        self._calib: deque[torch.Tensor] = deque(maxlen=max(1, self.calibration_batches))
        self._steps = 0
        #: (steps at derivation, row, score, full search?) of the latest derivation
        self._derived: tuple[int, np.ndarray, float, bool] | None = None
        self.scored = 0
        self.last_row: np.ndarray | None = None

    def arch_updates_now(self) -> bool:
        """Never: the architecture is sampled, not learned (Li & Talwalkar 2019, Sec. 4)."""
        return False

    def arch_step(self, train_batch: Batch, val_batch: Batch) -> dict[str, float]:
        """Nothing to learn: single-path searchers have no architecture update."""
        return {}

    def step(self, train_batch: Batch, val_batch: Batch) -> dict[str, float]:
        """Keep the batches for scoring, then one weight update on ``train_batch`` along a uniformly
        sampled single path."""
        self._net()
        self._val.append(val_batch)
        if self.calibration_batches > 0:
            self._calib.append(train_batch[0])
        self._steps += 1
        return super().step(train_batch, val_batch)

    def weight_step(self, batch: Batch) -> dict[str, float]:
        """SGD on the cross-entropy of one uniformly drawn architecture's subnet (one op per edge)."""
        net = self._net()
        x, y = batch
        row = net.sample_row(self.rng)
        self.last_row = row
        with self.autocast():
            loss = self.loss(x, y, net.mixing_for(row))
        self.sgd_update(loss)
        return {"train_loss": float(loss.detach())}

    # -- scoring --------------------------------------------------------------------------------
    def held_out(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The buffered validation batches, concatenated."""
        if not self._val:
            raise RuntimeError(f"{self.name}: derive() needs held-out batches; call step() at least once first")
        return torch.cat([b[0] for b in self._val]), torch.cat([b[1] for b in self._val])

    def score(self, row: np.ndarray, *, recalibrate: bool = True) -> float:
        """Accuracy (a fraction) of ``row``'s subnet with inherited weights on the held-out batches,
        after BN recalibration on the buffered training batches when ``recalibrate`` (and
        ``calibration_batches`` > 0); the supernet's own statistics are restored afterwards."""
        x, y = self.held_out()
        calib = list(self._calib) if recalibrate and self.calibration_batches > 0 and self._calib else None
        self.scored += 1
        return subnet_accuracy(self._net(), np.asarray(row, dtype=np.int64), x, y, calibration=calib,
                               batch_size=max(256, self.batch_size))

    def fitness(self, row: np.ndarray) -> float:
        """The score the derivation maximises: :meth:`score` after BN recalibration."""
        return self.score(row, recalibrate=True)

    # -- derivation -----------------------------------------------------------------------------
    def search(self) -> tuple[np.ndarray, float]:
        """The fully searched architecture and its score, from the current weights (subclasses)."""
        raise NotImplementedError

    def full_search_now(self) -> bool:
        """Whether this derivation runs the full search: after the final epoch, and after every
        ``search_every``-th one (the runner calls ``end_epoch`` before ``derive``)."""
        done = self.epoch
        return done >= self.epochs or (self.search_every > 0 and done % self.search_every == 0)

    def derive(self) -> np.ndarray:
        """The full :meth:`search` or the quick one (see the module docstring), run once per state of
        the weights: a second call without steps in between (the runner's derivation, then
        ``epoch_report``) returns the same row at no cost."""
        if self._derived is None or self._derived[0] != self._steps:
            self.scored = 0
            full = self.full_search_now()
            if full:
                row, score = self.search()
            else:
                row, score = self.best_of(self.draw(self.quick_candidates), self.fitness)
            self._derived = (self._steps, np.asarray(row, dtype=np.int64).copy(), float(score), full)
        return self._derived[1].copy()

    def eval_mixing(self) -> Mixing:
        """The derived single path (the supernet "is" the subnet it derives)."""
        return self._net().mixing_for(self.derive())

    def extra_report(self) -> dict[str, Any]:
        if self._derived is None:
            return {}
        return {"derived_score": self._derived[2], "scored_candidates": self.scored, "full_search": self._derived[3]}

    # -- helpers for subclasses -------------------------------------------------------------------
    def draw(self, n: int, seen: set[tuple[int, ...]] | None = None) -> np.ndarray:
        """Up to ``n`` distinct valid uniform architectures not in ``seen`` (fewer when ``20 n`` draws
        find no more: a tiny space is exhausted)."""
        space = self.space
        out: list[np.ndarray] = []
        keys = set(seen or ())
        for _ in range(20):
            need = n - len(out)
            if need <= 0:
                break
            rows = space.sample(self.rng, need)
            rows = rows[space.is_valid(rows)]
            for r in rows:
                key = tuple(int(v) for v in r)
                if key not in keys:
                    keys.add(key)
                    out.append(r)
        return np.asarray(out, dtype=np.int64).reshape(-1, space.width)

    def best_of(self, rows: np.ndarray, fitness: Callable[[np.ndarray], float]) -> tuple[np.ndarray, float]:
        """The row of largest fitness (the first on ties) and its fitness."""
        scores = [fitness(r) for r in rows]
        i = int(np.argmax(scores))
        return rows[i], float(scores[i])


class RandomWS(SinglePathSearcher):
    """Random search with weight sharing (Li & Talwalkar 2019, Sec. 4); see the module docstring.

    Args:
        n_candidates: distinct uniform architectures screened per full derivation.
        top_k: of those, how many are re-scored after BN recalibration (the best is returned).
        screen_recalibrate: recalibrate BN statistics in the screen too (default: inherited statistics).
        eval_batches, calibration_batches, search_every, quick_candidates: see :class:`SinglePathSearcher`.
        **kw: the shared one-shot hyper-parameters (:class:`OneShotSearcher`).
    """

    name = "random_ws"
    spaces = ("nb201", "darts", "proxylessnas")

    def __init__(self, *, n_candidates: int = 100, top_k: int = 5, screen_recalibrate: bool = False,
                 **kw: Any) -> None:
        super().__init__(**kw)
        self.n_candidates = int_param(self.name, "n_candidates", n_candidates, 1)
        self.top_k = int_param(self.name, "top_k", top_k, 1)
        if self.top_k > self.n_candidates:
            raise ValueError(f"random_ws: top_k={top_k} > n_candidates={n_candidates}; the re-scored architectures "
                             "are a subset of the candidates: give top_k <= n_candidates")
        if not isinstance(screen_recalibrate, bool):
            raise ValueError(f"random_ws: screen_recalibrate={screen_recalibrate!r} must be true or false")
        self.screen_recalibrate = screen_recalibrate

    def params(self) -> dict[str, Any]:
        return {**super().params(), "n_candidates": self.n_candidates, "top_k": self.top_k,
                "screen_recalibrate": self.screen_recalibrate}

    def search(self) -> tuple[np.ndarray, float]:
        """Screen ``n_candidates`` distinct uniform architectures, re-score the ``top_k`` with
        recalibrated statistics, return the best (the first on ties at either stage)."""
        rows = self.draw(self.n_candidates)
        screen = np.asarray([self.score(r, recalibrate=self.screen_recalibrate) for r in rows])
        top = np.argsort(-screen, kind="stable")[:self.top_k]
        return self.best_of(rows[top], self.fitness)
