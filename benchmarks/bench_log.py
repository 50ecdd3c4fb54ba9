"""Benchmark of the result log: per-evaluation append overhead and read time for a large log.

Usage::

    python benchmarks/bench_log.py                       # 5,000 appends, 1,000,000 rows
    python benchmarks/bench_log.py --evals 2000 --rows 200000 --part-rows 1000

1. Append overhead: appends records one at a time (one JSON line + fdatasync each, a Parquet roll
   every ``--roll-rows`` rows, the final roll at close included) and compares with the floor, a bare
   ``os.write`` + ``os.fdatasync`` of a line of the same size in the same directory.
2. Read time: writes ``--rows`` synthetic rows as parts of ``--part-rows`` rows (what a run rolling
   every 256 rows leaves), compacts them, then times ``ResultLog.read()`` against a plain
   ``pandas.read_parquet(directory)`` of the same files.

Targets: append overhead < 0.5 ms per evaluation; reading 1,000,000 compacted rows < 2 s.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
from nasatlas.results.log import ResultLog
from nasatlas.results.parts import write_part
from nasatlas.results.record import EvalRecord, EvalResult, make_record
from nasatlas.results.schema import FIXED_COLUMNS, log_schema, record_to_json_row
from nasatlas.results.wal import encode_line

OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
METRICS = ("metric_test_acc", "metric_train_loss", "metric_valid_acc")


def nb201_string(index: int) -> str:
    """The NAS-Bench-201 string of cell ``index`` (0 <= index < 5**6)."""
    ops = [OPS[(index // 5**k) % 5] for k in range(6)]
    return f"|{ops[0]}~0|+|{ops[1]}~0|{ops[2]}~1|+|{ops[3]}~0|{ops[4]}~1|{ops[5]}~2|"


def make_records(count: int) -> list[EvalRecord]:
    """Realistic records of an NB201 study (three metrics, five costs)."""
    start = datetime.now(timezone.utc)
    records = []
    for trial in range(count):
        result = EvalResult(
            "ok",
            metrics={"valid_acc": 80 + trial % 13 / 7, "test_acc": 79.5, "train_loss": 0.31},
            costs={"params": 1.2e6, "macs": 1.5e8, "train_seconds": 1.9, "search_seconds": 0.0},
            budget={"epochs": 12},
        )
        records.append(
            make_record(
                result, study="bench", run_id="run-0", trial=trial, searcher="regularized_evolution",
                space="nb201", arch=nb201_string(trial % 15625), canonical_id=f"{trial % 15625}",
                evaluator="nb201_table", seed=2**62 + trial,
                params={"searcher": {"population": 50, "sample": 10}, "evaluator": {"epochs": 12}},
                started_at=start + timedelta(seconds=trial),
                finished_at=start + timedelta(seconds=trial, milliseconds=2),
                device="cpu", nasatlas_version="0.1.0",
            )
        )
    return records


def percentiles(seconds: list[float], extra: float = 0.0) -> tuple[float, float, float]:
    """(mean, p50, p99) in microseconds; ``extra`` seconds are spread over the mean."""
    micro = sorted(t * 1e6 for t in seconds)
    mean = (sum(micro) + extra * 1e6) / len(micro)
    return mean, statistics.median(micro), micro[int(0.99 * (len(micro) - 1))]


def bench_append(directory: Path, evals: int, roll_rows: int) -> list[tuple[str, float, float, float]]:
    """Rows of (label, mean, p50, p99) in microseconds per evaluation.

    The floor (a bare write + fdatasync of one line) runs interleaved with the fsync'ing appends,
    so both see the same disk; fsync latency on shared virtual disks drifts a lot over time.
    """
    records = make_records(evals)
    rows: list[tuple[str, float, float, float]] = []
    start = datetime.now(timezone.utc)
    made = []
    for i in range(evals):
        begin = time.perf_counter()
        make_record(
            EvalResult("ok", metrics={"valid_acc": 1.0}), study="b", run_id="r", trial=i, searcher="s",
            space="nb201", arch="a", canonical_id="a", evaluator="e", seed=i, started_at=start,
            finished_at=start, nasatlas_version="0.1.0",
        )
        made.append(time.perf_counter() - begin)
    rows.append(("make_record (caller side, not in append)", *percentiles(made)))
    line = encode_line(record_to_json_row(records[0]))
    fd = os.open(directory / "floor.jsonl", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        for fsync in (True, False):
            log = ResultLog(directory / f"log-fsync-{fsync}", roll_rows=roll_rows, fsync=fsync)
            floor: list[float] = []
            appended: list[float] = []
            for record in records:
                if fsync:
                    begin = time.perf_counter()
                    os.write(fd, line)
                    os.fdatasync(fd)
                    floor.append(time.perf_counter() - begin)
                begin = time.perf_counter()
                log.append(record)
                appended.append(time.perf_counter() - begin)
            begin = time.perf_counter()
            log.close()
            closing = time.perf_counter() - begin
            assert len(log.read(columns=["trial"])) == evals
            if fsync:
                rows.append(("floor: os.write + os.fdatasync of one line", *percentiles(floor)))
            label = f"ResultLog.append, fsync={fsync}, roll every {roll_rows}"
            rows.append((label, *percentiles(appended, closing)))
    finally:
        os.close(fd)
    return rows


def synthetic_table(rows: int, seed: int = 0) -> pa.Table:
    """``rows`` rows of the log schema, built vectorised (unique row ids, NB201 arch strings)."""
    rng = np.random.default_rng(seed)
    hexes = rng.bytes(16 * rows).hex()
    row_id = pa.array([hexes[32 * i : 32 * i + 32] for i in range(rows)], pa.string())
    cells = rng.integers(0, 15625, rows)
    arch_table = pa.array([nb201_string(i) for i in range(15625)], pa.string())
    failed = rng.random(rows) < 0.05
    base_us = 1_717_000_000_000_000

    def constant(value: str) -> pa.Array:
        return pa.array([value], pa.string()).take(pa.array(np.zeros(rows, dtype=np.int64)))

    columns: dict[str, pa.Array] = {
        "schema_version": pa.array(np.ones(rows, dtype=np.int32)),
        "row_id": row_id,
        "study": constant("bench"),
        "run_id": constant("run-0"),
        "trial": pa.array(np.arange(rows, dtype=np.int64)),
        "repeat": pa.array(np.arange(rows, dtype=np.int64) % 3),
        "searcher": pa.array(np.array(["random", "rea", "bohb"])[np.arange(rows) % 3]),
        "space": constant("nb201"),
        "arch": arch_table.take(pa.array(cells)),
        "canonical_id": pa.array(cells.astype(str)),
        "evaluator": constant("nb201_table"),
        "budget": constant('{"epochs":12}'),
        "seed": pa.array(rng.integers(0, 2**63 - 1, rows, dtype=np.int64)),
        "params": constant('{"evaluator":{"epochs":12},"searcher":{"population":50,"sample":10}}'),
        "status": pa.array(np.where(failed, "failed", "ok")),
        "error": pa.array(np.full(rows, "RuntimeError: diverged"), mask=~failed),
        "started_at": pa.array(base_us + np.arange(rows, dtype=np.int64) * 1_000_003),
        "finished_at": pa.array(base_us + np.arange(rows, dtype=np.int64) * 1_000_003 + 999),
        "host": constant("node-1"),
        "device": constant("cpu"),
        "nasatlas_version": constant("0.1.0"),
        "cost_params": pa.array(rng.uniform(1e5, 1.5e6, rows)),
        "cost_macs": pa.array(rng.uniform(1e7, 2e8, rows)),
        "cost_train_seconds": pa.array(rng.uniform(0.5, 3.0, rows)),
        "cost_search_seconds": pa.array(np.zeros(rows)),
        "cost_simulated_seconds": pa.array(np.full(rows, np.nan)),
    }
    for name in METRICS:
        columns[name] = pa.array(np.where(failed, np.nan, rng.uniform(0, 100, rows)))
    schema = log_schema(METRICS)
    arrays = [columns[f.name].cast(f.type) for f in schema]
    assert list(schema.names[: len(FIXED_COLUMNS)]) == list(FIXED_COLUMNS)
    return pa.Table.from_arrays(arrays, schema=schema)


def best_of(call: Callable[[], object], repeats: int) -> float:
    """Fastest of ``repeats`` timed calls, in seconds."""
    best = float("inf")
    for _ in range(repeats):
        begin = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - begin)
    return best


def bench_read(directory: Path, rows: int, part_rows: int, repeats: int) -> list[tuple[str, float]]:
    """Rows of (label, seconds)."""
    log = ResultLog(directory)
    directory.mkdir(parents=True, exist_ok=True)
    table = synthetic_table(rows)
    begin = time.perf_counter()
    for offset in range(0, rows, part_rows):
        write_part(directory, table.slice(offset, part_rows), f"bench-{offset // part_rows:07d}", fsync=False)
    timings = [(f"setup: write {len(log.parts())} parts of {part_rows} rows, no fsync", time.perf_counter() - begin)]
    begin = time.perf_counter()
    report = log.compact(target_rows=rows)
    timings.append((f"compact -> {report.parts_after} part(s)", time.perf_counter() - begin))
    frame = log.read()
    assert len(frame) == rows and frame["row_id"].is_unique
    timings.append(("ResultLog.read() -> DataFrame", best_of(log.read, repeats)))
    timings.append(("ResultLog.read_table() -> pyarrow", best_of(log.read_table, repeats)))
    baseline = best_of(lambda: pd.read_parquet(directory), repeats)
    timings.append(("baseline: pandas.read_parquet(dir)", baseline))
    columns = ["searcher", "trial", "metric_valid_acc", "cost_params"]
    filtered = best_of(lambda: log.read({"status": "ok"}, columns), repeats)
    timings.append(("ResultLog.read(filters={'status': 'ok'}, 4 columns)", filtered))
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--evals", type=int, default=5000, help="appends timed per configuration")
    parser.add_argument("--roll-rows", type=int, default=256, help="ResultLog roll_rows")
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of the read benchmark")
    parser.add_argument("--part-rows", type=int, default=256, help="rows per part before compaction")
    parser.add_argument("--repeats", type=int, default=5, help="timed reads (best is reported)")
    parser.add_argument("--dir", type=Path, default=None, help="work directory (default: a temp dir)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-log-", dir=args.dir))
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at start")
    try:
        print(f"append overhead per evaluation ({args.evals} evaluations, {work})")
        print(f"  {'':52s} {'mean us':>9s} {'p50 us':>9s} {'p99 us':>9s}")
        appends = bench_append(work, args.evals, args.roll_rows)
        for label, mean, p50, p99 in appends:
            print(f"  {label:52s} {mean:9.1f} {p50:9.1f} {p99:9.1f}")
        floor, durable = appends[1][1], appends[2][1]
        print(f"  ratio ResultLog.append(fsync) / floor: {durable / floor:.2f}x; "
              f"overhead above the floor: {durable - floor:.1f} us (target: mean < 500 us)")
        print(f"\nread {args.rows:,} rows after compaction")
        reads = bench_read(work / "read", args.rows, args.part_rows, args.repeats)
        for label, seconds in reads:
            print(f"  {label:52s} {seconds:8.3f} s")
        ratio = reads[2][1] / reads[4][1]
        print(f"  ratio ResultLog.read / pandas.read_parquet: {ratio:.2f}x (target: read < 2 s)")
        print(f"load average {os.getloadavg()[0]:.2f} at the end (timings on a shared machine drift)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
