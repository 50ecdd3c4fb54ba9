"""Auto-DeepLab search (Liu et al., CVPR 2019) on a tiny supernet: Viterbi against brute force over the
trellis, beta normalised over outgoing moves, derivation on hand-made alpha/beta, single-path subnets,
and search steps on the synthetic shapes set (warm-up, alternation, reproducibility, reports)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import torch
from nasatlas.searchers.autodeeplab import AutoDeepLabSearch, segmentation_loss, segmentation_scores
from nasatlas.spaces import get_space
from nasatlas.spaces.derive import edge_index, viterbi_path
from nasatlas.spaces.supernet import EdgeMix, dense_mixing, relax
from nasatlas.spaces.supernet_autodeeplab import AutoDeepLabSupernet, reachable_levels
from nasatlas.spaces.trellis import TrellisPath

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY: dict[str, Any] = {"F": 2, "input": (3, 32, 32), "num_classes": 4}


def _net(layers: int = 3, paths: str = "paper", seed: int = 0) -> AutoDeepLabSupernet:
    torch.manual_seed(seed)
    net = relax(get_space("autodeeplab", layers=layers, paths=paths), TINY,
                generator=torch.Generator().manual_seed(seed))
    assert isinstance(net, AutoDeepLabSupernet)
    return net


def _randomise(net: AutoDeepLabSupernet, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for a in net.arch_parameters():
            a.copy_(torch.randn(a.shape, generator=g))


def _best_by_enumeration(trans: np.ndarray, first: tuple[int, ...], start: np.ndarray | None) -> list[int]:
    path = TrellisPath("p", trans.shape[0] + 1, first_levels=first)
    best, best_score = None, -np.inf
    for row in path.unrank(range(path.cardinality())):
        score = 0.0 if start is None else float(np.log(start[row[0]]))
        score += sum(float(np.log(trans[l, row[l], row[l + 1]])) for l in range(len(row) - 1))
        if score > best_score:
            best, best_score = [int(v) for v in row], score
    assert best is not None
    return best


@pytest.mark.parametrize("layers", [4, 5])
@pytest.mark.parametrize("first", [(0,), (0, 1)])
def test_viterbi_matches_brute_force(layers: int, first: tuple[int, ...]) -> None:
    rng = np.random.default_rng(layers * 10 + len(first))
    trellis = TrellisPath("p", layers, first_levels=first)
    for _ in range(10):
        trans = np.zeros((layers - 1, 4, 4))
        for l in range(layers - 1):
            for s in range(4):
                moves = list(trellis._moves(s))
                trans[l, s, moves] = rng.dirichlet(np.ones(len(moves)))
        start = None
        if len(first) > 1:
            start = np.zeros(4)
            start[list(first)] = rng.dirichlet(np.ones(len(first)))
        assert viterbi_path(trans, first, start) == _best_by_enumeration(trans, first, start)


@pytest.mark.parametrize("paths", ["paper", "literal"])
def test_supernet_decodes_the_most_probable_path(paths: str) -> None:
    net = _net(layers=5, paths=paths)
    first = net.path.first_levels
    for seed in range(5):
        _randomise(net, seed)
        trans, start = net.transitions(net.probabilities()["beta"])
        row = net.derive_row()
        net.space.validate(row[None, :])
        assert list(row[:5]) == _best_by_enumeration(trans, first, start)


@pytest.mark.parametrize("paths", ["paper", "literal"])
def test_beta_is_normalised_over_outgoing_moves_and_unreachable_nodes_do_not_exist(paths: str) -> None:
    net = _net(layers=4, paths=paths)
    _randomise(net, 3)
    reach = reachable_levels(net.path)
    if paths == "paper":
        assert reach == [[0], [0, 1], [0, 1, 2], [0, 1, 2, 3]]
        assert net.beta_nodes[0] == (0, 0)
    else:
        assert reach == [[0, 1], [0, 1, 2], [0, 1, 2, 3], [0, 1, 2, 3]]
        assert net.beta_nodes[0] == (-1, 0) and net.options["beta"][0] == ("/4", "/8")
    assert sorted(net.cells.keys()) == sorted(f"{l}_{s}" for l, lv in enumerate(reach) for s in lv)
    assert [n for n in net.beta_nodes if n[0] >= 0] == [(l, s) for l in range(3) for s in reach[l]]
    p = net.probabilities()["beta"]
    for r, opts in enumerate(net.options["beta"]):
        assert p[r, :len(opts)].sum() == pytest.approx(1.0, abs=1e-6)
        assert np.all(p[r, len(opts):] == 0.0)  # moves off the trellis
    trans, start = net.transitions(p)
    for l in range(3):
        for s in range(4):
            if s in reach[l]:
                assert trans[l, s].sum() == pytest.approx(1.0, abs=1e-6)
                assert all(trans[l, s, t] == 0.0 for t in range(4) if abs(t - s) > 1)
                assert all(trans[l, s, t] > 0.0 for t in range(4) if abs(t - s) <= 1)
            else:
                assert np.all(trans[l, s] == 0.0)
    assert (start is None) == (paths == "paper")
    assert net.options["beta"][net.beta_nodes.index((1, 0))] == ("/4", "/8")
    assert net.options["beta"][net.beta_nodes.index((2, 1))] == ("/4", "/8", "/16")


def test_decoding_hand_made_alpha_and_beta() -> None:
    net = _net(layers=5)
    target = [0, 1, 2, 2, 1]
    with torch.no_grad():
        beta = net.alphas["beta"]
        beta.zero_()
        for l in range(4):
            r = net.beta_nodes.index((l, target[l]))
            beta[r, net._targets[r].index(target[l + 1])] = 5.0
        cell = net.alphas["cell"]
        cell.zero_()
        cell[:, net.ops.index("none")] = 10.0  # "none" is never kept, however strong
        idx = edge_index(5)
        want = [[(0, 2), (1, 0)], [(1, 1), (2, 3)], [(0, 6), (3, 4)], [(2, 5), (4, 0)], [(1, 1), (5, 2)]]
        for b, pairs in enumerate(want):
            for inp, op in pairs:
                cell[idx[b][inp], op] = 3.0
    row = net.derive_row()
    assert list(row[:5]) == target
    assert net.space.to_str(row) == net.space.to_str(np.concatenate([target, net.cell.row_from_edges(want)]))
    # Viterbi, not greedy: the locally best first move (stay at /4) is not on the most probable path
    probs = net.probabilities()
    small = _net(layers=3)
    pb = np.zeros((3, 3))
    pb[small.beta_nodes.index((0, 0)), :2] = [0.6, 0.4]
    pb[small.beta_nodes.index((1, 0)), :2] = [0.5, 0.5]
    pb[small.beta_nodes.index((1, 1)), :3] = [0.05, 0.05, 0.9]
    assert list(small.derive_row({"beta": pb, "cell": probs["cell"]})[:3]) == [0, 1, 2]


def test_subnet_runs_only_its_path_and_gives_full_size_logits() -> None:
    net = _net(layers=4)
    net.eval()
    calls: dict[str, int] = {}
    for key, cell in net.cells.items():
        for name, m in cell.named_modules():
            if name.startswith("pre") or name.startswith("edges."):
                m.register_forward_hook(lambda _m, _i, _o, k=f"{key}.{name}": calls.__setitem__(k, calls.get(k, 0) + 1))
    x = torch.randn(2, 3, 32, 32)
    rows = net.space.sample(np.random.default_rng(0), 6)
    for row in rows:
        calls.clear()
        with torch.no_grad():
            out = net(x, net.mixing_for(row))
        assert out.shape == (2, 4, 32, 32) and torch.isfinite(out).all()
        levels = [int(v) for v in row[:4]]
        on_path = {f"{l}_{s}" for l, s in enumerate(levels)}
        used_cells = {k.split(".")[0] for k in calls}
        assert used_cells == on_path
        for l in range(1, 4):  # each path cell resamples from the level the path comes from, only
            pre1 = {k for k in calls if k.startswith(f"{l}_{levels[l]}.pre1.") and k.count(".") == 2}
            assert pre1 == {f"{l}_{levels[l]}.pre1.{levels[l - 1]}"}
    with torch.no_grad():
        assert net(x, dense_mixing(net)).shape == (2, 4, 32, 32)


def test_config_is_validated_naming_the_field() -> None:
    space = get_space("autodeeplab", layers=3)
    with pytest.raises(ValueError, match="net.layers"):
        relax(space, {**TINY, "layers": 4})
    with pytest.raises(ValueError, match="net.F"):
        relax(space, {**TINY, "F": 3})
    with pytest.raises(ValueError, match="net.C"):
        relax(space, {**TINY, "C": 3})
    assert relax(space, {**TINY, "layers": 3}).config["layers"] == 3


def test_segmentation_loss_and_scores_ignore_label_255() -> None:
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 3, 4, 4, generator=g)
    y = torch.randint(0, 3, (2, 4, 4), generator=g)
    y[0, :2] = 255
    keep = y != 255
    manual = torch.nn.functional.cross_entropy(logits.permute(0, 2, 3, 1)[keep], y[keep])
    assert float(segmentation_loss(logits, y)) == pytest.approx(float(manual), rel=1e-6)
    assert float(segmentation_loss(logits, torch.full_like(y, 255))) == 0.0
    pred = logits.argmax(1)
    s = segmentation_scores(lambda xb: logits[: xb.shape[0]] if xb.shape[0] == 2 else logits, logits, y, 3,
                            batch_size=2)
    assert s["pixel_accuracy"] == pytest.approx(float((pred == y)[keep].float().mean()))
    ious = [((pred == c) & (y == c) & keep).sum() / (((pred == c) & keep) | (y == c)).sum() for c in range(3)]
    assert s["miou"] == pytest.approx(float(torch.stack(ious).mean()), rel=1e-6)


@pytest.fixture(scope="module")
def shapes() -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    from nasatlas.evaluators.data import load_data
    d = load_data("shapes", size=32, n=64, seed=0)
    assert d.x_train.shape[1:] == (3, 32, 32) and d.y_train.dtype == torch.int64 and d.num_classes == 4
    perm = np.random.default_rng(0).permutation(d.x_train.shape[0])
    a, b = torch.from_numpy(perm[:32]), torch.from_numpy(perm[32:])
    return (d.x_train[a], d.y_train[a]), (d.x_train[b], d.y_train[b])


def _batches(half: tuple[torch.Tensor, torch.Tensor], n: int, size: int = 4) -> Iterator[tuple[torch.Tensor, ...]]:
    x, y = half
    for i in range(n):
        yield x[i * size:(i + 1) * size], y[i * size:(i + 1) * size]


def _search(shapes: Any, seed: int = 0, steps: int = 2
            ) -> tuple[AutoDeepLabSearch, list[dict[str, float]], dict[str, Any]]:
    trainA, trainB = shapes
    s = AutoDeepLabSearch(epochs=2, batch_size=4, net={"F": 2})
    assert s.warmup_epochs == 1 and s.params()["arch_lr"] == 3e-3
    outs: list[dict[str, float]] = []
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        net = s.relax(get_space("autodeeplab", layers=3), {"input": (3, 32, 32), "num_classes": 4})
        alpha0 = {k: v.detach().clone() for k, v in net.alphas.items()}
        for epoch in range(2):
            for tb, vb in zip(_batches(trainA, steps), _batches(trainB, steps)):
                outs.append(s.step(tb, vb))
            if epoch == 0:  # warm-up: weights only
                assert all(torch.equal(alpha0[k], v) for k, v in net.alphas.items())
            s.end_epoch()
        rep = s.epoch_report(trainB[0][:8], trainB[1][:8], [trainA[0][:4]])
    return s, outs, rep


def test_search_steps_warmup_derive_and_report(shapes: Any) -> None:
    s, outs, rep = _search(shapes)
    assert ["val_loss" in o for o in outs] == [False, False, True, True]
    assert all(np.isfinite(o["train_loss"]) for o in outs)
    net = s._net()
    assert not torch.equal(net.alphas["beta"], torch.zeros_like(net.alphas["beta"]))
    row = s.derive()
    s.space.validate(row[None, :])
    for k in ("supernet_accuracy", "subnet_accuracy_inherited", "subnet_accuracy_recalibrated", "supernet_miou",
              "subnet_miou_inherited", "subnet_miou_recalibrated"):
        assert 0.0 <= rep[k] <= 1.0, k
    assert rep["path"][0] == 4 and len(rep["path"]) == 3 and rep["arch_updates"] is True
    assert set(rep["alpha"]) == {"cell", "beta"} and rep["val_loss"] > 0


def test_same_seed_same_derivation(shapes: Any) -> None:
    a, _, rep_a = _search(shapes, seed=1, steps=1)
    b, _, rep_b = _search(shapes, seed=1, steps=1)
    assert np.array_equal(a.derive(), b.derive())
    assert rep_a["alpha"] == rep_b["alpha"]


def test_arch_step_keeps_weights_and_weight_step_keeps_alpha_and_beta(shapes: Any) -> None:
    trainA, trainB = shapes
    s = AutoDeepLabSearch(epochs=2, batch_size=4, net={"F": 2})
    torch.manual_seed(0)
    net = s.relax(get_space("autodeeplab", layers=3), {"input": (3, 32, 32), "num_classes": 4})
    tb, vb = next(_batches(trainA, 1)), next(_batches(trainB, 1))

    def snap(params: list[torch.nn.Parameter]) -> list[torch.Tensor]:
        return [p.detach().clone() for p in params]

    w0, a0 = snap(net.weight_parameters()), snap(net.arch_parameters())
    out = s.arch_step(tb, vb)
    assert np.isfinite(out["val_loss"])
    assert all(torch.equal(p, q) for p, q in zip(net.weight_parameters(), w0))
    assert all(not torch.equal(p, q) for p, q in zip(net.arch_parameters(), a0))  # alpha and beta both move
    a1 = snap(net.arch_parameters())
    s.weight_step(tb)
    assert all(torch.equal(p, q) for p, q in zip(net.arch_parameters(), a1))
    assert any(not torch.equal(p, q) for p, q in zip(net.weight_parameters(), w0))


def test_single_path_mixing_shape() -> None:
    net = _net(layers=3)
    row = net.space.sample(np.random.default_rng(1), 1)[0]
    mix = net.mixing_for(row)
    assert len(mix["beta"]) == len(net.beta_nodes) and len(mix["cell"]) == 20
    assert sum(len(m.active) for m in mix["beta"]) == 2  # one move per layer transition
    assert sum(len(m.active) for m in mix["cell"]) == 10  # two inputs per block
    assert all(isinstance(m, EdgeMix) and m.weights is None for m in mix["cell"])


def test_checkpoint_round_trip(tmp_path: Any) -> None:
    from nasatlas.spaces.supernet import load_supernet, save_supernet
    net = _net(layers=3)
    _randomise(net, 5)
    save_supernet(net, tmp_path / "adl.pt")
    back = load_supernet(tmp_path / "adl.pt")
    assert isinstance(back, AutoDeepLabSupernet) and back.config == net.config
    net.eval()
    back.eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(net(x, dense_mixing(net)), back(x, dense_mixing(back)))
    assert np.array_equal(net.derive_row(), back.derive_row())
