"""ProxylessNAS: the chain supernet, the differentiable cost model and the binary-gate searcher.

Tiny real networks (width 0.25 chains, NB201 C=4 N=1) on random 16x16 data; every test runs in seconds.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from nasatlas.searchers.proxylessnas import ProxylessNAS, binary_gate_alpha_grad, rescale_pair
from nasatlas.spaces import get_space
from nasatlas.spaces.build import build, cost_report
from nasatlas.spaces.cost import count_params
from nasatlas.spaces.supernet import EdgeMix, MixedOp, load_supernet, relax, save_supernet
from nasatlas.spaces.supernet_chain import ChainSupernet
from nasatlas.spaces.supernet_cost import expected_cost, fixed_cost, option_costs, path_cost

pytestmark = pytest.mark.usefixtures("one_torch_thread")

INPUT = (3, 16, 16)
NETS: dict[str, dict[str, Any]] = {"proxylessnas": {"width_mult": 0.25}, "fbnet": {"width_mult": 0.25},
                                   "nb201": {"C": 4, "N": 1}}


def _cfg(space: str) -> dict[str, Any]:
    return {**NETS[space], "num_classes": 10, "input": INPUT}


def _data(seed: int = 0, n: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, *INPUT, generator=g), torch.randint(0, 10, (n,), generator=g)


def _searcher(space: str, **kw: Any) -> ProxylessNAS:
    q = ProxylessNAS(epochs=2, batch_size=8, net=NETS[space], **kw)
    q.relax(get_space(space), {"input": INPUT, "num_classes": 10})
    return q


# -- the chain supernet --------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["proxylessnas", "fbnet"])
def test_single_path_is_the_standalone_network(name: str) -> None:
    """A sampled row's single path holds the stand-alone network's modules: equal parameter counts, and
    with the supernet's weights copied in, the same output."""
    space = get_space(name)
    torch.manual_seed(0)
    net = relax(space, _cfg(name))
    assert isinstance(net, ChainSupernet) and net.config == {"width_mult": 0.25, "num_classes": 10, "input": INPUT}
    row = space.sample(np.random.default_rng(3), 1)[0]
    alone = build(space, row, {"width_mult": 0.25, "num_classes": 10, "input": INPUT})
    n_fixed = len(alone.blocks) - len(row)
    chosen = [net.layers[r].mixed.ops[int(c)] for r, c in enumerate(row)]
    fixed = [net.first_conv, net.fixed_blocks, net.feature_mix, net.classifier]
    assert count_params(alone) == sum(count_params(m) for m in fixed + chosen)
    for r, c in enumerate(row):  # the same block, position by position
        assert net.layers[r].specs[int(c)] == alone.block_specs[n_fixed + r]
    src = net.state_dict()
    mapped = {}
    for k in alone.state_dict():
        if k.startswith("blocks."):
            i, rest = k.split(".", 2)[1:]
            i = int(i)
            mapped[k] = src[f"fixed_blocks.{i}.{rest}" if i < n_fixed else
                            f"layers.{i - n_fixed}.mixed.ops.{int(row[i - n_fixed])}.{rest}"]
        else:
            mapped[k] = src[k]
    alone.load_state_dict(mapped)
    x, _ = _data()
    net.eval()
    alone.eval()
    with torch.no_grad():
        assert torch.allclose(net(x, net.mixing_for(row)), alone(x), atol=1e-5)
    assert net.options[net.group][1][-1] == ("zero" if name == "proxylessnas" else "skip")


def test_chain_rows_differ_in_option_count_and_derive_valid_rows(tmp_path: Path) -> None:
    space = get_space("proxylessnas")
    net = relax(space, _cfg("proxylessnas"), generator=torch.Generator().manual_seed(0))
    assert net.alphas["blocks"].shape == (21, 7)
    assert [len(o) for o in net.options["blocks"]][:6] == [6, 7, 7, 7, 6, 7]
    probs = net.probabilities()["blocks"]
    assert probs[0, 6] == 0.0 and np.allclose(probs.sum(1), 1.0)
    with torch.no_grad():
        net.alphas["blocks"][0, 6] = 100.0  # a masked column never wins
    row = net.derive_row()
    space.validate(row[None, :])
    assert row[0] != 6
    save_supernet(net, tmp_path / "chain.pt")  # checkpoints round-trip (config JSON, weights_only load)
    back = load_supernet(tmp_path / "chain.pt")
    assert back.config == net.config and torch.equal(back.alphas["blocks"], net.alphas["blocks"])


@pytest.mark.parametrize("name,why", [("mnasnet", "filter-size and layer-count"), ("mobilenet", "mobilenet")])
def test_mnasnet_and_mobilenet_are_refused(name: str, why: str) -> None:
    with pytest.raises(ValueError, match=why) as e:
        relax(get_space(name), {"width_mult": 0.25, "num_classes": 10, "input": INPUT})
    assert "proxylessnas" in str(e.value) and "fbnet" in str(e.value)
    with pytest.raises(ValueError, match="does not relax space"):
        ProxylessNAS(epochs=1).relax(get_space(name), {"input": INPUT, "num_classes": 10})


def test_chain_config_errors_name_the_field() -> None:
    space = get_space("fbnet")
    with pytest.raises(ValueError, match="net.width_mult"):
        relax(space, {"width_mult": 0})
    with pytest.raises(ValueError, match="net.depth is not a setting"):
        relax(space, {"depth": 3})
    with pytest.raises(ValueError, match="net.input"):
        relax(space, {"input": (3, 16)})


# -- the cost model ------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["proxylessnas", "nb201"])
def test_expected_cost_is_differentiable_and_one_hot_is_the_path_cost(name: str) -> None:
    space = get_space(name)
    torch.manual_seed(0)
    net = relax(space, _cfg(name))
    costs = option_costs(net, INPUT)
    g = next(iter(net.alphas))
    # d E / d alpha_i = p_i (c_i - E_row), where E_row = sum_j p_j c_j (softmax derivative)
    e = expected_cost(net, costs)
    e.backward()
    p = torch.softmax(net.masked_logits(g), -1).detach().double()
    c = costs[g]
    want = p * (c - (p * c).sum(1, keepdim=True))
    assert torch.allclose(net.alphas[g].grad.double(), want, rtol=1e-4, atol=1e-2)
    assert float(net.alphas[g].grad.abs().sum()) > 0
    # a one-hot alpha: the expectation is the single path's cost, and fixed + path = the network's MACs
    row = space.sample(np.random.default_rng(1), 1)[0]
    with torch.no_grad():
        net.alphas[g].fill_(-1e4)
        net.alphas[g].scatter_(1, torch.as_tensor(row)[:, None], 1e4)
    hand = sum(float(costs[g][r, int(v)]) for r, v in enumerate(row))
    assert float(expected_cost(net, costs).detach()) == pytest.approx(hand, rel=1e-6)
    total = fixed_cost(net, INPUT, costs) + path_cost(costs, {g: row})
    if name == "proxylessnas":
        assert total == cost_report(space, row, {"width_mult": 0.25, "num_classes": 10, "input": INPUT})["macs"]
    # zero / none / identity options cost nothing; NB201 rows add up the edge over every cell
    names = net.options[g]
    for r, opts in enumerate(names):
        for i, o in enumerate(opts):
            if o in ("zero", "none", "skip_connect", "avg_pool_3x3"):
                assert float(c[r, i]) == 0.0
    if name == "nb201":
        conv1 = names[0].index("nor_conv_1x1")
        # C=4, N=1: one cell per stage at 4x16x16, 8x8x8, 16x4x4: each 1x1 conv is C*C*H*W MACs
        assert float(c[0, conv1]) == 4 * 4 * 256 + 8 * 8 * 64 + 16 * 16 * 16


# -- the searcher's update rules -------------------------------------------------------------------------

def test_binary_gate_gradient_equals_autograd_of_the_two_path_surrogate() -> None:
    """Eq. 4 restricted to two paths = the gradient of sum_j dL/dg_j * softmax(alpha_pair)_j."""
    g = torch.Generator().manual_seed(0)
    alpha = torch.randn(4, 6, generator=g, dtype=torch.float64)
    pairs = torch.stack([torch.randperm(6, generator=g)[:2] for _ in range(4)])
    G = torch.randn(4, 6, generator=g, dtype=torch.float64)
    a = alpha.clone().requires_grad_(True)
    surrogate = (G.gather(1, pairs) * torch.softmax(a.gather(1, pairs), 1)).sum()
    (want,) = torch.autograd.grad(surrogate, a)
    got = binary_gate_alpha_grad(alpha, pairs, G)
    assert torch.allclose(got, want, atol=1e-12)
    mask = torch.zeros_like(alpha, dtype=torch.bool).scatter_(1, pairs, True)
    assert (got[~mask] == 0).all()


def test_binary_gate_gradient_through_the_supernet() -> None:
    """End to end on NB201: dL/dg from the two-path forward, mapped by Eq. 4, equals autograd through
    gates whose forward value is the one-hot g and whose gradient flows through softmax(alpha_pair)."""
    torch.manual_seed(0)
    net = relax(get_space("nb201"), _cfg("nb201"))
    x, y = _data()
    alpha = net.alphas["cell"]
    pairs = torch.tensor([[0, 2], [3, 1], [2, 4], [1, 3], [4, 0], [3, 2]])  # first column active
    gate = torch.zeros_like(alpha).scatter_(1, pairs[:, :1], 1.0).requires_grad_(True)
    mix = {"cell": [EdgeMix(tuple(p), gate[r]) for r, p in enumerate(pairs.tolist())]}
    (gg,) = torch.autograd.grad(torch.nn.functional.cross_entropy(net(x, mix), y), gate)
    est = binary_gate_alpha_grad(alpha, pairs, gg)
    p = torch.softmax(alpha.gather(1, pairs), 1)
    st = gate.detach() + torch.zeros_like(alpha).scatter(1, pairs, p - p.detach())
    mix = {"cell": [EdgeMix(tuple(pr), st[r]) for r, pr in enumerate(pairs.tolist())]}
    (want,) = torch.autograd.grad(torch.nn.functional.cross_entropy(net(x, mix), y), alpha)
    assert torch.allclose(est, want, atol=1e-6) and float(est.abs().sum()) > 0


def test_rescale_pair_restores_the_pair_mass() -> None:
    alpha = torch.tensor([[0.3, -0.2, 1.0, 0.5], [0.0, 0.1, -0.4, 0.2]])
    pairs = torch.tensor([[0, 2], [3, 1]])
    before = torch.softmax(alpha, 1)
    old = alpha.gather(1, pairs).clone()
    alpha.scatter_add_(1, pairs, torch.tensor([[0.7, -0.1], [0.3, 0.4]]))
    rescale_pair(alpha, pairs, old)
    after = torch.softmax(alpha, 1)
    assert torch.allclose(after[0, [1, 3]], before[0, [1, 3]], atol=1e-7)
    assert torch.allclose(after[1, [0, 2]], before[1, [0, 2]], atol=1e-7)
    assert torch.allclose(torch.logsumexp(alpha.gather(1, pairs), 1), torch.logsumexp(old, 1), atol=1e-6)


def test_arch_step_keeps_unsampled_probabilities_and_moves_the_sampled_two() -> None:
    torch.manual_seed(1)
    q = _searcher("nb201")
    net = q._net()
    hand = torch.tensor([[0.5, -0.3, 1.0, 0.2, -1.0], [0.1, 0.4, -0.2, 0.3, 0.0], [1.2, -0.5, 0.3, 0.0, 0.7],
                         [-0.4, 0.2, 0.6, -0.1, 0.3], [0.0, 0.0, 0.9, -0.6, 0.2], [0.3, 0.8, -0.7, 0.1, 0.5]])
    with torch.no_grad():
        net.alphas["cell"].copy_(hand)
    before = torch.softmax(hand, 1)
    x, y = _data()
    q.arch_step((x[:8], y[:8]), (x[8:], y[8:]))
    after_alpha = net.alphas["cell"].detach()
    after = torch.softmax(after_alpha, 1)
    for r in range(6):
        moved = (after_alpha[r] - hand[r]).abs() > 1e-4
        assert int(moved.sum()) == 2, f"row {r}: {after_alpha[r] - hand[r]}"
        assert torch.allclose(after[r][~moved], before[r][~moved], atol=1e-6)
        assert not torch.allclose(after[r][moved], before[r][moved], atol=1e-6)
        assert float(torch.logsumexp(after_alpha[r][moved], 0)) == pytest.approx(
            float(torch.logsumexp(hand[r][moved], 0)), abs=1e-5)


def _count_calls(net: torch.nn.Module) -> tuple[dict[int, int], list[Any]]:
    calls: dict[int, int] = {}
    handles = []
    for k, m in enumerate(mo for mo in net.modules() if isinstance(mo, MixedOp)):
        for op in m.ops:
            def hook(_m: Any, _i: Any, _o: Any, k: int = k) -> None:
                calls[k] = calls.get(k, 0) + 1
            handles.append(op.register_forward_hook(hook))
    return calls, handles


def test_weight_step_runs_one_op_per_row_and_arch_step_at_most_two() -> None:
    torch.manual_seed(0)
    q = _searcher("proxylessnas")
    x, y = _data()
    calls, handles = _count_calls(q._net())
    q.weight_step((x[:8], y[:8]))
    assert sorted(calls) == list(range(21)) and set(calls.values()) == {1}
    calls.clear()
    q.arch_step((x[:8], y[:8]), (x[8:], y[8:]))
    assert sorted(calls) == list(range(21)) and set(calls.values()) == {2}
    for h in handles:
        h.remove()


# -- the searcher end to end -------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["proxylessnas", "fbnet", "nb201"])
def test_search_runs_derives_and_reports(name: str) -> None:
    torch.manual_seed(0)
    q = _searcher(name, cost_weight=0.3)
    x, y = _data()
    for _ in range(2):
        q.step((x[:8], y[:8]), (x[8:], y[8:]))
    q.end_epoch()
    row = q.derive()
    get_space(name).validate(row[None, :])
    rep = q.epoch_report(x, y, [x[:8]], row)
    for k in ("train_loss", "val_loss", "supernet_accuracy", "subnet_accuracy_inherited", "expected_mmacs",
              "derived_mmacs", "cost_target_mmacs"):
        assert k in rep and np.isfinite(rep[k]), k
    # the supernet's accuracy is the derived single path's
    assert rep["supernet_accuracy"] == rep["subnet_accuracy_inherited"]
    assert q.params()["cost_weight"] == 0.3 and q.params()["arch_lr"] == 6e-3
    assert q.params()["arch_betas"] == [0.0, 0.999]


@pytest.mark.parametrize("form", ["add", "mul"])
def test_cost_term_lowers_the_expected_macs(form: str) -> None:
    torch.manual_seed(0)
    q = _searcher("nb201", cost_weight=20.0 if form == "add" else 10.0, cost_form=form, arch_lr=0.05)
    x, y = _data()
    start = float(q.expected_macs().detach())
    for _ in range(5):
        q.arch_step((x[:8], y[:8]), (x[8:], y[8:]))
    assert float(q.expected_macs().detach()) < start


def test_reinforce_mode_updates_alpha() -> None:
    torch.manual_seed(0)
    q = _searcher("nb201", grad_mode="reinforce", rl_samples=3, cost_weight=0.5, cost_form="mul")
    before = q._net().alphas["cell"].detach().clone()
    x, y = _data()
    out = q.step((x[:8], y[:8]), (x[8:], y[8:]))
    assert {"reward", "baseline", "val_loss", "train_loss"} <= set(out)
    assert not torch.equal(before, q._net().alphas["cell"].detach())


def test_same_seed_same_derived_rows() -> None:
    def run() -> tuple[list[int], torch.Tensor]:
        with torch.random.fork_rng():
            torch.manual_seed(7)
            q = _searcher("fbnet", arch_lr=0.5)
            x, y = _data()
            for _ in range(3):
                q.step((x[:8], y[:8]), (x[8:], y[8:]))
            return q.derive().tolist(), q._net().alphas["layers"].detach().clone()

    (r1, a1), (r2, a2) = run(), run()
    assert r1 == r2 and torch.equal(a1, a2)


def test_bad_settings_are_clear_errors() -> None:
    with pytest.raises(ValueError, match="grad_mode"):
        ProxylessNAS(grad_mode="full")
    with pytest.raises(ValueError, match="cost_form"):
        ProxylessNAS(cost_form="log")
    with pytest.raises(ValueError, match="cost_weight"):
        ProxylessNAS(cost_weight=-1)
    with pytest.raises(ValueError, match="cost_target"):
        ProxylessNAS(cost_target=0)
