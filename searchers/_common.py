"""Shared pieces of the black-box searchers: capability checks, dedupe keys, parameter checks.

A searcher declares the space capabilities it needs in ``requires``; :func:`check_requires` turns
a missing one into a ``ValueError`` that names the capability, the space and what to use instead.
:class:`Dedupe` implements the three dedupe policies of :mod:`nasatlas.searchers.random_search`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from nasatlas.spaces import Space

from .capabilities import check_requires

__all__ = ["DEDUPE", "Dedupe", "check_requires", "check_int", "check_choice", "row_tuple"]

#: the dedupe policies (see :class:`Dedupe`)
DEDUPE = ("none", "string", "canonical")


def check_int(searcher: str, name: str, value: Any, low: int) -> None:
    """Raise unless ``value`` is an int (not a bool) >= ``low``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{searcher}: {name}={value!r}; give an integer >= {low}")


def check_choice(searcher: str, name: str, value: Any, allowed: Sequence[str]) -> None:
    """Raise unless ``value`` is one of ``allowed``."""
    if value not in allowed:
        raise ValueError(f"{searcher}: {name}={value!r}; allowed: {list(allowed)}")


def row_tuple(row: Any) -> tuple[int, ...]:
    """An architecture row as a hashable tuple of Python ints."""
    return tuple(int(v) for v in row)


class Dedupe:
    """A dedupe policy bound to a space.

    * ``"none"``: architectures may be proposed again (no key);
    * ``"string"``: no architecture twice. The key is the decision vector written as text, which
      identifies the architecture exactly as its canonical string does (``to_str`` round-trips
      through ``from_str``) at a tenth of the cost;
    * ``"canonical"``: no isomorphism class twice (key: :meth:`Space.canonical_id`).
    """

    def __init__(self, space: Space, policy: str) -> None:
        self.space = space
        self.policy = policy
        self.seen: set[str] = set()

    @property
    def active(self) -> bool:
        return self.policy != "none"

    def key(self, row: Any) -> str:
        """The row's key under the policy (``""`` for ``"none"``)."""
        if self.policy == "string":
            return ",".join(str(int(v)) for v in row)
        if self.policy == "canonical":
            return self.space.canonical_id(np.asarray(row, dtype=np.int64))
        return ""

    def is_new(self, row: Any) -> bool:
        return not self.active or self.key(row) not in self.seen

    def add(self, row: Any) -> None:
        if self.active:
            self.seen.add(self.key(row))

    def sample(self, rng: np.random.Generator, searcher: str, max_tries: int) -> np.ndarray:
        """One uniform sample through the space's sampler, unseen under the policy.

        Raises:
            ValueError: when ``max_tries`` draws found only seen architectures (space exhausted).
        """
        for _ in range(max_tries):
            row: np.ndarray = self.space.sample(rng, 1)[0]
            if self.is_new(row):
                return row
        raise ValueError(f"{searcher}: no unseen architecture after {max_tries} draws (dedupe={self.policy!r}); "
                         "the space may be exhausted: lower the budget or use dedupe='none'")
