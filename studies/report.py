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


def render_report(run_dir: str | Path) -> str:
    """Markdown text of a run's report."""
    from nasatlas.spaces.declaration import space_from_dict
    run = Path(run_dir)
    df, study = load_run(run)
    st = study.get("study", {})
    sp = study.get("space", {})
    decl = sp if "blocks" in sp else {"space": sp.get("name"), "params": sp.get("params", {})}
    lines = [f"# {st.get('name', run.name)}", ""]
    if st.get("description"):
        lines += [st["description"], ""]
    lines += ["## Protocol", ""]
    lines.append(f"- study file: `{run / 'study.toml'}` (resolved: `study.resolved.json`)")
    lines.append(f"- seed: {st.get('seed', 0)}; repeats: {st.get('repeats', 1)}; batch size: {st.get('batch_size', 1)}")
    lines.append(f"- budget: {study.get('budget', {})}")
    try:
        space = space_from_dict(decl)
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
    return "\n".join(lines) + "\n"


def write_report(run_dir: str | Path) -> Path:
    """Write ``report.md`` at the top of the run directory and return its path."""
    run = Path(run_dir)
    path = run / "report.md"
    path.write_text(render_report(run))
    return path
