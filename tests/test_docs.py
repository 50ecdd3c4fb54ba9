"""Every Python code example in the README and docs/ runs."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
BLOCK = re.compile(r"```python\n(.*?)```", re.S)


def _examples() -> list[tuple[str, int, str]]:
    out = []
    for path in DOCS:
        for i, m in enumerate(BLOCK.finditer(path.read_text())):
            out.append((path.name, i, m.group(1)))
    return out


@pytest.mark.parametrize("doc,index,code", _examples(), ids=[f"{d}#{i}" for d, i, _ in _examples()])
def test_doc_example_runs(doc: str, index: int, code: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    if "${NB201_TABLE}" in code or "NB201_TABLE" in code:
        table = REPO.parent / "shared" / "data" / "nb201_cifar10valid_avg3seeds.parquet"
        if not table.exists():
            pytest.skip("needs ../shared/data")
        monkeypatch.setenv("NB201_TABLE", str(table))
    exec(compile(code, f"{doc}#{index}", "exec"), {"__name__": "__doc_example__", "os": os})
