"""Conformance of every registered black-box searcher, plus per-searcher behaviour.

Everything runs on the ``nb201`` space against synthetic, deterministic objectives built from seeded
tables over its 15,625 ranks (no files are read):

* ``TABLE``: an independent random score per architecture (no structure), for conformance;
* ``structured``: a sum of per-decision scores plus small per-architecture noise, so neighbouring
  architectures have correlated scores and local methods should beat random search.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from nasatlas.results import EvalResult
from nasatlas.searchers import get_searcher, list_searchers
from nasatlas.searchers.base import BlackBoxSearcher, Proposal
from nasatlas.searchers.registry import SEARCHERS
from nasatlas.spaces import Space, build, get_space

REPO = Path(__file__).resolve().parents[1]
SPACE = get_space("nb201")
RADIX = 5 ** np.arange(5, -1, -1)
TABLE = np.random.default_rng(2024).random(15_625)
W = np.random.default_rng(7).normal(size=(6, 5))
NOISE = 0.1 * np.random.default_rng(8).normal(size=15_625)
METRIC = "score"

#: parameters for searchers that need some (or that are slow with their defaults); others use defaults
PARAMS: dict[str, dict[str, Any]] = {
    "fixed": {"sample": 64},
    "random_largest": {"net": "tiny", "k": 3},
    "reinforce": {"learning_rate": 0.1},
    "coarse_to_fine": {"budget": 40, "b1": 0.25},  # B1 = 10: the conformance runs cross the phase switch
}
#: searchers whose tell ignores results, so they cannot notice a non-finite value (not this change's files)
IGNORE_VALUES = {"random", "fixed"}
#: the black-box searchers (one-shot searchers follow relax/step/derive: tests/test_darts_search.py and others)
NAMES = [n for n in list_searchers() if not callable(getattr(SEARCHERS.factory(n), "relax", None))]
REAL_COST_REPORT = build.cost_report
_COST_MEMO: dict[tuple[str, str, str, bool], dict[str, Any]] = {}


@pytest.fixture(autouse=True)
def memoised_cost_report(monkeypatch: pytest.MonkeyPatch) -> None:
    """Counting builds a network (~20 ms, ~1 s with MACs); the counts are deterministic, so the many
    fresh searcher instances in this file share one memo instead of rebuilding the same networks."""
    def memo(space: Space, arch: Any, net: Any = None, macs: bool = True) -> dict[str, Any]:
        key = (space.name, space.to_str(np.asarray(arch)), repr(net), macs)
        if key not in _COST_MEMO:
            _COST_MEMO[key] = REAL_COST_REPORT(space, arch, net, macs=macs)
        return _COST_MEMO[key]
    monkeypatch.setattr(build, "cost_report", memo)


def rank(row: Any) -> int:
    return int(np.dot(np.asarray(row, dtype=np.int64), RADIX))


def structured(row: Any) -> float:
    r = np.asarray(row, dtype=np.int64)
    return float(W[np.arange(6), r].sum() + NOISE[rank(r)])


def ok(value: float) -> EvalResult:
    return EvalResult(status="ok", metrics={METRIC: float(value)})


def make(name: str, **override: Any) -> BlackBoxSearcher:
    s: BlackBoxSearcher = get_searcher(name, **{**PARAMS.get(name, {}), **override})
    return s


def started(name: str, seed: int, space: Space = SPACE, **override: Any) -> BlackBoxSearcher:
    s = make(name, **override)
    s.start(space, np.random.default_rng(seed), objective=METRIC, mode="max")
    return s


def drive(s: BlackBoxSearcher, n: int, result: Callable[[tuple[int, ...]], EvalResult],
          batch: int = 1) -> list[list[int]]:
    """Ask ``batch``, tell each result, repeat until ``n`` evaluations (or the searcher stops)."""
    rows: list[list[int]] = []
    while len(rows) < n:
        props = s.ask(min(batch, n - len(rows)))
        if not props:
            break
        for p in props:
            rows.append(list(p.row))
            s.tell(p, result(p.row))
    return rows


def table_result(table: np.ndarray) -> Callable[[tuple[int, ...]], EvalResult]:
    return lambda row: ok(table[rank(row)])


def trajectories(names: list[str], seed: int = 3, n: int = 12, batch: int = 1) -> dict[str, list[list[int]]]:
    """Proposals of each searcher on ``TABLE`` (also run in a fresh process)."""
    return {name: drive(started(name, seed), n, table_result(TABLE), batch) for name in names}


# -- conformance: every registered searcher ------------------------------------------------------
def test_synthetic_rank_matches_space_rank() -> None:
    rows = SPACE.sample(np.random.default_rng(0), 50)
    assert [rank(r) for r in rows] == SPACE.rank(rows)


@pytest.mark.parametrize("batch", [1, 4])
@pytest.mark.parametrize("name", NAMES)
def test_proposals_valid_and_seeded(name: str, batch: int) -> None:
    a = trajectories([name], seed=11, n=16, batch=batch)[name]
    assert len(a) == 16
    assert SPACE.is_valid(np.asarray(a, dtype=np.int64)).all()
    assert a == trajectories([name], seed=11, n=16, batch=batch)[name], "same seed must give the same proposals"
    assert a != trajectories([name], seed=12, n=16, batch=batch)[name], "the seed must matter"


def test_same_proposals_in_fresh_process() -> None:
    code = ("import json, sys; sys.path.insert(0, sys.argv[2]); "
            "from tests.test_searchers_conformance import trajectories; "
            "print(json.dumps(trajectories(json.loads(sys.argv[1]))))")
    out = subprocess.run([sys.executable, "-c", code, json.dumps(NAMES), str(REPO)], capture_output=True, text=True,
                         check=True, cwd=REPO).stdout
    assert json.loads(out.strip().splitlines()[-1]) == trajectories(NAMES)


@pytest.mark.parametrize("batch", [1, 4])
@pytest.mark.parametrize("name", NAMES)
def test_state_dict_resume_matches_straight_run(name: str, batch: int) -> None:
    n, k = 24, 8
    res = table_result(TABLE)
    straight = drive(started(name, 5), n, res, batch)
    first = started(name, 5)
    head = drive(first, k, res, batch)
    state = json.loads(json.dumps(first.state_dict()))
    resumed = started(name, 999)  # a different generator: the state must restore it
    resumed.load_state_dict(state)
    assert head + drive(resumed, n - k, res, batch) == straight


@pytest.mark.parametrize("name", NAMES)
def test_failures_are_not_zeros(name: str) -> None:
    """Told as failed, an architecture must not act like a zero: with every value negative, a zero
    would be the best result seen, so a searcher that reads results behaves differently."""
    n = 30
    neg = TABLE - 2.0

    def run(failed_as: str | None, table: np.ndarray = neg) -> list[list[int]]:
        def result(row: tuple[int, ...]) -> EvalResult:
            if failed_as is not None and rank(row) % 4 == 0:
                return EvalResult.failed("diverged") if failed_as == "failed" else ok(0.0)
            return ok(table[rank(row)])
        return drive(started(name, 21), n, result)

    told_failed, told_zero = run("failed"), run("zero")
    no_failures, reversed_values = run(None), run(None, -3.0 - neg)  # the same values in reverse order
    assert SPACE.is_valid(np.asarray(told_failed, dtype=np.int64)).all()
    if no_failures == reversed_values:  # the searcher does not read values (within this horizon)
        assert told_failed == no_failures
    else:
        assert told_failed != told_zero, f"{name} treats a failed result like a zero"


@pytest.mark.parametrize("name", NAMES)
def test_non_finite_value_raises(name: str) -> None:
    for bad_value in (float("nan"), float("inf")):
        s = started(name, 1)
        drive(s, 3, table_result(TABLE))
        p = s.ask(1)[0]
        bad = ok(0.5)
        object.__setattr__(bad, "metrics", {METRIC: bad_value})  # bypass EvalResult's own check
        with pytest.raises(ValueError, match="finite|nan|inf"):
            s.tell(p, bad)


# -- per-searcher behaviour -----------------------------------------------------------------------
def best_of_run(name: str, seed: int, n: int, **override: Any) -> float:
    s = started(name, seed, **override)
    rows = drive(s, n, lambda row: ok(structured(row)))
    return max(structured(r) for r in rows)


def test_evolution_and_local_search_beat_random_on_structured_objective() -> None:
    seeds = range(30)
    rand = np.mean([best_of_run("random", s, 100) for s in seeds])
    evo = np.mean([best_of_run("evolution", s, 100, population_size=10, sample_size=3) for s in seeds])
    ls = np.mean([best_of_run("local_search", s, 100) for s in seeds])
    optimum = W.max(axis=1).sum()
    assert evo > rand and ls > rand, (evo, ls, rand, optimum)


class RecordingLocalSearch:
    """Wraps a LocalSearch's moves to check the climb against the objective."""

    def __init__(self, s: Any) -> None:
        self.moves: list[tuple[tuple[int, ...] | None, tuple[int, ...], float]] = []
        inner = s._move_to

        def move_to(row: tuple[int, ...], value: float) -> None:
            self.moves.append((s.current, row, value))
            inner(row, value)
        s._move_to = move_to


@pytest.mark.parametrize("first_improvement,batch", [(False, 1), (True, 1), (False, 4)])
def test_local_search_climbs_reaches_local_optima_and_restarts(first_improvement: bool, batch: int) -> None:
    s: Any = started("local_search", 4, first_improvement=first_improvement)
    rec = RecordingLocalSearch(s)
    rows = drive(s, 300, lambda row: ok(structured(row)), batch)
    assert len({tuple(r) for r in rows}) == len(rows), "dedupe='string' must never propose an architecture twice"
    assert s.local_optima and s.n_restarts >= 1
    for row, value in s.local_optima:
        assert value == structured(row)
        assert all(structured(nb) <= value for nb in SPACE.neighbours(np.asarray(row))), "not a local optimum"
    climbs = [(prev, row, v) for prev, row, v in rec.moves if prev is not None]
    assert climbs
    for prev, row, value in climbs:
        nbrs = [structured(nb) for nb in SPACE.neighbours(np.asarray(prev))]
        assert int(SPACE.distance(np.asarray(prev), np.asarray(row), kind="hamming")) == 1
        assert value == structured(row) > structured(prev)
        if not first_improvement:  # best improvement: the best of the whole neighbourhood
            assert value == max(nbrs)


def test_local_search_canonical_dedupe_and_none() -> None:
    s = started("local_search", 2, dedupe="canonical")
    rows = drive(s, 120, lambda row: ok(structured(row)))
    ids = [SPACE.canonical_id(np.asarray(r)) for r in rows]
    assert len(set(ids)) == len(ids)
    s = started("local_search", 2, dedupe="none", n_init=3)
    rows = drive(s, 120, lambda row: ok(structured(row)))
    assert len({tuple(r) for r in rows}) < len(rows)  # the paper's form re-evaluates neighbours


def test_evolution_population_ages_and_mutates_one_edit() -> None:
    s: Any = started("evolution", 0, population_size=5, sample_size=2)
    rows = drive(s, 40, lambda row: ok(structured(row)))
    assert len(s.population) == 5
    assert [list(r) for r, _ in s.population] == rows[-5:]  # the newest five: the oldest were removed
    # each child is one edit from some earlier architecture
    for i in range(5, 40):
        assert min(int(SPACE.distance(np.asarray(rows[i]), np.asarray(r), kind="hamming")) for r in rows[:i]) <= 1


def test_log_softmax_gradient_is_exact() -> None:
    from nasatlas.searchers.reinforce import log_softmax_grad
    rng = np.random.default_rng(0)
    mask = np.arange(5)[None, :] < np.asarray([2, 5, 3])[:, None]
    logits = np.where(mask, rng.normal(size=(3, 5)), 0.0)
    actions = np.asarray([1, 4, 0])

    def logp(th: np.ndarray) -> float:
        z = np.where(mask, th, -np.inf)
        z = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        return float(z[np.arange(3), actions].sum())
    g = log_softmax_grad(logits, mask, actions)
    eps = 1e-6
    for d, j in zip(*np.nonzero(mask)):
        e = np.zeros_like(logits)
        e[d, j] = eps
        assert abs((logp(logits + e) - logp(logits - e)) / (2 * eps) - g[d, j]) < 1e-7
    assert (g[~mask] == 0).all()


def test_reinforce_steps_match_williams_and_torch_adam() -> None:
    """SGD: Delta theta = lr (r - b) grad log pi(a), b the bias-corrected EMA updated first (NB201).
    Adam: the same steps as torch.optim.Adam on the loss -(r - b) log pi(a)."""
    import torch
    from nasatlas.searchers.reinforce import log_softmax_grad
    mask = np.ones((6, 5), dtype=bool)
    s: Any = started("reinforce", 0, optimizer="sgd", learning_rate=0.3, momentum=0.5)
    ema = [0.0, 0.0]
    for _ in range(5):
        p = s.ask(1)[0]
        r = structured(p.row)
        before = s.logits.copy()
        s.tell(p, ok(r))
        ema = [0.5 * ema[0] + 0.5 * r, 0.5 * ema[1] + 0.5]
        expected = before + 0.3 * (r - ema[0] / ema[1]) * log_softmax_grad(before, mask, np.asarray(p.row))
        assert np.allclose(s.logits, expected, atol=1e-12)

    s = started("reinforce", 1, optimizer="adam", learning_rate=0.05)
    theta = torch.tensor(s.logits.copy(), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.Adam([theta], lr=0.05)
    for _ in range(6):
        p = s.ask(1)[0]
        r = structured(p.row)
        b = s.baseline
        s.tell(p, ok(r))
        adv = r - s.baseline
        assert b is None or s.baseline != b
        loss = -(adv * torch.log_softmax(theta, dim=1)[torch.arange(6), torch.tensor(p.row)]).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
        assert np.allclose(s.logits, theta.detach().numpy(), atol=1e-10)


@pytest.mark.parametrize("optimizer,lr", [("adam", 0.05), ("sgd", 0.5)])
def test_reinforce_concentrates_on_best_options(optimizer: str, lr: float) -> None:
    """Separable reward: the number of decisions set to a hidden target option."""
    target = np.random.default_rng(5).integers(0, 5, size=6)
    s: Any = started("reinforce", 0, optimizer=optimizer, learning_rate=lr)
    assert all(abs(p - 0.2).max() < 0.01 for p in s.probabilities())  # near-uniform start (NB201's init)
    drive(s, 300, lambda row: ok(float((np.asarray(row) == target).sum())))
    probs = s.probabilities()
    assert all(p[t] > 0.8 for p, t in zip(probs, target)), [p.round(2) for p in probs]
    assert (s.mode_row() == target).all()
    assert s.baseline is not None and 4.0 < s.baseline <= 6.0


def test_reinforce_needs_independent_decisions() -> None:
    with pytest.raises(ValueError, match="'product'.*nb101"):
        started("reinforce", 0, space=get_space("nb101"))


def test_random_largest_proposes_max_params_sample() -> None:
    cost_report = REAL_COST_REPORT
    s = started("random_largest", 9, k=4, dedupe="none")
    props = s.ask(3)
    rng = np.random.default_rng(9)
    for p in props:
        cand = SPACE.sample(rng, 4)
        params = [cost_report(SPACE, r, "tiny", macs=False)["params"] for r in cand]
        assert p.row == tuple(int(v) for v in cand[int(np.argmax(params))])
        assert max(params) == s.count(np.asarray(p.row))  # type: ignore[attr-defined]


def test_random_largest_by_macs() -> None:
    cost_report = REAL_COST_REPORT
    s = started("random_largest", 3, k=2, by="macs", dedupe="none")
    p = s.ask(1)[0]
    cand = SPACE.sample(np.random.default_rng(3), 2)
    macs = [cost_report(SPACE, r, "tiny")["macs"] for r in cand]
    assert p.row == tuple(int(v) for v in cand[int(np.argmax(macs))])


class NoNeighbours(Space):
    neighbours = None  # type: ignore[assignment]


@pytest.mark.parametrize("name,params,match", [
    ("evolution", {"population_size": 2, "sample_size": 3}, "population_size=2 < sample_size=3"),
    ("evolution", {"sample_size": 0}, "sample_size=0"),
    ("evolution", {"dedupe": "hash"}, "dedupe='hash'"),
    ("local_search", {"n_init": 0}, "n_init=0"),
    ("local_search", {"dedupe": "exact"}, "dedupe='exact'"),
    ("random_largest", {"k": 0}, "k=0"),
    ("random_largest", {"by": "flops"}, "by='flops'"),
    ("random_largest", {"net": "huge"}, "net='huge'"),
    ("random_largest", {"dedupe": "x"}, "dedupe='x'"),
    ("reinforce", {"learning_rate": 0.0}, "learning_rate=0.0"),
    ("reinforce", {"momentum": 1.0}, "momentum=1.0"),
    ("reinforce", {"optimizer": "rmsprop"}, "optimizer='rmsprop'"),
])
def test_bad_parameters(name: str, params: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        started(name, 0, **params)


def test_missing_capabilities() -> None:
    from nasatlas.spaces.primitives import Categorical
    no_builder = Space("toy", [Categorical("op", ["a", "b", "c"])])
    with pytest.raises(ValueError, match="'builder'.*'toy'"):
        started("random_largest", 0, space=no_builder)
    no_nbrs = NoNeighbours("toy2", [Categorical("op", ["a", "b", "c"])])
    for name in ("evolution", "local_search"):
        with pytest.raises(ValueError, match="'neighbours'.*'toy2'"):
            started(name, 0, space=no_nbrs)
    # the product-only REINFORCE and the neighbour searchers still run on a family-less space
    for name, params in (("evolution", {}), ("local_search", {"n_init": 2, "dedupe": "none"}), ("reinforce", {})):
        rows = drive(started(name, 0, space=no_builder, **params), 5, lambda row: ok(float(row[0])))
        assert len(rows) == 5


def test_proposals_are_proposal_objects() -> None:
    for name in ("evolution", "local_search", "reinforce", "random_largest"):
        p = started(name, 0).ask(1)[0]
        assert isinstance(p, Proposal) and all(isinstance(v, int) for v in p.row)


def test_evolution_dedupe_never_repeats() -> None:
    s = started("evolution", 6, dedupe="string")
    rows = drive(s, 200, lambda row: ok(structured(row)))
    assert len({tuple(r) for r in rows}) == 200
    s = started("evolution", 6)  # the paper's form re-evaluates repeated children
    rows = drive(s, 200, lambda row: ok(structured(row)))
    assert len({tuple(r) for r in rows}) < 200


@pytest.mark.parametrize("space_name", ["darts", "mobilenet", "nb101", "autodeeplab"])
def test_searchers_propose_valid_rows_on_other_spaces(space_name: str) -> None:
    space = get_space(space_name)
    names = ["evolution", "local_search"] + (["reinforce"] if space.is_product else [])
    for name in names:
        s = started(name, 0, space=space, **({"n_init": 3} if name == "local_search" else {}))
        rows = drive(s, 40, lambda row: ok(float(np.sum(row) % 7)), batch=2)
        assert len(rows) == 40 and space.is_valid(np.asarray(rows, dtype=np.int64)).all(), name
    if space_name == "darts":
        s = started("random_largest", 0, space=space, k=2)
        rows = drive(s, 2, lambda row: ok(0.0))
        assert space.is_valid(np.asarray(rows, dtype=np.int64)).all()
