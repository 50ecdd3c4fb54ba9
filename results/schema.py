"""The declared, versioned Arrow schema of the result log and table helpers.

Fixed columns (in this order) are declared in :data:`FIXED_SCHEMA`; after them come the dynamic
``metric_*`` columns (sorted) and any extra ``cost_*`` columns (sorted), all ``float64``.  Parts
whose dynamic columns differ are unioned by :func:`unify`; a missing value is NaN.

Rows travel through the write-ahead log as flat JSON-ready dicts (timestamps as integer
microseconds since the epoch); :func:`rows_to_table` turns them into a table of this schema.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .record import COST_PREFIX, METRIC_PREFIX, SCHEMA_VERSION, STANDARD_COSTS, EvalRecord, to_micros

SCHEMA_VERSION_KEY = b"nasatlas.schema_version"
TIMESTAMP = pa.timestamp("us", tz="UTC")

FIXED_SCHEMA = pa.schema(
    [
        pa.field("schema_version", pa.int32(), nullable=False),
        pa.field("row_id", pa.string(), nullable=False),
        pa.field("study", pa.string(), nullable=False),
        pa.field("run_id", pa.string(), nullable=False),
        pa.field("trial", pa.int64(), nullable=False),
        pa.field("repeat", pa.int64(), nullable=False),
        pa.field("searcher", pa.string(), nullable=False),
        pa.field("space", pa.string(), nullable=False),
        pa.field("arch", pa.string(), nullable=False),
        pa.field("canonical_id", pa.string(), nullable=False),
        pa.field("evaluator", pa.string(), nullable=False),
        pa.field("budget", pa.string(), nullable=False),
        pa.field("seed", pa.int64(), nullable=False),
        pa.field("params", pa.string(), nullable=False),
        pa.field("status", pa.string(), nullable=False),
        pa.field("error", pa.string(), nullable=True),
        pa.field("started_at", TIMESTAMP, nullable=False),
        pa.field("finished_at", TIMESTAMP, nullable=False),
        pa.field("host", pa.string(), nullable=False),
        pa.field("device", pa.string(), nullable=False),
        pa.field("nasatlas_version", pa.string(), nullable=False),
        *(pa.field(COST_PREFIX + name, pa.float64(), nullable=False) for name in STANDARD_COSTS),
    ],
    metadata={SCHEMA_VERSION_KEY: str(SCHEMA_VERSION).encode()},
)
"""Fixed columns of schema version :data:`SCHEMA_VERSION`."""

FIXED_COLUMNS: tuple[str, ...] = tuple(FIXED_SCHEMA.names)
_FIXED_SET = frozenset(FIXED_COLUMNS)
_TIMESTAMP_COLUMNS = ("started_at", "finished_at")


def is_dynamic(name: str) -> bool:
    """True for a ``metric_*`` column or a ``cost_*`` column that is not one of the standard five."""
    return (name.startswith(METRIC_PREFIX) or name.startswith(COST_PREFIX)) and name not in _FIXED_SET


def dynamic_keys(rows: Iterable[Mapping[str, Any]]) -> set[str]:
    """The dynamic columns used by any of ``rows``."""
    keys: set[str] = set()
    for row in rows:
        keys.update(row)
    return {k for k in keys if is_dynamic(k)}


def check_column(name: object) -> str:
    """Validate a column name given to a reader (fixed, ``metric_*`` or ``cost_*``)."""
    if not isinstance(name, str):
        raise TypeError(f"column names must be str, got {type(name).__name__} {name!r}")
    if name not in _FIXED_SET and not is_dynamic(name):
        raise ValueError(
            f"unknown column {name!r}; use one of {', '.join(FIXED_COLUMNS)} or a 'metric_*'/'cost_*' column"
        )
    return name


def order_dynamic(names: Iterable[str]) -> list[str]:
    """Dynamic columns in schema order: ``metric_*`` sorted, then extra ``cost_*`` sorted."""
    unique = {n for n in names if is_dynamic(n)}
    metrics = sorted(n for n in unique if n.startswith(METRIC_PREFIX))
    costs = sorted(n for n in unique if n.startswith(COST_PREFIX))
    return metrics + costs


def dynamic_columns(schema: pa.Schema) -> list[str]:
    """The dynamic columns of an Arrow schema, in schema order."""
    return order_dynamic(schema.names)


def log_schema(dynamic: Iterable[str] = ()) -> pa.Schema:
    """The full schema: fixed columns plus the given dynamic columns (float64)."""
    fields = list(FIXED_SCHEMA) + [pa.field(n, pa.float64()) for n in order_dynamic(dynamic)]
    return pa.schema(fields, metadata=FIXED_SCHEMA.metadata)


def schema_version_of(schema: pa.Schema) -> int | None:
    """The schema version stored in a part's metadata (``None`` when absent)."""
    meta = schema.metadata or {}
    raw = meta.get(SCHEMA_VERSION_KEY)
    return int(raw) if raw is not None else None


def record_to_json_row(record: EvalRecord) -> dict[str, Any]:
    """A record as a flat JSON-ready dict (timestamps as exact integer microseconds)."""
    row = record.to_row()
    for name in _TIMESTAMP_COLUMNS:
        row[name] = to_micros(row[name], name)
    return row


def _column(name: str, values: list[Any], dtype: pa.DataType) -> pa.Array:
    if pa.types.is_timestamp(dtype):
        return pa.array(values, type=pa.int64()).cast(dtype)
    return pa.array(values, type=dtype)


def rows_to_table(rows: Sequence[Mapping[str, Any]], dynamic: Iterable[str] | None = None) -> pa.Table:
    """Build a table of the log schema from JSON-ready rows.

    ``dynamic`` fixes the dynamic columns (rows missing one get NaN); by default it is the union of
    the rows' dynamic keys.  Raises ``KeyError`` when a row lacks a fixed column.
    """
    if dynamic is None:
        dynamic = dynamic_keys(rows)
    schema = log_schema(dynamic)
    arrays = []
    for fld in schema:
        if fld.name in _FIXED_SET:
            values = [row[fld.name] for row in rows]
        else:
            values = [row.get(fld.name, math.nan) for row in rows]
        arrays.append(_column(fld.name, values, fld.type))
    return pa.Table.from_arrays(arrays, schema=schema)


def _nan_column(length: int) -> pa.Array:
    return pa.array(np.full(length, np.nan, dtype=np.float64))


def conform(table: pa.Table, columns: Sequence[str]) -> pa.Table:
    """Select ``columns`` from ``table`` in that order, casting fixed columns to their declared
    type and filling dynamic columns the table lacks with NaN.

    Raises ``KeyError`` when a fixed column is missing (a part written by something else).
    """
    arrays = []
    fields = []
    for name in columns:
        if name in _FIXED_SET:
            fld = FIXED_SCHEMA.field(name)
            if name not in table.column_names:
                raise KeyError(name)
            column = table.column(name)
            if column.type != fld.type:
                column = column.cast(fld.type)
        else:
            fld = pa.field(name, pa.float64())
            if name in table.column_names:
                column = table.column(name)
                if column.type != pa.float64():
                    column = column.cast(pa.float64())
            else:
                column = pa.chunked_array([_nan_column(table.num_rows)], pa.float64())
        arrays.append(column)
        fields.append(fld)
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields, metadata=FIXED_SCHEMA.metadata))


def union_columns(schemas: Iterable[pa.Schema]) -> list[str]:
    """All columns of the log schema present in any of ``schemas`` (fixed ones always)."""
    dynamic: set[str] = set()
    for schema in schemas:
        dynamic.update(n for n in schema.names if is_dynamic(n))
    return list(FIXED_COLUMNS) + order_dynamic(dynamic)


def concat_runs(tables: Sequence[pa.Table]) -> list[pa.Table]:
    """Concatenate each run of consecutive tables sharing a schema (cheap: no copy), keeping order,
    so per-table work (:func:`conform`, filtering) runs once per run instead of once per part."""
    runs: list[list[pa.Table]] = []
    for table in tables:
        if runs and runs[-1][0].schema.equals(table.schema):
            runs[-1].append(table)
        else:
            runs.append([table])
    return [run[0] if len(run) == 1 else pa.concat_tables(run) for run in runs]


def unify(tables: Sequence[pa.Table], columns: Sequence[str] | None = None) -> pa.Table:
    """Concatenate tables whose dynamic columns differ; missing values become NaN."""
    if columns is None:
        columns = union_columns(t.schema for t in tables)
    if not tables:
        return empty_table(columns)
    return pa.concat_tables([conform(t, columns) for t in concat_runs(tables)])


def empty_table(columns: Sequence[str] | None = None) -> pa.Table:
    """A table with no rows and the given columns (all fixed columns by default)."""
    schema = log_schema(c for c in (columns or ()) if is_dynamic(c))
    if columns is not None:
        schema = pa.schema([schema.field(c) for c in columns], metadata=schema.metadata)
    return schema.empty_table()


_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _prefix_keys(column: pa.ChunkedArray) -> np.ndarray | None:
    """A 64-bit key per row id, mixed from its first 16 bytes straight from the Arrow buffers;
    ``None`` unless all ids have one length of at least 16 bytes (``uuid4().hex`` has 32)."""
    keys = []
    for chunk in column.chunks:
        n = len(chunk)
        if n == 0:
            continue
        if chunk.type != pa.string() or chunk.null_count:
            return None
        offsets = np.frombuffer(chunk.buffers()[1], dtype=np.int32, count=n + 1, offset=4 * chunk.offset)
        width = int(offsets[1] - offsets[0])
        if width < 16 or offsets[-1] - offsets[0] != width * n or not np.all(np.diff(offsets) == width):
            return None
        data = np.frombuffer(chunk.buffers()[2], dtype=np.uint8, count=width * n, offset=int(offsets[0]))
        words = np.ascontiguousarray(data.reshape(n, width)[:, :16]).view(np.uint64)
        keys.append((words[:, 0] * _GOLDEN) ^ words[:, 1])
    return np.concatenate(keys) if keys else np.empty(0, dtype=np.uint64)


def row_ids_distinct(column: pa.ChunkedArray) -> bool:
    """Exactly whether all row ids differ.

    Fast path: the key of :func:`_prefix_keys` is a function of the id, so distinct keys imply
    distinct ids; only when two keys collide (a duplicate, or ids sharing a prefix) does the exact
    string hash run.
    """
    keys = _prefix_keys(column)
    if keys is not None:
        ordered = np.sort(keys)
        if not bool((ordered[1:] == ordered[:-1]).any()):
            return True
    return bool(pc.count_distinct(column).as_py() == len(column))


def dedupe(table: pa.Table) -> pa.Table:
    """Drop rows whose ``row_id`` appeared earlier in the table (keeps the first occurrence)."""
    if table.num_rows < 2 or row_ids_distinct(table.column("row_id")):
        return table
    index = pa.array(np.arange(table.num_rows, dtype=np.int64))
    keyed = pa.table({"row_id": table.column("row_id"), "_i": index})
    first = keyed.group_by("row_id", use_threads=False).aggregate([("_i", "min")]).column("_i_min")
    return table.take(np.sort(first.to_numpy()))


Filters = Mapping[str, Any]
"""``{column: value}`` keeps rows equal to ``value``; ``{column: [v1, v2]}`` (list, tuple, set)
keeps rows equal to any of them; ``None`` matches missing values.  All conditions must hold."""


def filter_table(table: pa.Table, filters: Filters | None) -> pa.Table:
    """Apply :data:`Filters` to a table of the log schema."""
    if not filters:
        return table
    mask = None
    for name, wanted in filters.items():
        values = list(wanted) if isinstance(wanted, (list, tuple, set, frozenset)) else [wanted]
        dtype = table.schema.field(name).type
        try:
            value_set = pa.array(values, type=dtype)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError) as exc:
            raise ValueError(
                f"filter on {name!r}: cannot compare with {values!r} ({exc}); pass values of type {dtype}"
            ) from exc
        hit = pc.is_in(table.column(name), value_set=value_set, skip_nulls=False)
        mask = hit if mask is None else pc.and_(mask, hit)
    return table.filter(mask)


def check_filters(filters: Filters | None) -> dict[str, Any]:
    """Validate the shape of a filters dict (see :data:`Filters`)."""
    if filters is None:
        return {}
    if not isinstance(filters, Mapping):
        raise TypeError(
            f"filters must be a dict {{column: value or list of values}}, got {type(filters).__name__}"
        )
    for name in filters:
        check_column(name)
    return dict(filters)
