"""A conformance suite any space can be run against, built-in or user-declared.

Like optuna's ``optuna/testing`` and scikit-learn's ``check_estimator``: each check takes a
space (and a seed) and raises ``AssertionError`` with a message naming what broke. Use
:func:`check_space` to run them all::

    from nasatlas.spaces import get_space
    from nasatlas.spaces.testing import check_space
    check_space(get_space("nb201"))
"""

from __future__ import annotations

import hashlib
import json

import numpy as np

from .encodings import onehot
from .space import Space

__all__ = ["check_space", "check_samples_valid", "check_round_trip", "check_neighbours", "check_rank_unrank",
           "check_enumeration", "check_canonical_invariance", "check_onehot", "sample_digest", "SMALL_LIMIT"]

#: spaces up to this nominal size are enumerated by :func:`check_enumeration`
SMALL_LIMIT = 50_000


def _fail(space: Space, msg: str) -> AssertionError:
    return AssertionError(f"space {space.name!r}: {msg}")


def check_samples_valid(space: Space, seed: int = 0, n: int = 64) -> np.ndarray:
    """Samples have the right shape, are valid, and are reproducible from the seed."""
    rows = space.sample(np.random.default_rng(seed), n)
    if rows.shape != (n, space.width):
        raise _fail(space, f"sample(n={n}) returned shape {rows.shape}, expected {(n, space.width)}")
    if not space.is_valid(rows).all():
        raise _fail(space, "sample() returned invalid architectures")
    space.validate(rows)
    again = space.sample(np.random.default_rng(seed), n)
    if not np.array_equal(rows, again):
        raise _fail(space, "the same seed gave different samples")
    return rows


def check_round_trip(space: Space, rows: np.ndarray) -> None:
    """``to_str``/``from_str`` and ``to_json``/``from_json`` are inverse on every row."""
    for a in space.archs(rows):
        text = space.to_str(a)
        back = space.from_str(text)
        if back != a:
            raise _fail(space, f"string round trip changed the architecture: {text!r}")
        if space.to_str(back) != text:
            raise _fail(space, f"to_str is not stable: {text!r}")
        if space.from_json(space.to_json(a)) != a:
            raise _fail(space, f"JSON round trip changed the architecture: {text!r}")


def check_neighbours(space: Space, rows: np.ndarray, max_rows: int = 8) -> None:
    """Neighbours are valid, distinct, differ from the centre, and lie at edit distance 1."""
    for row in rows[:max_rows]:
        nbs = space.neighbours(row)
        if len(nbs) == 0 and space.cardinality() > 1:
            raise _fail(space, f"no neighbours for {space.to_str(row)!r}")
        if not space.is_valid(nbs).all():
            raise _fail(space, f"invalid neighbour of {space.to_str(row)!r}")
        if len({r.tobytes() for r in nbs}) != len(nbs):
            raise _fail(space, f"duplicate neighbours of {space.to_str(row)!r}")
        if any(np.array_equal(r, row) for r in nbs):
            raise _fail(space, "an architecture is listed as its own neighbour")
        d = space.distance(row[None, :], nbs, "edit")
        if not np.all(d == 1):
            raise _fail(space, f"neighbour edit distances {sorted(set(d.tolist()))}, expected all 1")


def check_rank_unrank(space: Space, rows: np.ndarray) -> None:
    """``unrank(rank(x)) == x`` and ranks lie in ``0 .. cardinality-1``."""
    ranks = space.rank(rows)
    card = space.cardinality()
    if any(not 0 <= r < card for r in ranks):
        raise _fail(space, "a rank is out of range")
    if not np.array_equal(space.unrank(ranks), rows):
        raise _fail(space, "unrank(rank(x)) != x")


def check_enumeration(space: Space, limit: int = SMALL_LIMIT) -> bool:
    """On small spaces: enumeration has ``cardinality()`` distinct valid rows in rank order."""
    card = space.cardinality()
    if card > limit:
        return False
    rows = space.enumerate(limit)
    if len(rows) != card:
        raise _fail(space, f"enumerate() gave {len(rows)} rows, cardinality() says {card}")
    if len({r.tobytes() for r in rows}) != card:
        raise _fail(space, "enumerate() has duplicates")
    if not space.is_valid(rows).all():
        raise _fail(space, "enumerate() has invalid rows")
    if space.rank(rows) != list(range(card)):
        raise _fail(space, "enumerate() is not in rank order")
    return True


def check_canonical_invariance(space: Space, rows: np.ndarray, seed: int = 0, tries: int = 4) -> None:
    """The canonical id is unchanged under random isomorphic relabellings."""
    rng = np.random.default_rng(seed)
    for row in rows[:16]:
        cid = space.canonical_id(row)
        for _ in range(tries):
            var = space.isomorphic_variant(row, rng)
            if not space.is_valid(var[None, :]).all():
                raise _fail(space, "isomorphic_variant produced an invalid architecture")
            if space.canonical_id(var) != cid:
                raise _fail(space, f"canonical id changed under relabelling: {space.to_str(row)!r} vs "
                                   f"{space.to_str(var)!r}")


def check_onehot(space: Space, rows: np.ndarray) -> None:
    """One-hot rows have exactly one 1 per decision."""
    enc = onehot(space, rows)
    if enc.shape != (len(rows), sum(space.sizes)):
        raise _fail(space, f"one-hot shape {enc.shape}")
    if not np.all(enc.sum(axis=1) == space.width):
        raise _fail(space, "one-hot rows must have one 1 per decision")


def sample_digest(space: Space, seed: int = 0, n: int = 32) -> str:
    """A digest of seeded samples, for comparing processes (same seed -> same samples)."""
    rows = space.sample(np.random.default_rng(seed), n)
    return hashlib.sha256(json.dumps(rows.tolist()).encode()).hexdigest()


def check_space(space: Space, seed: int = 0, n: int = 64) -> None:
    """Run every check on ``space``."""
    rows = check_samples_valid(space, seed, n)
    check_round_trip(space, rows[:16])
    check_neighbours(space, rows)
    check_rank_unrank(space, rows)
    check_canonical_invariance(space, rows, seed)
    check_onehot(space, rows)
    check_enumeration(space)
