"""Parameter and multiply-accumulate counts of built networks, computed the same way everywhere.

``count_macs`` uses PyTorch's own ``torch.utils.flop_counter.FlopCounterMode`` (DESIGN.md section 7).
That counter reports FLOPs with 2 FLOPs per multiply-add, so MACs = FLOPs / 2. It also counts other
matmul-like ATen ops (``bmm``, ``baddbmm``, attention kernels); nasatlas's MACs are, by definition, the
multiply-accumulates of convolutions and fully connected layers only, so only the ``convolution``,
``mm`` and ``addmm`` entries are summed. Bias additions, BatchNorm, activations, pooling, element-wise
sums and resizing are not counted (the convention of the NAS papers' "multiply-adds": DARTS table 2,
NASNet, PNAS). ``count_macs_hooks`` computes the same quantity from forward hooks on ``nn.Conv2d`` /
``nn.Linear`` and exists to cross-check the first.

Both run one forward pass at batch 1, in eval mode, under ``torch.inference_mode()``, and restore every
submodule's train/eval flag afterwards. Eval mode is what keeps auxiliary heads (DARTS, NASNet) and
drop-path out of the count.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

__all__ = ["count_macs", "count_macs_hooks", "count_params", "counted_aten_ops"]


def count_params(model: nn.Module, exclude_prefixes: Sequence[str] = ()) -> int:
    """Number of scalar parameters: the sum of ``numel`` over ``model.named_parameters()``.

    Buffers (BatchNorm running statistics) are not parameters and are not counted. Parameters whose
    qualified name starts with any of ``exclude_prefixes`` (e.g. ``("auxiliary_head",)``) are skipped;
    shared parameters are counted once.
    """
    if isinstance(exclude_prefixes, str):
        raise TypeError(
            "exclude_prefixes must be a sequence of strings, not a single string; "
            f"write ({exclude_prefixes!r},)"
        )
    prefixes = tuple(exclude_prefixes)
    return sum(p.numel() for name, p in model.named_parameters() if not name.startswith(prefixes))


def _check_shape(input_shape: Sequence[int]) -> tuple[int, ...]:
    shape = tuple(int(s) for s in input_shape)
    if len(shape) < 2 or shape[0] != 1 or any(s < 1 for s in shape):
        raise ValueError(
            f"input_shape must be the full input shape with batch size 1, e.g. (1, 3, 32, 32); "
            f"got {tuple(input_shape)!r}"
        )
    return shape


@contextmanager
def _eval_inference(model: nn.Module) -> Iterator[None]:
    """Eval mode + inference mode for the block; restores each submodule's own ``training`` flag."""
    flags = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        with torch.inference_mode():
            yield
    finally:
        for m, flag in flags:
            m.training = flag


def _dummy_input(model: nn.Module, shape: tuple[int, ...]) -> torch.Tensor:
    ref = next(iter(model.parameters()), None)
    if ref is None:
        return torch.zeros(shape)
    return torch.zeros(shape, device=ref.device, dtype=ref.dtype)


def counted_aten_ops() -> tuple[object, ...]:
    """The ATen ops whose FLOPs ``count_macs`` sums: convolution, mm and addmm (conv and linear)."""
    aten = torch.ops.aten
    return (aten.convolution, aten._convolution, aten.mm, aten.addmm)


def count_macs(model: nn.Module, input_shape: Sequence[int]) -> int:
    """Multiply-accumulates of convolutions and linear layers for one input of ``input_shape``.

    ``input_shape`` includes the batch dimension, which must be 1 (e.g. ``(1, 3, 32, 32)``). Counted with
    ``FlopCounterMode`` (FLOPs of ``aten.convolution``/``mm``/``addmm`` divided by 2), in eval mode under
    inference mode; the model's train/eval flags are restored. Bias additions are not counted.
    """
    shape = _check_shape(input_shape)
    x = _dummy_input(model, shape)
    counter = FlopCounterMode(display=False)
    with _eval_inference(model), counter:
        model(x)
    wanted = {str(op) for op in counted_aten_ops()}
    counts = counter.get_flop_counts().get("Global", {})  # absent when nothing countable ran (identity, pooling)
    flops = sum(n for op, n in counts.items() if str(op) in wanted)
    if flops % 2:
        raise RuntimeError(f"FlopCounterMode returned an odd FLOP count {flops}; expected 2 per MAC")
    return int(flops) // 2


def count_macs_hooks(model: nn.Module, input_shape: Sequence[int]) -> int:
    """The quantity of :func:`count_macs`, from forward hooks on ``nn.Conv2d`` and ``nn.Linear``.

    Conv2d: ``numel(output) * (in_channels / groups) * kh * kw``; Linear: ``numel(output) * in_features``.
    Used to cross-check ``count_macs`` in the tests.
    """
    shape = _check_shape(input_shape)
    x = _dummy_input(model, shape)
    total = 0

    def make_hook(macs_per_output: int) -> Callable[[nn.Module, object, torch.Tensor], None]:
        def hook(_m: nn.Module, _inp: object, out: torch.Tensor) -> None:
            nonlocal total
            total += out.numel() * macs_per_output

        return hook

    handles = []
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            kh, kw = m.kernel_size
            handles.append(m.register_forward_hook(make_hook((m.in_channels // m.groups) * kh * kw)))
        elif isinstance(m, nn.Linear):
            handles.append(m.register_forward_hook(make_hook(m.in_features)))
    try:
        with _eval_inference(model):
            model(x)
    finally:
        for h in handles:
            h.remove()
    return total
