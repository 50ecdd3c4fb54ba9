"""Auto-DeepLab: hierarchical architecture search for semantic segmentation (Liu et al., CVPR 2019).

The supernet (:class:`~nasatlas.spaces.supernet_autodeeplab.AutoDeepLabSupernet`) relaxes both levels:
cell ops by a softmax over alpha shared by every cell (Sec. 3.1, Eq. 1-3), the network path by beta,
a softmax over each trellis node's outgoing moves, weighing the cells of Eq. 6 (Sec. 3.2). The search
(Sec. 3.3 and 4.1) is DARTS's first-order alternation: the training data is split into two disjoint
halves, trainA and trainB (the runner's two halves: ``train_batch`` and ``val_batch``); the weights
``w`` take an SGD step on trainA, the architecture ``alpha`` and ``beta`` together an Adam step on
trainB (``grad_{alpha,beta} L_trainB(w, alpha, beta)``), alternately. Architecture steps start after a
warm-up (the paper: 20 of 40 epochs; default ``warmup_epochs = epochs // 2``).

Paper values (Sec. 4.1) as defaults: 40 epochs, batch size 2 (321 x 321 Cityscapes crops), weights SGD
momentum 0.9, learning rate cosine-annealed from 0.025 to 0.001, weight decay 3e-4; architecture Adam
learning rate 3e-3, weight decay 1e-3 (the paper gives no Adam betas: PyTorch's (0.9, 0.999)). The
gradient-norm clip at 5 is DARTS's, which the paper does not mention.

Loss: per-pixel cross-entropy over the masks (int64 ``N x H x W``), pixels labelled ``ignore_index``
(255) excluded. Derivation (Sec. 3.3): Viterbi on beta for the path, the DARTS rule on alpha for the
cell. The per-epoch report measures **pixel accuracy** (correct pixels over labelled pixels, the ignore
label excluded) under the keys ``supernet_accuracy`` / ``subnet_accuracy_*``, and **mean IoU** (over the
classes present in prediction or labels, the paper's metric) under ``supernet_miou`` / ``subnet_miou_*``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from nasatlas.spaces.supernet import Mixing, check_finite, dense_mixing, recalibrated_bn

from .oneshot_base import Batch, OneShotSearcher

__all__ = ["AutoDeepLabSearch", "segmentation_loss", "segmentation_scores", "IGNORE_INDEX"]

IGNORE_INDEX = 255
"""The ignore label of Cityscapes / PASCAL VOC masks."""


def segmentation_loss(logits: torch.Tensor, target: torch.Tensor, ignore_index: int = IGNORE_INDEX) -> torch.Tensor:
    """Mean per-pixel cross-entropy over labelled pixels (``target != ignore_index``); zero when a batch
    has no labelled pixel (instead of the NaN of an empty mean)."""
    if logits.ndim != 4 or target.ndim != 3 or logits.shape[0] != target.shape[0] \
            or logits.shape[2:] != target.shape[1:]:
        raise ValueError(f"segmentation loss needs logits N x C x H x W and masks N x H x W of one size; got "
                         f"{tuple(logits.shape)} and {tuple(target.shape)}")
    total = torch.nn.functional.cross_entropy(logits.float(), target, ignore_index=ignore_index, reduction="sum")
    return total / (target != ignore_index).sum().clamp(min=1)


def segmentation_scores(forward: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, y: torch.Tensor,
                        num_classes: int, *, ignore_index: int = IGNORE_INDEX, batch_size: int = 8
                        ) -> dict[str, float]:
    """``pixel_accuracy`` and ``miou`` of ``forward``'s argmax over ``(x, y)``, ignore label excluded.

    mIoU averages ``TP / (TP + FP + FN)`` over the classes that occur in the labels or the prediction
    (accumulated over the whole set, not per image).
    """
    cm = torch.zeros(num_classes, num_classes, dtype=torch.int64)
    with torch.no_grad():
        for i in range(0, x.shape[0], batch_size):
            pred = forward(x[i:i + batch_size]).argmax(1).reshape(-1).cpu()
            tgt = y[i:i + batch_size].reshape(-1).cpu()
            keep = tgt != ignore_index
            if bool(((tgt[keep] < 0) | (tgt[keep] >= num_classes)).any()):
                raise ValueError(f"masks hold labels outside 0..{num_classes - 1} and {ignore_index}")
            cm += torch.bincount(tgt[keep] * num_classes + pred[keep],
                                 minlength=num_classes * num_classes).reshape(num_classes, num_classes)
    total = int(cm.sum())
    tp = cm.diag().double()
    union = cm.sum(0).double() + cm.sum(1).double() - tp
    present = union > 0
    return {"pixel_accuracy": float(tp.sum()) / total if total else 0.0,
            "miou": float((tp[present] / union[present]).mean()) if bool(present.any()) else 0.0}


class AutoDeepLabSearch(OneShotSearcher):
    """Auto-DeepLab's search on the ``autodeeplab`` space (see the module docstring).

    Args:
        warmup_epochs: epochs with weight steps only (default ``epochs // 2``, the paper's 20 of 40).
        ignore_index: the mask label excluded from the loss and the scores.
        **kw: the shared one-shot hyper-parameters (:class:`OneShotSearcher`), with the paper's defaults.
    """

    name = "autodeeplab"
    spaces = ("autodeeplab",)

    def __init__(self, *, epochs: int = 40, batch_size: int = 2, warmup_epochs: int | None = None,
                 lr: float = 0.025, lr_min: float = 0.001, momentum: float = 0.9, weight_decay: float = 3e-4,
                 grad_clip: float = 5.0, arch_lr: float = 3e-3, arch_weight_decay: float = 1e-3,
                 arch_betas: Sequence[float] = (0.9, 0.999), net: Mapping[str, Any] | None = None,
                 amp: bool = False, ignore_index: int = IGNORE_INDEX) -> None:
        if warmup_epochs is None:
            if isinstance(epochs, bool) or not isinstance(epochs, int):
                raise ValueError(f"autodeeplab: epochs={epochs!r} must be an integer >= 1")
            warmup_epochs = epochs // 2
        super().__init__(epochs=epochs, batch_size=batch_size, warmup_epochs=warmup_epochs, lr=lr, lr_min=lr_min,
                         momentum=momentum, weight_decay=weight_decay, grad_clip=grad_clip, arch_lr=arch_lr,
                         arch_weight_decay=arch_weight_decay, arch_betas=arch_betas, net=net, amp=amp)
        if isinstance(ignore_index, bool) or not isinstance(ignore_index, int):
            raise ValueError(f"autodeeplab: ignore_index={ignore_index!r} must be an integer (Cityscapes/VOC: 255)")
        self.ignore_index = int(ignore_index)

    def params(self) -> dict[str, Any]:
        return {**super().params(), "ignore_index": self.ignore_index}

    def loss(self, x: torch.Tensor, y: torch.Tensor, mixing: Mixing) -> torch.Tensor:
        """Per-pixel cross-entropy of the supernet under ``mixing``, the ignore label excluded."""
        return segmentation_loss(self._net()(x, mixing), y, self.ignore_index)

    # -- updates (Sec. 4.1: alternate, first order) ----------------------------------------------
    def weight_step(self, batch: Batch) -> dict[str, float]:
        """SGD on ``w`` with the loss on trainA under the continuous relaxation (alpha and beta fixed)."""
        x, y = batch
        with self.autocast():
            loss = self.loss(x, y, dense_mixing(self._net()))
        self.sgd_update(loss)
        return {"train_loss": float(loss.detach())}

    def arch_step(self, train_batch: Batch, val_batch: Batch) -> dict[str, float]:
        """Adam on alpha and beta together with ``grad_{alpha,beta} L_trainB`` (``w`` fixed, first order)."""
        net = self._net()
        if self.a_optimizer is None:
            raise RuntimeError("autodeeplab: the supernet has no architecture parameters")
        x, y = val_batch
        loss = self.loss(x, y, dense_mixing(net))  # architecture steps stay in fp32
        check_finite(loss, "Auto-DeepLab trainB loss")
        arch = net.arch_parameters()
        grads = torch.autograd.grad(loss, arch)
        self.a_optimizer.zero_grad(set_to_none=True)
        for a, g in zip(arch, grads):
            a.grad = g
        self.a_optimizer.step()
        return {"val_loss": float(loss.detach())}

    # -- per-epoch report -------------------------------------------------------------------------
    def _scores(self, mixing: Mixing, x: torch.Tensor, y: torch.Tensor,
                calibration: Sequence[torch.Tensor] | None = None) -> dict[str, float]:
        net = self._net()
        cfg: Mapping[str, Any] = getattr(net, "config", {})
        k = int(cfg.get("num_classes") or int(y[y != self.ignore_index].max()) + 1)

        def fwd(xb: torch.Tensor) -> torch.Tensor:
            return net(xb, mixing)  # type: ignore[no-any-return]

        def run() -> dict[str, float]:
            return segmentation_scores(fwd, x, y, k, ignore_index=self.ignore_index, batch_size=self.batch_size)

        was = net.training
        if calibration is None:
            net.eval()
            try:
                return run()
            finally:
                net.train(was)
        with recalibrated_bn(net, fwd, calibration):
            return run()

    def epoch_report(self, x: torch.Tensor, y: torch.Tensor, calibration: Sequence[torch.Tensor],
                     row: np.ndarray | None = None) -> dict[str, Any]:
        """Mean losses; pixel accuracy and mIoU of the supernet (softmax mixture of alpha and beta) and of
        the derived subnet with inherited weights, before and after BN recalibration; the architecture
        parameters, the derived path (downsample per layer) and the learning rate."""
        net = self._net()
        row = self.derive() if row is None else np.asarray(row, dtype=np.int64)
        rep: dict[str, Any] = {k: self._sums[k] / self._counts[k] for k in self._sums}
        sup = self._scores(self.eval_mixing(), x, y)
        sub = net.mixing_for(row)
        inh = self._scores(sub, x, y)
        rec = self._scores(sub, x, y, calibration)
        rep.update({"supernet_accuracy": sup["pixel_accuracy"], "supernet_miou": sup["miou"],
                    "subnet_accuracy_inherited": inh["pixel_accuracy"], "subnet_miou_inherited": inh["miou"],
                    "subnet_accuracy_recalibrated": rec["pixel_accuracy"], "subnet_miou_recalibrated": rec["miou"],
                    "accuracy_metric": "pixel accuracy (ignore label excluded)"})
        rep["alpha"] = net.alpha_snapshot()
        names = [p.name for p in self.space.primitives]
        if "path" in names:
            rep["path"] = self.space.primitive("path").to_value(self.space.blocks(row[None, :])[names.index("path")][0])
        rep["lr"] = float(self.w_optimizer.param_groups[0]["lr"])
        rep["arch_updates"] = bool(self.arch_updates_now())
        rep.update(self.extra_report())
        self._reset_stats()
        return rep
