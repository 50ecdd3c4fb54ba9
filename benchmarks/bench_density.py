"""Density benchmark: every pairwise distance of 20,000 DARTS architectures (199,990,000 pairs),
vectorised and chunked, kept as a histogram plus nearest-neighbour distances.

Run: OMP_NUM_THREADS=1 python benchmarks/bench_density.py [--n 20000] [--path-n 5000]
Prints, per distance: seconds, pairs per second, peak traced memory (tracemalloc sees numpy's
allocations) and the memory of the n x n matrix it never holds. Baselines, timed in this process on a
subset and scaled per pair: ``hamming`` as one broadcast numpy comparison of the whole matrix (what one
writes first; its n x n x 24 boolean temporary alone is 9.6 GB at n = 20,000), ``edit`` as
``space.distance`` called pair by pair (the space's reference implementation). Checks: the chunked
result equals the baseline on the subset.
"""

from __future__ import annotations

import argparse
import time
import tracemalloc

import numpy as np
from nasatlas.spaces import get_space
from nasatlas.studies.density import MAX_BLOCK_BYTES, pair_scan, pairwise_distances, sample_distinct


def timed_scan(space, rows, kind):  # type: ignore[no-untyped-def]
    tracemalloc.start()
    t = time.perf_counter()
    scan = pair_scan(space, rows, kind)
    sec = time.perf_counter() - t
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return scan, sec, peak


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=20_000)
    ap.add_argument("--path-n", type=int, default=5_000, help="architectures for the path distance")
    args = ap.parse_args()
    darts = get_space("darts")
    rows = sample_distinct(darts, np.random.default_rng(0), args.n)
    print(f"DARTS, {args.n:,} distinct uniform architectures, {darts.width} decisions; block bound "
          f"{MAX_BLOCK_BYTES / 2**20:.0f} MiB")
    print(f"{'distance':<8} {'n':>7} {'pairs':>13} {'seconds':>8} {'Mpairs/s':>9} {'peak MiB':>9} "
          f"{'n x n int64 MiB':>16}  baseline")

    sub = rows[:1500]
    t = time.perf_counter()
    base = (sub[:, None, :] != sub[None, :, :]).sum(-1)
    t_base = (time.perf_counter() - t) / (len(sub) ** 2)          # full matrix: n^2 entries
    assert np.array_equal(base, pairwise_distances(darts, sub, kind="hamming"))
    few = rows[:40]
    t = time.perf_counter()
    ref = np.array([[int(darts.distance(a, b, kind="edit")) for b in few] for a in few])
    t_ref = (time.perf_counter() - t) / (len(few) ** 2)
    assert np.array_equal(ref, pairwise_distances(darts, few, kind="edit"))

    for kind, n, per_pair, what in (("hamming", args.n, t_base, "broadcast n x n x 24 comparison"),
                                    ("edit", args.n, t_ref, "space.distance pair by pair"),
                                    ("path", min(args.path_n, args.n), None, "")):
        scan, sec, peak = timed_scan(darts, rows[:n], kind)
        pairs = n * (n - 1) // 2
        assert int(scan.hist.sum()) == pairs
        note = ""
        if per_pair is not None:
            est = per_pair * (n * n if kind == "hamming" else pairs)
            note = f"{what}: {est:,.0f} s (extrapolated, {est / sec:.0f}x slower)"
        print(f"{kind:<8} {n:>7,} {pairs:>13,} {sec:>8.2f} {pairs / sec / 1e6:>9.1f} {peak / 2**20:>9.1f} "
              f"{n * n * 8 / 2**20:>16,.0f}  {note}")
        d = np.arange(len(scan.hist))
        print(f"{'':<8} mean pair distance {float((d * scan.hist).sum() / pairs):.3f}, mean nearest neighbour "
              f"{float(scan.nn.mean()):.3f}")


if __name__ == "__main__":
    main()
