"""Tests for the ``proxy`` evaluator: each zero-cost proxy against a hand-derived value on a tiny network,
determinism, several spaces, the non-finite policy, bad input and the registry."""

from __future__ import annotations

import math
from typing import TypeVar

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from nasatlas.evaluators import get_evaluator, list_evaluators
from nasatlas.evaluators.proxy import (
    DEFAULT_PROXIES,
    JACOB_COV_K,
    PROXIES,
    ProxyEvaluator,
    fisher,
    grad_norm,
    grasp,
    jacob_cov,
    snip,
    synflow,
)
from nasatlas.spaces import get_space
from nasatlas.spaces.build import cost_report
from torch import nn

NB201_GOOD = "|nor_conv_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|avg_pool_3x3~0|nor_conv_3x3~1|skip_connect~2|"
NB201_NONE = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"


pytestmark = pytest.mark.usefixtures("one_torch_thread")


M = TypeVar("M", bound=nn.Module)


def _init(net: M, seed: int) -> M:
    """Fill every parameter from a seeded generator (weights of both signs), in float64."""
    gen = torch.Generator().manual_seed(seed)
    net = net.double()
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=gen, dtype=torch.float64))
    return net


def _batch(n: int, d: int, k: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=gen, dtype=torch.float64), torch.randint(0, k, (n,), generator=gen)


def _state(net: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in net.state_dict().items()}


# ----------------------------------------------------------------------------- hand-checked proxies

def test_synflow_two_layer_net_is_analytic_and_leaves_the_model_alone() -> None:
    """f = W2 relu(BN(W1 x)) + b2 with |θ|, x = 1 and BN removed is linear: R = 1ᵀ|W2||W1|1 + 1ᵀ|b2|, and by
    Euler's theorem each weight matrix contributes Σ θ ∂R/∂θ = 1ᵀ|W2||W1|1 (biases are not scored)."""
    l1, bn, l2 = nn.Linear(5, 4, bias=False), nn.BatchNorm1d(4), nn.Linear(4, 3)
    net = _init(nn.Sequential(l1, bn, nn.ReLU(), l2), 0)
    with torch.no_grad():  # would change the value if BN were applied rather than removed
        bn.running_mean.fill_(3.0)  # type: ignore[union-attr]
        bn.running_var.fill_(7.0)  # type: ignore[union-attr]
    w1, w2 = l1.weight.detach(), l2.weight.detach()
    path = (w2.abs() @ w1.abs()).sum()
    before = _state(net)
    x, _ = _batch(6, 5, 3, 1)
    assert synflow(net, x) == pytest.approx(2 * float(path), rel=1e-12)
    after = _state(net)
    assert all(torch.equal(before[k], after[k]) for k in before)  # signs, BN statistics, dtype untouched
    assert all(p.grad is None for p in net.parameters()) and l1.weight.dtype == torch.float64


def test_synflow_runs_in_float64_on_a_float32_model() -> None:
    l1, l2 = nn.Linear(3, 3, bias=False), nn.Linear(3, 1, bias=False)
    with torch.no_grad():
        l1.weight.fill_(1e20)  # (3 * 1e20 per unit)^2 overflows float32 (max 3.4e38), not float64
        l2.weight.fill_(1e20)
    w = float(l1.weight[0, 0].detach())  # 1e20 as float32 holds it
    assert synflow(nn.Sequential(l1, l2), torch.zeros(2, 3)) == pytest.approx(2 * 9 * w * w, rel=1e-12)
    assert l1.weight.dtype == torch.float32


def _logistic() -> tuple[nn.Linear, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """A softmax regression, its batch, the probabilities p and dL/dz = (p - Y) / N (by hand)."""
    layer = _init(nn.Linear(4, 3), 2)
    x, y = _batch(7, 4, 3, 3)
    with torch.no_grad():
        z = x @ layer.weight.T + layer.bias
        p = torch.softmax(z, 1)
    dz = (p - F.one_hot(y, 3).double()) / x.shape[0]
    return layer, x, y, p, dz


def test_snip_and_grad_norm_of_softmax_regression() -> None:
    layer, x, y, _, dz = _logistic()
    grad_w = dz.T @ x  # dL/dW of the mean cross-entropy
    w = layer.weight.detach()
    assert snip(layer, x, y) == pytest.approx(float((w * grad_w).abs().sum()), rel=1e-10)
    assert grad_norm(layer, x, y) == pytest.approx(float(grad_w.norm()), rel=1e-10)


def test_grad_norm_sums_per_layer_norms() -> None:
    l1, l2 = nn.Linear(4, 5), nn.Linear(5, 3)
    net = _init(nn.Sequential(l1, nn.Tanh(), l2), 4)
    x, y = _batch(6, 4, 3, 5)
    loss = F.cross_entropy(net(x), y)
    g1, g2 = torch.autograd.grad(loss, [l1.weight, l2.weight])
    assert grad_norm(net, x, y) == pytest.approx(float(g1.norm() + g2.norm()), rel=1e-10)


def test_grasp_of_softmax_regression_uses_the_analytic_hessian() -> None:
    """H of the mean cross-entropy w.r.t. W: (1/N) Σ_n (diag(p_n) - p_n p_nᵀ) ⊗ x_n x_nᵀ; score -Σ W ⊙ (H g)."""
    layer, x, y, p, dz = _logistic()
    g = dz.T @ x
    gx = x @ g.T  # (N, K): (G x_n)_k
    hg = ((p * gx - p * (p * gx).sum(1, keepdim=True)).T @ x) / x.shape[0]
    expected = float(-(layer.weight.detach() * hg).sum())
    assert grasp(layer, x, y) == pytest.approx(expected, rel=1e-9)


def test_fisher_of_softmax_regression() -> None:
    """Δ_k = ½ mean_n (z_nk ∂L/∂z_nk)², spread over the in_features weights of output k."""
    layer, x, y, _, dz = _logistic()
    with torch.no_grad():
        z = layer(x)
    expected = float(0.5 * (z * dz).pow(2).mean(0).sum() * 4)
    assert fisher(layer, x, y) == pytest.approx(expected, rel=1e-10)


def test_fisher_sums_over_space_and_channels_of_a_conv() -> None:
    conv, lin = nn.Conv2d(2, 3, 3, padding=1), nn.Linear(3 * 4 * 4, 5)
    net = _init(nn.Sequential(conv, nn.ReLU(), nn.Flatten(), lin), 6)
    gen = torch.Generator().manual_seed(7)
    x = torch.randn(4, 2, 4, 4, generator=gen, dtype=torch.float64)
    y = torch.randint(0, 5, (4,), generator=gen)
    a1 = conv(x)
    a1.retain_grad()
    a2 = lin(torch.relu(a1).flatten(1))
    a2.retain_grad()
    F.cross_entropy(a2, y).backward()
    assert a1.grad is not None and a2.grad is not None
    with torch.no_grad():
        of_conv = 0.5 * (a1 * a1.grad).sum((2, 3)).pow(2).mean(0).sum() * (2 * 3 * 3)
        of_lin = 0.5 * (a2 * a2.grad).pow(2).mean(0).sum() * 48
    net.zero_grad(set_to_none=True)
    assert fisher(net, x, y) == pytest.approx(float(of_conv + of_lin), rel=1e-10)


def _jacob_cov_score(rows: torch.Tensor) -> float:
    corr = np.corrcoef(rows.numpy())
    lam = np.linalg.eigvalsh(corr)
    return float(-np.sum(np.log(lam + JACOB_COV_K) + 1 / (lam + JACOB_COV_K)))


def test_jacob_cov_of_a_linear_net_is_analytic() -> None:
    """Every Jacobian row of an affine map is Σ_k W_k: the correlation matrix is all ones, eigenvalues
    N and 0 (N-1 times)."""
    layer = _init(nn.Linear(5, 3), 8)
    x, y = _batch(6, 5, 3, 9)
    n, k = 6, JACOB_COV_K
    expected = -(math.log(n + k) + 1 / (n + k) + (n - 1) * (math.log(k) + 1 / k))
    assert jacob_cov(layer, x, y) == pytest.approx(expected, rel=1e-9)


def test_jacob_cov_matches_per_sample_jacobians() -> None:
    net = _init(nn.Sequential(nn.Linear(5, 16), nn.ReLU(), nn.Linear(16, 3)), 10)
    x, y = _batch(8, 5, 3, 11)
    rows = torch.stack([torch.autograd.functional.jacobian(lambda v: net(v[None]).sum(), xi) for xi in x])
    assert jacob_cov(net, x, y) == pytest.approx(_jacob_cov_score(rows), rel=1e-9)


def test_jacob_cov_is_nan_when_the_output_ignores_the_input() -> None:
    layer = nn.Linear(5, 3).double()
    with torch.no_grad():
        layer.weight.zero_()
    x, y = _batch(6, 5, 3, 12)
    assert math.isnan(jacob_cov(layer, x, y))


@pytest.mark.parametrize("name", sorted(PROXIES))
def test_every_proxy_leaves_weights_grads_and_bn_statistics_alone(name: str) -> None:
    net = _init(nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(36, 3)), 13)
    net.train()
    gen = torch.Generator().manual_seed(14)
    x, y = torch.randn(5, 3, 5, 5, generator=gen, dtype=torch.float64), torch.randint(0, 3, (5,), generator=gen)
    before = _state(net)
    value = PROXIES[name](net, x, y)
    assert math.isfinite(value)
    after = _state(net)
    assert all(torch.equal(before[k], after[k]) for k in before), name
    assert all(p.grad is None for p in net.parameters()) and net.training


# ----------------------------------------------------------------------------- the evaluator

@pytest.fixture(scope="module")
def nb201_tiny() -> ProxyEvaluator:
    ev = ProxyEvaluator(net="tiny", batch_size=8)
    ev.setup(get_space("nb201"))
    return ev


def test_evaluator_reports_every_proxy_and_exact_costs(nb201_tiny: ProxyEvaluator) -> None:
    space = get_space("nb201")
    arch = space.from_str(NB201_GOOD)
    res = nb201_tiny.evaluate(arch, budget={}, seed=3)
    assert res.ok, res.error
    assert list(res.metrics) == list(DEFAULT_PROXIES) == nb201_tiny.metric_names()
    assert all(math.isfinite(v) for v in res.metrics.values())
    rep = cost_report(space, arch, "tiny")
    assert res.costs["params"] == rep["params"] and res.costs["macs"] == rep["macs"]
    assert res.costs["proxy_seconds"] > 0


def test_params_of_the_all_none_cell_by_hand(nb201_tiny: ProxyEvaluator) -> None:
    """C=4, N=1, all-``none`` cell: stem 3·4·9 + BN 8; reductions 4→8 (288+16, 576+16, 32) and 8→16
    (1152+32, 2304+32, 128); last BN 32; classifier 16·10 + 10 = 4894 parameters. Its jacob_cov is NaN
    (the output does not depend on the input): the evaluation fails, naming the proxy, costs kept."""
    res = nb201_tiny.evaluate(get_space("nb201").from_str(NB201_NONE), budget={"x": 1}, seed=0)
    assert res.costs["params"] == 108 + 8 + (288 + 16 + 576 + 16 + 32) + (1152 + 32 + 2304 + 32 + 128) + 32 + 170
    assert not res.ok and res.error is not None and "jacob_cov" in res.error and "synflow=0.0" in res.error
    assert res.budget == {"x": 1}


def test_same_seed_same_scores_other_seed_other_weights(nb201_tiny: ProxyEvaluator) -> None:
    arch = get_space("nb201").from_str(NB201_GOOD)
    torch.manual_seed(123)
    outside = torch.rand(3)
    torch.manual_seed(123)
    a = nb201_tiny.evaluate(arch, budget={}, seed=11)
    assert torch.equal(torch.rand(3), outside)  # the global generator is not touched
    b = nb201_tiny.evaluate(arch, budget={}, seed=11)
    c = nb201_tiny.evaluate(arch, budget={}, seed=12)
    assert a.metrics == b.metrics
    assert a.metrics["synflow"] != c.metrics["synflow"]


@pytest.mark.parametrize("space_name", ["darts", "proxylessnas", "nb101"])
def test_proxies_on_other_spaces(space_name: str) -> None:
    space = get_space(space_name)
    ev = ProxyEvaluator(net="tiny", batch_size=8)
    ev.setup(space)
    row = space.sample(np.random.default_rng(5), 1)
    values, costs = ev.scores(space.archs(row)[0], seed=1)
    assert list(values) == list(DEFAULT_PROXIES)
    assert all(math.isfinite(values[n]) for n in ("synflow", "snip", "grad_norm", "grasp", "fisher")), values
    assert values["synflow"] > 0 and values["snip"] > 0 and values["grad_norm"] > 0
    assert costs["params"] == cost_report(space, space.archs(row)[0], "tiny")["params"]


def test_registry_and_data_free_proxies() -> None:
    assert "proxy" in list_evaluators()
    ev = get_evaluator("proxy", proxies=["synflow", "params", "macs"], net="tiny")
    assert isinstance(ev, ProxyEvaluator)
    assert ev.params() == {"proxies": ["synflow", "params", "macs"], "net": "tiny", "data": None, "batch_size": 64}
    space = get_space("nb201")
    ev.setup(space)  # loads no data set: nothing of it is needed
    assert ev.batch()[0].shape == (1, 3, 16, 16)  # a placeholder of the input's shape
    res = ev.evaluate(space.from_str(NB201_GOOD), budget={}, seed=0)
    assert res.ok and list(res.metrics) == ["synflow", "params", "macs"]
    assert res.metrics["params"] == res.costs["params"] and res.metrics["macs"] == res.costs["macs"]
    none = ev.evaluate(space.from_str(NB201_NONE), budget={}, seed=0)
    assert none.ok and none.metrics["synflow"] == 0.0  # a disconnected cell carries no flow


@pytest.mark.parametrize(("params", "match"), [
    ({"proxies": ["synflow", "naswot"]}, r"unknown proxy name\(s\) \['naswot'\]; known proxies: synflow, snip, "
                                         r"grad_norm, grasp, fisher, jacob_cov, params, macs"),
    ({"proxies": []}, "proxies is empty"),
    ({"proxies": "synflow"}, "must be a list of names"),
    ({"proxies": ["snip", "snip"]}, "names a proxy twice"),
    ({"batch_size": 1}, "batch_size=1"),
    ({"data": {"name": "digits", "resize": 8}}, r"data.resize=8 differs from the network's input 16x16"),
    ({"data": "shapes"}, "not a classification set"),
    ({"data": {"name": "nope"}}, "unknown data set 'nope'"),
])
def test_bad_input_names_the_field(params: dict[str, object], match: str) -> None:
    ev = get_evaluator("proxy", net="tiny", **params)
    with pytest.raises((ValueError, TypeError), match=match):
        ev.setup(get_space("nb201"))


def test_evaluate_before_setup_and_segmentation_nets_fail_clearly() -> None:
    ev = ProxyEvaluator(proxies=["synflow"])
    with pytest.raises(RuntimeError, match="setup"):
        ev.evaluate(get_space("nb201").from_str(NB201_GOOD), budget={}, seed=0)
    seg = nn.Conv2d(3, 2, 1)  # a per-pixel output is not (batch, classes) logits
    with pytest.raises(ValueError, match="classification network"):
        synflow(seg, torch.zeros(2, 3, 4, 4))
