"""Random-largest: of ``k`` uniform samples, propose the one with the most parameters (or MACs).

A controlled baseline for density studies: it asks how far model size alone goes, with no
training in the choice. No single paper defines it; it is random search (Li & Talwalkar 2019,
Sec. 3, the ``k = 1`` case) with the candidates ranked by the size measures that zero-cost proxy
studies use as their baselines (parameter count and FLOPs: Abdelfattah et al., "Zero-Cost Proxies
for Lightweight NAS", ICLR 2021; Krishnakumar et al., "NAS-Bench-Suite-Zero", NeurIPS 2022
Datasets and Benchmarks).

Counts come from :func:`nasatlas.spaces.build.cost_report` on the ``net`` preset (the space's
default evaluation network when None), the same definition of params and MACs used everywhere in
nasatlas, and are cached per architecture string. Ties go to the first sample drawn. Results do not
change the choice; told values are only checked (failed results are ignored, a non-finite value
raises).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from nasatlas.results import EvalResult

from ._common import DEDUPE, Dedupe, check_choice, check_int, check_requires
from .base import BlackBoxSearcher, Proposal, objective_value, rng_state, set_rng_state

__all__ = ["RandomLargest"]


class RandomLargest(BlackBoxSearcher):
    """The largest (by params or MACs) of ``k`` uniform random architectures.

    Args:
        k: samples per proposal (``k = 1`` is random search).
        by: ``"params"`` or ``"macs"``.
        net: the network preset (or override dict) whose cost is counted; None: the space's default.
        dedupe: ``"string"`` (default), ``"canonical"`` or ``"none"``: candidates are drawn among
            architectures not yet proposed under the policy.
        max_tries: draws per candidate before declaring the space exhausted (dedupe only).
    """

    requires = ("builder",)

    def __init__(self, k: int = 10, by: str = "params", net: str | Mapping[str, Any] | None = None,
                 dedupe: str = "string", max_tries: int = 10_000) -> None:
        self.k = k
        self.by = by
        self.net = net
        self.dedupe = dedupe
        self.max_tries = max_tries

    def _setup(self) -> None:
        check_requires(self.space, self.requires, "random_largest")
        check_int("random_largest", "k", self.k, 1)
        check_int("random_largest", "max_tries", self.max_tries, 1)
        check_choice("random_largest", "by", self.by, ("params", "macs"))
        check_choice("random_largest", "dedupe", self.dedupe, DEDUPE)
        from nasatlas.spaces.build import presets
        table = presets(self.space)
        if isinstance(self.net, str) and self.net not in table:
            raise ValueError(f"random_largest: net={self.net!r} is not a preset of space {self.space.name!r}; "
                             f"presets: {sorted(table)}")
        if self.net is not None and not isinstance(self.net, (str, Mapping)):
            raise ValueError(f"random_largest: net={self.net!r}; give a preset name, an override dict or None")
        self._dedupe = Dedupe(self.space, self.dedupe)
        #: architecture string -> count (params or MACs of the ``net`` network)
        self.counts: dict[str, int] = {}

    def count(self, row: np.ndarray) -> int:
        """The row's params or MACs, counted once per architecture string."""
        key = self.space.to_str(row)
        c = self.counts.get(key)
        if c is None:
            from nasatlas.spaces.build import cost_report
            c = int(cost_report(self.space, row, self.net, macs=self.by == "macs")[self.by])
            self.counts[key] = c
        return c

    def ask(self, n: int = 1) -> list[Proposal]:
        out = []
        for _ in range(n):
            cand = self.space.sample(self.rng, self.k)
            if self._dedupe.active:
                for i in range(self.k):
                    if not self._dedupe.is_new(cand[i]):
                        cand[i] = self._dedupe.sample(self.rng, "random_largest", self.max_tries)
            counts = [self.count(r) for r in cand]
            row = cand[int(np.argmax(counts))]  # first maximum on ties
            self._dedupe.add(row)
            out.append(self._next(row))
        return out

    def tell(self, proposal: Proposal, result: EvalResult) -> None:
        """The choice needs no results; an ok result's value is still checked (finite)."""
        if result.ok:
            objective_value(result, self.objective, self.mode)

    def state_dict(self) -> dict[str, Any]:
        return {"rng": rng_state(self.rng), "n_asked": self.n_asked, "seen": sorted(self._dedupe.seen),
                "counted": {"by": self.by, "net": self.net, "counts": dict(self.counts)}}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        set_rng_state(self.rng, state["rng"])
        self.n_asked = int(state["n_asked"])
        self._dedupe.seen = set(state["seen"])
        counted = state.get("counted") or {}
        if counted.get("by") == self.by and counted.get("net") == self.net:  # a cache of the same counts
            self.counts = {str(k): int(v) for k, v in counted.get("counts", {}).items()}
