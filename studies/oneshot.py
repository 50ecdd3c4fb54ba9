"""The runner's side of the one-shot protocol: data, batches, epochs and time are the runner's.

A one-shot searcher (DARTS, GDAS, ProxylessNAS, ...; Liu et al. 2019, Dong & Yang 2019, Cai et al.
2019) is driven like this, for one (searcher, repeat) run:

1. ``supernet = searcher.relax(space, net_config)`` with ``net_config = {"input": (C, H, W),
   "num_classes": k, "device": ...}`` from the study's data;
2. the training split is cut in two halves by the run's seeded generator (DARTS, Sec. 2.3: weights on
   one half, architecture parameters on the other); each search epoch zips a shuffled pass over both
   halves and calls ``searcher.step(train_batch, val_batch)`` per pair;
3. after each epoch ``searcher.derive()`` returns the architecture (decision indices) it currently
   believes best.

The architectures derived at the end of the last ``evaluations`` epochs (the study's budget) are
handed over, in epoch order, as the run's trials 0, 1, ...: they go through the study's evaluator and
the same log as black-box proposals. Every row carries ``cost_search_seconds``: the wall time of the
supernet training up to that derivation, measured here, so that one-shot and black-box searchers are
compared under the same budget (the "frustratingly hard" protocol of Yang et al. 2020, Sec. 3).

The searcher declares ``epochs`` (search epochs) and ``batch_size``; everything random in the search
runs under the run's seed (``torch.manual_seed`` inside ``fork_rng``; batches from the run's numpy
generator).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["DerivedArch", "is_one_shot", "run_one_shot_search", "load_search_data"]


@dataclass(frozen=True)
class DerivedArch:
    """One derived architecture: its decision indices, the epoch it was derived after, and the
    supernet training seconds spent up to then."""

    row: tuple[int, ...]
    epoch: int
    search_seconds: float


def is_one_shot(searcher: Any) -> bool:
    """True for an object that follows the one-shot protocol (relax/step/derive)."""
    return all(callable(getattr(searcher, m, None)) for m in ("relax", "step", "derive"))


def load_search_data(data: Any, rng: np.random.Generator, device: str = "cpu") -> tuple[Any, Any, Any]:
    """The study's classification data, grey images repeated to 3 channels, with the training split
    cut into two seeded halves: ``(data, (x_w, y_w), (x_a, y_a))`` — weights train on the first half,
    architecture parameters on the second."""
    from nasatlas.evaluators.data import load_data, three_channel
    from nasatlas.evaluators.train import CALIBRATED_DATA
    spec = dict(CALIBRATED_DATA) if data is None else {"name": data.name, **data.params}
    name = spec.pop("name")
    d = load_data(name, **spec)
    if not hasattr(d, "y_valid") or d.x_train.ndim != 4:
        raise ValueError(f"one-shot search needs a classification data set; [data] name = {name!r} is not one")
    d = three_channel(d)
    n = d.x_train.shape[0]
    perm = rng.permutation(n)
    half = n // 2
    import torch
    w_idx, a_idx = torch.from_numpy(perm[:half]), torch.from_numpy(perm[half:2 * half])
    to = (lambda t: t.to(device)) if device != "cpu" else (lambda t: t)
    return d, (to(d.x_train[w_idx]), to(d.y_train[w_idx])), (to(d.x_train[a_idx]), to(d.y_train[a_idx]))


def run_one_shot_search(searcher: Any, space: Any, *, data: Any, evaluations: int, seed: int,
                        rng: np.random.Generator, device: str = "cpu") -> list[DerivedArch]:
    """Train the searcher's supernet and return the architectures derived after the last
    ``evaluations`` epochs (fewer if the search has fewer epochs).

    Raises:
        ValueError: when the searcher lacks ``epochs``/``batch_size`` or derives an invalid row.
    """
    from nasatlas.evaluators.base import seeded
    from nasatlas.evaluators.data import iterate_batches
    epochs = int(getattr(searcher, "epochs", 0) or 0)
    batch_size = int(getattr(searcher, "batch_size", 0) or 0)
    if epochs < 1 or batch_size < 1:
        raise ValueError(f"one-shot searcher {type(searcher).__name__} must set epochs >= 1 and batch_size >= 1 "
                         f"(got epochs={epochs}, batch_size={batch_size})")
    d, (xw, yw), (xa, ya) = load_search_data(data, rng, device)
    net_config: Mapping[str, Any] = {"input": tuple(d.input_shape), "num_classes": int(d.num_classes),
                                     "device": device}
    derived: list[DerivedArch] = []
    spent = 0.0
    with seeded(seed, device):
        t = time.perf_counter()
        searcher.relax(space, net_config)
        spent += time.perf_counter() - t
        for epoch in range(epochs):
            t = time.perf_counter()
            for tb, vb in zip(iterate_batches(xw, yw, batch_size, rng=rng),
                              iterate_batches(xa, ya, batch_size, rng=rng)):
                searcher.step(tb, vb)
            row = np.asarray(searcher.derive(), dtype=np.int64).reshape(-1)
            spent += time.perf_counter() - t
            try:
                space.validate(row[None, :])
            except ValueError as e:
                raise ValueError(f"{type(searcher).__name__}.derive() returned an invalid architecture: {e}") from None
            if epoch >= epochs - evaluations:
                derived.append(DerivedArch(tuple(int(v) for v in row), epoch, spent))
    return derived
