"""The searcher registry (lazy; see :class:`nasatlas.spaces.registry.Registry`)."""

from __future__ import annotations

from typing import Any

from nasatlas.spaces.registry import Registry

__all__ = ["SEARCHERS", "get_searcher", "list_searchers", "register_searcher"]

SEARCHERS: Registry[Any] = Registry("searcher", {
    "random": "nasatlas.searchers.random_search:RandomSearch",
    "fixed": "nasatlas.searchers.fixed:FixedList",
    "bananas": "nasatlas.searchers.bananas:Bananas",
    "optuna": "nasatlas.searchers.optuna_searcher:OptunaSearcher",
    "hyperband": "nasatlas.searchers.hyperband:Hyperband",
    "bohb": "nasatlas.searchers.hyperband:BOHB",
    "random_largest": "nasatlas.searchers.random_largest:RandomLargest",
    "evolution": "nasatlas.searchers.evolution:RegularizedEvolution",
    "local_search": "nasatlas.searchers.local_search:LocalSearch",
    "reinforce": "nasatlas.searchers.reinforce:Reinforce",
    "darts": "nasatlas.searchers.darts:DARTS",
    "gdas": "nasatlas.searchers.gdas:GDAS",
    "proxylessnas": "nasatlas.searchers.proxylessnas:ProxylessNAS",
    "autodeeplab": "nasatlas.searchers.autodeeplab:AutoDeepLabSearch",
    "random_ws": "nasatlas.searchers.random_ws:RandomWS",
    "spos": "nasatlas.searchers.spos:SPOS",
    "coarse_to_fine": "nasatlas.searchers.coarse_to_fine:CoarseToFine",
})


def get_searcher(name: str, **params: Any) -> Any:
    """A new searcher from its registered name and keyword parameters."""
    return SEARCHERS.create(name, **params)


def list_searchers(pattern: str = "*") -> list[str]:
    return SEARCHERS.names(pattern)


def register_searcher(name: str, factory: Any = None) -> Any:
    return SEARCHERS.register(name, factory)
