"""Tests of the result log: records, round trips, readers, several writers, compaction."""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nasatlas.results.log import ResultLog, done_keys
from nasatlas.results.record import (
    SCHEMA_VERSION,
    STANDARD_COSTS,
    EvalRecord,
    EvalResult,
    make_record,
)
from nasatlas.results.schema import FIXED_COLUMNS, FIXED_SCHEMA, record_to_json_row, rows_to_table
from nasatlas.results.wal import encode_line

T0 = datetime(2024, 2, 29, 23, 59, 58, 123457, tzinfo=timezone.utc)


def _record(
    trial: int,
    *,
    metrics: dict[str, float] | None = None,
    status: str = "ok",
    searcher: str = "random",
    repeat: int = 0,
    seed: int | None = None,
) -> EvalRecord:
    if status == "ok":
        result = EvalResult(
            "ok",
            metrics={"valid_acc": 90.0 + trial / 7} if metrics is None else metrics,
            costs={"params": 1234.0, "train_seconds": 0.125 * trial},
            budget={"epochs": 3},
        )
    else:
        result = EvalResult.failed(RuntimeError(f"diverged at trial {trial}"), budget={"epochs": 1})
    return make_record(
        result,
        study="unit",
        run_id="run-1",
        trial=trial,
        repeat=repeat,
        searcher=searcher,
        space="nb201",
        arch=f"|nor_conv_3x3~0|+|skip_connect~0|none~1|+|{trial}|",
        canonical_id=f"c{trial % 5}",
        evaluator="table",
        seed=trial * 7919 if seed is None else seed,
        params={"searcher": {"name": searcher, "population": 10}},
        started_at=T0 + timedelta(seconds=trial, microseconds=trial),
        finished_at=T0 + timedelta(seconds=trial + 1, microseconds=3 * trial),
        host="testhost",
        device="cpu",
        nasatlas_version="0.1.0",
    )


def _expected(record: EvalRecord) -> dict[str, object]:
    row = record.to_row()
    row["started_at"] = pd.Timestamp(row["started_at"])
    row["finished_at"] = pd.Timestamp(row["finished_at"])
    return row


def _assert_row_equal(actual: dict[str, object], expected: dict[str, object]) -> None:
    for key, value in expected.items():
        got = actual[key]
        if isinstance(value, float) and math.isnan(value):
            assert isinstance(got, float) and math.isnan(got), key
        elif value is None:
            assert got is None or (isinstance(got, float) and math.isnan(got)), key
        else:
            assert got == value, (key, got, value)


# ----------------------------------------------------------------------------- records


def test_non_finite_metric_in_ok_result_raises_clear_error() -> None:
    with pytest.raises(ValueError, match=r"metric 'valid_acc' is nan .*EvalResult.failed"):
        EvalResult("ok", metrics={"valid_acc": float("nan")})
    with pytest.raises(ValueError, match="metric 'loss' is inf"):
        EvalResult("ok", metrics={"loss": np.inf})
    failed = EvalResult("failed", metrics={"loss": float("inf")}, error="diverged")
    assert math.isinf(failed.metrics["loss"])


def test_result_validation_names_field_and_fix() -> None:
    with pytest.raises(ValueError, match="pass 'valid_acc'"):
        EvalResult("ok", metrics={"metric_valid_acc": 1.0})
    with pytest.raises(ValueError, match="status must be 'ok' or 'failed'"):
        EvalResult("done")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="non-empty error"):
        EvalResult("failed")
    with pytest.raises(ValueError, match="cost 'params' is -1.0"):
        EvalResult("ok", costs={"params": -1})
    with pytest.raises(TypeError, match="metric 'acc' must be a real number"):
        EvalResult("ok", metrics={"acc": "high"})
    with pytest.raises(ValueError, match="budget must be JSON-serialisable"):
        EvalResult("ok", budget={"epochs": object()})
    failed = EvalResult.failed(ValueError("bad"), budget={"epochs": 2})
    assert failed.error == "ValueError: bad" and failed.budget == {"epochs": 2} and not failed.ok


def test_record_validation() -> None:
    naive = datetime(2024, 1, 1)
    with pytest.raises(ValueError, match="started_at .* is naive"):
        make_record(EvalResult("ok"), study="s", run_id="r", trial=0, searcher="a", space="b",
                    arch="x", canonical_id="x", evaluator="e", seed=0, started_at=naive,
                    finished_at=T0, nasatlas_version="t")
    with pytest.raises(ValueError, match=r"seed must lie in"):
        _record(0, seed=2**63)
    with pytest.raises(ValueError, match="finished_at"):
        make_record(EvalResult("ok"), study="s", run_id="r", trial=0, searcher="a", space="b",
                    arch="x", canonical_id="x", evaluator="e", seed=0, started_at=T0,
                    finished_at=T0 - timedelta(microseconds=1), nasatlas_version="t")
    with pytest.raises(ValueError, match="params string is not valid JSON"):
        make_record(EvalResult("ok"), study="s", run_id="r", trial=0, searcher="a", space="b",
                    arch="x", canonical_id="x", evaluator="e", seed=0, started_at=T0,
                    finished_at=T0, params="{oops", nasatlas_version="t")
    other_zone = T0.astimezone(timezone(timedelta(hours=5, minutes=30)))
    record = make_record(EvalResult("ok"), study="s", run_id="r", trial=0, searcher="a", space="b",
                         arch="x", canonical_id="x", evaluator="e", seed=np.int64(5),
                         started_at=other_zone, finished_at=T0, nasatlas_version="t")
    assert record.started_at == T0 and record.started_at.tzinfo == timezone.utc and record.seed == 5
    assert record.to_result() == EvalResult("ok")


# ----------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("rolled", [False, True], ids=["wal", "parquet"])
def test_round_trip_every_column(tmp_path: Path, rolled: bool) -> None:
    records = [
        _record(0, seed=2**63 - 1),
        _record(1, seed=-(2**63)),
        _record(2, status="failed"),
        _record(3, metrics={"valid_acc": 1 / 3, "test_acc": 5e-324, "top1_acc": 1.0}),
    ]
    log = ResultLog(tmp_path, roll_rows=1000)
    log.append(records[:2])
    for record in records[2:]:
        log.append(record)
    if rolled:
        log.close()
        assert log.wal_files() == [] and len(log.parts()) == 1
    frame = log.read()
    assert list(frame.columns[: len(FIXED_COLUMNS)]) == list(FIXED_COLUMNS)
    assert {"metric_valid_acc", "metric_test_acc", "metric_top1_acc"} <= set(frame.columns)
    assert str(frame["started_at"].dtype) == "datetime64[us, UTC]"
    assert frame["seed"].dtype == np.int64 and frame["metric_valid_acc"].dtype == np.float64
    by_id = {row["row_id"]: row for row in frame.to_dict("records")}
    for record in records:
        _assert_row_equal(by_id[record.row_id], _expected(record))
        assert EvalResult.from_row(by_id[record.row_id]) == record.to_result()
    assert by_id[records[0].row_id]["seed"] == 2**63 - 1
    assert by_id[records[3].row_id]["metric_test_acc"] == 5e-324
    assert math.isnan(by_id[records[2].row_id]["metric_valid_acc"])  # missing metric -> NaN
    assert by_id[records[2].row_id]["error"] == "RuntimeError: diverged at trial 2"
    log.close()


@settings(max_examples=60, deadline=None)
@given(
    value=st.floats(allow_nan=False, allow_infinity=False),
    seed=st.integers(min_value=-(2**63), max_value=2**63 - 1),
    micros=st.integers(min_value=-(10**15), max_value=10**16),
    text=st.text(max_size=20),
)
def test_wal_encoding_is_exact(value: float, seed: int, micros: int, text: str) -> None:
    when = datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(microseconds=micros)
    record = make_record(
        EvalResult("ok", metrics={"m": value}), study=text or "s", run_id=text, trial=0,
        searcher="a", space="b", arch=text or "x", canonical_id="x", evaluator="e", seed=seed,
        started_at=when, finished_at=when, host=text, nasatlas_version="t",
    )
    row = json.loads(encode_line(record_to_json_row(record)))
    back = rows_to_table([row]).to_pylist()[0]
    assert back["metric_m"] == value and back["seed"] == seed and back["study"] == record.study
    assert back["started_at"] == when and back["host"] == text


def test_readers_agree(tmp_path: Path) -> None:
    import duckdb  # imported here: spawned writer processes import this module

    with ResultLog(tmp_path, roll_rows=10) as log:
        log.append([_record(i, status="failed" if i % 9 == 0 else "ok") for i in range(35)])
        log.append([_record(i) for i in range(35, 47)])
    ours = log.read().sort_values("row_id", ignore_index=True)
    via_pandas = pd.read_parquet(tmp_path).sort_values("row_id", ignore_index=True)
    via_arrow = ds.dataset(tmp_path).to_table().to_pandas().sort_values("row_id", ignore_index=True)
    relation = duckdb.sql(f"SELECT * FROM read_parquet('{tmp_path}/*.parquet')")
    assert relation is not None
    via_duck = relation.to_arrow_table().to_pandas()
    via_duck = via_duck.sort_values("row_id", ignore_index=True)
    assert len(ours) == 47 and ours["row_id"].is_unique
    for other in (via_pandas, via_arrow, via_duck):
        assert list(other.columns) == list(ours.columns)
        for column in ["row_id", "trial", "seed", "status", "arch", "metric_valid_acc", "cost_macs"]:
            left, right = ours[column].to_numpy(), other[column].to_numpy()
            assert pd.Series(left).equals(pd.Series(right).astype(pd.Series(left).dtype)), column
        for column in ["started_at", "finished_at"]:
            assert (ours[column].to_numpy() == pd.to_datetime(other[column], utc=True).to_numpy()).all()
    assert pq.read_schema(log.parts()[0]).metadata[b"nasatlas.schema_version"] == str(SCHEMA_VERSION).encode()


def test_filters_and_columns(tmp_path: Path) -> None:
    with ResultLog(tmp_path, roll_rows=4) as log:
        log.append([_record(i, searcher="rea" if i % 2 else "random") for i in range(10)])
        log.append(_record(10, status="failed"))
        frame = log.read(filters={"searcher": "rea", "trial": [1, 3, 4]}, columns=["trial", "seed"])
        assert list(frame.columns) == ["trial", "seed"] and sorted(frame["trial"]) == [1, 3]
        assert len(log.read(filters={"error": None})) == 10
        assert list(log.read(filters={"status": "failed"})["trial"]) == [10]
        assert log.read(filters={"metric_unknown": 1.0}).empty
        nan_column = log.read(columns=["metric_unknown"])
        assert len(nan_column) == 11 and nan_column["metric_unknown"].isna().all()
        with pytest.raises(ValueError, match="unknown column 'nope'"):
            log.read(columns=["nope"])
        with pytest.raises(ValueError, match="filter on 'trial'"):
            log.read(filters={"trial": "three"})
        with pytest.raises(TypeError, match="filters must be a dict"):
            log.read(filters=[("trial", 1)])  # type: ignore[arg-type]


def test_empty_and_missing_directory(tmp_path: Path) -> None:
    frame = ResultLog(tmp_path / "never-written").read()
    assert frame.empty and list(frame.columns) == list(FIXED_SCHEMA.names)
    assert ResultLog(tmp_path / "never-written").compact().parts_after == 0
    assert not (tmp_path / "never-written").exists()


def test_roll_by_rows_and_time_and_idempotent_append(tmp_path: Path) -> None:
    log = ResultLog(tmp_path, roll_rows=3, roll_seconds=0.05)
    log.append([_record(0), _record(1)])
    assert log.parts() == [] and len(log.read()) == 2
    log.append(_record(2))
    assert len(log.parts()) == 1 and log.wal_files()[0].stat().st_size == 0
    log.append(_record(3))
    time.sleep(0.06)
    again = _record(4)
    log.append(again)
    assert len(log.parts()) == 2
    log.append(again)  # the same row twice is read once
    log.close()
    log.close()
    frame = log.read()
    assert sorted(frame["trial"]) == [0, 1, 2, 3, 4]
    assert log.wal_files() == []


def test_done_keys(tmp_path: Path) -> None:
    with ResultLog(tmp_path) as log:
        log.append([_record(0), _record(1, status="failed"), _record(0, repeat=1, searcher="rea")])
    assert done_keys(log.read()) == {("random", 0, 0), ("random", 0, 1), ("rea", 1, 0)}
    assert done_keys(pd.DataFrame()) == set()


# ----------------------------------------------------------------------------- several writers


def _write_rows(directory: str, worker: int, start: multiprocessing.synchronize.Event) -> None:
    start.wait(10)
    with ResultLog(directory, roll_rows=32) as log:
        for i in range(200):
            log.append(_record(worker * 1000 + i, searcher=f"w{worker}"))


def test_two_processes_lose_nothing(tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    start = context.Event()
    workers = [context.Process(target=_write_rows, args=(str(tmp_path), w, start)) for w in (1, 2)]
    for worker in workers:
        worker.start()
    start.set()
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    log = ResultLog(tmp_path)
    frame = log.read()
    assert len(frame) == 400 and frame["row_id"].is_unique
    assert sorted(frame["trial"]) == sorted([1000 + i for i in range(200)] + [2000 + i for i in range(200)])
    assert log.wal_files() == []
    assert ds.dataset(tmp_path).count_rows() == 400


# ----------------------------------------------------------------------------- compaction


def test_compact_keeps_every_row_and_unifies_schema(tmp_path: Path) -> None:
    with ResultLog(tmp_path, roll_rows=5) as log:
        for i in range(23):
            log.append(_record(i))
    with ResultLog(tmp_path, roll_rows=5) as other:  # a second writer with one more metric
        for i in range(7):
            other.append(_record(100 + i, metrics={"valid_acc": 1.0, "latency_ms": float(i)}))
    before = log.read().sort_values("row_id", ignore_index=True)
    parts_before = len(log.parts())
    report = log.compact(target_rows=12)
    assert report.parts_before == parts_before and report.parts_after == len(log.parts())
    assert report.parts_after < parts_before and report.rows_rewritten > 0
    after = log.read().sort_values("row_id", ignore_index=True)
    pd.testing.assert_frame_equal(before, after)
    assert after["metric_latency_ms"].notna().sum() == 7
    # Compacted parts share one schema, so every reader sees every column.
    assert ds.dataset(tmp_path).to_table().num_rows == 30
    assert "metric_latency_ms" in ds.dataset(tmp_path).schema.names
    assert log.compact(target_rows=1000).parts_after == 1
    assert len(log.read()) == 30


def test_duplicates_after_crash_between_rename_and_truncate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = ResultLog(tmp_path, roll_rows=5)
    records = [_record(i) for i in range(5)]

    def crash() -> None:
        raise OSError("simulated crash after the rename")

    log.append(records[:4])
    wal = log._writer()
    monkeypatch.setattr(wal, "truncate", crash)
    with pytest.raises(OSError, match="simulated crash"):
        log.append(records[4])  # the part is renamed into place, the WAL keeps its lines
    assert len(log.parts()) == 1 and wal.path.stat().st_size > 0
    wal.abandon()  # the writer "dies": its lock is released
    assert sorted(log.read()["trial"]) == [0, 1, 2, 3, 4]
    reader = ResultLog(tmp_path)
    assert reader.roll_orphans() == 5 and reader.wal_files() == []
    assert sum(pq.read_metadata(p).num_rows for p in reader.parts()) == 10
    frame = reader.read()
    assert len(frame) == 5 and frame["row_id"].is_unique
    reader.compact()
    assert sum(pq.read_metadata(p).num_rows for p in reader.parts()) == 5


def test_package_exports_are_lazy(tmp_path: Path) -> None:
    root = tmp_path / "nsroot" / "nasatlas"
    root.mkdir(parents=True)
    os.symlink(Path(__file__).resolve().parents[1] / "results", root / "results")
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]);"
        "from nasatlas.results import EvalResult, make_record;"
        "assert 'pyarrow' not in sys.modules, 'record types must not import pyarrow';"
        "from nasatlas.results import ResultLog, done_keys, ResultLogWarning, FIXED_SCHEMA;"
        "assert ResultLog.__module__ == 'nasatlas.results.log'"
    )
    command = [sys.executable, "-c", code, str(tmp_path / "nsroot")]
    done = subprocess.run(command, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert STANDARD_COSTS[0] == "params" and isinstance(FIXED_SCHEMA, pa.Schema)


def test_dedupe_keeps_first_copy_in_order() -> None:
    from nasatlas.results.schema import dedupe

    rows = [record_to_json_row(_record(i)) for i in range(4)]
    mixed = [rows[2], rows[0], rows[2], rows[3], rows[0], rows[1], rows[3]]
    table = dedupe(rows_to_table(mixed))
    assert table.column("trial").to_pylist() == [2, 0, 3, 1]


@settings(max_examples=80, deadline=None)
@given(
    ids=st.lists(
        st.one_of(
            st.sampled_from(["0" * 16 + "a" * 16, "0" * 16 + "b" * 16, "f" * 32]),
            st.text(alphabet="0123456789abcdef", min_size=32, max_size=32),
            st.text(max_size=40),
        ),
        max_size=30,
    ),
    cut=st.integers(min_value=0, max_value=30),
    skip=st.integers(min_value=0, max_value=3),
)
def test_row_ids_distinct_matches_python(ids: list[str], cut: int, skip: int) -> None:
    from nasatlas.results.schema import row_ids_distinct

    chunks = [pa.array(ids[:cut], pa.string()), pa.array(["pad"] * skip + ids[cut:], pa.string()).slice(skip)]
    column = pa.chunked_array(chunks, pa.string())
    assert row_ids_distinct(column) == (len(set(ids)) == len(ids))
