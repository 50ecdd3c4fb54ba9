"""Metrics on hand-made cases with known answers, and against loop-based and scikit-learn references."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from nasatlas.evaluators.metrics import (
    confusion_matrix,
    iou_per_class,
    mean_iou,
    mean_iou_from_confusion,
    pixel_accuracy,
    top1_accuracy,
)
from sklearn.metrics import confusion_matrix as sk_confusion_matrix

# target / prediction of one 2x3 image, 3 classes; the 255 pixel is ignored whatever is predicted there,
# and class 2 is predicted only at that ignored pixel: absent from both, so it leaves the mean.
TARGET = torch.tensor([[0, 1, 1], [1, 0, 255]])
PRED = torch.tensor([[0, 1, 0], [0, 0, 2]])


def test_confusion_matrix_by_hand_rows_are_targets():
    cm = confusion_matrix(PRED, TARGET, num_classes=3)
    # rows = target, columns = prediction: t0 -> p0 twice; t1 -> p1 once, t1 -> p0 twice
    assert torch.equal(cm, torch.tensor([[2, 0, 0], [2, 1, 0], [0, 0, 0]]))
    assert cm.dtype == torch.int64 and int(cm.sum()) == 5


def test_mean_iou_excludes_class_absent_from_both():
    # IoU0 = 2 / (2 + 4 - 2) = 1/2 ; IoU1 = 1 / (3 + 1 - 1) = 1/3 ; class 2: union 0 -> NaN, excluded
    iou = iou_per_class(confusion_matrix(PRED, TARGET, 3))
    assert iou[0].item() == pytest.approx(1 / 2) and iou[1].item() == pytest.approx(1 / 3) and math.isnan(iou[2])
    assert mean_iou(PRED, TARGET, 3) == pytest.approx((1 / 2 + 1 / 3) / 2)  # 5/12, not 5/18
    assert pixel_accuracy(PRED, TARGET) == pytest.approx(3 / 5)
    # without the ignore label the 255 target is out of range: an error, not a silent class
    with pytest.raises(ValueError, match="target holds classes 0..255 outside 0..2"):
        confusion_matrix(PRED, TARGET, 3, ignore_index=None)


def test_class_in_prediction_only_counts_as_zero():
    target = torch.tensor([0, 0, 1, 1])
    pred = torch.tensor([0, 2, 1, 1])  # class 2 predicted but never true: IoU 0, kept in the mean
    assert mean_iou(pred, target, 3) == pytest.approx((1 / 2 + 1 + 0) / 3)
    assert mean_iou(target, target, 3) == 1.0  # class 2 absent from both: excluded, not a 0


def test_all_ignored_gives_nan_and_scores_are_reduced_by_argmax():
    t = torch.full((2, 2), 255)
    assert math.isnan(pixel_accuracy(torch.zeros(2, 2, dtype=torch.long), t))
    assert math.isnan(mean_iou(torch.zeros(2, 2, dtype=torch.long), t, 4))
    scores = torch.zeros(1, 3, 2, 3)  # N x C x H x W
    scores[0, PRED.clamp(max=2), torch.arange(2)[:, None], torch.arange(3)] = 1.0
    assert torch.equal(confusion_matrix(scores, TARGET[None], 3), confusion_matrix(PRED, TARGET, 3))
    logits = torch.tensor([[2.0, 0.1, 0.3], [0.0, 1.0, 0.5], [0.2, 0.1, 0.0], [0.0, 0.0, 3.0]])
    assert top1_accuracy(logits, torch.tensor([0, 1, 2, 2])) == 0.75
    assert top1_accuracy(np.array([1, 1]), np.array([1, 0])) == 0.5


def test_numpy_inputs_batches_add_up_and_match_references():
    rng = np.random.default_rng(0)
    k = 5
    target = rng.integers(0, k, (4, 16, 16))
    target[rng.random(target.shape) < 0.1] = 255
    pred = rng.integers(0, k, (4, 16, 16))
    cm = confusion_matrix(pred, target, k)
    assert torch.equal(cm, confusion_matrix(torch.from_numpy(pred), torch.from_numpy(target), k))
    assert torch.equal(cm, confusion_matrix(pred[:2], target[:2], k) + confusion_matrix(pred[2:], target[2:], k))
    keep = target != 255
    assert np.array_equal(cm.numpy(), sk_confusion_matrix(target[keep], pred[keep], labels=list(range(k))))
    ious = [((pred == c) & (target == c) & keep).sum() / (((pred == c) | (target == c)) & keep).sum() for c in range(k)]
    assert mean_iou(pred, target, k) == pytest.approx(float(np.mean(ious)))
    assert mean_iou_from_confusion(cm) == pytest.approx(float(np.mean(ious)))
    assert pixel_accuracy(pred, target) == pytest.approx(float((pred == target)[keep].mean()))


def test_bad_inputs_raise_with_the_fix():
    with pytest.raises(ValueError, match="pred holds classes .* outside 0..1"):
        confusion_matrix(torch.tensor([0, 2]), torch.tensor([0, 1]), 2)
    with pytest.raises(ValueError, match=r"pred has shape \(3,\) and target \(2,\)"):
        mean_iou(torch.tensor([0, 1, 1]), torch.tensor([0, 1]), 2)
    with pytest.raises(ValueError, match="num_classes=0"):
        confusion_matrix(torch.tensor([0]), torch.tensor([0]), 0)
    with pytest.raises(TypeError, match="must be integers"):
        pixel_accuracy(torch.tensor([0.0, 1.0]), torch.tensor([0, 1]))
    with pytest.raises(TypeError, match="torch.Tensor or numpy.ndarray"):
        top1_accuracy([0, 1], torch.tensor([0, 1]))  # type: ignore[arg-type]
