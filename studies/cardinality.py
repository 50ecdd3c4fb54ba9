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


def cardinality_section(df: Any, study: dict[str, Any], run_dir: Any = None) -> str:
    """Report section: the exact size of the study's space (nominal, unique under each named
    convention) beside every registered space, so a result reads against how much was searched."""
    from nasatlas.spaces.declaration import space_from_dict

    sp = study.get("space", {})
    decl = sp if "blocks" in sp else {"space": sp.get("name"), "params": sp.get("params", {})}
    space = space_from_dict(decl)
    n_eval = int(df["canonical_id"].nunique()) if len(df) else 0
    card = space.cardinality()
    uniq = space.unique_cardinality() if card <= 2_000_000 else None
    lines = ["## How big is the space?", "",
             f"`{space.name}` holds {card:,} architectures"
             + (f" ({uniq:,} unique up to isomorphism, NAS-Bench-201's published convention)" if uniq else "")
             + f"; this run evaluated {n_eval:,} distinct isomorphism classes"
             + (f", {100 * n_eval / uniq:.3g}% of them." if uniq else "."), "",
             "| space | architectures | other counts |", "|---|---|---|"]
    for row in cardinality_rows(unique=False):
        others = ", ".join(f"{k} = {v:,}" for k, v in row.items() if k not in ("space", "cardinality"))
        lines.append(f"| {row['space']} | {row['cardinality']:,} | {others} |")
    return "\n".join(lines) + "\n"
