"""Every count derived from the declarations, compared with the papers' numbers."""

from __future__ import annotations

import math

import pytest
from nasatlas.spaces import get_space
from nasatlas.spaces.catalog import survey_cell_formula


def test_nb201_nominal_and_unique_counts() -> None:
    s = get_space("nb201")
    assert s.cardinality() == 5 ** 6 == 15_625
    assert s.unique_cardinality() == 6_466                      # NAS-Bench-201, consider_zero=True
    assert s.unique_cardinality("published_nozero") == 12_751   # consider_zero=False
    semantic = s.unique_cardinality("semantic")
    assert semantic is not None and semantic < 6_466            # merging equal functions can only merge more


def test_darts_counts() -> None:
    s = get_space("darts")
    per_cell = math.prod(math.comb(n, 2) for n in range(2, 6)) * 7 ** 8
    assert s.extra_counts()["cardinality_cell"] == per_cell == 1_037_664_180
    assert s.cardinality() == per_cell ** 2 == 1_076_746_950_455_072_400


def test_pnas_and_nasnet_literal_counts() -> None:
    # ordered inputs with replacement: block b (0-based) picks from (2+b)^2 input pairs
    inputs = math.prod((2 + b) ** 2 for b in range(5))
    assert inputs == 720 ** 2
    pnas = get_space("pnas")
    assert pnas.cardinality() == inputs * 8 ** 10 == 556_627_761_561_600
    nasnet = get_space("nasnet")
    per_cell = inputs * 13 ** 10 * 2 ** 5
    assert nasnet.extra_counts()["cardinality_cell"] == per_cell == 2_286_906_949_584_691_200
    assert nasnet.cardinality() == per_cell ** 2


def test_survey_formula() -> None:
    # (C1^2 * C2)^B * prod_{i=2}^{B+1} C(i+1, 2); for PNAS: 64^5 * (3*6*10*15*21)
    assert survey_cell_formula(8, 1, 5) == 64 ** 5 * 56_700
    assert get_space("pnas").extra_counts()["cardinality_survey"] == 64 ** 5 * 56_700
    assert get_space("nasnet").extra_counts()["cardinality_survey"] == survey_cell_formula(13, 2, 5) ** 2


def test_enas_counts() -> None:
    micro = get_space("enas_micro")
    assert micro.extra_counts()["cardinality_cell"] == math.prod((2 + b) ** 2 for b in range(5)) * 5 ** 10
    macro = get_space("enas_macro")
    assert macro.cardinality() == 6 ** 12 * 2 ** 66
    assert f"{macro.cardinality():.1e}" == "1.6e+29"            # ENAS's figure
    assert macro.extra_counts()["cardinality_nasrl"] == 6 ** 12 * 2 ** (11 * 10 // 2)


def test_autodeeplab_counts() -> None:
    s = get_space("autodeeplab")
    ex = s.extra_counts()
    assert ex["paths_paper"] == 28_657     # paper: "2.9 x 10^4"
    assert ex["paths_literal"] == 75_025
    assert ex["cardinality_cell"] == 556_627_761_561_600
    assert s.cardinality() == 28_657 * 556_627_761_561_600
    assert get_space("autodeeplab", paths="literal").cardinality() == 75_025 * 556_627_761_561_600


def fib(n: int) -> int:
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a


@pytest.mark.parametrize("layers", [1, 2, 5, 12])
def test_trellis_count_matches_brute_force(layers: int) -> None:
    import itertools
    s = get_space("autodeeplab", layers=layers, blocks=1).primitive("path")
    brute = sum(1 for p in itertools.product(range(4), repeat=layers)
                if p[0] == 0 and all(abs(a - b) <= 1 for a, b in zip(p, p[1:])))
    assert s.cardinality() == brute
    assert get_space("autodeeplab", layers=12).primitive("path").cardinality() == fib(23)


def test_chain_counts() -> None:
    assert get_space("proxylessnas").cardinality() == 6 ** 6 * 7 ** 15
    assert get_space("fbnet").cardinality() == 9 ** 22
    assert get_space("mnasnet").cardinality() == 432 ** 5
    assert get_space("mnasnet", blocks=7).cardinality() == 432 ** 7
    assert 4 * 2 * 2 * 3 * 3 * 3 == 432


def test_cardinalities_are_python_ints() -> None:
    from nasatlas.spaces import list_spaces
    for name in list_spaces():
        if name == "nb101":
            continue
        assert type(get_space(name).cardinality()) is int
