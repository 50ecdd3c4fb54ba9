"""Fault tests of the result log: SIGKILL, damaged files, failed writes, races with compaction."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import warnings
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from nasatlas.results import log as log_module
from nasatlas.results.log import ResultLog
from nasatlas.results.record import EvalRecord, EvalResult, make_record
from nasatlas.results.wal import ResultLogWarning

T0 = datetime(2025, 6, 1, 12, 0, 0, 1, tzinfo=timezone.utc)

CHILD = """
import sys
from datetime import datetime, timezone
from nasatlas.results.log import ResultLog
from nasatlas.results.record import EvalResult, make_record

log = ResultLog(sys.argv[1], roll_rows=int(sys.argv[2]))
i = 0
while True:
    now = datetime.now(timezone.utc)
    record = make_record(
        EvalResult("ok", metrics={"valid_acc": i / 3}), study="kill", run_id="r", trial=i,
        searcher="random", space="s", arch=f"a{i}", canonical_id=f"a{i}", evaluator="e",
        seed=2**63 - 1 - i, started_at=now, finished_at=now, nasatlas_version="t",
    )
    log.append(record)
    print(record.row_id, flush=True)
    i += 1
"""


def _record(trial: int) -> EvalRecord:
    return make_record(
        EvalResult("ok", metrics={"valid_acc": float(trial)}, costs={"params": 10.0}),
        study="faults",
        run_id="r",
        trial=trial,
        searcher="random",
        space="nb201",
        arch=f"arch-{trial}",
        canonical_id=f"arch-{trial}",
        evaluator="table",
        seed=trial,
        started_at=T0,
        finished_at=T0 + timedelta(seconds=trial),
        host="h",
        nasatlas_version="t",
    )


def _read_warnings(log: ResultLog) -> tuple[pd.DataFrame, list[str]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        frame = log.read()
    for warning in caught:
        assert issubclass(warning.category, ResultLogWarning), warning.message
    return frame, [str(w.message) for w in caught]


def _kill_writer_after(directory: Path, rows: int, roll_rows: int) -> list[str]:
    """Start a writer subprocess, SIGKILL it after ``rows`` acknowledged appends; return the ids
    of every append that returned before the kill."""
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(directory), str(roll_rows)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    acknowledged: list[str] = []
    while len(acknowledged) < rows:
        line = child.stdout.readline()
        assert line, f"writer exited early: {child.stderr.read() if child.stderr else ''}"
        acknowledged.append(line.strip())
    os.kill(child.pid, signal.SIGKILL)
    child.wait(10)
    acknowledged.extend(line.strip() for line in child.stdout.read().splitlines() if line.strip())
    child.stdout.close()
    if child.stderr is not None:
        child.stderr.close()
    assert child.returncode == -signal.SIGKILL
    return acknowledged


def test_sigkill_loses_only_evaluations_in_flight(tmp_path: Path) -> None:
    acknowledged: list[str] = []
    for rows, roll_rows in [(150, 7), (90, 5)]:  # two writers killed mid-run, mostly mid-roll
        acknowledged += _kill_writer_after(tmp_path, rows, roll_rows)
    log = ResultLog(tmp_path)
    frame, messages = _read_warnings(log)
    assert set(acknowledged) <= set(frame["row_id"]) and frame["row_id"].is_unique
    assert all("_wal-" in m and "torn" in m for m in messages)  # at most a torn tail
    for part in log.parts():  # nothing unreadable
        pq.read_table(part)
    assert len(pd.read_parquet(tmp_path)) <= len(frame)
    assert len(log.wal_files()) == 2
    assert log.roll_orphans() > 0
    assert log.wal_files() == [] and not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]
    after, _ = _read_warnings(log)
    assert set(after["row_id"]) == set(frame["row_id"])
    assert ds.dataset(tmp_path).count_rows() >= len(after)
    assert int(after["seed"].max()) == 2**63 - 1


def test_corrupt_and_truncated_parts_are_skipped_with_warning(tmp_path: Path) -> None:
    with ResultLog(tmp_path, roll_rows=4) as log:
        for trial in range(12):
            log.append(_record(trial))
    parts = log.parts()
    garbage = tmp_path / "part-00000000000000000001-garbage.parquet"
    garbage.write_bytes(os.urandom(3000))
    truncated = tmp_path / "part-00000000000000000002-truncated.parquet"
    shutil.copy(parts[0], truncated)
    with open(truncated, "r+b") as handle:
        handle.truncate(truncated.stat().st_size // 2)
    parts[0].unlink()  # its rows now only exist in the damaged copy
    frame, messages = _read_warnings(log)
    assert sorted(frame["trial"]) == list(range(4, 12))
    assert any(garbage.name in m for m in messages) and any(truncated.name in m for m in messages)
    # Compaction leaves damaged files alone and still merges the rest.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResultLogWarning)
        log.compact()
    assert garbage.exists() and truncated.exists()
    frame, _ = _read_warnings(log)
    assert sorted(frame["trial"]) == list(range(4, 12))


def test_torn_wal_line_of_dead_writer_is_skipped_with_warning(tmp_path: Path) -> None:
    log = ResultLog(tmp_path, roll_rows=100)
    log.append([_record(t) for t in range(3)])
    wal = log._writer()
    with open(wal.path, "ab") as handle:  # a live writer mid-write: no warning
        handle.write(b'{"schema_version":1,"row_id":"to')
    frame, messages = _read_warnings(log)
    assert sorted(frame["trial"]) == [0, 1, 2] and messages == []
    wal.abandon()  # the writer dies with the torn line in its file
    frame, messages = _read_warnings(log)
    assert sorted(frame["trial"]) == [0, 1, 2]
    assert len(messages) == 1 and wal.path.name in messages[0] and "torn" in messages[0]
    with pytest.warns(ResultLogWarning, match=wal.path.name):
        assert ResultLog(tmp_path).roll_orphans() == 3
    frame, messages = _read_warnings(log)
    assert sorted(frame["trial"]) == [0, 1, 2] and messages == [] and log.wal_files() == []


def test_corrupt_wal_line_in_the_middle(tmp_path: Path) -> None:
    log = ResultLog(tmp_path, roll_rows=100)
    log.append(_record(0))
    wal = log._writer()
    good_line = wal.path.read_bytes().splitlines()[0]
    bad_types = json.loads(good_line)
    bad_types.update(row_id="x" * 32, trial="three")  # valid JSON, wrong type
    with open(wal.path, "ab") as handle:
        handle.write(b"\x00\xffnot json\n[1, 2]\n" + json.dumps(bad_types).encode() + b"\n")
    log.append(_record(1))
    frame, messages = _read_warnings(log)
    assert sorted(frame["trial"]) == [0, 1]
    assert len(messages) == 3 and all(wal.path.name in m for m in messages)
    assert any("'" + "x" * 32 + "' does not fit" in m for m in messages)
    wal.abandon()
    with pytest.warns(ResultLogWarning):
        assert ResultLog(tmp_path).roll_orphans() == 2
    frame, messages = _read_warnings(log)
    assert sorted(frame["trial"]) == [0, 1] and messages == []


def test_failed_write_leaves_no_partial_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = ResultLog(tmp_path, roll_rows=100)
    log.append(_record(0))

    def broken(fd: int) -> None:
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as patch:
        patch.setattr(os, "fdatasync", broken)
        with pytest.raises(OSError, match="No space left"):
            log.append([_record(1), _record(2)])
    log.append(_record(3))
    frame, messages = _read_warnings(log)
    assert sorted(frame["trial"]) == [0, 3] and messages == []
    log.close()
    assert sorted(log.read()["trial"]) == [0, 3]


def test_part_compacted_away_during_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with ResultLog(tmp_path, roll_rows=3) as log:
        for trial in range(10):
            log.append(_record(trial))
    real_read_part = log_module.read_part
    calls: list[Path] = []

    def read_then_compact(path: Path, columns: list[str] | None = None) -> object:
        calls.append(path)
        if len(calls) == 2:  # another process compacts between our listing and this read
            log.compact()
        return real_read_part(path, columns)

    monkeypatch.setattr(log_module, "read_part", read_then_compact)
    frame, _ = _read_warnings(log)
    assert sorted(frame["trial"]) == list(range(10)) and frame["row_id"].is_unique


def test_temp_and_wal_files_do_not_break_other_readers(tmp_path: Path) -> None:
    log = ResultLog(tmp_path, roll_rows=4)
    for trial in range(6):
        log.append(_record(trial))  # one part plus a live WAL with two rows
    (tmp_path / ".tmp-part-00000000000000000003-dead-1-ab-000000.parquet.tmp").write_bytes(b"half a file")
    assert len(pd.read_parquet(tmp_path)) == 4
    assert ds.dataset(tmp_path).count_rows() == 4
    assert len(log.read()) == 6
    log.close()


def test_orphan_roll_skips_live_writers(tmp_path: Path) -> None:
    live = ResultLog(tmp_path, roll_rows=100)
    live.append(_record(0))
    other = ResultLog(tmp_path)
    assert other.roll_orphans() == 0 and len(other.wal_files()) == 1
    live.close()
    assert other.wal_files() == [] and len(other.read()) == 1


def test_part_from_newer_schema_raises_clear_error(tmp_path: Path) -> None:
    from nasatlas.results.schema import SCHEMA_VERSION_KEY, record_to_json_row, rows_to_table

    table = rows_to_table([record_to_json_row(_record(0))])
    table = table.replace_schema_metadata({SCHEMA_VERSION_KEY: b"99"})
    pq.write_table(table, tmp_path / "part-00000000000000000001-future.parquet")
    with pytest.raises(ValueError, match="schema_version 99, newer than this nasatlas reads .*upgrade"):
        ResultLog(tmp_path).read()
