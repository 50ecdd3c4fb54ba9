"""Classification and segmentation metrics, vectorised (one ``bincount`` per call, no Python loops).

Inputs are torch tensors or numpy arrays (numpy is converted with ``torch.as_tensor``); work stays
on the input's device. Predictions may be class indices shaped like the target, or scores with one
extra class axis at dimension 1 (``N×C`` logits, ``N×C×H×W`` segmentation scores), reduced by argmax.

Conventions:

* The confusion matrix has **rows = target (true) class, columns = predicted class**; pixels whose
  target is ``ignore_index`` (255, the Cityscapes/VOC "void" label) are left out entirely, whatever
  was predicted there. Confusion matrices of batches add up to the one of the whole set.
* IoU of class c = TP / (TP + FP + FN) = ``cm[c, c] / (row_c + col_c - cm[c, c])`` (Everingham et al.
  2010, the PASCAL VOC segmentation measure). A class **absent from both the target and the
  prediction** (union 0) has no IoU (NaN) and is **excluded from the mean**; a class present in only
  one of them has IoU 0 and counts. This is ``nanmean`` over classes with a non-empty union, as
  accumulated over the whole evaluation set (not averaged per image).
* Pixel accuracy = correct / non-ignored pixels. Empty inputs (every pixel ignored) give NaN.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

__all__ = ["confusion_matrix", "iou_per_class", "mean_iou", "mean_iou_from_confusion", "pixel_accuracy",
           "top1_accuracy"]

ArrayLike = torch.Tensor | np.ndarray


def _tensor(a: Any, what: str) -> torch.Tensor:
    if isinstance(a, torch.Tensor):
        return a
    if isinstance(a, np.ndarray):
        return torch.as_tensor(a)
    raise TypeError(f"{what} must be a torch.Tensor or numpy.ndarray, not {type(a).__name__}")


def _labels(pred: Any, target: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """(pred labels, target) as int64 tensors of one shape; scores are reduced by argmax over dim 1."""
    p, t = _tensor(pred, "pred"), _tensor(target, "target")
    if p.dim() == t.dim() + 1:
        p = p.argmax(dim=1)
    if p.shape != t.shape:
        raise ValueError(f"pred has shape {tuple(p.shape)} and target {tuple(t.shape)}; pass labels of the target's "
                         "shape, or scores with the class axis at dimension 1")
    if p.is_floating_point() or t.is_floating_point():
        raise TypeError(f"labels must be integers (pred {p.dtype}, target {t.dtype}); pass class indices or scores")
    return p.long(), t.to(p.device).long()


def confusion_matrix(pred: ArrayLike, target: ArrayLike, num_classes: int, ignore_index: int | None = 255
                     ) -> torch.Tensor:
    """``num_classes × num_classes`` int64 counts, rows = target, columns = prediction.

    Pixels (or samples) with ``target == ignore_index`` are skipped. Raises ValueError for a target
    or prediction outside ``0..num_classes-1`` (other than ignored target pixels).
    """
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes={num_classes!r} must be a positive int")
    p, t = _labels(pred, target)
    keep = t != ignore_index if ignore_index is not None else torch.ones_like(t, dtype=torch.bool)
    p, t = p[keep], t[keep]
    for what, v in (("target", t), ("pred", p)):
        if v.numel() and (int(v.min()) < 0 or int(v.max()) >= num_classes):
            raise ValueError(f"{what} holds classes {int(v.min())}..{int(v.max())} outside 0..{num_classes - 1} "
                             f"(ignore_index={ignore_index}); check num_classes or the label mapping")
    counts = torch.bincount(t * num_classes + p, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes)


def iou_per_class(cm: torch.Tensor) -> torch.Tensor:
    """Per-class IoU (float64) from a confusion matrix; NaN where the class is in neither target nor prediction."""
    cm = cm.to(torch.float64)
    tp = cm.diagonal()
    union = cm.sum(0) + cm.sum(1) - tp
    return torch.where(union > 0, tp / union.clamp_min(1), torch.full_like(tp, float("nan")))


def mean_iou_from_confusion(cm: torch.Tensor) -> float:
    """Mean IoU over classes with a non-empty union (see the module docstring); NaN if there are none."""
    iou = iou_per_class(cm)
    present = ~torch.isnan(iou)
    return float(iou[present].mean()) if bool(present.any()) else float("nan")


def mean_iou(pred: ArrayLike, target: ArrayLike, num_classes: int, ignore_index: int | None = 255) -> float:
    """Mean intersection-over-union; classes absent from both prediction and target are excluded."""
    return mean_iou_from_confusion(confusion_matrix(pred, target, num_classes, ignore_index))


def pixel_accuracy(pred: ArrayLike, target: ArrayLike, ignore_index: int | None = 255) -> float:
    """Share of non-ignored pixels predicted correctly; NaN when every pixel is ignored."""
    p, t = _labels(pred, target)
    keep = t != ignore_index if ignore_index is not None else torch.ones_like(t, dtype=torch.bool)
    total = int(keep.sum())
    return float(((p == t) & keep).sum()) / total if total else float("nan")


def top1_accuracy(pred: ArrayLike, target: ArrayLike) -> float:
    """Share of samples whose top-scoring class (or given label) equals the target; NaN when empty."""
    p, t = _labels(pred, target)
    return float((p == t).sum()) / t.numel() if t.numel() else float("nan")
