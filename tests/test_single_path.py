"""Single-path one-shot searchers: random search with weight sharing (Li & Talwalkar 2019) and SPOS
(Guo et al. 2020) on tiny NB201 (C=4, N=1) and DARTS (C=4, 3 cells) supernets at 3x16x16.

Checked: relax + steps + derive give valid rows; alpha never moves; a weight step computes exactly
the sampled path (one op per edge, hook counting); same seed, same run; SPOS's evolution returns the
best scored candidate and reaches the optimum of a known fitness; mutation and crossover keep rows
valid (property test); both run through the one-shot runner. ProxylessNAS (width 0.25) joins the
supernet tests.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from nasatlas.evaluators.base import seeded
from nasatlas.searchers.random_ws import RandomWS, SinglePathSearcher
from nasatlas.searchers.spos import SPOS, crossover, evolve, mutate
from nasatlas.spaces import get_space
from nasatlas.spaces.supernet import MixedOp

pytestmark = pytest.mark.usefixtures("one_torch_thread")

INPUT = {"input": (3, 16, 16), "num_classes": 10}
NETS: dict[str, dict[str, Any]] = {"nb201": {"C": 4, "N": 1}, "darts": {"C": 4, "layers": 3},
                                   "proxylessnas": {"width_mult": 0.25}}
SPACES = list(NETS)
SMALL: dict[str, dict[str, Any]] = {
    "random_ws": {"n_candidates": 4, "top_k": 2, "eval_batches": 2, "calibration_batches": 2},
    "spos": {"population_size": 4, "top_k": 2, "iterations": 2, "eval_batches": 2, "calibration_batches": 2},
}
CLASSES = {"random_ws": RandomWS, "spos": SPOS}


def _batches(seed: int = 0, n: int = 4, size: int = 8) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(size, 3, 16, 16, generator=g), torch.randint(0, 10, (size,), generator=g)) for _ in range(n)]


def _searcher(kind: str, space: str, **kw: Any) -> SinglePathSearcher:
    params = {"epochs": 1, "batch_size": 8, "net": NETS[space], **SMALL[kind], **kw}
    return CLASSES[kind](**params)  # type: ignore[no-any-return]


def _run(kind: str, space: str, seed: int, steps: int = 2, **kw: Any) -> tuple[SinglePathSearcher, np.ndarray,
                                                                                list[np.ndarray]]:
    s = _searcher(kind, space, **kw)
    data = _batches(0, 2 * steps)
    paths = []
    with seeded(seed):
        s.relax(get_space(space), INPUT)
        for tb, vb in zip(data[:steps], data[steps:]):
            s.step(tb, vb)
            assert s.last_row is not None
            paths.append(s.last_row.copy())
        s.end_epoch()
        row = s.derive()
    return s, row, paths


@pytest.mark.parametrize("space", SPACES)
@pytest.mark.parametrize("kind", ["random_ws", "spos"])
def test_steps_and_derive_give_valid_rows_and_alpha_never_moves(kind: str, space: str) -> None:
    s = _searcher(kind, space)
    sp = get_space(space)
    with seeded(1):
        net = s.relax(sp, INPUT)
    alphas = {g: a.detach().clone() for g, a in net.alphas.items()}
    weights = [p.detach().clone() for p in net.weight_parameters()]
    data = _batches(1, 6)
    for tb, vb in zip(data[:3], data[3:]):
        out = s.step(tb, vb)
        assert set(out) == {"train_loss"} and np.isfinite(out["train_loss"])
    s.end_epoch()
    row = s.derive()
    sp.validate(row[None, :])
    assert s.a_optimizer is None and not s.arch_updates_now()
    for g, a in net.alphas.items():
        assert torch.equal(a.detach(), alphas[g]) and a.grad is None
    assert any(not torch.equal(p.detach(), w) for p, w in zip(net.weight_parameters(), weights))
    # the report: alpha as initialised, no architecture updates, the derived row's score
    rep = s.epoch_report(data[0][0], data[0][1], [data[1][0]])
    assert rep["arch_updates"] is False and 0.0 <= rep["derived_score"] <= 1.0
    assert rep["scored_candidates"] >= 1 and 0.0 <= rep["subnet_accuracy_recalibrated"] <= 1.0
    np.testing.assert_array_equal(s.derive(), row)   # no steps since: the same derivation, not a new search


def _hook_ops(net: torch.nn.Module) -> tuple[dict[tuple[int, int], int], list[Any]]:
    """Count forward calls of every option of every mixed op: ``(id(mixed op), option) -> calls``."""
    calls: dict[tuple[int, int], int] = {}
    handles = []
    for m in net.modules():
        if isinstance(m, MixedOp):
            for i, op in enumerate(m.ops):
                def hook(_mod: Any, _in: Any, _out: Any, key: tuple[int, int] = (id(m), i)) -> None:
                    calls[key] = calls.get(key, 0) + 1
                handles.append(op.register_forward_hook(hook))
    return calls, handles


@pytest.mark.parametrize("space", SPACES)
def test_a_weight_step_computes_exactly_the_sampled_path(space: str) -> None:
    s = _searcher("random_ws", space)
    with seeded(2):
        net = s.relax(get_space(space), INPUT)
    calls, handles = _hook_ops(net)
    try:
        for tb, vb in zip(*[iter(_batches(2, 6))] * 2):
            calls.clear()
            s.step(tb, vb)
            assert s.last_row is not None
            mixing = net.mixing_for(s.last_row)
            mixed = [m for m in net.modules() if isinstance(m, MixedOp)]
            for m in mixed:   # never more than one option of a site runs
                assert sum(calls.get((id(m), i), 0) for i in range(len(m.ops))) <= 1
            if space == "proxylessnas":   # one mixed op per layer; ``zero`` (skip) is an identity, computed
                layers: Any = net.layers
                for layer, v in zip(layers, s.last_row):
                    assert {i for i in range(len(layer.mixed.ops)) if calls.get((id(layer.mixed), i), 0)} == {int(v)}
                continue
            modules: list[Any] = list(net.modules())
            cells = [c for c in modules if isinstance(getattr(c, "edges", None), torch.nn.ModuleList)
                     and all(isinstance(e, MixedOp) for e in c.edges)]
            assert cells
            for c in cells:
                group = "cell" if space == "nb201" else ("reduce" if c.reduction else "normal")
                for edge, mix in zip(c.edges, mixing[group]):
                    ran = {i for i in range(len(edge.ops)) if calls.get((id(edge), i), 0)}
                    assert ran == {i for i in mix.active if edge.names[i] != "none"}
            if space == "darts":   # 4 nodes x 2 kept edges per cell, one op each
                assert sum(calls.values()) == 8 * len(cells)
    finally:
        for h in handles:
            h.remove()


@pytest.mark.parametrize("kind", ["random_ws", "spos"])
def test_same_seed_same_run_other_seed_other_paths(kind: str) -> None:
    a, row_a, paths_a = _run(kind, "nb201", seed=5, steps=3)
    b, row_b, paths_b = _run(kind, "nb201", seed=5, steps=3)
    np.testing.assert_array_equal(row_a, row_b)
    np.testing.assert_array_equal(np.stack(paths_a), np.stack(paths_b))
    for p, q in zip(a._net().state_dict().values(), b._net().state_dict().values()):
        assert torch.equal(p, q)
    _, _, paths_c = _run(kind, "nb201", seed=6, steps=3)
    assert not np.array_equal(np.stack(paths_a), np.stack(paths_c))


# ----------------------------------------------------------------------------- derivation rules

NB201 = get_space("nb201")
CONV = [i for i, o in enumerate(NB201.decisions[0].choices) if o.startswith("nor_conv")]


def conv_count(row: np.ndarray) -> float:
    """A known fitness on NB201: how many edges hold a convolution (optimum 6: 2^6 of 5^6 cells)."""
    return float(np.isin(np.asarray(row), CONV).sum())


def test_evolution_returns_the_best_scored_candidate_and_finds_the_optimum() -> None:
    calls: list[tuple[int, ...]] = []

    def fitness(row: np.ndarray) -> float:
        calls.append(tuple(int(v) for v in row))
        return conv_count(row)

    rng = np.random.default_rng(0)
    best, score, cache = evolve(NB201, fitness, rng, population_size=10, top_k=3, iterations=8, mutation_prob=0.1,
                                initial=NB201.sample(rng, 10))
    assert len(calls) == len(set(calls)) == len(cache)   # the cache scores every architecture once
    assert score == max(cache.values()) == conv_count(best)
    assert next(k for k, v in cache.items() if v == score) == tuple(best)   # the first scored on ties
    assert score == 6.0
    # random search with as many scored architectures does worse here
    rand = np.random.default_rng(0)
    assert max(conv_count(r) for r in NB201.sample(rand, len(cache))) < 6.0


def test_spos_derive_runs_the_evolution_through_its_fitness(monkeypatch: pytest.MonkeyPatch) -> None:
    s = _searcher("spos", "nb201", population_size=10, top_k=3, iterations=8, epochs=2, search_every=0,
                  quick_candidates=3)
    seen: list[tuple[int, ...]] = []

    def fitness(row: np.ndarray) -> float:
        seen.append(tuple(int(v) for v in row))
        return conv_count(row)

    monkeypatch.setattr(s, "fitness", fitness)
    data = _batches(3, 2)
    with seeded(3):
        s.relax(NB201, INPUT)
        s.step(*data)
        s.end_epoch()   # epoch 1 of 2: a cheap derivation, the best of 3 random architectures
        quick = s.derive()
        assert len(seen) == 3 and conv_count(quick) == max(conv_count(np.asarray(r)) for r in seen)
        assert s.extra_report()["full_search"] is False
        s.step(*data)
        s.end_epoch()   # the final epoch: the full evolution
        seen.clear()
        row = s.derive()
    assert s.extra_report()["full_search"] is True and len(seen) == len(set(seen)) > 10
    assert conv_count(row) == 6.0 == max(conv_count(np.asarray(r)) for r in seen)


@pytest.mark.parametrize("screen_recalibrate", [False, True])
def test_random_ws_rescores_the_screen_top_k_and_keeps_the_best(monkeypatch: pytest.MonkeyPatch,
                                                                 screen_recalibrate: bool) -> None:
    s = _searcher("random_ws", "nb201", n_candidates=12, top_k=3, screen_recalibrate=screen_recalibrate)
    log: list[tuple[tuple[int, ...], bool]] = []

    def score(row: np.ndarray, *, recalibrate: bool = True) -> float:
        log.append((tuple(int(v) for v in row), recalibrate))
        return conv_count(row) + 0.1 * int(row[0]) * (len(log) > 12)   # the re-score adds a tie-breaker

    monkeypatch.setattr(s, "score", score)
    data = _batches(4, 2)
    with seeded(4):
        s.relax(NB201, INPUT)
        s.step(*data)
        s.end_epoch()
        row = s.derive()
    assert [re for _, re in log] == [screen_recalibrate] * 12 + [True] * 3
    screen, rescored = [r for r, _ in log[:12]], [r for r, _ in log[12:]]
    assert len(set(screen)) == 12
    order = sorted(range(12), key=lambda i: -conv_count(np.asarray(screen[i])))   # stable: first on ties
    assert rescored == [screen[i] for i in order[:3]]
    assert tuple(row) == max(rescored, key=lambda r: conv_count(np.asarray(r)) + 0.1 * r[0])


@settings(max_examples=60, deadline=None)
@given(space=st.sampled_from(["nb201", "darts", "proxylessnas"]), seed=st.integers(0, 2**32 - 1),
       prob=st.floats(0.0, 1.0))
def test_mutation_and_crossover_keep_rows_valid(space: str, seed: int, prob: float) -> None:
    sp = get_space(space)
    rng = np.random.default_rng(seed)
    a, b = sp.sample(rng, 2)
    sizes = np.asarray(sp.sizes)
    m = mutate(a, sizes, prob, rng)
    c = crossover(a, b, rng)
    assert sp.is_valid(np.stack([m, c])).all()
    assert ((c == a) | (c == b)).all()
    if prob == 0.0:
        np.testing.assert_array_equal(m, a)


def test_parameter_errors_name_the_field() -> None:
    with pytest.raises(ValueError, match="top_k"):
        RandomWS(n_candidates=3, top_k=4)
    with pytest.raises(ValueError, match="mutation_prob"):
        SPOS(mutation_prob=0.0)
    with pytest.raises(ValueError, match="eval_batches"):
        SPOS(eval_batches=0)
    with pytest.raises(ValueError, match="random_ws/spos"):
        RandomWS().relax(get_space("nb101"), INPUT)
    with pytest.raises(RuntimeError, match="step"):
        s = _searcher("random_ws", "nb201")
        with seeded(0):
            s.relax(NB201, INPUT)
        s.derive()


@pytest.mark.parametrize("kind", ["random_ws", "spos"])
def test_through_the_one_shot_runner(kind: str) -> None:
    from nasatlas.studies.oneshot import run_one_shot_search

    searchers = []

    def run() -> list[Any]:
        s = CLASSES[kind](epochs=2, batch_size=128, net={"C": 4, "N": 1}, **SMALL[kind])
        searchers.append(s)
        return run_one_shot_search(s, NB201, data=None, evaluations=2, seed=11, rng=np.random.default_rng(11))

    first, again = run(), run()
    assert searchers[0].extra_report()["full_search"]  # the runner calls end_epoch: the last epoch searches fully
    assert [d.row for d in first] == [d.row for d in again] and len(first) == 2
    for d in first:
        NB201.validate(np.asarray(d.row)[None, :])
