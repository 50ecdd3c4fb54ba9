"""Coarsenings (spaces/coarsen.py), the coarse-to-fine searcher and its report section.

Hand cases of the NB201 conv/cheap/none coarsening (729 coarse cells, lift sizes 2^k, the lifts
partition the 15,625 cells), bad maps, the restricted space of a lift, the phase switch at exactly B1,
phase 2 staying inside the incumbent's lift (and moving on when a lift is spent), seeding and resume,
the paired statistics, and the packaged study's smoke profile through the CLI.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from nasatlas.results import EvalResult
from nasatlas.searchers import get_searcher
from nasatlas.searchers.base import BlackBoxSearcher, Proposal
from nasatlas.spaces import Categorical, Space, get_space
from nasatlas.spaces.coarsen import COARSENINGS, Coarsening, RestrictedSpace, get_coarsening
from nasatlas.studies.coarse_to_fine import c2f_configs, holm, paired_effect

from .conftest import NB201_TABLE, need

NB201 = get_space("nb201")
GROUPS = COARSENINGS["nb201_conv_cheap"][1]
CF = get_coarsening(NB201, "nb201_conv_cheap")
OPS = NB201.decisions[0].choices     # none, skip_connect, nor_conv_1x1, nor_conv_3x3, avg_pool_3x3
CONV, CHEAP, NONE = 0, 1, 2          # coarse indices, in the preset's group order
RANK = np.random.default_rng(3).random(15_625)   # a seeded synthetic objective over the NB201 ranks


# -- the coarsening ------------------------------------------------------------------------------
def test_nb201_coarse_space_has_729_cells_and_keeps_the_zero_op() -> None:
    cs = CF.coarse_space
    assert CF.cardinality() == cs.cardinality() == 3 ** 6 == 729
    assert cs.decisions[0].choices == ("conv", "cheap", "none")
    assert cs.primitives[0].zero_op == "none" and cs.primitives[0].identity_op is None  # type: ignore[attr-defined]
    row = np.array([CONV, CHEAP, NONE, CONV, NONE, CHEAP])
    assert cs.to_str(row) == "|conv~0|+|cheap~0|none~1|+|conv~0|none~1|cheap~2|"
    assert (cs.from_str(cs.to_str(row)).indices == tuple(row))


@pytest.mark.parametrize("coarse,size", [([CONV] * 6, 64), ([NONE] * 6, 1), ([CHEAP] * 6, 64),
                                         ([CONV, CHEAP, NONE, CONV, NONE, CHEAP], 16), ([NONE] * 5 + [CONV], 2)])
def test_lift_sizes_are_products_of_group_sizes(coarse: list[int], size: int) -> None:
    lift = CF.lift(coarse)
    assert CF.lift_size(coarse) == size and lift.shape == (size, 6)
    assert len({tuple(r) for r in lift.tolist()}) == size
    assert (CF.coarsen(lift) == np.asarray(coarse)).all()
    brute = NB201.enumerate()
    brute = brute[(CF.coarsen(brute) == np.asarray(coarse)).all(axis=1)]
    assert sorted(map(tuple, brute.tolist())) == sorted(map(tuple, lift.tolist()))


def test_lifts_partition_the_dense_space_and_coarsen_inverts_lift() -> None:
    coarse = CF.coarse_space.enumerate()
    total = 0
    for c in coarse:
        lift = CF.lift(c)
        assert (CF.coarsen(lift) == c).all()                  # coarsen(lift(c)) == c
        total += len(lift)
    assert total == NB201.cardinality() == 15_625
    dense = NB201.sample(np.random.default_rng(0), 50)
    for row in dense:                                         # a dense row is in the lift of its coarse row
        assert any((row == m).all() for m in CF.lift(CF.coarsen(row)))
    mapping = {op: g for g, ops in GROUPS.items() for op in ops}
    names = CF.coarse_space.decisions[0].choices
    assert all(names[int(c)] == mapping[OPS[int(d)]] for row in dense for d, c in zip(row, CF.coarsen(row)))


def test_sample_lift_draws_every_member_uniformly() -> None:
    coarse = [NONE, NONE, NONE, CONV, CHEAP, NONE]           # 4 members
    draws = CF.sample_lift(coarse, np.random.default_rng(0), 4000)
    assert (CF.coarsen(draws) == np.asarray(coarse)).all()
    _, counts = np.unique(draws, axis=0, return_counts=True)
    assert len(counts) == 4 and counts.min() > 900          # 1000 expected each; sd ~27
    again = CF.sample_lift(coarse, np.random.default_rng(0), 4000)
    assert (draws == again).all()


def test_restricted_space_is_the_lift() -> None:
    coarse = np.array([CONV, CHEAP, NONE, CONV, NONE, CHEAP])
    sub = CF.restrict(coarse)
    assert isinstance(sub, RestrictedSpace) and sub.cardinality() == 16
    assert sub.sizes == (2, 2, 1, 2, 1, 2)
    dense = sub.to_dense(sub.enumerate())
    assert sorted(map(tuple, dense.tolist())) == sorted(map(tuple, CF.lift(coarse).tolist()))
    assert sub.contains(dense).all() and (sub.from_dense(dense) == sub.enumerate()).all()
    row = sub.sample(np.random.default_rng(1), 1)[0]
    text = sub.to_str(row)
    assert text == NB201.to_str(sub.to_dense(row)[0])           # printed in the dense format
    assert sub.from_str(text).indices == tuple(int(v) for v in row)
    assert sub.canonical_id(row) == NB201.canonical_id(sub.to_dense(row)[0])
    # its neighbours are exactly the dense neighbours that stay in the lift
    local_nbrs = {tuple(r) for r in sub.to_dense(sub.neighbours(row)).tolist()}
    lift_nbrs = {tuple(r) for r in CF.lift_neighbours(sub.to_dense(row)[0]).tolist()}
    assert local_nbrs == lift_nbrs and len(local_nbrs) == 4
    for nb in lift_nbrs:
        assert int(NB201.distance(np.asarray(nb), sub.to_dense(row)[0], kind="hamming")) == 1
    outside = sub.to_dense(row)[0].copy()
    outside[2] = OPS.index("nor_conv_3x3")                     # edge 2 is 'none' in this lift
    with pytest.raises(ValueError, match=r"nor_conv_3x3.*outside this lift"):
        sub.from_dense(outside)
    assert not sub.contains(outside)[0]


@pytest.mark.parametrize("groups,match", [
    ({"conv": ["nor_conv_1x1", "nor_conv_3x3"], "cheap": ["avg_pool_3x3", "skip_connect", "nor_conv_1x1"],
      "none": ["none"]}, r"'nor_conv_1x1' is listed in groups 'conv' and 'cheap'"),
    ({"conv": ["nor_conv_1x1", "nor_conv_3x3"], "cheap": ["avg_pool_3x3"], "none": ["none"]},
     r"option 'skip_connect' of decision 'cell/edge1<-0' is in no group"),
    ({"conv": ["nor_conv_1x1", "nor_conv_3x3", "nor_conv_5x5"], "cheap": ["avg_pool_3x3", "skip_connect"],
      "none": ["none"]}, r"group 'conv' lists option 'nor_conv_5x5', which no decision"),
    ({"conv": [], "rest": list(OPS)}, r"group 'conv' must list at least one option"),
    ({"all": list(OPS) + ["none"]}, r"'none' is listed twice in group 'all'"),
    ({"conv": "nor_conv_3x3"}, r"group 'conv' must list at least one option"),
    ({}, r"non-empty mapping"),
])
def test_bad_maps_name_the_option(groups: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        Coarsening(NB201, groups)


def test_bad_spaces_and_presets() -> None:
    with pytest.raises(ValueError, match=r"constrained blocks.*product space"):
        Coarsening(get_space("nb101"), {"all": ["conv3x3-bn-relu"]})
    with pytest.raises(ValueError, match=r"preset 'nb201_conv_cheap' is declared for space 'nb201'.*'darts'"):
        get_coarsening(get_space("darts"), "nb201_conv_cheap")
    with pytest.raises(ValueError, match=r"unknown coarsening preset 'nb201_x'"):
        get_coarsening(NB201, "nb201_x")
    with pytest.raises(ValueError, match="lift has 64 architectures, more than limit=10"):
        CF.lift([CONV] * 6, limit=10)
    with pytest.raises(ValueError, match="out of range"):
        CF.lift([3] * 6)


def test_categorical_space_coarsening() -> None:
    space = Space("toy", [Categorical("k", ["3", "5", "7"]), Categorical("e", ["1", "3", "6", "none"])])
    c = Coarsening(space, {"small": ["3", "1"], "large": ["5", "7", "6"], "off": ["none"]})
    assert c.coarse_space.decisions[0].choices == ("small", "large")
    assert c.coarse_space.decisions[1].choices == ("small", "large", "off")
    assert c.cardinality() == 6
    assert c.lift_size([1, 1]) == 2 * 1 and c.lift_size([0, 2]) == 1
    assert c.coarse_space.to_str(np.array([1, 2])) == "Genotype(k='large', e='off')"
    assert sum(c.lift_size(r) for r in c.coarse_space.enumerate()) == space.cardinality() == 12


# -- the searcher --------------------------------------------------------------------------------
def rank(row: Any) -> int:
    return int(NB201.rank(np.asarray(row, dtype=np.int64))[0])


def ok(v: float) -> EvalResult:
    return EvalResult(status="ok", metrics={"score": float(v)})


def conv_heavy(row: Any) -> EvalResult:
    """Better with more convolutions (the incumbent's lift is large), plus per-cell noise."""
    conv = sum(OPS[int(v)].startswith("nor_conv") for v in row)
    return ok(conv + 0.5 * RANK[rank(row)])


def none_heavy(row: Any) -> EvalResult:
    """Better with more 'none' edges: the incumbent's lift is tiny, phase 2 must move on."""
    return ok(sum(OPS[int(v)] == "none" for v in row) + 0.5 * RANK[rank(row)])


def started(seed: int = 0, **params: Any) -> Any:
    s = get_searcher("coarse_to_fine", **params)
    s.start(NB201, np.random.default_rng(seed), objective="score")
    return s


def drive(s: BlackBoxSearcher, n: int, f: Callable[[Any], EvalResult], batch: int = 1,
          on_ask: Callable[[list[Proposal]], None] | None = None) -> list[tuple[int, ...]]:
    rows: list[tuple[int, ...]] = []
    while len(rows) < n:
        props = s.ask(min(batch, n - len(rows)))
        if not props:
            break
        if on_ask is not None:
            on_ask(props)
        for p in props:
            rows.append(p.row)
            s.tell(p, f(p.row))
    return rows


@pytest.mark.parametrize("batch", [1, 4])
@pytest.mark.parametrize("phase1,phase2", [("random", "local_search"), ("evolution", "evolution"),
                                           ("local_search", "local_search")])
def test_phase_switch_at_b1_and_phase2_inside_the_incumbent_lift(batch: int, phase1: str, phase2: str) -> None:
    s = started(4, budget=40, b1=10, phase1=phase1, phase2=phase2,
                phase1_params={"dedupe": "string"} if phase1 == "evolution" else None,
                phase2_params={"dedupe": "string"} if phase2 == "evolution" else None)
    sizes: list[int] = []
    phase1_props: list[tuple[tuple[int, ...], tuple[int, ...]]] = []

    def record(props: list[Proposal]) -> None:
        sizes.append(len(props))
        for p in props:
            if p.trial < 10:  # the coarse searcher's proposal behind each phase-1 representative
                phase1_props.append((p.row, s._pending1[p.trial].row))

    rows = drive(s, 40, conv_heavy, batch, record)
    assert len(rows) == 40 and s.n_phase1 == 10 and s.ask(1) == []   # exactly `budget`, then nothing
    if batch == 4:
        assert sizes[:4] == [4, 4, 2, 4]                 # the batch that reaches B1 stops there
    assert len(phase1_props) == 10
    for dense, coarse in phase1_props:                   # a representative is a member of the coarse cell's lift
        assert tuple(CF.coarsen(np.asarray(dense))) == coarse
    values = [conv_heavy(r).metrics["score"] for r in rows[:10]]
    incumbent = tuple(CF.coarsen(np.asarray(rows[int(np.argmax(values))])))
    assert s.regions[0] == incumbent == s.ranking()[0]
    assert CF.lift_size(incumbent) >= 30                 # large enough: phase 2 never leaves it
    assert len(s.regions) == 1
    assert all(tuple(CF.coarsen(np.asarray(r))) == incumbent for r in rows[10:])


def test_spent_lifts_move_on_in_ranking_order() -> None:
    s = started(2, budget=40, b1=10, phase1="random", phase2="local_search", phase2_params={"n_init": 1})
    rows = drive(s, 40, none_heavy)
    assert len(rows) == 40 and len(set(rows)) == 40       # dedupe across lifts: they are disjoint
    ranking = s.ranking()
    assert len(s.regions) > 1
    assert s.n_reused >= 1       # the spent first lift held the incumbent's phase-1 cell: told, not re-evaluated
    k = min(len(ranking), len(s.regions))
    assert s.regions[:k] == ranking[:k]                   # next-best coarse cells first
    by_region = [tuple(CF.coarsen(np.asarray(r))) for r in rows[10:]]
    assert set(by_region) <= set(s.regions)
    # a lift is left only when every member was proposed
    for region in s.regions[:-1]:
        members = {tuple(m) for m in CF.lift(region).tolist()}
        assert members <= set(rows)


def test_same_seed_same_proposals_and_resume_in_phase2() -> None:
    params = {"budget": 40, "b1": 0.25, "phase1": "evolution", "phase2": "local_search",
              "phase2_params": {"n_init": 1}}
    a = drive(started(7, **params), 40, none_heavy)
    assert a == drive(started(7, **params), 40, none_heavy)
    assert a != drive(started(8, **params), 40, none_heavy)
    first = started(7, **params)
    head = drive(first, 23, none_heavy)
    assert len(first.regions) >= 2                       # the state is saved after a lift was spent
    state = json.loads(json.dumps(first.state_dict()))
    resumed = started(99, **params)
    resumed.load_state_dict(state)
    assert head + drive(resumed, 17, none_heavy) == a


def test_waits_for_phase1_results_before_choosing_the_incumbent() -> None:
    s = started(0, budget=12, b1=3)
    props = s.ask(5)
    assert [p.trial for p in props] == [0, 1, 2]         # the switch is at B1 exactly
    assert s.ask(2) == []                                # results outstanding: wait (asynchronous runners)
    for p in props[:2]:
        s.tell(p, conv_heavy(p.row))
    assert s.ask(1) == []
    s.tell(props[2], EvalResult.failed("diverged"))      # a failed phase-1 result has no value
    nxt = s.ask(1)
    assert len(nxt) == 1 and nxt[0].trial == 3
    best = max(props[:2], key=lambda p: conv_heavy(p.row).metrics["score"])
    assert s.regions[0] == tuple(CF.coarsen(np.asarray(best.row)))
    with pytest.raises(ValueError, match="trial 0 is not pending"):
        s.tell(props[0], ok(1.0))


def test_all_phase1_failures_refine_a_uniform_coarse_cell() -> None:
    s = started(0, budget=8, b1=4)
    drive(s, 4, lambda row: EvalResult.failed("x"))
    assert s.ranking() == []
    rows = drive(s, 4, conv_heavy)
    assert len(rows) == 4 and len(s.regions) == 1
    assert all(tuple(CF.coarsen(np.asarray(r))) == s.regions[0] for r in rows)


def test_without_budget_phase2_runs_on() -> None:
    s = started(0, b1=5)
    assert len(drive(s, 60, conv_heavy)) == 60


@pytest.mark.parametrize("params,match", [
    ({"b1": 0.5}, r"b1=0.5 is a fraction of the total budget, but budget is not set"),
    ({"b1": 30, "budget": 20}, r"b1=30 gives 30 phase-1 evaluations, more than budget=20"),
    ({"b1": 0, "budget": 20}, r"b1=0"),
    ({"b1": 1.5, "budget": 20}, r"b1=1.5; a fraction"),
    ({"b1": 5, "budget": 0}, r"budget=0"),
    ({"b1": 5, "phase1": "bananas"}, r"phase1='bananas'"),
    ({"b1": 5, "phase2": "random"}, r"phase2='random'"),
    ({"b1": 5, "phase2_params": {"n_init": 0}}, r"n_init=0"),
    ({"b1": 5, "phase1_params": {"colour": 1}}, r"phase1_params=\{'colour': 1\} does not fit searcher 'random'"),
    ({"b1": 5, "coarsening": "nope"}, r"coarse_to_fine: coarsening: unknown coarsening preset 'nope'"),
    ({"b1": 5, "coarsening": {"all": ["none"]}}, r"coarse_to_fine: coarsening: option 'skip_connect'"),
    ({"b1": 800, "budget": 900}, r"cannot propose 800 distinct architectures of a coarse space with 729"),
])
def test_bad_parameters(params: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        started(0, **params)


def test_inline_coarsening_equals_preset() -> None:
    a = drive(started(3, budget=20, b1=5), 20, conv_heavy)
    b = drive(started(3, budget=20, b1=5, coarsening={g: list(m) for g, m in GROUPS.items()}), 20, conv_heavy)
    assert a == b


# -- the report's statistics ---------------------------------------------------------------------
def test_paired_effect_hand_case() -> None:
    e = paired_effect([2.0, 0.0, 5.0, 1.0], [1.0, 2.0, 2.0, 1.0])   # d = 1, -2, 3, 0
    assert (e["wins"], e["ties"], e["losses"]) == (2, 1, 1)
    assert e["mean_diff"] == pytest.approx(0.5)
    assert e["rank_biserial"] == pytest.approx((4 - 2) / 6)          # ranks of |d| != 0: 1, 2, 3
    assert e["d_z"] == pytest.approx(0.5 / np.std([1, -2, 3, 0], ddof=1))
    from scipy import stats
    assert e["p"] == pytest.approx(stats.wilcoxon([1.0, -2.0, 3.0]).pvalue)
    same = paired_effect([1.0, 2.0], [1.0, 2.0])
    assert same["p"] == 1.0 and same["rank_biserial"] == 0.0 and math.isnan(same["d_z"])
    with pytest.raises(ValueError, match="same length"):
        paired_effect([1.0], [1.0, 2.0])


def test_holm_hand_case() -> None:
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])


def test_configs_pick_baselines_and_check_budgets() -> None:
    study: dict[str, Any] = {"budget": {"evaluations": 100}, "searchers": [
        {"name": "local_search"}, {"name": "evolution", "label": "evo"},
        {"name": "coarse_to_fine", "label": "a", "params": {"budget": 100, "b1": 0.25, "phase2": "local_search"}},
        {"name": "coarse_to_fine", "label": "b", "params": {"budget": 100, "b1": 60, "phase2": "evolution"}}]}
    cfg = c2f_configs(study)
    assert cfg["a"]["baseline"] == "local_search" and cfg["a"]["b1"] == 25
    assert cfg["b"]["baseline"] == "evo" and cfg["b"]["b1"] == 60
    assert c2f_configs(study, "evo")["a"]["baseline"] == "evo"
    with pytest.raises(ValueError, match="baseline = 'x' is not a searcher label"):
        c2f_configs(study, "x")
    study["searchers"][2]["params"]["budget"] = 50
    with pytest.raises(ValueError, match=r"'a' has budget = 50 but the study's \[budget\] evaluations = 100"):
        c2f_configs(study)


# -- the packaged study --------------------------------------------------------------------------
def test_smoke_profile_through_the_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from nasatlas.results import ResultLog
    from nasatlas.studies.cli import main
    monkeypatch.setenv("NB201_TABLE", str(need(NB201_TABLE)))
    out = tmp_path / "c2f"
    assert main(["study", "coarse_to_fine", "--profile", "smoke", "--out", str(out), "--quiet"]) == 0
    df = ResultLog(out / "evaluations").read()
    assert (df["status"] == "ok").all()
    assert (df.groupby(["searcher", "repeat"]).size() == 20).all()
    assert df.groupby("searcher")["repeat"].nunique().to_dict() == {"local_search": 3, "c2f_ls_25": 3, "c2f_rs_50": 3}
    # phase 2 of every run stays in its incumbent's lift (these lifts hold >= 15 cells) or moves on
    # only after spending one
    for (label, _), g in df[df["searcher"] != "local_search"].groupby(["searcher", "repeat"]):
        b1 = 5 if label == "c2f_ls_25" else 10
        g = g.sort_values("trial")
        rows = np.asarray([NB201.from_str(a).indices for a in g["arch"]])
        coarse = [tuple(c) for c in CF.coarsen(rows)]
        best = int(np.argmax(g["metric_valid_acc"].to_numpy()[:b1]))
        assert coarse[b1] == coarse[best]
    report = (out / "report.md").read_text()
    assert "## Coarse-to-fine search on `nb201_cifar10valid_avg3seeds.parquet`" in report
    assert "| c2f_ls_25 | local_search → local_search | 5/20 | 3 |" in report
    assert "| c2f_rs_50 | random → local_search | 10/20 | 3 |" in report
    assert (out / "coarse_to_fine.png").stat().st_size > 0
    tab = pd.read_csv(out / "coarse_to_fine.csv").set_index("searcher")
    assert set(tab.index) == {"c2f_ls_25", "c2f_rs_50"} and (tab["baseline"] == "local_search").all()
    sel = pd.read_csv(out / "coarse_to_fine_selections.csv")
    ls = sel[sel["searcher"] == "local_search"]["selected_test"]
    assert tab.loc["c2f_ls_25", "baseline_mean"] == pytest.approx(ls.mean())
