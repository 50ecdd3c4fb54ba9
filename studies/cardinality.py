"""The cardinality table: exact nominal and unique counts of spaces under named conventions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["cardinality_rows"]


def cardinality_rows(names: Sequence[str] | None = None, unique: bool = False) -> list[dict[str, Any]]:
    """One row per space: ``space``, ``cardinality`` (exact int), the space's extra counting
    conventions, and with ``unique`` the isomorphism-aware count (``None`` where not computed).

    ``names`` are registered names or declaration files; ``None`` means every registered space.
    Counts whose name starts with ``unique`` need enumeration and are only given with ``unique``.
    """
    from nasatlas.spaces import list_spaces
    from nasatlas.spaces.declaration import load_space

    rows = []
    for name in names if names is not None else list_spaces():
        space = load_space(name)
        row: dict[str, Any] = {"space": space.name, "cardinality": space.cardinality()}
        if unique:
            row["unique"] = space.unique_cardinality()
        for key, (fn, _note) in space.counts.items():
            if key.startswith("unique") and not unique:
                continue
            row[key] = fn(space)
        rows.append(row)
    return rows
