"""Study files shipped with nasatlas, found through ``importlib.resources`` so that
``nasatlas study NAME`` works from any directory after a non-editable install."""

from __future__ import annotations

import sys
from importlib import resources

__all__ = ["list_studies", "study_text"]


def _files() -> dict[str, str]:
    root = resources.files("nasatlas.studies")
    return {p.name[:-5]: p.name for p in root.iterdir() if p.name.endswith(".toml")}


def list_studies() -> list[dict[str, str]]:
    """Name and description of every packaged study."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    out = []
    for name, fname in sorted(_files().items()):
        text = resources.files("nasatlas.studies").joinpath(fname).read_text()
        desc = tomllib.loads(text).get("study", {}).get("description", "")
        out.append({"name": name, "description": desc})
    return out


def study_text(name: str) -> tuple[str, str]:
    """``(label, text)`` of a packaged study; an unknown name lists the packaged ones."""
    files = _files()
    if name not in files:
        raise ValueError(f"unknown study {name!r}; packaged studies: {', '.join(sorted(files))}")
    return f"nasatlas.studies/{files[name]}", resources.files("nasatlas.studies").joinpath(files[name]).read_text()
