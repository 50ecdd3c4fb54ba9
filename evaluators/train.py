"""Train from scratch: build the architecture's network, train it for real, score it.

SGD with momentum and a cosine learning-rate schedule by default (DARTS's protocol, Liu et al.
2019, Sec. 3.3; NAS-Bench-201's, Dong & Yang 2020, Sec. 2.3). The training "tricks" that Yang et
al. 2020 ("NAS evaluation is frustratingly hard") show can matter more than the search are explicit
switches — cutout (DeVries & Taylor 2017), drop-path (Larsson et al. 2017), the auxiliary head
(Szegedy et al. 2015), label smoothing (Szegedy et al. 2016), a longer schedule — so controlled
studies can hold them equal. Data are loaded once per process into tensors; on CUDA the network
runs channels-last under AMP (architecture parameters and BN in fp32).

A NaN or infinite loss raises, so the runner logs the evaluation as failed and the study goes on.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from typing import Any

import numpy as np
from nasatlas.results import EvalResult
from nasatlas.spaces import Arch, Space

from .base import Evaluator, resolve_device, seeded

__all__ = ["TrainEvaluator", "CALIBRATED_NETS", "CALIBRATED_DATA", "train_network", "accuracy"]

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


def train_network(model: Any, data: Any, *, epochs: int, batch_size: int = 64, lr: float = 0.05,
                  momentum: float = 0.9, weight_decay: float = 3e-4, nesterov: bool = True, grad_clip: float = 5.0,
                  cutout: int = 0, label_smoothing: float = 0.0, auxiliary_weight: float = 0.0,
                  drop_path: float = 0.0, rng: np.random.Generator, device: str = "cpu") -> dict[str, float]:
    """Train ``model`` on ``data`` (a :class:`~nasatlas.evaluators.data.ClassificationData` on
    ``device``) and return train loss/accuracy and validation/test accuracy."""
    import torch
    from torch import nn

    from .data import iterate_batches
    cuda = str(device).startswith("cuda")
    if cuda:
        model = model.to(device, memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay,
                          nesterov=nesterov and momentum > 0)
    steps = epochs * math.ceil(data.x_train.shape[0] / batch_size)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, steps))
    crit = nn.CrossEntropyLoss(label_smoothing=label_smoothing)
    scaler = torch.amp.GradScaler("cuda") if cuda else None
    loss_sum, correct, seen = 0.0, 0, 0
    for epoch in range(epochs):
        if hasattr(model, "drop_path_prob"):
            model.drop_path_prob = drop_path * epoch / max(1, epochs)   # DARTS's linear ramp
        model.train()
        loss_sum, correct, seen = 0.0, 0, 0
        for xb, yb in iterate_batches(data.x_train, data.y_train, batch_size, rng=rng):
            if cutout:
                xb = _cutout(xb, cutout, rng)
            if cuda:
                xb = xb.contiguous(memory_format=torch.channels_last)
            with torch.autocast("cuda", enabled=cuda):
                out = model(xb)
                logits, aux = (out if isinstance(out, tuple) else (out, None))
                loss = crit(logits, yb)
                if aux is not None and auxiliary_weight > 0:
                    loss = loss + auxiliary_weight * crit(aux, yb)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"loss is {loss.item()} at epoch {epoch}: the training diverged")
            opt.zero_grad(set_to_none=True)
            if scaler is not None:
                scaler.scale(loss).backward()
                scaler.unscale_(opt)
                nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
                scaler.step(opt)
                scaler.update()
            else:
                loss.backward()
                nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
                opt.step()
            sched.step()
            loss_sum += float(loss.detach()) * yb.shape[0]
            correct += int((logits.detach().argmax(1) == yb).sum())
            seen += yb.shape[0]
    return {"train_loss": loss_sum / max(1, seen), "train_acc": 100.0 * correct / max(1, seen),
            "valid_acc": accuracy(model, data.x_valid, data.y_valid),
            "test_acc": accuracy(model, data.x_test, data.y_test)}


class TrainEvaluator(Evaluator):
    """Train the architecture's network from scratch and report validation and test accuracy.

    Args:
        data: the data set (``{"name": "digits", ...}`` parameters of ``load_data``); default: the
            calibrated CPU data (digits at 16x16). Grey images are repeated to 3 channels.
        net: network preset or overrides (default: the calibrated network of the space's family).
        epochs: training epochs (a proposal's budget ``{"epochs": n}`` overrides it).
        batch_size, lr, momentum, weight_decay, nesterov, grad_clip: SGD with a cosine schedule.
        cutout, drop_path, auxiliary_weight, label_smoothing: the training tricks, off by default.
        schedule_multiplier: the "longer schedule" trick: multiply the epochs.
        count_macs: also report ``cost_macs`` (one extra forward pass).
    """

    def __init__(self, data: Mapping[str, Any] | str | None = None, net: Mapping[str, Any] | str | None = None,
                 epochs: int = 4, batch_size: int = 64, lr: float = 0.05, momentum: float = 0.9,
                 weight_decay: float = 3e-4, nesterov: bool = True, grad_clip: float = 5.0, cutout: int = 0,
                 drop_path: float = 0.0, auxiliary_weight: float = 0.0, label_smoothing: float = 0.0,
                 schedule_multiplier: float = 1.0, count_macs: bool = False) -> None:
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
        self.schedule_multiplier = schedule_multiplier
        self.count_macs = count_macs

    def metric_names(self) -> list[str]:
        return ["valid_acc", "test_acc", "train_acc", "train_loss"]

    def setup(self, space: Space) -> None:
        from .data import load_data
        super().setup(space)
        if self.epochs < 1:
            raise ValueError(f"train: epochs={self.epochs}; give at least 1")
        spec = dict(CALIBRATED_DATA) if self.data is None else (
            {"name": self.data} if isinstance(self.data, str) else dict(self.data))
        name = spec.pop("name", None)
        if not name:
            raise ValueError("train: data needs a name, e.g. {name = \"digits\"}")
        data = load_data(name, **spec)
        if not hasattr(data, "y_valid") or data.x_train.ndim != 4:
            raise ValueError(f"train: data {name!r} is not a classification set")
        if data.x_train.shape[1] == 1:   # grey digits -> the 3-channel stems of the spaces' networks
            import dataclasses
            rep = {f: getattr(data, f).repeat(1, 3, 1, 1) for f in ("x_train", "x_valid", "x_test")}
            data = dataclasses.replace(data, **rep, input_shape=(3, *data.input_shape[1:]))
        self._data = data
        family = space.family or ""
        if self.net is None and family not in CALIBRATED_NETS:
            raise ValueError(f"train: no calibrated CPU network for space {space.name!r} (family {family!r}); "
                             f"give net = {{preset = \"tiny\", ...}} explicitly")
        net: dict[str, Any] = dict(CALIBRATED_NETS.get(family, {})) if self.net is None else (
            {"preset": self.net} if isinstance(self.net, str) else dict(self.net))
        net["num_classes"] = data.num_classes
        net["input"] = tuple(data.input_shape)
        self._net = net

    def evaluate(self, arch: Arch, *, budget: Mapping[str, Any], seed: int, device: str = "cpu") -> EvalResult:
        from nasatlas.spaces.build import build
        from nasatlas.spaces.cost import count_macs, count_params
        dev = resolve_device(device)
        epochs = int(budget.get("epochs", self.epochs))
        epochs = max(1, int(round(epochs * self.schedule_multiplier)))
        used = {**dict(budget), "epochs": epochs}
        rng = np.random.default_rng(int(seed) & 0x7FFF_FFFF_FFFF_FFFF)
        t0 = time.perf_counter()
        with seeded(seed, dev):
            model = build(self.space, arch, self._net).to(dev)
            costs: dict[str, float] = {"params": float(count_params(model, exclude_prefixes=("auxiliary",)))}
            if self.count_macs:
                costs["macs"] = float(count_macs(model, (1, *self._net["input"])))
            data = self._data if dev == "cpu" else self._data.to(dev)
            metrics = train_network(model, data, epochs=epochs, batch_size=self.batch_size, lr=self.lr,
                                    momentum=self.momentum, weight_decay=self.weight_decay, nesterov=self.nesterov,
                                    grad_clip=self.grad_clip, cutout=self.cutout,
                                    label_smoothing=self.label_smoothing, auxiliary_weight=self.auxiliary_weight,
                                    drop_path=self.drop_path, rng=rng, device=dev)
        costs["train_seconds"] = time.perf_counter() - t0
        return EvalResult(status="ok", metrics=metrics, costs=costs, budget=used)
