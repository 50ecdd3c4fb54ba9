"""Report section ``coarse_to_fine``: coarse-to-fine search against the same searcher on the dense space.

For each (searcher, repeat) run the selection is the best architecture by the objective within the
budget (:func:`nasatlas.studies.searcher_comparison.selection_table`: ties by the table's lowest
index); the section reports the mean ± std of its test accuracy per B1/B split, and compares every
``coarse_to_fine`` searcher with its dense baseline, paired by repeat index:

* the paired differences ``d_r = test(c2f, r) - test(baseline, r)``: mean, wins/ties/losses;
* the Wilcoxon signed-rank test on ``d`` (zero differences dropped, scipy's default; Demšar 2006),
  with Holm's step-down adjustment over the section's comparisons (Holm 1979);
* two effect sizes: the matched-pairs rank-biserial correlation ``r = (T+ - T-) / (T+ + T-)`` over the
  signed ranks of the non-zero ``|d|`` (Kerby 2014, the "simple difference formula"), and Cohen's
  ``d_z = mean(d) / sd(d)`` (Cohen 1988, Eq. 2.3.5 for paired samples).

Diagnostics of the two phases, recomputed from the log with the searcher's own rules (phase 1 =
trials ``< B1``; incumbent = coarse architecture of the best phase-1 evaluation, the earlier trial on
ties): the size of the incumbent's lift, the *lift oracle* (the test accuracy of the best-by-objective
member of that lift in the table: the ceiling of a perfect phase 2), the number of lifts phase 2
searched, and the share of runs whose selection was first evaluated in phase 2.

The baseline of a ``coarse_to_fine`` searcher is ``[analysis.coarse_to_fine] baseline`` (a label) if
given, else the one other searcher whose registry name is its ``phase2`` (else the only other one).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .searcher_comparison import selection_table

__all__ = ["paired_effect", "holm", "c2f_configs", "phase_diagnostics", "selection_curves", "split_table",
           "coarse_to_fine_section"]

NAME = "coarse_to_fine"


def paired_effect(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> dict[str, float]:
    """Paired comparison of ``a`` with ``b`` (same length, paired by position).

    Returns ``n``, ``mean_diff``, ``wins``/``ties``/``losses`` (of ``a``), the Wilcoxon signed-rank
    ``p`` (two-sided; 1 when every difference is 0), the rank-biserial ``r`` (Kerby 2014) and
    Cohen's ``d_z`` (NaN when the differences have no spread).
    """
    from scipy import stats
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"paired_effect: a and b must be 1-D and of the same length, got {x.shape} and {y.shape}")
    d = x - y
    nz = d[d != 0]
    out: dict[str, float] = {"n": float(len(d)), "mean_diff": float(d.mean()) if len(d) else math.nan,
                             "wins": float((d > 0).sum()), "ties": float((d == 0).sum()),
                             "losses": float((d < 0).sum())}
    if len(nz) == 0:
        out.update(p=1.0, rank_biserial=0.0)
    else:
        ranks = stats.rankdata(np.abs(nz))
        t_plus, t_minus = ranks[nz > 0].sum(), ranks[nz < 0].sum()
        out["rank_biserial"] = float((t_plus - t_minus) / (t_plus + t_minus))
        out["p"] = float(stats.wilcoxon(nz).pvalue)
    sd = float(d.std(ddof=1)) if len(d) >= 2 else math.nan
    out["d_z"] = float(d.mean() / sd) if sd and math.isfinite(sd) and sd > 0 else math.nan
    return out


def holm(p: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values (Holm 1979), monotone and capped at 1."""
    arr = np.asarray(p, dtype=float)
    m = len(arr)
    order = np.argsort(arr, kind="stable")
    adj = np.empty(m)
    running = 0.0
    for k, i in enumerate(order):
        running = max(running, min(1.0, (m - k) * arr[i]))
        adj[i] = running
    return adj.tolist()


def c2f_configs(study: Mapping[str, Any], baseline: str | None = None) -> dict[str, dict[str, Any]]:
    """``label -> {params, b1, budget, phase1, phase2, baseline}`` of the study's ``coarse_to_fine``
    searchers, with ``B1`` resolved against the study's budget.

    Raises:
        ValueError: a searcher's ``budget`` differs from the study's ``[budget] evaluations``, or its
            baseline cannot be chosen (naming the label and the fix).
    """
    from nasatlas.searchers.coarse_to_fine import resolve_b1
    searchers = [dict(s) for s in study.get("searchers", [])]
    for s in searchers:
        s.setdefault("label", s.get("name"))
    others = [s for s in searchers if s.get("name") != NAME]
    evaluations = study.get("budget", {}).get("evaluations")
    out: dict[str, dict[str, Any]] = {}
    for s in searchers:
        if s.get("name") != NAME:
            continue
        p = dict(s.get("params", {}))
        label = str(s["label"])
        budget = p.get("budget")
        if evaluations is not None and budget is not None and int(budget) != int(evaluations):
            raise ValueError(f"{NAME}: searcher {label!r} has budget = {budget} but the study's [budget] evaluations "
                             f"= {evaluations}; set its params budget = {evaluations} (the B of its B1/B split)")
        total = int(budget if budget is not None else evaluations) if (budget or evaluations) else None
        phase1, phase2 = p.get("phase1", "random"), p.get("phase2", "local_search")
        if baseline is not None:
            if baseline not in {str(o["label"]) for o in others}:
                raise ValueError(f"{NAME}: [analysis.{NAME}] baseline = {baseline!r} is not a searcher label of the "
                                 f"study; labels: {[str(o['label']) for o in others]}")
            base = baseline
        else:
            same = [str(o["label"]) for o in others if o.get("name") == phase2]
            if len(same) == 1:
                base = same[0]
            elif len(others) == 1:
                base = str(others[0]["label"])
            else:
                raise ValueError(f"{NAME}: cannot tell which searcher is the dense baseline of {label!r} (phase2 = "
                                 f"{phase2!r}; other searchers {[str(o['label']) for o in others]}); set "
                                 f"[analysis.{NAME}] baseline = \"LABEL\"")
        out[label] = {"params": p, "b1": resolve_b1(p.get("b1", 0.5), total), "budget": total,
                      "phase1": phase1, "phase2": phase2, "baseline": base}
    return out


def phase_diagnostics(df: pd.DataFrame, coarsening: Any, b1: int, *, objective: str, mode: str = "max",
                      table_coarse: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per repeat of one coarse-to-fine searcher's log ``df``: the incumbent's coarse string and lift
    size, the lift oracle (from ``table_coarse``: columns ``coarse``, ``oracle``), the number of lifts
    searched in phase 2 and the first trial of the selected architecture's phase (``sel_phase2``
    needs a ``selected_arch`` column; else NaN)."""
    space = coarsening.space
    col = f"metric_{objective}"
    sign = 1.0 if mode == "max" else -1.0
    cache: dict[str, str] = {}

    def coarse_of(arch: str) -> str:
        if arch not in cache:
            row = coarsening.coarsen(np.asarray(space.from_str(arch).indices))
            cache[arch] = coarsening.coarse_space.to_str(row)
        return cache[arch]

    oracle = {} if table_coarse is None else dict(zip(table_coarse["coarse"], table_coarse["oracle"]))
    rows = []
    for repeat, g in df.groupby("repeat"):
        g = g.sort_values("trial")
        p1 = g[(g["trial"] < b1) & (g["status"] == "ok")]
        inc = None
        if len(p1):
            v = sign * p1[col].to_numpy(dtype=float)
            inc = coarse_of(str(p1["arch"].iloc[int(np.argmax(v))]))  # argmax: the earliest trial on ties
        p2 = g[g["trial"] >= b1]
        lifts = len({coarse_of(str(a)) for a in p2["arch"]})
        lift_size = (coarsening.lift_size(np.asarray(coarsening.coarse_space.from_str(inc).indices))
                     if inc is not None else math.nan)
        rows.append({"repeat": int(repeat), "incumbent": inc, "lift_size": lift_size,
                     "lift_oracle": oracle.get(inc, math.nan) if inc is not None else math.nan,
                     "lifts_refined": lifts})
    return pd.DataFrame(rows)


def _table_oracle(table: pd.DataFrame, coarsening: Any, *, objective: str, report: str, arch_column: str,
                  mode: str) -> pd.DataFrame:
    """Per coarse architecture of the table: the ``report`` value of its best member by ``objective``
    (ties by the lowest ``nb201_index``/row)."""
    space = coarsening.space
    rows = np.asarray([space.from_str(str(a)).indices for a in table[arch_column]], dtype=np.int64)
    cs = coarsening.coarse_space
    coarse = [cs.to_str(r) for r in coarsening.coarsen(rows)]
    idx = table["nb201_index"].to_numpy() if "nb201_index" in table.columns else np.arange(len(table))
    sign = 1.0 if mode == "max" else -1.0
    t = pd.DataFrame({"coarse": coarse, "v": sign * table[objective].to_numpy(float), "idx": idx,
                      "oracle": table[report].to_numpy(float)})
    t = t.sort_values(["coarse", "v", "idx"], ascending=[True, False, True])
    return t.groupby("coarse", sort=False).head(1)[["coarse", "oracle"]].reset_index(drop=True)


def selection_curves(df: pd.DataFrame, table: pd.DataFrame, *, objective: str, report: str, budget: int,
                     arch_column: str = "arch", mode: str = "max") -> dict[str, np.ndarray]:
    """``label -> (repeats, budget)`` array: the ``report`` value of the best-by-objective architecture
    after each evaluation (ties by the table's lowest index, as in the selection; NaN before the first
    ok result)."""
    tab = table.set_index(arch_column)
    idx_col = tab["nb201_index"] if "nb201_index" in tab.columns else pd.Series(np.arange(len(tab)), index=tab.index)
    col = f"metric_{objective}"
    sign = 1.0 if mode == "max" else -1.0
    out: dict[str, np.ndarray] = {}
    for label, gl in df.groupby("searcher", sort=True):
        curves = []
        for _, g in gl.groupby("repeat"):
            g = g.sort_values("trial")
            g = g[g["trial"] < budget]
            vals = np.where(g["status"] == "ok", sign * g[col].to_numpy(dtype=float), -np.inf)
            ids = idx_col.reindex(g["arch"]).to_numpy(dtype=float)
            reps = tab[report].reindex(g["arch"]).to_numpy(dtype=float)
            curve = np.full(budget, np.nan)
            best: tuple[float, float] | None = None
            cur = math.nan
            for k, (v, i, r) in enumerate(zip(vals, ids, reps)):
                if np.isfinite(v) and (best is None or v > best[0] or (v == best[0] and i < best[1])):
                    best, cur = (v, i), r
                curve[k] = cur
            if len(g) < budget:
                curve[len(g):] = cur
            curves.append(curve)
        out[str(label)] = np.vstack(curves)
    return out


def split_table(sel: pd.DataFrame, configs: Mapping[str, Mapping[str, Any]],
                diagnostics: Mapping[str, pd.DataFrame] | None = None) -> pd.DataFrame:
    """One row per coarse-to-fine searcher: its split, its selection's test accuracy, the paired
    comparison with its baseline (:func:`paired_effect`, Holm-adjusted p) and the phase diagnostics.
    ``sel`` is :func:`selection_table`'s output (plus an optional ``sel_phase2`` column)."""
    rows = []
    for label, cfg in configs.items():
        mine = sel[sel["searcher"] == label].set_index("repeat")
        base = sel[sel["searcher"] == cfg["baseline"]].set_index("repeat")
        paired = mine[["selected_test"]].join(base[["selected_test"]].rename(columns={"selected_test": "base"}),
                                              how="inner")
        eff = paired_effect(paired["selected_test"].to_numpy(), paired["base"].to_numpy())
        row: dict[str, Any] = {
            "searcher": label, "phases": f"{cfg['phase1']} → {cfg['phase2']}", "B1": cfg["b1"], "B": cfg.get("budget"),
            "B1/B": cfg["b1"] / cfg["budget"] if cfg.get("budget") else math.nan, "repeats": len(mine),
            "test_mean": mine["selected_test"].mean(), "test_std": mine["selected_test"].std(ddof=1),
            "baseline": cfg["baseline"], "baseline_mean": base["selected_test"].mean(),
            "baseline_std": base["selected_test"].std(ddof=1), **eff,
        }
        if "sel_phase2" in mine.columns:
            row["selected_in_phase2"] = float(mine["sel_phase2"].mean())
        diag = (diagnostics or {}).get(label)
        if diag is not None and len(diag):
            row.update(lift_size=float(diag["lift_size"].mean()), lift_oracle=float(diag["lift_oracle"].mean()),
                       lifts_refined=float(diag["lifts_refined"].mean()))
        rows.append(row)
    out = pd.DataFrame(rows)
    if len(out):
        out["p_holm"] = holm(out["p"].tolist())
    return out


def _plot(curves: Mapping[str, np.ndarray], configs: Mapping[str, Mapping[str, Any]], path: Path,
          report: str) -> bool:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # matplotlib is a dev extra
        return False
    fig, ax = plt.subplots(figsize=(6.4, 3.8), dpi=110)
    for label, arr in curves.items():
        x = np.arange(1, arr.shape[1] + 1)
        with np.errstate(all="ignore"):
            mean = np.nanmean(np.where(np.isfinite(arr), arr, np.nan), axis=0)
        line, = ax.plot(x, mean, label=label, lw=1.4 if label in configs else 2.2)
        if label in configs:
            ax.axvline(configs[label]["b1"] + 0.5, color=line.get_color(), ls=":", lw=1)
    ax.set_xlabel("evaluations (dotted: the split B1)")
    ax.set_ylabel(f"{report} of the selection so far (mean)")
    lo = np.nanmin([np.nanmean(a[:, -1]) for a in curves.values()])
    hi = np.nanmax([np.nanmax(np.nanmean(a, axis=0)) for a in curves.values()])
    if math.isfinite(lo) and math.isfinite(hi):
        ax.set_ylim(lo - 1.5 * max(hi - lo, 0.1), hi + 0.3 * max(hi - lo, 0.1))
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True


def _fmt(v: Any, spec: str = ".3f") -> str:
    if isinstance(v, (float, np.floating)):
        return "n/a" if not math.isfinite(float(v)) else format(float(v), spec)
    return str(v)


def coarse_to_fine_section(df: pd.DataFrame, study: dict[str, Any], run_dir: Any = None) -> str:
    """Report section for studies/coarse_to_fine.toml (needs the tabular evaluator: it reads the table)."""
    from nasatlas.spaces.coarsen import get_coarsening

    from .studyfile import study_space
    ev = study.get("evaluator", {})
    if ev.get("name") != "tabular":
        raise ValueError(f"the {NAME} analysis needs the tabular evaluator (it reads the table for the test "
                         "accuracy of each selection and for the lift oracle)")
    params = ev.get("params", {})
    path = Path(params["table"])
    table = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    arch_col = params.get("arch_column", "arch")
    st = study.get("study", {})
    objective = st.get("objective") or "valid_acc"
    mode = st.get("mode", "max")
    report = "test_acc" if "test_acc" in table.columns else objective
    opts = dict(study.get("analysis", {}).get(NAME, {}))
    unknown = set(opts) - {"baseline"}
    if unknown:
        raise ValueError(f"[analysis.{NAME}] has unknown key(s) {sorted(unknown)}; allowed: ['baseline']")
    configs = c2f_configs(study, opts.get("baseline"))
    if not configs:
        raise ValueError(f"the {NAME} analysis needs at least one [[searchers]] with name = \"{NAME}\"")
    if df.empty or "searcher" not in df.columns:
        return "## Coarse-to-fine search\n\nThe log is empty.\n"
    budget = int(study.get("budget", {}).get("evaluations") or df["trial"].max() + 1)
    if mode != "max":
        raise ValueError(f"the {NAME} analysis selects the maximum of {objective!r}; [study] mode = {mode!r} is not "
                         "supported (selection_table maximises)")
    sel = selection_table(df, table, objective=objective, report=report, budget=budget, arch_column=arch_col)
    space = study_space(study)
    diags: dict[str, pd.DataFrame] = {}
    oracle_cache: dict[str, pd.DataFrame] = {}
    first_trial = df.sort_values("trial").groupby(["searcher", "repeat", "arch"])["trial"].first()
    sel["first_trial"] = [first_trial.get((s, r, a), math.nan) for s, r, a in
                          zip(sel["searcher"], sel["repeat"], sel["arch"])]
    sel["sel_phase2"] = math.nan
    for label, cfg in configs.items():
        spec = cfg["params"].get("coarsening", "nb201_conv_cheap")
        coarsening = get_coarsening(space, spec, who=f"{NAME}: searcher {label!r} coarsening")
        key = repr(spec)
        if key not in oracle_cache:
            oracle_cache[key] = _table_oracle(table, coarsening, objective=objective, report=report,
                                              arch_column=arch_col, mode=mode)
        diags[label] = phase_diagnostics(df[df["searcher"] == label], coarsening, cfg["b1"], objective=objective,
                                         mode=mode, table_coarse=oracle_cache[key])
        m = sel["searcher"] == label
        sel.loc[m, "sel_phase2"] = (sel.loc[m, "first_trial"] >= cfg["b1"]).astype(float)
    tab = split_table(sel, configs, diags)
    lines = [f"## Coarse-to-fine search on `{path.name}` ({len(table):,} architectures)", "",
             f"Selection = best {objective} within {budget} evaluations (ties: lowest table index); reported: its "
             f"{report}. Each coarse-to-fine searcher spends B1 evaluations on the coarse space (a coarse "
             "architecture is evaluated through one uniformly drawn member of its lift) and the rest inside the "
             "lift of its phase-1 incumbent. Δ = mean paired difference to the dense baseline (paired by "
             "repeat index); W/T/L = wins/ties/losses; p = Wilcoxon signed-rank (two-sided), p_Holm = Holm-"
             "adjusted over the rows; r = matched-pairs rank-biserial correlation (Kerby 2014); d_z = mean/sd "
             "of the differences. Lift = size of the incumbent's lift; oracle = the "
             f"{report} of its best-by-{objective} member (the ceiling of a perfect phase 2); lifts = lifts "
             "searched in phase 2; ph2 = share of runs whose selection was found in phase 2.", "",
             "| searcher | phases | B1/B | repeats | " + report + " mean ± std | baseline | baseline mean ± std "
             "| Δ | W/T/L | p | p_Holm | r | d_z | lift | oracle | lifts | ph2 |", "|" + "---|" * 17]
    for r in tab.to_dict("records"):
        lines.append(
            f"| {r['searcher']} | {r['phases']} | {r['B1']}/{r['B'] if r['B'] is not None else '?'} | {r['repeats']} "
            f"| {_fmt(r['test_mean'])} ± {_fmt(r['test_std'])} | {r['baseline']} "
            f"| {_fmt(r['baseline_mean'])} ± {_fmt(r['baseline_std'])} | {_fmt(r['mean_diff'], '+.3f')} "
            f"| {int(r['wins'])}/{int(r['ties'])}/{int(r['losses'])} | {_fmt(r['p'], '.3g')} "
            f"| {_fmt(r['p_holm'], '.3g')} | {_fmt(r['rank_biserial'], '+.2f')} | {_fmt(r['d_z'], '+.2f')} "
            f"| {_fmt(r.get('lift_size', math.nan), '.1f')} | {_fmt(r.get('lift_oracle', math.nan))} "
            f"| {_fmt(r.get('lifts_refined', math.nan), '.2f')} "
            f"| {_fmt(r.get('selected_in_phase2', math.nan), '.0%')} |")
    if run_dir is not None:
        run = Path(run_dir)
        sel.to_csv(run / "coarse_to_fine_selections.csv", index=False)
        tab.to_csv(run / "coarse_to_fine.csv", index=False)
        curves = selection_curves(df, table, objective=objective, report=report, budget=budget, arch_column=arch_col,
                                  mode=mode)
        if _plot(curves, configs, run / "coarse_to_fine.png", report):
            lines += ["", f"![{report} of the selection so far, by split](coarse_to_fine.png)"]
    return "\n".join(lines) + "\n"
