"""The two plain values every space is made of: a labelled decision and an architecture.

A search space is a sequence of decisions, each with a finite list of labelled options; an
architecture is the tuple of option indices, one per decision, tagged with the space's name.
Both are immutable and hashable, so architectures can be dictionary keys and set members.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Decision", "Arch"]


@dataclass(frozen=True)
class Decision:
    """One labelled decision with a known number of options.

    Attributes:
        name: a path-like label, unique within a space (``"normal/node2/inputs"``).
        choices: the option labels, in index order.
    """

    name: str
    choices: tuple[str, ...]

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("Decision.name must be a non-empty string")
        if len(self.choices) == 0:
            raise ValueError(f"decision {self.name!r} has no choices: give at least one option label")
        if len(set(self.choices)) != len(self.choices):
            raise ValueError(f"decision {self.name!r} has duplicate option labels {self.choices}: make them unique")

    @property
    def size(self) -> int:
        """Number of options."""
        return len(self.choices)

    def index(self, label: str) -> int:
        """Index of an option label, with an error that lists the allowed labels."""
        try:
            return self.choices.index(label)
        except ValueError:
            raise ValueError(
                f"decision {self.name!r}: unknown option {label!r}; allowed: {list(self.choices)}"
            ) from None


@dataclass(frozen=True)
class Arch:
    """An architecture: a space name and one option index per decision.

    Build them with ``space.arch(indices)``, ``space.from_str(text)`` or ``space.unrank(i)`` so
    that they are validated; the constructor itself only stores.
    """

    space: str
    indices: tuple[int, ...]

    def __len__(self) -> int:
        return len(self.indices)
