"""Shared fixtures: where ../shared lives, and a skip for tests that need its data."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("NASATLAS_SHARED", REPO.parent / "shared"))
NB201_TABLE = SHARED / "data" / "nb201_cifar10valid_avg3seeds.parquet"
NB201_COST = SHARED / "data" / "nb201_cost_cifar10_subset.parquet"
GENOTYPES = SHARED / "reference" / "genotypes.json"


def need(path: Path) -> Path:
    """Skip the calling test, with the reason, when a ../shared file is absent (a user's clone)."""
    if not path.exists():
        pytest.skip(f"{path} is not present (it ships in ../shared beside the repository, not with nasatlas)")
    return path


@pytest.fixture(scope="module")
def one_torch_thread() -> Iterator[None]:
    """One intra-op torch thread for a module's tests, restored after: the runner's workers use one
    thread (DESIGN §7), and on 2 shared cores two-thread OpenMP runs of small networks stall. Modules
    opt in with ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``."""
    import torch
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
