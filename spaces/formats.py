"""The DARTS ``Genotype(...)`` text format, written and parsed without ``eval``.

DARTS (quark0/darts ``cnn/genotypes.py``) prints genotypes as
``Genotype(normal=[('sep_conv_3x3', 0), ...], normal_concat=[2, 3, 4, 5], reduce=[...], ...)``.
nasatlas uses the same layout for every space with cells or several blocks; values are Python
literals (strings, ints, lists, tuples), and ``range(a, b)`` is accepted for concat lists as in
DARTS's own files. Parsing walks the syntax tree and evaluates literals only.
"""

from __future__ import annotations

import ast
from typing import Any

__all__ = ["format_genotype", "parse_genotype"]


def format_genotype(fields: dict[str, Any]) -> str:
    """``Genotype(key=value, ...)`` with Python literal reprs, in the given key order."""
    return "Genotype(" + ", ".join(f"{k}={_literal(v)}" for k, v in fields.items()) + ")"


def _literal(v: Any) -> str:
    if isinstance(v, tuple):
        return "(" + ", ".join(_literal(x) for x in v) + ("," if len(v) == 1 else "") + ")"
    if isinstance(v, list):
        return "[" + ", ".join(_literal(x) for x in v) + "]"
    return repr(v)


def parse_genotype(text: str) -> dict[str, Any]:
    """Parse ``Genotype(key=value, ...)`` into a dict of literal values.

    Raises:
        ValueError: naming what is malformed, for anything but keyword literal arguments.
    """
    src = text.strip()
    if not src.startswith("Genotype(") or not src.endswith(")"):
        raise ValueError(
            f"malformed architecture string {text[:60]!r}: expected "
            "\"Genotype(normal=[('sep_conv_3x3', 0), ...], normal_concat=[2, 3, 4, 5], ...)\""
        )
    try:
        tree = ast.parse(src, mode="eval")
    except SyntaxError as e:
        raise ValueError(f"malformed architecture string: {e.msg} at column {e.offset}") from None
    call = tree.body
    if not isinstance(call, ast.Call) or call.args:
        raise ValueError("malformed architecture string: give every field as key=value inside Genotype(...)")
    out: dict[str, Any] = {}
    for kw in call.keywords:
        if kw.arg is None:
            raise ValueError("malformed architecture string: '**' is not allowed")
        if kw.arg in out:
            raise ValueError(f"malformed architecture string: field {kw.arg!r} is given twice")
        out[kw.arg] = _value(kw.value, kw.arg)
    return out


def _value(node: ast.expr, key: str) -> Any:
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "range"
            and not node.keywords and 1 <= len(node.args) <= 2):
        bounds = [_value(a, key) for a in node.args]
        if not all(isinstance(b, int) for b in bounds):
            raise ValueError(f"field {key!r}: range() takes integers")
        return list(range(*bounds))
    try:
        return ast.literal_eval(node)
    except ValueError:
        raise ValueError(f"field {key!r}: only literals (strings, numbers, lists, tuples) are allowed, "
                         f"got {ast.unparse(node)[:60]!r}") from None
