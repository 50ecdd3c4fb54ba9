"""Tests for the NAS-Bench-101 network: published parameter counts, channel splitting, pruning, errors.

Published (spec, trainable_parameters) pairs of the NB101 data set (Ying et al. 2019), 128-channel stem,
3 stacks x 3 cells, 10 classes:

* ``INCEPTION_LIKE`` -> 2,694,282: google-research/nasbench ``NASBench.ipynb``, "Basic usage" cell (the
  README's Inception-like example spec queried from ``nasbench_only108.tfrecord``; printed output
  ``trainable_parameters: 2694282``).
* ``NNI_EXAMPLE`` -> 8,555,530: microsoft/nni ``docs/en_US/NAS/BenchmarksExample.ipynb``, NAS-Bench-101
  cell (printed ``'parameters': 8.55553``; NNI's ``db_gen.py`` stores ``trainable_parameters / 1e6``, and
  the float repr ``8.55553`` is that of 8555530 / 1e6 only).

Expected ``compute_vertex_channels`` values marked "official" are those asserted in google-research/nasbench
``nasbench/tests/model_builder_test.py``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from nasatlas.spaces.cost import count_macs, count_macs_hooks, count_params
from nasatlas.spaces.nets.nb101_net import (
    CONV1X1,
    CONV3X3,
    INPUT,
    MAXPOOL3X3,
    OUTPUT,
    NB101Cell,
    NB101ConvBNReLU,
    NB101Network,
    compute_vertex_channels,
    prune,
    validate_spec,
)
from torch import nn

INCEPTION_LIKE = (
    [[0, 1, 1, 1, 0, 1, 0],
     [0, 0, 0, 0, 0, 0, 1],
     [0, 0, 0, 0, 0, 0, 1],
     [0, 0, 0, 0, 1, 0, 0],
     [0, 0, 0, 0, 0, 0, 1],
     [0, 0, 0, 0, 0, 0, 1],
     [0, 0, 0, 0, 0, 0, 0]],
    [INPUT, CONV1X1, CONV3X3, CONV3X3, CONV3X3, MAXPOOL3X3, OUTPUT],
)
# NNI's arch dict: input1=[0], input2=[1], input3=[2], input4=[0], input5=[0, 3, 4], input6=[2, 5].
NNI_EXAMPLE = (
    [[0, 1, 0, 0, 1, 1, 0],
     [0, 0, 1, 0, 0, 0, 0],
     [0, 0, 0, 1, 0, 0, 1],
     [0, 0, 0, 0, 0, 1, 0],
     [0, 0, 0, 0, 0, 1, 0],
     [0, 0, 0, 0, 0, 0, 1],
     [0, 0, 0, 0, 0, 0, 0]],
    [INPUT, CONV3X3, MAXPOOL3X3, CONV3X3, CONV3X3, CONV1X1, OUTPUT],
)
ONLY_SKIP = ([[0, 1], [0, 0]], [INPUT, OUTPUT])  # input -> output: the cell is a projection
# official matrix2 of test_compute_vertex_channels_max: 0->1, 0->3, 1->2, 1->4, 2->3, 3->4
TRUNCATING = (
    [[0, 1, 0, 1, 0],
     [0, 0, 1, 0, 1],
     [0, 0, 0, 1, 0],
     [0, 0, 0, 0, 1],
     [0, 0, 0, 0, 0]],
    [INPUT, CONV3X3, CONV1X1, MAXPOOL3X3, OUTPUT],
)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _build(*args: object, **kwargs: object) -> NB101Network:
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return NB101Network(*args, **kwargs)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------ published counts


@pytest.mark.parametrize(
    ("spec", "expected"), [(INCEPTION_LIKE, 2_694_282), (NNI_EXAMPLE, 8_555_530)], ids=["inception", "nni"]
)
def test_published_trainable_parameters(spec: tuple[list[list[int]], list[str]], expected: int) -> None:
    net = _build(*spec)
    assert count_params(net) == expected
    # TF trainable variables == PyTorch parameters; BN moving statistics are buffers, not parameters
    assert sum(p.numel() for p in net.parameters() if p.requires_grad) == expected


def test_parameter_count_by_hand_on_a_tiny_network() -> None:
    # stem 3x3 3->4 (+BN 8), one input->output cell: 1x1 4->4 projection (+BN 8), dense 4->10 with bias
    net = _build(*ONLY_SKIP, stem_channels=4, num_stacks=1, num_cells_per_stack=1)
    assert count_params(net) == (27 * 4 + 8) + (4 * 4 + 8) + (4 * 10 + 10)


# --------------------------------------------------------------------------- channel splitting


@pytest.mark.parametrize(
    ("matrix", "c_in", "c_out", "expected"),
    [
        ([[0, 1, 1, 0], [0, 0, 0, 1], [0, 0, 0, 1], [0, 0, 0, 0]], 8, 15, [8, 8, 7, 15]),  # official
        ([[0, 1, 1, 1, 0], [0, 0, 0, 0, 1], [0, 0, 0, 0, 1], [0, 0, 0, 0, 1], [0] * 5], 8, 8, [8, 3, 3, 2, 8]),
        (TRUNCATING[0], 8, 15, [8, 8, 7, 7, 15]),  # official
        (TRUNCATING[0], 8, 8, [8, 4, 4, 4, 8]),  # official
        ([[0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1], [0, 0, 0, 0]], 16, 8, [16, 8, 8, 8]),  # official
        (ONLY_SKIP[0], 5, 1, [5, 1]),  # official
        # by hand: 3 vertices feed the output, 10 = 4 + 3 + 3; vertex 1 feeds only 2 and 3 -> max(4, 3)
        ([[0, 1, 0, 0, 1, 0], [0, 0, 1, 1, 0, 0], [0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 0, 1],
          [0, 0, 0, 0, 0, 1], [0] * 6], 6, 10, [6, 4, 4, 3, 3, 10]),
    ],
)
def test_compute_vertex_channels(matrix: list[list[int]], c_in: int, c_out: int, expected: list[int]) -> None:
    assert compute_vertex_channels(c_in, c_out, matrix) == expected


def test_cell_wiring_matches_hand_computation() -> None:
    with torch.random.fork_rng():
        torch.manual_seed(0)
        cell = NB101Cell(*TRUNCATING, C_in=8, C_out=15).eval()
        x = torch.randn(2, 8, 5, 5)
    assert cell.vertex_channels == [8, 8, 7, 7, 15]
    convs = {name: m for name, m in cell.named_modules() if isinstance(m, nn.Conv2d)}
    assert {n: (m.in_channels, m.out_channels, m.kernel_size[0]) for n, m in convs.items()} == {
        "vertex_ops.1.0": (8, 8, 3),
        "vertex_ops.2.0": (7, 7, 1),
        "proj.1.0": (8, 8, 1),
        "proj.3.0": (8, 7, 1),
    }
    assert isinstance(cell.vertex_ops["3"], nn.MaxPool2d)
    ops, proj = cell.vertex_ops, cell.proj
    with torch.no_grad():
        v1 = ops["1"](proj["1"](x))
        v2 = ops["2"](v1[:, :7])  # 8 channels truncated to vertex 2's 7
        v3 = ops["3"](v2 + proj["3"](x))
        expected = torch.cat([v1, v3], dim=1)  # no input -> output edge: nothing added
        out = cell(x)
    assert out.shape == (2, 15, 5, 5)
    assert torch.equal(out, expected)


def test_output_adds_projected_input_and_inception_channels() -> None:
    with torch.random.fork_rng():
        torch.manual_seed(0)
        cell = NB101Cell([[0, 1, 1], [0, 0, 1], [0, 0, 0]], [INPUT, CONV1X1, OUTPUT], C_in=4, C_out=6).eval()
        x = torch.randn(1, 4, 3, 3)
    with torch.no_grad():
        expected = cell.vertex_ops["1"](cell.proj["1"](x)) + cell.proj["2"](x)
        assert torch.equal(cell(x), expected)
    # Inception-like at C_out=128: 4 vertices feed the output (32 each); vertex 3 takes vertex 4's 32
    spec_cell = NB101Cell(*INCEPTION_LIKE, C_in=64, C_out=128)
    assert spec_cell.vertex_channels == [64, 32, 32, 32, 32, 32, 128]
    assert sorted(spec_cell.proj) == ["1", "2", "3", "5"]


# ----------------------------------------------------------------------------- forward/backward


@pytest.mark.parametrize(
    "spec", [INCEPTION_LIKE, NNI_EXAMPLE, ONLY_SKIP, TRUNCATING], ids=["inc", "nni", "skip", "trunc"]
)
def test_forward_backward_small_stem(spec: tuple[list[list[int]], list[str]]) -> None:
    net = _build(*spec, stem_channels=16)
    with torch.random.fork_rng():
        torch.manual_seed(1)
        x = torch.randn(2, 3, 32, 32)
        y = torch.randint(0, 10, (2,))
    logits = net(x)
    assert logits.shape == (2, 10)
    nn.functional.cross_entropy(logits, y).backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in net.parameters())
    assert net.classifier.in_features == 64  # channels doubled twice
    assert count_macs(net, (1, 3, 32, 32)) == count_macs_hooks(net, (1, 3, 32, 32)) > 0


def test_downsampling_and_odd_input_sizes() -> None:
    net = _build(*ONLY_SKIP, stem_channels=8).eval()
    pools = [m for m in net.cells if isinstance(m, nn.MaxPool2d)]
    assert len(pools) == 2 and all(p.kernel_size == 2 and p.stride == 2 for p in pools)
    sizes: list[tuple[int, ...]] = []
    handle = net.cells.register_forward_hook(lambda _m, _i, out: sizes.append(tuple(out.shape)))
    with torch.no_grad():
        net(torch.zeros(1, 3, 33, 33))  # TF 'same' pooling: 33 -> 17 -> 9
    handle.remove()
    assert sizes == [(1, 32, 9, 9)]


def test_nb101_layer_order_and_defaults() -> None:
    block = NB101ConvBNReLU(4, 6, 3)
    assert [type(m) for m in block] == [nn.Conv2d, nn.BatchNorm2d, nn.ReLU]
    conv, bn = block[0], block[1]
    assert isinstance(conv, nn.Conv2d) and conv.bias is None and conv.padding == (1, 1)
    assert isinstance(bn, nn.BatchNorm2d) and bn.eps == 1e-5 and bn.momentum == pytest.approx(0.003)
    net = _build(*INCEPTION_LIKE, stem_channels=16, bn_momentum=0.1)
    assert all(m.momentum == 0.1 for m in net.modules() if isinstance(m, nn.BatchNorm2d))


def test_tf_style_initialisation_and_reproducibility() -> None:
    a, b = _build(*INCEPTION_LIKE, stem_channels=16), _build(*INCEPTION_LIKE, stem_channels=16)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    w = _build(*ONLY_SKIP, stem_channels=64).cells[-1].proj["1"][0].weight.detach()  # 1x1, fan_in 256
    std = 1.0 / 16.0  # sqrt(1 / fan_in): TF variance scaling, scale 1, truncated at 2 untruncated stds
    assert w.abs().max() <= 2 * std / 0.87962566103423978 + 1e-6
    assert float(w.std()) == pytest.approx(std, rel=0.05)
    assert torch.equal(a.classifier.bias, torch.zeros(10))


# ------------------------------------------------------------------------------------- pruning


def test_prune_removes_dangling_vertices_and_keeps_order() -> None:
    # vertex 2 is unreachable from the input; vertex 3 never reaches the output
    matrix = [[0, 1, 0, 1, 0],
              [0, 0, 0, 0, 1],
              [0, 0, 0, 0, 1],
              [0, 0, 0, 0, 0],
              [0, 0, 0, 0, 0]]
    ops = [INPUT, CONV3X3, CONV1X1, MAXPOOL3X3, OUTPUT]
    m, o = prune(matrix, ops)
    assert m.tolist() == [[0, 1, 0], [0, 0, 1], [0, 0, 0]]
    assert o == [INPUT, CONV3X3, OUTPUT]
    assert matrix[0][3] == 1 and len(ops) == 5  # inputs untouched
    m2, o2 = prune(*NNI_EXAMPLE)  # already pruned: unchanged
    assert m2.tolist() == NNI_EXAMPLE[0] and o2 == NNI_EXAMPLE[1]
    m3, _ = prune(np.array(INCEPTION_LIKE[0]), INCEPTION_LIKE[1])
    assert m3.shape == (7, 7)


def test_prune_to_input_output_and_disconnected() -> None:
    m, o = prune([[0, 0, 1], [0, 0, 1], [0, 0, 0]], [INPUT, CONV3X3, OUTPUT])
    assert m.tolist() == [[0, 1], [0, 0]] and o == [INPUT, OUTPUT]
    with pytest.raises(ValueError, match="no path from the input"):
        prune([[0, 1, 0], [0, 0, 0], [0, 0, 0]], [INPUT, CONV3X3, OUTPUT])


# -------------------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("matrix", "ops", "match"),
    [
        ([[0, 1], [1, 0]], [INPUT, OUTPUT], "upper triangular"),
        ([[1, 1], [0, 0]], [INPUT, OUTPUT], "upper triangular"),
        ([[0, 1, 0]], [INPUT, OUTPUT], "square"),
        ([[0, 2], [0, 0]], [INPUT, OUTPUT], "0 or 1"),
        ([[0, 1], [0, 0]], [INPUT, CONV3X3, OUTPUT], "one label per vertex"),
        ([[0, 1, 0], [0, 0, 1], [0, 0, 0]], [INPUT, "conv5x5", OUTPUT], r"ops\[1\] = 'conv5x5'"),
        ([[0, 1], [0, 0]], [CONV3X3, OUTPUT], "must start with 'input'"),
        ([[0] * 8 for _ in range(8)], [INPUT] + [CONV3X3] * 6 + [OUTPUT], "at most 7 vertices"),
        ([[0, 1, 0], [0, 0, 0], [0, 0, 0]], [INPUT, CONV3X3, OUTPUT], "no path"),
        ([[0, 1, 1], [0, 0, 0], [0, 0, 0]], [INPUT, CONV3X3, OUTPUT], r"vertices \[1\] .*prune"),
    ],
)
def test_invalid_specs_raise(matrix: list[list[int]], ops: list[str], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        validate_spec(matrix, ops)
    with pytest.raises(ValueError, match=match):
        NB101Network(matrix, ops, stem_channels=4)


def test_invalid_network_arguments_raise() -> None:
    with pytest.raises(ValueError, match="stem_channels"):
        NB101Network(*ONLY_SKIP, stem_channels=0)
    with pytest.raises(ValueError, match="num_classes"):
        NB101Network(*ONLY_SKIP, num_classes=2.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="bn_momentum"):
        NB101Network(*ONLY_SKIP, bn_momentum=1.5)
    with pytest.raises(ValueError, match="increase stem_channels"):  # 4 vertices feed the output, 2 channels
        NB101Network(*INCEPTION_LIKE, stem_channels=2)
    with pytest.raises(TypeError, match="sequence of V vertex labels"):
        validate_spec([[0, 1], [0, 0]], "input,output")
