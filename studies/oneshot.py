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

import json
import os
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
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
    """The study's data (classification: grey images repeated to 3 channels; segmentation: as loaded),
    with the training split cut into two seeded halves: ``(data, (x_w, y_w), (x_a, y_a))`` — weights
    train on the first half, architecture parameters on the second."""
    from nasatlas.evaluators.data import load_data, three_channel
    from nasatlas.evaluators.train import CALIBRATED_DATA
    spec = dict(CALIBRATED_DATA) if data is None else {"name": data.name, **data.params}
    name = spec.pop("name")
    d = load_data(name, **spec)
    if not hasattr(d, "y_valid") or d.x_train.ndim != 4:
        raise ValueError(f"one-shot search needs an image data set; [data] name = {name!r} is not one")
    if d.y_train.ndim == 1:
        d = three_channel(d)
    n = d.x_train.shape[0]
    perm = rng.permutation(n)
    half = n // 2
    import torch
    w_idx, a_idx = torch.from_numpy(perm[:half]), torch.from_numpy(perm[half:2 * half])
    to = (lambda t: t.to(device)) if device != "cpu" else (lambda t: t)
    return d, (to(d.x_train[w_idx]), to(d.y_train[w_idx])), (to(d.x_train[a_idx]), to(d.y_train[a_idx]))


#: validation images the per-epoch report scores on, and training batches for BN recalibration
PROBE_IMAGES = 512
CALIBRATION_BATCHES = 4


def _write_epochs(path: Path, rows: list[dict[str, Any]]) -> None:
    """Rewrite the run's per-epoch table atomically (temp file + rename)."""
    import pandas as pd
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    pd.DataFrame(rows).to_parquet(tmp, index=False)
    os.replace(tmp, path)


def _epoch_row(searcher: Any, space: Any, row: np.ndarray, epoch: int, spent: float, probe: Any,
               calibration: list[Any], label: str, repeat: int) -> dict[str, Any]:
    out: dict[str, Any] = {"searcher": label, "repeat": repeat, "epoch": epoch, "status": "ok", "error": None,
                           "arch": space.to_str(row), "arch_row": json.dumps([int(v) for v in row]),
                           "search_seconds": spent}
    from nasatlas.searchers.oneshot_base import op_histogram
    out["op_histogram"] = json.dumps(op_histogram(space, row), sort_keys=True)
    report = getattr(searcher, "epoch_report", None)
    if callable(report):
        rep = dict(report(probe[0], probe[1], calibration, row))
        if "alpha" in rep:
            out["alpha"] = json.dumps(rep.pop("alpha"))
        scalars = {k: v for k, v in rep.items() if isinstance(v, (int, float, bool)) and not isinstance(v, bool)}
        out.update({k: float(v) for k, v in scalars.items()})
        rest = {k: v for k, v in rep.items() if k not in scalars}
        out["extra"] = json.dumps(rest, sort_keys=True, default=str)
    return out


def run_one_shot_search(searcher: Any, space: Any, *, data: Any, evaluations: int, seed: int,
                        rng: np.random.Generator, device: str = "cpu", out_dir: str | Path | None = None,
                        label: str = "oneshot", repeat: int = 0) -> list[DerivedArch]:
    """Train the searcher's supernet and return the architectures derived after the last
    ``evaluations`` epochs (fewer if the search has fewer epochs or stops early).

    After every epoch the searcher's ``end_epoch()`` (if any) runs, then ``derive()``, then its
    ``epoch_report(x_probe, y_probe, calibration_batches, row)`` (if any: the per-epoch losses,
    supernet accuracy, derived subnet's accuracy with inherited weights before/after BN recalibration,
    alpha snapshot) on up to :data:`PROBE_IMAGES` images of the validation split. With ``out_dir`` these
    rows go to ``<out_dir>/<label>-r<repeat>.parquet`` (rewritten atomically after each epoch) and the
    trained supernet to ``<out_dir>/<label>-r<repeat>.pt`` (:func:`~nasatlas.spaces.supernet.save_supernet`).
    Report time is not counted in ``search_seconds``. A searcher whose ``stop`` turns true ends the
    search after that epoch (early stopping).

    A search that fails (NaN loss, out of memory, a crash) is recorded in the epoch table with status
    ``failed`` and its error; the architectures derived before the failure are still returned, so the
    study goes on.

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
    probe = (d.x_valid[:PROBE_IMAGES].to(device), d.y_valid[:PROBE_IMAGES].to(device))
    calibration = [xw[i * batch_size:(i + 1) * batch_size] for i in range(CALIBRATION_BATCHES)
                   if i * batch_size < xw.shape[0]]
    table = Path(out_dir) / f"{label}-r{repeat}.parquet" if out_dir is not None else None
    epoch_rows: list[dict[str, Any]] = []
    rows: list[tuple[tuple[int, ...], int, float]] = []
    spent = 0.0
    supernet = None
    with seeded(seed, device):
        try:
            t = time.perf_counter()
            supernet = searcher.relax(space, net_config)
            spent += time.perf_counter() - t
            for epoch in range(epochs):
                t = time.perf_counter()
                for tb, vb in zip(iterate_batches(xw, yw, batch_size, rng=rng),
                                  iterate_batches(xa, ya, batch_size, rng=rng)):
                    searcher.step(tb, vb)
                end = getattr(searcher, "end_epoch", None)
                if callable(end):
                    end()
                row = np.asarray(searcher.derive(), dtype=np.int64).reshape(-1)
                spent += time.perf_counter() - t
                try:
                    space.validate(row[None, :])
                except ValueError as e:
                    raise ValueError(f"{type(searcher).__name__}.derive() returned an invalid architecture: {e}"
                                     ) from None
                rows.append((tuple(int(v) for v in row), epoch, spent))
                epoch_rows.append(_epoch_row(searcher, space, row, epoch, spent, probe, calibration, label, repeat))
                if table is not None:
                    _write_epochs(table, epoch_rows)
                if out_dir is not None and epoch + 1 in getattr(searcher, "checkpoint_epochs", ()):
                    from nasatlas.spaces.supernet import save_supernet
                    save_supernet(supernet, Path(out_dir) / f"{label}-r{repeat}-e{epoch + 1}.pt", searcher=label,
                                  repeat=repeat, epochs=epoch + 1)
                if getattr(searcher, "stop", False):
                    break
        except ValueError:
            raise
        except Exception as e:  # noqa: BLE001 - a failed search is logged, the study goes on
            epoch_rows.append({"searcher": label, "repeat": repeat, "epoch": len(rows), "status": "failed",
                               "error": f"{type(e).__name__}: {e}", "search_seconds": spent})
            if table is not None:
                _write_epochs(table, epoch_rows)
            warnings.warn(f"one-shot search {label} repeat {repeat} failed after {len(rows)} epoch(s): "
                          f"{type(e).__name__}: {e}", RuntimeWarning, stacklevel=2)
        if out_dir is not None and supernet is not None and hasattr(supernet, "derive_row"):
            from nasatlas.spaces.supernet import save_supernet
            save_supernet(supernet, Path(out_dir) / f"{label}-r{repeat}.pt", searcher=label, repeat=repeat,
                          epochs=len(rows))
    return [DerivedArch(r, e, s) for r, e, s in rows[-evaluations:]]
