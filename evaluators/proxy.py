"""Zero-cost proxies at initialisation: score an untrained network from one mini-batch.

The six proxies of Abdelfattah, Mehrotra, Dudziak, Lane, "Zero-Cost Proxies for Lightweight NAS"
(ICLR 2021; "Abdelfattah" below), each a small function ``proxy(model, x, y) -> float``:

==========  =============================================================  ===========================
name        per-parameter (or per-channel) saliency                        source
==========  =============================================================  ===========================
synflow     ``|θ ⊙ ∂R/∂θ|``, R = 1ᵀ f(1; |θ|) of the linearised net         Tanaka et al. 2020, eq. 1-2
snip        ``|θ ⊙ ∂L/∂θ|``                                                Lee et al. 2019, eq. 6
grad_norm   ``‖∂L/∂θ_l‖₂`` per layer                                       Abdelfattah sec. 3
grasp       ``-θ ⊙ (H ∂L/∂θ)``                                             Wang et al. 2020, eq. 8
fisher      ``½ mean_n (Σ_hw a ⊙ ∂L/∂a)²`` per output channel              Theis et al. 2018, eq. 6;
                                                                           Turner et al. 2020
jacob_cov   ``-Σ_i log(λ_i + k) + 1/(λ_i + k)``, λ of corr(∂f/∂x)           Mellor et al. 2020 (v1), eq. 2
==========  =============================================================  ===========================

Conventions, those of Abdelfattah's reference code (SamsungLabs/zero-cost-nas, read for the details
and rewritten here):

* θ are the weights of the ``nn.Conv2d`` and ``nn.Linear`` layers (not biases, not BatchNorm);
  L is the mean cross-entropy of one mini-batch. A network's score is the sum of the saliency over
  those parameters (Abdelfattah sec. 4, "network-level score"); for ``fisher`` every weight of an
  output channel carries that channel's saliency, so a channel counts ``fan_in × k_h × k_w`` times.
* Everything but ``synflow`` runs in train mode (BatchNorm uses the batch's statistics) in float32.
* ``synflow`` uses no data: the input is all ones (one sample, the batch's shape), every parameter
  is replaced by its absolute value, BatchNorm layers are removed (the reference's ``bn=False``
  copy), the rest is put in eval mode (no dropout or drop-path), in float64 as the reference does.
* Every function works on a deep copy of the model; the caller's weights, gradients and BatchNorm
  statistics are left untouched.
* ``grasp`` uses temperature T = 1 and one batch for both ``g`` and ``Hg`` (the reference's choice;
  GraSP's paper uses T = 200); the sign makes larger = better, as in the reference.
* ``jacob_cov`` back-propagates the sum of the outputs to the input (one Jacobian row per sample,
  cross-sample terms of train-mode BatchNorm included), with k = 1e-5.

Non-finite values. A proxy can be NaN or infinite for a real reason: ``jacob_cov`` is NaN when the
output does not depend on the input (a cell whose output node is disconnected, e.g. NB201 with every
edge into node 3 ``none``: a Jacobian row is constant, its correlation undefined), and ``synflow``
overflows to inf on deep, wide networks even in float64. :meth:`ProxyEvaluator.scores` returns such
values as they are; :meth:`ProxyEvaluator.evaluate` then returns a *failed* :class:`EvalResult` whose
error names the non-finite proxies and lists every proxy's value (costs are still reported), because
an ``"ok"`` result must carry finite metrics and a searcher must not mistake "undefined" for a score.
Ask only for the proxies you need to avoid that (e.g. ``proxies=["synflow"]``).
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from nasatlas.results import EvalResult
from nasatlas.spaces import Arch, Space
from torch import nn

from .base import Evaluator, resolve_device, seeded

__all__ = ["ProxyEvaluator", "PROXIES", "DEFAULT_PROXIES", "COST_PROXIES", "synflow", "snip", "grad_norm", "grasp",
           "fisher", "jacob_cov", "JACOB_COV_K", "DATA_FREE"]

#: the stabiliser k of ``jacob_cov`` (Mellor et al. 2020 v1, eq. 2; the reference code's value)
JACOB_COV_K = 1e-5
_BATCHNORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)
_LAYERS = (nn.Conv2d, nn.Linear)


# ----------------------------------------------------------------------------- helpers

def _layers(net: nn.Module) -> list[nn.Module]:
    """The Conv2d and Linear layers of ``net`` (each once), whose weights the proxies score."""
    return [m for m in net.modules() if isinstance(m, _LAYERS)]


def _weights(net: nn.Module) -> list[torch.Tensor]:
    return [m.weight for m in _layers(net)]  # type: ignore[misc]


def _logits(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The (batch, classes) logits of ``net`` on ``x`` (the first output of a tuple)."""
    out = net(x)
    if isinstance(out, tuple | list):
        out = out[0]
    if not isinstance(out, torch.Tensor) or out.ndim != 2:
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ValueError(f"zero-cost proxies need a classification network whose output is (batch, classes) "
                         f"logits; this network returned {shape}")
    return out


def _grads(out: torch.Tensor, params: Sequence[torch.Tensor], *, create_graph: bool = False) -> list[torch.Tensor]:
    """∂out/∂p for every p, zeros for parameters the output does not depend on."""
    gs = torch.autograd.grad(out, list(params), allow_unused=True, create_graph=create_graph)
    return [torch.zeros_like(p) if g is None else g for p, g in zip(params, gs)]


def _train_copy(model: nn.Module) -> nn.Module:
    net = copy.deepcopy(model)
    net.train()
    net.zero_grad(set_to_none=True)
    return net


def _loss(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(_logits(net, x), y)


def _remove_batchnorm(net: nn.Module) -> nn.Module:
    """Replace every BatchNorm submodule of ``net`` (in place) by an identity."""
    for parent in list(net.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, _BATCHNORMS):
                setattr(parent, name, nn.Identity())
    return net


# ----------------------------------------------------------------------------- the proxies

def synflow(model: nn.Module, x: torch.Tensor, y: torch.Tensor | None = None) -> float:
    """Synaptic flow (Tanaka, Kunin, Yamins, Ganguli, "Pruning neural networks without any data by
    iteratively conserving synaptic flow", NeurIPS 2020, eq. 1-2; network score as in Abdelfattah sec. 3-4).

    ``R = 1ᵀ f(1; |θ|)`` is the sum of the outputs of the network with every parameter replaced by
    its absolute value, fed an all-ones input; the score is ``Σ |θ ⊙ ∂R/∂θ|`` over the Conv2d and
    Linear weights. Data-free: only ``x``'s shape is used (one sample), ``y`` is ignored. BatchNorm is
    removed, the rest runs in eval mode, in float64. For a ReLU network the all-positive pass is
    linear; other activations (ReLU6, sigmoid gates) are kept as they are, as in the reference.
    Works on a copy: ``model`` is untouched.
    """
    net = _remove_batchnorm(copy.deepcopy(model)).eval().double()
    with torch.no_grad():
        for p in net.parameters():
            p.abs_()
    ones = torch.ones((1, *x.shape[1:]), dtype=torch.float64, device=x.device)
    weights = _weights(net)
    grads = _grads(_logits(net, ones).sum(), weights)
    with torch.no_grad():
        return float(sum(((w * g).abs().sum() for w, g in zip(weights, grads)), torch.zeros((), dtype=torch.float64)))


def snip(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Connection sensitivity (Lee, Ajanthan, Torr, "SNIP: Single-shot network pruning based on
    connection sensitivity", ICLR 2019, eq. 6, without its normalisation; Abdelfattah sec. 3):
    ``Σ |θ ⊙ ∂L/∂θ|`` over the Conv2d and Linear weights, L the batch's mean cross-entropy."""
    net = _train_copy(model)
    weights = _weights(net)
    grads = _grads(_loss(net, x, y), weights)
    with torch.no_grad():
        return float(sum(((w * g).abs().sum() for w, g in zip(weights, grads)), torch.zeros(())))


def grad_norm(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Gradient norm (Abdelfattah sec. 3): the sum over Conv2d and
    Linear layers of the Euclidean norm of ``∂L/∂W_l`` (per-layer norms summed, as in the reference;
    not the norm of the whole gradient)."""
    net = _train_copy(model)
    grads = _grads(_loss(net, x, y), _weights(net))
    with torch.no_grad():
        return float(sum((torch.linalg.vector_norm(g) for g in grads), torch.zeros(())))


def grasp(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Gradient signal preservation (Wang, Zhang, Grosse, "Picking winning tickets before training by
    preserving gradient flow", ICLR 2020, eq. 8; Abdelfattah sec. 3): ``Σ -θ ⊙ (H g)`` over the Conv2d
    and Linear weights, ``g = ∂L/∂θ`` and ``H g`` the Hessian-gradient product, computed exactly by
    double back-propagation (``∂(gᵀ stop_grad(g))/∂θ``). Temperature 1, one batch."""
    net = _train_copy(model)
    weights = _weights(net)
    g = _grads(_loss(net, x, y), weights, create_graph=True)
    z = sum(((gi * gi.detach()).sum() for gi in g if gi.requires_grad), torch.zeros((), device=x.device))
    if not z.requires_grad:  # the loss does not depend on any weight: H g = 0
        return 0.0
    hg = _grads(z, weights)
    with torch.no_grad():
        return float(sum(((-w * h).sum() for w, h in zip(weights, hg)), torch.zeros(())))


def fisher(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Fisher channel saliency (Theis, Korshunova, Tejani, Huszár, "Faster gaze prediction with dense
    networks and Fisher pruning", 2018, eq. 6; Turner et al., "BlockSwap", ICLR 2020; Abdelfattah sec. 3).

    For each output channel c of each Conv2d/Linear layer, with a its output activation and
    ``g = ∂L/∂a``: ``Δ_c = ½ · mean_n (Σ_{h,w} a_{n,c,h,w} g_{n,c,h,w})²``. The network score sums
    Δ_c over all weights of the channel (``Δ_c × fan_in × k_h × k_w``), as the reference code does
    when it spreads each channel's value over the channel's parameters before summing.
    """
    net = _train_copy(model)
    layers = _layers(net)
    total = torch.zeros((), dtype=torch.float64, device=x.device)
    handles = []

    def forward_hook(layer: nn.Module, _inp: object, out: torch.Tensor) -> None:
        act = out.detach().clone()  # the activation as produced, safe from later in-place ops
        per_weight = int(layer.weight[0].numel())  # type: ignore[index]

        def grad_hook(grad: torch.Tensor) -> None:
            nonlocal total
            prod = act * grad.detach()
            g_nc = prod.sum(dim=tuple(range(2, prod.ndim))) if prod.ndim > 2 else prod
            total = total + 0.5 * g_nc.double().pow(2).mean(0).sum() * per_weight

        if out.requires_grad:
            out.register_hook(grad_hook)

    for layer in layers:
        handles.append(layer.register_forward_hook(forward_hook))
    try:
        loss = _loss(net, x, y)
        if loss.requires_grad:
            loss.backward()
    finally:
        for h in handles:
            h.remove()
    return float(total)


def jacob_cov(model: nn.Module, x: torch.Tensor, y: torch.Tensor | None = None) -> float:
    """Jacobian covariance (Mellor, Turner, Storkey, Crowley, "Neural architecture search without
    training", arXiv:2006.04647v1, 2020, eq. 2 — the score of that first version, which the ICML 2021
    version replaced; Abdelfattah sec. 3).

    ``J_n = ∂(Σ_k f_k(x))/∂x_n`` flattened, one row per sample; Σ_J is the correlation matrix of the
    rows and λ its eigenvalues; the score is ``-Σ_i [log(λ_i + k) + 1/(λ_i + k)]``, k = 1e-5. NaN when
    a row is constant (the output does not depend on the input), as in the reference. ``y`` is ignored.
    """
    net = _train_copy(model)
    xx = x.detach().clone().requires_grad_(True)
    out = _logits(net, xx)
    if not out.requires_grad:
        return math.nan
    (jac,) = torch.autograd.grad(out.sum(), [xx], allow_unused=True)
    if jac is None:
        return math.nan
    rows = jac.reshape(jac.shape[0], -1).double().cpu().numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        corr = np.corrcoef(rows)
    if not np.all(np.isfinite(corr)):
        return math.nan
    lam = np.linalg.eigvalsh(corr)
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(-np.sum(np.log(lam + JACOB_COV_K) + 1.0 / (lam + JACOB_COV_K)))


ProxyFn = Callable[[nn.Module, torch.Tensor, torch.Tensor], float]

#: proxy name -> function ``(model, x, y) -> float``
PROXIES: dict[str, ProxyFn] = {
    "synflow": synflow, "snip": snip, "grad_norm": grad_norm, "grasp": grasp, "fisher": fisher,
    "jacob_cov": jacob_cov,
}
DEFAULT_PROXIES: tuple[str, ...] = tuple(PROXIES)
#: baselines of Abdelfattah's tables that may also be asked for as metrics (always reported as costs)
COST_PROXIES: tuple[str, ...] = ("params", "macs")
#: what needs no data set (synflow feeds ones; params and macs count the network)
DATA_FREE: frozenset[str] = frozenset({"synflow", *COST_PROXIES})


def _check_proxies(proxies: Sequence[str] | None) -> list[str]:
    if proxies is None:
        return list(DEFAULT_PROXIES)
    if isinstance(proxies, str) or not isinstance(proxies, Sequence):
        raise TypeError(f"proxy: proxies must be a list of names, e.g. ['synflow'], got {proxies!r}")
    known = [*PROXIES, *COST_PROXIES]
    unknown = [p for p in proxies if p not in known]
    if unknown:
        raise ValueError(f"proxy: unknown proxy name(s) {unknown}; known proxies: {', '.join(known)}")
    if not proxies:
        raise ValueError(f"proxy: proxies is empty; name at least one of {', '.join(known)}")
    if len(set(proxies)) != len(proxies):
        raise ValueError(f"proxy: proxies {list(proxies)} names a proxy twice; list each once")
    return list(proxies)


# ----------------------------------------------------------------------------- the evaluator

def _net_config(space: Space, net: str | Mapping[str, Any] | None) -> dict[str, Any]:
    """The preset (or the overrides on it) a network is built from, to read ``num_classes``."""
    from nasatlas.spaces.build import default_preset, presets
    table = presets(space)
    if net is None or isinstance(net, str):
        return dict(table.get(net or default_preset(space), {}))
    return {**table.get(str(net.get("preset", default_preset(space))), {}), **dict(net)}


class ProxyEvaluator(Evaluator):
    """Zero-cost proxies of the untrained network (see the module docstring for each definition).

    Args:
        proxies: names from :data:`PROXIES` (default: all six), optionally also ``params``/``macs``
            as metrics. Each becomes a metric of that name (``metric_synflow`` in the log).
        net: network preset or overrides (default: the space's standard evaluation network, e.g.
            NB201 C=16, N=5 on 3x32x32).
        data: a classification data set name, or ``{"name": ..., **load_data params}`` (default
            ``"digits"``); images are resized to the network's input and grey images repeated to
            its channels. Its ``seed`` (default 0) drives the split and the choice of the batch.
        batch_size: images in the one mini-batch every architecture is scored on.

    ``setup`` loads the batch once per process: ``batch_size`` training images drawn without
    replacement by a generator seeded with the data seed, the same batch for every architecture
    (nothing is loaded when only ``synflow``/``params``/``macs`` are asked for).
    ``evaluate`` builds the network under :func:`seeded` (the evaluation seed fixes the weights) and
    reports the proxies as metrics, ``params``/``macs`` (as :mod:`cost_eval` defines them) and
    ``proxy_seconds`` as costs. A non-finite proxy makes the result *failed* (see module docstring).
    """

    def __init__(self, proxies: Sequence[str] | None = None, net: str | Mapping[str, Any] | None = None,
                 data: str | Mapping[str, Any] | None = None, batch_size: int = 64) -> None:
        self.proxies = proxies
        self.net = net
        self.data = data
        self.batch_size = batch_size

    def metric_names(self) -> list[str]:
        return _check_proxies(self.proxies)

    def setup(self, space: Space) -> None:
        from nasatlas.spaces.build import input_shape
        super().setup(space)
        self._names = _check_proxies(self.proxies)
        if isinstance(self.batch_size, bool) or not isinstance(self.batch_size, int) or self.batch_size < 2:
            raise ValueError(f"proxy: batch_size={self.batch_size!r}; give an int >= 2 (jacob_cov correlates samples)")
        self._input = input_shape(space, self.net)
        # synflow, params and macs use no data: the data set is loaded only when another proxy needs it
        needs_data = any(n not in DATA_FREE for n in self._names)
        self._batch = self._load_batch(space) if needs_data else None
        self._on: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}

    def _load_batch(self, space: Space) -> tuple[torch.Tensor, torch.Tensor]:
        """The one mini-batch: ``batch_size`` training images, resized to the network's input."""
        from .data import list_datasets, load_data
        spec: dict[str, Any] = {"name": "digits"} if self.data is None else (
            {"name": self.data} if isinstance(self.data, str) else dict(self.data))
        name = spec.pop("name", None)
        if not name:
            raise ValueError("proxy: data needs a name, e.g. {name = \"digits\"}")
        if list_datasets().get(str(name), "classification") != "classification":
            raise ValueError(f"proxy: data {name!r} is not a classification set; give one of "
                             f"{[k for k, v in list_datasets().items() if v == 'classification']}")
        c, h, w = self._input
        given = spec.get("resize")
        pair = None if given is None else tuple(given) if isinstance(given, list | tuple) else (given, given)
        if pair is not None and pair != (h, w):
            raise ValueError(f"proxy: data.resize={given!r} differs from the network's input {h}x{w}; "
                             f"drop resize (images are resized to the network), give the proxy evaluator its own "
                             f"data = \"digits\", or set net.input = [{c}, {pair[0]}, {pair[-1]}]")
        spec["resize"] = (h, w)
        rng = np.random.default_rng(int(spec.pop("seed", 0)))
        data = load_data(name, seed=rng, **spec)
        if not hasattr(data, "y_valid") or data.x_train.ndim != 4 or data.y_train.ndim != 1:
            raise ValueError(f"proxy: data {name!r} is not a classification set")
        x = data.x_train
        if x.shape[1] != c:
            if x.shape[1] != 1:
                raise ValueError(f"proxy: data {name!r} has {x.shape[1]} channels but the network takes {c}")
            x = x.repeat(1, c, 1, 1)  # grey digits -> the 3-channel stems, as the train evaluator does
        num_classes = int(_net_config(space, self.net).get("num_classes", 0))
        if num_classes and data.num_classes > num_classes:
            raise ValueError(f"proxy: data {name!r} has {data.num_classes} classes but the network has "
                             f"{num_classes} outputs; set net.num_classes = {data.num_classes}")
        if self.batch_size > x.shape[0]:
            raise ValueError(f"proxy: batch_size={self.batch_size} exceeds the {x.shape[0]} training images of "
                             f"{name!r}")
        idx = torch.from_numpy(rng.choice(x.shape[0], size=self.batch_size, replace=False))
        return x[idx].contiguous(), data.y_train[idx].contiguous()

    def batch(self, device: str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
        """The ``(images, labels)`` mini-batch on ``device`` (moved once per device); when only data-free
        proxies are asked for, a one-image zero placeholder of the network's input shape."""
        if not hasattr(self, "_names"):
            raise RuntimeError("proxy: call setup(space) before evaluating")
        if device not in self._on:
            if self._batch is None:
                x, y = torch.zeros((1, *self._input)), torch.zeros(1, dtype=torch.long)
            else:
                x, y = self._batch
            self._on[device] = (x.to(device), y.to(device))
        return self._on[device]

    def scores(self, arch: Arch, *, seed: int, device: str = "cpu") -> tuple[dict[str, float], dict[str, float]]:
        """``(proxies, costs)`` of one architecture, in the order asked for; proxies may be NaN or inf.

        The network is built under ``seeded(seed)``; each proxy then runs under the same seeded fork
        (so dropout masks do not depend on which other proxies are asked for) on its own copy.
        ``proxy_seconds`` covers building the network and computing the proxies.
        """
        from nasatlas.spaces.build import build
        from nasatlas.spaces.cost import count_macs, count_params
        dev = resolve_device(device)
        x, y = self.batch(dev)
        t0 = time.perf_counter()
        with seeded(seed, dev):
            model = build(self.space, arch, self.net).to(dev)
        values: dict[str, float] = {}
        for n in self._names:
            if n in PROXIES:
                with seeded(seed, dev):
                    values[n] = PROXIES[n](model, x, y)
        seconds = time.perf_counter() - t0
        aux = tuple(n for n, _ in model.named_children() if "aux" in n.lower())
        costs = {"params": float(count_params(model, exclude_prefixes=aux)),
                 "macs": float(count_macs(model, (1, *self._input))), "proxy_seconds": seconds}
        for n in COST_PROXIES:
            if n in self._names:
                values[n] = costs[n]
        return {n: values[n] for n in self._names}, costs

    def evaluate(self, arch: Arch, *, budget: Mapping[str, Any], seed: int, device: str = "cpu") -> EvalResult:
        values, costs = self.scores(arch, seed=seed, device=device)
        bad = [n for n, v in values.items() if not math.isfinite(v)]
        if bad:
            listed = ", ".join(f"{n}={v!r}" for n, v in values.items())
            return EvalResult.failed(f"proxy: non-finite value of {', '.join(bad)} ({listed})", budget=dict(budget),
                                     costs=costs)
        return EvalResult(status="ok", metrics=values, costs=costs, budget=dict(budget))
