"""Functional distance: linear CKA hand cases (Kornblith et al. 2019), penultimate features, training
through the train evaluator's own path, and the pipeline and CLI on a tiny protocol."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from nasatlas.spaces import get_space
from nasatlas.studies.cli import main
from nasatlas.studies.functional import (
    functional_distance,
    functional_section,
    functional_vs_structural,
    linear_cka,
    load_protocol_data,
    one_edit_pairs,
    penultimate_features,
    probe_inputs,
    summarise,
    train_model,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")

#: digits at their native 8x8, one epoch, NB201's smallest network: ~0.2 s per training
TINY: dict[str, Any] = {"data": {"name": "digits", "seed": 0}, "net": {"preset": "tiny", "C": 4, "N": 1}, "epochs": 1}


@pytest.fixture(scope="module")
def data() -> Any:
    return load_protocol_data(TINY)


def test_linear_cka_hand_cases() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 6))
    assert linear_cka(x, x) == pytest.approx(1.0)
    q, _ = np.linalg.qr(rng.normal(size=(6, 6)))
    assert linear_cka(x, 3.7 * x @ q) == pytest.approx(1.0)          # orthogonal transform, isotropic scaling
    y = rng.normal(size=(200, 4))
    assert linear_cka(x @ q, 0.2 * y) == pytest.approx(linear_cka(x, y))
    assert linear_cka(x + 5.0, y - 2.0) == pytest.approx(linear_cka(x, y))   # columns are centred
    far = rng.normal(size=(4000, 5))
    assert linear_cka(rng.normal(size=(4000, 5)), far) < 0.02         # independent: ~ sqrt(d1 d2) / n
    # centred by construction: XᵀX = 2I (norm 2√2), YᵀY = [2], YᵀX = [2, 0] -> 4 / (2√2 · 2) = 1/√2
    xh = np.array([[1.0, 0], [0, 1], [-1, 0], [0, -1]])
    yh = np.array([[1.0], [0], [-1], [0]])
    assert linear_cka(xh, yh) == pytest.approx(1 / np.sqrt(2))
    # two examples: after centring each representation is one direction, so any two agree
    assert linear_cka(np.array([[1.0, 2], [3, 4]]), np.array([[0.0, 1], [5, 1]])) == pytest.approx(1.0)
    wide = rng.normal(size=(10, 30))                                  # more features than examples: Gram form
    xc, yc = wide - wide.mean(0), x[:10] - x[:10].mean(0)
    direct = np.linalg.norm(yc.T @ xc) ** 2 / (np.linalg.norm(xc.T @ xc) * np.linalg.norm(yc.T @ yc))
    assert linear_cka(wide, x[:10]) == pytest.approx(direct)


def test_linear_cka_errors() -> None:
    x = np.random.default_rng(0).normal(size=(5, 3))
    with pytest.raises(ValueError, match="examples"):
        linear_cka(x, x[:4])
    with pytest.raises(ValueError, match="constant"):
        linear_cka(x, np.ones((5, 2)))
    with pytest.raises(ValueError, match="at least 2"):
        linear_cka(x[:1], x[:1])
    with pytest.raises(ValueError, match="NaN"):
        linear_cka(np.full((5, 3), np.nan), x)
    with pytest.raises(ValueError, match="2-d"):
        linear_cka(x[:, 0], x)


def test_features_are_the_classifier_input(data: Any) -> None:
    import torch
    from nasatlas.spaces.build import build
    space = get_space("nb201")
    row = space.sample(np.random.default_rng(0), 1)[0]
    model = build(space, row, {**TINY["net"], "num_classes": 10, "input": (3, 8, 8)})
    x = probe_inputs(data, 64)
    f = penultimate_features(model, x, batch_size=25)
    assert f.shape == (64, model.classifier.in_features) and f.dtype == np.float64
    with torch.inference_mode():
        logits = model(x).double()
        again = model.classifier(torch.from_numpy(f).float()).double()
    assert torch.allclose(logits, again, atol=1e-5)
    with pytest.raises(ValueError, match="held-out"):
        probe_inputs(data, 100_000)


def test_training_is_the_train_evaluators(data: Any) -> None:
    """Same seed: same network, bitwise, as the train evaluator trains (its validation accuracy), and the
    same features, so CKA 1; another seed gives another network."""
    from nasatlas.evaluators.train import TrainEvaluator, accuracy
    space = get_space("nb201")
    row = space.sample(np.random.default_rng(1), 1)[0]
    ev = TrainEvaluator(data=TINY["data"], net=TINY["net"], epochs=1)
    ev.setup(space)
    res = ev.evaluate(space.arch(row), budget={}, seed=5)
    m1 = train_model(space, row, 5, TINY, data)
    assert accuracy(m1, data.x_valid, data.y_valid) == res.metrics["valid_acc"]
    x = probe_inputs(data, 64)
    f1, f2 = penultimate_features(m1, x), penultimate_features(train_model(space, row, 5, TINY, data), x)
    assert np.array_equal(f1, f2) and linear_cka(f1, f2) == pytest.approx(1.0)
    f3 = penultimate_features(train_model(space, row, 6, TINY, data), x)
    assert not np.array_equal(f1, f3) and linear_cka(f1, f3) < 1.0


def test_one_edit_pairs() -> None:
    space = get_space("nb201")
    pairs = one_edit_pairs(space, np.random.default_rng(0), 5)
    assert len(pairs) == 5 and pairs.equals(one_edit_pairs(space, np.random.default_rng(0), 5))
    for p in pairs.itertuples():
        a, b = (np.asarray(space.from_str(s).indices) for s in (p.arch_a, p.arch_b))
        (j,) = np.flatnonzero(a != b)
        assert p.decision == space.decisions[j].name
        assert p.options == f"{space.decisions[j].choices[a[j]]} -> {space.decisions[j].choices[b[j]]}"
    with pytest.raises(ValueError, match="pairs"):
        one_edit_pairs(space, np.random.default_rng(0), 0)


def test_pipeline_one_pair_two_seeds(data: Any) -> None:
    space = get_space("nb201")
    table = functional_vs_structural(space, np.random.default_rng(0), 1, [0, 1], TINY, probe=64)
    (r,) = table.to_dict("records")
    assert r["structural_distance"] == r["hamming"] == 1
    assert len(r["cka"]) == 2 and len(r["floor_cka"]) == 2          # (a0,b1), (a1,b0); a0~a1, b0~b1
    assert all(0.0 <= v <= 1.0 + 1e-12 for v in r["cka"] + r["floor_cka"])
    assert r["distance_mean"] == pytest.approx(1 - np.mean(r["cka"]))
    a, b = (np.asarray(space.from_str(r[k]).indices) for k in ("arch_a", "arch_b"))
    again = functional_distance(space, a, b, [0, 1], TINY, data=data, probe=64)
    assert again["cka"] == r["cka"] and again["floor_cka"] == r["floor_cka"]
    s = summarise(table)
    assert s["floor_cka"]["n"] == 2 and s["floor_distance"] == pytest.approx(1 - np.mean(r["floor_cka"]))
    assert s["ratio"] == pytest.approx(r["distance_mean"] / s["floor_distance"])
    with pytest.raises(ValueError, match="distinct"):
        functional_distance(space, a, b, [3, 3], TINY, data=data, probe=64)


def test_cli_and_report_section(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The calibrated protocol cut to 1 epoch: 1 pair x 2 seeds = 4 trainings, through the CLI and through
    the report section (the same seed: the same numbers)."""
    assert main(["analyze", "functional", "--space", "nb201", "--pairs", "1", "--seeds", "2", "--epochs", "1",
                 "--probe", "64", "--seed", "3", "--json", "--out", str(tmp_path / "cli")]) == 0
    out = json.loads(capsys.readouterr().out)
    assert (tmp_path / "cli" / "functional_pairs.csv").is_file()
    for key in ("floor_cka", "pairs", "mean_functional_distance_one_edit", "floor_distance", "ratio", "seeds"):
        assert key in out
    assert out["protocol"]["epochs"] == 1 and out["protocol"]["net"]["N"] == 2 and len(out["seeds"]) == 2
    (p,) = out["pairs"]
    assert set(p) >= {"arch_a", "arch_b", "decision", "options", "cka_mean", "distance_mean"}
    assert out["ratio"] == pytest.approx(out["mean_functional_distance_one_edit"] / out["floor_distance"])
    assert main(["analyze", "functional", "--space", "nb201", "--seeds", "1"]) == 2
    assert "--seeds" in capsys.readouterr().err
    study = {"study": {"seed": 3}, "space": {"name": "nb201"},
             "analysis": {"functional": {"pairs": 1, "seeds": 2, "epochs": 1, "probe": 64}}}
    md = functional_section(pd.DataFrame(), study, tmp_path)
    assert md.startswith("## Is the space denser") and f"**{out['ratio']:.2f}×**" in md and p["options"] in md
    assert "![functional vs structural distance](functional_cka.png)" in md
    if importlib.util.find_spec("matplotlib"):
        assert (tmp_path / "functional_cka.png").stat().st_size > 1000
    with pytest.raises(ValueError, match=r"\[analysis.functional\] pairs"):
        functional_section(pd.DataFrame(), {**study, "analysis": {"functional": {"pairs": "4"}}}, tmp_path)
