"""GDAS: searching for a robust neural architecture in four GPU hours (Dong & Yang, CVPR 2019).

Instead of DARTS's dense mixture, every relaxed decision samples *one* option per step with the
Gumbel-max trick and stays differentiable through the Gumbel-softmax (Sec. 3.2, Eq. 3-5):

``h = one_hot(argmax_k (log p_k + g_k))`` in the forward pass, where ``p = softmax(alpha)`` and ``g_k``
are i.i.d. Gumbel(0, 1) noise; the backward pass uses the gradient of
``softmax((log p + g) / tau)`` (straight-through: ``h = one_hot - soft.detach() + soft``). Only the
sampled op runs, multiplied by ``h`` at its index (value 1, gradient of the soft sample), so a step
costs about one path of the supernet. The temperature ``tau`` decays linearly from ``tau_max = 10``
to ``tau_min = 0.1`` over the search epochs (Sec. 4.1). Weights (on one half) and alpha (on the other)
are both updated every step, first order, each with its own Gumbel sample.

Derivation: the supernet's rule on ``softmax(alpha)`` (NB201: argmax per edge; DARTS space: top-2
non-zero edges per node).
"""

from __future__ import annotations

from typing import Any

import torch
from nasatlas.spaces.supernet import EdgeMix, Mixing, check_finite

from .oneshot_base import Batch, OneShotSearcher

__all__ = ["GDAS", "gumbel_hard_sample"]


def gumbel_hard_sample(logits: torch.Tensor, tau: float,
                       generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """One straight-through Gumbel-softmax sample per row of ``logits`` (``-inf`` = unavailable option).

    Returns ``(hard, index)``: ``hard`` has the one-hot value of the sampled option and the gradient of
    ``softmax((log_softmax(logits) + g) / tau)``; ``index`` is the sampled option per row. Draws that
    produce non-finite values are redrawn, as the reference code does.
    """
    log_p = torch.log_softmax(logits, dim=-1)
    while True:
        u = torch.rand(logits.shape, generator=generator, dtype=logits.dtype).to(logits.device)
        gumbel = -torch.log(-torch.log(u.clamp_min(1e-20)))
        soft = torch.softmax((log_p + gumbel) / tau, dim=-1)
        if torch.isfinite(soft).all():
            break
    index = soft.argmax(dim=-1)
    one_hot = torch.zeros_like(soft).scatter_(-1, index.unsqueeze(-1), 1.0)
    hard = one_hot - soft.detach() + soft
    return hard, index


class GDAS(OneShotSearcher):
    """GDAS on the NB201 and DARTS spaces.

    Args:
        tau_max, tau_min: the Gumbel-softmax temperature, decayed linearly over the epochs.
        **kw: the shared one-shot hyper-parameters (:class:`OneShotSearcher`).
    """

    name = "gdas"
    spaces = ("nb201", "darts")

    def __init__(self, *, tau_max: float = 10.0, tau_min: float = 0.1, **kw: Any) -> None:
        super().__init__(**kw)
        if not 0 < float(tau_min) <= float(tau_max):
            raise ValueError(f"gdas: need 0 < tau_min <= tau_max, got tau_min={tau_min!r}, tau_max={tau_max!r}")
        self.tau_max, self.tau_min = float(tau_max), float(tau_min)

    def params(self) -> dict[str, Any]:
        return {**super().params(), "tau_max": self.tau_max, "tau_min": self.tau_min}

    @property
    def tau(self) -> float:
        """The temperature of the current epoch (linear from tau_max to tau_min)."""
        frac = self.epoch / max(1, self.epochs - 1)
        return self.tau_max - (self.tau_max - self.tau_min) * min(1.0, frac)

    def gumbel_mixing(self) -> Mixing:
        """One hard Gumbel-softmax sample per row of every group."""
        net = self._net()
        out: dict[str, list[EdgeMix]] = {}
        for g in net.alphas:
            hard, idx = gumbel_hard_sample(net.masked_logits(g), self.tau)
            out[g] = [EdgeMix((int(i),), hard[r]) for r, i in enumerate(idx.tolist())]
        return out

    def weight_step(self, batch: Batch) -> dict[str, float]:
        x, y = batch
        with self.autocast():
            loss = self.loss(x, y, self.gumbel_mixing())
        self.sgd_update(loss)
        return {"train_loss": float(loss.detach())}

    def arch_step(self, train_batch: Batch, val_batch: Batch) -> dict[str, float]:
        assert self.a_optimizer is not None
        x, y = val_batch
        self.a_optimizer.zero_grad(set_to_none=True)
        loss = self.loss(x, y, self.gumbel_mixing())
        check_finite(loss, "GDAS validation loss")
        loss.backward()
        self.a_optimizer.step()
        for p in self._net().weight_parameters():
            p.grad = None
        return {"val_loss": float(loss.detach())}

    def eval_mixing(self) -> Mixing:
        """The supernet as GDAS uses it at its most likely sample: the argmax option per row."""
        net = self._net()
        return {g: [EdgeMix((int(i),)) for i in net.masked_logits(g).argmax(-1).tolist()] for g in net.alphas}

    def extra_report(self) -> dict[str, Any]:
        return {"tau": self.tau}
