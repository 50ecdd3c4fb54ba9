"""Record types shared by every layer: the result of one evaluation and one row of the log.

This module uses the standard library only, so evaluators and searchers can import
:class:`EvalResult` without paying for pyarrow or pandas.

* :class:`EvalResult` is what an evaluator returns: a status, metrics, costs, an error and the
  budget actually used.  Metric and cost names carry no prefix (``{"valid_acc": 91.2}``).
* :class:`EvalRecord` is one row of the result log: the fixed columns of the row schema (see
  :mod:`nasatlas.results.schema`) plus the metrics and costs of the result.
* :func:`make_record` joins an :class:`EvalResult` with its context (study, trial, arch, seed, ...).
"""

from __future__ import annotations

import json
import math
import re
import socket
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from importlib import metadata
from typing import Any, Literal

SCHEMA_VERSION = 1
"""Version of the row schema; bumped whenever a fixed column changes meaning or type."""

STATUSES = ("ok", "failed")
STANDARD_COSTS = ("params", "macs", "train_seconds", "search_seconds", "simulated_seconds")
"""Costs that always have a ``cost_*`` column (NaN when unknown)."""

METRIC_PREFIX = "metric_"
COST_PREFIX = "cost_"
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1

_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICROSECOND = timedelta(microseconds=1)

Status = Literal["ok", "failed"]


def _check_name(kind: str, name: object) -> str:
    """Validate a metric or cost name (no prefix, identifier-like)."""
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise ValueError(
            f"{kind} name {name!r} is not valid; use letters, digits and '_' "
            f"(e.g. 'valid_acc'), starting with a letter or '_'"
        )
    prefix = METRIC_PREFIX if kind == "metric" else COST_PREFIX
    if name.startswith(prefix):
        raise ValueError(
            f"{kind} name {name!r} carries the column prefix; pass {name[len(prefix):]!r} "
            f"(the log adds '{prefix}' itself)"
        )
    return name


def _as_float(kind: str, name: str, value: object) -> float:
    """Convert a metric/cost value to ``float`` with an error naming the field."""
    if isinstance(value, bool) or not hasattr(value, "__float__"):
        raise TypeError(f"{kind} {name!r} must be a real number, got {type(value).__name__} {value!r}")
    return float(value)  # type: ignore[arg-type]


_CANONICAL_JSON = json.JSONEncoder(sort_keys=True, separators=(",", ":"), allow_nan=False)


def _json_dumps(kind: str, value: Mapping[str, Any]) -> str:
    """Canonical JSON for budgets and params (sorted keys, compact, finite numbers only)."""
    if not isinstance(value, Mapping):
        raise TypeError(f"{kind} must be a mapping (dict), got {type(value).__name__}")
    try:
        return _CANONICAL_JSON.encode(value if isinstance(value, dict) else dict(value))
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"{kind} must be JSON-serialisable with finite numbers ({exc}); convert numpy values "
            f"with .item() and paths with str()"
        ) from exc


def _json_object(kind: str, value: Mapping[str, Any] | str) -> str:
    """Return ``value`` as a canonical JSON object string (accepts a mapping or a JSON string)."""
    if isinstance(value, str):
        return _json_dumps(kind, _parse_object(kind, value))
    return _json_dumps(kind, value)


def _parse_object(kind: str, value: object) -> dict[str, Any]:
    """Parse a JSON object string, with an error naming the field."""
    if not isinstance(value, str):
        raise TypeError(f"{kind} must be a JSON object string, got {type(value).__name__}")
    try:
        parsed = json.loads(value)
    except ValueError as exc:
        raise ValueError(f"{kind} string is not valid JSON ({exc}); pass a dict instead") from exc
    if not isinstance(parsed, dict):
        raise ValueError(f"{kind} must be a JSON object, got {value!r}; pass a dict instead")
    return parsed


def to_micros(value: datetime, name: str = "timestamp") -> int:
    """Exact microseconds since the Unix epoch of a timezone-aware datetime."""
    if not isinstance(value, datetime):
        raise TypeError(f"{name} must be a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(
            f"{name} {value!r} is naive; pass a timezone-aware datetime such as "
            f"datetime.now(timezone.utc)"
        )
    return (value - _EPOCH) // _MICROSECOND


def from_micros(micros: int) -> datetime:
    """Inverse of :func:`to_micros`: a UTC datetime."""
    return _EPOCH + timedelta(microseconds=int(micros))


def utc_now() -> datetime:
    """The current time as a timezone-aware UTC datetime (microsecond resolution)."""
    return datetime.now(timezone.utc)


def _check_outcome(
    status: object, metrics: object, costs: object, error: object
) -> tuple[dict[str, float], dict[str, float]]:
    """Validate status, metrics, costs and error; return the metrics and costs as float dicts."""
    if status not in STATUSES:
        raise ValueError(f"status must be 'ok' or 'failed', got {status!r}")
    if not isinstance(metrics, Mapping):
        raise TypeError(f"metrics must be a dict of name -> float, got {type(metrics).__name__}")
    if not isinstance(costs, Mapping):
        raise TypeError(f"costs must be a dict of name -> float, got {type(costs).__name__}")
    metric_values = {_check_name("metric", k): _as_float("metric", k, v) for k, v in metrics.items()}
    cost_values = {_check_name("cost", k): _as_float("cost", k, v) for k, v in costs.items()}
    if status == "ok":
        for name, value in metric_values.items():
            if not math.isfinite(value):
                raise ValueError(
                    f"metric {name!r} is {value} in an 'ok' result; report a finite value, or "
                    f"return EvalResult.failed(...) when the evaluation diverged"
                )
        if error is not None:
            raise ValueError(
                f"error must be None for an 'ok' result, got {error!r}; "
                f"use EvalResult.failed(error) for failures"
            )
    elif not isinstance(error, str) or not error:
        raise ValueError("a 'failed' result needs a non-empty error string saying what went wrong")
    for name, value in cost_values.items():
        if math.isinf(value) or value < 0:
            raise ValueError(f"cost {name!r} is {value}; costs are non-negative, use NaN when unknown")
    return metric_values, cost_values


@dataclass(frozen=True)
class EvalResult:
    """What an evaluator returns for one architecture.

    Attributes:
        status: ``"ok"`` or ``"failed"``.
        metrics: metric name (no ``metric_`` prefix) → value, e.g. ``{"valid_acc": 91.2}``.
            Every metric of an ``"ok"`` result must be finite.
        costs: cost name (no ``cost_`` prefix) → non-negative value or NaN (unknown); the standard
            names are ``params``, ``macs``, ``train_seconds``, ``search_seconds``,
            ``simulated_seconds``.
        error: why the evaluation failed (``None`` for ``"ok"``, required for ``"failed"``).
        budget: the budget actually used (JSON-serialisable), e.g. ``{"epochs": 12}``.
    """

    status: Status
    metrics: dict[str, float] = field(default_factory=dict)
    costs: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    budget: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        metrics, costs = _check_outcome(self.status, self.metrics, self.costs, self.error)
        _json_dumps("budget", self.budget)
        object.__setattr__(self, "metrics", metrics)
        object.__setattr__(self, "costs", costs)
        object.__setattr__(self, "budget", dict(self.budget))

    @property
    def ok(self) -> bool:
        """True when the evaluation succeeded."""
        return self.status == "ok"

    @classmethod
    def failed(
        cls,
        error: str | BaseException,
        *,
        budget: Mapping[str, Any] | None = None,
        costs: Mapping[str, float] | None = None,
    ) -> EvalResult:
        """A failed result; ``error`` may be a message or the exception that was raised."""
        if isinstance(error, BaseException):
            message = f"{type(error).__name__}: {error}"
        else:
            message = error
        return cls(status="failed", error=message, budget=dict(budget or {}), costs=dict(costs or {}))

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> EvalResult:
        """Rebuild the result from one log row (e.g. ``df.iloc[i].to_dict()``); NaN values are dropped."""
        metrics: dict[str, float] = {}
        costs: dict[str, float] = {}
        for key, value in row.items():
            if not isinstance(key, str) or value is None:
                continue
            if key.startswith(METRIC_PREFIX):
                target = metrics
            elif key.startswith(COST_PREFIX):
                target = costs
            else:
                continue
            number = float(value)
            if not math.isnan(number):
                target[key.split("_", 1)[1]] = number
        error = row.get("error")
        if not isinstance(error, str):  # None or NaN from pandas
            error = None
        budget = json.loads(row["budget"]) if row.get("budget") else {}
        return cls(status=row["status"], metrics=metrics, costs=costs, error=error, budget=budget)


def _check_str(name: str, value: object, *, allow_empty: bool = False) -> None:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, got {type(value).__name__} {value!r}")
    if not allow_empty and not value:
        raise ValueError(f"{name} must be a non-empty string")


def _check_int(name: str, value: object, low: int, high: int) -> int:
    if isinstance(value, bool) or not hasattr(value, "__index__"):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    number = int(value)  # type: ignore[call-overload]
    if not low <= number <= high:
        raise ValueError(f"{name} must lie in [{low}, {high}] (int64), got {number}")
    return number


@dataclass(frozen=True)
class EvalRecord:
    """One row of the result log: fixed columns plus ``metrics`` and ``costs`` (without prefixes).

    Build it with :func:`make_record`.  ``budget`` and ``params`` are JSON object strings (canonical:
    sorted keys, compact, when made by :func:`make_record`),
    timestamps are timezone-aware UTC datetimes (microsecond resolution), ``seed`` is an int64.
    ``row_id`` is unique per evaluation; readers drop rows whose ``row_id`` was already seen, so
    appending the same record twice stores it once.
    """

    row_id: str
    study: str
    run_id: str
    trial: int
    repeat: int
    searcher: str
    space: str
    arch: str
    canonical_id: str
    evaluator: str
    budget: str
    seed: int
    params: str
    status: Status
    error: str | None
    started_at: datetime
    finished_at: datetime
    host: str
    device: str
    nasatlas_version: str
    metrics: dict[str, float] = field(default_factory=dict)
    costs: dict[str, float] = field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        for name in ("row_id", "study", "searcher", "space", "arch", "canonical_id", "evaluator", "device"):
            _check_str(name, getattr(self, name))
        for name in ("run_id", "host", "nasatlas_version"):
            _check_str(name, getattr(self, name), allow_empty=True)
        object.__setattr__(self, "trial", _check_int("trial", self.trial, 0, INT64_MAX))
        object.__setattr__(self, "repeat", _check_int("repeat", self.repeat, 0, INT64_MAX))
        object.__setattr__(self, "seed", _check_int("seed", self.seed, INT64_MIN, INT64_MAX))
        if self.schema_version != SCHEMA_VERSION:
            raise ValueError(
                f"schema_version {self.schema_version} is not supported (this nasatlas writes "
                f"{SCHEMA_VERSION}); upgrade nasatlas or leave schema_version at its default"
            )
        _parse_object("budget", self.budget)
        _parse_object("params", self.params)
        metrics, costs = _check_outcome(self.status, self.metrics, self.costs, self.error)
        object.__setattr__(self, "metrics", metrics)
        object.__setattr__(self, "costs", costs)
        start = to_micros(self.started_at, "started_at")
        finish = to_micros(self.finished_at, "finished_at")
        if finish < start:
            raise ValueError(
                f"finished_at ({self.finished_at}) is before started_at ({self.started_at}); "
                f"record the end time after the evaluation"
            )
        object.__setattr__(self, "started_at", from_micros(start))
        object.__setattr__(self, "finished_at", from_micros(finish))

    def to_row(self) -> dict[str, Any]:
        """The flat row: fixed columns, the five standard ``cost_*`` (NaN when unknown), then
        ``metric_*`` and any extra ``cost_*`` columns.  Timestamps stay datetimes."""
        row: dict[str, Any] = {
            "schema_version": self.schema_version,
            "row_id": self.row_id,
            "study": self.study,
            "run_id": self.run_id,
            "trial": self.trial,
            "repeat": self.repeat,
            "searcher": self.searcher,
            "space": self.space,
            "arch": self.arch,
            "canonical_id": self.canonical_id,
            "evaluator": self.evaluator,
            "budget": self.budget,
            "seed": self.seed,
            "params": self.params,
            "status": self.status,
            "error": self.error,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "host": self.host,
            "device": self.device,
            "nasatlas_version": self.nasatlas_version,
        }
        for name in STANDARD_COSTS:
            row[COST_PREFIX + name] = self.costs.get(name, math.nan)
        for name, value in self.metrics.items():
            row[METRIC_PREFIX + name] = value
        for name, value in self.costs.items():
            if name not in STANDARD_COSTS:
                row[COST_PREFIX + name] = value
        return row

    def to_result(self) -> EvalResult:
        """The :class:`EvalResult` this record was made from."""
        return EvalResult(
            status=self.status,
            metrics=dict(self.metrics),
            costs=dict(self.costs),
            error=self.error,
            budget=json.loads(self.budget),
        )


def package_version() -> str:
    """The installed nasatlas version, or ``"unknown"`` (costs ~0.5 ms: call it once per run)."""
    try:
        return metadata.version("nasatlas")
    except metadata.PackageNotFoundError:
        return "unknown"


def make_record(
    result: EvalResult,
    *,
    study: str,
    run_id: str,
    trial: int,
    searcher: str,
    space: str,
    arch: str,
    canonical_id: str,
    evaluator: str,
    seed: int,
    started_at: datetime,
    finished_at: datetime,
    repeat: int = 0,
    params: Mapping[str, Any] | str | None = None,
    budget: Mapping[str, Any] | None = None,
    host: str | None = None,
    device: str = "cpu",
    nasatlas_version: str | None = None,
    row_id: str | None = None,
) -> EvalRecord:
    """Join an :class:`EvalResult` with the context of its evaluation into an :class:`EvalRecord`.

    Args:
        result: what the evaluator returned.
        study, run_id: names of the study and of this run of it.
        trial, repeat: trial index within the searcher's run and repeat index (both >= 0).
        searcher, space, evaluator: registry names of the components.
        arch: canonical architecture string (``Arch.to_str()``); canonical_id: its
            isomorphism-aware id.
        seed: the evaluation's seed (int64; ``SeedSequence`` entropy up to ``2**63 - 1`` fits).
        started_at, finished_at: timezone-aware datetimes; stored as UTC with microseconds.
        params: resolved component parameters (dict or JSON object string); stored as JSON.
        budget: budget actually used; defaults to ``result.budget``.
        host: defaults to ``socket.gethostname()``; device: e.g. ``"cpu"``, ``"cuda:0"``.
        nasatlas_version: defaults to :func:`package_version` (pass it once per run in hot loops).
        row_id: unique id of the row; a fresh ``uuid4().hex`` by default.
    """
    if not isinstance(result, EvalResult):
        raise TypeError(f"result must be an EvalResult, got {type(result).__name__}")
    return EvalRecord(
        row_id=row_id if row_id is not None else uuid.uuid4().hex,
        study=study,
        run_id=run_id,
        trial=trial,
        repeat=repeat,
        searcher=searcher,
        space=space,
        arch=arch,
        canonical_id=canonical_id,
        evaluator=evaluator,
        budget=_json_dumps("budget", result.budget if budget is None else budget),
        seed=seed,
        params=_json_object("params", {} if params is None else params),
        status=result.status,
        error=result.error,
        started_at=started_at,
        finished_at=finished_at,
        host=socket.gethostname() if host is None else host,
        device=device,
        nasatlas_version=package_version() if nasatlas_version is None else nasatlas_version,
        metrics=dict(result.metrics),
        costs=dict(result.costs),
    )
