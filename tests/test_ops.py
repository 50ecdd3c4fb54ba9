"""Tests for the shared op library ``nasatlas.spaces.ops`` (DARTS / NB201 / AmoebaNet / Auto-DeepLab ops)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from nasatlas.spaces.ops import (
    OPS,
    AtrousConv,
    FactorizedReduce,
    Identity,
    Pooling,
    ReLUConvBN,
    SepConv,
    Zero,
    make_op,
    op_names,
)
from torch import nn

pytestmark = pytest.mark.usefixtures("one_torch_thread")


REQUIRED = {
    "none", "avg_pool_3x3", "max_pool_3x3", "skip_connect", "sep_conv_3x3", "sep_conv_5x5",
    "sep_conv_7x7", "dil_conv_3x3", "dil_conv_5x5", "conv_7x1_1x7", "conv_1x7_7x1_bottleneck",
    "atr_conv_3x3", "atr_conv_5x5", "nor_conv_1x1", "nor_conv_3x3",
}

C = 16


def _bn(c: int) -> int:
    return 2 * c  # affine BatchNorm: weight + bias


# Parameter counts derived by hand from each op's definition at C=16 (kernel weights, no conv bias).
EXPECTED_PARAMS = {
    "none": 0,
    "avg_pool_3x3": 0,
    "max_pool_3x3": 0,
    "max_pool_5x5": 0,
    "max_pool_7x7": 0,
    "sep_conv_3x3": 2 * (C * 9 + C * C + _bn(C)),
    "sep_conv_5x5": 2 * (C * 25 + C * C + _bn(C)),
    "sep_conv_7x7": 2 * (C * 49 + C * C + _bn(C)),
    "dil_conv_3x3": C * 9 + C * C + _bn(C),
    "dil_conv_5x5": C * 25 + C * C + _bn(C),
    "conv_7x1_1x7": 2 * C * C * 7 + _bn(C),
    "conv_1x3_3x1": 2 * C * C * 3 + _bn(C),
    # 1x1 C->C/4, 1x7, 7x1, 1x1 C/4->C, each followed by BN.
    "conv_1x7_7x1_bottleneck": C * 4 + _bn(4) + 2 * (4 * 4 * 7 + _bn(4)) + 4 * C + _bn(C),
    "atr_conv_3x3": C * C * 9 + _bn(C),
    "atr_conv_5x5": C * C * 25 + _bn(C),
    "nor_conv_1x1": C * C + _bn(C),
    "nor_conv_3x3": C * C * 9 + _bn(C),
    "nor_conv_7x7": C * C * 49 + _bn(C),
    "conv_1x1": C * C + _bn(C),
    "conv_3x3": C * C * 9 + _bn(C),
}


def test_table_lists_every_required_op() -> None:
    assert REQUIRED <= set(OPS)
    assert op_names() == list(OPS)
    assert set(EXPECTED_PARAMS) | {"skip_connect"} == set(OPS)


@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("name", op_names())
def test_shape_forward_backward(name: str, stride: int) -> None:
    gen = torch.Generator().manual_seed(0)
    op = OPS[name](C, stride, True)
    for size in (8, 7):  # even and odd resolutions
        x = torch.randn(2, C, size, size, generator=gen, requires_grad=True)
        y = op(x)
        expected = size if stride == 1 else (size + 1) // 2
        assert y.shape == (2, C, expected, expected), (name, stride, size)
        y.square().sum().backward()
        assert x.grad is not None and torch.isfinite(x.grad).all()
    params = list(op.parameters())
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in params), name


@pytest.mark.parametrize("name", sorted(EXPECTED_PARAMS))
def test_parameter_counts(name: str) -> None:
    for stride in (1, 2):
        assert sum(p.numel() for p in OPS[name](C, stride, True).parameters()) == EXPECTED_PARAMS[name]


def test_skip_connect_is_identity_then_factorized_reduce() -> None:
    assert isinstance(OPS["skip_connect"](C, 1, True), Identity)
    fr = OPS["skip_connect"](C, 2, True)
    assert isinstance(fr, FactorizedReduce)
    assert sum(p.numel() for p in fr.parameters()) == 2 * C * (C // 2) + _bn(C)


def test_zero_and_identity_values() -> None:
    x = torch.arange(2 * 3 * 5 * 5, dtype=torch.float32).reshape(2, 3, 5, 5)
    assert torch.equal(Identity()(x), x)
    z = Zero(2)(x)
    assert z.shape == (2, 3, 3, 3) and not z.any()
    assert Zero(1)(x).shape == x.shape


def test_factorized_reduce_matches_unpadded_darts_form_on_even_input() -> None:
    gen = torch.Generator().manual_seed(1)
    fr = FactorizedReduce(6, 8).eval()
    x = torch.randn(2, 6, 10, 10, generator=gen)
    r = F.relu(x)
    ref = fr.bn(torch.cat([fr.conv_1(r), fr.conv_2(r[:, :, 1:, 1:])], dim=1))
    torch.testing.assert_close(fr(x), ref)
    no_relu = FactorizedReduce(6, 8, relu=False).eval()
    assert isinstance(no_relu.relu, nn.Identity)


def test_sep_conv_layout_is_two_relu_dw_pw_bn_blocks() -> None:
    kinds = [type(m).__name__ for m in SepConv(C, C, 3, 2, 1).op]
    assert kinds == ["ReLU", "Conv2d", "Conv2d", "BatchNorm2d"] * 2
    convs = [m for m in SepConv(C, C, 3, 2, 1).op if isinstance(m, nn.Conv2d)]
    assert [c.groups for c in convs] == [C, 1, C, 1]
    assert [c.stride for c in convs] == [(2, 2), (1, 1), (1, 1), (1, 1)]


def test_dil_conv_uses_rate_2_depthwise() -> None:
    dw = OPS["dil_conv_5x5"](C, 1, True).op[1]
    assert dw.dilation == (2, 2) and dw.groups == C and dw.padding == (4, 4)


def test_atrous_conv_is_regular_rate2_and_bilinear_halving_at_stride2() -> None:
    op1 = OPS["atr_conv_3x3"](C, 1, True)
    assert isinstance(op1, AtrousConv)
    assert op1.conv.dilation == (2, 2) and op1.conv.groups == 1
    op2 = OPS["atr_conv_5x5"](C, 2, True).eval()
    assert op2.conv.dilation == (1, 1) and op2.conv.padding == (2, 2)
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(1, C, 9, 9, generator=gen)
    small = F.interpolate(F.relu(x), size=(5, 5), mode="bilinear", align_corners=True)
    torch.testing.assert_close(op2(x), op2.bn(op2.conv(small)))


def test_bottleneck_layout_and_small_channels() -> None:
    convs = [m for m in OPS["conv_1x7_7x1_bottleneck"](C, 2, True).modules() if isinstance(m, nn.Conv2d)]
    assert [c.kernel_size for c in convs] == [(1, 1), (1, 7), (7, 1), (1, 1)]
    assert [c.out_channels for c in convs] == [C // 4, C // 4, C // 4, C]
    assert [c.stride for c in convs] == [(1, 1), (1, 2), (2, 1), (1, 1)]
    tiny = OPS["conv_1x7_7x1_bottleneck"](3, 1, True)  # C // 4 == 0: no bottleneck
    assert tiny(torch.zeros(1, 3, 5, 5)).shape == (1, 3, 5, 5)


def test_avg_pool_excludes_padding() -> None:
    y = OPS["avg_pool_3x3"](2, 1, True)(torch.ones(1, 2, 4, 4))
    torch.testing.assert_close(y, torch.ones(1, 2, 4, 4))


def test_nb201_variants_are_factory_parameters() -> None:
    conv = make_op("nor_conv_3x3", 4, 8, 1, affine=False, track_running_stats=False, conv_bias=True)
    assert isinstance(conv, ReLUConvBN)
    assert conv.op[1].bias is not None and conv.op[2].running_mean is None and conv.op[2].weight is None
    pool = make_op("avg_pool_3x3", 4, 8, 1)
    assert isinstance(pool, Pooling) and pool.preprocess is not None
    assert pool(torch.zeros(1, 4, 6, 6)).shape == (1, 8, 6, 6)
    assert isinstance(make_op("skip_connect", 4, 8, 2), FactorizedReduce)


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda: make_op("conv_9x9", 4, 4, 1), "unknown op name"),
        (lambda: make_op("sep_conv_3x3", 4, 4, 3), "stride"),
        (lambda: make_op("sep_conv_3x3", 4, 8, 1), "C_in"),
        (lambda: make_op("nor_conv_3x3", 0, 4, 1), "C_in"),
        (lambda: FactorizedReduce(4, 5), "C_out"),
        (lambda: OPS["skip_connect"](5, 2, True), "C_out"),
        (lambda: Pooling(4, 4, 1, "min"), "mode"),
        (lambda: make_op("skip_connect", 4, 8, 1), "C_in"),
    ],
)
def test_errors_name_the_field(call: object, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        call()  # type: ignore[operator]
