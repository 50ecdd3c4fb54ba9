"""DARTS_V2 CIFAR network (C=36, 20 cells): build time and train-step time vs plain PyTorch.

Run: python benchmarks/bench_darts_net.py [--steps 4] [--rounds 3] [--threads 2] [--batch 32]
Target (2-core CPU): nasatlas's train step within 5% of the same network written by hand in plain
PyTorch (the compact ``Plain*`` classes below, a baseline only: the library builds networks from
``nasatlas.spaces.ops``). Both networks get the same weights, and their outputs are checked equal
before timing. Steps of the two alternate one by one (who goes first swaps each pair), so load from
other processes hits both members of a pair alike; the target applies to the median of the per-pair
time ratios, which is robust to that load drifting on a shared machine. Median and total step times
are printed too. One step: forward,
cross-entropy, backward, SGD update (batch 32, 3x32x32, no auxiliary head, no drop-path).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F
from nasatlas.spaces.cost import count_params
from nasatlas.spaces.nets.darts_net import DartsCifarNetwork, Genotype
from torch import nn

DARTS_V2 = Genotype(
    normal=[("sep_conv_3x3", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("sep_conv_3x3", 1),
            ("sep_conv_3x3", 1), ("skip_connect", 0), ("skip_connect", 0), ("dil_conv_3x3", 2)],
    normal_concat=[2, 3, 4, 5],
    reduce=[("max_pool_3x3", 0), ("max_pool_3x3", 1), ("skip_connect", 2), ("max_pool_3x3", 1),
            ("max_pool_3x3", 0), ("skip_connect", 2), ("skip_connect", 2), ("max_pool_3x3", 1)],
    reduce_concat=[2, 3, 4, 5],
)


# ----------------------------------------------------------- plain-PyTorch baseline (benchmark only)

def _rcb(ci: int, co: int) -> nn.Sequential:
    return nn.Sequential(nn.ReLU(), nn.Conv2d(ci, co, 1, bias=False), nn.BatchNorm2d(co))


def _dw_pw(c: int, k: int, s: int, d: int) -> list[nn.Module]:
    p = d * (k - 1) // 2
    return [nn.ReLU(), nn.Conv2d(c, c, k, s, p, dilation=d, groups=c, bias=False),
            nn.Conv2d(c, c, 1, bias=False), nn.BatchNorm2d(c)]


class PlainFR(nn.Module):
    def __init__(self, ci: int, co: int) -> None:
        super().__init__()
        self.a = nn.Conv2d(ci, co // 2, 1, 2, bias=False)
        self.b = nn.Conv2d(ci, co // 2, 1, 2, bias=False)
        self.bn = nn.BatchNorm2d(co)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(x)
        return self.bn(torch.cat([self.a(x), self.b(x[:, :, 1:, 1:])], 1))


def _plain_op(name: str, c: int, s: int) -> nn.Module:
    if name == "sep_conv_3x3":
        return nn.Sequential(*_dw_pw(c, 3, s, 1), *_dw_pw(c, 3, 1, 1))
    if name == "dil_conv_3x3":
        return nn.Sequential(*_dw_pw(c, 3, s, 2))
    if name == "max_pool_3x3":
        return nn.MaxPool2d(3, s, 1)
    if name == "skip_connect":
        return nn.Identity() if s == 1 else PlainFR(c, c)
    raise ValueError(name)


class PlainCell(nn.Module):
    def __init__(self, g: Genotype, cpp: int, cp: int, c: int, red: bool, red_prev: bool) -> None:
        super().__init__()
        self.pre0 = PlainFR(cpp, c) if red_prev else _rcb(cpp, c)
        self.pre1 = _rcb(cp, c)
        edges, self.concat = (g.reduce, g.reduce_concat) if red else (g.normal, g.normal_concat)
        self.idx = [i for _, i in edges]
        self.ops = nn.ModuleList(_plain_op(n, c, 2 if red and i < 2 else 1) for n, i in edges)

    def forward(self, s0: torch.Tensor, s1: torch.Tensor) -> torch.Tensor:
        st = [self.pre0(s0), self.pre1(s1)]
        for k in range(0, len(self.ops), 2):
            st.append(self.ops[k](st[self.idx[k]]) + self.ops[k + 1](st[self.idx[k + 1]]))
        return torch.cat([st[j] for j in self.concat], 1)


class PlainNet(nn.Module):
    def __init__(self, g: Genotype, C: int = 36, num_classes: int = 10, layers: int = 20) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 3 * C, 3, padding=1, bias=False), nn.BatchNorm2d(3 * C))
        cpp, cp, c, red_prev = 3 * C, 3 * C, C, False
        self.cells = nn.ModuleList()
        for i in range(layers):
            red = i in (layers // 3, 2 * layers // 3)
            c = 2 * c if red else c
            self.cells.append(PlainCell(g, cpp, cp, c, red, red_prev))
            cpp, cp, red_prev = cp, 4 * c, red
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cp, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            s0, s1 = s1, cell(s0, s1)
        return self.fc(self.pool(s1).flatten(1))


# ------------------------------------------------------------------------------------------ timing

def _copy_state(src: nn.Module, dst: nn.Module) -> None:
    """Copy parameters and buffers in definition order (both nets define layers in the same order)."""
    pairs = list(zip(src.parameters(), dst.parameters())) + list(zip(src.buffers(), dst.buffers()))
    if len(list(src.parameters())) != len(list(dst.parameters())):
        raise RuntimeError("baseline and nasatlas networks have different parameter lists")
    with torch.no_grad():
        for a, b in pairs:
            if a.shape != b.shape:
                raise RuntimeError(f"shape mismatch {tuple(a.shape)} vs {tuple(b.shape)}")
            b.copy_(a)


def _step_fn(net: nn.Module, x: torch.Tensor, y: torch.Tensor):  # type: ignore[no-untyped-def]
    opt = torch.optim.SGD(net.parameters(), lr=0.025, momentum=0.9, weight_decay=3e-4)

    def step() -> float:
        t = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(net(x), y).backward()
        opt.step()
        return time.perf_counter() - t

    return step


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=4, help="timed steps per network per round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=32)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    builds, base_builds = [], []
    with torch.random.fork_rng():
        torch.manual_seed(0)
        for _ in range(3):
            t = time.perf_counter()
            ours = DartsCifarNetwork(DARTS_V2, C=36, num_classes=10, layers=20)
            builds.append(time.perf_counter() - t)
            t = time.perf_counter()
            plain = PlainNet(DARTS_V2)
            base_builds.append(time.perf_counter() - t)
        _copy_state(ours, plain)
        gen = torch.Generator().manual_seed(0)
        x = torch.randn(args.batch, 3, 32, 32, generator=gen)
        y = torch.randint(0, 10, (args.batch,), generator=gen)

    ours.eval(), plain.eval()
    with torch.inference_mode():
        diff = (ours(x[:4]) - plain(x[:4])).abs().max().item()
    if diff > 1e-4:
        raise RuntimeError(f"baseline differs from nasatlas's network (max |diff| = {diff:.2e})")
    ours.train(), plain.train()

    step_ours, step_plain = _step_fn(ours, x, y), _step_fn(plain, x, y)
    step_ours(), step_plain()  # warm-up
    t_ours: list[float] = []
    t_plain: list[float] = []
    for r in range(args.rounds * args.steps):  # alternate single steps; swap who goes first each time
        first, second = (step_ours, step_plain) if r % 2 == 0 else (step_plain, step_ours)
        a, b = first(), second()
        t_ours.append(a if r % 2 == 0 else b)
        t_plain.append(b if r % 2 == 0 else a)
    m_ours, m_plain = statistics.median(t_ours), statistics.median(t_plain)

    print(f"DARTS_V2 CIFAR C=36, 20 cells: {count_params(ours):,} params; torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, batch {args.batch}, {args.rounds}x{args.steps} steps each")
    print(f"{'benchmark':<40} {'nasatlas':>10} {'plain':>10} {'ratio':>7}")
    print(f"{'build (s, best of 3)':<40} {min(builds):>10.3f} {min(base_builds):>10.3f} "
          f"{min(builds) / min(base_builds):>7.3f}")
    pair_ratio = statistics.median(a / b for a, b in zip(t_ours, t_plain))
    print(f"{'train step (s, median)':<40} {m_ours:>10.3f} {m_plain:>10.3f} {m_ours / m_plain:>7.3f}")
    print(f"{'train step (s, total of all steps)':<40} {sum(t_ours):>10.3f} {sum(t_plain):>10.3f} "
          f"{sum(t_ours) / sum(t_plain):>7.3f}")
    print(f"{'train step, median of paired ratios':<40} {'':>10} {'':>10} {pair_ratio:>7.3f}  "
          f"(target <= 1.05; same-output check max|diff| {diff:.1e})")

if __name__ == "__main__":
    main()
