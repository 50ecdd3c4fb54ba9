"""The cardinality table: exact nominal and unique counts of spaces under named conventions, with the
published figure of each space beside it as documentation.

Every number in a row's count fields is computed from the space's declaration (``space.cardinality()``,
``space.unique_cardinality(convention)``, ``space.extra_counts()``); a unique count the space cannot
enumerate is reported as ``"not enumerable"``, never estimated. The figures the papers state are
kept apart, in :data:`PAPER_FIGURES` and the row's ``paper`` field, each with its source, so that a
reader compares the two; they never feed a computation.

``nasatlas analyze cardinality [--space NAME_OR_FILE ...] [--unique] --json`` prints a JSON list of
rows (``cardinality_rows(..., details=True)``; without ``--json``, one ``space  summary`` line each)
with the keys

* ``space`` (the space's name), ``origin`` (``"registry"`` or the declaration file it came from);
* ``cardinality``: the exact nominal count (a JSON integer, however large);
* with ``--unique``: ``unique`` (the default convention's isomorphism-aware count, ``null`` where not
  enumerable; the key ``nasatlas spaces cardinality`` has always printed), ``unique_counts``
  (``{convention: int | "not enumerable"}`` for every convention of ``space.conventions()``) and
  ``unique_note`` (why a count is missing, or ``""``);
* every extra count of ``space.extra_counts()`` as its own key (counts whose name starts with
  ``unique`` only with ``--unique``, since they enumerate), and ``count_notes`` (their meaning);
* ``sources``: the declaration's ``sources`` (papers and code it follows);
* ``paper``: a list of ``{"count", "figure", "source"}``: the published figure for the count named
  ``count`` (``cardinality``, ``unique:<convention>`` or an extra count's key), as the paper writes it.
  Registered spaces only (a declaration file may reuse a name but not the space).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["PaperFigure", "PAPER_FIGURES", "cardinality_rows", "cardinality_section", "add_arguments", "run_cli"]

NOT_ENUMERABLE = "not enumerable"


@dataclass(frozen=True)
class PaperFigure:
    """A figure as a paper states it (documentation, never an input to a computation).

    ``count`` names the computed count it documents: ``"cardinality"``, ``"unique:<convention>"``
    or a key of ``space.extra_counts()``.
    """

    count: str
    figure: str
    source: str

    def to_dict(self) -> dict[str, str]:
        return {"count": self.count, "figure": self.figure, "source": self.source}


#: registered space -> the published figures for its default declaration, with sources. The
#: NB201, NB101, Auto-DeepLab and ENAS figures are the ones the repository's tests and acceptance
#: checks already compare with (tests/test_spaces_counts.py, ../shared/checks/acceptance.py,
#: spaces/catalog.py); DARTS and PNAS appear there only as derived formulas, so none is given here.
PAPER_FIGURES: dict[str, tuple[PaperFigure, ...]] = {
    "nb201": (
        PaperFigure("cardinality", "15,625 (5^6 cells)", "Dong & Yang 2020, NAS-Bench-201 (ICLR), Sec. 2.1"),
        PaperFigure("unique:published", "6,466 (\"6.5k\" unique topologies)",
                    "Dong et al. 2021, NATS-Bench (TPAMI), Table 1 (\"6.5k\"); the exact count is NATS-Bench's own, "
                    "to_unique_str(consider_zero=True), in its notebooks/issue-12.ipynb (D-X-Y/NATS-Bench #13, #43)"),
    ),
    "nb101": (
        PaperFigure("unique:default", "423,624 unique graphs (\"423k\")",
                    "Ying et al. 2019, NAS-Bench-101 (ICML), abstract and Sec. 2; google-research/nasbench README"),
    ),
    "autodeeplab": (
        PaperFigure("paths_paper", "2.9 x 10^4 network-level paths", "Liu et al. 2019, Auto-DeepLab (CVPR), Sec. 3"),
    ),
    "enas_macro": (
        PaperFigure("cardinality", "1.6 x 10^29 networks (L = 12)", "Pham et al. 2018, ENAS (ICML), Sec. 2.2"),
    ),
    "fbnet": (
        PaperFigure("cardinality", "9^22 ~ 10^21 architectures", "Wu et al. 2019, FBNet (CVPR), Sec. 3.2"),
    ),
    "mnasnet": (
        PaperFigure("cardinality", "about 10^13 (S = 432, B = 5)", "Tan et al. 2019, MnasNet (CVPR), Sec. 4.1"),
    ),
}


def _is_file(name: str) -> bool:
    return name.endswith((".toml", ".json")) or Path(name).is_file()


def _unique_fields(space: Any) -> dict[str, Any]:
    from nasatlas.spaces.space import MAX_ENUMERATE
    counts: dict[str, int | str] = {}
    for conv in space.conventions():
        value = space.unique_cardinality(None if conv == "default" else conv)
        counts[conv] = NOT_ENUMERABLE if value is None else int(value)
    missing = [c for c, v in counts.items() if v == NOT_ENUMERABLE]
    note = (f"{space.cardinality():,} architectures: more than {MAX_ENUMERATE:,} to enumerate for "
            f"canonical forms, and no block counts its classes in closed form" if missing else "")
    first = counts[space.conventions()[0]]
    return {"unique": None if first == NOT_ENUMERABLE else first, "unique_counts": counts, "unique_note": note}


def cardinality_rows(names: Sequence[str] | None = None, unique: bool = False,
                     details: bool = False) -> list[dict[str, Any]]:
    """One row per space: ``space``, ``cardinality``, the extra counts and, with ``unique``, ``unique``
    (``None`` where not enumerable); with ``details`` also ``origin``, ``unique_counts`` and
    ``unique_note`` (with ``unique``), ``count_notes``, ``sources`` and ``paper`` (keys in the module
    docstring). Without ``details`` the rows are what ``nasatlas spaces cardinality`` has always printed.

    ``names`` are registered names or declaration files; ``None`` means every registered space.
    Counts that need enumeration (``unique``, ``unique_counts``, extra counts named ``unique*``) are
    only computed with ``unique``.
    """
    from nasatlas.spaces import list_spaces
    from nasatlas.spaces.declaration import load_space

    rows = []
    for name in names if names is not None else list_spaces():
        name = str(name)
        space = load_space(name)
        from_file = _is_file(name)
        row: dict[str, Any] = {"space": space.name, "cardinality": space.cardinality()}
        if details:
            row = {"space": space.name, "origin": name if from_file else "registry", **row}
        if unique:
            fields = _unique_fields(space)
            row.update(fields if details else {"unique": fields["unique"]})
        notes = {}
        for key, (fn, note) in space.counts.items():
            if key.startswith("unique") and not unique:
                continue
            value = fn(space)
            row[key] = NOT_ENUMERABLE if value is None and details else value
            notes[key] = note
        if details:
            row["count_notes"] = notes
            row["sources"] = list(space.sources)
            row["paper"] = [] if from_file else [f.to_dict() for f in PAPER_FIGURES.get(space.name, ())]
        rows.append(row)
    return rows


def _fmt(v: Any) -> str:
    return f"{v:,}" if isinstance(v, int) else str(v)


def _count_value(row: dict[str, Any], count: str) -> Any:
    if count.startswith("unique:"):
        return row.get("unique_counts", {}).get(count.split(":", 1)[1], "not here (analyze cardinality --unique)")
    return row.get(count, "–")


def cardinality_section(df: Any, study: dict[str, Any], run_dir: Any = None) -> str:
    """Report section: the exact size of the study's space (nominal, unique under each named
    convention) beside every registered space and the papers' figures, so a result reads against how
    much was searched."""
    from .studyfile import study_space

    space = study_space(study)
    n_eval = int(df["canonical_id"].nunique()) if len(df) else 0
    card = space.cardinality()
    uniq = space.unique_cardinality() if card <= 2_000_000 else None
    conv = space.conventions()[0]
    lines = ["## How big is the space?", "",
             f"`{space.name}` holds {card:,} architectures"
             + (f" ({uniq:,} unique up to isomorphism, convention `{conv}`)" if uniq else "")
             + f"; this run evaluated {n_eval:,} distinct isomorphism classes"
             + (f", {100 * n_eval / uniq:.3g}% of them." if uniq else "."), "",
             "Counts are computed from the declarations; the papers' figures are quoted beside them, with "
             "their sources, as documentation.", "",
             "| space | architectures | other counts | paper's figure (source) |", "|---|---|---|---|"]
    for row in cardinality_rows(unique=False, details=True):
        others = ", ".join(f"{k} = {_fmt(row[k])}" for k in row["count_notes"])
        paper = "; ".join(f"{p['count']}: {p['figure']} ({p['source']}); computed {_fmt(_count_value(row, p['count']))}"
                          for p in row["paper"])
        lines.append(f"| {row['space']} | {row['cardinality']:,} | {others} | {paper} |")
    return "\n".join(lines) + "\n"


# -- nasatlas analyze cardinality ---------------------------------------------------------------------

def add_arguments(p: argparse.ArgumentParser) -> None:
    """Options of ``nasatlas analyze cardinality``."""
    p.add_argument("--space", nargs="+", action="extend", default=None, metavar="NAME_OR_FILE",
                   help="registered spaces or declaration files (default: every registered space)")
    p.add_argument("--unique", action="store_true",
                   help="also count canonical (isomorphism) classes under every convention, where enumerable")
    p.add_argument("--json", action="store_true")


def run_cli(args: Any) -> Any:
    """``nasatlas analyze cardinality``: with ``--json`` the list of rows (keys in the module
    docstring); otherwise ``{space: one-line summary}`` for the ``key value`` text output."""
    rows = cardinality_rows(args.space, unique=args.unique, details=True)
    if getattr(args, "json", False):
        return rows
    out = {}
    for r in rows:
        parts = [f"cardinality={r['cardinality']:,}"]
        parts += [f"unique[{c}]={_fmt(v)}" for c, v in r.get("unique_counts", {}).items()]
        parts += [f"{k}={_fmt(r[k])}" for k in r["count_notes"]]
        parts += [f"paper {p['count']}: {p['figure']} ({p['source']})" for p in r["paper"]]
        out[r["space"]] = "  ".join(parts)
    return out
