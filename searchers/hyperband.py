"""Hyperband and BOHB: successive-halving brackets over the training-epochs fidelity.

Hyperband — Li, Jamieson, DeSalvo, Rostamizadeh & Talwalkar 2018, "Hyperband: A Novel
Bandit-Based Approach to Hyperparameter Optimization" (JMLR 18), Sec. 3, Algorithm 1. With
``R = max_epochs / min_epochs`` and ``s_max = floor(log_eta R)``, one Hyperband iteration runs the
brackets ``s = s_max, ..., 0``; bracket ``s`` draws ``n = ceil((s_max + 1) / (s + 1) * eta**s)``
random architectures and runs successive halving on them: rung ``i = 0..s`` evaluates ``n_i``
architectures for ``round(max_epochs * eta**(i - s))`` epochs (at least ``min_epochs``), and the best
``floor(n_i / eta)`` of them (by the objective; failed evaluations are never promoted) are
evaluated again at the next rung. After bracket 0 a new iteration starts with new samples, so the
searcher runs until the study's budget stops it. :func:`hyperband_schedule` gives the arithmetic.

BOHB — Falkner, Klein & Hutter 2018, "BOHB: Robust and Efficient Hyperparameter Optimization at
Scale" (ICML), Sec. 4, Algorithm 2: the same brackets, but each bracket's first-rung
architectures come from a TPE-style density-ratio model ``l(x) / g(x)`` fitted on the
observations of the *largest* budget that has at least ``min_points_in_model + 2`` of them
(``min_points_in_model`` defaults to the number of parameters + 1, as in the paper); a fraction
``random_fraction`` = 1/3 of them (and all of them while no budget has enough points) are uniform
random samples. Honest note on the model: this implementation does not re-implement BOHB's
statsmodels KDE; each budget's model is Optuna's ``TPESampler`` (multivariate, single-objective)
fitted on that budget's observations in a scratch in-memory study, in the valid
re-parametrisation of :class:`~nasatlas.searchers.optuna_space.OptunaSpace` (one categorical per
decision; an index for a constrained block). It keeps BOHB's structure (per-budget models,
largest budget with enough data, the random fraction, ``n_ei_candidates`` = 64 = BOHB's
``num_samples``), but the kernels and bandwidths are Optuna's (a categorical kernel with a prior
weight, Optuna's bandwidth rules) and its good/bad split is Optuna's default (the best 10 %,
capped at 25) rather than BOHB's 15 %; BOHB's ``bandwidth_factor`` and ``min_bandwidth`` have no
counterpart. Each scratch study is seeded from the searcher's generator.

Ask/tell protocol and what counts as an evaluation. Every proposal is one evaluation, whatever
its fidelity: a configuration promoted from 1 to 3 to 9 epochs costs three evaluations of the
study's ``evaluations`` budget (the budget in epochs is in each row's ``budget`` column, and the
training time in its costs). A promoted configuration is trained again from scratch at the larger
budget (the original Hyperband without checkpoint reuse); the ``Proposal.budget`` override is
``{"epochs": e}``. ``ask(n)`` returns up to ``n`` not-yet-asked configurations of the *current*
rung; when all of them are asked but some results are missing it returns an empty list (the
asynchronous runner then waits; the batch-synchronous runner always tells a batch before asking
again). Promotion happens on the first ``ask`` after the rung's last result is told.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from nasatlas.results import EvalResult

from .base import BlackBoxSearcher, Proposal, objective_value, rng_state, set_rng_state
from .capabilities import check_requires
from .optuna_space import OptunaSpace, quiet_optuna

__all__ = ["Hyperband", "BOHB", "hyperband_schedule"]


def hyperband_schedule(min_epochs: int, max_epochs: int, eta: int) -> list[dict[str, Any]]:
    """The brackets of one Hyperband iteration, largest ``s`` first (Li et al. 2018, Algorithm 1).

    Returns one dict per bracket: ``s``, ``sizes`` (configurations per rung) and ``epochs``
    (training epochs per rung).
    """
    _check_fidelity("hyperband", min_epochs, max_epochs, eta)
    ratio = max_epochs / min_epochs
    s_max = 0
    while eta ** (s_max + 1) <= ratio * (1 + 1e-12):
        s_max += 1
    out = []
    for s in range(s_max, -1, -1):
        n = -(-(s_max + 1) * eta**s // (s + 1))  # ceil((s_max + 1) / (s + 1) * eta**s), in exact integers
        sizes = [n]
        for _ in range(s):
            sizes.append(sizes[-1] // eta)
        epochs = [max(min_epochs, int(math.floor(max_epochs / eta ** (s - i) + 0.5))) for i in range(s + 1)]
        out.append({"s": s, "sizes": sizes, "epochs": epochs})
    return out


def _check_fidelity(who: str, min_epochs: Any, max_epochs: Any, eta: Any) -> None:
    for name, v in (("min_epochs", min_epochs), ("max_epochs", max_epochs)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{who}: {name}={v!r}; give an integer number of epochs >= 1")
    if max_epochs < min_epochs:
        raise ValueError(f"{who}: max_epochs={max_epochs} is below min_epochs={min_epochs}")
    if isinstance(eta, bool) or not isinstance(eta, int) or eta < 2:
        raise ValueError(f"{who}: eta={eta!r}; give an integer halving rate >= 2 (the papers use 3)")


class Hyperband(BlackBoxSearcher):
    """Hyperband over random architectures, with ``{"epochs": e}`` as the fidelity.

    Args:
        min_epochs: the smallest training budget: ``s_max`` is the largest ``s`` with
            ``eta**s <= max_epochs / min_epochs``, and the largest bracket's first rung trains
            ``round(max_epochs / eta**s_max)`` epochs (``min_epochs`` itself when the ratio is a
            power of ``eta``, e.g. 1 and 27 for ``eta=3``).
        max_epochs: the largest training budget (every bracket's last rung).
        eta: the halving rate: keep the best ``1/eta`` of each rung.
    """

    requires: tuple[str, ...] = ("sample",)
    _who = "hyperband"

    def __init__(self, min_epochs: int = 1, max_epochs: int = 27, eta: int = 3) -> None:
        self.min_epochs = min_epochs
        self.max_epochs = max_epochs
        self.eta = eta

    def _setup(self) -> None:
        _check_fidelity(self._who, self.min_epochs, self.max_epochs, self.eta)
        check_requires(self.space, self.requires, self._who)
        self.schedule = hyperband_schedule(self.min_epochs, self.max_epochs, self.eta)
        self.iteration = 0  # Hyperband iterations started (0-based)
        self._bracket = -1  # index into self.schedule; -1 before the first ask
        self._rung = 0
        self._entries: list[dict[str, Any]] = []
        self._by_trial: dict[int, int] = {}
        #: one record per rung started: iteration, bracket s, rung i, epochs, size, trials
        self.rung_log: list[dict[str, Any]] = []

    # -- the bracket machinery --------------------------------------------------------------
    @property
    def epochs(self) -> int:
        """The training budget of the current rung."""
        return int(self.schedule[self._bracket]["epochs"][self._rung])

    def _rung_done(self) -> bool:
        return all(e["told"] for e in self._entries)

    def _start_rung(self, rows: list[tuple[int, ...]]) -> None:
        self._entries = [{"row": r, "trial": None, "value": None, "told": False} for r in rows]
        self._by_trial = {}
        b = self.schedule[self._bracket]
        self.rung_log.append({"iteration": self.iteration, "s": b["s"], "rung": self._rung, "epochs": self.epochs,
                              "size": len(rows), "trials": []})

    def _start_bracket(self) -> None:
        self._bracket += 1
        if self._bracket == len(self.schedule):
            self._bracket = 0
            self.iteration += 1
        self._rung = 0
        b = self.schedule[self._bracket]
        self._start_rung(self._sample_configs(int(b["sizes"][0])))

    def _advance(self) -> None:
        """Promote the best ``floor(n_i / eta)`` of a finished rung, or start the next bracket."""
        if self._bracket >= 0:
            b = self.schedule[self._bracket]
            if self._rung < b["s"]:
                keep = len(self._entries) // self.eta
                ok = [i for i, e in enumerate(self._entries) if e["value"] is not None]
                best = sorted(ok, key=lambda i: -self._entries[i]["value"])[:keep]  # stable: earlier trial wins ties
                if best:
                    rows = [self._entries[i]["row"] for i in best]
                    self._rung += 1
                    self._start_rung(rows)
                    return
        self._start_bracket()

    def _sample_configs(self, n: int) -> list[tuple[int, ...]]:
        """``n`` architectures for a bracket's first rung: uniform random (distinct where possible)."""
        taken: set[tuple[int, ...]] = set()
        return [self._random_row(taken) for _ in range(n)]

    def _random_row(self, taken: set[tuple[int, ...]], tries: int = 100) -> tuple[int, ...]:
        row: tuple[int, ...] = ()
        for _ in range(tries):
            row = tuple(int(v) for v in self.space.sample(self.rng, 1)[0])
            if row not in taken:
                break
        taken.add(row)
        return row

    # -- ask / tell -------------------------------------------------------------------------
    def ask(self, n: int = 1) -> list[Proposal]:
        out: list[Proposal] = []
        while len(out) < n:
            if self._bracket < 0 or self._rung_done():
                self._advance()
            idx = next((i for i, e in enumerate(self._entries) if e["trial"] is None), None)
            if idx is None:
                break  # every configuration of this rung is out; promotion waits for their results
            entry = self._entries[idx]
            prop = self._next(np.asarray(entry["row"]), {"epochs": self.epochs})
            entry["trial"] = prop.trial
            self._by_trial[prop.trial] = idx
            self.rung_log[-1]["trials"].append(prop.trial)
            out.append(prop)
        return out

    def tell(self, proposal: Proposal, result: EvalResult) -> None:
        idx = self._by_trial.get(proposal.trial)
        if idx is None:
            raise ValueError(f"{self._who}: trial {proposal.trial} is not pending in the current rung: it was never "
                             "asked of this searcher or was already told")
        value = objective_value(result, self.objective, self.mode) if result.ok else None
        del self._by_trial[proposal.trial]
        entry = self._entries[idx]
        entry["value"], entry["told"] = value, True
        self._observe(entry["row"], self.epochs, value)

    def _observe(self, row: tuple[int, ...], epochs: int, value: float | None) -> None:
        """Hook: a result at a budget (BOHB records it for its per-budget model)."""

    # -- state ------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"rng": rng_state(self.rng), "n_asked": self.n_asked, "iteration": self.iteration,
                "bracket": self._bracket, "rung": self._rung,
                "entries": [{**e, "row": list(e["row"])} for e in self._entries],
                "rung_log": [dict(r, trials=list(r["trials"])) for r in self.rung_log]}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        set_rng_state(self.rng, state["rng"])
        self.n_asked = int(state["n_asked"])
        self.iteration = int(state["iteration"])
        self._bracket = int(state["bracket"])
        self._rung = int(state["rung"])
        bad_rung = self._bracket >= 0 and self._rung > self.schedule[self._bracket]["s"]
        if self._bracket >= len(self.schedule) or bad_rung:
            raise ValueError(f"{self._who}: the saved state does not fit this schedule (min_epochs, max_epochs, eta "
                             "must be those of the saved run)")
        self._entries = [{"row": tuple(int(v) for v in e["row"]),
                          "trial": None if e["trial"] is None else int(e["trial"]),
                          "value": None if e["value"] is None else float(e["value"]), "told": bool(e["told"])}
                         for e in state["entries"]]
        self._by_trial = {e["trial"]: i for i, e in enumerate(self._entries)
                          if e["trial"] is not None and not e["told"]}
        self.rung_log = [dict(r, trials=[int(t) for t in r["trials"]]) for r in state["rung_log"]]


class BOHB(Hyperband):
    """BOHB: Hyperband's brackets with first rungs drawn from a per-budget TPE model.

    Args:
        min_epochs, max_epochs, eta: as :class:`Hyperband`.
        random_fraction: share of first-rung architectures drawn uniformly at random (paper: 1/3).
        min_points_in_model: observations a budget needs (plus 2) before it has a model; default
            the number of parameters of the re-parametrisation + 1 (paper: d + 1).
        n_ei_candidates: samples from ``l(x)`` scored by ``l/g`` per proposal (paper: 64).
    """

    requires = ("sample", "unrank")
    _who = "bohb"

    def __init__(self, min_epochs: int = 1, max_epochs: int = 27, eta: int = 3, random_fraction: float = 1 / 3,
                 min_points_in_model: int | None = None, n_ei_candidates: int = 64) -> None:
        super().__init__(min_epochs=min_epochs, max_epochs=max_epochs, eta=eta)
        self.random_fraction = random_fraction
        self.min_points_in_model = min_points_in_model
        self.n_ei_candidates = n_ei_candidates

    def _setup(self) -> None:
        if not (isinstance(self.random_fraction, (int, float)) and 0.0 <= self.random_fraction <= 1.0):
            raise ValueError(f"bohb: random_fraction={self.random_fraction!r}; give a fraction in [0, 1]")
        if self.min_points_in_model is not None and (isinstance(self.min_points_in_model, bool) or
                                                     not isinstance(self.min_points_in_model, int) or
                                                     self.min_points_in_model < 1):
            raise ValueError(f"bohb: min_points_in_model={self.min_points_in_model!r}; give an integer >= 1 or "
                             "leave it unset (number of parameters + 1)")
        if isinstance(self.n_ei_candidates, bool) or not isinstance(self.n_ei_candidates, int) or \
                self.n_ei_candidates < 1:
            raise ValueError(f"bohb: n_ei_candidates={self.n_ei_candidates!r}; give an integer >= 1")
        super()._setup()
        self._ospace = OptunaSpace(self.space, "bohb")
        self.min_points = self.min_points_in_model or len(self._ospace.distributions) + 1
        self._obs: dict[int, list[tuple[tuple[int, ...], float]]] = {}
        self.n_model_samples = 0

    def _observe(self, row: tuple[int, ...], epochs: int, value: float | None) -> None:
        if value is not None:  # a failed evaluation is left out of the model, never read as a value
            self._obs.setdefault(epochs, []).append((row, value))

    def model_budget(self) -> int | None:
        """The largest budget with at least ``min_points + 2`` observations (BOHB's model), or None."""
        ok = [b for b, obs in self._obs.items() if len(obs) >= self.min_points + 2]
        return max(ok) if ok else None

    def _sample_configs(self, n: int) -> list[tuple[int, ...]]:
        budget = self.model_budget()
        taken: set[tuple[int, ...]] = set()
        study: Any = None
        rows = []
        for _ in range(n):
            if budget is None or self.rng.random() < self.random_fraction:
                rows.append(self._random_row(taken))
                continue
            if study is None:
                study = self._model_study(budget)
            with quiet_optuna():
                trial = study.ask(self._ospace.distributions)
            row = tuple(int(v) for v in self._ospace.decode(trial.params))
            if row in taken:  # the model repeats itself: spend the slot on a fresh random architecture
                row = self._random_row(taken)
            else:
                taken.add(row)
                self.n_model_samples += 1
            rows.append(row)
        return rows

    def _model_study(self, budget: int) -> Any:
        """A scratch in-memory study holding the budget's observations, with a seeded TPE sampler."""
        import optuna
        from optuna.trial import create_trial

        seed = int(self.rng.integers(0, 2**32 - 1))
        with quiet_optuna():
            sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=0, n_ei_candidates=self.n_ei_candidates)
            study = optuna.create_study(direction="maximize", sampler=sampler)
            study.add_trials([create_trial(value=v, params=self._ospace.encode(r),
                                           distributions=self._ospace.distributions) for r, v in self._obs[budget]])
        return study

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state["observations"] = {str(b): [[list(r), v] for r, v in obs] for b, obs in sorted(self._obs.items())}
        state["n_model_samples"] = self.n_model_samples
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        super().load_state_dict(state)
        self._obs = {int(b): [(tuple(int(x) for x in r), float(v)) for r, v in obs]
                     for b, obs in state["observations"].items()}
        self.n_model_samples = int(state.get("n_model_samples", 0))
