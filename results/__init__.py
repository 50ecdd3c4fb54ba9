"""Record types shared by every layer and the result log of a run.

``from nasatlas.results import EvalResult`` imports only the standard library; the log
(:class:`ResultLog`, pyarrow, pandas) loads on first use of one of its names.

Public API:

* :class:`EvalResult`, :class:`EvalRecord`, :func:`make_record`, :func:`package_version`,
  :func:`utc_now`, :data:`SCHEMA_VERSION`, :data:`STANDARD_COSTS` (``nasatlas.results.record``);
* :data:`FIXED_SCHEMA`, :func:`log_schema` (``nasatlas.results.schema``);
* :class:`ResultLog`, :class:`CompactionReport`, :func:`done_keys` (``nasatlas.results.log``);
* :class:`ResultLogWarning` (``nasatlas.results.wal``).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .record import (
    SCHEMA_VERSION,
    STANDARD_COSTS,
    EvalRecord,
    EvalResult,
    make_record,
    package_version,
    utc_now,
)

if TYPE_CHECKING:
    from .log import CompactionReport, ResultLog, done_keys
    from .schema import FIXED_SCHEMA, log_schema
    from .wal import ResultLogWarning

_LAZY = {
    "ResultLog": "log",
    "CompactionReport": "log",
    "done_keys": "log",
    "FIXED_SCHEMA": "schema",
    "log_schema": "schema",
    "ResultLogWarning": "wal",
}

__all__ = [
    "SCHEMA_VERSION",
    "STANDARD_COSTS",
    "EvalRecord",
    "EvalResult",
    "make_record",
    "package_version",
    "utc_now",
    "ResultLog",
    "CompactionReport",
    "done_keys",
    "FIXED_SCHEMA",
    "log_schema",
    "ResultLogWarning",
]


def __getattr__(name: str) -> Any:
    """Load the pyarrow/pandas-backed names on first use (PEP 562)."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'nasatlas.results' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{module}", __name__), name)


def __dir__() -> list[str]:
    return sorted(__all__)
