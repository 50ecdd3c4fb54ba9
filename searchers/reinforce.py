"""REINFORCE with a per-decision categorical policy: Williams, "Simple Statistical
Gradient-Following Algorithms for Connectionist Reinforcement Learning", Machine Learning 8, 1992
(Sec. 4, REINFORCE algorithms: ``Delta w = alpha (r - b) d ln g / d w`` with a reinforcement
baseline ``b``), as run on NAS-Bench-201 by Dong & Yang, "NAS-Bench-201: Extending the Scope of
Reproducible Neural Architecture Search", ICLR 2020 (their ``exps/algos/reinforce.py`` and
``scripts-search/algos/REINFORCE.sh``).

The policy holds one vector of logits per decision, independent across decisions:
``pi(a) = prod_d softmax(theta_d)[a_d]``. Each proposal samples every decision from its
categorical distribution, so the space must be a product (every combination valid); there is no
rejection. For a told reward ``r`` (the objective value) the baseline is the bias-corrected
exponential moving average of rewards, updated first as in NB201's code:
``b = sum_i m^(t-i) (1-m) r_i / sum_i m^(t-i) (1-m)``. The update follows
``(r - b) * grad log pi(a)``, with the exact gradient of the log-softmax,
``d log pi(a) / d theta_d = onehot(a_d) - softmax(theta_d)``, taken by Adam on the loss
``-(r - b) log pi(a)`` (NB201's script: Adam, learning rate 0.001, EMA momentum 0.9, logits
initialised as ``0.001 * N(0, 1)``; the defaults here) or by plain gradient ascent
(``optimizer="sgd"``, Williams' form ``Delta theta = lr (r - b) grad log pi``). Results told in a
batch update the current policy in turn. Failed results carry no reward and leave the policy
unchanged.

The policy is numpy only. Repeated architectures are part of the method (the policy concentrates
on good ones and re-samples them), so there is no dedupe option. The LSTM controller of Zoph &
Le (2017) is not implemented.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from nasatlas.results import EvalResult

from ._common import check_choice, check_requires
from .base import BlackBoxSearcher, Proposal, objective_value, rng_state, set_rng_state

__all__ = ["Reinforce", "log_softmax_grad"]

#: Adam's defaults (Kingma & Ba 2015, Algorithm 1), as in torch.optim.Adam
ADAM_BETAS = (0.9, 0.999)
ADAM_EPS = 1e-8


def log_softmax_grad(logits: np.ndarray, mask: np.ndarray, actions: np.ndarray) -> np.ndarray:
    """Gradient of ``sum_d log softmax(logits_d)[actions_d]`` with respect to ``logits``.

    ``logits`` is ``(D, K)`` with invalid entries (``mask`` False) ignored; the result is zero there.
    """
    return _grad_from_probs(_softmax(logits, mask), actions)


def _grad_from_probs(probs: np.ndarray, actions: Any) -> np.ndarray:
    """``onehot(actions_d) - probs_d`` per decision: the log-softmax gradient given the softmax."""
    g = -probs
    g[np.arange(len(actions)), actions] += 1.0
    return g


def _softmax(logits: np.ndarray, mask: np.ndarray) -> np.ndarray:
    z = np.where(mask, logits, -np.inf)
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    out: np.ndarray = e / e.sum(axis=1, keepdims=True)
    return out


class Reinforce(BlackBoxSearcher):
    """REINFORCE on independent per-decision categorical distributions.

    Args:
        learning_rate: step size (NB201: 0.001 with Adam).
        momentum: the moving-average baseline's momentum ``m`` in [0, 1) (NB201: 0.9).
        optimizer: ``"adam"`` (NB201) or ``"sgd"`` (plain REINFORCE ascent).
        init_std: standard deviation of the initial logits (NB201: 0.001).
    """

    requires = ("product",)

    def __init__(self, learning_rate: float = 0.001, momentum: float = 0.9, optimizer: str = "adam",
                 init_std: float = 1e-3) -> None:
        self.learning_rate = learning_rate
        self.momentum = momentum
        self.optimizer = optimizer
        self.init_std = init_std

    def _setup(self) -> None:
        check_requires(self.space, self.requires, "reinforce")
        for name, v, ok in (("learning_rate", self.learning_rate, lambda x: x > 0),
                            ("momentum", self.momentum, lambda x: 0 <= x < 1),
                            ("init_std", self.init_std, lambda x: x >= 0)):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or not ok(v):
                raise ValueError(f"reinforce: {name}={v!r}; give a finite number "
                                 + {"learning_rate": "> 0", "momentum": "in [0, 1)", "init_std": ">= 0"}[name])
        check_choice("reinforce", "optimizer", self.optimizer, ("adam", "sgd"))
        sizes = np.asarray(self.space.sizes, dtype=np.int64)
        if (sizes < 1).any():
            raise ValueError("reinforce: every decision needs at least one option")
        self._sizes = sizes
        k = int(sizes.max()) if len(sizes) else 1
        self._mask = np.arange(k)[None, :] < sizes[:, None]
        self.logits = np.zeros(self._mask.shape)
        self.logits[self._mask] = self.init_std * self.rng.standard_normal(int(sizes.sum()))
        self._m = np.zeros(self._mask.shape)
        self._v = np.zeros(self._mask.shape)
        self._t = 0
        self._ema = [0.0, 0.0]  # numerator, denominator of the bias-corrected moving average
        self._size_list = sizes.tolist()
        self._refresh()

    def _refresh(self) -> None:
        """Recompute the cached policy (probabilities and per-decision CDF) after the logits change."""
        self._probs = _softmax(self.logits, self._mask)
        self._cdf = np.cumsum(self._probs, axis=1)

    # -- the policy ----------------------------------------------------------------------------
    def probabilities(self) -> list[np.ndarray]:
        """The policy's option probabilities, one array per decision."""
        return [self._probs[d, :s].copy() for d, s in enumerate(self._size_list)]

    def mode_row(self) -> np.ndarray:
        """The most likely architecture under the policy (NB201's ``genotype()``)."""
        out: np.ndarray = np.where(self._mask, self.logits, -np.inf).argmax(axis=1)
        return out

    @property
    def baseline(self) -> float | None:
        """The current moving-average baseline (None before the first reward)."""
        return None if self._ema[1] == 0 else self._ema[0] / self._ema[1]

    # -- ask / tell ----------------------------------------------------------------------------
    def ask(self, n: int = 1) -> list[Proposal]:
        if n <= 0:
            return []
        u = self.rng.random((n, len(self._size_list)))
        rows = (self._cdf[None, :, :] < u[:, :, None]).sum(axis=2)  # inverse-CDF draw per decision
        np.minimum(rows, self._sizes - 1, out=rows)                  # guard: cdf[-1] may round below u
        out = []
        for r in rows.tolist():
            out.append(Proposal(self.n_asked, tuple(r)))
            self.n_asked += 1
        return out

    def tell(self, proposal: Proposal, result: EvalResult) -> None:
        """One REINFORCE step on the told reward (failed results: no step)."""
        if not result.ok:
            return
        reward = objective_value(result, self.objective, self.mode)
        row = proposal.row
        if len(row) != len(self._size_list) or not all(0 <= a < k for a, k in zip(row, self._size_list)):
            raise ValueError(f"reinforce: proposal row {list(row)} is not an architecture of space "
                             f"{self.space.name!r}")
        m = self.momentum
        self._ema[0] = m * self._ema[0] + (1 - m) * reward
        self._ema[1] = m * self._ema[1] + (1 - m)
        advantage = reward - self._ema[0] / self._ema[1]
        # ascent direction: advantage * (onehot(a) - softmax(theta)), the exact log-softmax gradient
        grad = advantage * _grad_from_probs(self._probs, row)
        if self.optimizer == "sgd":
            self.logits += self.learning_rate * grad
        else:  # Adam (torch.optim.Adam's update) on the loss -advantage * log pi(a), gradient -grad
            b1, b2 = ADAM_BETAS
            self._t += 1
            self._m *= b1
            self._m -= (1 - b1) * grad
            self._v *= b2
            self._v += (1 - b2) * grad * grad
            denom = np.sqrt(self._v)
            denom /= math.sqrt(1 - b2 ** self._t)
            denom += ADAM_EPS
            self.logits -= (self.learning_rate / (1 - b1 ** self._t)) * self._m / denom
        # masked (absent) options have zero probability, so zero gradient: their logits stay 0
        self._refresh()

    # -- state ---------------------------------------------------------------------------------
    def _ragged(self, a: np.ndarray) -> list[list[float]]:
        return [a[d, :s].tolist() for d, s in enumerate(self._sizes.tolist())]

    def _padded(self, rows: Any, what: str) -> np.ndarray:
        out = np.zeros(self._mask.shape)
        if len(rows) != len(self._sizes):
            raise ValueError(f"reinforce: state {what!r} has {len(rows)} decisions; the space has {len(self._sizes)}")
        for d, (r, s) in enumerate(zip(rows, self._sizes.tolist())):
            if len(r) != s:
                raise ValueError(f"reinforce: state {what!r} decision {d} has {len(r)} options; the space has {s}")
            out[d, :s] = r
        return out

    def state_dict(self) -> dict[str, Any]:
        return {"rng": rng_state(self.rng), "n_asked": self.n_asked, "logits": self._ragged(self.logits),
                "adam_m": self._ragged(self._m), "adam_v": self._ragged(self._v), "adam_t": self._t,
                "ema": list(self._ema)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        set_rng_state(self.rng, state["rng"])
        self.n_asked = int(state["n_asked"])
        self.logits = self._padded(state["logits"], "logits")
        self._m = self._padded(state["adam_m"], "adam_m")
        self._v = self._padded(state["adam_v"], "adam_v")
        self._t = int(state["adam_t"])
        self._ema = [float(state["ema"][0]), float(state["ema"][1])]
        self._refresh()
