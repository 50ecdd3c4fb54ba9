"""Evaluation networks built from the shared op library (:mod:`nasatlas.spaces.ops`).

* :mod:`nasatlas.spaces.nets.darts_net`: DARTS CIFAR/ImageNet networks (Liu et al., ICLR 2019).
* :mod:`nasatlas.spaces.nets.nb201_net`: the NAS-Bench-201 network (Dong & Yang, ICLR 2020).

Names are resolved lazily, so importing this package does not import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS: dict[str, str] = {
    "Genotype": "darts_net",
    "genotype_from_dict": "darts_net",
    "DartsCell": "darts_net",
    "DartsCifarNetwork": "darts_net",
    "DartsImageNetNetwork": "darts_net",
    "NB201Network": "nb201_net",
    "NB201Cell": "nb201_net",
    "NB201_OPS": "nb201_net",
    "NB201_EDGES": "nb201_net",
    "parse_nb201_string": "nb201_net",
    "nb201_string": "nb201_net",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)


def __dir__() -> list[str]:
    return __all__
