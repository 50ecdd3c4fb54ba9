"""Parquet part files of the result log: atomic writes and tolerant reads.

A part is written to ``.tmp-<name>.tmp`` in the same directory, fsynced, renamed with
``os.replace`` to ``part-<time_ns>-<tag>.parquet`` and the directory is fsynced, so a reader sees
either the whole file or nothing.  Temp names start with ``.`` and do not end in ``.parquet``, so
neither pyarrow's directory discovery nor a ``*.parquet`` glob picks them up.
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from .record import SCHEMA_VERSION
from .schema import FIXED_COLUMNS, dynamic_columns, schema_version_of
from .wal import ResultLogWarning, fsync_dir

PART_PREFIX = "part-"
PART_SUFFIX = ".parquet"
TEMP_PREFIX = ".tmp-"
TEMP_SUFFIX = ".tmp"


def part_name(tag: str) -> str:
    """A new part file name; names sort by creation time."""
    return f"{PART_PREFIX}{time.time_ns():020d}-{tag}{PART_SUFFIX}"


def list_parts(directory: Path) -> list[Path]:
    """All part files in ``directory``, sorted by name (creation order)."""
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return []
    return sorted(directory / n for n in names if n.startswith(PART_PREFIX) and n.endswith(PART_SUFFIX))


def list_temps(directory: Path, prefix: str) -> list[Path]:
    """Temp files whose name starts with ``.tmp-<prefix>``."""
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return []
    start = TEMP_PREFIX + prefix
    return [directory / n for n in names if n.startswith(start) and n.endswith(TEMP_SUFFIX)]


def write_part(directory: Path, table: pa.Table, tag: str, *, fsync: bool = True) -> Path:
    """Write ``table`` as a new part, atomically (temp file, fsync, rename, fsync directory)."""
    final = directory / part_name(tag)
    temp = directory / f"{TEMP_PREFIX}{final.name}{TEMP_SUFFIX}"
    try:
        with open(temp, "wb") as handle:
            pq.write_table(table, handle, compression="snappy")
            handle.flush()
            if fsync:
                os.fsync(handle.fileno())
        os.replace(temp, final)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    if fsync:
        fsync_dir(directory)
    return final


@dataclass(frozen=True)
class PartInfo:
    """Footer facts of one part file."""

    path: Path
    num_rows: int
    schema: pa.Schema

    @property
    def dynamic(self) -> list[str]:
        """Its ``metric_*`` and extra ``cost_*`` columns."""
        return dynamic_columns(self.schema)


def _check_schema(path: Path, schema: pa.Schema) -> None:
    version = schema_version_of(schema)
    if version is not None and version > SCHEMA_VERSION:
        raise ValueError(
            f"{path} was written with schema_version {version}, newer than this nasatlas reads "
            f"({SCHEMA_VERSION}); upgrade nasatlas"
        )
    names = set(schema.names)
    missing = [c for c in FIXED_COLUMNS if c not in names]
    if missing:
        raise pa.ArrowInvalid(f"not a result-log part: columns {missing} are missing")


def _warn_damaged(path: Path, exc: BaseException) -> None:
    warnings.warn(
        f"{path}: unreadable part file skipped ({type(exc).__name__}: {exc}); "
        f"move it aside once you have looked at it",
        ResultLogWarning,
        stacklevel=4,
    )


def part_info(path: Path, *, warn: bool = True) -> PartInfo | None:
    """Read a part's footer; ``None`` (after a warning naming the file, if ``warn``) when it is
    damaged.

    Raises ``FileNotFoundError`` when the file vanished (compacted meanwhile).
    """
    try:
        meta = pq.read_metadata(path)
        schema = meta.schema.to_arrow_schema()
        _check_schema(path, schema)
    except FileNotFoundError:
        raise
    except (OSError, pa.ArrowException) as exc:
        if warn:
            _warn_damaged(path, exc)
        return None
    return PartInfo(path, meta.num_rows, schema)


def read_part(path: Path, columns: Sequence[str] | None = None) -> pa.Table | None:
    """Read ``columns`` (those the part has; all when ``None``) of one part file.

    Returns ``None`` after a warning naming the file when it is damaged; raises
    ``FileNotFoundError`` when it vanished (compacted meanwhile), so the caller can list again.
    """
    try:
        with pq.ParquetFile(path) as handle:
            schema = handle.schema_arrow
            _check_schema(path, schema)
            wanted = None if columns is None else [c for c in columns if c in schema.names]
            return handle.read(columns=wanted)
    except FileNotFoundError:
        raise
    except (OSError, pa.ArrowException) as exc:
        _warn_damaged(path, exc)
        return None
