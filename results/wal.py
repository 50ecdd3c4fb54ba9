"""Write-ahead files of the result log: one per writer process, one JSON line per record.

A writer creates ``_wal-<writer_id>.jsonl`` under an exclusive ``flock`` that it holds until it
closes (or dies: the kernel drops the lock, even on SIGKILL).  Another process can therefore tell a
live writer's file (locked) from an orphan (lockable).  The leading ``_`` makes pyarrow and pandas
skip the file when they read the directory as a Parquet dataset.

Lines are written with one ``write`` and made durable with ``fdatasync`` before ``append`` returns.
A line without its trailing newline (a write torn by a crash) or one that does not parse is skipped
with a :class:`ResultLogWarning` naming the file.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa

from .record import SCHEMA_VERSION
from .schema import FIXED_COLUMNS, rows_to_table

try:  # POSIX; without it liveness cannot be detected and roll_orphans needs force=True
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

WAL_PREFIX = "_wal-"
WAL_SUFFIX = ".jsonl"


class ResultLogWarning(UserWarning):
    """A damaged file of the result log was skipped (the message names it)."""


def wal_name(writer_id: str) -> str:
    """File name of a writer's write-ahead file."""
    return f"{WAL_PREFIX}{writer_id}{WAL_SUFFIX}"


def writer_id_of(path: Path) -> str:
    """The writer id encoded in a write-ahead file's name."""
    return path.name[len(WAL_PREFIX) : -len(WAL_SUFFIX)]


def list_wal_files(directory: Path) -> list[Path]:
    """All write-ahead files in ``directory``, sorted by name."""
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return []
    return sorted(directory / n for n in names if n.startswith(WAL_PREFIX) and n.endswith(WAL_SUFFIX))


def fsync_dir(directory: Path) -> None:
    """Make renames and unlinks in ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def encode_line(row: dict[str, Any]) -> bytes:
    """One JSON line (NaN allowed; json escapes control characters, so no raw newline inside)."""
    return json.dumps(row, separators=(",", ":"), allow_nan=True).encode("utf-8") + b"\n"


def _try_lock(fd: int) -> bool:
    if fcntl is None:  # pragma: no cover - Windows
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


class WalWriter:
    """The write-ahead file of one writer; holds its lock from creation to :meth:`remove`."""

    def __init__(self, directory: Path, writer_id: str, *, fsync: bool = True) -> None:
        self.path = directory / wal_name(writer_id)
        self._fsync = fsync
        # Create under a dot-name, lock, then rename: a visible WAL file is always locked.
        temp = directory / f".init-{writer_id}.tmp"
        self._fd = os.open(temp, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o644)
        try:
            if not _try_lock(self._fd):
                raise RuntimeError(f"could not lock new write-ahead file {temp}")
            os.replace(temp, self.path)
            if fsync:
                fsync_dir(directory)
        except BaseException:
            os.close(self._fd)
            temp.unlink(missing_ok=True)
            raise
        self._size = 0

    def append(self, data: bytes) -> None:
        """Append complete lines and make them durable; on error the file is cut back to its
        previous size so no partial line is left for later lines to be glued onto."""
        view = memoryview(data)
        try:
            while view:
                written = os.write(self._fd, view)
                view = view[written:]
            if self._fsync:
                os.fdatasync(self._fd)
        except BaseException:
            os.ftruncate(self._fd, self._size)
            raise
        self._size += len(data)

    def truncate(self) -> None:
        """Drop every line (they were rolled into a durable part file).

        Not fsynced: if a crash undoes the truncation, the lines come back beside the part that
        holds them, and readers drop the duplicate ``row_id``s.
        """
        os.ftruncate(self._fd, 0)
        self._size = 0

    def remove(self) -> None:
        """Delete the file (its lines were rolled) and release the lock."""
        try:
            self.path.unlink(missing_ok=True)
            if self._fsync:
                fsync_dir(self.path.parent)
        finally:
            self.abandon()

    def abandon(self) -> None:
        """Close the descriptor without touching the file (e.g. a copy inherited through fork)."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


class OrphanLock:
    """Context manager: an exclusive lock on a write-ahead file whose writer is gone.

    ``acquired`` is False when the writer is alive (or the file vanished, or another process is
    rolling it); with ``force=True`` the lock is not required (platforms without ``flock``, or a
    caller that knows every writer has stopped).
    """

    def __init__(self, path: Path, *, force: bool = False) -> None:
        self.path = path
        self.force = force
        self.acquired = False
        self._fd = -1

    def __enter__(self) -> OrphanLock:
        try:
            self._fd = os.open(self.path, os.O_RDWR)
        except FileNotFoundError:
            return self
        locked = _try_lock(self._fd)
        if not locked and not self.force:
            return self
        try:
            same = os.path.samestat(os.fstat(self._fd), os.stat(self.path))
        except FileNotFoundError:
            same = False  # rolled and removed by someone else while we waited
        self.acquired = same
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def writer_alive(path: Path) -> bool:
    """True when some process holds the lock of a write-ahead file (its writer, or a roller)."""
    if fcntl is None:  # pragma: no cover - Windows
        return True
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # also releases a shared lock we got
    return False


def _parse_lines(path: Path, data: bytes, writer_alive_: bool | None) -> Iterator[dict[str, Any]]:
    lines = data.split(b"\n")
    tail = lines.pop()  # b"" when the file ends with a newline
    for number, line in enumerate(lines, start=1):
        if not line:
            continue
        try:
            row = json.loads(line)
        except ValueError:
            warnings.warn(f"{path}: line {number} is not valid JSON; skipped", ResultLogWarning, stacklevel=4)
            continue
        if (
            not isinstance(row, dict)
            or not all(k in row for k in FIXED_COLUMNS)
            or not isinstance(row["schema_version"], int)
        ):
            message = f"{path}: line {number} lacks columns of the row schema; skipped"
            warnings.warn(message, ResultLogWarning, stacklevel=4)
            continue
        if row["schema_version"] > SCHEMA_VERSION:
            raise ValueError(
                f"{path}: line {number} has schema_version {row['schema_version']}, newer than this "
                f"nasatlas reads ({SCHEMA_VERSION}); upgrade nasatlas"
            )
        yield row
    if tail:
        # A live writer may be in the middle of a write: its unfinished line is not a fault.
        alive = writer_alive(path) if writer_alive_ is None else writer_alive_
        if not alive:
            warnings.warn(
                f"{path}: last line is torn ({len(tail)} bytes without a newline, a write cut short); "
                f"skipped",
                ResultLogWarning,
                stacklevel=4,
            )


def read_wal(path: Path, *, writer_is_alive: bool | None = None) -> list[dict[str, Any]]:
    """The rows of a write-ahead file; damaged lines are skipped with a warning naming the file.

    An unfinished last line of a live writer is skipped silently; ``writer_is_alive=None`` probes
    the file's lock to find out.  A file that vanished (rolled and removed meanwhile) reads as empty.
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    return list(_parse_lines(path, data, writer_is_alive))


def wal_table(path: Path, rows: list[dict[str, Any]], dynamic: Iterable[str] | None = None) -> pa.Table:
    """The rows of one write-ahead file as a table; a line whose values do not fit the schema
    (valid JSON, wrong types) is skipped with a warning naming the file instead of failing all."""
    try:
        return rows_to_table(rows, dynamic)
    except (pa.ArrowException, TypeError, ValueError, OverflowError):
        good = []
        for row in rows:
            try:
                rows_to_table([row])
            except (pa.ArrowException, TypeError, ValueError, OverflowError) as exc:
                message = f"{path}: row {row.get('row_id')!r} does not fit the row schema ({exc}); skipped"
                warnings.warn(message, ResultLogWarning, stacklevel=3)
            else:
                good.append(row)
        return rows_to_table(good, dynamic)
