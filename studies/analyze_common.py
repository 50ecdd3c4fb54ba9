"""What every ``nasatlas analyze KIND`` command shares: the table options, reading any table (a Parquet
or CSV file, or a run directory's log), metric-name resolution and the registry of analysis kinds.

An analysis kind is a module with ``add_arguments(parser)`` (its own options) and
``run_cli(args) -> dict`` (the JSON-able result, whose keys the module's docstring documents);
:data:`ANALYZE_KINDS` maps each ``nasatlas analyze`` sub-command to its module.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

__all__ = ["ANALYZE_KINDS", "add_table_arguments", "read_table", "metric_column"]

#: ``nasatlas analyze KIND`` -> (module, one-line help)
ANALYZE_KINDS: dict[str, tuple[str, str]] = {
    "landscape": ("nasatlas.studies.landscape", "fitness-distance correlation, autocorrelation, local maxima"),
    "cardinality": ("nasatlas.studies.cardinality", "exact nominal and unique counts, with the papers' figures"),
    "density": ("nasatlas.studies.density", "pairwise and nearest-neighbour distances, share within eps of best"),
    "edf": ("nasatlas.studies.edf", "error EDFs of (sub-)spaces, complexity-normalised, with KS tests"),
    "functional": ("nasatlas.studies.functional", "1 - linear CKA of one-edit neighbours vs the seed floor"),
}


def add_table_arguments(p: argparse.ArgumentParser, *, metric: bool = True, required: bool = True) -> None:
    """``--space``, ``--table``, ``--arch-column``, ``--metric`` (optional) and ``--json``."""
    p.add_argument("--space", required=True, help="a registered space or a declaration file")
    p.add_argument("--table", required=required, default=None,
                   help="a Parquet or CSV file, or a run directory (its log)")
    p.add_argument("--arch-column", default="arch")
    if metric:
        p.add_argument("--metric", default="valid_acc", help="a table column or a log's metric_* name")
    p.add_argument("--json", action="store_true")


def read_table(path: str | Path) -> Any:
    """A Parquet/CSV table (read as the tabular evaluator reads one), or the ok rows of a run
    directory's log."""
    from nasatlas.evaluators.tabular import read_table as read_file
    p = Path(path)
    if p.is_dir():
        from nasatlas.results import ResultLog
        ev = p / "evaluations" if (p / "evaluations").is_dir() else p
        df = ResultLog(ev).read()
        return df[df["status"] == "ok"]
    try:
        return read_file(p)
    except ValueError as e:
        raise ValueError(f"--table: {e}, or a run directory") from None


def metric_column(table: Any, metric: str) -> str:
    """The column holding ``metric``: the name itself, or a log's ``metric_<name>``."""
    if metric in table.columns:
        return metric
    if f"metric_{metric}" in table.columns:
        return f"metric_{metric}"
    raise ValueError(f"--metric {metric!r} is neither a column nor a metric_* column of the table; "
                     f"columns: {sorted(map(str, table.columns))[:30]}")
