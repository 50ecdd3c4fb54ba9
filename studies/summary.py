"""Summaries of a run's log: per searcher counts and the best architecture per repeat."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["load_run", "results_table", "mean_ci"]


def load_run(run_dir: str | Path) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The log of a run directory and its resolved study."""
    from nasatlas.results import ResultLog
    run = Path(run_dir)
    ev = run / "evaluations"
    if not ev.is_dir():
        raise ValueError(f"{run} is not a run directory: it has no evaluations/ folder")
    resolved = run / "study.resolved.json"
    study = json.loads(resolved.read_text()) if resolved.is_file() else {}
    return ResultLog(ev).read(), study


def mean_ci(values: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """Mean and the half-width of its Student-t confidence interval (NaN half-width for n < 2)."""
    from scipy import stats
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if len(v) == 0:
        return math.nan, math.nan
    if len(v) < 2:
        return float(v.mean()), math.nan
    half = stats.t.ppf(0.5 + level / 2, len(v) - 1) * v.std(ddof=1) / math.sqrt(len(v))
    return float(v.mean()), float(half)


def results_table(run_dir: str | Path, best: bool = False) -> pd.DataFrame:
    """Per searcher: evaluations, failures and the objective (best per repeat, mean ± 95% CI);
    with ``best``, one row per searcher and repeat with its best architecture."""
    df, study = load_run(run_dir)
    st = study.get("study", {})
    objective = st.get("objective") or ""
    mode = st.get("mode", "max")
    col = f"metric_{objective}"
    if df.empty:
        return pd.DataFrame(columns=["searcher", "evaluations"])
    ok = df[df["status"] == "ok"]
    if best:
        if col not in df.columns:
            raise ValueError(f"the log has no column {col!r}; objective is {objective!r}")
        idx = ok.groupby(["searcher", "repeat"])[col].idxmax() if mode == "max" else \
            ok.groupby(["searcher", "repeat"])[col].idxmin()
        cols = ["searcher", "repeat", "trial", col, "arch"] + [c for c in ok.columns if c.startswith("metric_")
                                                                and c != col]
        return ok.loc[idx.values, cols].reset_index(drop=True)
    rows = []
    for name, g in df.groupby("searcher", sort=True):
        row: dict[str, Any] = {"searcher": name, "repeats": g["repeat"].nunique(), "evaluations": len(g),
                               "failed": int((g["status"] != "ok").sum())}
        if col in g.columns:
            go = g[g["status"] == "ok"]
            per_rep = go.groupby("repeat")[col].max() if mode == "max" else go.groupby("repeat")[col].min()
            m, h = mean_ci(per_rep.to_numpy())
            row[f"best_{objective}_mean"] = m
            row[f"best_{objective}_ci95"] = h
            m2, h2 = mean_ci(go[col].to_numpy())
            row[f"{objective}_mean"] = m2
            row[f"{objective}_ci95"] = h2
        rows.append(row)
    return pd.DataFrame(rows)
