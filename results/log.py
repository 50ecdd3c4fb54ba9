"""The result log of a run: an append-only, schema-versioned Parquet dataset with a write-ahead file.

Layout of a run's ``evaluations/`` directory::

    part-<time_ns>-<tag>.parquet       rolled rows (read with pandas, pyarrow, DuckDB)
    _wal-<host>-<pid>-<rand>.jsonl     one per live (or crashed) writer: rows not rolled yet
    _compact.lock                      serialises compactions
    .tmp-*.tmp, .init-*.tmp            in-flight temp files (ignored by every reader)

Every :meth:`ResultLog.append` writes each record as one JSON line to the writer's own write-ahead
file and fsyncs it before returning, so a SIGKILL loses at most the evaluations in flight.  Every
``roll_rows`` rows, ``roll_seconds`` seconds (checked at the next append) and on :meth:`close` the
lines roll into a new part file (temp, fsync, rename, fsync directory) and the write-ahead file is
truncated.  A crash between the rename and the truncation leaves the rows twice; every row has a
unique ``row_id`` and readers keep the first copy, so nothing is read twice.

Readers (:meth:`ResultLog.read`) see all parts plus the un-rolled tails of every writer, live or
dead.  A damaged part or a torn last line is skipped with a :class:`ResultLogWarning` naming the file.

Parts a writer rolls carry every ``metric_*`` column the dataset had when it first rolled, so
in the usual case (one evaluator per study) all parts share one schema and ``pandas.read_parquet``,
``pyarrow.dataset.dataset`` and DuckDB's ``read_parquet('<dir>/*.parquet')`` agree.  When parts
differ, :meth:`ResultLog.compact` rewrites them to one schema; until then use :meth:`ResultLog.read`,
``read_parquet(..., union_by_name=true)`` in DuckDB or ``dataset(dir, schema=log.schema())``.
"""

from __future__ import annotations

import os
import re
import secrets
import socket
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import pandas as pd
import pyarrow as pa

from .parts import PartInfo, list_parts, list_temps, part_info, read_part, write_part
from .record import EvalRecord
from .schema import (
    FIXED_COLUMNS,
    Filters,
    check_column,
    check_filters,
    concat_runs,
    conform,
    dedupe,
    dynamic_keys,
    empty_table,
    filter_table,
    log_schema,
    order_dynamic,
    record_to_json_row,
    rows_to_table,
    unify,
    union_columns,
)
from .wal import (
    OrphanLock,
    WalWriter,
    encode_line,
    fsync_dir,
    list_wal_files,
    read_wal,
    wal_table,
    writer_id_of,
)

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

COMPACT_LOCK = "_compact.lock"
_READ_RETRIES = 20


def make_writer_id() -> str:
    """``<host>-<pid>-<random>``: unique per writer, readable in directory listings."""
    host = re.sub(r"[^A-Za-z0-9.]+", "_", socket.gethostname())[:64] or "host"
    return f"{host}-{os.getpid()}-{secrets.token_hex(4)}"


@dataclass(frozen=True)
class CompactionReport:
    """What :meth:`ResultLog.compact` did."""

    parts_before: int
    parts_after: int
    rows_rewritten: int


def done_keys(frame: pd.DataFrame) -> set[tuple[str, int, int]]:
    """``(searcher, repeat, trial)`` of every finished (``ok`` or ``failed``) row: what a resumed
    run can skip."""
    if frame.empty:
        return set()
    finished = frame[frame["status"].isin(["ok", "failed"])]
    return {
        (str(s), int(r), int(t))
        for s, r, t in zip(finished["searcher"], finished["repeat"], finished["trial"])
    }


class ResultLog:
    """Append-only result log of one run, stored in its ``evaluations/`` directory.

    Args:
        directory: the run's ``evaluations/`` folder (created at the first append).
        roll_rows: roll the write-ahead lines into a part file every this many rows.
        roll_seconds: ... or when the oldest un-rolled row is this old (checked at each append;
            there is no background thread, and un-rolled rows are durable and readable anyway).
        fsync: make every append durable before it returns (turn off only for throwaway logs).

    One instance writes from one process (it is thread-safe); each process of a parallel run opens
    its own.  Use it as a context manager, or call :meth:`close`, so the last rows are rolled.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        roll_rows: int = 256,
        roll_seconds: float = 30.0,
        fsync: bool = True,
    ) -> None:
        if isinstance(roll_rows, bool) or not isinstance(roll_rows, int) or roll_rows < 1:
            raise ValueError(f"roll_rows must be an int >= 1, got {roll_rows!r}")
        if not isinstance(roll_seconds, (int, float)) or not roll_seconds > 0:
            raise ValueError(f"roll_seconds must be a number > 0, got {roll_seconds!r}")
        self.directory = Path(directory)
        self.roll_rows = roll_rows
        self.roll_seconds = float(roll_seconds)
        self.fsync = fsync
        self._lock = threading.Lock()
        self._wal: WalWriter | None = None
        self._writer_id: str | None = None
        self._pid = -1
        self._seq = 0
        self._buffer: list[dict[str, Any]] = []
        self._buffer_since = 0.0
        self._known_dynamic: set[str] | None = None

    def __repr__(self) -> str:
        return (
            f"ResultLog({str(self.directory)!r}, roll_rows={self.roll_rows}, "
            f"roll_seconds={self.roll_seconds})"
        )

    # ----------------------------------------------------------------- writing

    @property
    def writer_id(self) -> str | None:
        """Id of this process's writer (``None`` before the first append)."""
        return self._writer_id

    def append(self, records: EvalRecord | Iterable[EvalRecord]) -> None:
        """Log one record or several; they are durable when this returns.

        The batch is written with one write and one fsync, one JSON line per record.  If this raises
        an ``OSError`` the rows may or may not be logged; appending the same records again is safe
        (rows with the same ``row_id`` are read once).
        """
        batch = [records] if isinstance(records, EvalRecord) else list(records)
        for record in batch:
            if not isinstance(record, EvalRecord):
                raise TypeError(
                    f"append takes EvalRecord objects, got {type(record).__name__}; "
                    f"build one with make_record(result, ...)"
                )
        if not batch:
            return
        rows = [record_to_json_row(r) for r in batch]
        data = b"".join(encode_line(r) for r in rows)
        with self._lock:
            wal = self._writer()
            wal.append(data)
            if not self._buffer:
                self._buffer_since = time.monotonic()
            self._buffer.extend(rows)
            if (
                len(self._buffer) >= self.roll_rows
                or time.monotonic() - self._buffer_since >= self.roll_seconds
            ):
                self._roll_locked()

    def roll(self) -> Path | None:
        """Roll the un-rolled rows of this writer into a part file now; returns its path."""
        with self._lock:
            if self._wal is None or self._pid != os.getpid():
                return None
            return self._roll_locked()

    def close(self) -> None:
        """Roll the remaining rows and remove this writer's write-ahead file (idempotent)."""
        with self._lock:
            if self._wal is None:
                return
            if self._pid == os.getpid():
                self._roll_locked()
                self._wal.remove()
            else:  # a copy inherited through fork: the parent owns the file
                self._wal.abandon()
                self._buffer.clear()
            self._wal = None

    def __enter__(self) -> ResultLog:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _writer(self) -> WalWriter:
        if self._wal is not None and self._pid != os.getpid():
            # Inherited through fork: the parent keeps its file and its buffered rows.
            self._wal.abandon()
            self._wal = None
            self._buffer.clear()
        if self._wal is None:
            self.directory.mkdir(parents=True, exist_ok=True)
            self._writer_id = make_writer_id()
            self._wal = WalWriter(self.directory, self._writer_id, fsync=self.fsync)
            self._pid = os.getpid()
            self._seq = 0
        return self._wal

    def _roll_locked(self) -> Path | None:
        if not self._buffer or self._wal is None:
            return None
        if self._known_dynamic is None:
            self._known_dynamic = set(self._dataset_dynamic())
        self._known_dynamic.update(dynamic_keys(self._buffer))
        table = rows_to_table(self._buffer, self._known_dynamic)
        path = write_part(self.directory, table, f"{self._writer_id}-{self._seq:06d}", fsync=self.fsync)
        self._seq += 1
        self._buffer.clear()  # rolled: if the truncation fails, readers drop the duplicates
        self._wal.truncate()
        return path

    def _dataset_dynamic(self) -> list[str]:
        infos = (self._info(p, warn=False) for p in list_parts(self.directory))
        return order_dynamic(c for info in infos if info is not None for c in info.dynamic)

    @staticmethod
    def _info(path: Path, *, warn: bool = True) -> PartInfo | None:
        try:
            return part_info(path, warn=warn)
        except FileNotFoundError:
            return None

    # ----------------------------------------------------------------- reading

    def parts(self) -> list[Path]:
        """The part files, in creation order."""
        return list_parts(self.directory)

    def wal_files(self) -> list[Path]:
        """The write-ahead files of live or crashed writers."""
        return list_wal_files(self.directory)

    def read(self, filters: Filters | None = None, columns: Sequence[str] | None = None) -> pd.DataFrame:
        """All logged rows as a DataFrame (see :meth:`read_table`)."""
        return self.read_table(filters=filters, columns=columns).to_pandas()

    def read_table(self, filters: Filters | None = None, columns: Sequence[str] | None = None) -> pa.Table:
        """All logged rows (parts plus un-rolled lines of every writer), each ``row_id`` once.

        Args:
            filters: ``{column: value}`` keeps rows whose column equals ``value``;
                ``{column: [v1, v2, ...]}`` keeps rows equal to any of them; ``None`` matches a
                missing value; several entries must all hold.  Example:
                ``{"status": "ok", "searcher": ["random", "rea"]}``.
            columns: the columns to return, in this order (default: all, fixed columns first);
                a ``metric_*``/``cost_*`` column nobody wrote reads as NaN.

        Parts whose ``metric_*`` columns differ are unioned (missing values are NaN).
        """
        wanted = check_filters(filters)
        names = None if columns is None else [check_column(c) for c in columns]
        needed = None if names is None else list(dict.fromkeys([*names, *wanted, "row_id"]))
        # Write-ahead files first: rows rolled meanwhile are then in a part listed afterwards.
        wal_tables = []
        for path in list_wal_files(self.directory):
            rows = read_wal(path)
            if rows:
                wal_tables.append(wal_table(path, rows))
        tables = self._read_parts(needed) + wal_tables
        if needed is None:
            final = union_columns(t.schema for t in tables)
            out = final + [n for n in wanted if n not in final]  # filter on a column nobody wrote
        else:
            final = names or []
            out = needed
        if tables:
            runs = [filter_table(conform(t, out), wanted) for t in concat_runs(tables)]
            table = dedupe(pa.concat_tables(runs))
        else:
            table = empty_table(out)
        return table.select(final)

    def _read_parts(self, columns: Sequence[str] | None) -> list[pa.Table]:
        """Read every part; a part compacted away mid-read is replaced by a fresh listing."""
        seen: set[Path] = set()
        tables: list[pa.Table] = []
        for _ in range(_READ_RETRIES):
            vanished = False
            for path in list_parts(self.directory):
                if path in seen:
                    continue
                try:
                    table = read_part(path, columns)
                except FileNotFoundError:
                    vanished = True
                    continue
                seen.add(path)
                if table is not None:
                    tables.append(table)
            if not vanished:
                break
        return tables

    def schema(self) -> pa.Schema:
        """The unified schema of the dataset (fixed columns plus every dynamic column written),
        e.g. for ``pyarrow.dataset.dataset(directory, schema=log.schema())``."""
        dynamic = set(self._dataset_dynamic())
        for path in list_wal_files(self.directory):
            dynamic.update(dynamic_keys(read_wal(path)))
        return log_schema(dynamic)

    # ----------------------------------------------------------------- maintenance

    def roll_orphans(self, *, force: bool = False) -> int:
        """Roll the write-ahead files of writers that are gone into part files and remove them.

        A writer is gone when nobody holds its file's lock (the kernel drops it when a process
        exits, even on SIGKILL).  ``force=True`` rolls every file but this instance's own: use it
        only when every writer has stopped (or where ``flock`` is missing).  Returns the number of
        rows rolled.  A finished or resumed run calls this so no write-ahead files remain.
        """
        own = self._wal.path if self._wal is not None and self._pid == os.getpid() else None
        rolled = 0
        known: set[str] | None = None
        for path in list_wal_files(self.directory):
            if path == own:
                continue
            with OrphanLock(path, force=force) as lock:
                if not lock.acquired:
                    continue
                rows = read_wal(path, writer_is_alive=False)
                if rows:
                    if known is None:
                        known = set(self._dataset_dynamic())
                    dynamic = known | dynamic_keys(rows)
                    table = wal_table(path, rows, dynamic)
                    if table.num_rows:
                        tag = f"{writer_id_of(path)}-orphan"
                        write_part(self.directory, table, tag, fsync=self.fsync)
                        rolled += table.num_rows
                path.unlink(missing_ok=True)
                if self.fsync:
                    fsync_dir(self.directory)
            marker = f"-{writer_id_of(path)}-"
            for temp in list_temps(self.directory, "part-"):
                if marker in temp.name:
                    temp.unlink(missing_ok=True)
        return rolled

    def compact(self, target_rows: int = 1_000_000) -> CompactionReport:
        """Merge small parts into parts of about ``target_rows`` rows, never losing a row.

        Parts with fewer rows than ``target_rows``, or lacking a dynamic column another part has,
        are merged in creation order (duplicate ``row_id`` dropped, missing metrics NaN); each
        merged part is written atomically before its sources are deleted, so a crash in between
        leaves duplicates that readers drop.  Damaged parts are left alone (with a warning).
        Compactions of one directory are serialised with a lock file.
        """
        if isinstance(target_rows, bool) or not isinstance(target_rows, int) or target_rows < 1:
            raise ValueError(f"target_rows must be an int >= 1, got {target_rows!r}")
        if not self.directory.is_dir():
            return CompactionReport(0, 0, 0)
        fd = os.open(self.directory / COMPACT_LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_EX)
            for temp in list_temps(self.directory, "part-"):
                if "-compact-" in temp.name:  # left by a compaction that died
                    temp.unlink(missing_ok=True)
            return self._compact_locked(target_rows)
        finally:
            os.close(fd)

    def _compact_locked(self, target_rows: int) -> CompactionReport:
        paths = list_parts(self.directory)
        infos = [info for info in (self._info(p) for p in paths) if info is not None]
        union = order_dynamic(c for info in infos for c in info.dynamic)
        columns = list(FIXED_COLUMNS) + union
        batches: list[list[PartInfo]] = []
        current: list[PartInfo] = []
        rows = 0
        for info in infos:
            if info.num_rows >= target_rows and info.dynamic == union:
                continue
            current.append(info)
            rows += info.num_rows
            if rows >= target_rows:
                batches.append(current)
                current, rows = [], 0
        if current:
            batches.append(current)
        rewritten = 0
        for batch in batches:
            if len(batch) == 1 and batch[0].dynamic == union:
                continue
            sources: list[Path] = []
            tables: list[pa.Table] = []
            for info in batch:
                try:
                    table = read_part(info.path)
                except FileNotFoundError:
                    continue
                if table is not None:
                    tables.append(table)
                    sources.append(info.path)
            if not tables:
                continue
            merged = dedupe(unify(tables, columns))
            write_part(self.directory, merged, f"compact-{secrets.token_hex(4)}", fsync=self.fsync)
            rewritten += merged.num_rows
            for source in sources:
                source.unlink(missing_ok=True)
            if self.fsync:
                fsync_dir(self.directory)
        return CompactionReport(len(paths), len(list_parts(self.directory)), rewritten)
