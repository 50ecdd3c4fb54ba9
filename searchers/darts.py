"""DARTS: differentiable architecture search (Liu, Simonyan & Yang, ICLR 2019).

Every relaxed decision is a softmax mixture of its options (Eq. 2); weights ``w`` and architecture
parameters ``alpha`` solve the bilevel problem (Eq. 3-4) by alternating steps on two disjoint halves
of the training data:

* **first order** (``order = 1``): ``grad_alpha L_val(w, alpha)`` (Eq. 6 with xi = 0);
* **second order** (``order = 2``): the gradient of the unrolled objective
  ``L_val(w', alpha)``, ``w' = w - xi * grad_w L_train(w, alpha)`` (Eq. 6-7), i.e.
  ``grad_alpha L_val(w', alpha) - xi * grad2_{alpha,w} L_train(w, alpha) grad_w' L_val(w', alpha)``, with
  the Hessian-vector product by central finite differences (Eq. 8):
  ``(grad_alpha L_train(w+, alpha) - grad_alpha L_train(w-, alpha)) / (2 eps)``, ``w+- = w +- eps * v``,
  ``eps = 0.01 / ||v||``. As in the reference code the virtual step uses the weights' momentum and weight
  decay and ``xi`` is the weights' current learning rate.

Remedies the literature proposes, as switches so that one study can ablate them:

* ``warmup_epochs``: alpha frozen for the first epochs (weights only);
* ``one_level``: alpha and w updated on the same batch (first order), the one-level baseline;
* ``op_dropout``: dropout on parameter-free ops (P-DARTS, Chen et al. 2019, Sec. 3.3);
* ``early_stop = "darts+"``: stop once the derived normal cell holds ``max_skip`` skip-connections
  (DARTS+, Liang et al. 2019, Sec. 3.2, criterion 1);
* ``early_stop = "eigenvalue"``: RobustDARTS's DARTS-ES (Zela et al. 2020, Sec. 4.2): the dominant
  eigenvalue of the Hessian of the validation loss w.r.t. alpha is computed after every epoch (power
  iteration); with ``mean_lambda(i)`` its average over the last ``window`` epochs, the search stops at
  epoch i when ``mean_lambda(i - k) / mean_lambda(i) < ratio`` (0.75) and returns the architecture of
  epoch ``i - k`` (k = ``patience``).

Derivation: the supernet's rule (NB201: argmax op per edge; DARTS space: per node the two strongest
non-zero edges and their strongest non-zero op, Sec. 2.4).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from nasatlas.spaces.supernet import check_finite, dense_mixing

from .oneshot_base import Batch, OneShotSearcher

__all__ = ["DARTS", "unrolled_alpha_gradient", "dominant_hessian_eigenvalue"]


def _grads(loss: torch.Tensor, params: list[torch.Tensor]) -> list[torch.Tensor]:
    gs = torch.autograd.grad(loss, params, allow_unused=True)
    return [g if g is not None else torch.zeros_like(p) for g, p in zip(gs, params)]


def unrolled_alpha_gradient(net: Any, train: Batch, val: Batch, xi: float, *, momentum: float = 0.0,
                            weight_decay: float = 0.0, momentum_buffers: list[torch.Tensor | None] | None = None,
                            fd_epsilon: float = 0.01) -> tuple[list[torch.Tensor], float]:
    """DARTS's second-order architecture gradient (Eq. 7 with the finite difference of Eq. 8).

    Args:
        net: a :class:`~nasatlas.spaces.supernet.Supernet` (softmax mixing is used for every forward).
        train, val: the batches of the two halves.
        xi: the virtual step's learning rate.
        momentum, weight_decay, momentum_buffers: the weights' SGD state, used by the virtual step as
            in the reference implementation (``w' = w - xi * (mu * buf + grad + wd * w)``).

    Returns:
        the gradient for each architecture parameter, and ``L_val(w', alpha)``. The network's weights,
        BN statistics and gradients are left as they were.
    """
    weights = net.weight_parameters()
    alphas = net.arch_parameters()
    buffers = {k: b.clone() for k, b in net.named_buffers()}
    saved = [p.detach().clone() for p in weights]
    (xt, yt), (xv, yv) = train, val
    ce = torch.nn.functional.cross_entropy
    try:
        # virtual step w' = w - xi * (momentum term + grad L_train + wd * w)
        g_train = _grads(ce(net(xt, dense_mixing(net)), yt), weights)
        with torch.no_grad():
            for i, (p, gt) in enumerate(zip(weights, g_train)):
                step = gt + weight_decay * p
                buf = momentum_buffers[i] if momentum_buffers is not None else None
                if momentum and buf is not None:
                    step = step + momentum * buf
                p.sub_(xi * step)
        # grad of L_val(w', alpha) w.r.t. alpha and w'
        val_loss = ce(net(xv, dense_mixing(net)), yv)
        check_finite(val_loss, "DARTS unrolled validation loss")
        g = _grads(val_loss, alphas + weights)
        d_alpha, v = g[:len(alphas)], g[len(alphas):]
        # finite-difference Hessian-vector product around the original w
        norm = torch.sqrt(torch.stack([(t * t).sum() for t in v]).sum())
        eps = fd_epsilon / float(norm) if float(norm) > 0 else 0.0
        hvp: list[torch.Tensor] = [torch.zeros_like(a) for a in alphas]
        if eps > 0:
            grads_pm = []
            for sign in (1.0, -1.0):
                with torch.no_grad():
                    for p, w0, vi in zip(weights, saved, v):
                        p.copy_(w0 + sign * eps * vi)
                grads_pm.append(_grads(ce(net(xt, dense_mixing(net)), yt), alphas))
            hvp = [(gp - gm) / (2 * eps) for gp, gm in zip(*grads_pm)]
        return [da - xi * h for da, h in zip(d_alpha, hvp)], float(val_loss.detach())
    finally:
        with torch.no_grad():
            for p, w0 in zip(weights, saved):
                p.copy_(w0)
            for k, b in net.named_buffers():
                b.copy_(buffers[k])


def dominant_hessian_eigenvalue(net: Any, batch: Batch, iterations: int = 20,
                                generator: torch.Generator | None = None) -> float:
    """Largest-magnitude eigenvalue of ``grad2_alpha L_val`` by power iteration on Hessian-vector
    products (double backward), the quantity RobustDARTS tracks (Zela et al. 2020, Sec. 4.1)."""
    alphas = net.arch_parameters()
    x, y = batch
    buffers = {k: b.clone() for k, b in net.named_buffers()}
    try:
        loss = torch.nn.functional.cross_entropy(net(x, dense_mixing(net)), y)
        grads = torch.autograd.grad(loss, alphas, create_graph=True)
        v = [torch.randn(a.shape, generator=generator, dtype=a.dtype).to(a.device) for a in alphas]
        lam = 0.0
        for _ in range(iterations):
            norm = torch.sqrt(torch.stack([(t * t).sum() for t in v]).sum())
            v = [t / norm for t in v]
            hv = torch.autograd.grad(grads, alphas, grad_outputs=v, retain_graph=True)
            lam = float(sum((h * t).sum() for h, t in zip(hv, v)))
            v = [h.detach() for h in hv]
        return lam
    finally:
        with torch.no_grad():
            for k, b in net.named_buffers():
                b.copy_(buffers[k])


class DARTS(OneShotSearcher):
    """DARTS on the NB201 and DARTS spaces (see the module docstring for every switch).

    Args:
        order: 1 (first-order approximation) or 2 (unrolled, finite-difference second order).
        one_level: update alpha on the training batch (one-level optimisation) instead of the other half.
        op_dropout: dropout rate on parameter-free ops' outputs while training (P-DARTS).
        early_stop: ``"none"``, ``"darts+"`` or ``"eigenvalue"``.
        max_skip: DARTS+ threshold on skip-connections in the derived normal cell.
        patience, window, ratio: RobustDARTS early-stopping constants (k = 5, w = 5, 0.75).
        eigen_iterations: power-iteration steps per epoch for the eigenvalue.
        fd_epsilon: numerator of the finite-difference step of Eq. 8 (paper: 0.01).
        **kw: the shared one-shot hyper-parameters (:class:`OneShotSearcher`).
    """

    name = "darts"
    spaces = ("nb201", "darts")

    def __init__(self, *, order: int = 1, one_level: bool = False, op_dropout: float = 0.0,
                 early_stop: str = "none", max_skip: int = 2, patience: int = 5, window: int = 5,
                 ratio: float = 0.75, eigen_iterations: int = 20, fd_epsilon: float = 0.01, **kw: Any) -> None:
        super().__init__(**kw)
        if order not in (1, 2) or isinstance(order, bool):
            raise ValueError(f"darts: order={order!r} must be 1 (first order) or 2 (second order, unrolled)")
        if order == 2 and one_level:
            raise ValueError("darts: one_level=true is a first-order method; set order = 1")
        if early_stop not in ("none", "darts+", "eigenvalue"):
            raise ValueError(f"darts: early_stop={early_stop!r}; choose 'none', 'darts+' or 'eigenvalue'")
        if not 0.0 <= float(op_dropout) < 1.0:
            raise ValueError(f"darts: op_dropout={op_dropout!r} must be in [0, 1)")
        for field, v in (("max_skip", max_skip), ("patience", patience), ("window", window),
                         ("eigen_iterations", eigen_iterations)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"darts: {field}={v!r} must be an integer >= 1")
        self.order, self.one_level, self.op_dropout = int(order), bool(one_level), float(op_dropout)
        self.early_stop, self.max_skip = early_stop, int(max_skip)
        self.patience, self.window, self.ratio = int(patience), int(window), float(ratio)
        self.eigen_iterations = int(eigen_iterations)
        if not float(fd_epsilon) > 0:
            raise ValueError(f"darts: fd_epsilon={fd_epsilon!r} must be > 0 (paper: 0.01)")
        self.fd_epsilon = float(fd_epsilon)

    def params(self) -> dict[str, Any]:
        return {**super().params(), "order": self.order, "one_level": self.one_level, "op_dropout": self.op_dropout,
                "early_stop": self.early_stop, "max_skip": self.max_skip, "patience": self.patience,
                "window": self.window, "ratio": self.ratio, "eigen_iterations": self.eigen_iterations,
                "fd_epsilon": self.fd_epsilon}

    def setup(self) -> None:
        self._net().set_op_dropout(self.op_dropout)
        self._eigen: list[float] = []
        self._rows: list[np.ndarray] = []
        self._stopped_row: np.ndarray | None = None
        self._last_val: Batch | None = None

    # -- updates ------------------------------------------------------------------------------------
    def weight_step(self, batch: Batch) -> dict[str, float]:
        x, y = batch
        net = self._net()
        with self.autocast():
            loss = self.loss(x, y, dense_mixing(net))
        self.sgd_update(loss)
        return {"train_loss": float(loss.detach())}

    def arch_step(self, train_batch: Batch, val_batch: Batch) -> dict[str, float]:
        net = self._net()
        assert self.a_optimizer is not None
        self._last_val = val_batch
        self.a_optimizer.zero_grad(set_to_none=True)
        if self.order == 2:
            xi = float(self.w_optimizer.param_groups[0]["lr"])
            bufs = [self.w_optimizer.state.get(p, {}).get("momentum_buffer") for p in net.weight_parameters()]
            grads, val_loss = unrolled_alpha_gradient(net, train_batch, val_batch, xi, momentum=self.momentum,
                                                      weight_decay=self.weight_decay, momentum_buffers=bufs,
                                                      fd_epsilon=self.fd_epsilon)
            for a, g in zip(net.arch_parameters(), grads):
                a.grad = g
        else:
            x, y = train_batch if self.one_level else val_batch
            loss = self.loss(x, y, dense_mixing(net))  # architecture steps stay in fp32
            check_finite(loss, "DARTS validation loss")
            loss.backward()
            val_loss = float(loss.detach())
        self.a_optimizer.step()
        for p in net.weight_parameters():  # the architecture step never moves w
            p.grad = None
        return {"val_loss": val_loss}

    # -- epochs and early stopping ----------------------------------------------------------------
    def end_epoch(self) -> None:
        super().end_epoch()
        row = self._net().derive_row()
        self._rows.append(row)
        if self.early_stop == "eigenvalue" and self._last_val is not None and self.arch_updates_now():
            g = torch.Generator().manual_seed(len(self._rows))
            self._eigen.append(dominant_hessian_eigenvalue(self._net(), self._last_val, self.eigen_iterations, g))
        if self._stopped_row is None:
            self._check_stop(row)

    def _check_stop(self, row: np.ndarray) -> None:
        if self.early_stop == "darts+" and self.arch_updates_now():
            if self._skips(row) >= self.max_skip:
                self._stopped_row = row
        elif self.early_stop == "eigenvalue":
            lam, k, w = self._eigen, self.patience, self.window
            if len(lam) >= k + w:
                now = float(np.mean(lam[-w:]))
                before = float(np.mean(lam[-w - k:-k]))
                if now > 0 and before / now < self.ratio:
                    self._stopped_row = self._rows[-1 - k]

    def _skips(self, row: np.ndarray) -> int:
        """Skip-connections in the normal cell (NB201: the one cell) of a row."""
        n = 0
        for d, v in zip(self.space.decisions, np.asarray(row).reshape(-1)):
            if d.name.startswith("reduce/"):
                continue
            n += d.choices[int(v)] == "skip_connect"
        return n

    @property
    def stop(self) -> bool:
        return self._stopped_row is not None

    def derive(self) -> np.ndarray:
        if self._stopped_row is not None:
            return self._stopped_row
        return self._net().derive_row()

    def extra_report(self) -> dict[str, Any]:
        out: dict[str, Any] = {"order": self.order}
        if self._eigen:
            out["hessian_eigenvalue"] = self._eigen[-1]
        if self.stop:
            out["early_stopped"] = True
        return out
