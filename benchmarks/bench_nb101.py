"""NAS-Bench-101 space benchmarks: nominal and unique counts, sampling, canonical ids.

Run: python benchmarks/bench_nb101.py [--repeat 3]
Targets (2-core CPU): nominal count (cold) < 1 s; unique count 423,624 (cold) well under a minute;
sampling 100,000 specs < 0.5 s. Baselines, timed in this process and extrapolated: NAS-Bench-101's
own method written as plain Python loops (``generate_graphs``: test every bit mask, then hash
every labelling with the iterative MD5 fingerprint).
"""

from __future__ import annotations

import argparse
import itertools
import time
from collections.abc import Callable

import numpy as np
from nasatlas.spaces.nb101 import NB101Graph, nb101
from nasatlas.spaces.nb101_graph import is_full_dag, mask_to_matrix, nb101_hash


def best_of(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def python_loop_masks(v: int, max_edges: int = 9) -> int:
    """generate_graphs's matrix loop for one vertex count, in plain Python."""
    count = 0
    for bits in range(2 ** (v * (v - 1) // 2)):
        m = mask_to_matrix(bits, v)
        if is_full_dag(m) and m.sum() <= max_edges:
            count += 1
    return count


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    rows_out: list[tuple[str, float, str]] = []

    t_nominal = best_of(lambda: NB101Graph().cardinality(), args.repeat)
    t_loop6 = best_of(lambda: python_loop_masks(6), 1)
    t_loop7 = t_loop6 * 2 ** 21 / 2 ** 15  # the same loop over 64x more masks
    rows_out.append(("nominal count 1,293,208 (cold instance)", t_nominal,
                     f"plain-Python mask loop: ~{t_loop7:.0f} s extrapolated ({t_loop7 / t_nominal:.0f}x slower)"))

    def unique_cold() -> int:
        return NB101Graph().unique_cardinality()
    t_unique = best_of(unique_cold, args.repeat)
    p = NB101Graph()
    p.cardinality()
    specs = p.unrank(np.random.default_rng(0).integers(0, p.cardinality(), 500))
    mats = [p.spec(r) for r in specs]
    t_hash = best_of(lambda: [nb101_hash(m, [-1] + [p.ops.index(o) for o in ops[1:-1]] + [-2])
                              for m, ops in mats], 1) / len(mats) * p.cardinality()
    rows_out.append(("unique count 423,624 (cold, includes nominal)", t_unique,
                     f"hash every labelled spec (NB101's way): ~{t_hash:.0f} s extrapolated "
                     f"({t_hash / t_unique:.0f}x slower)"))
    t_reps = best_of(lambda: NB101Graph().unique_ranks(), args.repeat) - t_nominal
    rows_out.append(("class representatives (one per class), beyond the count", max(t_reps, 0.0), ""))

    space = nb101()
    space.cardinality()
    rng = np.random.default_rng(0)
    t_sample = best_of(lambda: space.sample(rng, 100_000), args.repeat)
    r = np.random.default_rng(0)
    card = p.cardinality()

    def python_sample() -> None:
        for _ in range(10_000):
            p.unrank([int(r.integers(card))])
    t_psample = best_of(python_sample, 1) * 10
    rows_out.append(("sample 100,000 specs (nominal)", t_sample,
                     f"one spec per call: {t_psample:.1f} s ({t_psample / t_sample:.0f}x slower)"))
    space.unique_cardinality()
    space.primitives[0].unique_ranks()  # type: ignore[attr-defined]
    t_usample = best_of(lambda: space.sample(rng, 100_000, over="unique"), args.repeat)
    rows_out.append(("sample 100,000 specs (uniform over classes, warm)", t_usample, ""))
    rows = space.sample(rng, 100_000)
    t_rank = best_of(lambda: space.rank(rows), args.repeat)
    rows_out.append(("rank 100,000 specs", t_rank, ""))
    t_canon = best_of(lambda: p.canonical_ranks(rows), args.repeat)
    rows_out.append(("canonical class ids of 100,000 specs", t_canon, ""))
    t_paths = best_of(lambda: p.path_features(rows), 1)
    rows_out.append(("path encoding of 100,000 specs", t_paths, ""))
    t_nb = best_of(lambda: [p.neighbours(x) for x in rows[:1_000]], 1)
    n_nb = sum(len(p.neighbours(x)) for x in rows[:100]) / 100
    rows_out.append(("all neighbours of 1,000 specs", t_nb, f"{n_nb:.1f} neighbours each"))
    t_str = best_of(lambda: [space.to_str(x) for x in itertools.islice(rows, 1_000)], 1)
    rows_out.append(("to_str of 1,000 specs", t_str, ""))

    print(f"{'benchmark':<52} {'seconds':>10}  note")
    for name, sec, note in rows_out:
        print(f"{name:<52} {sec:>10.4f}  {note}")


if __name__ == "__main__":
    main()
