"""Analyses a study file can ask for (``[study] analyses = [...]``): each renders a report section
from the log, never training (DESIGN §1: analyses never train)."""

from __future__ import annotations

from typing import Any

from nasatlas.spaces.registry import Registry

__all__ = ["ANALYSES", "run_analyses", "section_params"]

#: name -> ``fn(df, study_dict, run_dir) -> markdown`` (lazy)
ANALYSES: Registry[Any] = Registry("analysis", {
    "calibration": "nasatlas.studies.calibration:calibration_section",
    "cardinality": "nasatlas.studies.cardinality:cardinality_section",
    "density": "nasatlas.studies.density:density_section",
    "searcher_comparison": "nasatlas.studies.searcher_comparison:comparison_section",
    "oneshot": "nasatlas.studies.oneshot_report:oneshot_section",
    "optimization_gap": "nasatlas.studies.optimization_gap:optimization_gap_section",
    "random_vs_darts": "nasatlas.studies.random_vs_darts:random_vs_darts_section",
    "landscape": "nasatlas.studies.landscape:landscape_section",
    "functional": "nasatlas.studies.functional:functional_section",
    "edf": "nasatlas.studies.edf:edf_section",
    "predictors": "nasatlas.studies.predictors:predictors_section",
    "coarse_to_fine": "nasatlas.studies.coarse_to_fine:coarse_to_fine_section",
})


def run_analyses(names: list[str], df: Any, study: dict[str, Any], run_dir: Any) -> list[str]:
    """Markdown sections of the named analyses, in order."""
    return [ANALYSES.factory(n)(df, study, run_dir) for n in names]


def section_params(study: dict[str, Any], name: str, allowed: dict[str, Any]) -> dict[str, Any]:
    """The ``[analysis.NAME]`` parameters of a resolved study, each key checked against ``allowed``
    (key -> type or tuple of types); a wrong key or type is a ValueError listing what is allowed."""
    params = dict(study.get("analysis", {}).get(name, {}))
    for k, v in params.items():
        if k not in allowed or not isinstance(v, allowed[k]):
            raise ValueError(f"[analysis.{name}] {k} = {v!r}: allowed keys and types: "
                             f"{ {n: t.__name__ for n, t in allowed.items()} }")
    return params
