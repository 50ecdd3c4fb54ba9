"""Listings of registered components for ``nasatlas list``."""

from __future__ import annotations

from typing import Any

__all__ = ["list_components"]


def list_components(what: str) -> list[dict[str, Any]]:
    """Name and one-line description of every registered component of a kind."""
    if what == "spaces":
        from nasatlas.spaces import get_space, list_spaces
        out = []
        for name in list_spaces():
            space = get_space(name)
            out.append({"name": name, "description": space.description, "cardinality": space.cardinality()})
        return out
    if what == "searchers":
        from nasatlas.searchers.registry import SEARCHERS
        return [{"name": n, "description": _doc(SEARCHERS.factory(n))} for n in SEARCHERS.names()]
    if what == "evaluators":
        from nasatlas.evaluators.registry import EVALUATORS
        return [{"name": n, "description": _doc(EVALUATORS.factory(n))} for n in EVALUATORS.names()]
    if what == "studies":
        from .packaged import list_studies
        return list_studies()
    raise ValueError(f"unknown component kind {what!r}; allowed: spaces, searchers, evaluators, studies")


def _doc(obj: Any) -> str:
    return (obj.__doc__ or "").strip().splitlines()[0] if obj.__doc__ else ""
