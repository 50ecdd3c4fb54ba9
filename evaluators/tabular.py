"""Tabular evaluator: look architectures up in a benchmark table the user gives.

A table is Parquet or CSV with one row per architecture: an architecture-string column in any
format the space parses (e.g. the NB201 string), metric columns, and optionally a training-time
column charged as ``cost_simulated_seconds``. The NAS-Bench-201 CIFAR-10 table of the
NAS-Landscapes release (Ochoa & Veerapen 2022; values from Dong & Yang 2020) is such a table.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from nasatlas.results import EvalResult
from nasatlas.spaces import Arch, Space

from .base import Evaluator

__all__ = ["TabularEvaluator", "read_table"]


def read_table(path: str | Path) -> Any:
    """Read a Parquet or CSV table into a DataFrame, with a clear error for a missing file."""
    import pandas as pd
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"tabular: table={str(p)!r} does not exist; give the path of a Parquet or CSV file")
    if p.suffix in (".parquet", ".pq"):
        return pd.read_parquet(p)
    if p.suffix in (".csv", ".tsv"):
        return pd.read_csv(p, sep="\t" if p.suffix == ".tsv" else ",")
    raise ValueError(f"tabular: table={str(p)!r} must end in .parquet or .csv")


class TabularEvaluator(Evaluator):
    """Look up metrics by architecture.

    Args:
        table: path of the Parquet/CSV table.
        arch_column: column holding architecture strings.
        metrics: metric columns to report (logged as ``metric_<column>``).
        time_column: optional column of training seconds, charged as ``cost_simulated_seconds``.
        params_column: optional column of parameter counts, reported as ``cost_params``.
    """

    def __init__(self, table: str, metrics: Sequence[str], arch_column: str = "arch",
                 time_column: str | None = None, params_column: str | None = None) -> None:
        self.table = table
        self.metrics = list(metrics)
        self.arch_column = arch_column
        self.time_column = time_column
        self.params_column = params_column

    def metric_names(self) -> list[str]:
        return list(self.metrics)

    def setup(self, space: Space) -> None:
        super().setup(space)
        df = read_table(self.table)
        need = [self.arch_column, *self.metrics] + [c for c in (self.time_column, self.params_column) if c]
        missing = [c for c in need if c not in df.columns]
        if missing:
            raise ValueError(f"tabular: table {self.table!r} has no column(s) {missing}; its columns are "
                             f"{list(df.columns)}: fix arch_column/metrics/time_column")
        if not self.metrics:
            raise ValueError("tabular: metrics is empty; name at least one metric column")
        cols = [c for c in need if c != self.arch_column]
        values = df[cols].to_numpy(dtype=float)
        texts = df[self.arch_column].astype(str).tolist()

        def canonical(i: int, text: str) -> str:
            try:
                return space.to_str(space.from_str(text))
            except ValueError as e:
                raise ValueError(f"tabular: row {i} of {self.table!r}: {self.arch_column}={text!r} does not parse "
                                 f"in space {space.name!r}: {e}") from None

        # tables written in the space's own string format (NB201's) are used as they are; others
        # are normalised row by row. The first rows decide, and are parsed either way.
        head = min(len(texts), 64)
        native = all(canonical(i, texts[i]) == texts[i] for i in range(head))
        keys = texts if native else [canonical(i, t) for i, t in enumerate(texts)]
        self._lookup = {k: dict(zip(cols, row)) for k, row in zip(keys, values.tolist())}

    def evaluate(self, arch: Arch, *, budget: Mapping[str, Any], seed: int, device: str = "cpu") -> EvalResult:
        key = self.space.to_str(arch)
        row = self._lookup.get(key)
        if row is None:
            return EvalResult.failed(f"architecture {key!r} is not in table {self.table!r}", budget=dict(budget))
        costs: dict[str, float] = {}
        if self.time_column:
            costs["simulated_seconds"] = row[self.time_column]
        if self.params_column:
            costs["params"] = row[self.params_column]
        return EvalResult(status="ok", metrics={m: row[m] for m in self.metrics}, costs=costs, budget=dict(budget))
