"""The `harness` command: run the matrix, render a report, merge shard runs, export results as a table, list
workarounds, check portability, export / import golden references, bisect a regression."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from harness.bisect.cli import add_bisect_parser
from harness.commands.golden import add_reference_parser
from harness.commands.run import add_run_parser
from harness.config.options import DEFAULT_OUT


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = _parser()
    if not argv:
        parser.print_help()
        return 2
    pytest_args: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, pytest_args = argv[:cut], argv[cut + 1:]
    args, unknown = parser.parse_known_args(argv)
    if unknown and not getattr(args, "passthrough", False):
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    return int(args.func(args, unknown + pytest_args))


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="harness", description="Hardware conformance harness for LLM serving runtimes.")
    sub = p.add_subparsers(dest="command")
    add_run_parser(sub)
    rep = sub.add_parser("report", help="render DIR/index.html, summary.md and junit.xml; exit 1 on NO-GO",
                         epilog="Exit status: 0 GO, 1 NO-GO, 2 bad inputs. The last line printed is the report path.")
    rep.add_argument("dir", type=Path, help="run directory holding results.jsonl and manifest.json")
    _report_options(rep)
    rep.set_defaults(func=_report)
    mg = sub.add_parser("merge", help="combine shard run directories into one run OUT, then report on it",
                        epilog="Exit status as for `harness report`.")
    mg.add_argument("out", type=Path, help="run directory to write (a run already there moves to ../history/)")
    mg.add_argument("dirs", type=Path, nargs="+", metavar="DIR", help="shard run directories")
    _report_options(mg)
    mg.set_defaults(func=_merge)
    _add_export_parser(sub)
    wk = sub.add_parser("workarounds", help="list the named workarounds and what each changes")
    wk.set_defaults(func=_workarounds)
    pt = sub.add_parser("portability", add_help=False, help="statically check a runtime for accelerator-only imports "
                        "and names; exit 1 on new findings that break a platform (see `harness portability --help`)")
    pt.set_defaults(func=_portability, passthrough=True)
    add_reference_parser(sub)
    add_bisect_parser(sub)
    return p


def _add_export_parser(sub: Any) -> None:
    ex = sub.add_parser("export", help="write a run's results (with --history, every stored run) as one CSV or "
                        "Parquet table for dashboards", epilog="Exit status: 0 written, 2 bad inputs (no results in DIR, "
                        "no history, an unknown format, pyarrow missing for parquet). The last line printed names the file.")
    ex.add_argument("dir", type=Path, help="run directory holding results.jsonl and manifest.json")
    ex.add_argument("--out", type=Path, required=True, metavar="FILE", help="table to write (replaced if it exists)")
    ex.add_argument("--format", default=None, metavar="csv|parquet", help="default: from FILE's suffix (.csv, "
                    ".parquet); parquet needs the 'parquet' extra (pyarrow)")
    ex.add_argument("--history", action="store_true", help="also every run in the history, oldest first, one table "
                    "told apart by its run_id column")
    ex.add_argument("--history-dir", type=Path, default=None, metavar="DIR", help="past runs (default: DIR/../history)")
    ex.set_defaults(func=_export)


def _report_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--baseline", type=Path, default=None, metavar="DIR",
                   help="run to compare with (default: newest complete run of the same matrix in the history)")
    p.add_argument("--policy", type=Path, default=None, metavar="FILE", help="sign-off policy YAML (env HARNESS_POLICY; "
                   "default: every check on every cell that ran must pass)")
    p.add_argument("--waivers", type=Path, default=None, metavar="FILE", help="waivers YAML (env HARNESS_WAIVERS)")
    p.add_argument("--history", type=Path, default=None, metavar="DIR", help="past runs (default: DIR/../history)")
    p.add_argument("--keep", type=int, default=None, metavar="N", help="keep only the newest N runs in the history")


def _report_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    return {k: getattr(args, k) for k in ("baseline", "policy", "waivers", "history", "keep")}


def _report(args: argparse.Namespace, _: list[str]) -> int:
    from harness.reports.commands import report_command

    if not (args.dir / "results.jsonl").exists():
        print(f"harness report: no results.jsonl in {args.dir}; pass a run directory such as {DEFAULT_OUT}", file=sys.stderr)
        return 2
    return report_command(args.dir, **_report_kwargs(args))


def _merge(args: argparse.Namespace, _: list[str]) -> int:
    from harness.reports.commands import merge_command

    return merge_command(args.out, args.dirs, **_report_kwargs(args))


def _export(args: argparse.Namespace, _: list[str]) -> int:
    from harness.reports.export import export_command

    return export_command(args.dir, args.out, fmt=args.format, history=args.history, history_dir=args.history_dir)


def _portability(args: argparse.Namespace, rest: list[str]) -> int:
    from harness.portability.cli import main as portability_main

    return portability_main(rest)


def _workarounds(args: argparse.Namespace, _: list[str]) -> int:
    from harness.runtimes.workarounds import WORKAROUNDS

    names = WORKAROUNDS.names()
    if not names:
        print("no workarounds are registered")
    for name in names:
        w = WORKAROUNDS.get(name)
        print(f"{w.name}  (runtime: {w.runtime})\n    {w.summary}\n    changes: {w.changes}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
