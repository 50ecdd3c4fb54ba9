"""Tests for ``nasatlas.spaces.cost``: parameter counts and conv/linear MACs (FlopCounterMode vs hooks)."""

from __future__ import annotations

import pytest
import torch
from nasatlas.spaces.cost import count_macs, count_macs_hooks, count_params
from nasatlas.spaces.nets.darts_net import DartsCifarNetwork, DartsImageNetNetwork, Genotype
from nasatlas.spaces.nets.nb201_net import NB201Network, parse_nb201_string
from torch import nn

pytestmark = pytest.mark.usefixtures("one_torch_thread")


# A small genotype using most ops of the table (sep/dil/factorised/atrous convs, pools, skip).
MIXED = Genotype(
    normal=[("sep_conv_3x3", 0), ("dil_conv_5x5", 1), ("skip_connect", 0), ("avg_pool_3x3", 2),
            ("conv_7x1_1x7", 1), ("sep_conv_5x5", 3), ("dil_conv_3x3", 0), ("max_pool_3x3", 4)],
    normal_concat=[2, 3, 4, 5],
    reduce=[("max_pool_3x3", 0), ("sep_conv_7x7", 1), ("skip_connect", 2), ("avg_pool_3x3", 0),
            ("atr_conv_3x3", 1), ("conv_1x7_7x1_bottleneck", 0), ("nor_conv_3x3", 2), ("skip_connect", 1)],
    reduce_concat=[3, 4, 5],
)


class _WithBmm(nn.Module):
    """A conv and a linear plus an activation-activation matmul (bmm), which is not a conv/linear MAC."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1, bias=True)
        self.fc = nn.Linear(4, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv(x).flatten(2)  # (1, 4, 36)
        h = torch.bmm(h, h.transpose(1, 2))  # (1, 4, 4): 4*4*36 multiply-adds, not counted
        return self.fc(h.mean(1))


def test_count_params_and_prefix_exclusion() -> None:
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Linear(4, 2))
    assert count_params(net) == 3 * 4 * 9 + 4 + 8 + 4 * 2 + 2
    assert count_params(net, exclude_prefixes=("2.",)) == 3 * 4 * 9 + 4 + 8
    with pytest.raises(TypeError, match="exclude_prefixes"):
        count_params(net, exclude_prefixes="2.")


def test_macs_by_hand_only_conv_and_linear() -> None:
    model = _WithBmm()
    expected = 6 * 6 * 4 * 3 * 9 + 4 * 5  # conv (biases not counted) + linear
    assert count_macs(model, (1, 3, 6, 6)) == expected
    assert count_macs_hooks(model, (1, 3, 6, 6)) == expected


def test_depthwise_and_strided_convs() -> None:
    model = nn.Sequential(nn.Conv2d(8, 8, 3, stride=2, padding=1, groups=8, bias=False), nn.Conv2d(8, 16, 1))
    expected = 4 * 4 * 8 * 9 + 4 * 4 * 8 * 16
    assert count_macs(model, (1, 8, 8, 8)) == expected == count_macs_hooks(model, (1, 8, 8, 8))


@pytest.mark.parametrize(
    "build,shape",
    [
        (lambda: NB201Network(parse_nb201_string(
            "|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|none~1|nor_conv_3x3~2|"), N=2),
         (1, 3, 32, 32)),
        (lambda: DartsCifarNetwork(MIXED, C=8, layers=5, auxiliary=True), (1, 3, 32, 32)),
        (lambda: DartsImageNetNetwork(MIXED, C=8, layers=3, num_classes=7), (1, 3, 64, 64)),
    ],
)
def test_flop_counter_equals_hooks(build: object, shape: tuple[int, ...]) -> None:
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = build()  # type: ignore[operator]
    assert count_macs(model, shape) == count_macs_hooks(model, shape) > 0


def test_train_flags_restored_and_aux_head_not_run() -> None:
    net = DartsCifarNetwork(MIXED, C=8, layers=5, auxiliary=True)
    plain = DartsCifarNetwork(MIXED, C=8, layers=5, auxiliary=False)
    net.train()
    net.cells[0].eval()  # a mixed state must come back as it was
    flags = [m.training for m in net.modules()]
    assert count_macs(net, (1, 3, 32, 32)) == count_macs(plain, (1, 3, 32, 32))
    assert [m.training for m in net.modules()] == flags
    assert all(p.grad is None for p in net.parameters())
    count_macs_hooks(net, (1, 3, 32, 32))
    assert [m.training for m in net.modules()] == flags
    assert not any(m._forward_hooks for m in net.modules())


@pytest.mark.parametrize("shape", [(3, 32, 32), (2, 3, 32, 32), (1, 3, 0, 32), (1,)])
def test_bad_input_shape(shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match="input_shape"):
        count_macs(nn.Linear(3, 2), shape)
    with pytest.raises(ValueError, match="input_shape"):
        count_macs_hooks(nn.Linear(3, 2), shape)
