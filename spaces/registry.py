"""Registries: names to factories, resolved lazily, duplicates refused.

One small :class:`Registry` class serves spaces, searchers and evaluators (it lives here, in the
bottom layer, so every layer can use it without importing upwards). Built-in entries are listed by
import path and imported on first use, so importing a subpackage does no work (DESIGN §4.1,
§4.5). Users add their own entries with ``register(name)`` as a decorator or a plain call.
"""

from __future__ import annotations

import fnmatch
import importlib
from collections.abc import Callable, Mapping
from typing import Any, Generic, TypeVar

from .space import Space

__all__ = ["Registry", "SPACES", "register_space", "get_space", "list_spaces", "unregister_space"]

T = TypeVar("T")


class Registry(Generic[T]):
    """A lazy name → factory registry for one kind of component.

    Args:
        kind: what the entries are (``"space"``, ``"searcher"``, ...), used in error messages.
        builtin: name → ``"module:attribute"`` of the built-in factories, imported on first use.
    """

    def __init__(self, kind: str, builtin: Mapping[str, str]) -> None:
        self.kind = kind
        self._builtin = dict(builtin)
        self._user: dict[str, Callable[..., T]] = {}

    def register(self, name: str, factory: Callable[..., T] | None = None) -> Any:
        """Register ``factory`` under ``name``; usable as a decorator ``@registry.register("x")``."""
        def deco(fn: Callable[..., T]) -> Callable[..., T]:
            if not name or not isinstance(name, str):
                raise ValueError(f"a {self.kind} name must be a non-empty string")
            if name in self._builtin or name in self._user:
                raise ValueError(f"{self.kind} name {name!r} is already registered; pick another name or unregister it")
            self._user[name] = fn
            return fn
        return deco(factory) if factory is not None else deco

    def unregister(self, name: str) -> None:
        """Remove a user entry (built-ins cannot be removed)."""
        if name not in self._user:
            raise ValueError(f"{name!r} is not a user-registered {self.kind}; user entries: {sorted(self._user)}")
        del self._user[name]

    def names(self, pattern: str = "*") -> list[str]:
        """Registered names matching a shell-style pattern, sorted."""
        return sorted(n for n in {**self._builtin, **self._user} if fnmatch.fnmatch(n, pattern))

    def __contains__(self, name: object) -> bool:
        return name in self._builtin or name in self._user

    def factory(self, name: str) -> Callable[..., T]:
        """The factory registered under ``name``; an unknown name lists the known ones."""
        if name in self._user:
            return self._user[name]
        if name in self._builtin:
            module, attr = self._builtin[name].split(":")
            return getattr(importlib.import_module(module), attr)  # type: ignore[no-any-return]
        raise ValueError(f"unknown {self.kind} {name!r}; known {self.kind}s: {', '.join(self.names())}")

    def create(self, name: str, **params: Any) -> T:
        """Call the factory with keyword parameters; bad parameters raise a ValueError."""
        fn = self.factory(name)
        try:
            return fn(**params)
        except TypeError as e:
            raise ValueError(f"{self.kind} {name!r}: bad parameters {sorted(params)}: {e}") from None


SPACES: Registry[Space] = Registry("space", {
    "nb201": "nasatlas.spaces.catalog:nb201",
    "nb101": "nasatlas.spaces.nb101:nb101",
    "darts": "nasatlas.spaces.catalog:darts",
    "nasnet": "nasatlas.spaces.catalog:nasnet",
    "pnas": "nasatlas.spaces.catalog:pnas",
    "amoebanet": "nasatlas.spaces.catalog:amoebanet",
    "enas_micro": "nasatlas.spaces.catalog:enas_micro",
    "autodeeplab": "nasatlas.spaces.catalog:autodeeplab",
    "proxylessnas": "nasatlas.spaces.catalog:proxylessnas",
    "fbnet": "nasatlas.spaces.catalog:fbnet",
    "mnasnet": "nasatlas.spaces.catalog:mnasnet",
    "mobilenet": "nasatlas.spaces.catalog:mobilenet",
    "enas_macro": "nasatlas.spaces.catalog:enas_macro",
})


def register_space(name: str, factory: Callable[..., Space] | None = None) -> Any:
    """Register a space factory under ``name``; usable as ``@register_space("mine")``."""
    return SPACES.register(name, factory)


def unregister_space(name: str) -> None:
    """Remove a user-registered space."""
    SPACES.unregister(name)


def list_spaces(pattern: str = "*") -> list[str]:
    """Registered space names matching a shell-style pattern, sorted."""
    return SPACES.names(pattern)


def get_space(name: str, **params: Any) -> Space:
    """Build the registered space ``name`` with keyword parameters.

    Raises:
        ValueError: for an unknown name (listing the known ones, and hinting at declaration
            files) or unknown parameters.
    """
    if name not in SPACES:
        raise ValueError(f"unknown space {name!r}; known spaces: {', '.join(list_spaces())} "
                         "(or give a space declaration file)")
    return SPACES.create(name, **params)
