"""DARTS (Liu et al. 2019) and GDAS (Dong & Yang 2019) on tiny supernets: the second-order alpha
gradient against a finite-difference check of the unrolled objective, the derivation rules on
hand-made alpha, warm-up/one-level/early-stopping switches, and each required pair running a step."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from nasatlas.searchers.darts import DARTS, unrolled_alpha_gradient
from nasatlas.spaces import get_space
from nasatlas.spaces.derive import argmax_per_row, darts_top_k_edges, edge_index
from nasatlas.spaces.supernet import dense_mixing, relax

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY = {"nb201": {"C": 2, "N": 1, "input": (3, 8, 8), "num_classes": 3},
        "darts": {"C": 2, "layers": 3, "input": (3, 8, 8), "num_classes": 3}}


def _batch(seed: int, n: int = 6, dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, 8, 8, generator=g, dtype=dtype), torch.randint(0, 3, (n,), generator=g)


@pytest.mark.parametrize("space_name", ["nb201", "darts"])
def test_second_order_gradient_matches_finite_difference_of_unrolled_objective(space_name: str) -> None:
    """d/dalpha L_val(w - xi grad_w L_train(w, alpha), alpha), by central differences on alpha in float64,
    equals DARTS's Eq. 7-8 gradient (whose own Hessian-vector product is a finite difference too)."""
    torch.manual_seed(0)
    net = relax(get_space(space_name), TINY[space_name]).double()
    with torch.no_grad():
        for a in net.arch_parameters():
            a.copy_(torch.randn(a.shape, dtype=torch.float64))
    train, val = _batch(1, dtype=torch.float64), _batch(2, dtype=torch.float64)
    xi = 0.05
    grads, _ = unrolled_alpha_gradient(net, train, val, xi, fd_epsilon=1e-6)
    ce = torch.nn.functional.cross_entropy
    weights = net.weight_parameters()
    w0 = [p.detach().clone() for p in weights]

    def unrolled_objective() -> float:
        g = torch.autograd.grad(ce(net(*train[:1], dense_mixing(net)), train[1]), weights, allow_unused=True)
        with torch.no_grad():
            for p, gi in zip(weights, g):
                if gi is not None:
                    p.sub_(xi * gi)
            v = float(ce(net(val[0], dense_mixing(net)), val[1]))
            for p, w in zip(weights, w0):
                p.copy_(w)
        return v

    h = 1e-5
    rng = np.random.default_rng(0)
    for a, g in zip(net.arch_parameters(), grads):
        for _ in range(4):
            idx = tuple(int(rng.integers(s)) for s in a.shape)
            with torch.no_grad():
                a[idx] += h
            up = unrolled_objective()
            with torch.no_grad():
                a[idx] -= 2 * h
            down = unrolled_objective()
            with torch.no_grad():
                a[idx] += h
            numeric = (up - down) / (2 * h)
            assert float(g[idx]) == pytest.approx(numeric, rel=1e-4, abs=1e-7)


def test_second_order_differs_from_first_order_and_restores_weights() -> None:
    torch.manual_seed(0)
    net = relax(get_space("nb201"), TINY["nb201"])
    train, val = _batch(1), _batch(2)
    before = [p.detach().clone() for p in net.weight_parameters()]
    bn_before = {k: b.clone() for k, b in net.named_buffers()}
    g2, _ = unrolled_alpha_gradient(net, train, val, xi=0.1)
    for p, b in zip(net.weight_parameters(), before):
        assert torch.equal(p.detach(), b)
    for k, b in net.named_buffers():
        assert torch.equal(b, bn_before[k])
    loss = torch.nn.functional.cross_entropy(net(val[0], dense_mixing(net)), val[1])
    (g1,) = torch.autograd.grad(loss, net.arch_parameters())
    assert not torch.allclose(g1, g2[0])
    g0, _ = unrolled_alpha_gradient(net, train, val, xi=0.0)
    assert torch.allclose(g1, g0[0], atol=1e-6)  # xi = 0 is the first-order gradient


def test_darts_derivation_on_hand_made_alpha() -> None:
    # 2 nodes; edges: node2 <- {0, 1}, node3 <- {0, 1, 2}; ops: [none, a, b]
    p = np.array([[0.9, 0.05, 0.05],    # 2<-0: strong none only: weak edge (0.05)
                  [0.2, 0.3, 0.5],      # 2<-1: 0.5 (op b)
                  [0.1, 0.8, 0.1],      # 3<-0: 0.8 (op a)
                  [0.5, 0.25, 0.25],    # 3<-1: 0.25
                  [0.3, 0.3, 0.4]])     # 3<-2: 0.4 (op b)
    nodes = darts_top_k_edges(p, nodes=2, k=2, zero_index=0)
    assert nodes == [[(0, 1), (1, 2)], [(0, 1), (2, 2)]]
    assert edge_index(2) == [[0, 1], [2, 3, 4]]
    assert argmax_per_row(p).tolist() == [0, 2, 1, 0, 2]
    assert argmax_per_row(p, exclude=[0]).tolist() == [1, 2, 1, 1, 2]


def test_darts_supernet_derives_the_cell_its_alpha_encodes() -> None:
    """Set alpha to favour a published cell (DARTS_V2's normal and reduce), derive, get it back."""
    space = get_space("darts")
    net = relax(space, TINY["darts"])
    v2 = space.from_str("Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), "
                        "('sep_conv_3x3', 1), ('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), "
                        "('dil_conv_3x3', 2)], normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), "
                        "('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 1), ('max_pool_3x3', 0), "
                        "('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)], reduce_concat=[2, 3, 4, 5])")
    mix = net.mixing_for(np.asarray(v2.indices))
    with torch.no_grad():
        for g in ("normal", "reduce"):
            a = net.alphas[g]
            a.zero_()
            a[:, 0] = 5.0  # 'none' strongest everywhere: must never be picked
            for r, m in enumerate(mix[g]):
                if m.active:
                    a[r, m.active[0]] = 3.0
    assert space.to_str(net.derive_row()) == space.to_str(np.asarray(v2.indices))


@pytest.mark.parametrize("space_name", ["nb201", "darts"])
@pytest.mark.parametrize("order", [1, 2])
def test_darts_runs_a_step_on_each_required_space(space_name: str, order: int) -> None:
    torch.manual_seed(0)
    s = DARTS(order=order, epochs=2, batch_size=6, net={k: v for k, v in TINY[space_name].items()
                                                        if k not in ("input", "num_classes")})
    space = get_space(space_name)
    net = s.relax(space, {"input": (3, 8, 8), "num_classes": 3})
    a0 = [a.detach().clone() for a in net.arch_parameters()]
    out = s.step(_batch(1), _batch(2))
    assert set(out) == {"train_loss", "val_loss"}
    assert any(not torch.equal(a, b) for a, b in zip(net.arch_parameters(), a0))
    s.end_epoch()
    row = s.derive()
    space.validate(row[None, :])
    rep = s.epoch_report(*_batch(3, n=12), [_batch(4)[0]])
    for k in ("train_loss", "val_loss", "supernet_accuracy", "subnet_accuracy_inherited",
              "subnet_accuracy_recalibrated", "alpha", "lr"):
        assert k in rep


def test_warmup_freezes_alpha_and_one_level_uses_the_training_batch() -> None:
    torch.manual_seed(0)
    s = DARTS(epochs=3, batch_size=6, warmup_epochs=1, net={"C": 2, "N": 1})
    net = s.relax(get_space("nb201"), {"input": (3, 8, 8), "num_classes": 3})
    a0 = net.alphas["cell"].detach().clone()
    s.step(_batch(1), _batch(2))
    assert torch.equal(net.alphas["cell"], a0)
    s.end_epoch()
    s.step(_batch(1), _batch(2))
    assert not torch.equal(net.alphas["cell"], a0)
    # one-level: the architecture gradient does not depend on the validation batch
    grads = []
    for val_seed in (2, 5):
        torch.manual_seed(0)
        s1 = DARTS(epochs=1, batch_size=6, one_level=True, net={"C": 2, "N": 1})
        n1 = s1.relax(get_space("nb201"), {"input": (3, 8, 8), "num_classes": 3})
        s1.step(_batch(1), _batch(val_seed))
        grads.append(n1.alphas["cell"].detach().clone())
    assert torch.equal(grads[0], grads[1])


def test_darts_plus_stops_on_skip_connections() -> None:
    torch.manual_seed(0)
    s = DARTS(epochs=5, batch_size=6, early_stop="darts+", max_skip=2, net={"C": 2, "N": 1})
    net = s.relax(get_space("nb201"), {"input": (3, 8, 8), "num_classes": 3})
    with torch.no_grad():
        net.alphas["cell"].zero_()
        net.alphas["cell"][:, 3] = 1.0  # nor_conv_3x3 everywhere
        net.alphas["cell"][0, 1] = 2.0  # one skip
    s.end_epoch()
    assert not s.stop
    with torch.no_grad():
        net.alphas["cell"].zero_()
        net.alphas["cell"][:, 1] = 1.0  # skip_connect everywhere
    s.end_epoch()
    assert s.stop and s._skips(s.derive()) == 6


def test_eigenvalue_rule_returns_the_architecture_k_epochs_back() -> None:
    s = DARTS(epochs=20, batch_size=6, early_stop="eigenvalue", patience=2, window=2, net={"C": 2, "N": 1})
    s.relax(get_space("nb201"), {"input": (3, 8, 8), "num_classes": 3})
    s._rows = [np.full(6, i % 5) for i in range(6)]
    s._eigen = [1.0, 1.0, 1.0, 1.0, 1.5, 1.5]
    s._check_stop(s._rows[-1])
    assert s.stop and s.derive().tolist() == s._rows[-3].tolist()


def test_dominant_eigenvalue_matches_the_explicit_hessian() -> None:
    from nasatlas.searchers.darts import dominant_hessian_eigenvalue
    torch.manual_seed(0)
    net = relax(get_space("nb201"), TINY["nb201"]).double()
    x, y = _batch(1, dtype=torch.float64)
    lam = dominant_hessian_eigenvalue(net, (x, y), iterations=200, generator=torch.Generator().manual_seed(0))
    a = net.alphas["cell"]

    def f(flat: torch.Tensor) -> torch.Tensor:
        from nasatlas.spaces.supernet import EdgeMix
        w = torch.softmax(flat.view_as(a), -1)
        mix = {"cell": [EdgeMix(tuple(range(5)), w[r]) for r in range(6)]}
        return torch.nn.functional.cross_entropy(net(x, mix), y)

    hess = torch.autograd.functional.hessian(f, a.detach().reshape(-1).clone())
    ev = torch.linalg.eigvalsh(hess)
    dominant = float(ev[ev.abs().argmax()])
    assert lam == pytest.approx(dominant, rel=1e-3)


def test_bad_darts_parameters() -> None:
    with pytest.raises(ValueError, match="order"):
        DARTS(order=3)
    with pytest.raises(ValueError, match="one_level"):
        DARTS(order=2, one_level=True)
    with pytest.raises(ValueError, match="early_stop"):
        DARTS(early_stop="sometimes")
    with pytest.raises(ValueError, match="nb101"):
        DARTS().relax(get_space("nb101"), {"input": (3, 8, 8), "num_classes": 3})


# -- GDAS ------------------------------------------------------------------------------------------------

def test_gumbel_max_samples_follow_softmax_and_pass_straight_through_gradients() -> None:
    from nasatlas.searchers.gdas import gumbel_hard_sample
    logits = torch.tensor([[0.0, 1.0, 2.0, -1.0]]).repeat(20000, 1).requires_grad_(True)
    hard, idx = gumbel_hard_sample(logits, tau=5.0, generator=torch.Generator().manual_seed(0))
    freq = np.bincount(idx.numpy(), minlength=4) / idx.numel()
    assert np.allclose(freq, torch.softmax(logits[0], -1).detach().numpy(), atol=0.01)  # Gumbel-max: exact law
    assert torch.equal(hard.detach(), torch.nn.functional.one_hot(idx, 4).float())
    (hard[:, 2].sum()).backward()
    assert logits.grad is not None and logits.grad.abs().sum() > 0


def test_gdas_weight_step_runs_one_op_per_edge() -> None:
    from nasatlas.searchers.gdas import GDAS
    from nasatlas.spaces.supernet import MixedOp
    torch.manual_seed(0)
    s = GDAS(epochs=3, batch_size=6, net={"C": 2, "N": 1})
    net = s.relax(get_space("nb201"), {"input": (3, 8, 8), "num_classes": 3})
    calls = {"n": 0}
    for m in net.modules():
        if isinstance(m, MixedOp):
            for op in m.ops:
                op.register_forward_hook(lambda *_: calls.__setitem__("n", calls["n"] + 1))
    s.weight_step(_batch(1))
    # 3 cells (C=2, N=1: one per stage) x 6 edges, one sampled op each ('none' samples are not run);
    # DARTS's dense mixture would run 3 x 6 x 4 non-zero ops
    assert 0 < calls["n"] <= 18
    assert s.tau == 10.0
    s.end_epoch()
    s.end_epoch()
    assert s.tau == pytest.approx(0.1)


@pytest.mark.parametrize("space_name", ["nb201", "darts"])
def test_gdas_runs_a_step_on_each_required_space(space_name: str) -> None:
    from nasatlas.searchers.gdas import GDAS
    torch.manual_seed(0)
    size = {k: v for k, v in TINY[space_name].items() if k not in ("input", "num_classes")}
    s = GDAS(epochs=2, batch_size=6, net=size)
    space = get_space(space_name)
    net = s.relax(space, {"input": (3, 8, 8), "num_classes": 3})
    a0 = [a.detach().clone() for a in net.arch_parameters()]
    w0 = [w.detach().clone() for w in net.weight_parameters()]
    s.step(_batch(1), _batch(2))
    assert any(not torch.equal(a, b) for a, b in zip(net.arch_parameters(), a0))
    assert any(not torch.equal(a, b) for a, b in zip(net.weight_parameters(), w0))
    s.end_epoch()
    space.validate(s.derive()[None, :])
    rep = s.epoch_report(*_batch(3, n=12), [_batch(4)[0]])
    assert rep["tau"] == pytest.approx(0.1) and 0.0 <= rep["supernet_accuracy"] <= 1.0


def test_same_seed_same_derivation() -> None:
    from nasatlas.searchers.gdas import GDAS
    rows = []
    for _ in range(2):
        torch.manual_seed(3)
        s = GDAS(epochs=1, batch_size=6, net={"C": 2, "N": 1})
        s.relax(get_space("nb201"), {"input": (3, 8, 8), "num_classes": 3})
        for k in range(3):
            s.step(_batch(k), _batch(k + 10))
        rows.append((s.derive().tolist(), [a.detach().clone() for a in s._net().arch_parameters()]))
    assert rows[0][0] == rows[1][0] and all(torch.equal(a, b) for a, b in zip(rows[0][1], rows[1][1]))
