"""From an architecture to a PyTorch network, and its cost counted one way.

``build(space, arch, net)`` turns any architecture of a built-in space into the evaluation network of
its paper's macro-architecture; ``net`` names a preset of that family (or a dict of overrides on the
default preset). ``cost_report`` counts, everywhere the same way:

* ``params`` = sum of ``numel`` over ``model.parameters()`` without the auxiliary head, and
  ``params_with_aux`` with it (``None`` where the network has no auxiliary head);
* ``macs`` = multiply-accumulates of Conv2d and Linear layers at batch 1 in eval mode (auxiliary
  heads not run), counted with ``torch.utils.flop_counter.FlopCounterMode`` (2 FLOPs per
  multiply-add, so MACs = FLOPs / 2); BN, activations, pooling and additions are not counted.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from .decisions import Arch
from .space import Space

__all__ = ["build", "cost_report", "presets", "default_preset", "PRESETS", "arch_row"]

#: family -> preset name -> keyword parameters (``input`` is the (C, H, W) the preset expects)
PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "nb201": {
        "cifar": {"C": 16, "N": 5, "num_classes": 10, "input": (3, 32, 32)},
        "tiny": {"C": 4, "N": 1, "num_classes": 10, "input": (3, 16, 16)},
    },
    "darts": {
        "cifar": {"C": 36, "layers": 20, "num_classes": 10, "auxiliary": True, "input": (3, 32, 32)},
        "imagenet": {"C": 48, "layers": 14, "num_classes": 1000, "auxiliary": True, "input": (3, 224, 224)},
        "tiny": {"C": 4, "layers": 3, "num_classes": 10, "auxiliary": False, "input": (3, 16, 16)},
    },
    "tf_cell": {
        "mobile": {"num_cells": None, "num_conv_filters": None, "stem": "imagenet", "num_classes": 1000,
                   "input": (3, 224, 224)},
        "cifar": {"num_cells": 18, "num_conv_filters": 32, "stem": "cifar", "num_classes": 10, "auxiliary": True,
                  "input": (3, 32, 32)},
        "tiny": {"num_cells": 3, "num_conv_filters": 4, "stem": "cifar", "num_classes": 10, "input": (3, 16, 16)},
    },
    "chain": {
        "imagenet": {"width_mult": 1.0, "num_classes": 1000, "input": (3, 224, 224)},
        "tiny": {"width_mult": 0.25, "num_classes": 10, "input": (3, 32, 32)},
    },
    "autodeeplab": {
        "cityscapes": {"F": 20, "num_classes": 19, "input": (3, 1025, 2049)},
        "tiny": {"F": 2, "num_classes": 4, "aspp_depth": 8, "low_level_channels": 4, "decoder_channels": 8,
                 "input": (3, 65, 65)},
    },
    "enas_macro": {
        "cifar": {"C": 36, "num_classes": 10, "input": (3, 32, 32)},
        "tiny": {"C": 4, "num_classes": 10, "input": (3, 16, 16)},
    },
    "nb101": {
        "cifar": {"stem_channels": 128, "num_stacks": 3, "num_cells_per_stack": 3, "num_classes": 10,
                  "input": (3, 32, 32)},
        "tiny": {"stem_channels": 8, "num_stacks": 2, "num_cells_per_stack": 1, "num_classes": 10,
                 "input": (3, 16, 16)},
    },
}

#: per TF-convention space: the published mobile network's cell count and filters
_TF_MOBILE = {"nasnet": (12, 44), "amoebanet": (12, 50), "pnas": (9, 54), "enas_micro": (15, 36)}


def presets(space: Space) -> dict[str, dict[str, Any]]:
    """The network presets of a space's family."""
    if space.family not in PRESETS:
        raise ValueError(f"space {space.name!r} has no network builder (family {space.family!r}); "
                         f"families with builders: {sorted(PRESETS)}")
    return PRESETS[space.family]


def default_preset(space: Space) -> str:
    """The paper's standard evaluation network of the space."""
    return next(iter(presets(space)))


#: keys a family's builder reads beyond those its presets set
_EXTRA_KEYS: dict[str, tuple[str, ...]] = {
    "darts": ("drop_path_prob",), "nb101": ("bn_momentum",), "tf_cell": ("auxiliary",),
}
#: integer keys that must be >= 1
_POSITIVE_INT_KEYS = ("C", "N", "layers", "num_classes", "num_cells", "num_conv_filters", "F", "aspp_depth",
                      "low_level_channels", "decoder_channels", "stem_channels", "num_stacks",
                      "num_cells_per_stack")


def _resolve(space: Space, net: str | Mapping[str, Any] | None) -> dict[str, Any]:
    """The full keyword set of a preset name or an override dict, validated field by field."""
    table = presets(space)
    if net is None:
        net = default_preset(space)
    if isinstance(net, str):
        if net not in table:
            raise ValueError(f"space {space.name!r}: unknown net preset {net!r}; presets: {sorted(table)}")
        return dict(table[net])
    preset = str(net.get("preset", default_preset(space)))
    if preset not in table:
        raise ValueError(f"space {space.name!r}: net.preset={preset!r} is unknown; presets: {sorted(table)}")
    cfg = dict(table[preset])
    allowed = {k for p in table.values() for k in p} | set(_EXTRA_KEYS.get(str(space.family), ()))
    for k, v in net.items():
        if k == "preset":
            continue
        if k not in allowed:
            raise ValueError(f"space {space.name!r}: net.{k} is not a setting of the {space.family} network; "
                             f"settings: {sorted(allowed)}")
        if k in _POSITIVE_INT_KEYS and v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
            raise ValueError(f"space {space.name!r}: net.{k}={v!r} must be an integer >= 1")
        if k == "input" and (len(v) != 3 or any(not isinstance(x, int) or x < 1 for x in v)):
            raise ValueError(f"space {space.name!r}: net.input={v!r} must be three positive integers (C, H, W)")
        cfg[k] = tuple(v) if k == "input" else v
    return cfg


def arch_row(space: Space, arch: Arch | np.ndarray | str) -> np.ndarray:
    """Decision indices of an architecture given as Arch, row or string (validated)."""
    if isinstance(arch, str):
        arch = space.from_str(arch)
    row = np.asarray(arch.indices if isinstance(arch, Arch) else arch, dtype=np.int64)
    if isinstance(arch, Arch) and arch.space != space.name:
        raise ValueError(f"architecture of space {arch.space!r} given to space {space.name!r}")
    space.validate(row)
    return row


def _block_values(space: Space, row: np.ndarray) -> dict[str, Any]:
    out: dict[str, Any] = {}
    start = 0
    for p in space.primitives:
        v = p.to_value(row[start:start + p.width])
        start += p.width
        if isinstance(v, dict):
            out.update(v)
        else:
            out[p.name] = v
    return out


def _nb201(space: Space, row: np.ndarray, cfg: dict[str, Any]) -> Any:
    from .nets.nb201_net import NB201Network
    p = space.primitives[0]
    edges = [p.decisions[j].choices[int(v)] for j, v in enumerate(row)]
    return NB201Network(edges, C=cfg["C"], N=cfg["N"], num_classes=cfg["num_classes"])


def _darts(space: Space, row: np.ndarray, cfg: dict[str, Any]) -> Any:
    from .nets.darts_net import DartsCifarNetwork, DartsImageNetNetwork, Genotype
    v = _block_values(space, row)
    g = Genotype(normal=list(v["normal"]), normal_concat=list(v["normal_concat"]), reduce=list(v["reduce"]),
                 reduce_concat=list(v["reduce_concat"]))
    cls = DartsImageNetNetwork if cfg["input"][1] >= 128 else DartsCifarNetwork
    h = min(int(cfg["input"][1]), int(cfg["input"][2]))
    if cls is DartsCifarNetwork and cfg.get("auxiliary") and -(-h // 4) < 8:
        # the CIFAR auxiliary head pools the 2/3-depth map (input / 4) with a 5x5/3 window, then a 2x2 conv
        raise ValueError(f"space {space.name!r}: net.auxiliary=True needs an input of at least 29x29 (the "
                         f"auxiliary head reads an 8x8 map at 2/3 depth); got net.input={tuple(cfg['input'])}: "
                         "set auxiliary = false or use a larger input")
    return cls(g, C=cfg["C"], num_classes=cfg["num_classes"], layers=cfg["layers"],
               auxiliary=bool(cfg.get("auxiliary", False)), drop_path_prob=float(cfg.get("drop_path_prob", 0.0)))


def _tf_cells(space: Space, row: np.ndarray) -> tuple[Any, Any]:
    from .nets.tf_cell_net import TFCellSpec
    v = _block_values(space, row)
    names = [p.name for p in space.primitives]
    specs = [TFCellSpec.from_darts(v[n], v[f"{n}_concat"], v.get(f"{n}_combine", "add")) for n in names]
    return specs[0], (specs[1] if len(specs) > 1 else None)


def _tf_cell(space: Space, row: np.ndarray, cfg: dict[str, Any]) -> Any:
    from .nets.tf_cell_net import TFCellNetwork
    normal, reduce = _tf_cells(space, row)
    cells, filters = _TF_MOBILE.get(space.name, (12, 44))
    n = cfg.get("num_cells") or cells
    f = cfg.get("num_conv_filters") or filters
    kw: dict[str, Any] = {"num_cells": n, "num_conv_filters": f, "stem": cfg["stem"],
                          "num_classes": cfg["num_classes"], "auxiliary": bool(cfg.get("auxiliary", False)),
                          "image_size": cfg["input"][1]}
    if cfg["stem"] == "imagenet":
        kw["stem_filters"] = 32
    if space.name == "pnas":
        kw.update(reduction_layout="replace", skip_reduction_layer_input=True)
    if space.name == "enas_micro":
        pool = n // 3
        kw.update(num_cells=n + 2, reduction_indices=[pool, 2 * pool + 1], reduction_layout="replace",
                  skip_reduction_layer_input=True, style="enas", stem_filters=3 * f)
    return TFCellNetwork(normal, reduce, **kw)


def _chain(space: Space, row: np.ndarray, cfg: dict[str, Any]) -> Any:
    from .nets import chain_net as cn
    p = space.primitives[0]
    labels = [p.decisions[j].choices[int(v)] for j, v in enumerate(row)]
    wm, nc = float(cfg.get("width_mult", 1.0)), int(cfg["num_classes"])
    if space.name == "proxylessnas":
        return cn.proxylessnas_chain(labels, width_mult=wm, num_classes=nc)
    if space.name == "fbnet":
        return cn.fbnet_chain(labels, num_classes=nc, width_mult=wm)
    if space.name == "mnasnet":
        from .catalog import MNASNET_BASE
        base = [cn.MnasBaseBlock(c, n, s) for n, c, s in MNASNET_BASE]
        k = 6  # decisions per MnasNet block: conv, kernel, se, skip, filters, layers
        blocks = ["_".join(labels[i:i + k]) for i in range(0, len(labels), k)]
        if wm != 1.0:
            base = [cn.MnasBaseBlock(max(8, int(round(b.filters * wm))), b.layers, b.stride) for b in base]
        return cn.mnasnet_chain(blocks, num_blocks=len(blocks), num_classes=nc, base=base[:len(blocks)],
                                first_conv=max(8, int(round(32 * wm))), last_channels=max(16, int(round(1280 * wm))))
    if space.name == "mobilenet":
        return _mobilenet_chain(space, labels, wm, nc)
    raise ValueError(f"space {space.name!r}: no chain builder; chain builders: proxylessnas, fbnet, mnasnet, mobilenet")


def _mobilenet_chain(space: Space, labels: list[str], wm: float, nc: int) -> Any:
    from .nets import chain_net as cn
    from .ops_mobile import BlockSpec, make_divisible
    layers = space.primitives[0].layers  # type: ignore[attr-defined]
    c_in = make_divisible(32 * wm, 8)
    first = cn.ConvSpec(3, c_in, kernel=3, stride=2)
    first_block = BlockSpec(type="ds", C_in=c_in, C_out=make_divisible(16 * wm, 8), kernel=3, stride=1,
                            expand_ratio=1, act="relu6")
    blocks = [first_block]
    c_in = first_block.C_out
    for layer, lab in zip(layers, labels):
        c_out = make_divisible(layer.channels * wm, 8)
        if lab == "zero":
            continue
        k = int(lab.split("_k")[1].split("_")[0])
        e = int(lab.split("_e")[1])
        blocks.append(BlockSpec(type="ir", C_in=c_in, C_out=c_out, kernel=k, stride=layer.stride, expand_ratio=e,
                                act="relu6"))
        c_in = c_out
    last = make_divisible(1280 * max(1.0, wm), 8)
    return cn.ChainNetwork(blocks, first, cn.ConvSpec(c_in, last, kernel=1, stride=1), num_classes=nc)


def _autodeeplab(space: Space, row: np.ndarray, cfg: dict[str, Any]) -> Any:
    from .nets.autodeeplab_net import AutoDeepLab
    from .nets.tf_cell_net import TFCellSpec
    v = _block_values(space, row)
    path = space.primitive("path")
    levels = [path.downsample.index(d) for d in v["path"]]  # type: ignore[attr-defined]
    cell = TFCellSpec.from_darts(v["cell"], v["cell_concat"])
    kw = {k: cfg[k] for k in ("aspp_depth", "low_level_channels", "decoder_channels") if k in cfg}
    return AutoDeepLab(levels, cell, F=cfg["F"], num_classes=cfg["num_classes"], **kw)


def _enas_macro(space: Space, row: np.ndarray, cfg: dict[str, Any]) -> Any:
    from .nets.enas_macro_net import ENASMacroNetwork, parse_enas_macro_arc
    n_layers = len(space.primitives[0].layers)  # type: ignore[attr-defined]
    ops, skips = parse_enas_macro_arc(" ".join(str(int(x)) for x in row), n_layers)
    return ENASMacroNetwork(ops, skips, C=cfg["C"], num_classes=cfg["num_classes"])


def _nb101(space: Space, row: np.ndarray, cfg: dict[str, Any]) -> Any:
    from .nets.nb101_net import NB101Network, prune
    matrix, ops = space.primitives[0].spec(row)  # type: ignore[attr-defined]
    matrix, ops = prune(matrix, ops)
    return NB101Network(matrix, ops, stem_channels=cfg["stem_channels"], num_stacks=cfg["num_stacks"],
                        num_cells_per_stack=cfg["num_cells_per_stack"], num_classes=cfg["num_classes"],
                        bn_momentum=float(cfg.get("bn_momentum", 0.003)))


_BUILDERS: dict[str, Callable[[Space, np.ndarray, dict[str, Any]], Any]] = {
    "nb201": _nb201, "darts": _darts, "tf_cell": _tf_cell, "chain": _chain, "autodeeplab": _autodeeplab,
    "enas_macro": _enas_macro, "nb101": _nb101,
}


def build(space: Space, arch: Arch | np.ndarray | str, net: str | Mapping[str, Any] | None = None) -> Any:
    """The evaluation network (a ``torch.nn.Module``) of an architecture.

    Args:
        space: the space the architecture belongs to.
        arch: an :class:`Arch`, a row of decision indices, or the architecture string.
        net: a preset name of the space's family (default: the paper's standard evaluation network),
            or a dict of overrides, optionally with ``preset``.
    """
    cfg = _resolve(space, net)
    row = arch_row(space, arch)
    return _BUILDERS[space.family](space, row, cfg)  # type: ignore[index]


def input_shape(space: Space, net: str | Mapping[str, Any] | None = None) -> tuple[int, int, int]:
    """The (C, H, W) input of a preset."""
    c, h, w = _resolve(space, net)["input"]
    return int(c), int(h), int(w)


def cost_report(space: Space, arch: Arch | np.ndarray | str, net: str | Mapping[str, Any] | None = None,
                macs: bool = True) -> dict[str, Any]:
    """``params``, ``params_with_aux`` (None without an auxiliary head), ``macs`` and ``input``."""
    from .cost import count_macs, count_params
    cfg = _resolve(space, net)
    model = build(space, arch, cfg)
    aux_names = tuple(n for n, m in model.named_children() if "aux" in n.lower() and m is not None)
    params = count_params(model, exclude_prefixes=aux_names)
    total = count_params(model)
    params_with_aux = total if aux_names and total > params else None
    shape = tuple(int(x) for x in cfg["input"])
    out: dict[str, Any] = {"space": space.name, "arch": space.to_str(arch_row(space, arch)),
                           "net": {k: v for k, v in cfg.items() if k != "input"},
                           "params": params, "params_with_aux": params_with_aux,
                           "macs": count_macs(model, (1, *shape)) if macs else None, "input": list(shape),
                           "definition": "params: sum of numel over parameters (aux head excluded); macs: Conv2d "
                                         "+ Linear multiply-accumulates, batch 1, eval mode, aux head not run"}
    return out
