"""Random search: uniform samples through the space's sampler (Li & Talwalkar 2019, Sec. 3;
Bergstra & Bengio 2012)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nasatlas.results import EvalResult

from .base import BlackBoxSearcher, Proposal, objective_value, rng_state, set_rng_state

__all__ = ["RandomSearch"]

DEDUPE = ("none", "string", "canonical")


class RandomSearch(BlackBoxSearcher):
    """Uniform random search with an explicit dedupe policy.

    Args:
        dedupe: ``"none"`` (with replacement), ``"string"`` (no architecture twice: sampling
            without replacement, the default) or ``"canonical"`` (no isomorphism class twice).
        over: ``"nominal"`` or ``"unique"`` (uniform over isomorphism classes, where enumerable).
        max_tries: draws per proposal before giving up on finding an unseen architecture.
    """

    def __init__(self, dedupe: str = "string", over: str = "nominal", max_tries: int = 10_000) -> None:
        self.dedupe = dedupe
        self.over = over
        self.max_tries = max_tries

    def _setup(self) -> None:
        if self.dedupe not in DEDUPE:
            raise ValueError(f"random: dedupe={self.dedupe!r}; allowed: {list(DEDUPE)}")
        if self.over not in ("nominal", "unique"):
            raise ValueError(f"random: over={self.over!r}; allowed: 'nominal' or 'unique'")
        self.seen: set[str] = set()

    def _key(self, row: Any) -> str | None:
        if self.dedupe == "string":
            return self.space.to_str(row)
        if self.dedupe == "canonical":
            return self.space.canonical_id(row)
        return None

    def ask(self, n: int = 1) -> list[Proposal]:
        out = []
        for _ in range(n):
            for _try in range(self.max_tries):
                row = self.space.sample(self.rng, 1, over=self.over)[0]
                key = self._key(row)
                if key is None or key not in self.seen:
                    break
            else:
                raise ValueError(f"random: no unseen architecture after {self.max_tries} draws "
                                 f"(dedupe={self.dedupe!r}); the space may be exhausted: lower the budget")
            if key is not None:
                self.seen.add(key)
            out.append(self._next(row))
        return out

    def tell(self, proposal: Proposal, result: EvalResult) -> None:
        """Random search ignores results (they are in the log)."""
        if result.ok:  # results do not steer it, but a non-finite one is still refused
            objective_value(result, self.objective, self.mode)

    def state_dict(self) -> dict[str, Any]:
        return {"rng": rng_state(self.rng), "seen": sorted(self.seen), "n_asked": self.n_asked}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        set_rng_state(self.rng, state["rng"])
        self.seen = set(state["seen"])
        self.n_asked = int(state["n_asked"])
