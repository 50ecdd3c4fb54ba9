"""Tests for the DARTS and NAS-Bench-201 evaluation networks: exact published counts, errors, drop-path.

Reference counts: DARTS official code (quark0/darts, ``count_parameters_in_MB`` excludes the auxiliary
head) gives 3,349,342 (DARTS_V2) and 3,169,414 (DARTS_V1) parameters for C=36, 20 cells, 10 classes.
NB201 parameter counts/FLOPs come from ``../shared/data/nb201_cost_cifar10_subset.parquet``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from nasatlas.spaces.cost import count_macs, count_macs_hooks, count_params
from nasatlas.spaces.nets.darts_net import (
    DartsCifarNetwork,
    DartsImageNetNetwork,
    Genotype,
    genotype_from_dict,
)
from nasatlas.spaces.nets.nb201_net import (
    NB201_OPS,
    NB201Network,
    nb201_string,
    parse_nb201_string,
)
from torch import nn

SHARED = Path(__file__).resolve().parents[2] / "shared"
DATA = SHARED / "data"
NB201_COST = DATA / "nb201_cost_cifar10_subset.parquet"

# The published DARTS cells (Liu et al. 2019, fig. 4/5; quark0/darts cnn/genotypes.py).
DARTS_V1 = Genotype(
    normal=[("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("skip_connect", 0), ("sep_conv_3x3", 1),
            ("skip_connect", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("skip_connect", 2)],
    normal_concat=[2, 3, 4, 5],
    reduce=[("max_pool_3x3", 0), ("max_pool_3x3", 1), ("skip_connect", 2), ("max_pool_3x3", 0),
            ("max_pool_3x3", 0), ("skip_connect", 2), ("skip_connect", 2), ("avg_pool_3x3", 0)],
    reduce_concat=[2, 3, 4, 5],
)
DARTS_V2 = Genotype(
    normal=[("sep_conv_3x3", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("sep_conv_3x3", 1),
            ("sep_conv_3x3", 1), ("skip_connect", 0), ("skip_connect", 0), ("dil_conv_3x3", 2)],
    normal_concat=[2, 3, 4, 5],
    reduce=[("max_pool_3x3", 0), ("max_pool_3x3", 1), ("skip_connect", 2), ("max_pool_3x3", 1),
            ("max_pool_3x3", 0), ("skip_connect", 2), ("skip_connect", 2), ("max_pool_3x3", 1)],
    reduce_concat=[2, 3, 4, 5],
)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _build(cls: type[nn.Module], *args: object, **kwargs: object) -> nn.Module:
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return cls(*args, **kwargs)


@pytest.fixture(scope="module")
def darts_v2_cifar() -> nn.Module:
    return _build(DartsCifarNetwork, DARTS_V2, C=36, num_classes=10, layers=20, auxiliary=True)


# --------------------------------------------------------------------------------------- DARTS


def test_reference_genotypes_match_shared_file() -> None:
    path = SHARED / "reference" / "genotypes.json"
    if not path.exists():
        pytest.skip(f"{path} not present (the shared reference data lives beside the repository)")
    ref = json.loads(path.read_text())
    assert genotype_from_dict(ref["DARTS_V1"]) == DARTS_V1
    assert genotype_from_dict(ref["DARTS_V2"]) == DARTS_V2


def test_darts_v2_cifar_params_and_macs(darts_v2_cifar: nn.Module) -> None:
    assert count_params(darts_v2_cifar, exclude_prefixes=("auxiliary_head",)) == 3_349_342
    assert count_params(darts_v2_cifar) == 3_825_768
    macs = count_macs(darts_v2_cifar, (1, 3, 32, 32))
    assert macs == 528_359_040
    assert count_macs_hooks(darts_v2_cifar, (1, 3, 32, 32)) == macs


def test_darts_v1_cifar_params_and_macs() -> None:
    net = _build(DartsCifarNetwork, DARTS_V1, C=36, num_classes=10, layers=20, auxiliary=True)
    assert count_params(net, exclude_prefixes=("auxiliary_head",)) == 3_169_414
    assert count_params(net) == 3_645_840
    assert count_macs_hooks(net, (1, 3, 32, 32)) == 500_987_520


@pytest.mark.parametrize(
    ("genotype", "params", "macs"),
    [(DARTS_V2, 4_718_752, 529_911_552), (DARTS_V1, 4_510_432, 505_864_704)],
    ids=["DARTS_V2", "DARTS_V1"],
)
def test_darts_imagenet_params_and_macs(genotype: Genotype, params: int, macs: int) -> None:
    net = _build(DartsImageNetNetwork, genotype, C=48, num_classes=1000, layers=14)
    assert count_params(net) == params
    assert count_macs_hooks(net, (1, 3, 224, 224)) == macs


def test_darts_forward_aux_and_shapes() -> None:
    net = _build(DartsCifarNetwork, DARTS_V2, C=8, num_classes=7, layers=5, auxiliary=True)
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    net.train()
    logits, aux = net.forward_with_aux(x)
    assert logits.shape == (2, 7) and aux is not None and aux.shape == (2, 7)
    (logits.sum() + aux.sum()).backward()
    net.eval()
    with torch.inference_mode():
        logits, aux = net.forward_with_aux(x)
        assert aux is None and torch.equal(net(x), logits)
    imnet = _build(DartsImageNetNetwork, DARTS_V2, C=8, num_classes=5, layers=3, auxiliary=True).train()
    logits, aux = imnet.forward_with_aux(torch.zeros(2, 3, 224, 224))
    assert logits.shape == (2, 5) and aux is not None and aux.shape == (2, 5)


ALL_SKIP_NORMAL = Genotype(
    normal=[("skip_connect", 0), ("skip_connect", 1)] * 4, normal_concat=[2, 3, 4, 5],
    reduce=DARTS_V2.reduce, reduce_concat=DARTS_V2.reduce_concat,
)


def test_drop_path_training_only_and_never_on_identity() -> None:
    net = _build(DartsCifarNetwork, DARTS_V2, C=8, layers=5, drop_path_prob=0.5)
    x = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    net.eval()
    with torch.inference_mode():
        assert torch.equal(net(x), net(x))  # no drop-path in eval mode
    cell = net.cells[0]  # a normal cell with sep convs: drop-path changes its output in training
    s = torch.randn(4, 24, 8, 8, generator=torch.Generator().manual_seed(1))
    cell.train()
    with torch.random.fork_rng():
        torch.manual_seed(0)
        assert not torch.equal(cell(s, s, 0.9), cell(s, s, 0.0))
    skip_net = _build(DartsCifarNetwork, ALL_SKIP_NORMAL, C=8, layers=5)
    skip_cell = skip_net.cells[0].train()  # only Identity ops: drop-path must leave it unchanged
    with torch.random.fork_rng():
        torch.manual_seed(0)
        torch.testing.assert_close(skip_cell(s, s, 0.9), skip_cell(s, s, 0.0))


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda: DartsImageNetNetwork(DARTS_V2, C=47), r"\bC must be even"),
        (lambda: DartsCifarNetwork(DARTS_V2, C=0), r"\bC must be"),
        (lambda: DartsCifarNetwork(DARTS_V2, layers=2), "layers"),
        (lambda: DartsCifarNetwork(DARTS_V2, num_classes=0), "num_classes"),
        (lambda: DartsCifarNetwork(DARTS_V2, drop_path_prob=1.0), "drop_path_prob"),
        (lambda: DartsCifarNetwork(DARTS_V2._replace(normal=[("sep_conv_9x9", 0)] * 8)), "genotype.normal"),
        (lambda: DartsCifarNetwork(DARTS_V2._replace(reduce=DARTS_V2.reduce[:7])), "genotype.reduce"),
        (lambda: DartsCifarNetwork(DARTS_V2._replace(normal=[("skip_connect", 3)] * 8)), "input index"),
        (lambda: DartsCifarNetwork(DARTS_V2._replace(normal_concat=[2, 6])), "normal_concat"),
        (lambda: genotype_from_dict({"normal": []}), "normal_concat"),
    ],
)
def test_darts_errors_name_the_field(make: object, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        make()  # type: ignore[operator]


def test_darts_cifar_odd_channels_are_possible() -> None:
    """On CIFAR every FactorizedReduce outputs 2C or 4C channels, so odd C is a valid preset."""
    net = DartsCifarNetwork(DARTS_V2, C=5, layers=3)
    assert net(torch.zeros(1, 3, 16, 16)).shape == (1, 10)


# --------------------------------------------------------------------------------------- NB201


def test_parse_nb201_string_order_and_roundtrip() -> None:
    s = "|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|none~1|nor_conv_3x3~2|"
    edges = parse_nb201_string(s)
    assert edges == ["nor_conv_3x3", "nor_conv_1x1", "avg_pool_3x3", "skip_connect", "none", "nor_conv_3x3"]
    assert nb201_string(edges) == s


@pytest.mark.parametrize(
    ("s", "message"),
    [
        ("|nor_conv_3x3~0|+|none~0|none~1|", "3 nodes"),
        ("|nor_conv_3x3~0|+|none~0|+|none~0|none~1|none~2|", "2 input edge"),
        ("|nor_conv_3x3~1|+|none~0|none~1|+|none~0|none~1|none~2|", "op~0"),
        ("|conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|", "unknown NB201 op 'conv_3x3'"),
        ("nor_conv_3x3~0+|none~0|none~1|+|none~0|none~1|none~2|", "node 1"),
        ("|nor_conv_3x3|+|none~0|none~1|+|none~0|none~1|none~2|", "op~0"),
    ],
)
def test_parse_nb201_string_errors(s: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_nb201_string(s)


def test_nb201_network_errors() -> None:
    with pytest.raises(ValueError, match="6 op names"):
        NB201Network(["none"] * 5)
    with pytest.raises(ValueError, match=r"edges\[2\]"):
        NB201Network(["none", "none", "sep_conv_3x3", "none", "none", "none"])
    with pytest.raises(TypeError, match="parse_nb201_string"):
        NB201Network("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"\bN must be"):
        NB201Network(["none"] * 6, N=0)


def test_nb201_forward_backward() -> None:
    net = _build(NB201Network, ["nor_conv_3x3", "avg_pool_3x3", "none", "skip_connect", "nor_conv_1x1",
                                "none"], C=4, N=1, num_classes=3)
    y = net(torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0)))
    assert y.shape == (2, 3)
    y.sum().backward()
    all_none = _build(NB201Network, ["none"] * 6, C=4, N=1)
    assert all_none(torch.zeros(1, 3, 8, 8)).shape == (1, 10)


def _torchstat_counts(net: nn.Module) -> tuple[int, int]:
    """(conv/linear MACs, other FLOPs) of one 1x3x32x32 forward pass, counted with forward hooks.

    The second number is what the table counts beyond MACs, as torchstat/tensorwatch count it:
    BatchNorm2d 2 per input element (affine), ReLU 1 per input element, AvgPool2d k*k per output
    element, AdaptiveAvgPool2d to 1x1 over HxW: C*(H+1)*(W+1) (torchstat's bin formula).
    """
    macs = extra = 0

    def hook(m: nn.Module, inp: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
        nonlocal macs, extra
        x = inp[0]
        if isinstance(m, nn.Conv2d):
            macs += out.numel() * (m.in_channels // m.groups) * m.kernel_size[0] * m.kernel_size[1]
        elif isinstance(m, nn.Linear):
            macs += out.numel() * m.in_features
        elif isinstance(m, nn.BatchNorm2d):
            extra += 2 * x.numel()
        elif isinstance(m, nn.ReLU):
            extra += x.numel()
        elif isinstance(m, nn.AvgPool2d):
            k = m.kernel_size if isinstance(m.kernel_size, int) else m.kernel_size[0]
            extra += k * k * out.numel()
        elif isinstance(m, nn.AdaptiveAvgPool2d):
            extra += x.shape[1] * (x.shape[2] + 1) * (x.shape[3] + 1)

    handles = [m.register_forward_hook(hook) for m in net.modules() if not list(m.children())]
    try:
        with torch.inference_mode():
            net.eval()(torch.zeros(1, 3, 32, 32))
    finally:
        for h in handles:
            h.remove()
    return macs, extra


def _cost_key(edges: list[str]) -> tuple[int, ...]:
    """Edges' contribution to params/MACs: every edge is a stride-1 C->C op in every cell, and
    ``none``/``skip_connect`` cost nothing, so only the number of each costed op matters."""
    return tuple(edges.count(op) for op in ("nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3"))


def _nb201_table_rows(full: bool) -> list[tuple[str, float, float, int, int, int]]:
    """(arch, params_M, flops_M, our params, our MACs, other FLOPs) for the 491 table rows.

    ``full=False`` builds one network per distinct :func:`_cost_key` and checks every row against it;
    ``full=True`` builds each row's own network.
    """
    pd = pytest.importorskip("pandas")
    if not NB201_COST.exists():
        pytest.skip(f"{NB201_COST} not present (shared NB201 data lives beside the repository)")
    table = pd.read_parquet(NB201_COST)
    cache: dict[tuple[object, ...], tuple[int, int, int]] = {}
    rows = []
    for arch, p_m, f_m in zip(table["arch"], table["params_millions"], table["flops_millions"]):
        edges = parse_nb201_string(arch)
        key: tuple[object, ...] = tuple(edges) if full else _cost_key(edges)
        if key not in cache:
            net = _build(NB201Network, edges, C=16, N=5, num_classes=10)
            cache[key] = (count_params(net), *_torchstat_counts(net))
        rows.append((arch, float(p_m), float(f_m), *cache[key]))
    assert len(rows) == 491
    return rows


def _check_nb201_rows(rows: list[tuple[str, float, float, int, int, int]]) -> None:
    for arch, p_m, f_m, params, macs, extra in rows:
        assert round(params / 1e6, 6) == pytest.approx(p_m, abs=1e-9), arch
        # The table's FLOPs follow torchstat's convention (see nb201_net's module docstring):
        assert round((macs + extra) / 1e6, 6) == pytest.approx(f_m, abs=1e-9), arch
        n_1x1, n_3x3, n_pool = _cost_key(parse_nb201_string(arch))
        assert extra == 160_832 + 430_080 * (n_1x1 + n_3x3) + 1_290_240 * n_pool, arch


def test_nb201_hook_macs_equal_library_macs() -> None:
    net = _build(NB201Network, ["nor_conv_3x3", "avg_pool_3x3", "nor_conv_1x1", "skip_connect", "none",
                                "nor_conv_1x1"])
    macs, _ = _torchstat_counts(net)
    assert macs == count_macs(net, (1, 3, 32, 32)) == count_macs_hooks(net, (1, 3, 32, 32))


@pytest.mark.needs_shared
def test_nb201_params_and_flops_match_table_for_all_491_cells() -> None:
    _check_nb201_rows(_nb201_table_rows(full=False))


@pytest.mark.slow
@pytest.mark.needs_shared
def test_nb201_every_cell_built_individually() -> None:
    _check_nb201_rows(_nb201_table_rows(full=True))


def test_nb201_macs_bounds() -> None:
    """All-none and all-3x3 cells bound the MACs (NB201's own counter adds the 10 classifier biases)."""
    low = count_macs_hooks(_build(NB201Network, ["none"] * 6), (1, 3, 32, 32))
    high = count_macs(_build(NB201Network, ["nor_conv_3x3"] * 6), (1, 3, 32, 32))
    assert (low, high) == (7_783_040, 220_119_680)
    assert len(NB201_OPS) == 5
