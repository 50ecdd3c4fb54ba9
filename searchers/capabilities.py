"""Check that a space offers the capabilities a searcher declares in ``requires``.

Every built-in space has them all; a user's primitive may not (e.g. a constrained block that
keeps the base class's mixed-radix ``rank``/``unrank``, which is only right for product blocks).
A searcher calls :func:`check_requires` in its ``_setup`` so that a missing capability is a
``ValueError`` naming it when the run starts, not an obscure failure mid-search.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from nasatlas.spaces import Space
from nasatlas.spaces.primitives import Primitive

__all__ = ["CAPABILITIES", "check_requires", "can_unrank"]

#: the capability names a searcher may list in ``requires``; ``"unrank"`` means a true
#: rank/unrank pair for every block (``"rank"`` is checked the same way); ``"product"`` means
#: independent decisions (every combination valid); ``"builder"`` a network builder for the
#: space's family (to count params/MACs)
CAPABILITIES = ("sample", "neighbours", "rank", "unrank", "product", "builder")


def can_unrank(p: Primitive) -> bool:
    """True when the block has a true rank/unrank: a product block (mixed radix) or a
    constrained block that overrides both (the trellis path, the NB101 graph)."""
    if p.is_product:
        return True
    return type(p).rank is not Primitive.rank and type(p).unrank is not Primitive.unrank


def check_requires(space: Space, requires: Iterable[str], who: str) -> None:
    """Raise ``ValueError`` naming the first capability in ``requires`` that ``space`` lacks.

    The probes use a private generator (seed 0), never the searcher's, so checking does not
    shift a run's trajectory.
    """
    probe = np.random.default_rng(0)
    for cap in requires:
        if cap not in CAPABILITIES:
            raise ValueError(f"{who}: unknown capability {cap!r} in requires; known: {list(CAPABILITIES)}")
        try:
            if cap == "product":
                if not space.is_product:
                    raise NotImplementedError("its decisions are not independent (space.is_product is False)")
            elif cap == "builder":
                from nasatlas.spaces.build import PRESETS
                if space.family not in PRESETS:
                    raise NotImplementedError(f"family {space.family!r} has no network builder")
            elif cap == "sample":
                space.sample(probe, 1)
            elif cap == "neighbours":
                space.neighbours(space.sample(probe, 1)[0])
            else:
                for p in space.primitives:
                    if not can_unrank(p):
                        raise NotImplementedError(f"block {p.name!r} ({type(p).__name__}) is not a product block "
                                                  "and does not define its own rank/unrank")
                    p.unrank([0])
        except (NotImplementedError, AttributeError, TypeError) as e:
            raise ValueError(f"{who} requires the space capability {cap!r}, which space {space.name!r} lacks: {e}; "
                             f"use a searcher that does not need {cap!r} (e.g. 'random')") from None
