"""The NAS-Bench-101 space (Ying et al. 2019, Sec. 2.1-2.2): counts, isomorphism, ranks, strings.

Counts are checked against the paper's figures and against brute force written as plain loops in
the manner of NAS-Bench-101's ``generate_graphs``; the isomorphism tests follow the spirit of its
``graph_util_test`` with examples of our own.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nasatlas.spaces import get_space
from nasatlas.spaces.declaration import space_from_dict
from nasatlas.spaces.encodings import adjacency_encoding, path_encoding
from nasatlas.spaces.nb101 import NB101Graph, nb101
from nasatlas.spaces.nb101_graph import is_full_dag, is_isomorphic, nb101_hash
from nasatlas.spaces.testing import (
    check_canonical_invariance,
    check_enumeration,
    check_neighbours,
    check_rank_unrank,
    check_round_trip,
    check_samples_valid,
    check_space,
)

C3, C1, MP = "conv3x3-bn-relu", "conv1x1-bn-relu", "maxpool3x3"


def spec(adj: str, ops: list[str]) -> tuple[np.ndarray, list[str]]:
    """A (matrix, ops) pair from '011/001/000' and interior op names."""
    return np.asarray([[int(c) for c in r] for r in adj.split("/")]), ["input", *ops, "output"]


def labels(ops: list[str]) -> list[int]:
    return [-1] + [[C3, C1, MP].index(o) for o in ops[1:-1]] + [-2]


@pytest.fixture(scope="module")
def full() -> NB101Graph:
    return NB101Graph()


@pytest.fixture(scope="module")
def small() -> NB101Graph:
    return NB101Graph(max_vertices=5)


def brute_force_specs(max_vertices: int, max_edges: int, k: int = 3) -> list[tuple[int, int, tuple[int, ...]]]:
    """(v, bits, labelling) in generate_graphs's loop order, with plain Python loops."""
    out: list[tuple[int, int, tuple[int, ...]]] = []
    for v in range(2, max_vertices + 1):
        for bits in range(2 ** (v * (v - 1) // 2)):
            m = [[int(x < y and (bits >> (x + y * (y - 1) // 2)) & 1) for y in range(v)] for x in range(v)]
            ins_ok = all(any(m[x][y] for x in range(v)) for y in range(1, v))
            outs_ok = all(any(m[x][y] for y in range(v)) for x in range(v - 1))
            if ins_ok and outs_ok and sum(map(sum, m)) <= max_edges:
                out.extend((v, bits, lab) for lab in itertools.product(range(k), repeat=v - 2))
    return out


# -- counts -------------------------------------------------------------------------------------
def test_nominal_count_matches_nasbench(full: NB101Graph) -> None:
    assert full.cardinality() == 1_293_208
    assert full.cardinality_by_vertices() == {2: 1, 3: 6, 4: 90, 5: 3_267, 6: 125_145, 7: 1_164_699}
    assert get_space("nb101").cardinality() == 1_293_208
    assert type(full.cardinality()) is int


@pytest.mark.parametrize("max_vertices,max_edges", [(3, 9), (4, 9), (5, 9), (5, 5), (6, 7)])
def test_nominal_count_and_order_match_brute_force(max_vertices: int, max_edges: int) -> None:
    p = NB101Graph(max_vertices=max_vertices, max_edges=max_edges)
    brute = brute_force_specs(max_vertices, max_edges)
    assert p.cardinality() == len(brute)
    # rank order is generate_graphs's order: vertex count, bit mask, labelling
    idx = np.random.default_rng(0).choice(len(brute), size=min(300, len(brute)), replace=False)
    for i, row in zip(idx.tolist(), p.unrank(idx)):
        v, bits, lab = brute[i]
        m, ops = p.spec(row)
        assert m.shape == (v, v) and labels(ops) == [-1, *lab, -2]
        assert sum(1 << (x + y * (y - 1) // 2) for x, y in zip(*np.nonzero(m))) == bits


def test_unique_count_matches_nasbench(full: NB101Graph) -> None:
    assert full.unique_cardinality() == 423_624
    assert full.unique_by_vertices() == {2: 1, 3: 6, 4: 84, 5: 2_441, 6: 62_010, 7: 359_082}
    assert len(full.unique_ranks()) == 423_624
    assert get_space("nb101").unique_cardinality() == 423_624


def test_unique_count_by_exhaustive_canonical_forms(full: NB101Graph) -> None:
    """Second method: the canonical form of every one of the 1,293,208 specs (~5 s)."""
    rows = full.unrank(range(full.cardinality()))
    ranks = full.canonical_ranks(rows)
    assert len(np.unique(ranks)) == 423_624
    assert np.array_equal(np.unique(ranks), full.unique_ranks())


def test_unique_count_small_variant_by_hash_and_exhaustive_isomorphism(small: NB101Graph) -> None:
    rows = small.unrank(range(small.cardinality()))
    hashes = [small.fingerprint(r) for r in rows]
    canon = small.canonical_ranks(rows).tolist()
    assert len(set(hashes)) == len(set(canon)) == small.unique_cardinality() == 2_532
    assert len(set(zip(hashes, canon))) == 2_532  # the two partitions coincide
    # exhaustive isomorphism on the 4-vertex specs: classes by brute force
    reps: list[tuple[np.ndarray, list[int]]] = []
    for r in rows[:small.cardinality_by_vertices()[2] + 6 + 90]:
        m, ops = small.spec(r)
        if not any(is_isomorphic(m, labels(ops), m2, l2) for m2, l2 in reps):
            reps.append((m, labels(ops)))
    assert len(reps) == 1 + 6 + 84


# -- isomorphism --------------------------------------------------------------------------------
ISOMORPHIC = [
    # two parallel branches with their labels swapped
    (spec("0110/0001/0001/0000", [C1, MP]), spec("0110/0001/0001/0000", [MP, C1])),
    # a branch and a two-vertex chain, drawn in two topological orders
    (spec("01100/00010/00001/00001/00000", [C3, MP, C1]), spec("01100/00001/00010/00001/00000", [MP, C3, C1])),
    # the inception-like cell of NAS-Bench-101's README, interior vertices reordered
    (spec("0111010/0000001/0000001/0000100/0000001/0000001/0000000", [C1, C3, C3, C3, MP]),
     spec("0101110/0010000/0000001/0000001/0000001/0000001/0000000", [C3, C3, C1, C3, MP])),
]
NON_ISOMORPHIC = [
    # same degree sequence and label multiset, labels along a chain in another order
    ("degrees", spec("010000/001000/000100/000010/000001/000000", [C3, C1, C1, MP]),
     spec("010000/001000/000100/000010/000001/000000", [C1, C3, C1, MP])),
    # two parallel two-vertex chains: a->a, b->b versus a->b, b->a (same labelled degrees)
    ("degrees", spec("011000/000100/000010/000001/000001/000000", [C3, C1, C3, C1]),
     spec("011000/000010/000100/000001/000001/000000", [C3, C1, C3, C1])),
    # unlabelled: equal degrees *and* equal one-step neighbour degrees; needs deeper refinement
    ("degrees", spec("010100/001010/000101/000010/000001/000000", [C3, C3, C3, C3]),
     spec("010100/001100/000011/000010/000001/000000", [C3, C3, C3, C3])),
    # direction matters: isomorphic as undirected labelled graphs (a triangle plus a chord)
    ("undirected", spec("0110/0011/0001/0000", [C3, C1]), spec("0110/0011/0001/0000", [C1, C3])),
]


def degree_signature(m: np.ndarray, ops: list[str]) -> list[tuple[int, int, str]]:
    return sorted(zip(m.sum(axis=0).tolist(), m.sum(axis=1).tolist(), ops))


@pytest.mark.parametrize("a,b", ISOMORPHIC)
def test_isomorphic_pairs_hash_equal(full: NB101Graph, a: tuple, b: tuple) -> None:
    assert is_full_dag(a[0]) and is_full_dag(b[0])
    assert is_isomorphic(a[0], a[1], b[0], b[1])
    assert nb101_hash(a[0], labels(a[1])) == nb101_hash(b[0], labels(b[1]))
    ra, rb = full.from_spec(*a), full.from_spec(*b)
    assert not np.array_equal(ra, rb)
    assert full.canonical(ra) == full.canonical(rb)
    assert full.fingerprint(ra) == full.fingerprint(rb)


@pytest.mark.parametrize("why,a,b", NON_ISOMORPHIC)
def test_tricky_non_isomorphic_pairs_hash_differently(full: NB101Graph, why: str, a: tuple, b: tuple) -> None:
    if why == "degrees":  # what makes them tricky
        assert degree_signature(*a) == degree_signature(*b)
    else:
        assert is_isomorphic(a[0] + a[0].T, a[1], b[0] + b[0].T, b[1])
    assert not is_isomorphic(a[0], a[1], b[0], b[1])
    assert nb101_hash(a[0], labels(a[1])) != nb101_hash(b[0], labels(b[1]))
    assert full.canonical(full.from_spec(*a)) != full.canonical(full.from_spec(*b))


def test_hash_and_canonical_agree_on_random_pairs(full: NB101Graph) -> None:
    rng = np.random.default_rng(3)
    small = NB101Graph(max_vertices=5)
    pairs = [small.sample(rng, 2) for _ in range(600)]  # small space: many isomorphic pairs
    rows = full.sample(rng, 200)
    pairs += [np.stack([r, full.relabel(r, rng)]) for r in rows]
    pairs += [np.stack([r, full.neighbours(r)[0]]) for r in rows[:100]]
    n_iso = 0
    for pair in pairs:
        p = small if pair.shape[1] == small.width else full
        same_hash = p.fingerprint(pair[0]) == p.fingerprint(pair[1])
        c = p.canonical_ranks(pair)
        assert same_hash == (c[0] == c[1])
        n_iso += int(same_hash)
    assert 200 <= n_iso < len(pairs)


def test_hash_is_invariant_on_general_digraphs() -> None:
    rng = np.random.default_rng(0)
    for _ in range(200):
        v = int(rng.integers(3, 12))
        m = rng.integers(0, 2, size=(v, v))
        lab = rng.integers(0, 4, size=v).tolist()
        perm = rng.permutation(v)
        pm = np.zeros_like(m)
        pm[np.ix_(perm, perm)] = m  # vertex x becomes perm[x]
        plab = [0] * v
        for x in range(v):
            plab[perm[x]] = lab[x]
        assert nb101_hash(m, lab) == nb101_hash(pm, plab)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2 ** 32 - 1))
def test_property_relabelling_keeps_canonical_id(seed: int) -> None:
    space = nb101()
    p = space.primitives[0]
    assert isinstance(p, NB101Graph)
    rng = np.random.default_rng(seed)
    for row in space.sample(rng, 4):
        var = space.isomorphic_variant(row, rng)
        space.validate(var)
        assert space.canonical_id(var) == space.canonical_id(row)
        assert p.canonical_ranks(var)[0] == p.canonical_ranks(row)[0]
        m1, o1 = p.spec(row)
        m2, o2 = p.spec(var)
        assert o1[0] == o2[0] and sorted(o1) == sorted(o2) and m1.sum() == m2.sum()


def test_relabel_reaches_every_topological_order(full: NB101Graph) -> None:
    row = full.from_spec(*spec("01110/00001/00001/00001/00000", [C3, C3, C3]))
    rng = np.random.default_rng(0)
    seen = {full.relabel(row, rng).tobytes() for _ in range(60)}
    assert len(seen) == 1  # three identical parallel branches: every relabelling is the same row
    row = full.from_spec(*spec("01110/00001/00001/00001/00000", [C3, C1, MP]))
    seen = {full.relabel(row, rng).tobytes() for _ in range(200)}
    assert len(seen) == 6  # 3! orders of three distinct parallel branches


def test_unique_samples_are_canonical_members(full: NB101Graph) -> None:
    space = get_space("nb101")
    rows = space.sample(np.random.default_rng(0), 500, over="unique")
    assert np.array_equal(full.canonical_ranks(rows), np.asarray(full.rank(rows)))
    for r in rows[:20]:
        assert full.canonical(r) == full.to_value(r)


# -- ranks, sampling, neighbours ---------------------------------------------------------------
@settings(max_examples=30, deadline=None)
@given(index=st.integers(0, 1_293_207))
def test_property_unrank_rank(index: int) -> None:
    space = get_space("nb101")
    assert space.rank(space.unrank([index])) == [index]


def test_rank_unrank_inverse_on_samples_and_bounds(full: NB101Graph) -> None:
    rows = full.sample(np.random.default_rng(1), 5_000)
    assert full.is_valid(rows).all()
    assert np.array_equal(full.unrank(full.rank(rows)), rows)
    assert full.rank(full.unrank([0, 1_293_207])) == [0, 1_293_207]
    with pytest.raises(ValueError, match="out of range"):
        full.unrank([1_293_208])
    with pytest.raises(ValueError, match="out of range"):
        full.unrank([-1])


def test_same_seed_same_samples(full: NB101Graph) -> None:
    a = full.sample(np.random.default_rng(7), 50)
    assert np.array_equal(a, full.sample(np.random.default_rng(7), 50))
    assert not np.array_equal(a, full.sample(np.random.default_rng(8), 50))
    u = full.sample_unique(np.random.default_rng(7), 50)
    assert np.array_equal(u, full.sample_unique(np.random.default_rng(7), 50))


def test_sampling_is_uniform_over_vertex_counts(full: NB101Graph) -> None:
    rows = full.sample(np.random.default_rng(0), 40_000)
    frac7 = np.mean(rows[:, full.n_edge_slots:] != 3, axis=0)[-1]
    assert abs(frac7 - 1_164_699 / 1_293_208) < 0.01


def test_neighbours_are_exactly_the_valid_one_edits(small: NB101Graph) -> None:
    allrows = small.unrank(range(small.cardinality()))
    for row in allrows[np.random.default_rng(0).choice(len(allrows), 40, replace=False)]:
        nbs = small.neighbours(row)
        expected = allrows[np.sum(allrows != row, axis=1) == 1]
        assert {r.tobytes() for r in nbs} == {r.tobytes() for r in expected}
        assert len({r.tobytes() for r in nbs}) == len(nbs)
        assert np.all(small.edit_distance(row[None, :], nbs) == 1)


def test_neighbours_default_space(full: NB101Graph) -> None:
    for row in full.sample(np.random.default_rng(2), 50):
        nbs = full.neighbours(row)
        assert len(nbs) > 0 and full.is_valid(nbs).all()
        assert np.all(np.sum(nbs != row, axis=1) == 1)
        assert len({r.tobytes() for r in nbs}) == len(nbs)


# -- strings, specs, encodings -----------------------------------------------------------------
def test_string_form_and_round_trip(full: NB101Graph) -> None:
    space = get_space("nb101")
    m, ops = spec("0111010/0000001/0000001/0000100/0000001/0000001/0000000", [C1, C3, C3, C3, MP])
    row = full.from_spec(m, ops)
    text = space.to_str(row)
    assert text == ("adj=0111010/0000001/0000001/0000100/0000001/0000001/0000000 "
                    "ops=input,conv1x1-bn-relu,conv3x3-bn-relu,conv3x3-bn-relu,conv3x3-bn-relu,maxpool3x3,output")
    assert space.from_str(text).indices == tuple(row.tolist())
    m2, ops2 = full.spec(row)
    assert np.array_equal(m2, m) and ops2 == ops
    small_row = full.from_value("adj=011/001/000 ops=input,maxpool3x3,output")
    assert small_row[full.edge_index(0, 6)] == 1 and small_row[full.edge_index(1, 6)] == 1
    assert list(small_row[full.n_edge_slots:]) == [2, 3, 3, 3, 3]  # padding: op 'none'
    for r in space.sample(np.random.default_rng(0), 300):
        assert np.array_equal(space.from_str(space.to_str(r)).indices, r)
        assert space.from_json(space.to_json(space.arch(r))).indices == tuple(r.tolist())


def test_from_spec_prunes_on_request(full: NB101Graph) -> None:
    m, ops = spec("0110/0001/0000/0000", [C3, C1])  # vertex 2 never reaches the output
    with pytest.raises(ValueError, match="dangling.*prune_spec=True"):
        full.from_spec(m, ops)
    row = full.from_spec(m, ops, prune_spec=True)
    assert full.to_value(row) == "adj=010/001/000 ops=input,conv3x3-bn-relu,output"


def test_paths_and_path_encoding(full: NB101Graph) -> None:
    assert full.path_vocabulary_size() == 364
    row = full.from_value("adj=0110/0011/0001/0000 ops=input,conv3x3-bn-relu,maxpool3x3,output")
    assert full.paths(row) == [(0, (0,)), (0, (2,)), (0, (0, 2))]
    assert [full.path_index(p) for p in full.paths(row)] == [1, 3, 4 + 0 * 3 + 2]
    assert full.paths(full.from_value("adj=01/00 ops=input,output")) == [(0, ())]
    space = get_space("nb101")
    rows = space.sample(np.random.default_rng(0), 300)
    fast = full.path_features(rows)
    assert np.array_equal(fast, path_encoding(space, rows))
    assert np.all(fast.sum(axis=1) >= 1)


def test_adjacency_encodings(full: NB101Graph) -> None:
    space = get_space("nb101")
    row = full.from_value("adj=0110/0011/0001/0000 ops=input,conv3x3-bn-relu,maxpool3x3,output")
    a = full.adjacency(row)
    assert a.shape == (7, 7, 3)
    assert a[1, 0, 0] == 1 and a[2, 0, 2] == 1 and a[2, 1, 2] == 1 and list(a[6, 1]) == [1, 1, 1]
    assert a.sum() == 3 + 2 * 3  # three edges into interior vertices, two into the output on 3 channels
    rows = space.sample(np.random.default_rng(0), 20)
    assert adjacency_encoding(space, rows).shape == (20, 147)
    feats = full.adjacency_features(rows)
    assert feats.shape == (20, 21 + 15)
    assert np.array_equal(feats[:, :21], rows[:, :21])


# -- errors -------------------------------------------------------------------------------------
def test_invalid_rows_raise_naming_the_decision(full: NB101Graph) -> None:
    base = full.from_value("adj=0110/0011/0001/0000 ops=input,conv3x3-bn-relu,maxpool3x3,output")
    cases = []
    r = base.copy()
    r[full.edge_index(0, 1)] = 0  # vertex 1 loses its only in-edge
    cases.append((r, "'cell/op1'.*no incoming edge.*dangling"))
    r = base.copy()
    r[full.edge_index(2, 6)] = 0
    cases.append((r, "'cell/op2'.*no outgoing edge.*dangling"))
    r = base.copy()
    r[full.n_edge_slots + 3] = 0  # an op on an unused slot
    cases.append((r, "'cell/op4'.*no edges.*'none'"))
    r = base.copy()
    r[full.n_edge_slots + 1] = 3  # vertex 2 with edges but op none
    cases.append((r, "'cell/op2'.*op 'none'"))
    r = np.zeros(full.width, dtype=np.int64)
    r[full.n_edge_slots:] = 3
    cases.append((r, "edge6<-0.*not connected"))
    gap = full.from_value("adj=0110/0001/0001/0000 ops=input,conv3x3-bn-relu,conv3x3-bn-relu,output")
    g2 = gap.copy()  # move vertex 2 to slot 3, leaving slot 2 empty
    g2[[full.edge_index(0, 2), full.edge_index(2, 6)]] = 0
    g2[[full.edge_index(0, 3), full.edge_index(3, 6)]] = 1
    g2[full.n_edge_slots + 1], g2[full.n_edge_slots + 2] = 3, 0
    cases.append((g2, "'cell/op3'.*slot 2 is unused"))
    dense = full.from_spec(*spec("0111000/0010000/0001000/0000100/0000010/0000001/0000000", [C3] * 5))
    dense[[full.edge_index(1, 3), full.edge_index(2, 4), full.edge_index(0, 5)]] = 1
    cases.append((dense, "11 edges, more than max_edges=9"))
    out_of_range = base.copy()
    out_of_range[full.n_edge_slots] = 7
    cases.append((out_of_range, "'cell/op1': index 7 is out of range"))
    for row, pattern in cases:
        assert not full.is_valid(row[None, :])[0]
        with pytest.raises(ValueError, match=pattern):
            full.validate(row)
        with pytest.raises(ValueError, match=pattern):
            get_space("nb101").arch(row.tolist())


@pytest.mark.parametrize("text,pattern", [
    ("adj=010/001 ops=input,conv3x3-bn-relu,output", "2 rows of 2"),
    ("adj=011/001/000", "both an 'adj=' and an 'ops='"),
    ("adj=011/001/000 ops=input,conv5x5,output", "'conv5x5' is not an op"),
    ("adj=011/001/000 ops=conv3x3-bn-relu,input,output", "must start with 'input'"),
    ("adj=011/101/000 ops=input,conv3x3-bn-relu,output", "below the diagonal"),
    ("adj=00000000/00000000/00000000/00000000/00000000/00000000/00000000/00000000 "
     "ops=input,maxpool3x3,maxpool3x3,maxpool3x3,maxpool3x3,maxpool3x3,maxpool3x3,output", "dangling"),
    ("size=3", "bad field"),
])
def test_bad_strings_raise(text: str, pattern: str) -> None:
    with pytest.raises(ValueError, match=pattern):
        get_space("nb101").from_str(text)


def test_too_many_vertices_string() -> None:
    with pytest.raises(ValueError, match="more than max_vertices=4"):
        get_space("nb101", max_vertices=4).from_str(
            "adj=01000/00100/00010/00001/00000 ops=input,maxpool3x3,maxpool3x3,maxpool3x3,output")


@pytest.mark.parametrize("kwargs,pattern", [
    ({"max_vertices": 8}, "max_vertices=8"), ({"max_vertices": 1}, "max_vertices=1"),
    ({"max_edges": 0}, "max_edges=0"), ({"ops": ["a", "a"]}, "distinct"), ({"ops": ["none"]}, "other than"),
])
def test_bad_parameters(kwargs: dict, pattern: str) -> None:
    with pytest.raises(ValueError, match=pattern):
        NB101Graph(**kwargs)


# -- conformance and declarations ---------------------------------------------------------------
@pytest.mark.parametrize("max_vertices,max_edges", [(5, 9), (7, 9)])
def test_conformance(max_vertices: int, max_edges: int) -> None:
    space = nb101(max_vertices, max_edges)
    check_space(space)
    assert space.describe()["blocks"][0]["max_vertices"] == max_vertices


@pytest.mark.parametrize("max_vertices,max_edges", [(2, 9), (3, 9), (4, 4)])
def test_conformance_tiny_variants(max_vertices: int, max_edges: int) -> None:
    """The suite's checks, except that the lone 2-vertex spec (input -> output) has no one-edit
    neighbour: reaching another vertex count takes two edges and an op."""
    space = nb101(max_vertices, max_edges)
    rows = check_samples_valid(space, seed=0)
    check_round_trip(space, rows[:16])
    check_rank_unrank(space, rows)
    check_canonical_invariance(space, rows)
    assert check_enumeration(space)
    lone = space.from_str("adj=01/00 ops=input,output")
    assert len(space.neighbours(lone)) == 0
    others = space.enumerate()
    others = others[np.any(others != np.asarray(lone.indices), axis=1)]
    if len(others):
        check_neighbours(space, others, max_rows=len(others))


def test_small_variant_unique_sampling_and_counts() -> None:
    p = NB101Graph(max_vertices=4, ops=("a", "b"))
    assert p.cardinality() == 1 + 2 * 2 + 10 * 4
    rows = p.unrank(range(p.cardinality()))
    assert p.unique_cardinality() == len(set(p.canonical(r) for r in rows))
    u = p.sample_unique(np.random.default_rng(0), 2_000)
    assert len({r.tobytes() for r in u}) == p.unique_cardinality()


def test_declared_block() -> None:
    space = space_from_dict({"name": "tiny_nb101", "blocks": [{"kind": "nb101", "name": "cell", "max_vertices": 4,
                                                               "max_edges": 5}]})
    assert space.cardinality() == NB101Graph(max_vertices=4, max_edges=5).cardinality()
    assert space.from_str("adj=01/00 ops=input,output").indices[-2:] == (3, 3)
