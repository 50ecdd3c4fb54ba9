"""Study files: one TOML file names a space, searchers, an evaluator and a budget.

    [study]        name, seed, repeats, objective, mode, batch_size, description, device, analyses
    [space]        name + params (a registered space) or an embedded declaration (blocks = ...)
    [data]         optional: what the ``train`` evaluator and one-shot searchers train on
    [evaluator]    name + params; its metrics are what searchers see (``metric_<name>``)
    [[extra_evaluators]]  label + name + params; logged as ``metric_<label>_<name>``, never shown
                   to searchers
    [[searchers]]  name + params + optional label (unique; fills the ``searcher`` column) + optional
                   repeats (default: the study's; a slow searcher may run fewer) + optional
                   evaluations (default: [budget] evaluations; e.g. a one-shot searcher whose only
                   job in a study is to train a supernet may be evaluated once)
    [budget]       evaluations (per searcher per repeat), simulated_seconds, wall_seconds
    [analysis.NAME] optional parameters of a report analysis named in ``[study] analyses``
                   (e.g. ``[analysis.density] spaces = ["nb201", "darts"]``); the analysis reads them
    [profiles.NAME] overrides merged onto the file by ``--profile NAME`` (``smoke`` in tests)

``${VAR}`` anywhere in a string is filled from ``--var VAR=VALUE`` or the environment; a missing
one is an error naming it. Every problem is reported with the file, the key and the fix, before
any work starts.
"""

from __future__ import annotations

import copy
import json
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = ["Component", "Study", "load_study", "parse_study", "read_toml_text", "StudyError"]

_SECTIONS = {"study", "space", "data", "evaluator", "extra_evaluators", "searchers", "budget", "profiles", "analysis"}
_STUDY_KEYS = {"name": str, "seed": int, "repeats": int, "objective": str, "mode": str, "batch_size": int,
               "description": str, "device": str, "analyses": list}
_BUDGET_KEYS = {"evaluations": int, "simulated_seconds": (int, float), "wall_seconds": (int, float)}
_COMPONENT_KEYS = {"name", "params", "label"}
_SEARCHER_KEYS = _COMPONENT_KEYS | {"repeats", "evaluations"}
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class StudyError(ValueError):
    """A study file problem, naming the file, the key and the fix."""


@dataclass(frozen=True)
class Component:
    """A registry name with keyword parameters (and a label for searchers/extra evaluators)."""

    name: str
    params: dict[str, Any] = field(default_factory=dict)
    label: str = ""
    #: searchers only: repeats of this searcher (default: the study's); slow searchers may run fewer
    repeats: int | None = None
    #: searchers only: evaluations per repeat of this searcher (default: the study's [budget] evaluations)
    evaluations: int | None = None


@dataclass(frozen=True)
class Study:
    """A parsed, validated study file (after the profile and the variables are applied)."""

    name: str
    seed: int
    repeats: int
    objective: str
    mode: str
    batch_size: int
    description: str
    device: str
    space: dict[str, Any]
    data: Component | None
    evaluator: Component
    extra_evaluators: tuple[Component, ...]
    searchers: tuple[Component, ...]
    budget: dict[str, Any]
    source: str
    resolved: dict[str, Any]

    def to_json(self) -> str:
        """The resolved study (profile merged, variables filled) as JSON."""
        return json.dumps(self.resolved, indent=2, sort_keys=True, default=str)


def _merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def _fill(obj: Any, variables: Mapping[str, str], where: str, key: str) -> Any:
    if isinstance(obj, str):
        def sub(m: re.Match[str]) -> str:
            name = m.group(1)
            if name in variables:
                return variables[name]
            if name in os.environ:
                return os.environ[name]
            raise StudyError(f"{where}: {key} uses ${{{name}}} but it is not set; pass --var {name}=VALUE or set "
                             f"the environment variable {name}")
        return _VAR.sub(sub, obj)
    if isinstance(obj, list):
        return [_fill(v, variables, where, f"{key}[{i}]") for i, v in enumerate(obj)]
    if isinstance(obj, dict):
        return {k: _fill(v, variables, where, f"{key}.{k}" if key else k) for k, v in obj.items()}
    return obj


def _check_keys(table: Mapping[str, Any], allowed: Any, where: str, section: str) -> None:
    unknown = set(table) - set(allowed)
    if unknown:
        raise StudyError(f"{where}: [{section}] has unknown key(s) {sorted(unknown)}; allowed: {sorted(allowed)}")


def _check_types(table: Mapping[str, Any], types: Mapping[str, Any], where: str, section: str) -> None:
    for k, t in types.items():
        if k in table:
            v = table[k]
            if isinstance(v, bool) or not isinstance(v, t):
                want = t.__name__ if isinstance(t, type) else " or ".join(x.__name__ for x in t)
                raise StudyError(f"{where}: [{section}] {k} = {v!r} has the wrong type; expected {want}")


def _component(obj: Any, where: str, section: str, registry: Any, keys: set[str] = _COMPONENT_KEYS) -> Component:
    if not isinstance(obj, Mapping):
        raise StudyError(f"{where}: [{section}] must be a table with name and params")
    _check_keys(obj, keys, where, section)
    for key in ("repeats", "evaluations"):
        if key in obj and (isinstance(obj[key], bool) or not isinstance(obj[key], int) or obj[key] < 1):
            raise StudyError(f"{where}: [{section}] {key} = {obj[key]!r} must be an integer >= 1")
    if "name" not in obj or not isinstance(obj["name"], str):
        raise StudyError(f"{where}: [{section}] needs name = \"...\"; registered: {', '.join(registry.names())}")
    if obj["name"] not in registry:
        raise StudyError(f"{where}: [{section}] name = {obj['name']!r} is not registered; registered "
                         f"{registry.kind}s: {', '.join(registry.names())}")
    params = obj.get("params", {})
    if not isinstance(params, Mapping):
        raise StudyError(f"{where}: [{section}] params must be a table")
    return Component(obj["name"], dict(params), str(obj.get("label", obj["name"])), obj.get("repeats"),
                     obj.get("evaluations"))


def space_declaration(space: Mapping[str, Any]) -> dict[str, Any]:
    """The declaration :func:`~nasatlas.spaces.declaration.space_from_dict` reads from a study's
    ``[space]`` table: the table itself when it embeds ``blocks``, else its registered name and params."""
    if "blocks" in space:
        return dict(space)
    return {"space": space.get("name"), "params": space.get("params", {})}


def study_space(study: Mapping[str, Any]) -> Any:
    """The space of a resolved study table (``study.resolved.json``), as report sections need it."""
    from nasatlas.spaces.declaration import space_from_dict
    return space_from_dict(space_declaration(study.get("space", {})))


def parse_study(raw: Mapping[str, Any], *, where: str = "<study>", profile: str | None = None,
                variables: Mapping[str, str] | None = None) -> Study:
    """Validate a study table (as read from TOML) and return a :class:`Study`."""
    from nasatlas.evaluators.registry import DATASETS, EVALUATORS
    from nasatlas.searchers.registry import SEARCHERS
    from nasatlas.spaces.declaration import space_from_dict

    if not isinstance(raw, Mapping):
        raise StudyError(f"{where}: expected a TOML table")
    _check_keys(raw, _SECTIONS, where, "top level")
    doc = dict(raw)
    profiles = doc.pop("profiles", {})
    if profile is not None:
        if profile not in profiles:
            raise StudyError(f"{where}: profile {profile!r} is not defined; defined: {sorted(profiles) or 'none'} "
                             "([profiles.NAME] tables)")
        over = profiles[profile]
        _check_keys(over, _SECTIONS - {"profiles"}, where, f"profiles.{profile}")
        doc = _merge(doc, over)
    doc = _fill(doc, dict(variables or {}), where, "")

    study = doc.get("study", {})
    _check_keys(study, _STUDY_KEYS, where, "study")
    _check_types(study, _STUDY_KEYS, where, "study")
    if "name" not in study:
        raise StudyError(f"{where}: [study] needs name = \"...\"")
    if study.get("repeats", 1) < 1:
        raise StudyError(f"{where}: [study] repeats must be >= 1")
    if study.get("batch_size", 1) < 1:
        raise StudyError(f"{where}: [study] batch_size must be >= 1")
    if study.get("mode", "max") not in ("max", "min"):
        raise StudyError(f"{where}: [study] mode must be 'max' or 'min'")
    from .analyses import ANALYSES
    for a in study.get("analyses", []):
        if a not in ANALYSES:
            raise StudyError(f"{where}: [study] analyses: {a!r} is not registered; registered analyses: "
                             f"{', '.join(ANALYSES.names())}")
    analysis = doc.get("analysis", {})
    if not isinstance(analysis, Mapping):
        raise StudyError(f"{where}: [analysis] must hold tables [analysis.NAME] of an analysis's parameters")
    for a, params in analysis.items():
        if a not in study.get("analyses", []):
            raise StudyError(f"{where}: [analysis.{a}] configures an analysis the study does not run; add {a!r} to "
                             f"[study] analyses (now {list(study.get('analyses', []))})")
        if not isinstance(params, Mapping):
            raise StudyError(f"{where}: [analysis.{a}] must be a table of parameters, got {type(params).__name__}")

    space = doc.get("space")
    if not isinstance(space, Mapping):
        raise StudyError(f"{where}: [space] is required: name = \"nb201\" (+ params) or an embedded declaration")
    space = dict(space)
    if "blocks" not in space:
        _check_keys(space, {"name", "params"}, where, "space")
        if "name" not in space:
            raise StudyError(f"{where}: [space] needs name = \"...\" or blocks = [...]")
    try:
        decl = {"space": space["name"], "params": space.get("params", {})} if "blocks" not in space else space
        space_from_dict(decl, where=f"{where} [space]")
    except ValueError as e:
        raise StudyError(f"{where}: [space]: {e}") from None

    data = _component(doc["data"], where, "data", DATASETS) if "data" in doc else None
    evaluator = _component(doc.get("evaluator"), where, "evaluator", EVALUATORS)
    extras = doc.get("extra_evaluators", [])
    if not isinstance(extras, list):
        raise StudyError(f"{where}: extra_evaluators must be a list of tables ([[extra_evaluators]])")
    extra = tuple(_component(e, where, f"extra_evaluators[{i}]", EVALUATORS) for i, e in enumerate(extras))
    for i, raw_e in enumerate(extras):
        if "label" not in raw_e:
            raise StudyError(f"{where}: [[extra_evaluators]] #{i} needs a label (its metrics are logged as "
                             "metric_<label>_<name>)")
    searchers = doc.get("searchers")
    if not isinstance(searchers, list) or not searchers:
        raise StudyError(f"{where}: at least one [[searchers]] table is required")
    comps = tuple(_component(s, where, f"searchers[{i}]", SEARCHERS, _SEARCHER_KEYS) for i, s in enumerate(searchers))
    labels = [c.label for c in comps]
    if len(set(labels)) != len(labels):
        raise StudyError(f"{where}: searcher labels {labels} must be unique; give each [[searchers]] a label")

    budget = doc.get("budget", {})
    _check_keys(budget, _BUDGET_KEYS, where, "budget")
    _check_types(budget, _BUDGET_KEYS, where, "budget")
    if not budget:
        raise StudyError(f"{where}: [budget] needs evaluations, simulated_seconds or wall_seconds")
    if budget.get("evaluations", 1) < 1:
        raise StudyError(f"{where}: [budget] evaluations must be >= 1")

    resolved = {k: v for k, v in doc.items()}
    return Study(
        name=study["name"], seed=int(study.get("seed", 0)), repeats=int(study.get("repeats", 1)),
        objective=str(study.get("objective", "")), mode=str(study.get("mode", "max")),
        batch_size=int(study.get("batch_size", 1)), description=str(study.get("description", "")),
        device=str(study.get("device", "cpu")), space=space, data=data, evaluator=evaluator,
        extra_evaluators=extra, searchers=comps, budget=dict(budget), source=where, resolved=resolved,
    )


def load_study(path: str | Path, *, profile: str | None = None, variables: Mapping[str, str] | None = None) -> Study:
    """Read and validate a study file."""
    p = Path(path)
    if not p.is_file():
        raise StudyError(f"study file {str(p)!r} does not exist")
    return parse_study(read_toml_text(p.read_text(), str(p)), where=str(p), profile=profile, variables=variables)


def read_toml_text(text: str, where: str) -> dict[str, Any]:
    """Parse TOML text, with errors naming the file."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise StudyError(f"{where}: invalid TOML: {e}") from None
