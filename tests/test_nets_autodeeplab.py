"""Auto-DeepLab: exact parameter counts of the published S/M/L networks, MACs, trellis-path checks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from nasatlas.spaces.cost import count_macs, count_macs_hooks, count_params
from nasatlas.spaces.nets.autodeeplab_net import (
    AUTODEEPLAB_CELL,
    AUTODEEPLAB_PATH,
    AutoDeepLab,
    check_path_levels,
)
from nasatlas.spaces.nets.tf_cell_net import TFCellSpec

GENOTYPES = Path(__file__).resolve().parents[1] / ".." / "shared" / "reference" / "genotypes.json"
_skip_no_shared = pytest.mark.skipif(not GENOTYPES.exists(), reason="no ../shared/reference/genotypes.json")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def needs_shared(test: Any) -> Any:
    """Mark a test that reads ../shared/reference/genotypes.json; skipped when it is absent."""
    return pytest.mark.needs_shared(_skip_no_shared(test))


def _meta(**kwargs: object) -> AutoDeepLab:
    with torch.device("meta"):  # counting needs shapes only
        return AutoDeepLab(**kwargs)  # type: ignore[arg-type]


def test_autodeeplab_s_has_exactly_the_published_parameter_count() -> None:
    # Liu et al. 2019, table 3: Auto-DeepLab-S, F=20, Cityscapes (19 classes): 10.15M (exactly 10,147,427).
    net = AutoDeepLab()
    assert count_params(net) == 10_147_427
    assert net.output_stride == 8 and net.decoder_end_point == 2


@pytest.mark.parametrize(("F", "params", "paper"), [(32, 21_622_451, 21.62e6), (48, 44_424_691, 44.42e6)])
def test_autodeeplab_m_and_l(F: int, params: int, paper: float) -> None:
    # Auto-DeepLab-M/L (table 3: 21.62M / 44.42M): the same layout reproduces both to the paper's rounding.
    n = count_params(_meta(F=F))
    assert n == params
    assert abs(n - paper) < 0.005e6


def test_cell_widths_follow_b_f_s_over_4() -> None:
    net = _meta()
    for cell, level in zip(net.cells, AUTODEEPLAB_PATH):
        assert cell.C_out == 5 * 20 * (4 * 2**level) // 4  # B * F * s / 4


def test_macs_at_reduced_input() -> None:
    # 65x129 (= 1025x2049 / 16, same odd-size arithmetic); conv + linear multiply-accumulates.
    net = _meta()
    assert count_macs(net, (1, 3, 65, 129)) == count_macs_hooks(net, (1, 3, 65, 129)) == 1_431_676_472


@pytest.mark.slow
@pytest.mark.parametrize(
    ("F", "macs", "paper"),
    [(20, 320_450_382_392, 333.25e9), (32, 439_922_432_384, 460.93e9), (48, 662_424_364_896, 695.03e9)],
)
def test_macs_at_cityscapes_resolution(F: int, macs: int, paper: float) -> None:
    # Table 3 Multi-Adds at 1025x2049 are 4.0% / 4.8% / 4.9% above our conv + linear MACs. About 58-60% of
    # the gap is what TF 1.x's space-to-batch execution of dilated convs adds (ASPP rates 12/24/36 on a
    # 129x257 map compute 5/15/25% extra outputs); the rest is exactly 0.269 * F billion, i.e. some cost
    # linear in F that a conv + linear count does not include.
    got = count_macs(_meta(F=F), (1, 3, 1025, 2049))
    assert got == macs
    assert 1.03 < paper / got < 1.06


def test_forward_backward_at_tiny_width() -> None:
    torch.manual_seed(0)
    net = AutoDeepLab(F=4, num_classes=3, aspp_depth=8, decoder_channels=8, low_level_channels=4,
                      drop_path=0.1)
    x = torch.randn(2, 3, 65, 129)
    y = net(x)
    assert y.shape == (2, 3, 65, 129)
    torch.nn.functional.cross_entropy(y, torch.zeros(2, 65, 129, dtype=torch.long)).backward()
    assert all(p.grad is not None for p in net.parameters())
    net.eval()
    with torch.no_grad():
        assert net(x[:1]).shape == (1, 3, 65, 129)
    net.drop_prob = 0.0
    assert net.drop_prob == 0.0


def test_path_without_decoder_and_from_the_stem() -> None:
    # Ends at /4: no decoder. Starts at /8: the decoder would read the stem, but OS 4 -> no decoder either.
    net = AutoDeepLab([0, 1, 0], F=4, num_classes=2, aspp_depth=8)
    assert net.decoder is None and net.output_stride == 4
    net = AutoDeepLab([1, 2], F=4, num_classes=2, aspp_depth=8, decoder_channels=8, low_level_channels=4)
    assert net.decoder_end_point == -1 and net.output_stride == 16
    assert net(torch.randn(2, 3, 33, 33)).shape == (2, 2, 33, 33)


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ([0, 2, 1], r"path_levels\[1\]=2 jumps 2 levels from path_levels\[0\]=0"),
        ([0, 1, 2, 4], r"path_levels\[3\]=4 is out of range"),
        ([2, 2], r"path_levels\[0\]=2 jumps 2 levels from the /4 stem"),
        ([0, -1], r"path_levels\[1\]=-1 is out of range"),
        ([], "path_levels is empty"),
    ],
)
def test_invalid_path_raises_naming_the_field(path: list[int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_path_levels(path)
    with pytest.raises(ValueError, match=message):
        AutoDeepLab(path, F=4)


def test_invalid_arguments() -> None:
    with pytest.raises(ValueError, match="F=0"):
        AutoDeepLab(F=0)
    with pytest.raises(TypeError, match="TFCellSpec"):
        AutoDeepLab(cell="hnasnet")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="decoder_end_point=5"):
        AutoDeepLab(F=4, decoder_end_point=5)


@needs_shared
def test_official_cell_and_path_equal_genotypes() -> None:
    entry = json.loads(GENOTYPES.read_text())["AutoDeepLab_official"]
    assert tuple(entry["network_path_levels"]) == AUTODEEPLAB_PATH
    assert [4 * 2**v for v in AUTODEEPLAB_PATH] == entry["network_path_downsample"]
    assert TFCellSpec.from_mapping(entry["cell"]) == AUTODEEPLAB_CELL
    assert entry["decoder_end_points"]["4"] == f"Cell_{AutoDeepLab().decoder_end_point}"
