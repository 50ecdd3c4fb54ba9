"""Weight-sharing supernets: the relaxation of a space declaration that one-shot searchers train.

A supernet holds every option of every relaxed decision at once (the "mixed op" of DARTS, Liu et al.
2019, Sec. 2.1, Eq. 1; the multi-path block of ProxylessNAS, Cai et al. 2019, Sec. 3.1) and the
architecture parameters of those decisions. The update rules live in ``searchers/``; everything that
is a property of the declaration lives here:

* **sites and groups.** A *site* is one relaxed decision (an NB201 edge, a DARTS cell edge, a chain
  layer, an Auto-DeepLab trellis node's outgoing moves). Sites that share one row of architecture
  parameters across the network (every NB201 cell shares the 6 edge rows) form a *group*:
  ``supernet.alphas[group]`` is a ``(rows, max_options)`` parameter, ``supernet.options[group][r]``
  names the options of row ``r`` (rows may have fewer options than ``max_options``; the tail is
  masked to ``-inf`` by :meth:`Supernet.probabilities`).
* **mixing.** Every forward pass takes a :data:`Mixing`: per group, one :class:`EdgeMix` per row, the
  option indices to compute and the vector that weighs them. DARTS passes ``softmax(alpha)`` over all
  options; GDAS a straight-through one-hot over one sampled option; ProxylessNAS a binary gate over one
  or two sampled paths; single-path training and subnet scoring pass one option and no weights.
  :meth:`Supernet.mixing_for` gives the single-path mixing of an architecture of the space.
* **derivation.** :meth:`Supernet.derive_row` maps option probabilities to an architecture of the
  space with the space's named rule (:mod:`nasatlas.spaces.derive`).
* **scoring.** :func:`subnet_accuracy` scores an architecture with inherited weights, optionally after
  recalibrating BatchNorm statistics on training batches (SPOS, Guo et al. 2020, Sec. 3.2;
  the supernet's own statistics are restored afterwards).

:func:`relax` builds the supernet of a space; the families with a relaxation are listed in
:data:`RELAXABLE`.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from .space import Space

__all__ = ["EdgeMix", "Mixing", "MixedOp", "Supernet", "relax", "RELAXABLE", "subnet_accuracy",
           "recalibrated_bn", "supernet_accuracy", "dense_mixing", "single_path_mixing", "add_terms", "save_supernet",
           "load_supernet", "CHECKPOINT_FORMAT",
           "check_finite"]


@dataclass(frozen=True)
class EdgeMix:
    """How one site computes in a forward pass.

    Attributes:
        active: option indices to compute (an empty tuple: the site contributes nothing).
        weights: ``(n_options,)`` tensor weighing the active options' outputs, or None to add the
            active options' outputs unweighted (single path: one option, weight 1).
    """

    active: tuple[int, ...]
    weights: torch.Tensor | None = None


Mixing = Mapping[str, Sequence[EdgeMix]]
"""Per group, one :class:`EdgeMix` per row of that group's architecture parameters."""


class MixedOp(nn.Module):
    """All candidate ops of one site; output ``sum_{i in active} w_i * op_i(x)`` (DARTS Eq. 1).

    ``none`` options output zeros: they are never computed, but a weighted ``none`` still scales
    nothing, exactly as ``w * 0`` would (its weight still enters softmax normalisation).
    """

    def __init__(self, ops: Sequence[nn.Module], names: Sequence[str]) -> None:
        super().__init__()
        if len(ops) != len(names):
            raise ValueError(f"MixedOp: {len(ops)} ops but {len(names)} names")
        self.ops = nn.ModuleList(ops)
        self.names = tuple(names)
        self._zero = tuple(n == "none" for n in names)
        self._param_free = tuple(not any(True for _ in op.parameters()) for op in self.ops)
        #: dropout on parameter-free ops' outputs in training mode (P-DARTS, Chen et al. 2019, Sec. 3.3)
        self.op_dropout = 0.0

    def forward(self, x: torch.Tensor, mix: EdgeMix) -> torch.Tensor | None:
        """The mixed output, or None when no active option produces a non-zero output."""
        out: torch.Tensor | None = None
        for i in mix.active:
            if self._zero[i]:
                continue
            h = self.ops[i](x)
            if self.op_dropout > 0.0 and self.training and self._param_free[i]:
                h = nn.functional.dropout(h, self.op_dropout, training=True)
            if mix.weights is not None:
                h = h * mix.weights[i]
            out = h if out is None else out + h
        return out


def add_terms(terms: Sequence[torch.Tensor | None], like: torch.Tensor) -> torch.Tensor:
    """Sum of the non-None terms; zeros shaped like ``like`` when all are None (a node cut off by
    ``none`` edges)."""
    out: torch.Tensor | None = None
    for t in terms:
        if t is not None:
            out = t if out is None else out + t
    return out if out is not None else like.mul(0.0)


class Supernet(nn.Module):
    """Base of every supernet: architecture parameters by group, options, mixing and derivation.

    Subclasses build the network in ``__init__`` (calling :meth:`_init_alphas`), implement
    ``forward(x, mixing)``, :meth:`mixing_for` (the single path of a row) and :meth:`derive_row`.
    """

    space: Space
    #: group -> option names per row
    options: dict[str, list[tuple[str, ...]]]

    def _init_alphas(self, options: Mapping[str, Sequence[Sequence[str]]], generator: torch.Generator | None,
                     scale: float = 1e-3) -> None:
        """Architecture parameters ``scale * N(0, 1)`` (DARTS ``model_search.py`` initialisation)."""
        self.options = {g: [tuple(r) for r in rows] for g, rows in options.items()}
        self.alphas = nn.ParameterDict()
        for g, rows in self.options.items():
            width = max(len(r) for r in rows)
            self.alphas[g] = nn.Parameter(scale * torch.randn(len(rows), width, generator=generator))

    # -- parameters ---------------------------------------------------------------------------
    def arch_parameters(self) -> list[nn.Parameter]:
        """The architecture parameters (alpha, and beta where the space has a network level)."""
        return list(self.alphas.values())

    def weight_parameters(self) -> list[nn.Parameter]:
        """Every parameter that is not an architecture parameter."""
        ids = {id(p) for p in self.arch_parameters()}
        return [p for p in self.parameters() if id(p) not in ids]

    def masked_logits(self, group: str) -> torch.Tensor:
        """``alphas[group]`` with the options a row does not have set to ``-inf``."""
        a = self.alphas[group]
        sizes = [len(r) for r in self.options[group]]
        if all(s == a.shape[1] for s in sizes):
            return a
        mask = torch.tensor([[j >= s for j in range(a.shape[1])] for s in sizes], device=a.device)
        return a.masked_fill(mask, float("-inf"))

    def probabilities(self) -> dict[str, np.ndarray]:
        """Softmax of each group's architecture parameters over each row's options."""
        with torch.no_grad():
            return {g: torch.softmax(self.masked_logits(g), dim=-1).cpu().numpy() for g in self.alphas}

    def alpha_snapshot(self) -> dict[str, list[list[float]]]:
        """The raw architecture parameters as nested lists (JSON-ready), masked options dropped."""
        out: dict[str, list[list[float]]] = {}
        for g, a in self.alphas.items():
            rows = a.detach().cpu().numpy()
            out[g] = [[round(float(v), 6) for v in rows[r, :len(self.options[g][r])]] for r in range(rows.shape[0])]
        return out

    # -- mixing and derivation ------------------------------------------------------------------
    def mixing_for(self, row: np.ndarray) -> Mixing:
        """The single-path mixing of an architecture of the space (subnet with inherited weights)."""
        raise NotImplementedError

    def derive_row(self, probs: Mapping[str, np.ndarray] | None = None) -> np.ndarray:
        """The architecture the option probabilities (default: the current ones) stand for."""
        raise NotImplementedError

    def set_op_dropout(self, p: float) -> None:
        """Dropout rate on the outputs of parameter-free options (skip, pooling) while training."""
        if not 0.0 <= p < 1.0:
            raise ValueError(f"op_dropout={p} must be in [0, 1)")
        for m in self.modules():
            if isinstance(m, MixedOp):
                m.op_dropout = p

    def sample_row(self, rng: np.random.Generator) -> np.ndarray:
        """A uniform architecture over the supernet's paths (single-path training: RS-WS, SPOS)."""
        return self.space.sample(rng, 1)[0]


def dense_mixing(supernet: Supernet, weights: Mapping[str, torch.Tensor] | None = None) -> dict[str, list[EdgeMix]]:
    """Every option of every row, weighed by ``weights[group][row]`` (default softmax of alpha): DARTS."""
    if weights is None:
        weights = {g: torch.softmax(supernet.masked_logits(g), dim=-1) for g in supernet.alphas}
    return {g: [EdgeMix(tuple(range(len(opts))), weights[g][r]) for r, opts in enumerate(rows)]
            for g, rows in supernet.options.items()}


def single_path_mixing(supernet: Supernet, choice: Mapping[str, Sequence[int]]) -> dict[str, list[EdgeMix]]:
    """One option per row (``choice[group][row]``; a negative index: the row contributes nothing)."""
    return {g: [EdgeMix((int(c),) if c >= 0 else ()) for c in choice[g]] for g in supernet.options}


# -- scoring with inherited weights ------------------------------------------------------------------

def _bn_layers(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]


@contextlib.contextmanager
def recalibrated_bn(model: nn.Module, forward: Callable[[torch.Tensor], Any],
                    batches: Sequence[torch.Tensor]) -> Iterator[None]:
    """Within the block, BatchNorm running statistics are re-estimated on ``batches`` for the given
    forward (a cumulative average, ``momentum=None``); on exit the model's own statistics, momenta and
    train/eval mode are restored. This is the BN recalibration of SPOS (Guo et al. 2020, Sec. 3.2)."""
    bns = _bn_layers(model)
    saved = [(m.running_mean.clone() if m.running_mean is not None else None,
              m.running_var.clone() if m.running_var is not None else None,
              m.num_batches_tracked.clone() if m.num_batches_tracked is not None else None, m.momentum)
             for m in bns]
    was_training = model.training
    try:
        for m in bns:
            m.reset_running_stats()
            m.momentum = None
        model.train()
        with torch.no_grad():
            for xb in batches:
                forward(xb)
        model.eval()
        yield
    finally:
        for m, (rm, rv, nbt, mom) in zip(bns, saved):
            if rm is not None and m.running_mean is not None:
                m.running_mean.copy_(rm)
            if rv is not None and m.running_var is not None:
                m.running_var.copy_(rv)
            if nbt is not None and m.num_batches_tracked is not None:
                m.num_batches_tracked.copy_(nbt)
            m.momentum = mom
        model.train(was_training)


def _accuracy(forward: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, y: torch.Tensor,
              batch_size: int) -> float:
    correct = 0
    with torch.no_grad():
        for i in range(0, x.shape[0], batch_size):
            correct += int((forward(x[i:i + batch_size]).argmax(1) == y[i:i + batch_size]).sum())
    return correct / max(1, int(x.shape[0]))


def supernet_accuracy(supernet: Supernet, mixing: Mixing, x: torch.Tensor, y: torch.Tensor,
                      batch_size: int = 256) -> float:
    """Top-1 accuracy of the supernet under ``mixing`` (e.g. DARTS's softmax mixture), eval mode."""
    was = supernet.training
    supernet.eval()
    try:
        return _accuracy(lambda xb: supernet(xb, mixing), x, y, batch_size)
    finally:
        supernet.train(was)


def subnet_accuracy(supernet: Supernet, row: np.ndarray, x: torch.Tensor, y: torch.Tensor, *,
                    calibration: Sequence[torch.Tensor] | None = None, batch_size: int = 256) -> float:
    """Top-1 accuracy of architecture ``row`` with weights inherited from the supernet.

    Without ``calibration`` the supernet's running BN statistics are used as they are; with it, they
    are first re-estimated for this subnet on those training batches (and restored afterwards), the
    evaluation SPOS and the one-shot literature use. The difference between the two is the part of
    the discretisation loss that BN statistics explain.
    """
    mixing = supernet.mixing_for(np.asarray(row, dtype=np.int64))

    def fwd(xb: torch.Tensor) -> torch.Tensor:
        return supernet(xb, mixing)  # type: ignore[no-any-return]

    was = supernet.training
    if calibration is None:
        supernet.eval()
        try:
            return _accuracy(fwd, x, y, batch_size)
        finally:
            supernet.train(was)
    with recalibrated_bn(supernet, fwd, calibration):
        return _accuracy(fwd, x, y, batch_size)


# -- relax --------------------------------------------------------------------------------------------

#: space family -> (module, builder) of its supernet; spaces of other families are not relaxed
RELAXABLE: dict[str, tuple[str, str]] = {
    "nb201": ("nasatlas.spaces.supernet_cells", "NB201Supernet"),
    "darts": ("nasatlas.spaces.supernet_cells", "DartsSupernet"),
    "chain": ("nasatlas.spaces.supernet_chain", "ChainSupernet"),
    "autodeeplab": ("nasatlas.spaces.supernet_autodeeplab", "AutoDeepLabSupernet"),
}

#: why the other families have no relaxation (said in the error)
_NOT_RELAXED = {
    "nb101": "NAS-Bench-101's graph (adjacency with at most 9 edges, 5 of 7 nodes' ops) is not a product of "
             "per-edge options",
    "tf_cell": "NASNet/PNAS/AmoebaNet/ENAS cells pick ordered inputs with replacement and a combine op per block",
    "enas_macro": "the ENAS macro space's skip connections are not relaxed here",
}


def relax(space: Space, net_config: Mapping[str, Any] | None = None, *,
          generator: torch.Generator | None = None) -> Supernet:
    """The weight-sharing supernet of ``space``.

    Args:
        space: a space of a relaxable family (:data:`RELAXABLE`).
        net_config: ``input`` (C, H, W), ``num_classes``, optional ``device`` and the family's size
            settings (NB201: ``C``, ``N``; DARTS: ``C``, ``layers``; chain: ``width_mult``;
            Auto-DeepLab: ``F``, ``layers``).
        generator: seeds the architecture-parameter initialisation (weights use torch's seeded
            default generator, which the runner seeds per run).

    Raises:
        ValueError: for a space without a relaxation, naming the ones that have one.
    """
    import importlib
    fam = str(space.family)
    if fam not in RELAXABLE:
        why = _NOT_RELAXED.get(fam, "no supernet is declared for it")
        raise ValueError(f"space {space.name!r} (family {fam!r}) has no supernet: {why}; relaxable families: "
                         f"{sorted(RELAXABLE)} (spaces nb201, darts, proxylessnas, fbnet, autodeeplab)")
    mod, cls = RELAXABLE[fam]
    builder = getattr(importlib.import_module(mod), cls)
    cfg = dict(net_config or {})
    device = cfg.pop("device", "cpu")
    net: Supernet = builder(space, cfg, generator=generator)
    return net.to(device)


def check_finite(loss: torch.Tensor, what: str) -> None:
    """Raise a clear error on a NaN/inf loss (the runner logs the run as failed)."""
    if not math.isfinite(float(loss.detach())):
        raise FloatingPointError(f"{what} is {float(loss.detach())}: the search diverged (lower the learning rate "
                                 "or the architecture learning rate)")


# -- checkpoints ----------------------------------------------------------------------------------------

CHECKPOINT_FORMAT = "nasatlas.supernet/1"


def save_supernet(supernet: Supernet, path: Any, **meta: Any) -> None:
    """Write a supernet checkpoint: its weights and architecture parameters (``state_dict``), the
    space name, the declaration's parameters and the supernet config, as tensors and plain strings so
    that :func:`load_supernet` reads it with ``torch.load(weights_only=True)``. Atomic (temp + rename)."""
    import json
    import os
    from pathlib import Path
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    cfg = {k: (list(v) if isinstance(v, tuple) else v) for k, v in getattr(supernet, "config", {}).items()}
    blob = {"format": CHECKPOINT_FORMAT, "space": supernet.space.name,
            "space_params": json.dumps(supernet.space.params, sort_keys=True, default=str),
            "config": json.dumps(cfg, sort_keys=True), "meta": json.dumps(meta, sort_keys=True, default=str),
            "state_dict": {k: v.detach().cpu() for k, v in supernet.state_dict().items()}}
    tmp = p.with_name(f".{p.name}.{os.getpid()}.tmp")
    torch.save(blob, tmp)
    os.replace(tmp, p)


def load_supernet(path: Any, space: Space | None = None, device: str = "cpu") -> Supernet:
    """Rebuild a supernet from :func:`save_supernet`'s file (``weights_only=True``: no pickle).

    ``space`` defaults to the registered space the checkpoint names, declared with its parameters.

    Raises:
        ValueError: when the file is not a nasatlas supernet checkpoint or ``space`` differs from it.
    """
    import json
    from pathlib import Path
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"supernet checkpoint {str(p)!r} does not exist; a one-shot study writes them under "
                         "<out>/search/*.pt")
    blob = torch.load(p, map_location="cpu", weights_only=True)
    if not isinstance(blob, dict) or blob.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{str(p)!r} is not a nasatlas supernet checkpoint (format {CHECKPOINT_FORMAT!r})")
    if space is None:
        from .registry import get_space
        space = get_space(str(blob["space"]), **json.loads(str(blob["space_params"])))
    elif space.name != blob["space"]:
        raise ValueError(f"checkpoint {str(p)!r} holds a supernet of space {blob['space']!r}, not {space.name!r}")
    cfg = json.loads(str(blob["config"]))
    if "input" in cfg:
        cfg["input"] = tuple(cfg["input"])
    net = relax(space, {**cfg, "device": "cpu"})
    net.load_state_dict(blob["state_dict"])
    return net.to(device)
