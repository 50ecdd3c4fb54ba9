"""Vector encodings of architectures, derived from any space's declaration.

* one-hot: one indicator block per decision (vectorised over rows);
* adjacency + ops: for graph blocks, ``A[target, source, op]`` counts flattened
  (White et al. 2020, "A Study on Encodings for Neural Architecture Search", Sec. 3);
* path encoding: an indicator per input-to-output path, identified by its input and op
  sequence (BANANAS, White et al. 2021, Sec. 4); paths through the zero op do not exist.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .primitives import check_rows
from .space import Space

__all__ = ["onehot", "adjacency_encoding", "path_encoding", "encoding_kinds", "encode"]


def onehot(space: Space, rows: np.ndarray) -> np.ndarray:
    """``(n, sum of option counts)`` uint8 one-hot encoding of every decision."""
    rows = check_rows(rows, space.width, space.name)
    return np.concatenate([p.onehot(b) for p, b in zip(space.primitives, space.blocks(rows))], axis=1)


def _graph_blocks(space: Space, what: str) -> list[int]:
    idx = [i for i, p in enumerate(space.primitives) if hasattr(p, what)]
    if not idx:
        raise ValueError(f"space {space.name!r} has no graph block, so it has no {what} encoding; "
                         "use the one-hot encoding")
    return idx


def adjacency_encoding(space: Space, rows: np.ndarray) -> np.ndarray:
    """Flattened ``A[target, source, op]`` of every graph block, concatenated."""
    rows = check_rows(rows, space.width, space.name)
    idx = _graph_blocks(space, "adjacency")
    blocks = space.blocks(rows)
    parts = []
    for i in idx:
        p: Any = space.primitives[i]
        n = p.graph_size()
        width = n * n * len(p.ops) if hasattr(p, "ops") else p.adjacency(p.unrank([0])[0]).size
        out = np.zeros((rows.shape[0], width), dtype=np.uint8)
        for r, row in enumerate(blocks[i]):
            out[r] = p.adjacency(row).reshape(-1)
        parts.append(out)
    return np.concatenate(parts, axis=1)


def path_encoding(space: Space, rows: np.ndarray, max_size: int = 1 << 20) -> np.ndarray:
    """Binary path encoding of every graph block, concatenated (BANANAS)."""
    rows = check_rows(rows, space.width, space.name)
    idx = _graph_blocks(space, "paths")
    blocks = space.blocks(rows)
    parts = []
    for i in idx:
        p = space.primitives[i]
        size = p.path_vocabulary_size()  # type: ignore[attr-defined]
        if size > max_size:
            raise ValueError(f"space {space.name!r}: block {p.name!r} has {size:,} possible paths, more than "
                             f"max_size={max_size:,}; use the adjacency or one-hot encoding")
        out = np.zeros((rows.shape[0], size), dtype=np.uint8)
        for r, row in enumerate(blocks[i]):
            for path in p.paths(row):  # type: ignore[attr-defined]
                out[r, p.path_index(path)] = 1  # type: ignore[attr-defined]
        parts.append(out)
    return np.concatenate(parts, axis=1)


encoding_kinds = ("onehot", "adjacency", "path")


def encode(space: Space, rows: np.ndarray, kind: str = "onehot") -> np.ndarray:
    """Encode rows with a named encoding."""
    if kind == "onehot":
        return onehot(space, rows)
    if kind == "adjacency":
        return adjacency_encoding(space, rows)
    if kind == "path":
        return path_encoding(space, rows)
    raise ValueError(f"encoding kind={kind!r}; allowed: {list(encoding_kinds)}")
