"""Space benchmarks: sampling + one-hot of DARTS, NB201 neighbours, every cardinality.

Run: python benchmarks/bench_spaces.py [--repeat 5]
Targets (2-core CPU): sampling + one-hot encoding of 100,000 DARTS architectures < 0.2 s
(ConfigSpace takes ~2.6 s to sample 100,000 such configurations); every cardinality < 10 ms.
The baseline column times the same sampling written as a plain Python loop in this process.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from nasatlas.spaces import get_space, list_spaces
from nasatlas.spaces.encodings import onehot


def best_of(fn, repeat: int) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    darts = get_space("darts")
    rng = np.random.default_rng(0)

    t_sample = best_of(lambda: darts.sample(rng, 100_000), args.repeat)
    rows = darts.sample(rng, 100_000)
    t_onehot = best_of(lambda: onehot(darts, rows), args.repeat)
    t_both = best_of(lambda: onehot(darts, darts.sample(rng, 100_000)), args.repeat)

    def python_loop() -> None:
        sizes = darts.sizes
        r = np.random.default_rng(0)
        [[int(r.integers(s)) for s in sizes] for _ in range(10_000)]
    t_loop = best_of(python_loop, 1) * 10

    print(f"{'benchmark':<52} {'seconds':>10}  note")
    print(f"{'DARTS sample 100,000':<52} {t_sample:>10.4f}")
    print(f"{'DARTS one-hot 100,000':<52} {t_onehot:>10.4f}")
    print(f"{'DARTS sample + one-hot 100,000 (target < 0.2 s)':<52} {t_both:>10.4f}  "
          f"plain-Python per-decision loop: {t_loop:.2f} s ({t_loop / t_both:.0f}x slower)")

    nb = get_space("nb201")
    cells = nb.sample(rng, 10_000)
    t_nb = best_of(lambda: [nb.neighbours(r) for r in cells], max(1, args.repeat // 2))
    n_nb = sum(len(nb.neighbours(r)) for r in cells[:100]) // 100
    print(f"{'NB201 all neighbours of 10,000 cells':<52} {t_nb:>10.4f}  {n_nb} neighbours each")

    worst = 0.0
    for name in list_spaces():
        if name == "nb101":
            continue  # its nominal count enumerates the spec list once (see bench_nb101.py)
        space = get_space(name)
        t = best_of(space.cardinality, args.repeat)
        t_build = best_of(lambda n=name: get_space(n).cardinality(), args.repeat)
        worst = max(worst, t_build)
        print(f"{'cardinality ' + name:<52} {t:>10.6f}  with declaration: {t_build * 1e3:.2f} ms")
    print(f"{'worst cardinality incl. declaration (target < 10 ms)':<52} {worst:>10.6f}")
    t_unique = best_of(lambda: get_space("nb201").unique_cardinality(), 1)
    print(f"{'NB201 unique count (enumerates 15,625 cells)':<52} {t_unique:>10.4f}")


if __name__ == "__main__":
    main()
