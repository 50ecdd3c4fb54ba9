"""Space declaration files: a space declared from the primitives, in TOML or JSON, without code.

A declaration is a table with ``name``, optional ``description`` and ``sources``, and a list of
``blocks``; each block names its ``kind`` and the primitive's parameters::

    name = "tiny_darts"
    description = "a 2-node DARTS-style cell"
    [[blocks]]
    kind = "cell_dag"
    name = "normal"
    nodes = 2
    ops = ["sep_conv_3x3", "max_pool_3x3", "skip_connect"]

Kinds: ``categorical`` (choices), ``edge_dag`` (nodes, ops), ``cell_dag`` (nodes, ops, k, n_inputs,
ordered, replacement, combine_ops, concat), ``chain`` (layers: a list of {name, choices | decisions,
stride, channels, skippable}), ``trellis`` (layers, downsample, first_levels, max_step) and
``nb101`` (max_vertices, max_edges). Alternatively ``space = "darts"`` plus ``params = {...}``
refers to a registered space. The study file embeds the same table under ``[space]``.
"""

from __future__ import annotations

import inspect
import json
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from .cell import CellDAG
from .primitives import Categorical, Chain, ChainLayer, EdgeDAG, Primitive
from .registry import get_space
from .space import Space
from .trellis import TrellisPath

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = ["load_space", "space_from_dict", "read_declaration", "BLOCK_KINDS"]


def _chain(name: str, layers: list[Any]) -> Chain:
    out = []
    for i, la in enumerate(layers):
        if not isinstance(la, Mapping):
            raise ValueError(f"blocks.{name}.layers[{i}] must be a table with 'choices' or 'decisions'")
        unknown = set(la) - {"name", "choices", "decisions", "stride", "channels", "skippable"}
        if unknown:
            raise ValueError(f"blocks.{name}.layers[{i}]: unknown key(s) {sorted(unknown)}; allowed: name, choices, "
                             "decisions, stride, channels, skippable")
        lname = str(la.get("name", f"layer{i}"))
        skippable = bool(la.get("skippable", False))
        if "choices" in la:
            choices = [str(c) for c in la["choices"]] + (["zero"] if skippable else [])
            decisions: list[tuple[str, list[str]]] = [("", choices)]
        elif "decisions" in la:
            decisions = [(str(k), [str(c) for c in v]) for k, v in dict(la["decisions"]).items()]
        else:
            raise ValueError(f"blocks.{name}.layers[{i}] needs 'choices' (a list) or 'decisions' (a table of lists)")
        out.append(ChainLayer(lname, decisions, stride=int(la.get("stride", 1)), channels=la.get("channels"),
                              skippable=skippable))
    return Chain(name, out)


def _nb101(name: str, **kw: Any) -> Primitive:
    from .nb101 import NB101Graph
    return NB101Graph(**kw)  # type: ignore[no-any-return]


BLOCK_KINDS: dict[str, Callable[..., Primitive]] = {
    "categorical": Categorical, "edge_dag": EdgeDAG, "cell_dag": CellDAG, "chain": _chain,
    "trellis": TrellisPath, "nb101": _nb101,
}


def _block(spec: Any, i: int, where: str) -> Primitive:
    if not isinstance(spec, Mapping):
        raise ValueError(f"{where}: blocks[{i}] must be a table")
    spec = dict(spec)
    kind = spec.pop("kind", None)
    if kind not in BLOCK_KINDS:
        raise ValueError(f"{where}: blocks[{i}].kind={kind!r}; allowed kinds: {sorted(BLOCK_KINDS)}")
    if "name" not in spec:
        raise ValueError(f"{where}: blocks[{i}] needs a 'name'")
    factory = BLOCK_KINDS[kind]
    sig = inspect.signature(factory)
    accepts_kwargs = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in sig.parameters.values())
    allowed = [p for p in sig.parameters if p != "self"]
    unknown = set(spec) - set(allowed)
    if unknown and not accepts_kwargs:
        raise ValueError(f"{where}: blocks[{i}] ({kind}): unknown key(s) {sorted(unknown)}; allowed: {allowed}")
    try:
        return factory(**spec)
    except TypeError as e:
        raise ValueError(f"{where}: blocks[{i}] ({kind}): {e}") from None


def space_from_dict(decl: Mapping[str, Any], where: str = "space declaration") -> Space:
    """Build a :class:`Space` from a declaration table (see the module docstring)."""
    if not isinstance(decl, Mapping):
        raise ValueError(f"{where}: expected a table")
    if "space" in decl:
        unknown = set(decl) - {"space", "params"}
        if unknown:
            raise ValueError(f"{where}: unknown key(s) {sorted(unknown)} beside 'space'; allowed: space, params")
        return get_space(str(decl["space"]), **dict(decl.get("params", {})))
    unknown = set(decl) - {"name", "description", "sources", "blocks"}
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {sorted(unknown)}; allowed: name, description, sources, blocks "
                         "(or space + params for a registered space)")
    if "name" not in decl or not isinstance(decl["name"], str):
        raise ValueError(f"{where}: 'name' (a string) is required")
    blocks = decl.get("blocks")
    if not isinstance(blocks, list) or not blocks:
        raise ValueError(f"{where}: 'blocks' must be a non-empty list of block tables ([[blocks]] in TOML)")
    prims = [_block(b, i, where) for i, b in enumerate(blocks)]
    return Space(decl["name"], prims, description=str(decl.get("description", "")),
                 sources=[str(s) for s in decl.get("sources", [])], family=None,
                 params={"declaration": json.loads(json.dumps(dict(decl)))})


def read_declaration(path: str | Path) -> dict[str, Any]:
    """Read a TOML (``.toml``) or JSON (``.json``) declaration file into a dict."""
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"space declaration file {str(p)!r} does not exist")
    text = p.read_text()
    if p.suffix == ".json":
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(f"{p}: invalid JSON: {e}") from None
    elif p.suffix == ".toml":
        try:
            obj = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            raise ValueError(f"{p}: invalid TOML: {e}") from None
    else:
        raise ValueError(f"{p}: a space declaration file must end in .toml or .json")
    if not isinstance(obj, dict):
        raise ValueError(f"{p}: expected a table at the top level")
    return obj


def load_space(name_or_path: str | Path, **params: Any) -> Space:
    """A registered space by name, or a space declared in a TOML/JSON file."""
    s = str(name_or_path)
    if s.endswith((".toml", ".json")) or Path(s).is_file():
        if params:
            raise ValueError("parameters apply to registered spaces only; put them in the declaration file")
        return space_from_dict(read_declaration(s), where=s)
    return get_space(s, **params)
