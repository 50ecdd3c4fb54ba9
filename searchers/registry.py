"""The searcher registry (lazy; see :class:`nasatlas.spaces.registry.Registry`)."""

from __future__ import annotations

from typing import Any

from nasatlas.spaces.registry import Registry

__all__ = ["SEARCHERS", "get_searcher", "list_searchers", "register_searcher"]

SEARCHERS: Registry[Any] = Registry("searcher", {
    "random": "nasatlas.searchers.random_search:RandomSearch",
    "fixed": "nasatlas.searchers.fixed:FixedList",
})


def get_searcher(name: str, **params: Any) -> Any:
    """A new searcher from its registered name and keyword parameters."""
    return SEARCHERS.create(name, **params)


def list_searchers(pattern: str = "*") -> list[str]:
    return SEARCHERS.names(pattern)


def register_searcher(name: str, factory: Any = None) -> Any:
    return SEARCHERS.register(name, factory)
