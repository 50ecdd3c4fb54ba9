"""Full-size cost of every zoo entry: parameters, MACs at the paper's input, build seconds.

Run: python benchmarks/bench_zoo.py [--markdown] [--threads 1]
``build s`` is the wall time of building the network with real (default-initialised) weights on the CPU;
params and MACs are counted on the ``meta`` device by :func:`nasatlas.spaces.zoo.zoo_cost` (conv + linear
multiply-accumulates at batch 1, eval mode, aux head excluded and not run). Paper figures are those recorded in
``spaces/zoo.json`` (papers: DARTS, PC-DARTS, P-DARTS, GDAS, ENAS, ProxylessNAS, MobileNetV2, MnasNet, FBNet,
Auto-DeepLab, NAS-Bench-201; citations per entry).
"""

from __future__ import annotations

import argparse
import time

import torch
from nasatlas.spaces.zoo import build_zoo, list_zoo, zoo_cost


def _m(x: float | None, scale: float, digits: int = 2) -> str:
    return "-" if x is None else f"{x / scale:.{digits}f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--markdown", action="store_true", help="print a Markdown table (as in docs/zoo.md)")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    head = ["entry", "space", "input", "params", "params+aux", "MACs (M)", "paper params (M)", "paper MACs (M)",
            "build s"]
    rows = []
    for name in list_zoo():
        t = time.perf_counter()
        with torch.random.fork_rng():
            torch.manual_seed(0)
            build_zoo(name)
        secs = time.perf_counter() - t
        c = zoo_cost(name)
        paper = c["paper"]
        rows.append([name, c["space"], "x".join(str(v) for v in c["input"]), f"{c['params']:,}",
                     "-" if c["params_with_aux"] is None else f"{c['params_with_aux']:,}", _m(c["macs"], 1e6, 1),
                     _m(paper.get("params"), 1e6), _m(paper.get("macs"), 1e6, 0), f"{secs:.2f}"])
        if not args.markdown:
            print("  ".join(rows[-1]), flush=True)
    if args.markdown:
        print("| " + " | ".join(head) + " |")
        print("|" + "|".join("---" for _ in head) + "|")
        for r in rows:
            print("| " + " | ".join(r) + " |")


if __name__ == "__main__":
    main()
