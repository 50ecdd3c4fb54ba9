"""The ``train`` evaluator trains for real: NB201 cells on scikit-learn's digits (classification) and
Auto-DeepLab (Liu et al. 2019; DeepLabv3+ head, Chen et al. 2018) on the generated shapes set.

Thresholds were measured on a 2-core CPU and set below the measured values (see each test). The fast
segmentation fixture is a 3-layer Auto-DeepLab trellis on 33x33 shapes; the default 12-layer
network is exercised by the ``slow`` test.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from nasatlas.evaluators import get_evaluator
from nasatlas.evaluators.data import load_data
from nasatlas.evaluators.metrics import mean_iou
from nasatlas.evaluators.train import (
    CLASSIFICATION_METRICS,
    SEGMENTATION_DATA,
    SEGMENTATION_METRICS,
    TrainEvaluator,
    segmentation_scores,
    split_segmentation,
    train_network,
    train_segmentation,
)
from nasatlas.results import EvalResult, ResultLog
from nasatlas.spaces import Space, get_space
from nasatlas.spaces.build import build

#: a fixed NB201 cell with convolutions, a skip and a pool
NB201_ARCH = "|nor_conv_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|skip_connect~0|nor_conv_3x3~1|avg_pool_3x3~2|"
#: the fast segmentation data (with a 3-layer trellis, 12 epochs at lr 0.1: 84 steps): 33x33 shapes,
#: 128 training images (102 train + 26 valid), 64 test
SEG_FAST = {"name": "shapes", "size": 33, "n": 128, "n_valid": 64, "seed": 0}


def _arch(space: Space, seed: int = 0) -> Any:
    return space.archs(space.sample(np.random.default_rng(seed), 1))[0]


def _background_miou(y: torch.Tensor, num_classes: int) -> float:
    """mIoU (percent) of predicting class 0 (background) everywhere, from the labels themselves."""
    return 100.0 * mean_iou(torch.zeros_like(y), y, num_classes)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def nb201() -> Space:
    return get_space("nb201")


@pytest.fixture(scope="module")
def digits_tiny(nb201: Space) -> TrainEvaluator:
    """Digits with the NB201 ``tiny`` network, one epoch: for the mechanics (seeds, budgets)."""
    ev = TrainEvaluator(net="tiny", epochs=1)
    ev.setup(nb201)
    return ev


@pytest.fixture(scope="module")
def adl3() -> Space:
    return get_space("autodeeplab", layers=3)


@pytest.fixture(scope="module")
def shapes_fast(adl3: Space) -> TrainEvaluator:
    ev = TrainEvaluator(data=SEG_FAST, epochs=12, lr=0.1)
    ev.setup(adl3)
    return ev


# ----------------------------------------------------------------------------- classification

def test_digits_learns_far_above_chance(nb201: Space) -> None:
    # default (calibrated) network and data, 2 epochs; measured valid/test ~83% (chance: 10%)
    ev = TrainEvaluator(epochs=2)
    ev.setup(nb201)
    res = ev.evaluate(nb201.from_str(NB201_ARCH), budget={}, seed=0)
    assert res.ok and sorted(res.metrics) == sorted(ev.metric_names()) == sorted(CLASSIFICATION_METRICS)
    assert res.metrics["valid_acc"] > 50 and res.metrics["test_acc"] > 50, res.metrics
    assert res.costs["params"] > 0 and res.costs["train_seconds"] > 0 and res.budget == {"epochs": 2}


@pytest.mark.parametrize("task", ["classification", "segmentation"])
def test_same_seed_same_metrics_bitwise(task: str, request: pytest.FixtureRequest) -> None:
    ev = request.getfixturevalue("digits_tiny" if task == "classification" else "shapes_fast")
    arch = _arch(ev.space, 3)
    before = torch.get_rng_state()
    a = ev.evaluate(arch, budget={"epochs": 1}, seed=7)
    b = ev.evaluate(arch, budget={"epochs": 1}, seed=7)
    c = ev.evaluate(arch, budget={"epochs": 1}, seed=8)
    assert a.metrics == b.metrics and a.costs["params"] == b.costs["params"]
    assert a.metrics != c.metrics
    assert torch.equal(torch.get_rng_state(), before), "seeding is scoped: the global RNG is left as it was"


def test_budget_epochs_are_honoured_and_recorded(nb201: Space, digits_tiny: TrainEvaluator) -> None:
    arch = nb201.from_str(NB201_ARCH)
    by_budget = digits_tiny.evaluate(arch, budget={"epochs": 2, "rung": 1}, seed=0)
    assert by_budget.budget == {"epochs": 2, "rung": 1}
    two = TrainEvaluator(net="tiny", epochs=2)
    two.setup(nb201)
    assert two.evaluate(arch, budget={}, seed=0).metrics == by_budget.metrics   # really trained 2 epochs
    longer = TrainEvaluator(net="tiny", epochs=1, schedule_multiplier=2.0)
    longer.setup(nb201)
    res = longer.evaluate(arch, budget={"epochs": 1}, seed=0)
    assert res.budget == {"epochs": 2} and res.metrics == by_budget.metrics
    with pytest.raises(ValueError, match=r"budget\.epochs=0 must be an integer >= 1"):
        digits_tiny.evaluate(arch, budget={"epochs": 0}, seed=0)


# ----------------------------------------------------------------------------- segmentation

def test_shapes_segmentation_beats_the_all_background_prediction(shapes_fast: TrainEvaluator) -> None:
    # test = the shapes set's validation split; measured test mIoU 23.3-25.8 over 3 architectures x 2
    # seeds against the all-background 20.7
    data = load_data(**SEG_FAST)
    baseline = _background_miou(data.y_valid, data.num_classes)
    res = shapes_fast.evaluate(_arch(shapes_fast.space), budget={}, seed=0)
    assert sorted(res.metrics) == sorted(shapes_fast.metric_names()) == sorted(SEGMENTATION_METRICS)
    assert res.budget == {"epochs": 12}
    assert all(0.0 <= res.metrics[k] <= 100.0 for k in SEGMENTATION_METRICS if k != "train_loss")
    assert res.metrics["test_miou"] > baseline + 1.0, (res.metrics, baseline)


@pytest.mark.slow
def test_default_segmentation_protocol_beats_the_all_background_prediction() -> None:
    # the defaults: 12-layer Auto-DeepLab, tiny-based network, shapes 65x65, 4 epochs of 32 steps (~45 s CPU);
    # measured test mIoU 24.9 against the all-background 20.8
    space = get_space("autodeeplab")
    ev = get_evaluator("train")
    ev.setup(space)
    spec = dict(SEGMENTATION_DATA)
    data = load_data(spec.pop("name"), **spec)
    res = ev.evaluate(_arch(space, 100), budget={}, seed=0)
    assert res.metrics["test_miou"] > _background_miou(data.y_valid, data.num_classes) + 1.0, res.metrics


def test_validation_is_carved_from_training_and_test_is_the_sets_validation() -> None:
    data = load_data(**SEG_FAST)
    a = split_segmentation(data, 0.2, np.random.default_rng(0))
    b = split_segmentation(data, 0.2, np.random.default_rng(0))
    assert a.x_train.shape[0] + a.x_valid.shape[0] == data.x_train.shape[0] and a.x_valid.shape[0] == 26
    assert torch.equal(a.y_valid, b.y_valid) and a.x_test is data.x_valid
    same = (a.x_valid[:, None] == a.x_train[None]).flatten(2).all(-1)
    assert not bool(same.any()), "validation images are not training images"
    with pytest.raises(ValueError, match=r"valid_fraction=0\.001 .* holds out 0"):
        split_segmentation(data, 0.001, np.random.default_rng(0))


def test_ignore_label_and_low_resolution_logits(adl3: Space) -> None:
    """255 is left out of loss and metrics; logits smaller than the labels are resized to them."""
    data = split_segmentation(load_data("shapes", size=17, n=24, n_valid=8), 0.25, np.random.default_rng(0))
    y_test = data.y_test.clone()
    y_test[:, :8] = 255
    every_pixel_ignored = dataclasses.replace(data, y_train=torch.full_like(data.y_train, 255), y_test=y_test)
    torch.manual_seed(0)
    half = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, stride=2, padding=1), torch.nn.BatchNorm2d(8),
                               torch.nn.ReLU(), torch.nn.Conv2d(8, data.num_classes, 1))   # 9x9 logits
    out = train_segmentation(half, every_pixel_ignored, epochs=1, batch_size=4, rng=np.random.default_rng(0))
    assert out["train_loss"] == 0.0 and out["train_pixel_acc"] == 0.0    # every batch ignored: no 0/0 NaN
    out = train_segmentation(half, dataclasses.replace(data, y_test=y_test), epochs=2, batch_size=4,
                             rng=np.random.default_rng(0))
    assert math.isfinite(out["train_loss"]) and out["train_loss"] > 0
    with torch.inference_mode():
        logits = torch.nn.functional.interpolate(half.eval()(data.x_test), size=(17, 17), mode="bilinear",
                                                 align_corners=True)
    expected = 100.0 * mean_iou(logits.argmax(1), y_test, data.num_classes)
    assert segmentation_scores(half, data.x_test, y_test, data.num_classes)[0] == pytest.approx(expected)
    assert out["test_miou"] == pytest.approx(expected)
    model = build(adl3, _arch(adl3), {"preset": "tiny", "num_classes": 4, "input": (3, 17, 17)})
    assert tuple(model.eval()(data.x_test[:2]).shape) == (2, 4, 17, 17), "Auto-DeepLab returns input-size logits"


# ----------------------------------------------------------------------------- failures

def test_nan_loss_is_a_clear_failure(nb201: Space, adl3: Space, tmp_path: Path) -> None:
    ev = TrainEvaluator(net="tiny", epochs=1, lr=1e30)
    ev.setup(nb201)
    with pytest.raises(FloatingPointError, match=r"loss is (nan|inf) at epoch 1 of 1.*diverged \(lr=1e\+30"):
        ev.evaluate(nb201.from_str(NB201_ARCH), budget={}, seed=0)
    # a poisoned input image: the first loss is already NaN
    digits = load_data("digits", resize=16)
    x = digits.x_train.repeat(1, 3, 1, 1)
    x[5, 0, 3, 3] = float("nan")
    poisoned = dataclasses.replace(digits, x_train=x, x_valid=digits.x_valid.repeat(1, 3, 1, 1),
                                   x_test=digits.x_test.repeat(1, 3, 1, 1))
    torch.manual_seed(0)
    model = build(nb201, NB201_ARCH, "tiny")
    with pytest.raises(FloatingPointError, match="diverged"):
        train_network(model, poisoned, epochs=1, batch_size=2000, rng=np.random.default_rng(0))
    seg = split_segmentation(load_data("shapes", size=17, n=8, n_valid=2), 0.25, np.random.default_rng(0))
    seg.x_train[0, 1, 4, 4] = float("inf")
    model = build(adl3, _arch(adl3), {"preset": "tiny", "num_classes": 4, "input": (3, 17, 17)})
    with pytest.raises(FloatingPointError, match="diverged"):
        train_segmentation(model, seg, epochs=1, batch_size=8, rng=np.random.default_rng(0))


def test_the_study_runner_logs_a_diverged_training_as_failed(tmp_path: Path) -> None:
    from nasatlas.studies.runner import run_study
    from nasatlas.studies.studyfile import parse_study
    study = {"study": {"name": "nan", "seed": 0, "objective": "valid_acc"}, "space": {"name": "nb201"},
             "evaluator": {"name": "train", "params": {"net": "tiny", "epochs": 1, "lr": 1e30,
                                                       "data": {"name": "digits", "resize": 16}}},
             "searchers": [{"name": "random"}], "budget": {"evaluations": 1}}
    run_study(parse_study(study), tmp_path / "run", progress=False)
    row = ResultLog(tmp_path / "run" / "evaluations").read().iloc[0]
    assert row["status"] == "failed" and "FloatingPointError" in row["error"] and "diverged" in row["error"]


@pytest.mark.parametrize("space_name,data,match", [
    ("nb201", "shapes", r"data\.name='shapes' is a segmentation set but space 'nb201' \(family 'nb201'\) builds "
                        r"classification networks; give data\.name one of \['cifar10', 'digits'.*\['autodeeplab'\]"),
    ("nb201", {"name": "voc", "root": "/nowhere"}, r"data\.name='voc' is a segmentation set"),
    ("autodeeplab", {"name": "digits", "resize": 16}, r"data\.name='digits' is a classification set but space "
                                                      r"'autodeeplab' .* builds segmentation networks; give data\.name "
                                                      r"one of \['cityscapes', 'shapes', 'voc'\]"),
])
def test_a_wrong_data_space_pairing_is_a_clear_error(space_name: str, data: Any, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        TrainEvaluator(data=data).setup(get_space(space_name))


def test_classification_only_tricks_are_refused_for_segmentation(adl3: Space) -> None:
    for kw in ({"cutout": 8}, {"auxiliary_weight": 0.4}):
        with pytest.raises(ValueError, match=f"{next(iter(kw))}=.* is a classification trick"):
            TrainEvaluator(data=SEG_FAST, **kw).setup(adl3)
    with pytest.raises(ValueError, match="batch_size=1 must be an integer >= 2"):
        TrainEvaluator(data=SEG_FAST, batch_size=1).setup(adl3)
    assert TrainEvaluator(data="shapes").metric_names() == list(SEGMENTATION_METRICS)


def test_segmentation_tricks_run_and_change_the_result(shapes_fast: TrainEvaluator, adl3: Space) -> None:
    tricks = TrainEvaluator(data=SEG_FAST, lr=0.1, flip=True, drop_path=0.2, label_smoothing=0.1)
    tricks.setup(adl3)
    arch = _arch(adl3, 3)
    plain = shapes_fast.evaluate(arch, budget={"epochs": 2}, seed=7)
    res = tricks.evaluate(arch, budget={"epochs": 2}, seed=7)   # drop-path ramps up from the 2nd epoch
    assert isinstance(res, EvalResult) and res.ok and res.metrics != plain.metrics


def test_auxiliary_head_weight_reaches_the_darts_loss() -> None:
    """The auxiliary-head trick (Szegedy et al. 2015; DARTS weight 0.4) changes training of a DARTS
    network with an auxiliary head; a weight of 0 leaves it as without the head's loss."""
    from nasatlas.spaces import get_space
    space = get_space("darts")
    arch = space.archs(space.sample(np.random.default_rng(0), 1))[0]
    res = {}
    for w in (0.0, 0.4):
        ev = TrainEvaluator(data={"name": "digits", "resize": 32, "seed": 0},
                            net={"preset": "tiny", "auxiliary": True}, epochs=1, auxiliary_weight=w)
        ev.setup(space)
        res[w] = ev.evaluate(arch, budget={}, seed=3)
    assert res[0.0].ok and res[0.4].ok
    assert res[0.4].metrics["train_loss"] > res[0.0].metrics["train_loss"]   # the aux term adds to the loss
