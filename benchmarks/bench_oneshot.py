"""Supernet step time and peak memory of DARTS, GDAS and ProxylessNAS, as ratios to one training step
of a single derived network on the same space and batch.

Run: python benchmarks/bench_oneshot.py [--C 8] [--N 2] [--batch 64] [--size 16] [--steps 10] [--device auto]

Space: NB201 cells with 2, 3 and 5 candidate ops per edge (the first k of ``none``, ``skip_connect``,
``nor_conv_1x1``, ``nor_conv_3x3``, ``avg_pool_3x3`` re-ordered so that the convs come first), so the
growth with the number of ops shows. Each configuration runs in a fresh subprocess (one torch thread):

* **time**: median wall time of ``--steps`` full search steps (architecture step + weight step, as the
  runner calls them) after 2 warm-up steps; the reference is one SGD step (forward, backward, update)
  of the stand-alone NB201 network of the cell the supernet derives, same C, N, batch and input;
* **memory**: on CPU the growth of the process's peak resident set (``ru_maxrss``) from just before
  the first step to the end (activations, gradients and optimiser state the steps need; the built
  network is already counted in the baseline); on CUDA ``torch.cuda.max_memory_allocated`` over the
  steps (which includes the network's weights).

Expected (DARTS paper, ProxylessNAS Sec. 3.1): DARTS's cost grows with the number of ops (every op of
every edge runs), first order about k/1 of a path and second order about 3 times that; GDAS and
ProxylessNAS stay near 1x (one op per edge; ProxylessNAS's architecture step runs two).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from typing import Any

OPS_ORDER = ("nor_conv_3x3", "nor_conv_1x1", "skip_connect", "avg_pool_3x3", "none")
METHODS = {"darts_1st": ("darts", {"order": 1}), "darts_2nd": ("darts", {"order": 2}), "gdas": ("gdas", {}),
           "proxylessnas": ("proxylessnas", {})}


def _child(cfg: dict[str, Any]) -> dict[str, Any]:
    """Measure one configuration (runs in a fresh process)."""
    import resource

    import torch
    from nasatlas.searchers import get_searcher
    from nasatlas.spaces import EdgeDAG, Space
    from nasatlas.spaces.nets.nb201_net import NB201Network
    torch.set_num_threads(1)
    torch.manual_seed(0)
    device = cfg["device"]
    ops = OPS_ORDER[:cfg["k"]]
    space = Space("nb201", [EdgeDAG("cell", nodes=4, ops=ops)], family="nb201")
    shape = (cfg["batch"], 3, cfg["size"], cfg["size"])
    x = torch.randn(shape, device=device)
    y = torch.randint(0, 10, (cfg["batch"],), device=device)

    def rss_mb() -> float:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0

    def peak(fn: Any) -> tuple[list[float], float]:
        before = rss_mb()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        for _ in range(2):
            fn()
        times = []
        for _ in range(cfg["steps"]):
            t = time.perf_counter()
            fn()
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            times.append(time.perf_counter() - t)
        mem = (torch.cuda.max_memory_allocated() / 2**20 if device.startswith("cuda") else rss_mb() - before)
        return times, mem

    if cfg["method"] == "single":
        edges = [ops[0]] * 6
        net = NB201Network(edges, C=cfg["C"], N=cfg["N"], num_classes=10).to(device)
        opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)

        def step() -> None:
            opt.zero_grad()
            torch.nn.functional.cross_entropy(net(x), y).backward()
            opt.step()
        base = rss_mb()
        times, mem = peak(step)
        return {"median_s": statistics.median(times), "mem_mb": mem, "rss_build_mb": base}
    name, params = METHODS[cfg["method"]]
    s = get_searcher(name, epochs=10, batch_size=cfg["batch"], net={"C": cfg["C"], "N": cfg["N"]}, **params)
    s.relax(space, {"input": (3, cfg["size"], cfg["size"]), "num_classes": 10, "device": device})
    base = rss_mb()
    times, mem = peak(lambda: s.step((x, y), (x, y)))
    return {"median_s": statistics.median(times), "mem_mb": mem, "rss_build_mb": base}


def run(cfg: dict[str, Any]) -> dict[str, Any]:
    out = subprocess.run([sys.executable, __file__, "--child", json.dumps(cfg)], capture_output=True, text=True,
                         check=True, env={"OMP_NUM_THREADS": "1", **_env()})
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def _env() -> dict[str, str]:
    import os
    return {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--C", type=int, default=8)
    ap.add_argument("--N", type=int, default=2)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--size", type=int, default=16)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--ops", default="2,3,5")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--child", default=None)
    a = ap.parse_args()
    if a.child is not None:
        print(json.dumps(_child(json.loads(a.child))))
        return
    import torch
    device = ("cuda" if torch.cuda.is_available() else "cpu") if a.device == "auto" else a.device
    common = {"C": a.C, "N": a.N, "batch": a.batch, "size": a.size, "steps": a.steps, "device": device}
    print(f"NB201 supernet C={a.C} N={a.N}, batch {a.batch} at {a.size}x{a.size}, device {device}, "
          f"median of {a.steps} steps; ratio = method step / single-network SGD step")
    print(f"{'ops':>4} {'method':>13} {'step ms':>9} {'time x':>7} {'peak MB':>9} {'mem x':>7}")
    for k in [int(v) for v in a.ops.split(",")]:
        ref = run({**common, "k": k, "method": "single"})
        print(f"{k:>4} {'single net':>13} {1000 * ref['median_s']:9.1f} {1.0:7.2f} {ref['mem_mb']:9.1f} {1.0:7.2f}")
        for m in METHODS:
            r = run({**common, "k": k, "method": m})
            mem_x = r["mem_mb"] / ref["mem_mb"] if ref["mem_mb"] > 0 else float("nan")
            print(f"{k:>4} {m:>13} {1000 * r['median_s']:9.1f} {r['median_s'] / ref['median_s']:7.2f} "
                  f"{r['mem_mb']:9.1f} {mem_x:7.2f}")


if __name__ == "__main__":
    main()
