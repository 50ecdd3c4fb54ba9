"""Cell-space specifics: NB201 conventions, DARTS genotypes, isomorphism, encodings, distances."""

from __future__ import annotations

import json

import numpy as np
import pytest
from nasatlas.spaces import get_space
from nasatlas.spaces.encodings import adjacency_encoding, encode, onehot, path_encoding

from .conftest import GENOTYPES, need


def test_nb201_semantic_merges_the_issue_example() -> None:
    s = get_space("nb201")
    a = s.from_str("|nor_conv_3x3~0|+|none~0|none~1|+|none~0|nor_conv_3x3~1|none~2|")
    b = s.from_str("|nor_conv_3x3~0|+|none~0|none~1|+|none~0|nor_conv_3x3~1|skip_connect~2|")
    assert s.canonical_form(a, "semantic") == s.canonical_form(b, "semantic")
    assert s.canonical_form(a, "published") != s.canonical_form(b, "published")


def test_nb201_published_rule_by_hand() -> None:
    s = get_space("nb201")
    a = s.from_str("|skip_connect~0|+|none~0|nor_conv_1x1~1|+|avg_pool_3x3~0|none~1|skip_connect~2|")
    # node1 = "0"; node2 = sorted(["#", "(0)@nor_conv_1x1"]); node3 = sorted(["(0)@avg_pool_3x3", "#", node2])
    node2 = "#+(0)@nor_conv_1x1"
    assert s.canonical_form(a, "published") == "+".join(sorted(["(0)@avg_pool_3x3", "#", node2]))
    assert s.canonical_form(a, "semantic") == "(0)@avg_pool_3x3+(0)@nor_conv_1x1"


def test_darts_genotypes_parse_and_canonicalise() -> None:
    ref = json.loads(need(GENOTYPES).read_text())
    s = get_space("darts")
    for key in ("DARTS_V1", "DARTS_V2", "PC_DARTS_cifar", "PDARTS", "GDAS_V1"):
        g = ref[key]
        text = ("Genotype(normal=" + repr([tuple(p) for p in g["normal"]]) + f", normal_concat={g['normal_concat']}"
                ", reduce=" + repr([tuple(p) for p in g["reduce"]]) + f", reduce_concat={g['reduce_concat']})")
        a = s.from_str(text)
        assert s.from_str(s.to_str(a)) == a
        # the same genotype with each node's two edges listed the other way round is the same arch
        swapped = [tuple(p) for i in range(0, 8, 2) for p in (g["normal"][i + 1], g["normal"][i])]
        text2 = text.replace(repr([tuple(p) for p in g["normal"]]), repr(swapped))
        assert s.from_str(text2) == a


def test_darts_isomorphic_cells_share_an_id() -> None:
    s = get_space("darts")
    base = ("Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('skip_connect', 0), ('max_pool_3x3', 1), "
            "('dil_conv_3x3', 2), ('sep_conv_5x5', 3), ('avg_pool_3x3', 0), ('skip_connect', 1)], "
            "reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 1), "
            "('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)])")
    # swap nodes 2 and 3 (neither feeds the other) and fix the references of node 4
    swapped = base.replace(
        "normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('skip_connect', 0), ('max_pool_3x3', 1), "
        "('dil_conv_3x3', 2), ('sep_conv_5x5', 3)",
        "normal=[('skip_connect', 0), ('max_pool_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), "
        "('dil_conv_3x3', 3), ('sep_conv_5x5', 2)")
    a, b = s.from_str(base), s.from_str(swapped)
    assert a != b
    assert s.canonical_id(a) == s.canonical_id(b)
    c = s.from_str(base.replace("('avg_pool_3x3', 0)", "('avg_pool_3x3', 2)"))
    assert s.canonical_id(c) != s.canonical_id(a)


def test_small_darts_unique_count_matches_brute_force_orbits() -> None:
    """Orbits of the node-relabelling group, counted by brute force, equal the canonical classes."""
    import itertools
    s = get_space("darts", nodes=3, ops=["a", "b"])
    cell = s.primitive("normal")
    rows = cell.unrank(range(cell.cardinality()))
    forms = {cell.canonical(r) for r in rows}
    seen: set[bytes] = set()
    orbits = 0
    for r in rows:
        if r.tobytes() in seen:
            continue
        orbits += 1
        edges = cell.node_edges(r)
        for perm in itertools.permutations(range(3)):
            mapping = {0: 0, 1: 1, **{2 + old: 2 + new for new, old in enumerate(perm)}}
            order = [perm[i] for i in range(3)]
            new_edges: list[list[tuple[int, int]]] = [[] for _ in range(3)]
            ok = True
            for new_pos, old in enumerate(order):
                mapping = {0: 0, 1: 1, **{2 + o: 2 + n for n, o in enumerate(order)}}
                node = [(mapping[i], op) for i, op in edges[old]]
                if any(i >= 2 + new_pos for i, _ in node):
                    ok = False
                new_edges[new_pos] = node
            if ok:
                seen.add(cell.row_from_edges(new_edges, None).tobytes())
    assert len(forms) == orbits


def test_encodings_shapes() -> None:
    s = get_space("nb201")
    rows = s.sample(np.random.default_rng(0), 10)
    assert onehot(s, rows).shape == (10, 30)
    assert adjacency_encoding(s, rows).shape == (10, 4 * 4 * 5)
    pe = path_encoding(s, rows)
    assert pe.shape == (10, 4 + 16 + 64)   # BANANAS NB201: paths of 1..3 non-zero ops
    full = s.from_str("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|")
    assert path_encoding(s, s.rows([full])).sum() == 3   # 4 paths, the two of length 2 coincide
    empty = s.from_str("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|")
    assert path_encoding(s, s.rows([empty])).sum() == 0
    d = get_space("darts")
    assert encode(d, d.sample(np.random.default_rng(0), 3), "path").shape[0] == 3
    with pytest.raises(ValueError, match="no graph block"):
        path_encoding(get_space("fbnet"), get_space("fbnet").sample(np.random.default_rng(0), 1))


def test_distances() -> None:
    s = get_space("nb201")
    a = s.from_str("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|")
    b = s.from_str("|nor_conv_1x1~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|none~1|nor_conv_3x3~2|")
    assert int(s.distance(a, b, "hamming")) == 2
    assert int(s.distance(a, b, "edit")) == 2
    assert int(s.distance(a, b, "path")) > 0
    rows = s.sample(np.random.default_rng(1), 50)
    dm = s.distance(rows[:, None, :], rows[None, :, :], "hamming")
    assert dm.shape == (50, 50) and np.all(np.diag(dm) == 0) and np.array_equal(dm, dm.T)
    with pytest.raises(ValueError, match="allowed distances"):
        s.distance(a, b, "cosine")


def test_darts_edit_distance_moves_one_edge() -> None:
    s = get_space("darts")
    a = s.from_str("Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), "
                   "('sep_conv_3x3', 1), ('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), "
                   "('dil_conv_3x3', 2)], "
                   "reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 1), "
                   "('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)])")
    # move node 2's edge from input 1 to ... node 2 only has inputs 0,1; move node 5's skip from 0 to 3
    b = s.from_str(s.to_str(a).replace("('skip_connect', 0), ('dil_conv_3x3', 2)",
                                       "('dil_conv_3x3', 2), ('skip_connect', 3)"))
    assert int(s.distance(a, b, "edit")) == 1
    assert int(s.distance(a, b, "hamming")) >= 1
    assert any(np.array_equal(r, np.asarray(b.indices)) for r in s.neighbours(a))
