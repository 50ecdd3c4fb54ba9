"""Model-based and multi-fidelity searchers: BANANAS, Optuna, Hyperband, BOHB.

A synthetic deterministic objective on NB201: each edge's op adds a fixed score (a structured,
learnable landscape) plus a small deterministic per-architecture perturbation; the fidelity
version subtracts ``C / epochs`` so that longer training scores higher, as real training does.
"""

from __future__ import annotations

import json
import math
import types
from typing import Any

import numpy as np
import pytest
import torch
from nasatlas.results import EvalResult
from nasatlas.searchers import Proposal, get_searcher
from nasatlas.searchers.bananas import Bananas
from nasatlas.searchers.hyperband import hyperband_schedule
from nasatlas.searchers.optuna_space import OptunaSpace
from nasatlas.spaces import Space, get_space
from nasatlas.spaces.primitives import Categorical

NB201 = get_space("nb201")
W = np.random.default_rng(2024).normal(size=(NB201.width, 5))
BEST = float(W.max(axis=1).sum())
C = 2.0

#: cheap settings for the protocol tests (the BANANAS-vs-random test uses the paper's defaults)
CHEAP: dict[str, dict[str, Any]] = {
    "bananas": {"n_init": 4, "k": 3, "epochs": 15},
    "optuna": {"sampler": "tpe", "sampler_params": {"n_startup_trials": 4}},
    "hyperband": {"min_epochs": 1, "max_epochs": 9},
    "bohb": {"min_epochs": 1, "max_epochs": 9, "min_points_in_model": 2},
}
NAMES = list(CHEAP)


def score(row: tuple[int, ...] | np.ndarray) -> float:
    r = np.asarray(row, dtype=np.int64)
    if r.shape != (NB201.width,):  # another space: any deterministic function of the row
        return float(np.sin(r + np.arange(len(r))).sum())
    wiggle = (int(NB201.rank(r)[0]) * 7919 % 101) / 101
    return float(W[np.arange(NB201.width), r].sum()) + 0.01 * wiggle


def result_for(p: Proposal, fail: bool = False) -> EvalResult:
    if fail:
        return EvalResult.failed("diverged", budget=dict(p.budget or {}))
    value = score(p.row)
    if p.budget:
        value -= C / p.budget["epochs"]
    return EvalResult(status="ok", metrics={"acc": value}, budget=dict(p.budget or {}))


def started(name: str, seed: int, space: Space = NB201, **params: Any) -> Any:
    s = get_searcher(name, **{**CHEAP.get(name, {}), **params})
    s.start(space, np.random.default_rng(seed), objective="acc")
    return s


def drive(s: Any, n: int, batch: int = 2, fail_every: int = 0) -> list[Proposal]:
    """Ask in batches and tell each batch back; every ``fail_every``-th result fails."""
    out: list[Proposal] = []
    while len(out) < n:
        props = s.ask(min(batch, n - len(out)))
        assert props, "the searcher stopped proposing"
        for p in props:
            s.tell(p, result_for(p, fail=bool(fail_every) and p.trial % fail_every == fail_every - 1))
        out.extend(props)
    return out


def key(props: list[Proposal]) -> list[tuple[int, tuple[int, ...], Any]]:
    return [(p.trial, p.row, p.budget) for p in props]


# -- the protocol --------------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_valid_and_reproducible(name: str) -> None:
    a = drive(started(name, 7), 16, fail_every=5)
    for p in a:
        NB201.validate(np.asarray(p.row))
    assert [p.trial for p in a] == list(range(16))
    assert key(a) == key(drive(started(name, 7), 16, fail_every=5))
    assert key(a) != key(drive(started(name, 8), 16, fail_every=5))


@pytest.mark.parametrize("name", NAMES)
def test_state_dict_json_round_trip_continues_the_trajectory(name: str) -> None:
    full = started(name, 3)
    ref = drive(full, 10)
    ref_pending = full.ask(2)
    full.tell(ref_pending[0], result_for(ref_pending[0]))
    full.tell(ref_pending[1], result_for(ref_pending[1]))
    ref += ref_pending + drive(full, 9)

    s = started(name, 3)
    head = drive(s, 10)
    pending = s.ask(2)
    s.tell(pending[0], result_for(pending[0]))
    state = json.loads(json.dumps(s.state_dict()))  # one trial still pending at the save
    resumed = started(name, 12345)  # a different generator: everything comes from the state
    resumed.load_state_dict(state)
    resumed.tell(pending[1], result_for(pending[1]))
    assert key(head + pending + drive(resumed, 9)) == key(ref)


@pytest.mark.parametrize("name", NAMES)
def test_results_are_checked(name: str) -> None:
    s = started(name, 0)
    p = s.ask(1)[0]
    nan = types.SimpleNamespace(ok=True, status="ok", metrics={"acc": math.nan}, costs={}, budget={})
    with pytest.raises(ValueError, match="non-finite"):
        s.tell(p, nan)
    with pytest.raises(ValueError, match="no metric 'acc'"):
        s.tell(p, EvalResult(status="ok", metrics={"loss": 1.0}))
    s.tell(p, result_for(p))
    with pytest.raises(ValueError, match="not pending"):
        s.tell(p, result_for(p))  # told twice
    with pytest.raises(ValueError, match="not pending"):
        s.tell(Proposal(999, p.row, p.budget), result_for(p))


@pytest.mark.parametrize("name", NAMES)
def test_failures_are_not_zeros(name: str) -> None:
    s = started(name, 1)
    props = drive(s, 14, fail_every=2)  # half the results fail
    assert all(NB201.is_valid(np.asarray([p.row for p in props])))
    state = s.state_dict()
    if name == "bananas":
        assert sum(v is None for _, _, v in state["told"]) == 7
    elif name == "optuna":
        assert sum(t["state"] == "fail" for t in state["trials"]) == 7
        assert all(t["value"] is None for t in state["trials"] if t["state"] == "fail")
    elif name == "bohb":
        n_obs = sum(len(v) for v in state["observations"].values())
        assert n_obs == 7  # failed evaluations stay out of the model


@pytest.mark.parametrize("name,params,match", [
    ("optuna", {"sampler": "cmaes"}, "categorical"),
    ("optuna", {"sampler": "grid"}, "allowed"),
    ("optuna", {"sampler_params": {"seed": 1}}, "seed"),
    ("optuna", {"sampler_params": {"no_such_option": 1}}, "do not fit"),
    ("optuna", {"storage": "study.db"}, "RDB URL"),
    ("optuna", {"storage": "sqlite:///x.db"}, "study_name"),
    ("bananas", {"acquisition": "ei"}, "acquisition"),
    ("bananas", {"n_init": -1}, "n_init"),
    ("bananas", {"epochs": 0}, "epochs"),
    ("bananas", {"loss": "mse"}, "loss"),
    ("hyperband", {"eta": 1}, "eta"),
    ("hyperband", {"min_epochs": 10, "max_epochs": 3}, "max_epochs"),
    ("hyperband", {"min_epochs": 0.5}, "min_epochs"),
    ("bohb", {"random_fraction": 2.0}, "random_fraction"),
])
def test_bad_parameters(name: str, params: dict[str, Any], match: str) -> None:
    with pytest.raises((ValueError, TypeError), match=match):
        started(name, 0, **params)


class _Constrained(Categorical):
    """A toy block that claims to be constrained but keeps the product rank/unrank."""

    is_product = False


class _NoNeighbours(Categorical):
    def neighbours(self, row: np.ndarray) -> np.ndarray:
        raise NotImplementedError("no one-edit moves declared")


def test_missing_capabilities_name_the_capability() -> None:
    toy = Space("toy", [_Constrained("c", ["a", "b", "c"]), Categorical("d", ["x", "y"])])
    for name in ("optuna", "bohb"):
        with pytest.raises(ValueError, match="'unrank'"):
            started(name, 0, space=toy)
    started("hyperband", 0, space=toy)  # random sampling needs no unrank
    flat = Space("flat", [_NoNeighbours("c", ["a", "b", "c"])])
    with pytest.raises(ValueError, match="'neighbours'"):
        started("bananas", 0, space=flat)
    with pytest.raises(ValueError, match="no graph block"):
        started("bananas", 0, space=get_space("proxylessnas"), encoding="path")


# -- BANANAS ---------------------------------------------------------------------------------
def test_bananas_encoding_choice_and_torch_isolation() -> None:
    assert started("bananas", 0).encoding_used == "path"
    assert started("bananas", 0, space=get_space("proxylessnas")).encoding_used == "onehot"  # no paths in a chain
    adl = started("bananas", 0, space=get_space("autodeeplab"), n_init=3, k=2, epochs=3)
    assert adl.encoding_used == "path"  # cell paths + one-hot trellis
    before = torch.random.get_rng_state()
    props = drive(adl, 6)
    assert torch.equal(before, torch.random.get_rng_state())  # training never touched torch's global generator
    assert adl.n_fits >= 1
    assert all(get_space("autodeeplab").is_valid(np.asarray([p.row for p in props])))
    ucb = started("bananas", 0, acquisition="ucb")
    assert len({p.row for p in drive(ucb, 12)}) == 12  # no architecture proposed twice


def test_bananas_paper_settings_beat_random_search() -> None:
    paper = {"ensemble_size": 5, "num_layers": 10, "layer_width": 20, "lr": 0.01, "epochs": 200, "batch_size": 32,
             "n_candidates": 100, "k": 10, "n_init": 10, "acquisition": "its", "loss": "mape", "encoding": "auto"}
    assert {k: v for k, v in Bananas().params().items() if k in paper} == paper  # the defaults are the paper's
    regret: dict[str, list[float]] = {"bananas": [], "random": []}
    for seed in range(5):
        for name in regret:
            s = get_searcher(name)  # BANANAS with the paper's settings
            s.start(NB201, np.random.default_rng(seed), objective="acc")
            props = drive(s, 40, batch=1)
            regret[name].append(BEST - max(score(p.row) for p in props))
    assert np.mean(regret["bananas"]) < 0.7 * np.mean(regret["random"]), regret


# -- Optuna ----------------------------------------------------------------------------------
@pytest.mark.parametrize("sampler,params", [("random", None), ("gp", {"n_startup_trials": 4}),
                                            ("nsga2", {"population_size": 4})])
def test_optuna_other_samplers_resume_exactly(sampler: str, params: dict[str, Any] | None) -> None:
    ref = drive(started("optuna", 5, sampler=sampler, sampler_params=params), 9, batch=1)
    s = started("optuna", 5, sampler=sampler, sampler_params=params)
    head = drive(s, 6, batch=1)
    r = started("optuna", 0, sampler=sampler, sampler_params=params)
    r.load_state_dict(json.loads(json.dumps(s.state_dict())))
    assert key(head + drive(r, 3, batch=1)) == key(ref)


def test_optuna_sqlite_storage(tmp_path: Any) -> None:
    import optuna

    url = f"sqlite:///{tmp_path / 'study.db'}"
    s = started("optuna", 0, storage=url, study_name="nb201")
    props = drive(s, 6, fail_every=3)
    assert (tmp_path / "study.db").is_file()
    stored = optuna.load_study(study_name="nb201", storage=url).trials
    assert [t.state.name for t in stored] == ["COMPLETE", "COMPLETE", "FAIL"] * 2
    assert [t.value for t in stored if t.value is not None] == [result_for(p).metrics["acc"] for p in props
                                                               if p.trial % 3 != 2]
    with pytest.raises(ValueError, match="already exists"):
        started("optuna", 0, storage=url, study_name="nb201")
    joined = started("optuna", 9, storage=url, study_name="nb201", load_if_exists=True)
    joined.load_state_dict(s.state_dict())  # the stored trials match the saved ones: nothing added twice
    more = drive(joined, 2)
    assert len(optuna.load_study(study_name="nb201", storage=url).trials) == 8
    assert [p.trial for p in more] == [6, 7]  # the trial numbering continues


def test_optuna_non_product_spaces_propose_valid_architectures() -> None:
    adl = get_space("autodeeplab")  # a trellis path (index via unrank) and a cell (categoricals)
    s = started("optuna", 0, space=adl, sampler_params={"n_startup_trials": 3})
    props = drive(s, 8)
    assert all(adl.is_valid(np.asarray([p.row for p in props])))
    os_ = OptunaSpace(adl, "test")
    assert "path/index" in os_.distributions
    for row in adl.sample(np.random.default_rng(0), 5):
        assert np.array_equal(os_.decode(os_.encode(row)), row)
    nb101 = get_space("nb101")  # an index over the enumerated isomorphism classes
    o101 = OptunaSpace(nb101, "test")
    assert o101.distributions["cell/index"].high == nb101.unique_cardinality() - 1  # type: ignore[attr-defined]
    row = o101.decode({"cell/index": 1234})
    nb101.validate(row)
    assert o101.encode(row) == {"cell/index": 1234}
    darts = get_space("darts")  # a product: each node's input pair is one categorical decision
    assert all(type(d).__name__ == "CategoricalDistribution" for d in OptunaSpace(darts, "test").distributions.values())


# -- Hyperband / BOHB ------------------------------------------------------------------------
def test_hyperband_schedule_matches_the_paper() -> None:
    # Li et al. 2018, Table 1 (R = 81, eta = 3)
    sched = hyperband_schedule(1, 81, 3)
    assert [b["sizes"] for b in sched] == [[81, 27, 9, 3, 1], [34, 11, 3, 1], [15, 5, 1], [8, 2], [5]]
    assert [b["epochs"] for b in sched] == [[1, 3, 9, 27, 81], [3, 9, 27, 81], [9, 27, 81], [27, 81], [81]]


def test_hyperband_promotions_follow_successive_halving() -> None:
    s = started("hyperband", 0, min_epochs=1, max_epochs=9, eta=3)
    first = s.ask(100)
    assert len(first) == 9 and {p.budget["epochs"] for p in first} == {1}
    assert s.ask(1) == []  # the rung is out: promotion waits for its results
    fail = first[int(np.argmax([score(p.row) for p in first]))]  # the best one fails: it must not be promoted
    for p in first:
        s.tell(p, result_for(p, fail=p is fail))
    told: dict[int, list[tuple[tuple[int, ...], float | None]]] = {0: [(p.row, None if p is fail else
                                                                        result_for(p).metrics["acc"]) for p in first]}
    sizes, epochs, rung_of = [9], [1], 0
    while len(sizes) < 6:
        props = s.ask(100)
        sizes.append(len(props))
        epochs.append(props[0].budget["epochs"])
        assert len({p.budget["epochs"] for p in props}) == 1
        prev = told.get(rung_of)
        if s.rung_log[-1]["rung"] > 0 and prev is not None:  # a promotion: the top floor(n / eta) of the last rung
            ok = sorted((v, r) for r, v in prev if v is not None)[::-1]
            assert {p.row for p in props} == {r for _, r in ok[:len(prev) // 3]}
            assert fail.row not in {p.row for p in props}
        for p in props:
            s.tell(p, result_for(p))
        rung_of += 1
        told[rung_of] = [(p.row, result_for(p).metrics["acc"]) for p in props]
    assert sizes == [9, 3, 1, 5, 1, 3]
    assert epochs == [1, 3, 9, 3, 9, 9]
    assert [(r["s"], r["rung"]) for r in s.rung_log] == [(2, 0), (2, 1), (2, 2), (1, 0), (1, 1), (0, 0)]
    assert s.ask(1)[0].budget == {"epochs": 1}  # a new Hyperband iteration starts


def test_bohb_samples_from_its_model_once_a_budget_has_data() -> None:
    s = started("bohb", 0, min_epochs=1, max_epochs=9, eta=3, min_points_in_model=None)
    assert s.min_points == NB201.width + 1
    props = drive(s, 60, batch=3)
    assert s.model_budget() is not None
    assert s.n_model_samples > 0
    assert all(NB201.is_valid(np.asarray([p.row for p in props])))
