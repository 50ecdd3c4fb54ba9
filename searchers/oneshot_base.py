"""The shared part of every one-shot searcher: hyper-parameters, supernet, optimisers, epochs, reports.

The runner drives a one-shot searcher (:mod:`nasatlas.studies.oneshot`): ``relax(space, net_config)``
once, ``step(train_batch, val_batch)`` per pair of mini-batches from the two halves of the training
data, then after each epoch ``end_epoch()``, ``derive()`` and ``epoch_report(...)``. This base class
implements all of that except the two update rules a subclass writes:

* :meth:`OneShotSearcher.weight_step` — one update of the supernet weights on a training batch;
* :meth:`OneShotSearcher.arch_step` — one update of the architecture parameters (skipped during the
  ``warmup_epochs``, where only weights train).

Defaults follow DARTS (Liu et al. 2019, A.1.1): weights by SGD (momentum 0.9, weight decay 3e-4,
learning rate cosine-annealed from 0.025 to 0.001 over the search epochs, gradient norm clipped at 5);
architecture parameters by Adam (learning rate 3e-4, betas (0.5, 0.999), weight decay 1e-3).
With ``amp = true`` on CUDA, weight steps run under autocast and architecture steps stay in fp32.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from nasatlas.spaces.supernet import Mixing, Supernet, check_finite, dense_mixing, relax, subnet_accuracy
from nasatlas.spaces.supernet import supernet_accuracy as _supernet_accuracy
from torch import nn

__all__ = ["OneShotSearcher", "Batch", "op_histogram"]

Batch = tuple[torch.Tensor, torch.Tensor]


class OneShotSearcher:
    """Base class; see the module docstring. Subclasses set :attr:`name` and :attr:`spaces`.

    Args:
        epochs: search epochs.
        batch_size: mini-batch size of both halves.
        warmup_epochs: epochs at the start where only the weights train (alpha frozen).
        lr, lr_min, momentum, weight_decay, grad_clip: the weights' SGD and cosine schedule.
        arch_lr, arch_weight_decay, arch_betas: the architecture parameters' Adam.
        net: supernet size settings (e.g. ``{C = 8, N = 2}`` for NB201) over the study's input/classes.
        amp: mixed precision for weight steps on CUDA (architecture steps stay fp32).
        checkpoint_epochs: after these epoch counts the runner also saves the supernet as
            ``<label>-r<repeat>-e<epochs>.pt`` (e.g. for a ranking study over supernet training).
    """

    name = "oneshot"
    #: space names this searcher relaxes (the tested searcher x space pairs)
    spaces: tuple[str, ...] = ()

    def __init__(self, *, epochs: int = 50, batch_size: int = 64, warmup_epochs: int = 0, lr: float = 0.025,
                 lr_min: float = 0.001, momentum: float = 0.9, weight_decay: float = 3e-4, grad_clip: float = 5.0,
                 arch_lr: float = 3e-4, arch_weight_decay: float = 1e-3,
                 arch_betas: Sequence[float] = (0.5, 0.999), net: Mapping[str, Any] | None = None,
                 amp: bool = False, checkpoint_epochs: Sequence[int] = ()) -> None:
        for field, v in (("epochs", epochs), ("batch_size", batch_size)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{self.name}: {field}={v!r} must be an integer >= 1")
        if isinstance(warmup_epochs, bool) or not isinstance(warmup_epochs, int) or warmup_epochs < 0:
            raise ValueError(f"{self.name}: warmup_epochs={warmup_epochs!r} must be an integer >= 0")
        for field, f in (("lr", lr), ("arch_lr", arch_lr)):
            if not (isinstance(f, (int, float)) and f > 0 and math.isfinite(f)):
                raise ValueError(f"{self.name}: {field}={f!r} must be a positive number")
        for field, f in (("lr_min", lr_min), ("momentum", momentum), ("weight_decay", weight_decay),
                         ("grad_clip", grad_clip), ("arch_weight_decay", arch_weight_decay)):
            if not (isinstance(f, (int, float)) and f >= 0 and math.isfinite(f)):
                raise ValueError(f"{self.name}: {field}={f!r} must be a number >= 0")
        if len(arch_betas) != 2:
            raise ValueError(f"{self.name}: arch_betas={list(arch_betas)} must be two numbers, e.g. [0.5, 0.999]")
        self.epochs, self.batch_size, self.warmup_epochs = epochs, batch_size, warmup_epochs
        self.lr, self.lr_min, self.momentum, self.weight_decay = float(lr), float(lr_min), float(momentum), \
            float(weight_decay)
        self.grad_clip = float(grad_clip)
        self.arch_lr, self.arch_weight_decay = float(arch_lr), float(arch_weight_decay)
        self.arch_betas = (float(arch_betas[0]), float(arch_betas[1]))
        self.net = dict(net or {})
        self.amp = bool(amp)
        bad = [e for e in checkpoint_epochs if isinstance(e, bool) or not isinstance(e, int) or not 1 <= e <= epochs]
        if bad:
            raise ValueError(f"{self.name}: checkpoint_epochs={list(checkpoint_epochs)}: each must be an epoch count "
                             f"in 1..epochs={epochs}")
        self.checkpoint_epochs = tuple(sorted(set(int(e) for e in checkpoint_epochs)))
        self.supernet: Supernet | None = None
        self.epoch = 0
        self._sums: dict[str, float] = {}
        self._counts: dict[str, int] = {}

    # -- configuration ---------------------------------------------------------------------------
    def params(self) -> dict[str, Any]:
        """The searcher's hyper-parameters (logged with every row)."""
        return {"epochs": self.epochs, "batch_size": self.batch_size, "warmup_epochs": self.warmup_epochs,
                "lr": self.lr, "lr_min": self.lr_min, "momentum": self.momentum, "weight_decay": self.weight_decay,
                "grad_clip": self.grad_clip, "arch_lr": self.arch_lr, "arch_weight_decay": self.arch_weight_decay,
                "arch_betas": list(self.arch_betas), "net": dict(self.net), "amp": self.amp,
                "checkpoint_epochs": list(self.checkpoint_epochs)}

    def check_space(self, space: Any) -> None:
        """Refuse a space this searcher has no tested relaxation for, naming the ones it has."""
        if space.name not in self.spaces:
            raise ValueError(f"searcher {self.name!r} does not relax space {space.name!r}; it runs on "
                             f"{list(self.spaces)}. One-shot pairs: darts/gdas x nb201, darts; proxylessnas x "
                             "proxylessnas, fbnet, nb201; autodeeplab x autodeeplab; random_ws/spos x nb201, darts, "
                             "proxylessnas")

    # -- the one-shot protocol -------------------------------------------------------------------
    def relax(self, space: Any, net_config: Mapping[str, Any]) -> Supernet:
        """Build the supernet and the two optimisers; called once per run (under the run's seed)."""
        self.check_space(space)
        cfg = {**{k: v for k, v in net_config.items() if k != "device"}, **self.net}
        self.device = str(net_config.get("device", "cpu"))
        self.space = space
        self.supernet = relax(space, {**cfg, "device": self.device})
        self.w_optimizer = torch.optim.SGD(self.supernet.weight_parameters(), lr=self.lr, momentum=self.momentum,
                                           weight_decay=self.weight_decay)
        arch = self.supernet.arch_parameters()
        self.a_optimizer = (torch.optim.Adam(arch, lr=self.arch_lr, betas=self.arch_betas,
                                             weight_decay=self.arch_weight_decay) if arch else None)
        self.scaler = torch.amp.GradScaler("cuda") if self.amp and self.device.startswith("cuda") else None
        self.epoch = 0
        self._reset_stats()
        self.setup()
        return self.supernet

    def setup(self) -> None:
        """Hook for subclasses, after the supernet and optimisers exist."""

    def arch_updates_now(self) -> bool:
        """Whether architecture parameters update in the current epoch (after the warm-up)."""
        return self.epoch >= self.warmup_epochs

    def step(self, train_batch: Batch, val_batch: Batch) -> dict[str, float]:
        """One search step: an architecture update on ``val_batch`` (after warm-up), then a weight
        update on ``train_batch`` (the order of DARTS's ``train_search.py``)."""
        net = self._net()
        net.train()
        out: dict[str, float] = {}
        if self.arch_updates_now() and self.a_optimizer is not None:
            out.update(self.arch_step(train_batch, val_batch))
        out.update(self.weight_step(train_batch))
        for k, v in out.items():
            self._sums[k] = self._sums.get(k, 0.0) + float(v)
            self._counts[k] = self._counts.get(k, 0) + 1
        return out

    def weight_step(self, batch: Batch) -> dict[str, float]:
        """One update of the supernet weights; returns at least ``{"train_loss": ...}``."""
        raise NotImplementedError

    def arch_step(self, train_batch: Batch, val_batch: Batch) -> dict[str, float]:
        """One update of the architecture parameters; returns at least ``{"val_loss": ...}``."""
        raise NotImplementedError

    def end_epoch(self) -> None:
        """Called by the runner after each epoch's steps: advance the cosine learning-rate schedule."""
        self.epoch += 1
        lr = self.lr_min + 0.5 * (self.lr - self.lr_min) * (1 + math.cos(math.pi * self.epoch / self.epochs))
        for g in self.w_optimizer.param_groups:
            g["lr"] = lr

    def derive(self) -> np.ndarray:
        """The architecture the searcher currently stands for (the supernet's derivation rule)."""
        return self._net().derive_row()

    @property
    def stop(self) -> bool:
        """True when the searcher stops early (read by the runner after each epoch)."""
        return False

    # -- helpers for subclasses --------------------------------------------------------------------
    def _net(self) -> Supernet:
        if self.supernet is None:
            raise RuntimeError(f"{self.name}: call relax(space, net_config) before step/derive")
        return self.supernet

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        """Autocast for weight steps under ``amp`` on CUDA; a no-op otherwise."""
        if self.scaler is not None:
            return torch.autocast("cuda")
        return contextlib.nullcontext()

    def sgd_update(self, loss: torch.Tensor, what: str = "training loss") -> None:
        """Backward + clip + SGD step on the weights (with the AMP scaler when active)."""
        check_finite(loss, what)
        self.w_optimizer.zero_grad(set_to_none=True)
        params = self._net().weight_parameters()
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.unscale_(self.w_optimizer)
            nn.utils.clip_grad_norm_(params, self.grad_clip)
            self.scaler.step(self.w_optimizer)
            self.scaler.update()
        else:
            loss.backward()
            if self.grad_clip > 0:
                nn.utils.clip_grad_norm_(params, self.grad_clip)
            self.w_optimizer.step()
        for p in self._net().arch_parameters():  # weight steps never move alpha
            p.grad = None

    def loss(self, x: torch.Tensor, y: torch.Tensor, mixing: Mixing) -> torch.Tensor:
        """Cross-entropy of the supernet under ``mixing``."""
        return nn.functional.cross_entropy(self._net()(x, mixing), y)

    # -- per-epoch report --------------------------------------------------------------------------
    def eval_mixing(self) -> Mixing:
        """The mixing under which "the supernet's accuracy" is measured (DARTS: the softmax mixture)."""
        return dense_mixing(self._net())

    def _reset_stats(self) -> None:
        self._sums, self._counts = {}, {}

    def epoch_report(self, x: torch.Tensor, y: torch.Tensor, calibration: Sequence[torch.Tensor],
                     row: np.ndarray | None = None) -> dict[str, Any]:
        """What the searcher logs after each epoch: mean losses, the supernet's accuracy, the derived
        subnet's accuracy with inherited weights before and after BN recalibration (their gap to the
        supernet is the discretisation loss), the architecture parameters and the learning rate."""
        net = self._net()
        row = self.derive() if row is None else np.asarray(row)
        rep: dict[str, Any] = {k: self._sums[k] / self._counts[k] for k in self._sums}
        rep["supernet_accuracy"] = _supernet_accuracy(net, self.eval_mixing(), x, y)
        rep["subnet_accuracy_inherited"] = subnet_accuracy(net, row, x, y)
        rep["subnet_accuracy_recalibrated"] = subnet_accuracy(net, row, x, y, calibration=calibration)
        rep["alpha"] = net.alpha_snapshot()
        rep["lr"] = float(self.w_optimizer.param_groups[0]["lr"])
        rep["arch_updates"] = bool(self.arch_updates_now())
        rep.update(self.extra_report())
        self._reset_stats()
        return rep

    def extra_report(self) -> dict[str, Any]:
        """More per-epoch fields a subclass logs (e.g. DARTS's dominant Hessian eigenvalue)."""
        return {}


def op_histogram(space: Any, row: np.ndarray) -> dict[str, int]:
    """How often each op name occurs in an architecture's op decisions (the drift towards
    parameter-free ops DARTS is known for shows up here: Zela et al. 2020, Sec. 3)."""
    counts: dict[str, int] = {}
    for d, v in zip(space.decisions, np.asarray(row).reshape(-1)):
        if "/inputs" in d.name or "/combine" in d.name or d.name.startswith("path/"):
            continue
        op = d.choices[int(v)]
        counts[op] = counts.get(op, 0) + 1
    return counts

