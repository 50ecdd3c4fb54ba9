"""Train from scratch: build the architecture's network, train it for real, score it.

SGD with momentum and a cosine learning-rate schedule by default (DARTS's protocol, Liu et al.
2019, Sec. 3.3; NAS-Bench-201's, Dong & Yang 2020, Sec. 2.3). The training "tricks" that Yang et
al. 2020 ("NAS evaluation is frustratingly hard") show can matter more than the search are explicit
switches — cutout (DeVries & Taylor 2017), drop-path (Larsson et al. 2017), the auxiliary head
(Szegedy et al. 2015), label smoothing (Szegedy et al. 2016), random horizontal flips, a longer
schedule — so controlled studies can hold them equal. Data are loaded once per process into tensors
(and moved once per device); on CUDA the network runs channels-last under AMP.

Two tasks, chosen by the space's network family and checked against the data:

* **classification** (every family but ``autodeeplab``) on a :class:`ClassificationData`: metrics
  ``valid_acc``, ``test_acc`` (top-1, percent), ``train_acc`` and ``train_loss`` (running over the
  last epoch).
* **semantic segmentation** (``autodeeplab``: Liu et al. 2019, "Auto-DeepLab: Hierarchical Neural
  Architecture Search for Semantic Image Segmentation", a searched trellis backbone under the
  DeepLabv3+ ASPP and decoder of Chen et al. 2018, "Encoder-Decoder with Atrous Separable Convolution
  for Semantic Image Segmentation") on a :class:`SegmentationData` (the generated ``shapes`` set, or
  Cityscapes/VOC from a folder): per-pixel cross-entropy with the ignore label 255 left out of the loss
  (``ignore_index``) and of the metrics. Metrics ``valid_miou``, ``valid_pixel_acc``, ``test_miou``,
  ``test_pixel_acc`` (percent, like the accuracies: mean IoU over classes with a non-empty union,
  accumulated over the whole split, Everingham et al. 2010; see :mod:`nasatlas.evaluators.metrics`),
  ``train_pixel_acc`` and ``train_loss``. Segmentation sets publish no test labels (Cityscapes, VOC),
  so — as for CIFAR-10 here and NAS-Bench-201's ``cifar10-valid`` — the set's own validation split is
  the **test** split, and the **validation** split is carved out of the training images
  (``valid_fraction``, drawn from the data seed, the same for every evaluation). Logits are resized
  bilinearly to the label size when they differ (DeepLab's ``align_corners=True`` convention).
  Auto-DeepLab and DeepLabv3+ train with a "poly" learning-rate decay; the cosine schedule is kept
  here so that both tasks share one protocol, and flips are the only augmentation (the images are
  already fixed-size crops).

A NaN or infinite loss raises :class:`FloatingPointError`, so the runner logs the evaluation as
failed and the study goes on. A segmentation data set with a classification space, or the reverse,
is a :class:`ValueError` in :meth:`TrainEvaluator.setup`.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from nasatlas.results import EvalResult
from nasatlas.spaces import Arch, Space

from .base import Evaluator, resolve_device, seeded

__all__ = ["TrainEvaluator", "CALIBRATED_NETS", "CALIBRATED_DATA", "SEGMENTATION_DATA", "SEGMENTATION_NETS",
           "TRAIN_DEFAULTS", "CLASSIFICATION_METRICS", "SEGMENTATION_METRICS", "SegmentationSplits", "train_network",
           "train_segmentation", "accuracy", "segmentation_scores", "split_segmentation"]

#: the CPU protocol chosen by studies/calibrate.toml (see its report): digits at 16x16, 3 channels
CALIBRATED_DATA: dict[str, Any] = {"name": "digits", "resize": 16, "seed": 0}
#: per network family, the evaluation network used on the calibrated CPU data
CALIBRATED_NETS: dict[str, dict[str, Any]] = {
    "nb201": {"C": 8, "N": 2},
    "darts": {"C": 8, "layers": 5, "auxiliary": False},
    "tf_cell": {"num_cells": 3, "num_conv_filters": 8, "stem": "cifar"},
    "chain": {"width_mult": 0.25},
    "enas_macro": {"C": 8},
    "nb101": {"stem_channels": 16, "num_stacks": 3, "num_cells_per_stack": 1, "bn_momentum": 0.1},
}

#: the default CPU segmentation data: the generated shapes at 65x65 (the ``tiny`` preset's input; sides
#: of 32k + 1 keep Auto-DeepLab's up- and downsampled maps aligned, as in DeepLab), 640 training images
#: (512 train + 128 validation, see ``valid_fraction``: 128 steps of 16 in the default 4 epochs) and
#: 160 test images. At 33x33 the /4 maps are 9x9, and networks whose trellis makes /4 -> /16 -> /4
#: round trips before the decoder's low-level features stayed at the all-background prediction.
SEGMENTATION_DATA: dict[str, Any] = {"name": "shapes", "size": 65, "n": 640, "seed": 0}
#: per segmentation family, the default CPU network (the data set's class count and image size are
#: filled in): Auto-DeepLab's ``tiny`` preset at F = 4 with 32-filter ASPP and decoder and 16 low-level
#: channels. In the default 128 steps the preset itself (F = 2, 8/4/8 filters) left the all-background
#: prediction for one of two sampled architectures and this network for both, at ~45 s instead of
#: ~32 s per evaluation on one CPU thread (the fixed 64/128-filter stem dominates both).
SEGMENTATION_NETS: dict[str, dict[str, Any]] = {
    "autodeeplab": {"preset": "tiny", "F": 4, "aspp_depth": 32, "low_level_channels": 16, "decoder_channels": 32},
}
#: the settings that differ by task, where the constructor leaves them None. Classification keeps the
#: calibrated protocol (batch 64, DARTS's gradient clipping at norm 5). Segmentation takes more,
#: smaller steps: the per-step cost of the Auto-DeepLab network at these sizes is largely fixed. It
#: does not clip gradients, as DeepLab does not: clipped at norm 5, two of three sampled
#: architectures stayed at the all-background prediction for all of their 130 steps; unclipped, all
#: three left it (a fourth stays there either way: a short budget ranks slow learners last).
TRAIN_DEFAULTS: dict[str, dict[str, Any]] = {
    "classification": {"batch_size": 64, "grad_clip": 5.0},
    "segmentation": {"batch_size": 16, "grad_clip": 0.0},
}

CLASSIFICATION_METRICS = ("valid_acc", "test_acc", "train_acc", "train_loss")
SEGMENTATION_METRICS = ("valid_miou", "valid_pixel_acc", "test_miou", "test_pixel_acc", "train_pixel_acc",
                        "train_loss")


# ----------------------------------------------------------------------------- shared training loop

def _set_drop_path(model: Any, p: float) -> None:
    """Set the drop-path probability where the network has one (DARTS ``drop_path_prob``; the
    TF-convention cells of Auto-DeepLab ``drop_prob``)."""
    if hasattr(model, "drop_path_prob"):
        model.drop_path_prob = p
    elif hasattr(model, "drop_prob"):
        model.drop_prob = p


def _fit(model: Any, x: Any, y: Any, *, epochs: int, batch_size: int, lr: float, momentum: float,
         weight_decay: float, nesterov: bool, grad_clip: float, drop_path: float, rng: np.random.Generator,
         device: str, loss_fn: Callable[[Any, Any], tuple[Any, Any, Any]],
         augment: Callable[[Any, Any], tuple[Any, Any]] | None, drop_single: bool = False) -> tuple[float, float]:
    """SGD (Nesterov momentum) with a per-step cosine schedule over ``epochs`` passes of ``(x, y)``.

    ``grad_clip`` > 0 caps the global gradient norm (0: no clipping). ``loss_fn(output, target) ->
    (loss, hits, count)`` gives the batch loss and how many of ``count`` units (images, labelled
    pixels) were predicted right. Batches are shuffled by ``rng``; ``augment(x, y)`` draws from
    ``rng`` too. ``drop_single`` drops a last batch of one image (batch norm cannot normalise it).
    Returns the last epoch's mean loss per image and hit rate in percent.
    """
    import torch
    from torch import nn

    from .data import iterate_batches
    cuda = str(device).startswith("cuda")
    if cuda:
        model = model.to(device, memory_format=torch.channels_last)
    n = int(x.shape[0])
    drop_last = drop_single and n % batch_size == 1
    per_epoch = n // batch_size if drop_last else math.ceil(n / batch_size)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay,
                          nesterov=nesterov and momentum > 0)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, epochs * per_epoch))
    scaler = torch.amp.GradScaler("cuda") if cuda else None
    loss_sum, hits, count, seen = 0.0, 0, 0, 0
    for epoch in range(epochs):
        _set_drop_path(model, drop_path * epoch / max(1, epochs))   # DARTS's linear ramp
        model.train()
        loss_sum, hits, count, seen = 0.0, 0, 0, 0
        for xb, yb in iterate_batches(x, y, batch_size, rng=rng, drop_last=drop_last):
            if augment is not None:
                xb, yb = augment(xb, yb)
            if cuda:
                xb = xb.contiguous(memory_format=torch.channels_last)
            with torch.autocast("cuda", enabled=cuda):
                # DARTS-style networks return the auxiliary head's logits only through forward_with_aux
                out = model.forward_with_aux(xb) if hasattr(model, "forward_with_aux") else model(xb)
                loss, batch_hits, batch_count = loss_fn(out, yb)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"loss is {loss.item()} at epoch {epoch + 1} of {epochs}, step "
                                         f"{sched.last_epoch + 1}: the training diverged (lr={lr:g}: lower it, or "
                                         "check the inputs for NaN/inf)")
            opt.zero_grad(set_to_none=True)
            if scaler is not None:
                scaler.scale(loss).backward()
                scaler.unscale_(opt)
                if grad_clip > 0:
                    nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
                scaler.step(opt)
                scaler.update()
            else:
                loss.backward()
                if grad_clip > 0:
                    nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
                opt.step()
            sched.step()
            loss_sum += float(loss.detach()) * yb.shape[0]
            hits += int(batch_hits)
            count += int(batch_count)
            seen += yb.shape[0]
    return loss_sum / max(1, seen), 100.0 * hits / max(1, count)


# ----------------------------------------------------------------------------- classification

def accuracy(model: Any, x: Any, y: Any, batch_size: int = 512) -> float:
    """Top-1 accuracy in percent, in inference mode."""
    import torch
    model.eval()
    correct = 0
    with torch.inference_mode():
        for s in range(0, x.shape[0], batch_size):
            out = model(x[s:s + batch_size])
            logits = out[0] if isinstance(out, tuple) else out
            correct += int((logits.argmax(1) == y[s:s + batch_size]).sum())
    return 100.0 * correct / max(1, x.shape[0])


def _cutout(x: Any, size: int, rng: np.random.Generator) -> Any:
    """Zero one ``size`` x ``size`` square per image at a random centre (DeVries & Taylor 2017)."""
    import torch
    n, _, h, w = x.shape
    cy = torch.from_numpy(rng.integers(0, h, n)).to(x.device)
    cx = torch.from_numpy(rng.integers(0, w, n)).to(x.device)
    ys = torch.arange(h, device=x.device)[None, :, None]
    xs = torch.arange(w, device=x.device)[None, None, :]
    inside = ((ys - cy[:, None, None]).abs() <= size // 2) & ((xs - cx[:, None, None]).abs() <= size // 2)
    return x * (~inside)[:, None, :, :].to(x.dtype)


def _hflip(x: Any, y: Any, rng: np.random.Generator) -> tuple[Any, Any]:
    """Mirror a random half of the batch left-right; masks (``N×H×W``) are mirrored with their images."""
    import torch
    flip = torch.from_numpy(rng.random(x.shape[0]) < 0.5).to(x.device)
    x = torch.where(flip[:, None, None, None], x.flip(-1), x)
    if y.dim() == 3:
        y = torch.where(flip[:, None, None], y.flip(-1), y)
    return x, y


def train_network(model: Any, data: Any, *, epochs: int, batch_size: int = 64, lr: float = 0.05,
                  momentum: float = 0.9, weight_decay: float = 3e-4, nesterov: bool = True, grad_clip: float = 5.0,
                  cutout: int = 0, label_smoothing: float = 0.0, auxiliary_weight: float = 0.0,
                  drop_path: float = 0.0, flip: bool = False, rng: np.random.Generator,
                  device: str = "cpu") -> dict[str, float]:
    """Train a classifier on ``data`` (a :class:`~nasatlas.evaluators.data.ClassificationData` on
    ``device``) and return train loss/accuracy and validation/test accuracy (percent)."""
    from torch import nn
    crit = nn.CrossEntropyLoss(label_smoothing=label_smoothing)

    def loss_fn(out: Any, yb: Any) -> tuple[Any, Any, Any]:
        logits, aux = (out if isinstance(out, tuple) else (out, None))
        loss = crit(logits, yb)
        if aux is not None and auxiliary_weight > 0:
            loss = loss + auxiliary_weight * crit(aux, yb)
        return loss, (logits.detach().argmax(1) == yb).sum(), yb.shape[0]

    def augment(xb: Any, yb: Any) -> tuple[Any, Any]:
        if cutout:
            xb = _cutout(xb, cutout, rng)
        if flip:
            xb, yb = _hflip(xb, yb, rng)
        return xb, yb

    loss, acc = _fit(model, data.x_train, data.y_train, epochs=epochs, batch_size=batch_size, lr=lr,
                     momentum=momentum, weight_decay=weight_decay, nesterov=nesterov, grad_clip=grad_clip,
                     drop_path=drop_path, rng=rng, device=device, loss_fn=loss_fn,
                     augment=augment if cutout or flip else None)
    return {"train_loss": loss, "train_acc": acc,
            "valid_acc": accuracy(model, data.x_valid, data.y_valid),
            "test_acc": accuracy(model, data.x_test, data.y_test)}


# ----------------------------------------------------------------------------- segmentation

@dataclass(frozen=True, eq=False)
class SegmentationSplits:
    """Train / validation / test images (float32 ``N×3×H×W``) and masks (int64 ``N×H×W``, ignore 255).

    Built by :func:`split_segmentation`: validation is carved out of a segmentation set's training
    images, test is the set's own validation split.
    """

    x_train: Any
    y_train: Any
    x_valid: Any
    y_valid: Any
    x_test: Any
    y_test: Any
    num_classes: int
    input_shape: tuple[int, int, int]
    ignore_index: int = 255

    def to(self, device: str) -> SegmentationSplits:
        """A copy with every tensor moved to ``device``."""
        names = ("x_train", "y_train", "x_valid", "y_valid", "x_test", "y_test")
        return dataclasses.replace(self, **{f: getattr(self, f).to(device) for f in names})


def split_segmentation(data: Any, valid_fraction: float, rng: np.random.Generator) -> SegmentationSplits:
    """Hold ``round(N * valid_fraction)`` of ``data``'s N training images out as the validation
    split (a random draw from ``rng``, kept in order); ``data``'s validation split becomes the test split."""
    import torch
    n = int(data.x_train.shape[0])
    k = int(round(n * valid_fraction))
    if not 1 <= k < n - 1:
        raise ValueError(f"train: valid_fraction={valid_fraction!r} of the {n} training images of {data.name!r} "
                         f"holds out {k}; it must hold out at least 1 and leave at least 2 for training "
                         "(raise n, or pick a fraction such as 0.2)")
    held = np.zeros(n, dtype=bool)
    held[rng.choice(n, k, replace=False)] = True
    va, tr = torch.from_numpy(np.flatnonzero(held)), torch.from_numpy(np.flatnonzero(~held))
    return SegmentationSplits(x_train=data.x_train[tr], y_train=data.y_train[tr], x_valid=data.x_train[va],
                              y_valid=data.y_train[va], x_test=data.x_valid, y_test=data.y_valid,
                              num_classes=int(data.num_classes), input_shape=tuple(data.input_shape),
                              ignore_index=int(data.ignore_index))


def _logits_at(out: Any, size: Any) -> Any:
    """Dense logits resized bilinearly to the label size ``size`` = (H, W) when they differ (DeepLab
    upsamples its logits with ``align_corners=True``)."""
    from torch.nn import functional as F
    logits = out[0] if isinstance(out, tuple) else out
    if tuple(logits.shape[-2:]) != tuple(size):
        logits = F.interpolate(logits, size=tuple(size), mode="bilinear", align_corners=True)
    return logits


def _batches(x: Any, y: Any, batch_size: int) -> Iterator[tuple[Any, Any]]:
    for s in range(0, x.shape[0], batch_size):
        yield x[s:s + batch_size], y[s:s + batch_size]


def segmentation_scores(model: Any, x: Any, y: Any, num_classes: int, ignore_index: int = 255,
                        batch_size: int = 64) -> tuple[float, float]:
    """(mean IoU, pixel accuracy), both in percent, of ``model`` on images ``x`` and masks ``y``, from
    one confusion matrix accumulated over the split in inference mode; ``ignore_index`` pixels are
    left out (:mod:`nasatlas.evaluators.metrics`)."""
    import torch

    from .metrics import confusion_matrix, mean_iou_from_confusion
    model.eval()
    cuda = x.device.type == "cuda"
    cm = torch.zeros(num_classes, num_classes, dtype=torch.int64, device=x.device)
    with torch.inference_mode():
        for xb, yb in _batches(x, y, batch_size):
            if cuda:
                xb = xb.contiguous(memory_format=torch.channels_last)
            with torch.autocast("cuda", enabled=cuda):
                pred = _logits_at(model(xb), yb.shape[-2:]).argmax(1)
            cm += confusion_matrix(pred, yb, num_classes, ignore_index)
    labelled = int(cm.sum())
    pixel_acc = 100.0 * int(cm.diagonal().sum()) / labelled if labelled else float("nan")
    return 100.0 * mean_iou_from_confusion(cm), pixel_acc


def train_segmentation(model: Any, data: SegmentationSplits, *, epochs: int, batch_size: int = 16, lr: float = 0.05,
                       momentum: float = 0.9, weight_decay: float = 3e-4, nesterov: bool = True,
                       grad_clip: float = 0.0, label_smoothing: float = 0.0, drop_path: float = 0.0,
                       flip: bool = False, rng: np.random.Generator, device: str = "cpu") -> dict[str, float]:
    """Train a dense predictor (Auto-DeepLab, Liu et al. 2019; DeepLabv3+ head, Chen et al. 2018) on
    ``data`` (on ``device``) with per-pixel cross-entropy, ``ignore_index`` pixels excluded.

    Returns ``train_loss`` (mean per image of the batch losses), ``train_pixel_acc`` (running, last
    epoch) and ``{valid,test}_{miou,pixel_acc}`` (percent). A batch whose every pixel is ignored is
    skipped (its loss would be 0/0). ``flip`` mirrors random images with their masks.
    """
    from torch import nn
    ignore = data.ignore_index
    crit = nn.CrossEntropyLoss(ignore_index=ignore, label_smoothing=label_smoothing)

    def loss_fn(out: Any, yb: Any) -> tuple[Any, Any, Any]:
        logits = _logits_at(out, yb.shape[-2:])
        keep = yb != ignore
        labelled = keep.sum()
        if not bool(labelled):   # every pixel ignored: a zero loss that still checks the logits are finite
            return logits.float().sum() * 0.0, 0, 0
        hits = ((logits.detach().argmax(1) == yb) & keep).sum()
        return crit(logits.float(), yb), hits, labelled

    loss, pixel_acc = _fit(model, data.x_train, data.y_train, epochs=epochs, batch_size=batch_size, lr=lr,
                           momentum=momentum, weight_decay=weight_decay, nesterov=nesterov, grad_clip=grad_clip,
                           drop_path=drop_path, rng=rng, device=device, loss_fn=loss_fn,
                           augment=(lambda xb, yb: _hflip(xb, yb, rng)) if flip else None, drop_single=True)
    out = {"train_loss": loss, "train_pixel_acc": pixel_acc}
    for split in ("valid", "test"):
        miou, acc = segmentation_scores(model, getattr(data, f"x_{split}"), getattr(data, f"y_{split}"),
                                        data.num_classes, ignore)
        out[f"{split}_miou"], out[f"{split}_pixel_acc"] = miou, acc
    return out


# ----------------------------------------------------------------------------- the evaluator

def _task_of_family(family: str) -> str:
    return "segmentation" if family in SEGMENTATION_NETS else "classification"


def _positive_int(name: str, value: Any, least: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value) or value < least:
        raise ValueError(f"train: {name}={value!r} must be an integer >= {least}")
    return int(value)


class TrainEvaluator(Evaluator):
    """Train the architecture's network from scratch and report validation and test scores.

    Classification spaces report ``valid_acc``, ``test_acc``, ``train_acc``, ``train_loss``;
    ``autodeeplab`` (segmentation) reports ``valid_miou``, ``valid_pixel_acc``, ``test_miou``,
    ``test_pixel_acc``, ``train_pixel_acc``, ``train_loss`` (see the module docstring).

    Args:
        data: the data set (``{"name": "digits", ...}`` parameters of ``load_data``); default: the
            calibrated CPU data (digits at 16x16) for classification spaces, :data:`SEGMENTATION_DATA`
            (shapes at 65x65) for ``autodeeplab``. Grey images are repeated to 3 channels.
        net: network preset or overrides (default: the calibrated network of the space's family, or
            :data:`SEGMENTATION_NETS`); ``num_classes`` and ``input`` always come from the data.
        epochs: training epochs (a proposal's budget ``{"epochs": n}`` overrides it).
        batch_size, lr, momentum, weight_decay, nesterov, grad_clip: SGD with a cosine schedule.
            ``grad_clip`` caps the global gradient norm, 0 turns clipping off. ``batch_size`` and
            ``grad_clip`` left None take the task's :data:`TRAIN_DEFAULTS` (classification: 64 and 5,
            the calibrated protocol; segmentation: 16 and no clipping).
        cutout, drop_path, auxiliary_weight, label_smoothing, flip: the training tricks, off by default.
            Segmentation takes drop_path, label_smoothing and flip (image and mask mirrored together);
            cutout and auxiliary_weight are classification-only and raise there.
        schedule_multiplier: the "longer schedule" trick: multiply the epochs.
        valid_fraction: segmentation only: share of the training images held out for validation.
        count_macs: also report ``cost_macs`` (one extra forward pass).
        seed_offset: added to the trial's seed: the same architecture trained with other seeds (a
            second stand-alone score, e.g. the noise ceiling of a ranking study).
    """

    def __init__(self, data: Mapping[str, Any] | str | None = None, net: Mapping[str, Any] | str | None = None,
                 epochs: int = 4, batch_size: int | None = None, lr: float = 0.05,
                 momentum: float = 0.9, weight_decay: float = 3e-4, nesterov: bool = True,
                 grad_clip: float | None = None, cutout: int = 0,
                 drop_path: float = 0.0, auxiliary_weight: float = 0.0, label_smoothing: float = 0.0,
                 flip: bool = False, schedule_multiplier: float = 1.0, valid_fraction: float = 0.2,
                 count_macs: bool = False, seed_offset: int = 0) -> None:
        self.data = data
        self.net = net
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.nesterov = nesterov
        self.grad_clip = grad_clip
        self.cutout = cutout
        self.drop_path = drop_path
        self.auxiliary_weight = auxiliary_weight
        self.label_smoothing = label_smoothing
        self.flip = flip
        self.schedule_multiplier = schedule_multiplier
        self.valid_fraction = valid_fraction
        self.count_macs = count_macs
        if isinstance(seed_offset, bool) or not isinstance(seed_offset, int):
            raise ValueError(f"train: seed_offset={seed_offset!r} must be an integer (added to the trial's seed)")
        self.seed_offset = seed_offset

    def metric_names(self) -> list[str]:
        """The metrics of the task: set by :meth:`setup`; before it, guessed from ``data`` (default
        data follow the space, so classification is assumed)."""
        from .data import list_datasets
        task = getattr(self, "_task", None)
        if task is None:
            name = self.data if isinstance(self.data, str) else (self.data or {}).get("name")
            task = list_datasets().get(str(name), "classification")
        return list(SEGMENTATION_METRICS if task == "segmentation" else CLASSIFICATION_METRICS)

    def _data_spec(self, task: str) -> dict[str, Any]:
        if self.data is None:
            return dict(SEGMENTATION_DATA if task == "segmentation" else CALIBRATED_DATA)
        return {"name": self.data} if isinstance(self.data, str) else dict(self.data)

    def _check_pairing(self, space: Space, name: str, task: str) -> None:
        """A segmentation set needs a segmentation space and vice versa; the error names both and the fix."""
        from .data import list_datasets
        data_task = list_datasets().get(name)
        if data_task is None or data_task == task:
            return   # an unknown name is load_data's error to report
        same = sorted(k for k, v in list_datasets().items() if v == task)
        fit = sorted(SEGMENTATION_NETS) if data_task == "segmentation" else "a classification space such as 'nb201'"
        raise ValueError(f"train: data.name={name!r} is a {data_task} set but space {space.name!r} (family "
                         f"{space.family!r}) builds {task} networks; give data.name one of {same} for this space, "
                         f"or use this data with {fit}")

    def setup(self, space: Space) -> None:
        from .data import load_data, three_channel
        super().setup(space)
        family = space.family or ""
        task = _task_of_family(family)
        self._task = task
        given = {"batch_size": self.batch_size, "grad_clip": self.grad_clip}
        self._train = {k: TRAIN_DEFAULTS[task][k] if v is None else v for k, v in given.items()}
        _positive_int("epochs", self.epochs)
        _positive_int("batch_size", self._train["batch_size"], 2 if task == "segmentation" else 1)
        lr, clip = self.lr, self._train["grad_clip"]
        if isinstance(lr, bool) or not isinstance(lr, int | float) or not lr > 0:
            raise ValueError(f"train: lr={lr!r} must be a positive number")
        if isinstance(clip, bool) or not isinstance(clip, int | float) or not clip >= 0:
            raise ValueError(f"train: grad_clip={clip!r} must be a number >= 0 (0: no clipping)")
        spec = self._data_spec(task)
        name = spec.pop("name", None)
        if not name:
            raise ValueError("train: data needs a name, e.g. {name = \"digits\"}")
        self._check_pairing(space, str(name), task)
        if task == "segmentation":
            for trick, value in (("cutout", self.cutout), ("auxiliary_weight", self.auxiliary_weight)):
                if value:
                    raise ValueError(f"train: {trick}={value!r} is a classification trick (Auto-DeepLab has no "
                                     f"auxiliary head, and cutout would hide pixels whose labels stay); set it to 0 "
                                     "for segmentation, or use flip, drop_path or label_smoothing")
            if isinstance(self.valid_fraction, bool) or not 0.0 < float(self.valid_fraction) < 1.0:
                raise ValueError(f"train: valid_fraction={self.valid_fraction!r} must lie strictly between 0 and 1")
        data = load_data(name, **spec)
        if task == "segmentation":
            seed = data.info.get("seed") if hasattr(data, "info") else None
            rng = np.random.default_rng(np.random.SeedSequence([int(seed or 0), 0x5E6]))
            self._data: Any = split_segmentation(data, float(self.valid_fraction), rng)
        else:
            if not hasattr(data, "y_test") or data.x_train.ndim != 4:
                raise ValueError(f"train: data {name!r} is not a classification set")
            self._data = three_channel(data)   # grey digits -> the 3-channel stems of the spaces' networks
        self._on_device: dict[str, Any] = {"cpu": self._data}
        defaults = SEGMENTATION_NETS if task == "segmentation" else CALIBRATED_NETS
        if self.net is None and family not in defaults:
            raise ValueError(f"train: no calibrated CPU network for space {space.name!r} (family {family!r}); "
                             f"give net = {{preset = \"tiny\", ...}} explicitly")
        net: dict[str, Any] = dict(defaults.get(family, {})) if self.net is None else (
            {"preset": self.net} if isinstance(self.net, str) else dict(self.net))
        net["num_classes"] = self._data.num_classes
        net["input"] = tuple(self._data.input_shape)
        self._net = net

    def _data_on(self, device: str) -> Any:
        """The data on ``device``, moved there once per process."""
        if device not in self._on_device:
            self._on_device[device] = self._data.to(device)
        return self._on_device[device]

    def evaluate(self, arch: Arch, *, budget: Mapping[str, Any], seed: int, device: str = "cpu") -> EvalResult:
        from nasatlas.spaces.build import build
        from nasatlas.spaces.cost import count_macs, count_params
        dev = resolve_device(device)
        epochs = _positive_int("budget.epochs", budget.get("epochs", self.epochs))
        epochs = max(1, int(round(epochs * self.schedule_multiplier)))
        used = {**dict(budget), "epochs": epochs}
        seed = int(seed) + self.seed_offset
        rng = np.random.default_rng(int(seed) & 0x7FFF_FFFF_FFFF_FFFF)
        common: dict[str, Any] = {
            "epochs": epochs, "batch_size": self._train["batch_size"], "lr": self.lr,
            "momentum": self.momentum, "weight_decay": self.weight_decay, "nesterov": self.nesterov,
            "grad_clip": float(self._train["grad_clip"]), "label_smoothing": self.label_smoothing,
            "drop_path": self.drop_path, "flip": self.flip, "rng": rng, "device": dev}
        t0 = time.perf_counter()
        with seeded(seed, dev):
            model = build(self.space, arch, self._net).to(dev)
            costs: dict[str, float] = {"params": float(count_params(model, exclude_prefixes=("auxiliary",)))}
            if self.count_macs:
                costs["macs"] = float(count_macs(model, (1, *self._net["input"])))
            data = self._data_on(dev)
            if self._task == "segmentation":
                metrics = train_segmentation(model, data, **common)
            else:
                metrics = train_network(model, data, cutout=self.cutout, auxiliary_weight=self.auxiliary_weight,
                                        **common)
        costs["train_seconds"] = time.perf_counter() - t0
        return EvalResult(status="ok", metrics=metrics, costs=costs, budget=used)
