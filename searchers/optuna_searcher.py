"""Any Optuna sampler as a nasatlas searcher, through Optuna's ask/tell interface.

Akiba et al. 2019, "Optuna: A Next-generation Hyperparameter Optimization Framework" (KDD),
Sec. 2 (define-by-run, ask/tell) and Sec. 3 (samplers). The samplers offered are the ones that
model categorical parameters natively:

* ``"tpe"`` — the Tree-structured Parzen Estimator (Bergstra et al. 2011, Sec. 4; Optuna's
  default: multivariate for one objective, constant liar for pending trials);
* ``"random"`` — independent uniform sampling over the re-parametrisation;
* ``"gp"`` — Gaussian-process BO (Optuna's ``GPSampler``; categorical kernels);
* ``"nsga2"`` — the genetic algorithm NSGA-II (Deb et al. 2002), here with one objective.

CMA-ES and QMC are refused: they do not model categorical parameters and would silently fall
back to independent random sampling for every decision of a NAS space.

Every point the sampler proposes is a valid architecture, by construction: the space is
presented in the coordinates of :class:`~nasatlas.searchers.optuna_space.OptunaSpace` (one
categorical per decision of a product block; one index via ``unrank`` for a constrained block
such as the trellis path, or via the enumerated isomorphism classes for NAS-Bench-101).

Seeding. The sampler is rebuilt before every ``study.ask`` with a seed drawn from the searcher's
generator (``self.rng``), so the sampler holds no random state of its own: what it proposes is a
function of ``self.rng`` and of the trials in the study. Two runs with the same seed propose the
same architectures.

Resume. Optuna's study and sampler objects are not JSON-able, so ``state_dict`` stores what
determines them: every trial this searcher asked (its architecture row, state ``running`` /
``complete`` / ``fail``, value, and JSON-able system attributes, which NSGA-II uses for its
generations), the study's JSON-able system attributes (NSGA-II's cached parent populations, whose
storage trial ids are translated on load) and ``self.rng``'s state. ``load_state_dict``
re-creates the study by replaying the trials in their original order with ``study.add_trial``
(pending ones as ``running``, so they can still be told), and restores ``self.rng``; the
trajectory then continues exactly as if it had never stopped (checked for every sampler in
``tests/test_searchers_model.py``). With a persistent storage whose
study still holds the trials (``load_if_exists=True``), the trials are checked against the
saved ones instead of being added twice.

I/O. The storage is the one place a nasatlas searcher does I/O (DESIGN §3): ``storage=None``
keeps the study in memory; ``"sqlite:///path.db"`` or any SQLAlchemy RDB URL
(``"postgresql://..."``, ``"mysql://..."``) writes every trial to that database when it is asked
and told, so that optuna-dashboard can watch it or several machines can share one study (with
``load_if_exists=True``). Sharing a study makes the trajectory depend on the other workers'
timing: it is then not reproducible, and ``state_dict`` covers only this searcher's trials.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Literal

from nasatlas.results import EvalResult

from .base import BlackBoxSearcher, Proposal, objective_value, rng_state, set_rng_state
from .capabilities import check_requires
from .optuna_space import OptunaSpace, quiet_optuna

__all__ = ["OptunaSearcher", "SAMPLERS"]

SAMPLERS = ("tpe", "random", "gp", "nsga2")
_REFUSED = {
    "cmaes": "CMA-ES models only float and int parameters; every categorical decision would be sampled by its "
             "independent random fallback",
    "qmc": "QMC sequences cover float and int parameters; categorical decisions would be sampled at random",
}
_STATES = ("running", "complete", "fail")


class OptunaSearcher(BlackBoxSearcher):
    """An Optuna sampler driven through ``study.ask``/``study.tell``.

    Args:
        sampler: ``"tpe"``, ``"random"``, ``"gp"`` or ``"nsga2"``.
        sampler_params: keyword arguments of the sampler's constructor (e.g.
            ``{"n_startup_trials": 20}`` for TPE, ``{"population_size": 20}`` for NSGA-II); not
            ``seed``, which comes from the run's generator.
        storage: ``None`` (in memory) or an Optuna RDB URL such as ``"sqlite:///runs/study.db"``.
        study_name: the study's name in the storage (required with a storage).
        load_if_exists: join a study of that name already in the storage instead of refusing it.
    """

    requires = ("unrank",)

    def __init__(self, sampler: str = "tpe", sampler_params: Mapping[str, Any] | None = None,
                 storage: str | None = None, study_name: str | None = None, load_if_exists: bool = False) -> None:
        self.sampler = sampler
        self.sampler_params = dict(sampler_params) if sampler_params is not None else None
        self.storage = storage
        self.study_name = study_name
        self.load_if_exists = load_if_exists

    # -- setup ------------------------------------------------------------------------------
    def _setup(self) -> None:
        import optuna

        if self.sampler in _REFUSED:
            raise ValueError(f"optuna: sampler={self.sampler!r} is not offered: {_REFUSED[self.sampler]}; "
                             f"allowed: {list(SAMPLERS)}")
        if self.sampler not in SAMPLERS:
            raise ValueError(f"optuna: sampler={self.sampler!r}; allowed: {list(SAMPLERS)}")
        if self.sampler_params is not None and not isinstance(self.sampler_params, dict):
            raise TypeError("optuna: sampler_params must be a table of keyword arguments, e.g. "
                            "{n_startup_trials = 20}")
        if self.sampler_params and "seed" in self.sampler_params:
            raise ValueError("optuna: sampler_params must not set 'seed'; the sampler is seeded from the run's "
                             "generator (set the study's seed instead)")
        if self.storage is not None:
            if not isinstance(self.storage, str) or "://" not in self.storage:
                raise ValueError(f"optuna: storage={self.storage!r}; give None (in memory) or an RDB URL such as "
                                 "'sqlite:///path/to/study.db'")
            if not self.study_name:
                raise ValueError("optuna: a storage needs a study_name (Optuna would otherwise invent a random one, "
                                 "and the run could not be found or resumed)")
        check_requires(self.space, self.requires, "optuna")
        self._ospace = OptunaSpace(self.space, "optuna")
        try:
            self._make_sampler(0)
        except TypeError as e:
            raise ValueError(f"optuna: sampler_params {self.sampler_params} do not fit the {self.sampler!r} "
                             f"sampler: {e}") from None
        direction: Literal["maximize", "minimize"] = "maximize" if self.mode == "max" else "minimize"
        with quiet_optuna():
            try:
                self._study = optuna.create_study(storage=self.storage, study_name=self.study_name,
                                                  direction=direction, load_if_exists=self.load_if_exists,
                                                  sampler=optuna.samplers.RandomSampler(seed=0))
            except optuna.exceptions.DuplicatedStudyError:
                raise ValueError(f"optuna: study {self.study_name!r} already exists in {self.storage}; choose another "
                                 "study_name, delete it (optuna delete-study), or set load_if_exists = true to "
                                 "continue or share it") from None
        if self._study.direction.name.lower() != direction:
            raise ValueError(f"optuna: the existing study {self.study_name!r} is set to "
                             f"{self._study.direction.name.lower()}, but this study's mode is {self.mode!r}")
        #: optuna trial number -> record of a trial this searcher asked
        self._records: dict[int, dict[str, Any]] = {}
        #: proposal trial -> optuna trial number, for trials not yet told
        self._pending: dict[int, int] = {}
        self._last_sampler: Any = None

    def _make_sampler(self, seed: int) -> Any:
        import optuna

        kw = dict(self.sampler_params or {})
        with quiet_optuna():
            if self.sampler == "tpe":
                return optuna.samplers.TPESampler(seed=seed, **kw)
            if self.sampler == "random":
                return optuna.samplers.RandomSampler(seed=seed, **kw)
            if self.sampler == "gp":
                return optuna.samplers.GPSampler(seed=seed, **kw)
            return optuna.samplers.NSGAIISampler(seed=seed, **kw)

    # -- ask / tell -------------------------------------------------------------------------
    def ask(self, n: int = 1) -> list[Proposal]:
        out = []
        with quiet_optuna():
            for _ in range(n):
                sampler = self._make_sampler(int(self.rng.integers(0, 2**32 - 1)))
                _carry_search_space_cache(self._last_sampler, sampler)
                self._study.sampler = self._last_sampler = sampler
                trial = self._study.ask(self._ospace.distributions)
                row = self._ospace.decode(trial.params)
                prop = self._next(row)
                self._records[trial.number] = {"trial": prop.trial, "row": list(prop.row), "state": "running",
                                               "value": None}
                self._pending[prop.trial] = trial.number
                out.append(prop)
        return out

    def tell(self, proposal: Proposal, result: EvalResult) -> None:
        from optuna.trial import TrialState

        number = self._pending.get(proposal.trial)
        if number is None:
            raise ValueError(f"optuna: trial {proposal.trial} is not pending: it was never asked of this searcher "
                             "or was already told")
        with quiet_optuna():
            if not result.ok:
                self._study.tell(number, state=TrialState.FAIL)
                self._records[number].update(state="fail", value=None)
            else:
                v = objective_value(result, self.objective, self.mode)
                raw = v if self.mode == "max" else -v
                self._study.tell(number, raw)
                self._records[number].update(state="complete", value=raw)
        del self._pending[proposal.trial]

    # -- state ------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        frozen = {t.number: t for t in self._study.get_trials(deepcopy=False) if t.number in self._records}
        trials = []
        for number in sorted(self._records):
            rec = dict(self._records[number])
            rec["number"] = number
            t = frozen.get(number)
            rec["trial_id"] = None if t is None else t._trial_id
            rec["system_attrs"] = {} if t is None else {k: v for k, v in t.system_attrs.items() if _jsonable(v)}
            trials.append(rec)
        study_attrs = self._study._storage.get_study_system_attrs(self._study._study_id)
        return {"rng": rng_state(self.rng), "n_asked": self.n_asked, "sampler": self.sampler, "trials": trials,
                "study_system_attrs": {k: v for k, v in study_attrs.items() if _jsonable(v)}}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        from optuna.trial import TrialState, create_trial

        if state.get("sampler", self.sampler) != self.sampler:
            raise ValueError(f"optuna: the state was saved with sampler={state.get('sampler')!r}, this searcher uses "
                             f"{self.sampler!r}")
        saved = sorted(state["trials"], key=lambda r: int(r["number"]))
        for rec in saved:
            if rec["state"] not in _STATES:
                raise ValueError(f"optuna: saved trial {rec['number']} has state {rec['state']!r}; "
                                 f"expected one of {list(_STATES)}")
        existing = self._study.get_trials(deepcopy=False)
        to_state = {"running": TrialState.RUNNING, "complete": TrialState.COMPLETE, "fail": TrialState.FAIL}
        records: dict[int, dict[str, Any]] = {}
        pending: dict[int, int] = {}
        if not existing:
            id_map: dict[int, int] = {}
            with quiet_optuna():
                for new_number, rec in enumerate(saved):
                    self._study.add_trial(create_trial(
                        state=to_state[rec["state"]],
                        value=None if rec["state"] != "complete" else float(rec["value"]),
                        params=self._ospace.encode(rec["row"]), distributions=self._ospace.distributions,
                        system_attrs=dict(rec.get("system_attrs") or {})))
                    records[new_number] = _record(rec)
                    if rec["state"] == "running":
                        pending[int(rec["trial"])] = new_number
                new_ids = [t._trial_id for t in self._study.get_trials(deepcopy=False)]
                id_map = {int(rec["trial_id"]): new_ids[i] for i, rec in enumerate(saved)
                          if rec.get("trial_id") is not None}
                # study-level caches (NSGA-II's parent populations) hold storage trial ids: translate them
                for k, v in (state.get("study_system_attrs") or {}).items():
                    if isinstance(v, list) and v and all(isinstance(x, int) and x in id_map for x in v):
                        v = [id_map[x] for x in v]
                    self._study._storage.set_study_system_attr(self._study._study_id, k, v)
        else:
            by_number = {t.number: t for t in existing}
            for rec in saved:
                t = by_number.get(int(rec["number"]))
                if t is None or t.params != self._ospace.encode(rec["row"]):
                    raise ValueError(f"optuna: study {self._study.study_name!r} in the storage does not hold the saved "
                                     f"trial {rec['number']}; resume into an empty study (a new study_name)")
                records[t.number] = _record(rec)
                if rec["state"] == "running":
                    pending[int(rec["trial"])] = t.number
        self._records = records
        self._pending = pending
        self._last_sampler = None
        set_rng_state(self.rng, state["rng"])
        self.n_asked = int(state["n_asked"])


def _carry_search_space_cache(old: Any, new: Any) -> None:
    """Hand the previous sampler's ``IntersectionSearchSpace`` caches to the new one.

    A sampler rebuilt from scratch recomputes the intersection of every trial's distributions at
    each ask (O(trials), most of an ask's time at 1,000 trials). The cache is a pure function of
    the study's trials, holds no randomness and is not part of any result, so handing it over keeps
    the proposals bit-identical (the resume tests check it) and the cost incremental.
    """
    if old is None or type(old) is not type(new):
        return
    from optuna.search_space import IntersectionSearchSpace

    for name, value in vars(old).items():
        if isinstance(value, IntersectionSearchSpace) and isinstance(getattr(new, name, None), IntersectionSearchSpace):
            setattr(new, name, value)


def _record(rec: Mapping[str, Any]) -> dict[str, Any]:
    return {"trial": int(rec["trial"]), "row": [int(v) for v in rec["row"]], "state": rec["state"],
            "value": None if rec.get("value") is None else float(rec["value"])}


def _jsonable(v: Any) -> bool:
    try:
        json.dumps(v)
    except (TypeError, ValueError):
        return False
    return True
