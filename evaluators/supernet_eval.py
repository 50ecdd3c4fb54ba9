"""Supernet evaluator: score architectures with weights inherited from a trained supernet.

The one-shot estimate of an architecture's quality (Bender et al. 2018; Li & Talwalkar 2019, Sec. 4;
Guo et al. 2020, SPOS Sec. 3.3): its single path through a supernet checkpoint is run with the
supernet's weights, no training. Before scoring, BatchNorm running statistics are recalibrated for
that subnet on ``calibration_batches`` x ``batch_size`` training images (SPOS, Sec. 3.3); the
supernet's own statistics are restored afterwards, so evaluations do not affect each other. The
images are drawn by the evaluation's seed: the same seed gives the same result.

Metrics, named as the ``train`` evaluator's so that studies compare them directly: ``valid_acc`` and
``test_acc`` (top-1, percent) on the data's validation and test splits. Costs: ``eval_seconds``
(recalibration + scoring wall time) and ``subnet_params``, the supernet weights the subnet's forward
pass uses (search-time BN is non-affine in the cell supernets, so this is not the evaluation
network's ``params``).

The checkpoint is a file written by :func:`nasatlas.spaces.supernet.save_supernet` — a one-shot study
writes them under ``<out>/search/*.pt`` — read with ``torch.load(weights_only=True)``: a file holding
arbitrary pickled objects is refused. This module imports no searcher (DESIGN §3).
"""

from __future__ import annotations

import contextlib
import json
import pickle
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from nasatlas.results import EvalResult
from nasatlas.spaces import Arch, Space

from .base import Evaluator, resolve_device, seeded

__all__ = ["SupernetEvaluator", "read_checkpoint", "subnet_parameter_count"]

_WHERE = "a one-shot study writes them under <out>/search/*.pt"


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The raw contents of a supernet checkpoint, read with ``torch.load(weights_only=True)``.

    Raises:
        ValueError: for a missing file, a file torch cannot read, one that holds objects other than
            tensors and plain containers (refused unpickled), or one that is not a nasatlas checkpoint.
    """
    import torch
    from nasatlas.spaces.supernet import CHECKPOINT_FORMAT
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"supernet: checkpoint={str(p)!r} does not exist; give the path of a supernet checkpoint "
                         f"({_WHERE})")
    try:
        blob = torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ValueError(f"supernet: checkpoint={str(p)!r} was refused by torch.load(weights_only=True) ({first}); "
                         "only tensors and plain containers are loaded, never arbitrary pickled objects: give a "
                         f"checkpoint written by nasatlas.spaces.supernet.save_supernet ({_WHERE})") from None
    except (RuntimeError, EOFError, OSError) as e:
        raise ValueError(f"supernet: checkpoint={str(p)!r} is not a readable torch file ({e}); give a checkpoint "
                         f"written by save_supernet ({_WHERE})") from None
    if not isinstance(blob, dict) or blob.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"supernet: checkpoint={str(p)!r} is not a nasatlas supernet checkpoint (format "
                         f"{CHECKPOINT_FORMAT!r}); give one written by save_supernet ({_WHERE})")
    return blob


def subnet_parameter_count(model: Any, forward: Any, x: Any) -> int:
    """Parameters of the modules that run in ``forward(x)`` (each module's own, counted once), less
    the model's architecture parameters, which no forward "runs"."""
    import torch
    ran: dict[int, Any] = {}

    def seen(mod: Any, _inputs: Any, _output: Any) -> None:   # returns None: the output is left as it is
        ran[id(mod)] = mod

    handles = [m.register_forward_hook(seen) for m in model.modules()]
    try:
        with torch.inference_mode():
            forward(x)
    finally:
        for h in handles:
            h.remove()
    return sum(p.numel() for m in ran.values() for p in m.parameters(recurse=False))


def _count(name: str, value: Any, least: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise ValueError(f"supernet: {name}={value!r} must be an integer >= {least}")
    return value


class SupernetEvaluator(Evaluator):
    """Score an architecture with a trained supernet's weights (see the module docstring).

    Args:
        checkpoint: path of the supernet checkpoint (``<out>/search/*.pt`` of a one-shot study).
        data: the data set (``{"name": "digits", ...}``, the study's ``[data]``), which must be the one
            the supernet was trained on (input shape and classes are checked); default the calibrated
            CPU data (digits at 16x16, repeated to 3 channels), as for one-shot search.
        calibration_batches: training batches to recalibrate BN statistics on per evaluation (0: use
            the supernet's own statistics, the "inherited" score).
        batch_size: images per calibration and scoring batch.
    """

    def __init__(self, checkpoint: str | None = None, data: Mapping[str, Any] | str | None = None,
                 calibration_batches: int = 10, batch_size: int = 64) -> None:
        self.checkpoint = checkpoint
        self.data = data
        self.calibration_batches = calibration_batches
        self.batch_size = batch_size

    def metric_names(self) -> list[str]:
        return ["valid_acc", "test_acc"]

    def _data_spec(self) -> dict[str, Any]:
        from .train import CALIBRATED_DATA
        if self.data is None:
            return dict(CALIBRATED_DATA)
        return {"name": self.data} if isinstance(self.data, str) else dict(self.data)

    def setup(self, space: Space) -> None:
        """Check the parameters, read the checkpoint (it must hold a supernet of ``space``, declared
        with the same parameters), load the data and check it fits the supernet."""
        import torch
        from nasatlas.spaces.supernet import load_supernet

        from .data import load_data, three_channel
        super().setup(space)
        _count("calibration_batches", self.calibration_batches, 0)
        _count("batch_size", self.batch_size, 1)
        if not self.checkpoint:
            raise ValueError(f"supernet: checkpoint is not set; give checkpoint = \"<path>.pt\", a supernet saved by "
                             f"a one-shot run ({_WHERE})")
        blob = read_checkpoint(self.checkpoint)
        theirs = str(blob.get("space"))
        if theirs != space.name:
            raise ValueError(f"supernet: checkpoint={self.checkpoint!r} holds a supernet of space {theirs!r}, but the "
                             f"study's space is {space.name!r}; give a checkpoint of a one-shot run on {space.name!r}")
        ours = json.dumps(space.params, sort_keys=True, default=str)
        if str(blob.get("space_params")) != ours:
            raise ValueError(f"supernet: checkpoint={self.checkpoint!r} holds a supernet of space {theirs!r} declared "
                             f"with {blob.get('space_params')}, but the study's space is declared with {ours}; "
                             "declare the space as the one-shot run did")
        spec = self._data_spec()
        name = spec.pop("name", None)
        if not name:
            raise ValueError("supernet: data needs a name, e.g. {name = \"digits\"}")
        data = load_data(str(name), **spec)
        if not hasattr(data, "y_test") or data.x_train.ndim != 4 or not hasattr(data, "input_shape"):
            raise ValueError(f"supernet: data {name!r} is not a classification set; supernets score classifiers")
        data = three_channel(data)
        cfg = json.loads(str(blob.get("config", "{}")))
        want = (tuple(cfg["input"]) if "input" in cfg else None, cfg.get("num_classes"))
        have = (tuple(data.input_shape), int(data.num_classes))
        if (want[0] is not None and want[0] != have[0]) or (want[1] is not None and int(want[1]) != have[1]):
            raise ValueError(f"supernet: checkpoint={self.checkpoint!r} takes inputs {want[0]} with {want[1]} classes "
                             f"but data {name!r} ({spec}) gives {have[0]} with {have[1]}; evaluate on the data the "
                             "supernet was trained on (the one-shot study's [data])")
        with torch.random.fork_rng():   # building the net draws initial weights, then overwritten
            try:
                net = load_supernet(self.checkpoint, space)
            except RuntimeError as e:   # a state dict that does not fit the rebuilt supernet
                raise ValueError(f"supernet: checkpoint={self.checkpoint!r} does not fit the supernet of space "
                                 f"{space.name!r} ({str(e).splitlines()[0]}); was it saved by another nasatlas "
                                 "version or with other supernet settings?") from None
        net.eval()
        self._data = data
        self._nets: dict[str, Any] = {"cpu": net}
        self._on_device: dict[str, Any] = {"cpu": data}

    def _on(self, device: str) -> tuple[Any, Any]:
        """The supernet and the data on ``device``, moved there once per process."""
        if device not in self._nets:   # a copy: the CPU supernet stays for other devices
            import copy
            self._nets[device] = copy.deepcopy(self._nets["cpu"]).to(device)
            self._on_device[device] = self._data.to(device)
        return self._nets[device], self._on_device[device]

    def calibration_images(self, seed: int, x_train: Any) -> list[Any]:
        """``calibration_batches`` batches of distinct training images drawn by ``seed``."""
        import torch
        n = int(x_train.shape[0])
        k = min(n, self.calibration_batches * self.batch_size)
        if k == 0:
            return []
        rng = np.random.default_rng(int(seed) & 0x7FFF_FFFF_FFFF_FFFF)
        idx = torch.from_numpy(np.sort(rng.choice(n, k, replace=False))).to(x_train.device)
        return [x_train[idx[s:s + self.batch_size]] for s in range(0, k, self.batch_size)]

    def evaluate(self, arch: Arch, *, budget: Mapping[str, Any], seed: int, device: str = "cpu") -> EvalResult:
        from nasatlas.spaces.supernet import recalibrated_bn, supernet_accuracy
        dev = resolve_device(device)
        net, data = self._on(dev)
        row = self.space.rows([arch])[0] if isinstance(arch, Arch) else np.asarray(arch, dtype=np.int64)
        t0 = time.perf_counter()
        net.eval()
        with seeded(seed, dev):
            mixing = net.mixing_for(row)

            def forward(xb: Any) -> Any:
                return net(xb, mixing)

            calib = self.calibration_images(seed, data.x_train)
            ctx = recalibrated_bn(net, forward, calib) if calib else contextlib.nullcontext()
            with ctx:   # every scoring pass below uses this subnet's statistics
                metrics = {"valid_acc": 100.0 * supernet_accuracy(net, mixing, data.x_valid, data.y_valid,
                                                                  batch_size=max(256, self.batch_size))}
                if int(data.y_test.numel()) > 0:
                    metrics["test_acc"] = 100.0 * supernet_accuracy(net, mixing, data.x_test, data.y_test,
                                                                    batch_size=max(256, self.batch_size))
                seconds = time.perf_counter() - t0
                n_params = subnet_parameter_count(net, forward, data.x_valid[:1])
        return EvalResult(status="ok", metrics=metrics,
                          costs={"eval_seconds": seconds, "subnet_params": float(n_params)}, budget=dict(budget))
