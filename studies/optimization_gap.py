"""The optimization gap: does a supernet rank architectures the way stand-alone training does?

For N architectures scored twice — by stand-alone training (the truth) and with weights inherited
from a supernet (one score per saved supernet epoch) — on the same data and split:

* Kendall's tau-b and Spearman's rho between the two scores;
* sparse Kendall tau (Yu et al. 2020, "Evaluating the effectiveness of weight-sharing", Sec. 4.1):
  tau after rounding both accuracies to 0.1 percentage point, so that differences within noise count
  as ties;
* precision@K: the share of the true top-K among the supernet's top-K (ties at the K-th place
  counted in expectation);
* the supernet's pick: its stand-alone rank (1 + the number of strictly better architectures) and
  regret (best stand-alone accuracy minus that of the pick);
* percentile bootstrap 95% intervals over architectures (Efron & Tibshirani 1993, Ch. 13) from a
  seeded generator;
* the noise ceiling: the same statistics between two stand-alone seeds of the same architectures (no
  supernet can rank better than training does against itself);
* the depth gap: stand-alone at search depth vs at evaluation depth.

Reference points printed in the report as published figures (not computed here): Zhang et al. 2020
("Deeper insights into weight sharing in NAS") report Kendall tau about 0.5 between weight-sharing and
stand-alone rankings on a 64-architecture space; Sciuto et al. 2019 ("Evaluating the search phase of
NAS") find that ENAS, DARTS and NAO do not beat a random policy on PTB.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .predictors import top_k_inclusion

__all__ = ["precision_at_k", "sparse_kendall_tau", "rank_statistics", "bootstrap_ci", "ranking_table",
           "optimization_gap_section"]


def _check_pair(a: Any, b: Any, what: str = "scores") -> tuple[np.ndarray, np.ndarray]:
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"{what}: two 1-D arrays of equal length are needed, got shapes {x.shape} and {y.shape}")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValueError(f"{what}: non-finite values; drop failed evaluations first")
    if len(x) < 3:
        raise ValueError(f"{what}: {len(x)} architectures are too few for a rank correlation (need >= 3)")
    return x, y


def precision_at_k(truth: Any, score: Any, k: int) -> float:
    """Expected share of the ``k`` best architectures by ``truth`` among the ``k`` best by ``score``
    (higher is better for both), ties at either boundary broken uniformly at random and independently
    — exact in expectation, independent of row order (accuracies on a small validation set tie often).
    Unlike :func:`nasatlas.studies.predictors.precision_at_k`, which counts every architecture tied at the
    K-th true value as "true top", ties in the truth here are broken at random too: both scores are noisy
    accuracies."""
    t, s = _check_pair(truth, score, "precision@K")
    if not 1 <= k <= len(t):
        raise ValueError(f"precision@K: k={k} must be between 1 and the number of architectures {len(t)}")
    return float((top_k_inclusion(t, k) * top_k_inclusion(s, k)).sum() / k)


def sparse_kendall_tau(truth: Any, score: Any, decimals: int = 1) -> float:
    """Kendall tau-b after rounding both scores (accuracies in %) to ``decimals`` places."""
    from scipy.stats import kendalltau
    t, s = _check_pair(truth, score, "sparse Kendall tau")
    tau = kendalltau(np.round(t, decimals), np.round(s, decimals)).statistic
    return float(tau)


def rank_statistics(truth: Any, score: Any, k: int) -> dict[str, float]:
    """Kendall tau, sparse tau, Spearman, precision@K, and the stand-alone rank and regret of the
    architecture ``score`` ranks first."""
    from scipy.stats import kendalltau, spearmanr
    t, s = _check_pair(truth, score)
    pick = int(np.argmax(s))
    return {"kendall_tau": float(kendalltau(t, s).statistic), "sparse_kendall_tau": sparse_kendall_tau(t, s),
            "spearman": float(spearmanr(t, s).statistic), "precision_at_k": precision_at_k(t, s, k),
            "pick_rank": int((t > t[pick]).sum()) + 1, "regret": float(t.max() - t[pick])}


def bootstrap_ci(stat: Callable[[np.ndarray, np.ndarray], float], truth: Any, score: Any,
                 rng: np.random.Generator, n_boot: int = 1000, level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of ``stat(truth, score)`` resampling architectures with
    replacement (resamples where the statistic is undefined are dropped)."""
    t, s = _check_pair(truth, score, "bootstrap")
    n = len(t)
    vals = []
    for _ in range(n_boot):
        idx = rng.integers(0, n, n)
        with np.errstate(invalid="ignore", divide="ignore"):
            v = stat(t[idx], s[idx])
        if np.isfinite(v):
            vals.append(v)
    if not vals:
        raise ValueError("bootstrap: the statistic is undefined on every resample (constant scores?)")
    lo, hi = np.quantile(vals, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


def _tau(t: np.ndarray, s: np.ndarray) -> float:
    from scipy.stats import kendalltau
    return float(kendalltau(t, s).statistic)


def ranking_table(df: pd.DataFrame, truth: str, scores: Sequence[str], *, k: int | None = None,
                  rng: np.random.Generator, n_boot: int = 1000) -> pd.DataFrame:
    """One row per score column: :func:`rank_statistics` against ``truth`` with a bootstrap interval of
    Kendall tau, over the rows where both are present.

    Raises:
        ValueError: a missing column, or fewer than 3 architectures with both scores.
    """
    missing = [c for c in (truth, *scores) if c not in df.columns]
    if missing:
        raise ValueError(f"optimization gap: the log lacks column(s) {missing}; columns: {sorted(df.columns)[:40]}")
    out = []
    for col in scores:
        both = df[[truth, col]].dropna()
        kk = k or max(1, len(both) // 10)
        st = rank_statistics(both[truth].to_numpy(), both[col].to_numpy(), min(kk, len(both)))
        lo, hi = bootstrap_ci(_tau, both[truth].to_numpy(), both[col].to_numpy(), rng, n_boot)
        out.append({"score": col, "n": len(both), "k": min(kk, len(both)), **st, "kendall_tau_lo": lo,
                    "kendall_tau_hi": hi})
    return pd.DataFrame(out)


_EPOCH = re.compile(r"metric_(.+?)_e(\d+)_")


def _supernet_columns(df: pd.DataFrame, objective: str) -> list[tuple[int, str]]:
    cols = []
    for c in df.columns:
        m = _EPOCH.match(c)
        if m and c.endswith(f"_{objective}"):
            cols.append((int(m.group(2)), c))
    return sorted(cols)


def optimization_gap_section(df: pd.DataFrame, study: dict[str, Any], run_dir: str | Path) -> str:
    """Markdown section ``optimization_gap`` (parameters in ``[analysis.optimization_gap]``: ``searcher``
    (label of the searcher whose architectures are ranked; default the first one that is not one-shot),
    ``noise`` and ``shallow`` (labels of the second-seed and search-depth stand-alone extra evaluators),
    ``k``, ``bootstrap``, ``seed``)."""
    from .oneshot_report import epochs_table
    params = dict(study.get("analysis", {}).get("optimization_gap", {}))
    objective = str(study.get("study", {}).get("objective", "valid_acc"))
    run = Path(run_dir)
    ok = df[df["status"] == "ok"] if "status" in df.columns else df
    label = params.get("searcher")
    if label is None:
        comps = [s for s in study.get("searchers", []) if s.get("name") not in
                 ("darts", "gdas", "proxylessnas", "autodeeplab", "random_ws", "spos")]
        label = comps[0].get("label", comps[0]["name"]) if comps else None
    rows = ok[ok["searcher"] == label] if label is not None else ok.iloc[:0]
    lines = ["## Optimization gap", ""]
    if len(rows) < 3:
        return "\n".join(lines + [f"Too few ranked architectures (searcher {label!r}: {len(rows)}; need >= 3).", ""])
    truth = f"metric_{objective}"
    ws = _supernet_columns(rows, objective)
    noise = params.get("noise", "seed2")
    shallow = params.get("shallow", "shallow")
    scores = [c for _, c in ws]
    extra = [c for c in (f"metric_{noise}_{objective}", f"metric_{shallow}_{objective}") if c in rows.columns]
    rng = np.random.default_rng(int(params.get("seed", 0)))
    table = ranking_table(rows, truth, scores + extra, k=params.get("k"), rng=rng, n_boot=int(params.get("bootstrap",
                                                                                                          1000)))
    names = {c: f"supernet after {e} epochs" for e, c in ws}
    names.update({f"metric_{noise}_{objective}": "noise ceiling: stand-alone, second seed",
                  f"metric_{shallow}_{objective}": "depth gap: stand-alone at search depth"})
    lines += [f"{len(rows)} architectures of searcher `{label}`, each trained stand-alone (`{truth}`, the truth) and "
              "scored with inherited weights after BN recalibration from the supernet saved after each epoch count. "
              "Kendall tau with its 95% percentile-bootstrap interval over architectures; sparse tau rounds "
              "accuracies to 0.1 point; P@K = share of the true top-K among the score's top-K; pick = stand-alone "
              "rank (1 = best) and regret (points) of the score's best architecture.", "",
              "| score | n | Kendall τ [95% CI] | sparse τ | Spearman | P@K (K) | pick rank | regret |",
              "|---|---|---|---|---|---|---|---|"]
    for r in table.itertuples():
        lines.append(f"| {names.get(r.score, r.score)} | {r.n} | {r.kendall_tau:.3f} [{r.kendall_tau_lo:.3f}, "
                     f"{r.kendall_tau_hi:.3f}] | {r.sparse_kendall_tau:.3f} | {r.spearman:.3f} | "
                     f"{r.precision_at_k:.2f} ({r.k}) | {r.pick_rank} | {r.regret:.2f} |")
    lines += ["", "Published reference points (quoted, not computed here): Zhang et al. 2020 report Kendall τ ≈ 0.5 "
              "between weight-sharing and stand-alone rankings on a 64-architecture space; Sciuto et al. 2019 find "
              "that ENAS, DARTS and NAO do not beat a random policy on PTB.", ""]
    ep = epochs_table(run)
    if not ep.empty:
        lines += ["Discretisation loss per epoch (mean over repeats, validation split): supernet accuracy under its "
                  "own mixing vs the derived subnet with inherited weights before and after BN recalibration.", "",
                  "| searcher | epoch | supernet | subnet inherited | subnet BN-recal. |", "|---|---|---|---|---|"]
        for r in ep.itertuples():
            lines.append(f"| {r.searcher} | {r.epoch + 1} | {getattr(r, 'supernet_accuracy', float('nan')):.3f} | "
                         f"{getattr(r, 'subnet_accuracy_inherited', float('nan')):.3f} | "
                         f"{getattr(r, 'subnet_accuracy_recalibrated', float('nan')):.3f} |")
        lines.append("")
    png = _plot(table, ws, names, run)
    if png is not None:
        lines += [f"![Kendall tau per supernet epoch]({png.name})", ""]
    return "\n".join(lines)


def _plot(table: pd.DataFrame, ws: list[tuple[int, str]], names: dict[str, str], run: Path) -> Path | None:
    if not ws:
        return None
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    t = table.set_index("score")
    epochs = [e for e, _ in ws]
    tau = [t.loc[c, "kendall_tau"] for _, c in ws]
    lo = [t.loc[c, "kendall_tau_lo"] for _, c in ws]
    hi = [t.loc[c, "kendall_tau_hi"] for _, c in ws]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.errorbar(epochs, tau, yerr=[np.subtract(tau, lo), np.subtract(hi, tau)], marker="o", capsize=3,
                label="supernet vs stand-alone")
    for c, style in zip([c for c in t.index if not any(c == w for _, w in ws)], ("--", ":")):
        ax.axhline(float(t.loc[c, "kendall_tau"]), ls=style, color="grey", label=names.get(c, c))
    ax.set_xlabel("supernet training epochs")
    ax.set_ylabel("Kendall τ")
    ax.set_ylim(-1, 1)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = run / "optimization_gap_tau.png"
    fig.savefig(path)
    plt.close(fig)
    return path
