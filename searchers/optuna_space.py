"""A re-parametrisation of any space into Optuna distributions in which every point is valid.

Optuna's samplers propose values for named distributions independently of any validity rule, so
the space is presented to them in coordinates where no rule exists (no rejection, no repair):

* a *product* block (every combination of options valid: NB201 edges, chain layers, a DARTS
  cell, whose node input pair is already one categorical decision ``inputs`` with every valid
  pair as an option; see ``spaces/cell.py``) becomes one ``CategoricalDistribution`` per
  decision, named by the decision and labelled by its options;
* a *constrained* block (the Auto-DeepLab trellis path, the NAS-Bench-101 graph) becomes one
  ``IntDistribution`` over an index: for a block that enumerates its isomorphism classes
  (NB101's ``unique_ranks``) the index runs over the classes and decodes to each class's
  canonical member; otherwise it is the block's own ``rank``/``unrank`` (the trellis's dynamic
  programme). A block with neither raises ``ValueError`` naming ``unrank``.

The index of a constrained block is an ordinal stand-in for an unordered set: TPE and GP treat
neighbouring indices as similar, which they are only partly (the trellis ranks paths
lexicographically, so nearby indices share a prefix). This is a valid but weak model of such a
block; the product blocks keep their exact categorical structure.

Used by the ``optuna`` searcher and by BOHB's per-budget TPE models (``hyperband.py``).
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
from nasatlas.spaces import Space

from .capabilities import can_unrank

__all__ = ["OptunaSpace", "quiet_optuna", "MAX_INDEX"]

#: largest index an ``IntDistribution`` holds exactly (Optuna stores values as float64)
MAX_INDEX = 2**53


@contextlib.contextmanager
def quiet_optuna() -> Iterator[None]:
    """Silence Optuna's per-trial INFO logs and experimental warnings for the duration of a call,
    restoring the previous settings after (scoped, like ``torch.random.fork_rng``)."""
    import optuna

    level = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            yield
    finally:
        optuna.logging.set_verbosity(level)


class OptunaSpace:
    """The distributions of a space's valid re-parametrisation, with ``encode``/``decode``.

    Args:
        space: the search space.
        who: the searcher's name, for error messages.

    Raises:
        ValueError: a constrained block cannot unrank, or its index does not fit a float64.
    """

    def __init__(self, space: Space, who: str) -> None:
        from optuna.distributions import BaseDistribution, CategoricalDistribution, IntDistribution

        self.space = space
        self.distributions: dict[str, BaseDistribution] = {}
        self._plan: list[tuple[str, slice, Any, np.ndarray | None]] = []
        self._label_index: dict[str, dict[str, int]] = {}
        start = 0
        for p in space.primitives:
            sl = slice(start, start + p.width)
            start += p.width
            if p.is_product:
                for d in p.decisions:
                    self.distributions[d.name] = CategoricalDistribution(d.choices)
                    self._label_index[d.name] = {c: i for i, c in enumerate(d.choices)}
                self._plan.append(("product", sl, p, None))
                continue
            if not can_unrank(p):
                raise ValueError(f"{who}: block {p.name!r} of space {space.name!r} is not a product and cannot "
                                 "unrank, so it has no valid index re-parametrisation; the searcher requires the "
                                 "capability 'unrank' (give the block rank/unrank, or use 'random')")
            unique = p.unique_ranks() if hasattr(p, "unique_ranks") and hasattr(p, "canonical_ranks") else None
            size = len(unique) if unique is not None else p.cardinality()
            if size > MAX_INDEX:
                raise ValueError(f"{who}: block {p.name!r} has {size:,} architectures, more than 2**53 indices an "
                                 "Optuna IntDistribution represents exactly; split the block or use another searcher")
            name = f"{p.name}/index"
            if name in self.distributions or any(d.name == name for d in space.decisions):
                raise ValueError(f"{who}: the index parameter name {name!r} clashes with a decision name")
            self.distributions[name] = IntDistribution(0, int(size) - 1)
            self._plan.append(("index", sl, p, unique))

    def encode(self, row: np.ndarray | tuple[int, ...]) -> dict[str, Any]:
        """Optuna params of an architecture (a constrained block maps to its (class) index)."""
        r = np.asarray(row, dtype=np.int64)
        params: dict[str, Any] = {}
        for kind, sl, p, unique in self._plan:
            block = r[sl]
            if kind == "product":
                for d, v in zip(p.decisions, block.tolist()):
                    params[d.name] = d.choices[v]
            elif unique is not None:
                canon = int(p.canonical_ranks(block[None, :])[0])
                params[f"{p.name}/index"] = int(np.searchsorted(unique, canon))
            else:
                params[f"{p.name}/index"] = int(p.rank(block[None, :])[0])
        return params

    def decode(self, params: Mapping[str, Any]) -> np.ndarray:
        """The architecture row of a point (always valid)."""
        parts: list[np.ndarray] = []
        for kind, _sl, p, unique in self._plan:
            if kind == "product":
                parts.append(np.asarray([self._label_index[d.name][params[d.name]] for d in p.decisions],
                                        dtype=np.int64))
            else:
                idx = int(params[f"{p.name}/index"])
                rank = int(unique[idx]) if unique is not None else idx
                parts.append(np.asarray(p.unrank([rank])[0], dtype=np.int64))
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
