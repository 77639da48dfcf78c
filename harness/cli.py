"""The `harness` command: run the matrix, render a report, list workarounds."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness.options import DEFAULT_OUT, DEFAULTS

SUITES = Path(__file__).resolve().parent.parent / "suites"


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
    args = parser.parse_args(argv)
    return int(args.func(args, pytest_args))


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="harness", description="Hardware conformance harness for LLM serving runtimes.")
    sub = p.add_subparsers(dest="command")
    run = sub.add_parser("run", help="boot each matrix cell's runtime, run every check, write results and an HTML report",
                         epilog="Extra pytest arguments go after --, e.g. harness run -- -x -n 2")
    run.add_argument("--out", type=Path, default=DEFAULT_OUT, help="run directory (default: %(default)s)")
    for opt, key in (("--runtimes", "runtimes"), ("--devices", "devices"), ("--models", "models"), ("--offload-modes", "offload_modes")):
        run.add_argument(opt, default=DEFAULTS[key], help="comma list (default: %(default)s)")
    run.add_argument("--dtypes", default="float32")
    run.add_argument("--tp", default="1")
    run.add_argument("--runtime-python", action="append", default=[], metavar="NAME=PATH")
    run.add_argument("--workaround", action="append", default=[], metavar="NAME")
    run.add_argument("--boot-timeout", type=float, default=None)
    run.set_defaults(func=_run)
    rep = sub.add_parser("report", help="render DIR/index.html from DIR/results.jsonl and DIR/manifest.json")
    rep.add_argument("dir", type=Path)
    rep.set_defaults(func=_report)
    wk = sub.add_parser("workarounds", help="list the named workarounds and what each changes")
    wk.set_defaults(func=_workarounds)
    return p


def _run(args: argparse.Namespace, pytest_args: list[str]) -> int:
    import pytest

    cmd = [str(SUITES), "-p", "no:cacheprovider", "-q", "-rfEs",
           "--harness-out", str(args.out), "--runtimes", args.runtimes, "--devices", args.devices,
           "--models", args.models, "--offload-modes", args.offload_modes, "--dtypes", args.dtypes, "--tp", args.tp]
    for rp in args.runtime_python:
        cmd += ["--runtime-python", rp]
    for w in args.workaround:
        cmd += ["--workaround", w]
    if args.boot_timeout:
        cmd += ["--boot-timeout", str(args.boot_timeout)]
    code = pytest.main(cmd + pytest_args)
    index = args.out.resolve() / "index.html"
    if index.exists():
        print(f"\nReport: {index}")
    else:
        print(f"\nNo report written (no matrix test ran; pytest exit code {int(code)}).", file=sys.stderr)
    return int(code)


def _report(args: argparse.Namespace, _: list[str]) -> int:
    from reports.builder import build_report

    if not (args.dir / "results.jsonl").exists():
        print(f"harness report: no results.jsonl in {args.dir}; pass a run directory such as {DEFAULT_OUT}", file=sys.stderr)
        return 2
    print(f"Report: {build_report(args.dir.resolve())}")
    return 0


def _workarounds(args: argparse.Namespace, _: list[str]) -> int:
    from harness.workarounds import WORKAROUNDS

    names = WORKAROUNDS.names()
    if not names:
        print("no workarounds are registered")
    for name in names:
        w = WORKAROUNDS.get(name)
        print(f"{w.name}  (runtime: {w.runtime})\n    {w.summary}\n    changes: {w.changes}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
