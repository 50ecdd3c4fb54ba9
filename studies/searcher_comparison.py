"""Comparing searchers on a tabular benchmark: best-by-validation, hitting the optimum, and the exact
random-search expectation.

For each (searcher, repeat) run the selected architecture is the best by the objective (validation
accuracy) among the run's first ``budget`` evaluations, ties broken by the table's lowest index
(``nb201_index``); the report gives the mean ± std of its *test* accuracy, the fraction of runs that
evaluated the global best (and any of the top 0.1%) within budget, and a censoring-aware median of
the evaluations needed (Kaplan–Meier, runs that never hit are censored at their length).

Random search without replacement has an exact expectation: with cells sorted by (validation desc,
index asc) as c_0, c_1, ..., a uniform n-subset of N cells selects c_i with probability

    P(i) = C(N-1-i, n-1) / C(N, n)       (c_i drawn, none of c_0..c_{i-1} drawn)

so E[test of selection] = sum_i P(i) test_i, with the variance from the second moment. The measured
mean of random search must lie within 4 standard errors of it: a check of the whole pipeline (sampler,
dedupe, evaluator, log, analysis). Paired comparisons with random search use the Wilcoxon
signed-rank test over repeats paired by repeat index (Demšar 2006; Lindauer & Hutter 2020's NAS
best-practice checklist asks for such tests).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["random_best_of_n", "selection_table", "comparison_section", "km_median"]


def random_best_of_n(valid: np.ndarray, test: np.ndarray, index: np.ndarray, n: int) -> tuple[float, float]:
    """Exact mean and std of the test value of the best-by-valid cell among a uniform n-subset drawn
    without replacement (ties by lowest index)."""
    from scipy.special import gammaln
    order = np.lexsort((index, -valid))
    t = np.asarray(test, dtype=float)[order]
    N = len(t)
    if not 1 <= n <= N:
        raise ValueError(f"n={n} must be between 1 and the table size {N}")
    i = np.arange(N)
    k = N - 1 - i   # cells after position i
    with np.errstate(invalid="ignore"):
        logp = np.where(k >= n - 1, gammaln(k + 1) - gammaln(n) - gammaln(k - n + 2), -np.inf)
    logp -= gammaln(N + 1) - gammaln(n + 1) - gammaln(N - n + 1)
    p = np.exp(logp)
    mean = float((p * t).sum())
    var = float((p * t * t).sum() - mean ** 2)
    return mean, math.sqrt(max(var, 0.0))


def km_median(times: np.ndarray, hit: np.ndarray) -> float:
    """Kaplan–Meier median of time-to-event with right censoring (NaN if the survival curve never
    drops to 0.5 within the observed times)."""
    t = np.asarray(times, dtype=float)
    h = np.asarray(hit, dtype=bool)
    surv = 1.0
    for u in np.unique(t[h]):
        at_risk = int((t >= u).sum())
        events = int(((t == u) & h).sum())
        surv *= 1.0 - events / at_risk
        if surv <= 0.5:
            return float(u)
    return math.nan


def selection_table(df: pd.DataFrame, table: pd.DataFrame, *, objective: str = "valid_acc",
                    report: str = "test_acc", budget: int | None = None, index_column: str = "nb201_index",
                    arch_column: str = "arch") -> pd.DataFrame:
    """One row per (searcher, repeat): the selected architecture and whether/when the optimum was hit."""
    tab = table.set_index(arch_column)
    idx = tab[index_column] if index_column in tab.columns else pd.Series(np.arange(len(tab)), index=tab.index)
    best_valid = tab[objective].max()
    top = tab[objective].rank(ascending=False, method="min") <= max(1, math.ceil(0.001 * len(tab)))
    top_set = set(tab.index[top])
    best_set = set(tab.index[tab[objective] == best_valid])
    rows = []
    for (searcher, repeat), g in df[df["status"] == "ok"].groupby(["searcher", "repeat"]):
        g = g.sort_values("trial")
        if budget is not None:
            g = g[g["trial"] < budget]
        if g.empty:
            continue
        archs = g["arch"].to_numpy()
        vals = g[f"metric_{objective}"].to_numpy(dtype=float)
        ids = idx.reindex(archs).to_numpy(dtype=float)
        sel = np.lexsort((ids, -vals))[0]
        hit_best = [k for k, a in enumerate(archs) if a in best_set]
        hit_top = [k for k, a in enumerate(archs) if a in top_set]
        rows.append({"searcher": searcher, "repeat": int(repeat), "evaluations": len(g), "arch": archs[sel],
                     "selected_valid": float(vals[sel]), "selected_test": float(tab.loc[archs[sel], report]),
                     "hit_best": bool(hit_best), "evals_to_best": (hit_best[0] + 1) if hit_best else len(g),
                     "hit_top": bool(hit_top), "evals_to_top": (hit_top[0] + 1) if hit_top else len(g)})
    return pd.DataFrame(rows)


def comparison_section(df: pd.DataFrame, study: dict[str, Any], run_dir: Any = None) -> str:
    """Report section for a searcher comparison on a tabular evaluator (``[evaluator] name = "tabular"``)."""
    from scipy import stats
    ev = study.get("evaluator", {})
    if ev.get("name") != "tabular":
        raise ValueError("the searcher_comparison analysis needs the tabular evaluator (it reads the table)")
    params = ev.get("params", {})
    path = Path(params["table"])
    table = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    arch_col = params.get("arch_column", "arch")
    objective = study.get("study", {}).get("objective") or "valid_acc"
    report = "test_acc" if "test_acc" in table.columns else objective
    budget = int(study.get("budget", {}).get("evaluations") or df["trial"].max() + 1)
    sel = selection_table(df, table, objective=objective, report=report, budget=budget, arch_column=arch_col)
    index = table["nb201_index"].to_numpy() if "nb201_index" in table.columns else np.arange(len(table))
    exp_mean, exp_std = random_best_of_n(table[objective].to_numpy(float), table[report].to_numpy(float), index,
                                         budget)
    lines = [f"## Searchers on `{path.name}` ({len(table):,} architectures)", "",
             f"Selection = best {objective} within {budget} evaluations (ties: lowest table index); reported: its "
             f"{report}. Hit = evaluated the global best (or any of the top 0.1%) within budget; median "
             "evaluations to hit = Kaplan–Meier median, runs that never hit censored at their length. "
             "p = Wilcoxon signed-rank vs `random` (paired by repeat index).", "",
             f"| searcher | repeats | {report} mean ± std | hit best | hit top 0.1% | median evals to best | "
             "median evals to top 0.1% | Δ vs random | p |", "|" + "---|" * 9]
    rand = sel[sel["searcher"] == "random"].set_index("repeat")["selected_test"] if "random" in set(
        sel["searcher"]) else None
    for name, g in sel.groupby("searcher", sort=True):
        m, s = g["selected_test"].mean(), g["selected_test"].std(ddof=1)
        delta, p = "", ""
        if rand is not None and name != "random":
            paired = g.set_index("repeat")["selected_test"].to_frame("a").join(rand.to_frame("r"), how="inner")
            if len(paired) >= 2:
                d = paired["a"] - paired["r"]
                delta = f"{d.mean():+.3f}"
                p = f"{stats.wilcoxon(d).pvalue:.3g}" if (d != 0).any() else "1"
        lines.append(f"| {name} | {len(g)} | {m:.3f} ± {s:.3f} | {g['hit_best'].mean():.0%} "
                     f"| {g['hit_top'].mean():.0%} "
                     f"| {km_median(g['evals_to_best'].to_numpy(), g['hit_best'].to_numpy())} "
                     f"| {km_median(g['evals_to_top'].to_numpy(), g['hit_top'].to_numpy())} | {delta} | {p} |")
    lines += ["", f"Exact expectation for random search (best of {budget} without replacement): "
                  f"{report} = {exp_mean:.3f} (std of one run {exp_std:.3f})."]
    if rand is not None and len(rand) >= 2:
        se = exp_std / math.sqrt(len(rand))
        z = (rand.mean() - exp_mean) / se
        verdict = "agrees" if abs(z) <= 4 else "DISAGREES"
        lines.append(f"Measured random search: {rand.mean():.3f} over {len(rand)} repeats, "
                     f"{z:+.2f} standard errors from the exact value: it {verdict} (tolerance 4).")
    if run_dir is not None:
        sel.to_csv(Path(run_dir) / "selections.csv", index=False)
    return "\n".join(lines) + "\n"
