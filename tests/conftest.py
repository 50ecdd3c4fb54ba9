"""Shared fixtures: where ../shared lives, and a skip for tests that need its data."""

from __future__ import annotations

import os
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
