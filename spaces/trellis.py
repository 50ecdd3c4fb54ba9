"""The network-level trellis of Auto-DeepLab: a path across resolution levels.

Liu et al. 2019 (Auto-DeepLab, Sec. 3.2, Fig. 1): ``L`` layers, each at one of the downsample
levels 4, 8, 16, 32; from one layer to the next the path moves at most one level up or down.
The paper pins the first layer at /4 and states "2.9 x 10^4" paths for L=12, which is 28,657;
read literally (the first layer at /4 or /8, one step from the /4 stem), the rule gives 75,025.
Both conventions are offered through ``first_levels``.

The block is constrained, so cardinality, ranking and sampling come from a dynamic programme
over ``completions[l][v]`` = number of valid suffixes starting at level ``v`` in layer ``l``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .decisions import Decision
from .primitives import Primitive, check_rows

__all__ = ["TrellisPath"]


class TrellisPath(Primitive):
    """A path of ``layers`` levels, moving by at most ``max_step`` level per layer.

    Args:
        name: block name (genotype key), e.g. ``"path"``.
        layers: number of layers L.
        downsample: the downsample factor of each level, e.g. ``(4, 8, 16, 32)``.
        first_levels: level indices the first layer may take (paper: ``(0,)``).
        max_step: largest level change between consecutive layers.
    """

    kind = "trellis"
    is_product = False

    def __init__(self, name: str, layers: int, downsample: Sequence[int] = (4, 8, 16, 32),
                 first_levels: Sequence[int] = (0,), max_step: int = 1) -> None:
        if layers < 1:
            raise ValueError(f"{name}: layers={layers}; a trellis path needs at least one layer")
        self.downsample = tuple(int(d) for d in downsample)
        n = len(self.downsample)
        if n < 1:
            raise ValueError(f"{name}: downsample is empty; give the factor of each level, e.g. [4, 8, 16, 32]")
        bad = [f for f in first_levels if not 0 <= f < n]
        if bad or not first_levels:
            raise ValueError(f"{name}: first_levels={list(first_levels)}; give level indices in 0..{n - 1}")
        if max_step < 0:
            raise ValueError(f"{name}: max_step={max_step} must be >= 0")
        self.name = name
        self.layers = layers
        self.n_levels = n
        self.first_levels = tuple(sorted(set(int(f) for f in first_levels)))
        self.max_step = max_step
        self.decisions = tuple(Decision(f"{name}/layer{l}", tuple(str(d) for d in self.downsample))
                               for l in range(layers))
        # completions[l][v]: valid suffixes covering layers l..L-1 given layer l is at level v
        comp = [[0] * n for _ in range(layers)]
        comp[layers - 1] = [1] * n
        for l in range(layers - 2, -1, -1):
            comp[l] = [sum(comp[l + 1][w] for w in self._moves(v)) for v in range(n)]
        self.completions = comp

    def _moves(self, v: int) -> range:
        return range(max(0, v - self.max_step), min(self.n_levels - 1, v + self.max_step) + 1)

    def _allowed(self, l: int, prev: int | None) -> Sequence[int]:
        return self.first_levels if l == 0 or prev is None else self._moves(prev)

    def cardinality(self) -> int:
        return sum(self.completions[0][v] for v in self.first_levels)

    def is_valid(self, rows: np.ndarray) -> np.ndarray:
        rows = check_rows(rows, self.width, self.name)
        ok = np.isin(rows[:, 0], self.first_levels) & np.all((rows >= 0) & (rows < self.n_levels), axis=1)
        if self.layers > 1:
            ok &= np.all(np.abs(np.diff(rows, axis=1)) <= self.max_step, axis=1)
        return ok

    def validate(self, rows: np.ndarray) -> None:
        super().validate(rows)
        rows = check_rows(rows, self.width, self.name)
        for row in rows:
            if int(row[0]) not in self.first_levels:
                raise ValueError(f"decision {self.decisions[0].name!r}: the path must start at downsample "
                                 f"{[self.downsample[f] for f in self.first_levels]}, got {self.downsample[row[0]]}")
            for l in range(1, self.layers):
                if abs(int(row[l]) - int(row[l - 1])) > self.max_step:
                    raise ValueError(
                        f"decision {self.decisions[l].name!r}: the path jumps from /{self.downsample[row[l - 1]]} "
                        f"to /{self.downsample[row[l]]}; it may move at most {self.max_step} level per layer")

    def rank(self, rows: np.ndarray) -> list[int]:
        self.validate(rows)
        out = []
        for row in check_rows(rows, self.width, self.name):
            r, prev = 0, None
            for l, v in enumerate(row.tolist()):
                r += sum(self.completions[l][w] for w in self._allowed(l, prev) if w < v)
                prev = v
            out.append(r)
        return out

    def unrank(self, indices: Sequence[int]) -> np.ndarray:
        card = self.cardinality()
        idx = np.asarray([int(i) for i in indices], dtype=object)
        for i in idx:
            if not 0 <= i < card:
                raise ValueError(f"index {i} is out of range: valid indices are 0 .. {card - 1}")
        return self._unrank_int64(np.asarray(idx, dtype=np.int64))

    def _unrank_int64(self, idx: np.ndarray) -> np.ndarray:
        """Vectorised unrank (the trellis count fits in int64 for any practical L)."""
        n = idx.shape[0]
        out = np.zeros((n, self.layers), dtype=np.int64)
        rem = idx.copy()
        comp = np.asarray(self.completions, dtype=np.int64)
        prev = np.full(n, -1, dtype=np.int64)
        for l in range(self.layers):
            chosen = np.full(n, -1, dtype=np.int64)
            for v in range(self.n_levels):
                if l == 0:
                    allowed = np.full(n, v in self.first_levels)
                else:
                    allowed = np.abs(prev - v) <= self.max_step
                cnt = np.where(allowed, comp[l, v], 0)
                take = (chosen < 0) & allowed & (rem < cnt)
                chosen = np.where(take, v, chosen)
                rem = np.where((chosen < 0), rem - cnt, rem)
            out[:, l] = chosen
            prev = chosen
        return out

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """Uniform over valid paths: a uniform index, unranked (no rejection)."""
        return self._unrank_int64(rng.integers(0, self.cardinality(), size=n, dtype=np.int64))

    def neighbours(self, row: np.ndarray) -> np.ndarray:
        cand = super().neighbours(row)
        return cand[self.is_valid(cand)] if len(cand) else cand

    def to_value(self, row: np.ndarray) -> Any:
        return [self.downsample[int(v)] for v in row]

    def from_value(self, value: Any) -> np.ndarray:
        if not isinstance(value, (list, tuple)) or len(value) != self.layers:
            raise ValueError(f"{self.name}: expected a list of {self.layers} downsample factors from "
                             f"{list(self.downsample)}, got {value!r}")
        out = []
        for l, v in enumerate(value):
            if v not in self.downsample:
                raise ValueError(f"decision {self.decisions[l].name!r}: downsample {v!r} is not one of "
                                 f"{list(self.downsample)}")
            out.append(self.downsample.index(v))
        row = np.asarray(out, dtype=np.int64)
        self.validate(row)
        return row

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "layers": self.layers, "downsample": list(self.downsample),
                "first_levels": list(self.first_levels), "max_step": self.max_step}
