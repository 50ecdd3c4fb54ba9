"""Calibration of a training protocol: is the signal (spread between architectures) larger than the
noise (seed-to-seed spread of one architecture)?

A cheap CPU protocol is only useful for comparing architectures if their accuracies differ by more
than retraining one architecture with another seed moves it. For a protocol ``p`` and metric ``m``:

    spread_p  = standard deviation of m over the distinct random architectures (ddof=1)
    noise_p   = pooled seed standard deviation: sqrt(mean over repeated archs of var_seed(m)) (ddof=1)
    ratio_p   = spread_p / noise_p

``studies/calibrate.toml`` evaluates every architecture under several candidate protocols (the
primary evaluator and extra evaluators on the same rows) and the default CPU protocol is the
cheapest one with ``ratio >= 3`` (the requirement of the run-backbone issue). This is the
signal-to-noise view that Yang et al. 2020 ("NAS evaluation is frustratingly hard", ICLR) argue
every NAS comparison needs; NAS-Bench-201 reports seed spread per cell the same way (Dong & Yang
2020, Sec. 4).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["ProtocolCalibration", "calibrate_protocols", "calibration_section", "calibrated_protocol",
           "REQUIRED_RATIO"]

REQUIRED_RATIO = 3.0


@dataclass(frozen=True)
class ProtocolCalibration:
    """One protocol's figures."""

    protocol: str              # "primary" or the extra evaluator's label
    description: str           # the evaluator's parameters
    metric: str
    n_cells: int
    mean: float
    spread: float              # std over random architectures
    q10: float
    q90: float
    n_seed_archs: int
    n_seed_evals: int
    noise: float               # pooled seed std
    ratio: float
    seconds_per_eval: float
    spearman_vs_last: float    # rank agreement over the random cells with the last (most expensive) protocol


def _pooled_seed_std(values: pd.Series, archs: pd.Series) -> tuple[float, int]:
    var, n = [], 0
    for _, g in values.groupby(archs):
        g = g.dropna()
        if len(g) >= 2:
            var.append(float(g.var(ddof=1)))
            n += 1
    return (math.sqrt(float(np.mean(var))) if var else math.nan), n


def _spearman(df: pd.DataFrame, a: str, b: str) -> float:
    if a == b:
        return 1.0
    if b not in df.columns:
        return math.nan
    both = df[[a, b]].dropna()
    if len(both) < 3:
        return math.nan
    from scipy import stats
    return float(stats.spearmanr(both[a].to_numpy(), both[b].to_numpy()).statistic)


def calibrate_protocols(df: pd.DataFrame, study: dict[str, Any], *, metric: str | None = None,
                        seeds_searcher: str = "fixed") -> list[ProtocolCalibration]:
    """Per protocol (primary evaluator, then each extra evaluator): spread, noise and their ratio.

    Rows of searchers named ``seeds_searcher`` (the ``fixed`` searcher, repeating architectures)
    measure the noise; the other rows, one per distinct architecture, measure the spread.
    """
    st = study.get("study", {})
    metric = metric or st.get("objective") or "valid_acc"
    labels = {s.get("label", s.get("name")): s.get("name") for s in study.get("searchers", [])}
    seed_labels = [lab for lab, name in labels.items() if name == seeds_searcher]
    if not seed_labels:
        raise ValueError(f"calibration needs a [[searchers]] with name = {seeds_searcher!r} that repeats "
                         "architectures (e.g. params = {sample = 3, times = 4})")
    ok = df[df["status"] == "ok"]
    seeds = ok[ok["searcher"].isin(seed_labels)]
    cells = ok[~ok["searcher"].isin(seed_labels)].drop_duplicates("arch")
    ev = study.get("evaluator", {})
    protos: list[tuple[str, str, str, str]] = [
        ("primary", json.dumps(ev.get("params", {}), sort_keys=True), f"metric_{metric}", "cost_train_seconds")]
    for x in study.get("extra_evaluators", []):
        lab = x.get("label")
        protos.append((lab, json.dumps(x.get("params", {}), sort_keys=True), f"metric_{lab}_{metric}",
                       f"cost_{lab}_train_seconds"))
    last_col = protos[-1][2]
    out = []
    for label, desc, col, tcol in protos:
        if col not in ok.columns:
            continue
        v = cells[col].dropna()
        noise, n_seed_archs = _pooled_seed_std(seeds[col], seeds["arch"])
        spread = float(v.std(ddof=1)) if len(v) >= 2 else math.nan
        secs = ok[tcol].dropna() if tcol in ok.columns else pd.Series(dtype=float)
        rho = _spearman(cells, col, last_col)
        out.append(ProtocolCalibration(
            protocol=label, description=desc, metric=metric, n_cells=len(v),
            mean=float(v.mean()) if len(v) else math.nan,
            spread=spread, q10=float(v.quantile(0.1)) if len(v) else math.nan,
            q90=float(v.quantile(0.9)) if len(v) else math.nan, n_seed_archs=n_seed_archs,
            n_seed_evals=int(seeds[col].notna().sum()), noise=noise,
            ratio=spread / noise if noise and noise > 0 and not math.isnan(noise) else math.nan,
            seconds_per_eval=float(secs.mean()) if len(secs) else math.nan, spearman_vs_last=rho))
    return out


def choose(rows: list[ProtocolCalibration], required: float = REQUIRED_RATIO) -> ProtocolCalibration | None:
    """The cheapest protocol whose ratio meets ``required`` (None if none does)."""
    good = [r for r in rows if not math.isnan(r.ratio) and r.ratio >= required]
    if not good:
        return None
    return min(good, key=lambda r: (math.inf if math.isnan(r.seconds_per_eval) else r.seconds_per_eval))


def calibration_section(df: pd.DataFrame, study: dict[str, Any], run_dir: Any = None) -> str:
    """The report section: the table, the choice, and how to read it."""
    rows = calibrate_protocols(df, study)
    lines = ["## Calibration: spread between architectures vs seed-to-seed noise", "",
             "spread = std of the metric over distinct random architectures; noise = pooled seed std over "
             "architectures trained several times; ratio = spread / noise (required: "
             f">= {REQUIRED_RATIO:g}). Spearman = rank agreement over the random cells with the last protocol.", "",
             "| protocol | parameters | cells | mean | spread | q10–q90 | seed archs × evals | noise | ratio | "
             "s/eval | Spearman |", "|" + "---|" * 11]
    for r in rows:
        lines.append(f"| {r.protocol} | `{r.description}` | {r.n_cells} | {r.mean:.2f} | {r.spread:.2f} | "
                     f"{r.q10:.1f}–{r.q90:.1f} | {r.n_seed_archs} × {r.n_seed_evals} | {r.noise:.2f} | "
                     f"{r.ratio:.2f} | {r.seconds_per_eval:.2f} | {r.spearman_vs_last:.2f} |")
    pick = choose(rows)
    lines.append("")
    if pick is None:
        lines.append(f"No protocol reaches the ratio {REQUIRED_RATIO:g}: the candidates cannot tell these "
                     "architectures apart from seed noise. Try more epochs or a wider network.")
    else:
        lines.append(f"Chosen: **{pick.protocol}** `{pick.description}` — ratio {pick.ratio:.2f}, "
                     f"{pick.seconds_per_eval:.2f} s per evaluation (the cheapest protocol with ratio >= "
                     f"{REQUIRED_RATIO:g}).")
    if run_dir is not None:
        Path(run_dir, "calibration.json").write_text(json.dumps(
            {"protocols": [asdict(r) for r in rows], "chosen": pick.protocol if pick else None}, indent=2,
            default=float))
    return "\n".join(lines) + "\n"


def calibrated_protocol() -> dict[str, Any]:
    """The calibration shipped with nasatlas (``studies/calibration.json``, from a full run of
    ``calibrate.toml``): the chosen protocol and its measured ratio."""
    text = resources.files("nasatlas.studies").joinpath("calibration.json").read_text()
    return dict(json.loads(text))
