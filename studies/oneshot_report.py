"""The ``oneshot`` analysis: what one-shot searchers did during search and what their cells are worth.

Reads the per-epoch tables one-shot runs write under ``<run>/search/*.parquet``
(:mod:`nasatlas.studies.oneshot`) and the evaluation log, and reports per searcher:

* the final derived cells' stand-alone score (the study's evaluator: trained from scratch on the
  study's data) beside, where the study has a ``cifar10`` tabular extra evaluator, their NAS-Bench-201
  table accuracy, labelled as *transfer to CIFAR-10* (the cells were searched on other data);
* the discretisation gap at the last epoch: supernet accuracy vs the derived subnet with inherited
  weights, before and after BN recalibration;
* the op histogram of the derived cells per epoch, and whether the share of parameter-free ops
  (``none``, ``skip_connect``, pooling) grows during search — the collapse DARTS is known for
  (Zela et al. 2020; Dong & Yang 2020, Sec. 5: DARTS on NB201 ends in all-skip cells);
* search time.

``oneshot_drift.png`` plots the parameter-free share per epoch and searcher.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["read_search_tables", "parameter_free_share", "oneshot_section", "PARAMETER_FREE"]

#: op names without parameters (the ops the DARTS collapse drifts towards)
PARAMETER_FREE = frozenset({"none", "skip_connect", "avg_pool_3x3", "max_pool_3x3", "zero", "skip"})


def read_search_tables(run_dir: str | Path) -> pd.DataFrame:
    """All per-epoch rows of a run's one-shot searches (empty frame if there are none)."""
    files = sorted((Path(run_dir) / "search").glob("*.parquet"))
    if not files:
        return pd.DataFrame()
    return pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)


def parameter_free_share(histogram: str | dict[str, int]) -> float:
    """Fraction of a derived cell's op decisions that are parameter-free."""
    h = json.loads(histogram) if isinstance(histogram, str) else histogram
    total = sum(h.values())
    return float(sum(v for k, v in h.items() if k in PARAMETER_FREE) / total) if total else float("nan")


def _mean_sd(v: pd.Series) -> str:
    v = pd.to_numeric(v, errors="coerce").dropna()
    if v.empty:
        return "–"
    return f"{v.mean():.2f} ± {v.std(ddof=1):.2f}" if len(v) > 1 else f"{v.mean():.2f}"


def _plot(ep: pd.DataFrame, run_dir: Path) -> Path | None:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # matplotlib is a dev extra
        return None
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for lab, g in ep.groupby("searcher"):
        m = g.groupby("epoch")["free_share"].mean()
        ax.plot(m.index + 1, m.values, marker="o", ms=3, label=str(lab))
    ax.set_xlabel("search epoch")
    ax.set_ylabel("parameter-free share of derived cell")
    ax.set_ylim(-0.02, 1.02)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = run_dir / "oneshot_drift.png"
    fig.savefig(path)
    plt.close(fig)
    return path


def oneshot_section(df: pd.DataFrame, study: dict[str, Any], run_dir: str | Path) -> str:
    """Markdown section of the ``oneshot`` analysis (see the module docstring)."""
    run = Path(run_dir)
    ep = read_search_tables(run)
    lines = ["## One-shot search", ""]
    if ep.empty:
        return "\n".join(lines + ["No one-shot search tables under `search/`.", ""])
    failed = ep[ep["status"] != "ok"]
    ep = ep[ep["status"] == "ok"].copy()
    ep["free_share"] = [parameter_free_share(h) for h in ep["op_histogram"]]
    objective = str(study.get("study", {}).get("objective", "valid_acc"))
    ok = df[df["status"] == "ok"] if "status" in df.columns else df
    has_cifar = "metric_cifar10_test_acc" in ok.columns
    head = ["searcher", "runs", f"stand-alone {objective}", "search s / run"]
    if has_cifar:
        head.append("NB201 CIFAR-10 test acc (transfer)")
    head += ["supernet acc", "subnet inherited", "subnet BN-recal.", "param-free share first → last"]
    lines += ["Scores of the derived cells (final epoch): stand-alone = trained from scratch by the study's "
              "evaluator on the study's data" + ("; the NB201 column is the same cell's CIFAR-10 accuracy in the "
                                                   "NAS-Bench-201 table, i.e. transfer to CIFAR-10, not the search data"
                                                   if has_cifar else "") + ". Accuracies of the supernet and of the "
              "derived subnet with inherited weights (before/after BN recalibration) are on the validation split, "
              "at the last epoch, in %.", "",
              "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    verdicts = []
    for lab, g in ep.groupby("searcher"):
        last = g.sort_values("epoch").groupby("repeat").tail(1)
        first = g[g["epoch"] == g["epoch"].min()]
        rows = ok[ok["searcher"] == lab] if "searcher" in ok.columns else ok.iloc[:0]
        final = rows.sort_values("trial").groupby("repeat").tail(1) if not rows.empty else rows
        cells = [str(lab), str(last["repeat"].nunique()),
                 _mean_sd(final.get(f"metric_{objective}", pd.Series(dtype=float))),
                 _mean_sd(last["search_seconds"])]
        if has_cifar:
            cells.append(_mean_sd(final.get("metric_cifar10_test_acc", pd.Series(dtype=float))))
        for col in ("supernet_accuracy", "subnet_accuracy_inherited", "subnet_accuracy_recalibrated"):
            cells.append(_mean_sd(100 * last[col]) if col in last else "–")
        a, b = float(first["free_share"].mean()), float(last["free_share"].mean())
        cells.append(f"{a:.2f} → {b:.2f}")
        lines.append("| " + " | ".join(cells) + " |")
        if g["epoch"].max() > 0:
            verdict = "drifts towards" if b > a + 0.05 else ("moves away from" if b < a - 0.05 else "keeps")
            verdicts.append(f"**{lab}** {verdict} parameter-free ops ({a:.0%} of the derived cell's ops after the "
                            f"first epoch, {b:.0%} after the last, mean over repeats)")
    lines.append("")
    if verdicts:
        lines += ["Drift: " + "; ".join(verdicts) + ".", ""]
    finals = ep.sort_values("epoch").groupby(["searcher", "repeat"]).tail(1)
    hist = {lab: _sum_hist(g["op_histogram"]) for lab, g in finals.groupby("searcher")}
    lines += ["Op histogram of the final derived cells (all repeats):", ""]
    for lab, h in hist.items():
        lines.append(f"- {lab}: " + ", ".join(f"{k} {v}" for k, v in sorted(h.items(), key=lambda kv: -kv[1])))
    lines.append("")
    if not failed.empty:
        lines += [f"Failed searches: {len(failed)} — " + "; ".join(
            f"{r.searcher} r{r.repeat}: {r.error}" for r in failed.itertuples()), ""]
    png = _plot(ep, run)
    if png is not None:
        lines += [f"![parameter-free share per epoch]({png.name})", ""]
    return "\n".join(lines)


def _sum_hist(series: pd.Series) -> dict[str, int]:
    out: dict[str, int] = {}
    for h in series:
        for k, v in json.loads(h).items():
            out[k] = out.get(k, 0) + int(v)
    return out


def epochs_table(run_dir: str | Path) -> pd.DataFrame:
    """Per searcher and epoch: mean parameter-free share and accuracies over repeats (for docs/plots)."""
    ep = read_search_tables(run_dir)
    if ep.empty:
        return ep
    ep = ep[ep["status"] == "ok"].copy()
    ep["free_share"] = [parameter_free_share(h) for h in ep["op_histogram"]]
    cols = [c for c in ("free_share", "supernet_accuracy", "subnet_accuracy_inherited",
                        "subnet_accuracy_recalibrated") if c in ep]
    return ep.groupby(["searcher", "epoch"])[cols].mean().reset_index().astype({"epoch": np.int64})
