"""The run report: the protocol first, then the numbers with their confidence intervals.

``nasatlas report RUN_DIR`` (re)builds ``report.md`` at the top of the run directory from the
log and the study file saved beside it; analyses never train, so a report can be rebuilt at any
time, also while a run is in progress.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from .summary import load_run, results_table

__all__ = ["write_report", "render_report"]


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return "n/a" if math.isnan(v) else f"{v:.4g}"
    return str(v).replace("|", "\\|")


def _table(df: Any) -> str:
    cols = list(df.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in df.itertuples(index=False):
        lines.append("| " + " | ".join(_fmt(v) for v in row) + " |")
    return "\n".join(lines)


def calibration_line(study: dict[str, Any]) -> str | None:
    """For a study that trains with the ``train`` evaluator: the calibrated signal-to-noise ratio of
    its protocol (``studies/calibration.json``), or a warning that its protocol is not calibrated."""
    ev = study.get("evaluator", {})
    if ev.get("name") != "train":
        return None
    from .calibration import calibrated_protocol
    try:
        cal = calibrated_protocol()
    except (FileNotFoundError, ValueError):
        return "no shipped calibration found (run `nasatlas study calibrate`)"
    params = {k: v for k, v in ev.get("params", {}).items() if k not in ("data",)}
    same = all(cal["protocol"].get(k) == v for k, v in params.items()) and "data" not in study
    if same:
        return (f"this is the calibrated CPU protocol: spread across random cells / seed-to-seed std = "
                f"{cal['ratio']:.2f} (required >= 3; {cal['source']})")
    return (f"this protocol differs from the calibrated default {cal['protocol']} (ratio {cal['ratio']:.2f}); "
            "its spread-to-noise ratio is not measured: run `nasatlas study calibrate` with it")


def render_report(run_dir: str | Path) -> str:
    """Markdown text of a run's report."""
    from .studyfile import study_space
    run = Path(run_dir)
    df, study = load_run(run)
    st = study.get("study", {})
    sp = study.get("space", {})
    lines = [f"# {st.get('name', run.name)}", ""]
    if st.get("description"):
        lines += [st["description"], ""]
    lines += ["## Protocol", ""]
    info_path = run / "run.json"
    if info_path.is_file():
        import json
        info = json.loads(info_path.read_text())
        secs = float(info.get("seconds", 0.0))
        lines.append(f"- runtime (search and evaluations, this report's analyses not included): {secs:,.0f} s "
                     f"({secs / 60:.1f} min) for the last invocation"
                     + (f", profile `{info['profile']}`" if info.get("profile") else "")
                     + f", on {info.get('cpus')} CPU cores ({info.get('machine')}, host {info.get('host')}); "
                     f"{info.get('evaluated')} evaluated, {info.get('replayed')} replayed from the log")
    lines.append(f"- study file: `{run / 'study.toml'}` (resolved: `study.resolved.json`)")
    lines.append(f"- seed: {st.get('seed', 0)}; repeats: {st.get('repeats', 1)}; batch size: {st.get('batch_size', 1)}")
    lines.append(f"- budget: {study.get('budget', {})}")
    try:
        space = study_space(study)
        card = space.cardinality()
        uniq = space.unique_cardinality() if card <= 2_000_000 else None
        lines.append(f"- space: `{space.name}` {sp.get('params', '') or ''} — {card:,} architectures"
                     + (f", {uniq:,} unique" if uniq is not None else ""))
    except (ValueError, TypeError) as e:
        lines.append(f"- space: {sp} ({e})")
    ev = study.get("evaluator", {})
    lines.append(f"- evaluator: `{ev.get('name')}` {ev.get('params', {})}")
    if "data" in study:
        lines.append(f"- data: `{study['data'].get('name')}` {study['data'].get('params', {})}")
    for x in study.get("extra_evaluators", []):
        lines.append(f"- extra evaluator `{x.get('label')}`: `{x.get('name')}` {x.get('params', {})}")
    for s in study.get("searchers", []):
        lines.append(f"- searcher `{s.get('label', s.get('name'))}`: `{s.get('name')}` {s.get('params', {})}")
    lines.append(f"- objective: {st.get('objective') or '(none)'} ({st.get('mode', 'max')})")
    cal = calibration_line(study)
    if cal:
        lines.append(f"- calibration: {cal}")
    lines += ["", "## Results", ""]
    if df.empty:
        lines.append("The log is empty.")
    else:
        lines.append(f"{len(df)} evaluations logged ({int((df['status'] != 'ok').sum())} failed). "
                     "Best = best objective within each repeat; ± = half-width of the 95% Student-t "
                     "confidence interval over repeats (n/a for one repeat).")
        lines += ["", _table(results_table(run)), ""]
        if st.get("objective"):
            lines += ["### Best architecture per searcher and repeat", "", _table(results_table(run, best=True)), ""]
        secs = df.get("cost_train_seconds")
        if secs is not None and secs.notna().any():
            lines.append(f"Training time: {secs.sum():.1f} s in total, {secs.mean():.2f} s per evaluation.")
        if st.get("analyses"):
            from .analyses import run_analyses
            lines += ["", *run_analyses(list(st["analyses"]), df, study, run)]
    return "\n".join(lines) + "\n"


def plot_best_so_far(run_dir: str | Path) -> Path | None:
    """``best_so_far.png``: the best objective after each evaluation, per searcher (mean over repeats,
    shaded min–max). None when matplotlib is missing, there is no objective, or nothing is logged."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    import numpy as np
    run = Path(run_dir)
    df, study = load_run(run)
    st = study.get("study", {})
    col = f"metric_{st.get('objective') or ''}"
    if df.empty or col not in df.columns:
        return None
    sign = 1.0 if st.get("mode", "max") == "max" else -1.0
    fig, ax = plt.subplots(figsize=(6, 3.6), dpi=110)
    for label, g in df.groupby("searcher", sort=True):
        curves = []
        for _, r in g.sort_values("trial").groupby("repeat"):
            v = sign * r[col].where(r["status"] == "ok").astype(float).to_numpy()
            v = np.where(np.isnan(v), -np.inf, v)
            curves.append(sign * np.maximum.accumulate(v))
        n = min(len(c) for c in curves)
        arr = np.vstack([c[:n] for c in curves])
        arr = np.where(np.isfinite(arr), arr, np.nan)
        x = np.arange(1, n + 1)
        line, = ax.plot(x, np.nanmean(arr, 0), label=str(label))
        if len(curves) > 1:
            ax.fill_between(x, np.nanmin(arr, 0), np.nanmax(arr, 0), alpha=0.2, color=line.get_color())
    ax.set_xlabel("evaluations")
    ax.set_ylabel(f"best {st.get('objective')} so far")
    ax.legend()
    fig.tight_layout()
    path = run / "best_so_far.png"
    fig.savefig(path)
    plt.close(fig)
    return path


def write_report(run_dir: str | Path) -> Path:
    """Write ``report.md``, ``report.html`` and the plots at the top of the run directory; return the
    Markdown path."""
    from .report_html import markdown_to_html
    run = Path(run_dir)
    text = render_report(run)
    png = plot_best_so_far(run)
    if png is not None:
        text += f"\n![best so far]({png.name})\n"
    path = run / "report.md"
    path.write_text(text)
    (run / "report.html").write_text(markdown_to_html(text, title=f"nasatlas: {run.name}"))
    return path
