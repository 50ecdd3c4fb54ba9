"""The ``nasatlas`` command line.

    nasatlas list spaces [--json]
    nasatlas spaces list | show NAME | sample NAME -n 5 --seed 0 | cardinality [NAME|FILE ...] [--unique] [--json]
    nasatlas spaces cost SPACE --arch STRING [--net PRESET] [--json]
    nasatlas list zoo [--json] | zoo show NAME | zoo cost NAME [--json] | zoo export NAME OUT.pt

Errors in user input print one line naming the problem and the fix, and exit with status 2.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Sequence
from typing import Any

__all__ = ["main", "build_parser"]


def _parse_params(items: Sequence[str] | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--param {item!r}: write it as key=value, e.g. --param nodes=3")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def _print_json(obj: Any) -> None:
    print(json.dumps(obj, indent=None if isinstance(obj, list) else 2))


def _cmd_list(args: argparse.Namespace) -> int:
    from .listing import list_components
    if args.what == "zoo":
        from nasatlas.spaces.zoo import get_zoo_entry, list_zoo
        rows = [{"name": n, "space": (e := get_zoo_entry(n)).space, "task": e.task,
                 "description": f"[{e.space}] {e.paper['citation']}"} for n in list_zoo()]
    else:
        rows = list_components(args.what)
    if args.json:
        _print_json(rows)
    else:
        for r in rows:
            print(f"{r['name']:<16} {r.get('description', '')}")
    return 0


def _cmd_spaces_show(args: argparse.Namespace) -> int:
    from nasatlas.spaces.declaration import load_space
    space = load_space(args.name, **_parse_params(args.param))
    desc = space.describe()
    if args.json:
        _print_json(desc)
        return 0
    print(f"{space.name}: {space.description}")
    for s in space.sources:
        print(f"  source: {s}")
    print(f"  cardinality: {space.cardinality():,}")
    for k, note in desc["counts"].items():
        print(f"  {k}: {note}")
    print(f"  {space.width} decisions:")
    for d in space.decisions:
        print(f"    {d.name:<34} {d.size:>3} options: {', '.join(d.choices)}")
    return 0


def _cmd_spaces_sample(args: argparse.Namespace) -> int:
    import numpy as np
    from nasatlas.spaces.declaration import load_space
    space = load_space(args.name, **_parse_params(args.param))
    rows = space.sample(np.random.default_rng(args.seed), args.n, over=args.over)
    strings = [space.to_str(r) for r in rows]
    if args.json:
        _print_json([{"space": space.name, "arch": s, "canonical_id": space.canonical_id(r)}
                     for s, r in zip(strings, rows)])
    else:
        print("\n".join(strings))
    return 0


def _cmd_spaces_cardinality(args: argparse.Namespace) -> int:
    from .cardinality import cardinality_rows
    rows = cardinality_rows(args.names or None, unique=args.unique)
    if args.json:
        _print_json(rows)
    else:
        for r in rows:
            extra = "  ".join(f"{k}={v:,}" if isinstance(v, int) else f"{k}={v}" for k, v in r.items()
                              if k not in ("space", "cardinality"))
            print(f"{r['space']:<14} {r['cardinality']:>48,}  {extra}")
    return 0


def _cmd_spaces_cost(args: argparse.Namespace) -> int:
    from nasatlas.spaces.build import cost_report
    from nasatlas.spaces.declaration import load_space
    space = load_space(args.space, **_parse_params(args.param))
    report = cost_report(space, space.from_str(args.arch), net=args.net)
    if args.json:
        _print_json(report)
    else:
        for k, v in report.items():
            print(f"{k:<16} {v:,}" if isinstance(v, int) else f"{k:<16} {v}")
    return 0


def _cmd_zoo(args: argparse.Namespace) -> int:
    from nasatlas.spaces import zoo
    if args.zoo_command == "show":
        _print_json(zoo.get_zoo_entry(args.name).to_dict())
    elif args.zoo_command == "cost":
        report = zoo.zoo_cost(args.name)
        if args.json:
            _print_json(report)
        else:
            for k, v in report.items():
                print(f"{k:<16} {v:,}" if isinstance(v, int) else f"{k:<16} {v}")
    else:
        print(zoo.export_zoo(args.name, args.out, input_shape=args.input, fmt=args.format))
    return 0


def _parse_vars(items: Sequence[str] | None) -> dict[str, str]:
    out = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--var {item!r}: write it as VAR=VALUE, e.g. --var NB201_TABLE=/data/nb201.parquet")
        out[key] = value
    return out


def _run(path: str, text: str, args: argparse.Namespace) -> int:
    from pathlib import Path

    from .report import write_report
    from .runner import run_study
    from .runner_async import run_study_async
    from .studyfile import parse_study, read_toml_text
    raw = read_toml_text(text, path)
    name = raw.get("study", {}).get("name", "study") if isinstance(raw.get("study"), dict) else "study"
    out = Path(args.out or Path("runs") / str(name))
    variables = {"RUN_DIR": str(out), **_parse_vars(args.var)}  # ${RUN_DIR}: this run's directory
    study = parse_study(raw, where=path, profile=args.profile, variables=variables)
    execute = run_study_async if args.free_running else run_study
    summary = execute(study, out, workers=args.workers, executor=args.executor, scheduler=args.scheduler,
                      resume=args.resume, progress=not args.quiet, study_text=text)
    _write_run_info(out, args.profile, summary)
    report = write_report(out)
    print(f"{study.name}: {summary.evaluated} evaluated, {summary.replayed} replayed from the log, "
          f"{summary.failed} failed, {summary.seconds:.1f} s; log: {out / 'evaluations'}; report: {report}")
    return 0


def _write_run_info(out: Any, profile: str | None, summary: Any) -> None:
    """``run.json``: this invocation's wall time, profile and machine (the report states them at its top)."""
    import os
    import platform
    import time
    from pathlib import Path
    info = {"profile": profile, "seconds": round(float(summary.seconds), 1), "evaluated": summary.evaluated,
            "replayed": summary.replayed, "failed": summary.failed, "cpus": os.cpu_count(),
            "machine": platform.machine(), "host": platform.node(),
            "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    Path(out, "run.json").write_text(json.dumps(info, indent=2) + "\n")


def _cmd_run(args: argparse.Namespace) -> int:
    from pathlib import Path
    p = Path(args.study)
    if not p.is_file():
        raise ValueError(f"study file {args.study!r} does not exist; `nasatlas list studies` shows packaged ones")
    return _run(str(p), p.read_text(), args)


def _cmd_study(args: argparse.Namespace) -> int:
    from .packaged import study_text
    name, text = study_text(args.name)
    return _run(name, text, args)


def _cmd_report(args: argparse.Namespace) -> int:
    from .report import write_report
    print(write_report(args.run_dir))
    return 0


def _cmd_results(args: argparse.Namespace) -> int:
    from .summary import results_table
    table = results_table(args.run_dir, best=args.best)
    if args.csv:
        print(table.to_csv(index=False), end="")
    else:
        print(table.to_string(index=False))
    return 0


def _add_run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default=None, help="run directory (default runs/<study name>)")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--executor", choices=["local", "dask"], default="local")
    p.add_argument("--scheduler", default=None, help="Dask scheduler address (default: a LocalCluster)")
    p.add_argument("--resume", action="store_true", help="continue the run directory; logged trials are replayed")
    p.add_argument("--async", dest="free_running", action="store_true",
                   help="free-running: a worker gets a new proposal as soon as it is free (more throughput; "
                        "not reproducible for adaptive searchers, resume is not exact)")
    p.add_argument("--profile", default=None, help="a [profiles.NAME] of the study file, e.g. smoke or full")
    p.add_argument("--var", action="append", metavar="VAR=VALUE", help="fill ${VAR} placeholders")
    p.add_argument("--quiet", action="store_true", help="no progress lines")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="nasatlas", description="Benchmark NAS search spaces and measure their density.")
    sub = p.add_subparsers(dest="command", required=True)

    pl = sub.add_parser("list", help="list registered components")
    pl.add_argument("what", choices=["spaces", "searchers", "evaluators", "studies", "zoo"])
    pl.add_argument("--json", action="store_true")
    pl.set_defaults(fn=_cmd_list)

    ps = sub.add_parser("spaces", help="inspect search spaces")
    ssub = ps.add_subparsers(dest="spaces_command", required=True)
    sl = ssub.add_parser("list", help="list registered spaces")
    sl.add_argument("--json", action="store_true")
    sl.set_defaults(fn=_cmd_list, what="spaces")
    sh = ssub.add_parser("show", help="decisions, counts and sources of a space")
    sh.add_argument("name", help="a registered space or a declaration file (.toml/.json)")
    sh.add_argument("--param", action="append", metavar="KEY=VALUE")
    sh.add_argument("--json", action="store_true")
    sh.set_defaults(fn=_cmd_spaces_show)
    sa = ssub.add_parser("sample", help="seeded uniform samples")
    sa.add_argument("name")
    sa.add_argument("-n", type=int, default=5)
    sa.add_argument("--seed", type=int, default=0)
    sa.add_argument("--over", choices=["nominal", "unique"], default="nominal")
    sa.add_argument("--param", action="append", metavar="KEY=VALUE")
    sa.add_argument("--json", action="store_true")
    sa.set_defaults(fn=_cmd_spaces_sample)
    sc = ssub.add_parser("cardinality", help="exact counts (all registered spaces by default)")
    sc.add_argument("names", nargs="*", help="registered names or declaration files")
    sc.add_argument("--unique", action="store_true", help="also count isomorphism classes where computed")
    sc.add_argument("--json", action="store_true")
    sc.set_defaults(fn=_cmd_spaces_cardinality)
    so = ssub.add_parser("cost", help="parameters and MACs of one architecture's network")
    so.add_argument("space")
    so.add_argument("--arch", required=True, help="the architecture string")
    so.add_argument("--net", default=None, help="network preset (default: the paper's evaluation network)")
    so.add_argument("--param", action="append", metavar="KEY=VALUE")
    so.add_argument("--json", action="store_true")
    so.set_defaults(fn=_cmd_spaces_cost)
    pz = sub.add_parser("zoo", help="published architectures: show, cost, export")
    zsub = pz.add_subparsers(dest="zoo_command", required=True)
    zs = zsub.add_parser("show", help="space, architecture, preset, paper figures and source of an entry")
    zs.add_argument("name")
    zs.set_defaults(fn=_cmd_zoo)
    zc = zsub.add_parser("cost", help="params, params_with_aux and MACs at the paper's input size")
    zc.add_argument("name")
    zc.add_argument("--json", action="store_true")
    zc.set_defaults(fn=_cmd_zoo)
    ze = zsub.add_parser("export", help="TorchScript file that loads with plain PyTorch (torch.jit.load)")
    ze.add_argument("name")
    ze.add_argument("out")
    ze.add_argument("--input", type=int, nargs=3, metavar=("C", "H", "W"), default=None,
                    help="trace at this input size (default: the paper's)")
    ze.add_argument("--format", choices=["torchscript", "export"], default="torchscript",
                    help="torchscript: torch.jit.load(OUT); export: torch.export.load(OUT).module()")
    ze.set_defaults(fn=_cmd_zoo)
    pr = sub.add_parser("run", help="run a study file")
    pr.add_argument("study")
    _add_run_options(pr)
    pr.set_defaults(fn=_cmd_run)
    pst = sub.add_parser("study", help="run a packaged study by name (nasatlas list studies)")
    pst.add_argument("name")
    _add_run_options(pst)
    pst.set_defaults(fn=_cmd_study)
    prep = sub.add_parser("report", help="(re)build a run directory's report")
    prep.add_argument("run_dir")
    prep.set_defaults(fn=_cmd_report)
    pres = sub.add_parser("results", help="summary table of a run directory's log")
    pres.add_argument("run_dir")
    pres.add_argument("--best", action="store_true", help="the best architecture per searcher and repeat")
    pres.add_argument("--csv", action="store_true")
    pres.set_defaults(fn=_cmd_results)
    pa = sub.add_parser("analyze", help="analyses over any table of architectures (not only nasatlas logs)")
    asub = pa.add_subparsers(dest="kind", required=True)
    from .analyze_common import ANALYZE_KINDS
    for kind, (module, help_text) in ANALYZE_KINDS.items():
        pk = asub.add_parser(kind, help=help_text)
        importlib.import_module(module).add_arguments(pk)
        pk.set_defaults(fn=_cmd_analyze, module=module)
    return p


def _cmd_analyze(args: argparse.Namespace) -> int:
    """Run one analysis kind; print its result as JSON (``--json``) or as ``key value`` lines."""
    result: Any = importlib.import_module(args.module).run_cli(args)
    if getattr(args, "json", False):
        _print_json(result)
    elif isinstance(result, dict):
        for k, v in result.items():
            print(f"{k:26} {v}")
    else:
        for item in result:
            print(item)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``nasatlas`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.fn(args))
    except (ValueError, TypeError, FileNotFoundError) as e:
        print(f"nasatlas: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
