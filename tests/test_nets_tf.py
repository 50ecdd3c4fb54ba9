"""TF-convention cells and networks (NASNet-A, AmoebaNet-A, PNASNet-5, ENAS micro) and the ENAS macro net.

Parameter counts are the ones these builders derive from the official code's layout; each test
comments the paper's rounded figure and why the two differ.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import torch
from nasatlas.spaces.cost import count_macs, count_macs_hooks, count_params
from nasatlas.spaces.nets.enas_macro_net import (
    ENAS_MACRO_FINAL_ARC,
    ENAS_MACRO_OP_IDS,
    ENASMacroNetwork,
    parse_enas_macro_arc,
)
from nasatlas.spaces.nets.tf_cell_net import (
    AMOEBANET_A_NORMAL,
    AMOEBANET_A_REDUCE,
    ENAS_MICRO_FINAL_ARC,
    NASNET_A_NORMAL,
    NASNET_A_REDUCE,
    PNASNET_5_CELL,
    AmoebaNetMobileNetwork,
    ENASMicroNetwork,
    NASNetMobileNetwork,
    PNASNetMobileNetwork,
    TFCell,
    TFCellNetwork,
    TFCellSpec,
    enas_micro_specs,
)
from nasatlas.spaces.ops_tf import TFFactorizedReduce, make_tf_op

GENOTYPES = Path(__file__).resolve().parents[1] / ".." / "shared" / "reference" / "genotypes.json"
_skip_no_shared = pytest.mark.skipif(not GENOTYPES.exists(), reason="no ../shared/reference/genotypes.json")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def needs_shared(test: Any) -> Any:
    """Mark a test that reads ../shared/reference/genotypes.json; skipped when it is absent."""
    return pytest.mark.needs_shared(_skip_no_shared(test))


def _genotypes() -> dict[str, Any]:
    return json.loads(GENOTYPES.read_text())


def _darts_name(name: str) -> str:
    """genotypes.json's DARTS-convention op names with annotations -> nasatlas names."""
    if name.startswith("atrous_conv_"):
        return "atr_conv_" + name[len("atrous_conv_"):][:3]
    if name.startswith("conv_7x1_1x7(bottleneck"):
        return "conv_1x7_7x1_bottleneck"
    return name


TF_CELLS = {
    ("NASNet_A_official_TF", "normal"): NASNET_A_NORMAL,
    ("NASNet_A_official_TF", "reduce"): NASNET_A_REDUCE,
    ("AmoebaNet_A_official_TF", "normal"): AMOEBANET_A_NORMAL,
    ("AmoebaNet_A_official_TF", "reduce"): AMOEBANET_A_REDUCE,
    ("PNASNet5_official_TF", "cell"): PNASNET_5_CELL,
}


# ---------------------------------------------------------------- cell specs and conventions


@needs_shared
@pytest.mark.parametrize("key", list(TF_CELLS), ids=lambda k: "/".join(k))
def test_official_specs_equal_genotypes(key: tuple[str, str]) -> None:
    entry = _genotypes()[key[0]][key[1]]
    assert TFCellSpec.from_mapping(entry) == TF_CELLS[key]


@needs_shared
@pytest.mark.parametrize("key", [*TF_CELLS, ("AutoDeepLab_official", "cell")], ids=lambda k: "/".join(k))
def test_tf_and_darts_index_conventions_describe_the_same_cell(key: tuple[str, str]) -> None:
    entry = _genotypes()[key[0]][key[1]]
    spec = TFCellSpec.from_mapping(entry)
    edges, concat = spec.to_darts()
    want = [(_darts_name(op), i) for op, i in entry["darts_convention_edges"]]
    assert Counter(edges) == Counter(want)  # same multiset of (op, input) after the 0 <-> 1 swap
    assert edges == want  # and in the same order
    assert concat == entry["darts_convention_concat"]
    assert TFCellSpec.from_darts(edges, concat) == spec


def test_swap_is_not_the_identity() -> None:
    # NASNet-A normal: TF hidden state 1 (c_{k-2}) is concatenated -> DARTS index 0 in the concat.
    edges, concat = NASNET_A_NORMAL.to_darts()
    assert concat == [0, 2, 3, 4, 5, 6]
    assert edges[0] == ("sep_conv_5x5", 1) and NASNET_A_NORMAL.hiddenstate_indices[0] == 0


@needs_shared
def test_enas_micro_arc_decodes_to_the_published_cells() -> None:
    entry = _genotypes()["ENAS_official_final_arc"]
    assert ENAS_MICRO_FINAL_ARC.split() == entry["raw_fixed_arc"].replace("|", " ").split()
    normal, reduce = enas_micro_specs(entry["raw_fixed_arc"])
    for spec, cell in ((normal, "normal"), (reduce, "reduce")):
        edges, concat = spec.to_darts()
        assert edges == [tuple(e) for e in entry[cell]]
        assert concat == entry[f"{cell}_concat"]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"hiddenstate_indices": [0, 2, 1, 1, 0, 1, 1, 1, 0, 0]}, r"hiddenstate_indices\[1\]=2 is out of"),
        ({"hiddenstate_indices": [0, 1, 1, 1, 0, 1, 1, 1, 0, 7]}, r"hiddenstate_indices\[9\]=7"),
        ({"hiddenstate_indices": [0, 1, 1]}, "hiddenstate_indices has length 3"),
        ({"used_hiddenstates": [1, 0, 0, 0, 0, 0]}, "used_hiddenstates has length 6"),
        ({"used_hiddenstates": [1, 1, 1, 1, 1, 1, 1]}, "used_hiddenstates marks every state"),
        ({"used_hiddenstates": [1, 2, 0, 0, 0, 0, 0]}, "used_hiddenstates=.* only 0 and 1"),
        ({"operations": ("sep_conv_3x3",) * 9}, "operations has length 9"),
        ({"operations": ("separable_3x3_2",) * 10}, r"operations\[0\]='separable_3x3_2' .*from_tf"),
        ({"combine": "mul"}, "combine='mul'"),
    ],
)
def test_malformed_spec_raises_naming_the_field(kwargs: dict[str, Any], field: str) -> None:
    base: dict[str, Any] = {
        "operations": NASNET_A_NORMAL.operations,
        "hiddenstate_indices": NASNET_A_NORMAL.hiddenstate_indices,
        "used_hiddenstates": NASNET_A_NORMAL.used_hiddenstates,
    }
    with pytest.raises(ValueError, match=field):
        TFCellSpec(**{**base, **kwargs})


def test_malformed_enas_arc_raises() -> None:
    with pytest.raises(ValueError, match="arc has 39 integers"):
        enas_micro_specs(ENAS_MICRO_FINAL_ARC.split()[:-1])
    with pytest.raises(ValueError, match="input id 3 at position 4"):
        enas_micro_specs("0 0 0 0 3 0 0 0" + " 0 0 0 0" * 8)


# ---------------------------------------------------------------- ops


def test_tf_factorized_reduce_odd_sizes_and_widths() -> None:
    fr = TFFactorizedReduce(6, 25)  # AmoebaNet-A mobile's second stem cell needs 25 (TF asserts even)
    y = fr(torch.randn(2, 6, 111, 111))
    assert y.shape == (2, 25, 56, 56)  # TF SAME/VALID arithmetic on odd inputs: ceil(111 / 2)
    assert not isinstance(fr.relu, torch.nn.ReLU)


def test_tf_ops_project_where_tf_does() -> None:
    # Pooling keeps C_in, then projects (no ReLU in NASNet code, ReLU first in ENAS code).
    nas = make_tf_op("avg_pool_3x3", 6, 4, 1)
    enas = make_tf_op("avg_pool_3x3", 6, 4, 1, style="enas")
    assert count_params(nas) == count_params(enas) == 6 * 4 + 2 * 4
    # The TF separable stack maps C_in -> C_out in its first layer.
    sep = make_tf_op("sep_conv_3x3", 6, 4, 2)
    assert count_params(sep) == (9 * 6 + 6 * 4 + 8) + (9 * 4 + 4 * 4 + 8)
    assert make_tf_op("skip_connect", 4, 4, 1)(torch.ones(1, 4, 3, 3)).sum() == 36
    # a sampled cell may read a raw, wider input with the bottleneck op: a 1x1 projection comes first
    bott = make_tf_op("conv_1x7_7x1_bottleneck", 6, 4, 1)
    assert count_params(bott) == (6 * 4 + 8) + count_params(make_tf_op("conv_1x7_7x1_bottleneck", 4, 4, 1))
    assert bott(torch.randn(1, 6, 5, 5)).shape == (1, 4, 5, 5)


def test_cell_requires_prev_layer_when_built_with_one() -> None:
    cell = TFCell(NASNET_A_NORMAL, 8, 8, 4)
    with pytest.raises(ValueError, match="pass prev_layer"):
        cell(torch.randn(1, 8, 5, 5), None)


# ---------------------------------------------------------------- published mobile networks


@pytest.mark.parametrize(
    ("cls", "params", "macs", "paper_params", "paper_macs"),
    [
        # NASNet-A Mobile 4@1056 (Zoph et al. 2018, table 2: 5.3M, 564M); 1000 classes, no aux head.
        (NASNetMobileNetwork, 5_289_978, 563_638_816, 5.3e6, 564e6),
        # AmoebaNet-A N=4, F=50 (Real et al. 2019, table 2: 5.1M, 555M). The only deviation from the
        # official code: its even-width assert would reject the 25-channel stem reduction F=50 needs.
        (AmoebaNetMobileNetwork, 5_086_930, 554_687_204, 5.1e6, 555e6),
        # PNASNet-5 mobile, 9 cells, F=54 (Liu et al. 2018, table 5: 5.1M, 588M).
        (PNASNetMobileNetwork, 5_064_487, 587_293_200, 5.1e6, 588e6),
    ],
    ids=["nasnet_a", "amoebanet_a", "pnasnet_5"],
)
def test_mobile_network_counts(cls: type, params: int, macs: int, paper_params: float,
                               paper_macs: float) -> None:
    with torch.device("meta"):  # counts need shapes only
        net = cls()
    assert count_params(net) == params
    assert abs(params / paper_params - 1) < 0.02  # papers round to 0.1M
    assert count_macs(net, (1, 3, 224, 224)) == macs
    assert abs(macs / paper_macs - 1) < 0.005  # conv + linear multiply-adds, rounded to 1M in the papers
    if cls is NASNetMobileNetwork:  # cross-check the FlopCounterMode count once with conv/linear hooks
        assert count_macs_hooks(net, (1, 3, 224, 224)) == macs


def test_nasnet_a_cifar_count() -> None:
    # NASNet-A (6 @ 768) CIFAR-10, TF-slim cifar_config (18 cells, F=32, stem 96, raw stem read by cell 0):
    # Zoph et al. 2018, table 1, report 3.3M.
    with torch.device("meta"):
        net = TFCellNetwork(NASNET_A_NORMAL, NASNET_A_REDUCE, num_cells=18, num_conv_filters=32, stem="cifar",
                            num_classes=10, stem_filters=96)
    assert count_params(net) == 3_346_538
    assert net.num_output_features == 768


def test_aux_head_adds_the_nasnet_auxiliary_classifier() -> None:
    with torch.device("meta"):
        net = NASNetMobileNetwork(auxiliary=True)
    # aux head at 14x14 -> 5x5/3 pool -> 4x4: 528*128 + 256 + 128*768*16 + 1536 + 768*1000 + 1000
    assert count_params(net) - 5_289_978 == 2_411_240
    assert net.aux_head is not None and count_params(net.aux_head) == 2_411_240


def test_enas_micro_final_count() -> None:
    # ENAS micro final (15 layers, out_filters 36, fixed_arc of cifar10_micro_final.sh). Pham et al.
    # 2018, table 1, report 4.6M; the official micro_child.py layout gives 3,894,372 without the auxiliary
    # head (the code's own count excludes it) and 4,389,220 with it. The paper's figure is not reproduced.
    with torch.device("meta"):
        net = ENASMicroNetwork()
        with_aux = ENASMicroNetwork(auxiliary=True)
    assert count_params(net) == 3_894_372
    assert count_params(with_aux) == 4_389_220
    assert net.classifier.bias is None  # ENAS's final layer is a bias-free matmul


# ---------------------------------------------------------------- forward / backward at tiny size


def _train_step(net: torch.nn.Module, x: torch.Tensor, n_classes: int, aux: bool) -> None:
    net.train()
    out = net(x)
    logits, aux_logits = out if aux else (out, None)
    assert logits.shape == (x.shape[0], n_classes)
    target = torch.zeros(x.shape[0], dtype=torch.long)
    loss = torch.nn.functional.cross_entropy(logits, target)
    if aux:
        assert aux_logits is not None and aux_logits.shape == logits.shape
        loss = loss + 0.4 * torch.nn.functional.cross_entropy(aux_logits, target)
    loss.backward()
    missing = [n for n, p in net.named_parameters() if p.grad is None]
    assert not missing, missing[:5]
    net.eval()
    with torch.no_grad():
        out = net(x)
    if aux:
        assert out[1] is None
        out = out[0]
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("cls", [NASNetMobileNetwork, AmoebaNetMobileNetwork, PNASNetMobileNetwork])
def test_mobile_networks_train_at_tiny_size(cls: type) -> None:
    torch.manual_seed(0)
    net = cls(num_classes=5, num_conv_filters=8, num_cells=3, auxiliary=True, drop_path=0.1, image_size=96)
    _train_step(net, torch.randn(2, 3, 96, 96), 5, aux=True)
    assert net.drop_prob == 0.1
    net.drop_prob = 0.0
    assert all(c.drop_prob == 0.0 for c in net.cells)


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")  # TF SAME, 2x2 aux conv
def test_enas_micro_trains_at_tiny_size() -> None:
    torch.manual_seed(0)
    net = ENASMicroNetwork(num_layers=3, out_filters=8, auxiliary=True, drop_path=0.1)
    _train_step(net, torch.randn(2, 3, 32, 32), 10, aux=True)


def test_cifar_stem_first_cell_reads_the_stem_raw() -> None:
    net = TFCellNetwork(NASNET_A_NORMAL, NASNET_A_REDUCE, num_cells=3, num_conv_filters=8, stem="cifar",
                        num_classes=10, stem_filters=24)
    first = net.cells[0]
    assert isinstance(first, TFCell) and first.raw_prev
    # state 1 (the raw 24-channel stem) is concatenated, so NASNet reduces it to 8 channels first
    assert "1" in first.combine_reduce
    _train_step(net, torch.randn(2, 3, 16, 16), 10, aux=False)


def test_network_config_errors() -> None:
    with pytest.raises(ValueError, match="stem='mnist'"):
        TFCellNetwork(NASNET_A_NORMAL, num_cells=3, num_conv_filters=8, stem="mnist")
    with pytest.raises(ValueError, match="reduction_indices="):
        TFCellNetwork(NASNET_A_NORMAL, num_cells=3, num_conv_filters=8, reduction_indices=[5])
    with pytest.raises(ValueError, match="feature_size"):
        NASNetMobileNetwork(num_conv_filters=8, num_cells=3, auxiliary=True, image_size=64)


# ---------------------------------------------------------------- ENAS macro


def test_enas_macro_trains_at_tiny_size() -> None:
    torch.manual_seed(0)
    ops = list(ENAS_MACRO_OP_IDS) * 2  # 12 layers, all six ops; pools after layers 3 and 7
    skips = [[int((k + j) % 3 == 0) for j in range(k)] for k in range(12)]
    for combine in ("concat", "sum"):
        net = ENASMacroNetwork(ops, skips, C=4, skip_combine=combine)  # type: ignore[arg-type]
        assert net.pool_layers == [3, 7]
        x = torch.randn(2, 3, 16, 16)
        net(x).sum().backward()
        assert all(p.grad is not None for p in net.parameters())
        assert net(x).shape == (2, 10)


def test_enas_macro_final_arc_counts() -> None:
    # The official final macro network: 24 layers, out_filters 96 (cifar10_macro_final.sh). Pham et al.
    # 2018, table 1, report 21.3M. With true separable convs this layout has 30,947,424 parameters; the
    # official _fixed_layer builds the separable ops as full convs, which gives 42,559,392. Neither is the
    # paper's figure.
    ops, skips = parse_enas_macro_arc(ENAS_MACRO_FINAL_ARC, 24)
    assert len(ops) == 24 and skips[1] == [0] and skips[23][:3] == [1, 1, 0]
    with torch.device("meta"):
        assert count_params(ENASMacroNetwork.from_arc()) == 30_947_424
        assert count_params(ENASMacroNetwork.from_arc(separable_as_full_conv=True)) == 42_559_392


def test_enas_macro_errors() -> None:
    with pytest.raises(ValueError, match=r"skips\[2\]=\[1\] must be 2 bits"):
        ENASMacroNetwork(["conv_3x3"] * 3, [[], [0], [1]])
    with pytest.raises(ValueError, match=r"ops\[0\]='conv_7x7'"):
        ENASMacroNetwork(["conv_7x7"], [[]])
    with pytest.raises(ValueError, match="skips has 1 entries but ops has 2"):
        ENASMacroNetwork(["conv_3x3"] * 2, [[]])
    with pytest.raises(ValueError, match="a 24-layer macro arc has 300"):
        parse_enas_macro_arc("0 1", 24)
