"""Landscape benchmark: every statistic of ``nasatlas analyze landscape`` over all 15,625 NAS-Bench-201
cells, end to end from the table (Parquet read, string parsing, neighbour pairs, FDC, lag-1 pair
autocorrelation, local maxima, hill-climbing basins of the global best, correlation by distance).

Run: python benchmarks/bench_landscape.py [--table PATH] [--repeat 5]
Target (2-core CPU, one thread): < 0.5 s end to end. Baselines timed in the same process: a per-cell
Python loop over ``space.neighbours`` with dict lookups for the neighbour pairs, local maxima and
basins (the layout of public per-cell implementations, one of which takes ~8 s for the local maxima
alone), and the O(N²) block computation of the correlation by distance that the tensor transform
replaces.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from nasatlas.spaces import get_space
from nasatlas.studies.landscape import landscape, neighbour_correlation_by_distance, table_rows

DEFAULT_TABLE = Path(os.environ.get("NASATLAS_SHARED", Path(__file__).resolve().parents[2] / "shared")) / "data" / \
    "nb201_cifar10valid_avg3seeds.parquet"


def best_of(fn: Callable[[], Any], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def per_cell_loop(space: Any, rows: np.ndarray, f: np.ndarray) -> tuple[int, int]:
    """Plain Python: neighbours per cell, dict lookups, local maxima, then best-improvement climbs."""
    key = {tuple(r): i for i, r in enumerate(rows.tolist())}
    nbrs = [[key[t] for t in map(tuple, space.neighbours(r).tolist()) if t in key] for r in rows]
    strict = sum(1 for i, n in enumerate(nbrs) if n and all(f[i] > f[j] for j in n))
    best, basin = int(np.argmax(f)), 0
    for i in range(len(rows)):
        while True:
            j = max(nbrs[i], key=lambda k: (f[k], -k))
            if f[j] <= f[i]:
                break
            i = j
        basin += i == best
    return strict, basin


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--table", default=str(DEFAULT_TABLE), help="the NB201 cifar10-valid Parquet table")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    path = Path(args.table)
    if not path.is_file():
        raise SystemExit(f"--table {path} does not exist; give the NB201 Parquet table")
    space = get_space("nb201")
    import scipy.stats  # noqa: F401  (import cost is not the benchmark's)

    def end_to_end() -> None:
        table = pd.read_parquet(path)
        rows, f = table_rows(space, table)
        landscape(space, rows, f)
        neighbour_correlation_by_distance(space, rows, f)

    end_to_end()
    table = pd.read_parquet(path)
    rows, f = table_rows(space, table)
    t_all = best_of(end_to_end, args.repeat)
    t_read = best_of(lambda: pd.read_parquet(path), args.repeat)
    t_parse = best_of(lambda: table_rows(space, table), args.repeat)
    t_land = best_of(lambda: landscape(space, rows, f), args.repeat)
    t_corr = best_of(lambda: neighbour_correlation_by_distance(space, rows, f), args.repeat)
    t_loop = best_of(lambda: per_cell_loop(space, rows, f), 1)
    t_blocks = best_of(lambda: neighbour_correlation_by_distance(space, rows, f, method="blocks"), 1)
    st = landscape(space, rows, f)
    if per_cell_loop(space, rows, f) != (st.strict_local_maxima, st.basin_size_global):
        raise SystemExit("the per-cell loop and landscape() disagree on the local maxima or the basin")
    print(f"{'benchmark (NB201, 15,625 cells)':<58} {'seconds':>9}  note")
    print(f"{'end to end from the Parquet table (target < 0.5 s)':<58} {t_all:>9.4f}")
    print(f"{'  read Parquet':<58} {t_read:>9.4f}")
    print(f"{'  parse architecture strings':<58} {t_parse:>9.4f}")
    print(f"{'  landscape(): pairs, FDC, rho(1), maxima, basins':<58} {t_land:>9.4f}  "
          f"per-cell Python loop (pairs, maxima, basin): {t_loop:.2f} s ({t_loop / t_land:.0f}x slower)")
    print(f"{'  correlation by distance d = 1..6 (tensor transform)':<58} {t_corr:>9.4f}  "
          f"O(N^2) blocks: {t_blocks:.2f} s ({t_blocks / t_corr:.0f}x slower)")
    print(f"basin of the global best: {st.basin_size_global:,} ({st.basin_share_global:.1%}) best improvement, "
          f"{st.basin_size_global_first:,} first improvement; strict local maxima {st.strict_local_maxima}")


if __name__ == "__main__":
    main()
