"""The zoo: published architectures as members of registered spaces, rebuilt by nasatlas's builders.

Each entry of ``zoo.json`` (package data) names a registered space (with its parameters), the architecture as
that space's string (``space.from_str`` accepts it), the network preset of the paper's evaluation (a
:data:`~nasatlas.spaces.build.PRESETS` name or overrides), the input size, the paper's figures, the source of
the architecture and notes. Networks are built by :func:`~nasatlas.spaces.build.build`; two released chain
networks have one macro-skeleton setting the presets do not carry, passed to the same template function:

* ProxylessNAS-Mobile (Cai, Zhu & Han, ICLR 2019; ``proxyless_mobile.config``): first stage 32 channels, not 24
  (``skeleton.stage_widths`` -> :func:`~nasatlas.spaces.nets.chain_net.proxylessnas_chain` ``stages``);
* FBNet-A (Wu et al., CVPR 2019, table 1 / mobile-vision ``fbnet_a``): feature mix 1504, not 1984
  (``skeleton.last_channels`` -> :func:`~nasatlas.spaces.nets.chain_net.fbnet_chain`).

Counts follow :func:`~nasatlas.spaces.build.cost_report`'s definitions: ``params`` without the auxiliary
head, ``params_with_aux`` with it (None without one), ``macs`` = Conv2d + Linear multiply-accumulates at batch
1 in eval mode. Counting builds on the ``meta`` device (shapes only), so full-size Auto-DeepLab is cheap.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from .build import _resolve, arch_row, build
from .registry import get_space
from .space import Space

__all__ = ["ZooEntry", "get_zoo_entry", "list_zoo", "zoo_space", "build_zoo", "zoo_cost", "export_zoo"]


@dataclass(frozen=True)
class ZooEntry:
    """One published architecture: where it lives (space + arch), how it is evaluated (net + input), sources."""

    name: str
    space: str
    arch: str
    net: str | dict[str, Any]
    input: tuple[int, int, int]
    task: str
    source: str
    notes: str
    paper: dict[str, Any]
    reference: dict[str, Any] | None = None
    space_params: dict[str, Any] = field(default_factory=dict)
    skeleton: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready copy (``input`` as a list)."""
        return {"name": self.name, "space": self.space, "space_params": dict(self.space_params), "arch": self.arch,
                "net": self.net, "skeleton": dict(self.skeleton), "input": list(self.input), "task": self.task,
                "paper": dict(self.paper), "reference": self.reference, "source": self.source, "notes": self.notes}


_SKELETON_KEYS = {"proxylessnas": ("stage_widths",), "fbnet": ("last_channels",)}


@lru_cache(maxsize=1)
def _entries() -> dict[str, ZooEntry]:
    text = resources.files(__package__).joinpath("zoo.json").read_text()
    raw = json.loads(text)["entries"]
    out = {}
    for name, d in raw.items():
        out[name] = ZooEntry(name=name, space=d["space"], arch=d["arch"], net=d["net"], input=tuple(d["input"]),
                             task=d["task"], source=d["source"], notes=d["notes"], paper=d["paper"],
                             reference=d.get("reference"), space_params=d.get("space_params", {}),
                             skeleton=d.get("skeleton", {}))
    return out


def list_zoo() -> list[str]:
    """Names of every zoo entry, in the order of ``zoo.json``."""
    return list(_entries())


def get_zoo_entry(name: str) -> ZooEntry:
    """The entry called ``name``; an unknown name raises ``ValueError`` listing the known ones."""
    entries = _entries()
    if name not in entries:
        raise ValueError(f"unknown zoo entry {name!r}; known entries: {', '.join(entries)}")
    return entries[name]


def zoo_space(name: str) -> Space:
    """The registered space the entry's architecture belongs to (with the entry's space parameters)."""
    e = get_zoo_entry(name)
    return get_space(e.space, **e.space_params)


def _net_config(e: ZooEntry, net: str | Mapping[str, Any] | None) -> str | dict[str, Any]:
    if net is None:
        return e.net if isinstance(e.net, str) else dict(e.net)
    return net if isinstance(net, str) else dict(net)


def _skeleton_chain(space: Space, row: Any, skeleton: Mapping[str, Any], cfg: Mapping[str, Any]) -> Any:
    """The chain template of ``space`` with a macro-skeleton setting the build() presets lack."""
    from .nets import chain_net as cn
    allowed = _SKELETON_KEYS.get(space.name, ())
    unknown = sorted(set(skeleton) - set(allowed))
    if unknown:
        raise ValueError(f"zoo skeleton keys {unknown} are not settings of the {space.name!r} template; "
                         f"allowed: {list(allowed)}")
    p = space.primitives[0]
    labels = [p.decisions[j].choices[int(v)] for j, v in enumerate(row)]
    wm, nc = float(cfg.get("width_mult", 1.0)), int(cfg["num_classes"])
    if space.name == "proxylessnas":
        widths = list(skeleton["stage_widths"])
        base = cn.PROXYLESSNAS_STAGES
        if len(widths) != len(base):
            raise ValueError(f"skeleton.stage_widths has {len(widths)} widths; the ProxylessNAS template has "
                             f"{len(base)} stages")
        stages = [cn.StageSpec(int(w), s.depth, s.stride) for w, s in zip(widths, base)]
        return cn.proxylessnas_chain(labels, width_mult=wm, num_classes=nc, stages=stages)
    return cn.fbnet_chain(labels, num_classes=nc, width_mult=wm, last_channels=int(skeleton["last_channels"]))


def build_zoo(name: str, net: str | Mapping[str, Any] | None = None) -> Any:
    """The network (``torch.nn.Module``) of a zoo entry, at its paper's preset unless ``net`` overrides it.

    Weights are PyTorch's default initialisation (no trained weights ship with nasatlas); seed with
    ``torch.manual_seed`` first for a reproducible module.
    """
    e = get_zoo_entry(name)
    space = zoo_space(name)
    cfg = _net_config(e, net)
    if not e.skeleton:
        return build(space, e.arch, cfg)
    return _skeleton_chain(space, arch_row(space, e.arch), e.skeleton, _resolve(space, cfg))


def zoo_cost(name: str, macs: bool = True) -> dict[str, Any]:
    """Cost of a zoo entry at its paper's preset and input size.

    Keys: ``name``, ``space``, ``arch``, ``net``, ``params``, ``params_with_aux`` (None without an auxiliary
    head), ``macs`` (None when ``macs=False``), ``input`` [C, H, W], ``task``, ``paper``, ``reference``,
    ``source``, ``notes``, ``definition``. Built on the ``meta`` device: counts need shapes only.
    """
    import torch

    from .cost import count_macs, count_params
    e = get_zoo_entry(name)
    with torch.device("meta"):
        model = build_zoo(name)
    aux = tuple(n for n, m in model.named_children() if "aux" in n.lower() and m is not None)
    params = count_params(model, exclude_prefixes=aux)
    total = count_params(model)
    return {"name": e.name, "space": e.space, "arch": e.arch, "net": e.net, "params": params,
            "params_with_aux": total if aux and total > params else None,
            "macs": count_macs(model, (1, *e.input)) if macs else None, "input": list(e.input), "task": e.task,
            "paper": dict(e.paper), "reference": e.reference, "source": e.source, "notes": e.notes,
            "definition": "params: sum of numel over parameters (aux head excluded); macs: Conv2d + Linear "
                          "multiply-accumulates, batch 1, eval mode, aux head not run"}


def _eval_wrapper(model: Any) -> Any:
    """A module whose forward returns the first output only (TF-cell nets return ``(logits, None)``)."""
    from torch import nn

    class ZooEvalNet(nn.Module):
        def __init__(self, net: nn.Module) -> None:
            super().__init__()
            self.net = net

        def forward(self, x: Any) -> Any:
            out = self.net(x)
            return out[0] if isinstance(out, tuple) else out

    return ZooEvalNet(model)


def export_zoo(name: str, path: str | Path, input_shape: Sequence[int] | None = None, seed: int = 0,
               fmt: str = "torchscript") -> Path:
    """Write the entry's network in eval mode to ``path``, loadable with PyTorch alone (no nasatlas import).

    ``fmt="torchscript"`` (default): ``torch.jit.trace``, load with ``torch.jit.load(path)``; fast for every
    entry (torch 2.13 marks ``torch.jit`` deprecated but still ships it). ``fmt="export"``: ``torch.export``,
    load with ``torch.export.load(path).module()``; exporting and loading take seconds to a minute per entry
    on 2 CPU cores. Traced/exported at batch 1 and the paper's input size (or ``input_shape`` = (C, H, W));
    weights are the default initialisation under ``torch.manual_seed(seed)``. Shapes computed from Python
    integers (e.g. Auto-DeepLab's decoder sizes) are fixed to that input size.
    """
    import torch
    if fmt not in ("torchscript", "export"):
        raise ValueError(f"fmt={fmt!r}; allowed: 'torchscript' (torch.jit.load) or 'export' (torch.export.load)")
    get_zoo_entry(name)
    shape = tuple(int(x) for x in (input_shape if input_shape is not None else get_zoo_entry(name).input))
    if len(shape) != 3 or any(x < 1 for x in shape):
        raise ValueError(f"input_shape={list(shape)} must be three positive integers (C, H, W)")
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = _eval_wrapper(build_zoo(name)).eval()
        x = torch.randn(1, *shape)
    out = Path(path)
    if fmt == "export":
        torch.export.save(torch.export.export(model, (x,)), str(out))
        return out
    with torch.no_grad(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning, message=r".*torch\.jit")
        traced = torch.jit.trace(model, x, check_trace=False)
    traced.save(str(out))
    return out
