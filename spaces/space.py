"""A search space: a named composition of primitives, and everything derived from it.

``Space`` concatenates its primitives' decision blocks into one decision vector. The blocks are
independent, so the cardinality is the product of the blocks' cardinalities, rank/unrank is a
mixed radix over the blocks' ranks, sampling concatenates the blocks' samples and neighbours are
one block's neighbours with the others fixed. Nothing here is specific to one space.

The string form is the format researchers already use: a single NB201 edge DAG prints as its
NB201 string, a single chain as its layer tokens, and anything with cells or several blocks as
a DARTS-style ``Genotype(normal=[('sep_conv_3x3', 0), ...], normal_concat=[2, 3, 4, 5], ...)``.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from .decisions import Arch, Decision
from .formats import format_genotype, parse_genotype
from .primitives import Primitive, check_rows

__all__ = ["Space"]

#: largest nominal cardinality that generic code enumerates (unique counts, unique sampling)
MAX_ENUMERATE = 2_000_000


class Space:
    """An immutable search space built from primitives.

    Args:
        name: registry name, also stored in every :class:`Arch`.
        primitives: the decision blocks, in order.
        description: one paragraph for ``nasatlas spaces show``.
        sources: papers and code the declaration and its counting conventions follow.
        counts: extra named counting conventions, ``name -> (callable, note)``; the callable
            takes the space and returns an int (e.g. ``cardinality_survey``).
        family: the network family the builder uses (``"nb201"``, ``"darts"``, ...), or None.
        params: the keyword parameters the space was declared with (recorded in logs).
    """

    def __init__(self, name: str, primitives: Sequence[Primitive], *, description: str = "",
                 sources: Sequence[str] = (),
                 counts: dict[str, tuple[Callable[[Space], int | None], str]] | None = None,
                 family: str | None = None, params: dict[str, Any] | None = None) -> None:
        if not primitives:
            raise ValueError(f"space {name!r}: declare at least one primitive")
        names = [p.name for p in primitives]
        if len(set(names)) != len(names):
            raise ValueError(f"space {name!r}: primitive names {names} must be unique")
        self.name = name
        self.primitives = tuple(primitives)
        self.description = description
        self.sources = tuple(sources)
        self.counts = dict(counts or {})
        self.family = family
        self.params = dict(params or {})
        self.decisions: tuple[Decision, ...] = tuple(d for p in self.primitives for d in p.decisions)
        dn = [d.name for d in self.decisions]
        if len(set(dn)) != len(dn):
            raise ValueError(f"space {name!r}: decision names must be unique")
        bounds = np.cumsum([0] + [p.width for p in self.primitives])
        self._slices = tuple(slice(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:]))
        self._unique_cache: dict[str, np.ndarray] = {}

    # -- basic facts ------------------------------------------------------------------------
    def __repr__(self) -> str:
        return f"Space({self.name!r}, {len(self.decisions)} decisions, cardinality={self.cardinality():,})"

    @property
    def width(self) -> int:
        """Length of the decision vector."""
        return len(self.decisions)

    @property
    def sizes(self) -> tuple[int, ...]:
        return tuple(d.size for d in self.decisions)

    @property
    def is_product(self) -> bool:
        """True when every combination of options is valid (rank/unrank is a mixed radix)."""
        return all(p.is_product for p in self.primitives)

    def primitive(self, name: str) -> Primitive:
        for p in self.primitives:
            if p.name == name:
                return p
        raise ValueError(f"space {self.name!r} has no block {name!r}; blocks: {[p.name for p in self.primitives]}")

    def blocks(self, rows: np.ndarray) -> list[np.ndarray]:
        """Split rows into one array per primitive."""
        rows = check_rows(rows, self.width, self.name)
        return [rows[:, s] for s in self._slices]

    # -- counting ---------------------------------------------------------------------------
    def cardinality(self) -> int:
        """Exact number of architectures (Python int): the product over blocks."""
        return math.prod(p.cardinality() for p in self.primitives)

    def extra_counts(self) -> dict[str, int | None]:
        """The space's named extra counting conventions (e.g. ``cardinality_survey``)."""
        return {k: fn(self) for k, (fn, _note) in self.counts.items()}

    def conventions(self) -> tuple[str, ...]:
        """Canonical-form conventions; the first is the default (``unique`` in the CLI)."""
        for p in self.primitives:
            conv = getattr(p, "conventions", None)
            if conv:
                return tuple(conv)
        return ("default",)

    def unique_cardinality(self, convention: str | None = None, max_enumerate: int = MAX_ENUMERATE) -> int | None:
        """Number of distinct canonical forms, exact, or None where it is not computed.

        A block may count its own classes exactly (NAS-Bench-101 by Burnside's lemma); otherwise
        the space is enumerated when its nominal cardinality is at most ``max_enumerate``.
        """
        if len(self.primitives) == 1 and hasattr(self.primitives[0], "unique_cardinality"):
            return self.primitives[0].unique_cardinality()  # type: ignore[attr-defined,no-any-return]
        if self.cardinality() > max_enumerate:
            return None
        return len(self._unique_representatives(convention))

    def _unique_representatives(self, convention: str | None) -> np.ndarray:
        key = convention or self.conventions()[0]
        if key not in self._unique_cache:
            rows = self.enumerate()
            seen: dict[str, int] = {}
            for i, row in enumerate(rows):
                seen.setdefault(self.canonical_form_row(row, convention), i)
            self._unique_cache[key] = rows[np.fromiter(seen.values(), dtype=np.int64)]
        return self._unique_cache[key]

    # -- architectures <-> rows -------------------------------------------------------------
    def validate(self, rows: np.ndarray) -> None:
        """Raise ValueError naming the first invalid decision."""
        for p, block in zip(self.primitives, self.blocks(rows)):
            p.validate(block)

    def is_valid(self, rows: np.ndarray) -> np.ndarray:
        ok = np.ones(check_rows(rows, self.width, self.name).shape[0], dtype=bool)
        for p, block in zip(self.primitives, self.blocks(rows)):
            ok &= p.is_valid(block)
        return ok

    def arch(self, indices: Iterable[int]) -> Arch:
        """A validated architecture from decision indices."""
        row = np.asarray(list(indices), dtype=np.int64)
        if row.shape != (self.width,):
            raise ValueError(f"space {self.name!r}: expected {self.width} decision indices, got {row.shape[0]}")
        self.validate(row)
        return Arch(self.name, tuple(int(v) for v in row))

    def _row(self, arch: Arch | np.ndarray | Sequence[int]) -> np.ndarray:
        if isinstance(arch, Arch):
            if arch.space != self.name:
                raise ValueError(f"architecture belongs to space {arch.space!r}, not {self.name!r}")
            return np.asarray(arch.indices, dtype=np.int64)
        return np.asarray(arch, dtype=np.int64)

    def rows(self, archs: Iterable[Arch]) -> np.ndarray:
        """Stack architectures into an ``(n, width)`` array."""
        return np.asarray([self._row(a) for a in archs], dtype=np.int64).reshape(-1, self.width)

    def archs(self, rows: np.ndarray) -> list[Arch]:
        """Wrap rows (already valid) as architectures."""
        rows = check_rows(rows, self.width, self.name)
        return [Arch(self.name, tuple(r)) for r in rows.tolist()]

    # -- sampling and enumeration -----------------------------------------------------------
    def sample(self, rng: np.random.Generator, n: int, over: str = "nominal") -> np.ndarray:
        """``n`` uniform samples as an ``(n, width)`` array of decision indices.

        ``over="nominal"`` is uniform over the space as declared; ``over="unique"`` is uniform
        over canonical classes (isomorphic architectures counted once), returning each class's
        first member in rank order; it needs the unique classes to be enumerable.
        """
        if not isinstance(rng, np.random.Generator):
            raise TypeError("rng must be a numpy.random.Generator, e.g. numpy.random.default_rng(seed)")
        if n < 0:
            raise ValueError(f"n={n}; the number of samples must be >= 0")
        if over == "nominal":
            return np.concatenate([p.sample(rng, n) for p in self.primitives], axis=1)
        if over == "unique":
            if len(self.primitives) == 1 and hasattr(self.primitives[0], "sample_unique"):
                return self.primitives[0].sample_unique(rng, n)  # type: ignore[attr-defined,no-any-return]
            if self.cardinality() > MAX_ENUMERATE:
                raise ValueError(f"space {self.name!r}: over='unique' needs enumerable unique classes; the space has "
                                 f"{self.cardinality():,} architectures; use over='nominal'")
            reps = self._unique_representatives(None)
            return reps[rng.integers(0, len(reps), size=n)]
        raise ValueError(f"over={over!r}; allowed: 'nominal' or 'unique'")

    def rank(self, rows: np.ndarray | Arch) -> list[int]:
        """Index of each architecture in ``0 .. cardinality()-1``."""
        rows = self._row(rows) if isinstance(rows, Arch) else rows
        self.validate(rows)
        per_block = [p.rank(b) for p, b in zip(self.primitives, self.blocks(rows))]
        cards = [p.cardinality() for p in self.primitives]
        out = []
        for digits in zip(*per_block):
            r = 0
            for d, c in zip(digits, cards):
                r = r * c + int(d)
            out.append(r)
        return out

    def unrank(self, indices: Sequence[int]) -> np.ndarray:
        """Rows for the given indices (inverse of :meth:`rank`)."""
        cards = [p.cardinality() for p in self.primitives]
        if len(cards) == 1:
            return self.primitives[0].unrank(indices)
        digits = mixed_radix_unrank_big(indices, cards)
        return np.concatenate([p.unrank([d[j] for d in digits]) for j, p in enumerate(self.primitives)], axis=1)

    def enumerate(self, limit: int = MAX_ENUMERATE) -> np.ndarray:
        """Every architecture, in rank order; refuses spaces larger than ``limit``."""
        card = self.cardinality()
        if card > limit:
            raise ValueError(f"space {self.name!r} has {card:,} architectures, more than limit={limit:,}; "
                             "sample it instead or raise the limit")
        if self.is_product and len(self.primitives) >= 1:
            return enumerate_product(self.sizes)
        return self.unrank(range(card))

    # -- text -------------------------------------------------------------------------------
    def _single_string(self) -> bool:
        return len(self.primitives) == 1 and self.primitives[0].kind in ("edge_dag", "chain", "nb101")

    def to_str(self, arch: Arch | np.ndarray) -> str:
        """The canonical string of an architecture (round-trips through :meth:`from_str`)."""
        row = self._row(arch)
        self.validate(row)
        if self._single_string():
            return str(self.primitives[0].to_value(row))
        fields: dict[str, Any] = {}
        for p, s in zip(self.primitives, self._slices):
            v = p.to_value(row[s])
            if isinstance(v, dict):
                fields.update(v)
            else:
                fields[p.name] = v
        return format_genotype(fields)

    def from_str(self, text: str) -> Arch:
        """Parse a string in this space's format, with errors naming the field and the fix."""
        if not isinstance(text, str):
            raise TypeError(f"expected an architecture string, got {type(text).__name__}")
        if self._single_string():
            row = self.primitives[0].from_value(text)
        else:
            fields = parse_genotype(text)
            known: set[str] = set()
            parts = []
            for p in self.primitives:
                keys = p.keys() if hasattr(p, "keys") else [p.name]
                known.update(keys)
                if hasattr(p, "keys"):
                    parts.append(p.from_value({k: fields[k] for k in keys if k in fields}))
                else:
                    if p.name not in fields:
                        raise ValueError(f"space {self.name!r}: the string has no field {p.name!r}; fields: "
                                         f"{sorted(known | {q.name for q in self.primitives})}")
                    parts.append(p.from_value(fields[p.name]))
            extra = set(fields) - known
            if extra:
                raise ValueError(f"space {self.name!r}: unknown field(s) {sorted(extra)}; allowed: {sorted(known)}")
            row = np.concatenate(parts)
        self.validate(row)
        return Arch(self.name, tuple(int(v) for v in row))

    def to_json(self, arch: Arch) -> str:
        """JSON with the space name, the string and the decision indices."""
        return json.dumps({"space": self.name, "arch": self.to_str(arch), "indices": list(self._row(arch).tolist())})

    def from_json(self, text: str) -> Arch:
        obj = json.loads(text)
        if not isinstance(obj, dict) or obj.get("space") != self.name:
            raise ValueError(f"JSON architecture must be an object with space={self.name!r}")
        if "arch" in obj:
            a = self.from_str(obj["arch"])
            if "indices" in obj and list(a.indices) != list(obj["indices"]):
                raise ValueError("JSON architecture: 'arch' and 'indices' disagree; give one of them")
            return a
        if "indices" in obj:
            return self.arch(obj["indices"])
        raise ValueError("JSON architecture needs an 'arch' string or 'indices'")

    # -- canonical forms --------------------------------------------------------------------
    def canonical_form_row(self, row: np.ndarray, convention: str | None = None) -> str:
        parts = []
        for p, s in zip(self.primitives, self._slices):
            if convention is not None and getattr(p, "conventions", None):
                parts.append(p.canonical(row[s], convention))  # type: ignore[call-arg]
            else:
                parts.append(p.canonical(row[s]))
        return parts[0] if len(parts) == 1 else " | ".join(f"{p.name}:{c}" for p, c in zip(self.primitives, parts))

    def canonical_form(self, arch: Arch | np.ndarray, convention: str | None = None) -> str:
        """Isomorphism-aware canonical form: equal for architectures that are the same up to
        relabelling intermediate nodes (and, for NB201, under the named convention)."""
        if convention is not None and convention not in self.conventions():
            raise ValueError(f"space {self.name!r}: convention={convention!r}; allowed: {list(self.conventions())}")
        return self.canonical_form_row(self._row(arch), convention)

    def canonical_id(self, arch: Arch | np.ndarray, convention: str | None = None) -> str:
        """A short hash of :meth:`canonical_form` (32 hex digits), stable across runs."""
        return hashlib.blake2b(self.canonical_form(arch, convention).encode(), digest_size=16).hexdigest()

    def isomorphic_variant(self, arch: Arch | np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """A random relabelling of the architecture that leaves its function unchanged."""
        row = self._row(arch)
        parts = []
        for p, s in zip(self.primitives, self._slices):
            relabel = getattr(p, "relabel", None)
            parts.append(relabel(row[s], rng) if relabel else row[s].copy())
        return np.concatenate(parts)

    # -- neighbours and distances -----------------------------------------------------------
    def neighbours(self, arch: Arch | np.ndarray) -> np.ndarray:
        """Every valid architecture one edit away, as rows."""
        row = self._row(arch)
        out = []
        for p, s in zip(self.primitives, self._slices):
            nbs = p.neighbours(row[s])
            block = np.repeat(row[None, :], len(nbs), axis=0)
            block[:, s] = nbs
            out.append(block)
        return np.concatenate(out, axis=0) if out else np.zeros((0, self.width), dtype=np.int64)

    distance_kinds = ("edit", "hamming", "path")

    def distance(self, a: Arch | np.ndarray, b: Arch | np.ndarray, kind: str = "edit") -> np.ndarray:
        """Distance between rows (broadcast).

        * ``hamming``: number of differing decisions;
        * ``edit``: number of one-edit moves (the neighbour relation's graph distance for cells:
          changing one edge's op or one edge's input costs 1);
        * ``path``: Hamming distance between path encodings (White et al. 2021).
        """
        ra = self._row(a) if isinstance(a, Arch) else np.asarray(a, dtype=np.int64)
        rb = self._row(b) if isinstance(b, Arch) else np.asarray(b, dtype=np.int64)
        if kind == "hamming":
            return np.sum(ra != rb, axis=-1)
        if kind == "edit":
            ra2, rb2 = np.broadcast_arrays(ra, rb)
            return sum((p.edit_distance(ra2[..., s], rb2[..., s]) for p, s in zip(self.primitives, self._slices)),
                       start=np.zeros(ra2.shape[:-1], dtype=np.int64))
        if kind == "path":
            from .encodings import path_encoding
            ra2, rb2 = np.broadcast_arrays(ra, rb)
            pa = path_encoding(self, ra2.reshape(-1, self.width))
            pb = path_encoding(self, rb2.reshape(-1, self.width))
            return np.sum(pa != pb, axis=-1).reshape(ra2.shape[:-1])
        raise ValueError(f"kind={kind!r}; allowed distances: {list(self.distance_kinds)}")

    # -- description ------------------------------------------------------------------------
    def describe(self) -> dict[str, Any]:
        """A JSON-able description: blocks, decisions with their options, counts, sources."""
        return {
            "name": self.name, "description": self.description, "sources": list(self.sources),
            "params": self.params, "cardinality": self.cardinality(),
            "blocks": [p.describe() for p in self.primitives],
            "decisions": [{"name": d.name, "choices": list(d.choices)} for d in self.decisions],
            "counts": {k: note for k, (_fn, note) in self.counts.items()},
        }


def mixed_radix_unrank_big(indices: Sequence[int], radices: Sequence[int]) -> list[list[int]]:
    """Digits of Python-int indices in a mixed radix (the first radix most significant)."""
    card = math.prod(radices)
    out = []
    for idx in indices:
        idx = int(idx)
        if not 0 <= idx < card:
            raise ValueError(f"index {idx} is out of range: valid indices are 0 .. {card - 1}")
        digits = [0] * len(radices)
        for j in range(len(radices) - 1, -1, -1):
            idx, digits[j] = divmod(idx, radices[j])
        out.append(digits)
    return out


def enumerate_product(sizes: Sequence[int]) -> np.ndarray:
    """All rows of a product space in mixed-radix (rank) order, vectorised."""
    if not sizes:
        return np.zeros((1, 0), dtype=np.int64)
    grids = np.meshgrid(*[np.arange(s, dtype=np.int64) for s in sizes], indexing="ij")
    return np.stack([g.reshape(-1) for g in grids], axis=1)


