"""Builder conformance: every space's architectures become real networks that run forward and backward,
costed one way (``spaces cost``), with clear errors for bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from nasatlas.spaces import get_space, list_spaces
from nasatlas.spaces.build import build, cost_report, input_shape
from nasatlas.spaces.cost import count_params

from .conftest import GENOTYPES, NB201_COST, need

SPACES = list_spaces()


def _samples(name: str, n: int, seed: int) -> list[str]:
    space = get_space(name)
    return [space.to_str(a) for a in space.sample(np.random.default_rng(seed), n)]


@pytest.mark.parametrize("name", SPACES)
def test_tiny_networks_train_one_step(name: str) -> None:
    """Two seeded samples per space: forward, a real loss, backward, finite gradients on every parameter
    that the forward pass used, and an SGD step that changes the loss."""
    space = get_space(name)
    c, h, w = input_shape(space, "tiny")
    gen = torch.Generator().manual_seed(0)
    for arch in _samples(name, 2, seed=1):
        torch.manual_seed(0)
        model = build(space, arch, "tiny")
        model.train()
        x = torch.randn(2, c, h, w, generator=gen)
        out = model(x)
        logits = out[0] if isinstance(out, tuple) else out
        if logits.dim() == 4:  # segmentation: per-pixel classes at the input resolution
            assert logits.shape[-2:] == (h, w), (name, arch)
            y = torch.randint(0, logits.shape[1], (2, h, w), generator=gen)
        else:
            assert logits.shape == (2, 10), (name, arch)
            y = torch.randint(0, 10, (2,), generator=gen)
        loss = torch.nn.functional.cross_entropy(logits, y)
        assert torch.isfinite(loss), (name, arch)
        loss.backward()
        grads = [p.grad for p in model.parameters() if p.grad is not None]
        assert grads and all(torch.isfinite(g).all() for g in grads), (name, arch)
        assert count_params(model) > 0


def test_cost_cli_matches_nb201_recorded_params() -> None:
    """Through the console entry point, the default preset (C=16, N=5, 3x32x32) gives the parameter
    counts NAS-Bench-201 recorded (in millions, to the table's precision) for the largest and the
    smallest cell of the shipped cost table."""
    import pandas as pd
    table = pd.read_parquet(need(NB201_COST)).sort_values("params_millions")
    for _, row in table.iloc[[0, -1]].iterrows():
        p = subprocess.run([sys.executable, "-m", "nasatlas.studies.cli", "spaces", "cost", "nb201", "--arch",
                            row["arch"], "--json"], capture_output=True, text=True, timeout=120)
        assert p.returncode == 0, p.stderr
        d = json.loads(p.stdout)
        assert d["input"] == [3, 32, 32] and d["params_with_aux"] is None and d["macs"] > 0
        assert d["params"] / 1e6 == pytest.approx(row["params_millions"], abs=5e-7)


def test_darts_v2_cost_report_with_and_without_aux() -> None:
    """DARTS_V2 in the CIFAR network (C=36, 20 cells), from the published genotype data."""
    ref = json.loads(need(GENOTYPES).read_text())["DARTS_V2"]
    space = get_space("darts")
    g = (f"Genotype(normal={[tuple(x) for x in ref['normal']]}, normal_concat={ref['normal_concat']}, "
         f"reduce={[tuple(x) for x in ref['reduce']]}, reduce_concat={ref['reduce_concat']})")
    rep = cost_report(space, g)
    assert (rep["params"], rep["params_with_aux"], rep["macs"]) == (3_349_342, 3_825_768, 528_359_040)


def test_cost_report_names_its_definition_and_overrides() -> None:
    space = get_space("nb201")
    arch = _samples("nb201", 1, seed=0)[0]
    small = cost_report(space, arch, {"preset": "cifar", "C": 8, "N": 1})
    big = cost_report(space, arch)
    assert small["net"]["C"] == 8 and small["params"] < big["params"]
    assert "multiply-accumulates" in big["definition"]


@pytest.mark.parametrize(
    "space,arch,net,match",
    [
        ("darts", "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|skip_connect~1|skip_connect~2|",
         None, "Genotype"),
        ("nb201", "|conv_9x9~0|+|none~0|none~1|+|none~0|none~1|none~2|", None, "conv_9x9"),
        ("nb201", None, "imagenet", "unknown net preset 'imagenet'"),
        ("nb201", None, {"preset": "tiny", "channels": 8}, r"net\.channels is not a setting"),
        ("nb201", None, {"preset": "tiny", "C": 0}, r"net\.C=0 must be an integer >= 1"),
        ("darts", None, {"preset": "tiny", "C": 2.5}, r"net\.C=2\.5"),
        ("autodeeplab", None, {"preset": "tiny", "decoder_channels": 0}, r"net\.decoder_channels=0"),
        ("nb101", None, {"preset": "tiny", "input": (3, 16)}, r"net\.input"),
        ("darts", None, {"preset": "huge"}, r"net\.preset='huge'"),
        ("darts", None, {"preset": "cifar", "input": (3, 16, 16)}, r"net\.auxiliary=True needs an input"),
    ],
)
def test_bad_input_names_the_field(space: str, arch: str | None, net: object, match: str) -> None:
    s = get_space(space)
    a = arch if arch is not None else _samples(space, 1, seed=0)[0]
    with pytest.raises(ValueError, match=match):
        build(s, a, net)  # type: ignore[arg-type]
