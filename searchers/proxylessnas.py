"""ProxylessNAS: path-level binarisation of the supernet (Cai, Zhu & Han, ICLR 2019).

Every row of architecture parameters ``alpha`` (a chain layer, an NB201 edge) defines path
probabilities ``p = softmax(alpha)``; the supernet is trained one sampled path at a time, so memory
stays that of one network (Sec. 3.2, "binarized path"). Following the paper and the reference code
(mit-han-lab/proxylessnas ``search/modules/mix_op.py``, ``MixedEdge`` in mode ``"two"``;
``search/nas_manager.py``):

* **weight step** (Sec. 3.2.1, "when training weight parameters, we first freeze the architecture
  parameters and stochastically sample binary gates according to Eq. (2)"): per row one path drawn from
  ``p`` (``torch.multinomial``, torch's seeded generator); only that path is computed; an SGD step.
* **architecture step, binary gates** (``grad_mode="binary"``, Sec. 3.2.1 Eq. 4): per row two distinct
  candidates drawn by ``p`` without replacement, the active one of the two by their renormalised
  probabilities, a binary gate ``g`` (one-hot on the active path, a leaf tensor) and a forward that
  computes only those two paths (``EdgeMix(active=(i, j), weights=g)``: the inactive one is multiplied by
  its gate 0). Autograd gives ``dL/dg``; BinaryConnect's estimate restricted to the two paths is

      dL/dalpha_i = sum_{j in pair} dL/dg_j * p~_j * (delta_ij - p~_i),   p~ = softmax(alpha_pair),

  added to the gradient of the cost term (which flows through ``softmax(alpha)`` directly), then an
  Adam step and the rescaling of ``rescale_updated_arch_param``: both sampled alphas are shifted by
  ``log(sum exp(new pair) / sum exp(old pair))``, so ``sum exp`` over the pair is what it was and every
  unsampled path keeps its probability (exactly so with Adam ``betas[0] = 0`` and no weight decay, the
  reference's setting and this searcher's default, and without a cost term, whose gradient reaches
  every path). One departure: where the active path is ProxylessNAS's ``zero`` (the block skipped),
  the reference never calls the mixed edge and leaves that row's alpha untouched; here the other path's
  gate still has its gradient, so the row is updated by the same formula.
* **architecture step, REINFORCE** (``grad_mode="reinforce"``, Sec. 3.3.2): ``rl_samples`` single paths
  per step, each scored by its accuracy on the validation batch (no gradient); reward ``R`` (times the
  cost term, below); ``grad = mean_s (R_s - b) * grad log p(path_s)`` ascended by Adam; the baseline
  follows the reference ``b <- b + rl_baseline_decay * (mean R - b)`` (first value: the mean reward).
* **hardware cost** (Sec. 3.3, Eq. 2-3 and 5): the expected MACs ``E = fixed + sum_rows sum_i p_i
  * MACs_i`` of :mod:`nasatlas.spaces.supernet_cost` (the reference's ``expected_flops``), target ``T``
  (``cost_target``, default ``E`` at initialisation). ``cost_form="add"`` (reference ``add#linear``,
  paper Eq. 5 with ``lambda_2 = cost_weight / T``): ``L = CE + cost_weight * (E - T) / T``;
  ``cost_form="mul"`` (reference ``mul#log``, beta ``= cost_weight``): ``L = CE * (log E / log T) **
  cost_weight``. REINFORCE rewards: ``R = acc * (T / MACs) ** cost_weight`` (``mul``, the reference's
  reward) or ``R = acc - cost_weight * (MACs - T) / T`` (``add``). ``cost_weight = 0`` turns it off.

Derivation: the most probable path per row (``set_chosen_op_active``). ProxylessNAS never forms a
dense mixture, so the supernet's accuracy is that of the derived single path.

NB201 is relaxed too (its 6 edge rows shared by every cell: one gate per row, shared likewise); the
paper searched chain spaces only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from nasatlas.spaces.supernet import EdgeMix, Mixing, check_finite, single_path_mixing
from nasatlas.spaces.supernet_cost import expected_cost, fixed_cost, option_costs, path_cost
from torch import nn

from .oneshot_base import Batch, OneShotSearcher

__all__ = ["ProxylessNAS", "binary_gate_alpha_grad", "rescale_pair"]

GRAD_MODES = ("binary", "reinforce")
COST_FORMS = ("add", "mul")


def binary_gate_alpha_grad(alpha: torch.Tensor, pairs: torch.Tensor, gate_grad: torch.Tensor) -> torch.Tensor:
    """BinaryConnect's alpha gradient over two sampled paths per row (ProxylessNAS Eq. 4, two paths).

    Args:
        alpha: ``(rows, options)`` architecture parameters.
        pairs: ``(rows, 2)`` sampled option indices per row.
        gate_grad: ``(rows, options)`` ``dL/dg`` (only the pair's columns are read).

    Returns:
        ``(rows, options)``: ``sum_j dL/dg_j * p~_j * (delta_ij - p~_i)`` at the pair's columns
        (``p~`` = softmax over the pair's alphas), zero elsewhere.
    """
    a = alpha.detach()
    p = torch.softmax(a.gather(1, pairs), dim=1)
    d = gate_grad.gather(1, pairs).to(p.dtype) * p
    est = d - p * d.sum(dim=1, keepdim=True)
    return torch.zeros_like(a).scatter_add_(1, pairs, est)


def rescale_pair(alpha: torch.Tensor, pairs: torch.Tensor, old_pair_alpha: torch.Tensor) -> None:
    """Shift each row's two updated alphas by ``log(sum exp(new) / sum exp(old))`` in place, so that
    their ``sum exp`` is restored and the other paths' probabilities are unchanged (reference
    ``rescale_updated_arch_param``)."""
    with torch.no_grad():
        new = alpha.gather(1, pairs)
        offset = torch.logsumexp(new, dim=1, keepdim=True) - torch.logsumexp(old_pair_alpha, dim=1, keepdim=True)
        alpha.scatter_(1, pairs, new - offset)


class ProxylessNAS(OneShotSearcher):
    """ProxylessNAS (see the module docstring).

    Args:
        grad_mode: ``"binary"`` (binary gates over two sampled paths, default) or ``"reinforce"``.
        cost_weight: weight of the MACs term (0: off); the exponent in ``cost_form="mul"``.
        cost_target: reference MACs ``T`` (default: the expected MACs at initialisation).
        cost_form: ``"add"`` or ``"mul"`` (see the module docstring).
        rl_samples: REINFORCE paths sampled per architecture step (reference ``rl_batch_size`` 10).
        rl_baseline_decay: REINFORCE baseline step (reference ``rl_baseline_decay_weight`` 0.99).
        arch_lr, arch_betas, arch_weight_decay: the alphas' Adam; defaults of the reference
            (``imagenet_arch_search.py``: lr 6e-3, betas (0, 0.999), eps 1e-8, weight decay 0).
        **kwargs: the shared one-shot settings of :class:`OneShotSearcher` (epochs, batch size, SGD).
    """

    name = "proxylessnas"
    spaces = ("proxylessnas", "fbnet", "nb201")

    def __init__(self, *, grad_mode: str = "binary", cost_weight: float = 0.0, cost_target: float | None = None,
                 cost_form: str = "add", rl_samples: int = 10, rl_baseline_decay: float = 0.99,
                 arch_lr: float = 6e-3, arch_betas: Sequence[float] = (0.0, 0.999), arch_weight_decay: float = 0.0,
                 **kwargs: Any) -> None:
        super().__init__(arch_lr=arch_lr, arch_betas=arch_betas, arch_weight_decay=arch_weight_decay, **kwargs)
        if grad_mode not in GRAD_MODES:
            raise ValueError(f"{self.name}: grad_mode={grad_mode!r}; choose one of {list(GRAD_MODES)}")
        if cost_form not in COST_FORMS:
            raise ValueError(f"{self.name}: cost_form={cost_form!r}; choose one of {list(COST_FORMS)}")
        if isinstance(cost_weight, bool) or not isinstance(cost_weight, (int, float)) or not (
                math.isfinite(cost_weight) and cost_weight >= 0):
            raise ValueError(f"{self.name}: cost_weight={cost_weight!r} must be a number >= 0 (0 turns the MACs "
                             "term off)")
        if cost_target is not None and (isinstance(cost_target, bool) or not isinstance(cost_target, (int, float))
                                        or not math.isfinite(cost_target) or cost_target <= 1):
            raise ValueError(f"{self.name}: cost_target={cost_target!r} must be a number of MACs > 1, or omitted "
                             "for the expected MACs at initialisation")
        if isinstance(rl_samples, bool) or not isinstance(rl_samples, int) or rl_samples < 1:
            raise ValueError(f"{self.name}: rl_samples={rl_samples!r} must be an integer >= 1")
        if not (isinstance(rl_baseline_decay, (int, float)) and 0 < rl_baseline_decay <= 1):
            raise ValueError(f"{self.name}: rl_baseline_decay={rl_baseline_decay!r} must be in (0, 1]")
        self.grad_mode, self.cost_form = grad_mode, cost_form
        self.cost_weight = float(cost_weight)
        self.cost_target = None if cost_target is None else float(cost_target)
        self.rl_samples, self.rl_baseline_decay = rl_samples, float(rl_baseline_decay)

    def params(self) -> dict[str, Any]:
        return {**super().params(), "grad_mode": self.grad_mode, "cost_weight": self.cost_weight,
                "cost_target": self.cost_target, "cost_form": self.cost_form, "rl_samples": self.rl_samples,
                "rl_baseline_decay": self.rl_baseline_decay}

    # -- setup ------------------------------------------------------------------------------------
    def setup(self) -> None:
        """Measure the option costs, the fixed cost and the target; check every row has two paths."""
        net = self._net()
        for g, rows in net.options.items():
            small = [r for r, o in enumerate(rows) if len(o) < 2]
            if small:
                raise ValueError(f"{self.name}: rows {small} of group {g!r} have fewer than 2 options; binary gates "
                                 "sample two paths per row")
        config = getattr(net, "config", None)
        if not isinstance(config, dict) or "input" not in config:
            raise ValueError(f"{self.name}: the supernet of space {net.space.name!r} has no config['input']; the cost "
                             "model needs the input shape")
        shape = tuple(int(s) for s in config["input"])
        self.costs = option_costs(net, shape)
        self.fixed_macs = fixed_cost(net, shape, self.costs)
        with torch.no_grad():
            init = self.fixed_macs + float(expected_cost(net, self.costs))
        self.target = self.cost_target if self.cost_target is not None else init
        if self.cost_weight > 0 and self.cost_form == "mul" and self.target <= 1:
            raise ValueError(f"{self.name}: cost_form='mul' needs a cost target above 1 MAC (log T > 0); got "
                             f"{self.target}")
        self.baseline: float | None = None

    def expected_macs(self) -> torch.Tensor:
        """``E[MACs]`` of the whole network under ``softmax(alpha)``, differentiable (Eq. 2-3)."""
        net = self._net()
        return self.fixed_macs + expected_cost(net, self.costs)

    def _cost_loss(self, ce: torch.Tensor) -> torch.Tensor:
        if self.cost_weight == 0:
            return ce
        e = self.expected_macs()
        if self.cost_form == "add":
            return ce + self.cost_weight * (e - self.target) / self.target
        return ce * (torch.log(e) / math.log(self.target)) ** self.cost_weight

    def _arch_optimizer(self) -> torch.optim.Optimizer:
        if self.a_optimizer is None:
            raise RuntimeError(f"{self.name}: the supernet has no architecture parameters to update")
        return self.a_optimizer

    # -- sampling -----------------------------------------------------------------------------------
    def _probs(self, g: str) -> torch.Tensor:
        with torch.no_grad():
            return torch.softmax(self._net().masked_logits(g).detach().float(), dim=-1)

    def sample_paths(self) -> dict[str, torch.Tensor]:
        """One path per row drawn from ``softmax(alpha)`` (torch's generator): ``{group: (rows,)}``."""
        return {g: torch.multinomial(self._probs(g), 1).squeeze(1) for g in self._net().alphas}

    # -- updates ------------------------------------------------------------------------------------
    def weight_step(self, batch: Batch) -> dict[str, float]:
        """SGD on one sampled single path (Sec. 3.2.1): the other paths are neither run nor stored."""
        x, y = batch
        choice = self.sample_paths()
        mixing = single_path_mixing(self._net(), {g: c.tolist() for g, c in choice.items()})
        with self.autocast():
            loss = self.loss(x, y, mixing)
        self.sgd_update(loss)
        return {"train_loss": float(loss.detach())}

    def arch_step(self, train_batch: Batch, val_batch: Batch) -> dict[str, float]:
        if self.grad_mode == "reinforce":
            return self._reinforce_step(val_batch)
        return self._binary_step(val_batch)

    def _binary_step(self, val_batch: Batch) -> dict[str, float]:
        """Binary gates over two sampled paths per row, BinaryConnect estimate, Adam, rescale."""
        net = self._net()
        x, y = val_batch
        groups = list(net.alphas)
        pairs: dict[str, torch.Tensor] = {}
        gates: dict[str, torch.Tensor] = {}
        mixing: dict[str, list[EdgeMix]] = {}
        for g in groups:
            probs = self._probs(g)
            pair = torch.multinomial(probs, 2, replacement=False)  # (rows, 2)
            pair_probs = torch.softmax(net.alphas[g].detach().float().gather(1, pair), dim=1)
            first = torch.multinomial(pair_probs, 1).squeeze(1)  # which of the two is active
            active = pair.gather(1, first[:, None]).squeeze(1)
            inactive = pair.gather(1, (1 - first)[:, None]).squeeze(1)
            pair = torch.stack([active, inactive], dim=1)
            gate = torch.zeros_like(net.alphas[g].detach())
            gate.scatter_(1, active[:, None], 1.0)
            gate.requires_grad_(True)
            pairs[g], gates[g] = pair, gate
            mixing[g] = [EdgeMix((int(a), int(b)), gate[r]) for r, (a, b) in enumerate(pair.tolist())]
        ce = nn.functional.cross_entropy(net(x, mixing), y)
        loss = self._cost_loss(ce)
        check_finite(loss, "architecture loss")
        alphas = [net.alphas[g] for g in groups]
        grads = torch.autograd.grad(loss, [gates[g] for g in groups] + alphas, allow_unused=True)
        old = {g: net.alphas[g].detach().gather(1, pairs[g]).clone() for g in groups}
        for k, g in enumerate(groups):
            gate_grad = grads[k] if grads[k] is not None else torch.zeros_like(gates[g])
            cost_grad = grads[len(groups) + k]
            est = binary_gate_alpha_grad(net.alphas[g], pairs[g], gate_grad)
            net.alphas[g].grad = est if cost_grad is None else est + cost_grad.detach()
        self._arch_optimizer().step()
        for g in groups:
            rescale_pair(net.alphas[g], pairs[g], old[g])
            net.alphas[g].grad = None
        return {"val_loss": float(ce.detach()), "arch_loss": float(loss.detach())}

    def _reward(self, acc: float, choice: dict[str, torch.Tensor]) -> float:
        if self.cost_weight == 0:
            return acc
        macs = self.fixed_macs + path_cost(self.costs, {g: c.tolist() for g, c in choice.items()})
        if self.cost_form == "mul":
            return acc * (self.target / macs) ** self.cost_weight
        return acc - self.cost_weight * (macs - self.target) / self.target

    def _reinforce_step(self, val_batch: Batch) -> dict[str, float]:
        """REINFORCE over ``rl_samples`` sampled paths with a moving baseline (Sec. 3.3.2)."""
        net = self._net()
        x, y = val_batch
        rewards: list[float] = []
        logps: list[torch.Tensor] = []
        ces: list[float] = []
        for _ in range(self.rl_samples):
            choice = self.sample_paths()
            with torch.no_grad():
                out = net(x, single_path_mixing(net, {g: c.tolist() for g, c in choice.items()}))
                acc = float((out.argmax(1) == y).float().mean())
                ces.append(float(nn.functional.cross_entropy(out, y)))
            rewards.append(self._reward(acc, choice))
            terms = [torch.log_softmax(net.masked_logits(g), dim=-1)
                     .gather(1, c.to(net.alphas[g].device)[:, None]).sum() for g, c in choice.items()]
            logps.append(torch.stack(terms).sum())
        mean_r = sum(rewards) / len(rewards)
        self.baseline = mean_r if self.baseline is None else self.baseline + self.rl_baseline_decay * (
            mean_r - self.baseline)
        adv = torch.tensor([r - self.baseline for r in rewards], dtype=logps[0].dtype, device=logps[0].device)
        loss = -(adv * torch.stack(logps)).mean()
        opt = self._arch_optimizer()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return {"val_loss": sum(ces) / len(ces), "reward": mean_r, "baseline": float(self.baseline)}

    # -- evaluation ---------------------------------------------------------------------------------
    def eval_mixing(self) -> Mixing:
        """The derived single path: ProxylessNAS has no dense supernet."""
        return self._net().mixing_for(self.derive())

    def extra_report(self) -> dict[str, Any]:
        """Expected MACs under ``softmax(alpha)``, the derived path's MACs and the target (millions)."""
        row = self.derive()
        derived = self.fixed_macs + path_cost(self.costs, self._row_choice(row))
        with torch.no_grad():
            expected = float(self.expected_macs().detach())
        return {"expected_mmacs": expected / 1e6, "derived_mmacs": derived / 1e6, "cost_target_mmacs":
                self.target / 1e6}

    def _row_choice(self, row: np.ndarray) -> dict[str, list[int]]:
        """The option column per row of an architecture row (its single-path mixing)."""
        mix = self._net().mixing_for(np.asarray(row, dtype=np.int64))
        return {g: [m.active[0] for m in rows] for g, rows in mix.items()}
