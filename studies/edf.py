"""Comparing design spaces (or sub-spaces, or searchers' samples) by their error EDFs.

Radosavovic, Johnson, Xie, Lo & Dollár, "On Network Design Spaces for Visual Recognition", ICCV 2019
(Sec. 3-4) compare *distributions* of models rather than single models:

* error EDF of n models with errors e_i (their Eq. 1):  F(e) = (1/n) Σ_i 1[e_i < e];
* complexity-normalised EDF (their Eq. 2):  F̂(e) = Σ_i w_i 1[e_i < e],  Σ_i w_i = 1, with weights chosen
  so that the weighted distribution of a complexity measure (params or flops/MACs) is the same for
  every compared space.  As in the paper the complexity is binned (in log space by default) and each
  model gets weight t_b / n_{g,b}: t_b is the target mass of its bin b and n_{g,b} the number of models
  of its space g in that bin, so each space's weighted histogram equals the target exactly.  Targets:
  ``"uniform"`` (t_b = 1/B, the paper's choice) or ``"union"`` (t_b ∝ the pooled count of bin b).
  A target can only be matched on bins populated by *every* compared space (the common support); models
  in other bins get weight 0 and are counted per group (``n_outside_support``).
* Kolmogorov-Smirnov statistic D = sup_e |F1(e) - F2(e)| between two (weighted) EDFs.  Unweighted,
  its p-value is scipy's two-sample test (``scipy.stats.ks_2samp``, method "auto": exact for small
  samples).  Weighted (normalised) EDFs have no exact null distribution: ``p_value`` is then None and
  ``p_value_approx`` evaluates the asymptotic two-sample formula ks_2samp itself uses
  (``kstwo.sf(D, round(m n / (m + n)))``) with Kish effective sizes n_eff = (Σw)² / Σw² in place of
  m and n.  It is an approximation, labelled as such everywhere it appears.

Error rule (``error_from``): ``"percent"`` -> 100 - metric, ``"fraction"`` -> 1 - metric, ``"error"`` ->
the metric as is.  ``"auto"`` decides from the metric's name and values: a name containing "err" or
"loss" is already an error; a name containing "acc" is an accuracy, a fraction when every value lies in
[0, 1] and a percentage when every value lies in [0, 100] (some above 1); anything else is a ValueError
asking for an explicit ``--error-from``.  (A percentage accuracy whose values all happen to be <= 1 is
read as a fraction: pass ``--error-from percent`` there.)

Sub-spaces are groups of a table's rows: a column's values (``--group-by searcher``), the two tables of
``--table`` and ``--table2``, or the presence of an op in the architecture (``--contains nor_conv_3x3``:
"with OP" = some decision of the parsed architecture chose the option labelled OP, e.g. an NB201 cell
with at least one 3x3 convolution edge; "without OP" = none did).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["ERROR_FROM", "TARGETS", "QUANTILES", "resolve_error_rule", "to_error", "edf", "edf_quantiles",
           "complexity_bins", "normalised_weights", "ks_statistic", "op_presence", "edf_table", "ks_pairs",
           "group_summary", "compare_edfs", "edf_section"]

ERROR_FROM = ("auto", "percent", "fraction", "error")
TARGETS = ("uniform", "union")
QUANTILES = (0.1, 0.5, 0.9)
_TOL = 1e-12


# -- errors ----------------------------------------------------------------------------------------------

def resolve_error_rule(metric: str, values: Any, error_from: str = "auto") -> str:
    """The explicit rule (``"percent"``, ``"fraction"`` or ``"error"``) for a metric (module docstring)."""
    if error_from not in ERROR_FROM:
        raise ValueError(f"error_from={error_from!r} (--error-from): use one of {list(ERROR_FROM)}")
    if error_from != "auto":
        return error_from
    name = metric.lower()
    if "err" in name or "loss" in name:
        return "error"
    if "acc" not in name:
        raise ValueError(f"cannot tell whether {metric!r} is an accuracy or an error from its name; "
                         "give --error-from percent|fraction (an accuracy) or --error-from error")
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if len(v) and v.min() >= 0 and v.max() <= 1:
        return "fraction"
    if len(v) and v.min() >= 0 and v.max() <= 100:
        return "percent"
    raise ValueError(f"accuracy {metric!r} has values outside [0, 100] (min {v.min() if len(v) else 'none'}, "
                     f"max {v.max() if len(v) else 'none'}): give --error-from explicitly")


def to_error(values: Any, rule: str) -> np.ndarray:
    """Errors from metric values under an explicit rule: percent 100 - x, fraction 1 - x, error x."""
    v = np.asarray(values, dtype=float)
    if rule == "percent":
        return 100.0 - v
    if rule == "fraction":
        return 1.0 - v
    if rule == "error":
        return v.copy()
    raise ValueError(f"error rule {rule!r}: use 'percent', 'fraction' or 'error'")


# -- EDFs and KS -----------------------------------------------------------------------------------------

def _sample(name: str, x: Any, w: Any | None) -> tuple[np.ndarray, np.ndarray]:
    """Validated errors and weights normalised to sum 1 (uniform when ``w`` is None)."""
    e = np.asarray(x, dtype=float).ravel()
    if len(e) < 2:
        raise ValueError(f"{name} has {len(e)} model(s): an EDF comparison needs at least 2 per group")
    if not np.isfinite(e).all():
        raise ValueError(f"{name} contains NaN or inf errors: drop those models first")
    if w is None:
        return e, np.full(len(e), 1.0 / len(e))
    wt = np.asarray(w, dtype=float).ravel()
    if wt.shape != e.shape:
        raise ValueError(f"{name}: {len(e)} errors but {len(wt)} weights")
    if not np.isfinite(wt).all() or (wt < 0).any() or wt.sum() <= 0:
        raise ValueError(f"{name}: weights must be finite, non-negative and not all zero")
    return e, wt / wt.sum()


def edf(errors: Any, weights: Any | None = None) -> pd.DataFrame:
    """The (weighted) error EDF at each distinct error u_1 < u_2 < ... (Radosavovic et al. 2019, Eq. 1/2).

    ``cdf_below`` = F(u_k) = Σ w_i 1[e_i < u_k], the paper's strict-inequality value at u_k;
    ``cdf`` = Σ w_i 1[e_i ≤ u_k], which is F(e) for every e in (u_k, u_{k+1}] (the top of the step at u_k).
    Weights (default 1/n each) are normalised to sum to 1.
    """
    e, w = _sample("errors", errors, weights)
    u, inv = np.unique(e, return_inverse=True)
    mass = np.bincount(inv, weights=w, minlength=len(u))
    cdf = np.minimum(np.cumsum(mass), 1.0)
    return pd.DataFrame({"error": u, "cdf": cdf, "cdf_below": np.concatenate([[0.0], cdf[:-1]])})


def edf_quantiles(errors: Any, weights: Any | None = None, probs: Sequence[float] = QUANTILES) -> dict[str, float]:
    """Error at which the EDF reaches each p: the smallest u with Σ w_i 1[e_i ≤ u] ≥ p (for uniform
    weights, numpy's ``quantile(..., method="inverted_cdf")``); keys are ``str(p)``."""
    table = edf(errors, weights)
    out = {}
    for p in probs:
        if not 0 < p <= 1:
            raise ValueError(f"quantile level {p} must lie in (0, 1]")
        k = int(np.searchsorted(table["cdf"].to_numpy(), p - _TOL, side="left"))
        out[str(p)] = float(table["error"].iloc[min(k, len(table) - 1)])
    return out


def _kish(w: np.ndarray) -> float:
    return float(w.sum() ** 2 / (w ** 2).sum())


def ks_statistic(a: Any, b: Any, wa: Any | None = None, wb: Any | None = None) -> dict[str, Any]:
    """Two-sample Kolmogorov-Smirnov statistic D = sup_e |F_a(e) - F_b(e)| of (weighted) error EDFs.

    Returns ``D``, ``n_a``, ``n_b`` (models with positive weight), ``n_eff_a``, ``n_eff_b`` (Kish),
    ``weighted``, ``p_value`` (scipy.stats.ks_2samp, unweighted only; None when weighted),
    ``p_value_approx`` (weighted only: kstwo.sf(D, round(n_e)), n_e = n_eff_a n_eff_b / (n_eff_a + n_eff_b);
    None when unweighted) and ``p_value_method``.
    """
    from scipy import stats
    weighted = wa is not None or wb is not None
    ea, pa = _sample("sample a", a, wa)
    eb, pb = _sample("sample b", b, wb)
    grid = np.unique(np.concatenate([ea, eb]))

    def cdf_at(e: np.ndarray, w: np.ndarray) -> np.ndarray:
        order = np.argsort(e, kind="stable")
        cum = np.concatenate([[0.0], np.cumsum(w[order])])
        return cum[np.searchsorted(e[order], grid, side="right")]

    d = float(np.max(np.abs(cdf_at(ea, pa) - cdf_at(eb, pb))))
    na, nb = _kish(pa), _kish(pb)
    out: dict[str, Any] = {"D": d, "n_a": int((pa > 0).sum()), "n_b": int((pb > 0).sum()),
                           "n_eff_a": na, "n_eff_b": nb, "weighted": weighted}
    if weighted:
        n_e = max(1.0, float(np.round(na * nb / (na + nb))))
        out.update(p_value=None, p_value_approx=float(np.clip(stats.kstwo.sf(d, n_e), 0.0, 1.0)),
                   p_value_method="weighted EDFs: no exact p-value; p_value_approx = asymptotic two-sample "
                                  "formula (scipy kstwo) with Kish effective sizes")
    else:
        out.update(p_value=float(stats.ks_2samp(ea, eb).pvalue), p_value_approx=None,
                   p_value_method="scipy.stats.ks_2samp (two-sided, method='auto')")
    return out


# -- complexity normalisation ----------------------------------------------------------------------------

def complexity_bins(complexity: Any, bins: int | Sequence[float] = 10, *,
                    log: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Bin index of each model and the bin edges (in the complexity's own units).

    ``bins`` an int: that many equal-width bins between the smallest and largest complexity, in log
    space when ``log`` (the paper bins flops/params in log space); the largest value falls in the last
    bin.  ``bins`` a sequence: explicit increasing edges; every value must lie within them.
    """
    c = np.asarray(complexity, dtype=float).ravel()
    if len(c) == 0:
        raise ValueError("no complexity values to bin")
    if not np.isfinite(c).all():
        raise ValueError("complexity has NaN or inf values: give every model a complexity, or drop it")
    if log and (c <= 0).any():
        raise ValueError(f"log-space binning needs positive complexity; min is {c.min()}: use log=False "
                         "(--linear-bins) or a positive measure")
    x = np.log(c) if log else c
    if isinstance(bins, (int, np.integer)):
        if bins < 1:
            raise ValueError(f"bins={bins} (--bins): give at least 1 bin")
        edges = np.linspace(x.min(), x.max(), int(bins) + 1)
    else:
        raw = np.asarray(bins, dtype=float)
        if raw.ndim != 1 or len(raw) < 2 or not (np.diff(raw) > 0).all():
            raise ValueError(f"bins={list(raw)}: give an int or at least 2 strictly increasing edges")
        if log and raw[0] <= 0:
            raise ValueError("log-space bin edges must be positive")
        edges = np.log(raw) if log else raw
        if x.min() < edges[0] - _TOL or x.max() > edges[-1] + _TOL:
            raise ValueError(f"complexity range [{c.min()}, {c.max()}] is not inside the bin edges "
                             f"[{raw[0]}, {raw[-1]}]")
    nb = len(edges) - 1
    idx = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, nb - 1)
    return idx.astype(np.int64), (np.exp(edges) if log else edges)


def normalised_weights(complexity: Any, group: Any, bins: int | Sequence[float] = 10, *, log: bool = True,
                       target: str = "uniform") -> pd.Series:
    """Per-model weights w_i (Radosavovic et al. 2019, Eq. 2) that make every group's weighted complexity
    histogram equal the target on the bins all groups populate: w_i = t_b / n_{g,b} (module docstring).

    Bins are shared by all groups (computed from the pooled complexity).  Weights sum to 1 within each
    group; models in bins some group lacks get weight 0.  The result has ``complexity``'s index when it
    is a Series.
    """
    if target not in TARGETS:
        raise ValueError(f"target={target!r} (--target): use one of {list(TARGETS)}")
    c = np.asarray(complexity, dtype=float).ravel()
    g = np.asarray(group, dtype=object).ravel()
    if len(c) != len(g):
        raise ValueError(f"{len(c)} complexity values but {len(g)} group labels")
    labels = list(pd.unique(pd.Series(g)))
    if len(labels) < 1:
        raise ValueError("no models to weight")
    idx, _ = complexity_bins(c, bins, log=log)
    nbins = int(idx.max()) + 1
    counts = {lab: np.bincount(idx[g == lab], minlength=nbins) for lab in labels}
    common = np.logical_and.reduce([counts[lab] > 0 for lab in labels])
    if not common.any():
        raise ValueError(f"no complexity bin holds models of every group {labels}: the groups' complexity "
                         "ranges do not overlap; use fewer --bins or compare without --complexity")
    pooled = np.bincount(idx, minlength=nbins).astype(float)
    t = np.where(common, 1.0, 0.0) if target == "uniform" else np.where(common, pooled, 0.0)
    t = t / t.sum()
    w = np.zeros(len(c))
    for lab in labels:
        m = g == lab
        n_gb = counts[lab][idx[m]]
        w[m] = np.where(common[idx[m]], t[idx[m]] / np.maximum(n_gb, 1), 0.0)
    index = complexity.index if isinstance(complexity, pd.Series) else None
    return pd.Series(w, index=index, name="weight")


# -- sub-spaces ------------------------------------------------------------------------------------------

def op_presence(space: Any, archs: Any, op: str) -> np.ndarray:
    """True where the architecture string chose the option labelled ``op`` in at least one decision
    (e.g. an NB201 cell with a ``nor_conv_3x3`` edge)."""
    decisions = list(space.decisions)
    if not any(op in d.choices for d in decisions):
        ops = sorted({c for d in decisions for c in d.choices})
        raise ValueError(f"--contains {op!r}: no decision of space {space.name!r} has that option; options: {ops}")
    hits = np.empty(len(archs), dtype=bool)
    for i, text in enumerate(archs):
        try:
            row = space.from_str(str(text)).indices
        except ValueError as e:
            raise ValueError(f"row {i}: {text!r} is not an architecture of space {space.name!r}: {e}") from None
        hits[i] = any(d.choices[j] == op for d, j in zip(decisions, row))
    return hits


def _column(table: pd.DataFrame, name: str, what: str, prefix: str) -> str:
    if name in table.columns:
        return name
    if f"{prefix}{name}" in table.columns:
        return f"{prefix}{name}"
    raise ValueError(f"the table has no column {name!r} ({what}); columns: {sorted(map(str, table.columns))[:30]}")


def edf_table(table: pd.DataFrame, group: str | Sequence[Any] | pd.Series | np.ndarray | None = None, *,
              other: pd.DataFrame | None = None, metric: str, complexity_column: str | None = None,
              bins: int | Sequence[float] = 10, log_bins: bool = True, target: str = "uniform",
              error_from: str = "auto", labels: tuple[str, str] = ("table", "table2")) -> pd.DataFrame:
    """One row per model: ``group``, ``error``, ``weight`` (summing to 1 per group; 1/n unless normalised),
    and with ``complexity_column`` also ``complexity`` and ``bin``.

    Groups: ``group`` names a column (or gives one label per row); or ``other`` is a second table and the
    groups are the two tables, named by ``labels``.  ``metric`` and ``complexity_column`` may omit a log's
    ``metric_``/``cost_`` prefix.  Rows without a metric value are dropped (the caller can count them);
    a missing complexity is an error.  ``group`` (categorical) is ordered: the two tables' order, a
    categorical ``group``'s categories, else sorted labels.
    """
    parts: list[tuple[pd.DataFrame, str | None]]
    if other is not None:
        if group is not None:
            raise ValueError("give either group (--group-by/--contains) or a second table (--table2), not both")
        parts = [(table, labels[0]), (other, labels[1])]
        if labels[0] == labels[1]:
            raise ValueError(f"the two tables need different labels; got {labels}")
    else:
        if group is None:
            raise ValueError("no groups: give group (--group-by COL or --contains OP) or a second table (--table2)")
        parts = [(table, None)]
    frames = []
    order: list[str] | None = list(labels) if other is not None else None
    for tab, lab in parts:
        mcol = _column(tab, metric, "--metric", "metric_")
        f = pd.DataFrame({"metric": tab[mcol].to_numpy(dtype=float)})
        if lab is not None:
            f["group"] = lab
        elif isinstance(group, str):
            gcol = _column(tab, group, "--group-by", "")
            if tab[gcol].isna().any():
                raise ValueError(f"column {gcol!r} (--group-by) has {int(tab[gcol].isna().sum())} missing values: "
                                 "fill or drop those rows")
            f["group"] = tab[gcol].astype(str).to_numpy()
        else:
            if isinstance(group, pd.Categorical) or isinstance(getattr(group, "dtype", None), pd.CategoricalDtype):
                order = [str(c) for c in pd.Categorical(group).categories]
            gv = np.asarray(group, dtype=object).ravel()
            if len(gv) != len(tab):
                raise ValueError(f"{len(gv)} group labels for a table of {len(tab)} rows")
            if pd.isna(gv).any():
                raise ValueError(f"{int(pd.isna(gv).sum())} group labels are missing: label every row")
            f["group"] = [str(v) for v in gv]
        if complexity_column is not None:
            ccol = _column(tab, complexity_column, "--complexity", "cost_")
            f["complexity"] = tab[ccol].to_numpy(dtype=float)
        frames.append(f)
    long = pd.concat(frames, ignore_index=True)
    long = long[np.isfinite(long["metric"].to_numpy())].reset_index(drop=True)
    rule = resolve_error_rule(metric, long["metric"], error_from)
    long["error"] = to_error(long["metric"], rule)
    counts = long["group"].value_counts()
    if order is None:
        order = sorted(counts.index)
    counts = counts.reindex(order, fill_value=0)
    small = {str(k): int(v) for k, v in counts.items() if v < 2}
    if small:
        raise ValueError(f"group(s) with fewer than 2 models (with a metric value): {small}; "
                         "an EDF comparison needs at least 2 models per group")
    if complexity_column is not None:
        bad = int((~np.isfinite(long["complexity"].to_numpy())).sum())
        if bad:
            raise ValueError(f"{bad} model(s) have no {complexity_column!r} (--complexity): compute it for every "
                             "model or compare without --complexity")
        long["bin"], _ = complexity_bins(long["complexity"], bins, log=log_bins)
        long["weight"] = normalised_weights(long["complexity"], long["group"], bins, log=log_bins,
                                            target=target).to_numpy()
    else:
        long["weight"] = 1.0 / long["group"].map(counts).to_numpy(dtype=float)
    long["group"] = pd.Categorical(long["group"], categories=order)
    return long.drop(columns="metric")


def _groups(long: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """Groups in the table's order: its categories when ``group`` is categorical, else sorted."""
    return [(str(k), g) for k, g in long.groupby("group", sort=True, observed=True)]


def ks_pairs(long: pd.DataFrame) -> pd.DataFrame:
    """KS statistic for every pair of groups of an :func:`edf_table` (weighted when it has ``bin``)."""
    weighted = "bin" in long.columns
    groups = _groups(long)
    if len(groups) < 2:
        raise ValueError(f"a KS comparison needs at least 2 groups; got {[k for k, _ in groups]}")
    rows = []
    for (ka, ga), (kb, gb) in itertools.combinations(groups, 2):
        ks = ks_statistic(ga["error"], gb["error"], ga["weight"] if weighted else None,
                          gb["weight"] if weighted else None)
        rows.append({"group_a": ka, "group_b": kb, **ks})
    return pd.DataFrame(rows)


def group_summary(long: pd.DataFrame, probs: Sequence[float] = QUANTILES) -> pd.DataFrame:
    """Per group: ``n`` models, ``n_outside_support`` (weight 0), Kish ``n_eff``, and the error at each
    EDF level p (columns ``q<p>``), weighted as in the table."""
    rows = []
    for k, g in _groups(long):
        w = g["weight"].to_numpy()
        q = edf_quantiles(g["error"], w, probs)
        rows.append({"group": k, "n": len(g), "n_outside_support": int((w == 0).sum()), "n_eff": _kish(w),
                     **{f"q{p}": v for p, v in q.items()}})
    return pd.DataFrame(rows)


def compare_edfs(table: pd.DataFrame, group: str | Sequence[Any] | pd.Series | np.ndarray | None = None, *,
                 other: pd.DataFrame | None = None, metric: str, complexity_column: str | None = None,
                 bins: int | Sequence[float] = 10, log_bins: bool = True, target: str = "uniform",
                 error_from: str = "auto", labels: tuple[str, str] = ("table", "table2")) -> pd.DataFrame:
    """KS comparison of the groups' error EDFs (complexity-normalised with ``complexity_column``): one
    row per pair with the keys of :func:`ks_statistic`; arguments as :func:`edf_table`."""
    return ks_pairs(edf_table(table, group, other=other, metric=metric, complexity_column=complexity_column,
                              bins=bins, log_bins=log_bins, target=target, error_from=error_from, labels=labels))


# -- report section --------------------------------------------------------------------------------------

def _plot(long: pd.DataFrame, path: Path, xlabel: str, normalised: bool) -> bool:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # matplotlib is a dev extra
        return False
    fig, ax = plt.subplots(figsize=(6, 3.6), dpi=110)
    for k, g in _groups(long):
        raw = edf(g["error"])
        line, = ax.step(raw["error"], raw["cdf"], where="post", lw=1.0 if normalised else 1.5,
                        ls="--" if normalised else "-", label=None if normalised else f"{k} (n={len(g)})")
        if normalised:
            w = edf(g["error"], g["weight"])
            ax.step(w["error"], w["cdf"], where="post", lw=1.5, color=line.get_color(),
                    label=f"{k} (n={len(g)}, normalised)")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("cumulative prob.")
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True


def _fmt(v: Any) -> str:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return ""
    return f"{v:.3g}" if isinstance(v, float) else str(v)


_SECTION_PARAMS = {"group_by": str, "complexity": str, "bins": int, "target": str, "error_from": str}


def edf_section(df: pd.DataFrame, study: dict[str, Any], run_dir: str | Path) -> str:
    """Report section ``edf``: each searcher's error EDF over the models it evaluated (all repeats pooled,
    duplicates counted, ok rows), complexity-normalised over ``cost_params`` (else ``cost_macs``) when every
    model has a positive value; the curves in ``edf.png``, quantiles and the pairwise KS table.

    ``[analysis.edf]`` may set ``group_by`` (a log column, default ``"searcher"``, or ``"contains:OP"``: the
    sub-spaces of architectures with and without op ``OP``), ``complexity``
    (``"auto"``, ``"none"`` or a column), ``bins`` (10), ``target`` (``"uniform"``) and ``error_from``
    (default: ``"error"`` for ``mode = "min"``, else ``"auto"``).
    """
    st = study.get("study", {})
    from .analyses import section_params
    params = section_params(study, "edf", _SECTION_PARAMS)
    objective = st.get("objective")
    if not objective:
        raise ValueError("the edf analysis needs [study] objective (the metric whose error EDF is drawn)")
    ok = df[df["status"] == "ok"] if "status" in df.columns else df
    col = f"metric_{objective}"
    if col not in ok.columns:
        raise ValueError(f"the edf analysis: the log has no {col!r} column for [study] objective {objective!r}")
    by = params.get("group_by", "searcher")
    if by.startswith("contains:"):
        # sub-spaces: architectures with / without an op (e.g. "contains:nor_conv_3x3")
        from .studyfile import study_space
        space = study_space(study)
        op = by.split(":", 1)[1]
        ok = ok.assign(**{by: np.where(op_presence(space, ok["arch"].tolist(), op), f"with {op}", f"without {op}")})
    elif by not in ok.columns:
        raise ValueError(f"[analysis.edf] group_by = {by!r} is neither a column of the log nor 'contains:OP'")
    ok = ok[np.isfinite(ok[col].to_numpy(dtype=float))]
    rule = resolve_error_rule(objective, ok[col], params.get("error_from",
                                                             "error" if st.get("mode", "max") == "min" else "auto"))
    bins, target = params.get("bins", 10), params.get("target", "uniform")
    lines = ["## Error EDFs (Radosavovic et al. 2019)", ""]
    counts = ok[by].astype(str).value_counts(sort=False)
    skipped = {k: int(v) for k, v in counts.items() if v < 2}
    ok = ok[ok[by].astype(str).isin([k for k, v in counts.items() if v >= 2])]
    if skipped:
        lines += [f"Left out (fewer than 2 evaluated models): {skipped}.", ""]
    if ok.empty:
        return "\n".join(lines + [f"No {by} has 2 or more evaluated models.", ""])
    want = params.get("complexity", "auto")
    if want == "auto":
        cx = next((c for c in ("cost_params", "cost_macs") if c in ok.columns and np.isfinite(
            v := ok[c].to_numpy(dtype=float)).all() and (v > 0).all()), None)
    else:
        cx = None if want == "none" else want
    one_group = ok[by].nunique() < 2
    cx = None if one_group else cx
    try:
        long = edf_table(ok, by, metric=col, complexity_column=cx, bins=bins, target=target, error_from=rule)
    except ValueError as e:
        if cx is None or want != "auto":
            raise
        lines += [f"Complexity normalisation over `{cx}` is impossible ({e}); the EDFs below are not normalised.",
                  ""]
        cx = None
        long = edf_table(ok, by, metric=col, error_from=rule)
    err_name = {"percent": f"100 - {objective}", "fraction": f"1 - {objective}", "error": objective}[rule]
    lines.append(f"Error = {err_name}; F(e) = share of a {by}'s evaluated models (repeats pooled, duplicates "
                 "counted) with error below e. "
                 + (f"Normalised: weights equalise each {by}'s `{cx}` histogram ({bins} log-space bins, {target} "
                    f"target, on the bins every {by} populates); dashed = unnormalised." if cx else
                    "Not complexity-normalised."))
    lines += ["", f"| {by} | n | n outside support | n_eff | error at F=0.1 | F=0.5 | F=0.9 |", "|" + "---|" * 7]
    for r in group_summary(long).to_dict("records"):
        lines.append(f"| {r['group']} | {r['n']} | {r['n_outside_support']} | {r['n_eff']:.1f} | {r['q0.1']:.3f} "
                     f"| {r['q0.5']:.3f} | {r['q0.9']:.3f} |")
    lines.append("")
    if one_group:
        lines += [f"One {by}: no KS comparison.", ""]
    else:
        pairs = ks_pairs(long)
        lines += ["| a | b | KS D | p-value | approx. p (Kish n_eff) |", "|---|---|---|---|---|"]
        for r in pairs.itertuples(index=False):
            lines.append(f"| {r.group_a} | {r.group_b} | {r.D:.4f} | {_fmt(r.p_value)} | {_fmt(r.p_value_approx)} |")
        lines += ["", f"p-value: {pairs['p_value_method'].iloc[0]}.", ""]
    png = Path(run_dir) / "edf.png"
    if _plot(long, png, f"error ({err_name})", cx is not None):
        lines += [f"![error EDFs]({png.name})", ""]
    return "\n".join(lines)


# -- nasatlas analyze edf --------------------------------------------------------------------------------

def add_arguments(p: Any) -> None:
    """Options of ``nasatlas analyze edf``."""
    from .analyze_common import add_table_arguments
    add_table_arguments(p)
    p.add_argument("--table2", default=None, help="a second table: compare the two tables' EDFs")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--group-by", default=None, help="compare the groups of this column (e.g. searcher)")
    g.add_argument("--contains", default=None, metavar="OP",
                   help="compare architectures with at least one OP choice against those without")
    p.add_argument("--complexity", default=None, help="normalise over this column (params, flops, cost_macs, ...)")
    p.add_argument("--bins", type=int, default=10, help="complexity bins (log space unless --linear-bins)")
    p.add_argument("--linear-bins", action="store_true", help="bin the complexity linearly, not in log space")
    p.add_argument("--target", choices=TARGETS, default="uniform", help="target complexity distribution")
    p.add_argument("--error-from", choices=ERROR_FROM, default="auto",
                   help="percent: 100 - metric; fraction: 1 - metric; error: the metric is an error; auto: by name")


def run_cli(args: Any) -> dict[str, Any]:
    """``nasatlas analyze edf``: ``metric``, ``error_rule`` (percent/fraction/error), ``groups`` (n per
    group), ``normalised``, ``complexity``, ``bins``, ``target``, ``n_missing`` (rows without a metric
    value), ``n_outside_support`` and ``n_eff`` per group, ``quantiles`` (per group: errors at F = 0.1,
    0.5, 0.9), ``ks`` and ``p_value``/``p_value_approx`` (with exactly 2 groups, else None),
    ``p_value_method``, and ``pairs`` (every pair's KS result)."""
    from .analyze_common import read_table
    table = read_table(args.table)
    other = read_table(args.table2) if args.table2 else None
    group: Any = None
    labels = ("table", "table2")
    if other is not None:
        if args.group_by or args.contains:
            raise ValueError("--table2 compares two tables: drop --group-by/--contains (or give only --table)")
        n1, n2 = Path(args.table).stem, Path(args.table2).stem
        labels = (n1, n2) if n1 != n2 else labels
    elif args.group_by:
        group = args.group_by
    elif args.contains:
        from nasatlas.spaces.declaration import load_space
        if args.arch_column not in table.columns:
            raise ValueError(f"the table has no column {args.arch_column!r} (--arch-column); "
                             f"columns: {list(table.columns)}")
        hit = op_presence(load_space(args.space), table[args.arch_column].tolist(), args.contains)
        with_, without = f"with {args.contains}", f"without {args.contains}"
        group = pd.Categorical(np.where(hit, with_, without), categories=[with_, without])
    else:
        raise ValueError("nothing to compare: give --table2, --group-by COL or --contains OP")
    tables = [t for t in (table, other) if t is not None]
    mcol = _column(table, args.metric, "--metric", "metric_")
    rule = resolve_error_rule(args.metric, pd.concat([t[_column(t, args.metric, "--metric", "metric_")]
                                                      for t in tables]), args.error_from)
    long = edf_table(table, group, other=other, metric=args.metric, complexity_column=args.complexity,
                     bins=args.bins, log_bins=not args.linear_bins, target=args.target, error_from=rule,
                     labels=labels)
    n_rows = sum(len(t) for t in tables)
    summary = group_summary(long)
    pairs = ks_pairs(long)
    two = len(summary) == 2
    return {
        "metric": mcol,
        "error_rule": rule,
        "groups": {r.group: int(r.n) for r in summary.itertuples(index=False)},
        "normalised": args.complexity is not None,
        "complexity": args.complexity,
        "bins": args.bins if args.complexity is not None else None,
        "target": args.target if args.complexity is not None else None,
        "n_missing": n_rows - len(long),
        "n_outside_support": {r.group: int(r.n_outside_support) for r in summary.itertuples(index=False)},
        "n_eff": {r.group: float(r.n_eff) for r in summary.itertuples(index=False)},
        "quantiles": {r["group"]: {p: float(r[f"q{p}"]) for p in map(str, QUANTILES)}
                      for r in summary.to_dict("records")},
        "ks": float(pairs["D"].iloc[0]) if two else None,
        "p_value": pairs["p_value"].iloc[0] if two else None,
        "p_value_approx": pairs["p_value_approx"].iloc[0] if two else None,
        "p_value_method": str(pairs["p_value_method"].iloc[0]),
        "pairs": [{k: (None if v is None or (isinstance(v, float) and np.isnan(v)) else v)
                   for k, v in r.items()} for r in pairs.to_dict("records")],
    }
