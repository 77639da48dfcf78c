"""`harness run`: the matrix as a pytest session over suites/, ending with the report's path."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from harness.options import DEFAULT_OUT, DEFAULTS

SUITES = Path(__file__).resolve().parent.parent / "suites"
EPILOG = """Any other pytest or harness option passes through, e.g.
  harness run --matrix nightly.yaml --simulate-devices npu:8 -n 8
  harness run --models tiny-llama -- -x -k disk"""


def add_run_parser(sub: Any) -> None:
    run = sub.add_parser("run", help="boot each matrix cell's runtime, run every check, write results and an HTML report",
                         epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    run.add_argument("--out", type=Path, default=DEFAULT_OUT, help="run directory (default: %(default)s)")
    for opt, key in (("--runtimes", "runtimes"), ("--devices", "devices"), ("--models", "models"),
                     ("--offload-modes", "offload_modes"), ("--dtypes", "dtypes"), ("--tp", "tp")):
        run.add_argument(opt, default=None, help=f"comma list (default: the matrix file's, else {DEFAULTS[key]})")
    run.add_argument("--no-progress", action="store_true", help="no per-cell progress lines")
    run.set_defaults(func=run_matrix, passthrough=True)


def pytest_argv(args: argparse.Namespace, extra: list[str]) -> list[str]:
    """The pytest command line for a `harness run`."""
    cmd = [str(SUITES), "-p", "no:cacheprovider", "-q", "-rfE", "-W", "ignore::pytest.PytestAssertRewriteWarning", "--harness-out", str(args.out)]
    for opt in ("runtimes", "devices", "models", "offload_modes", "dtypes", "tp"):
        value = getattr(args, opt)
        if value is not None:
            cmd += [f"--{opt.replace('_', '-')}", value]
    if not args.no_progress:
        cmd.append("--harness-progress")
    return cmd + extra


def run_matrix(args: argparse.Namespace, extra: list[str]) -> int:
    import pytest

    code = pytest.main(pytest_argv(args, extra))
    index = out_dir(args, extra) / "index.html"
    if index.exists():
        print(f"\nReport: {index}")
    else:
        print(f"\nNo report written (no matrix test ran; pytest exit code {int(code)}).", file=sys.stderr)
    return int(code)


def out_dir(args: argparse.Namespace, extra: list[str]) -> Path:
    """The run directory: --out, unless pytest's own --harness-out was passed through (it comes last, so it wins)."""
    out = args.out
    for i, arg in enumerate(extra):
        if arg == "--harness-out" and i + 1 < len(extra):
            out = Path(extra[i + 1])
        elif arg.startswith("--harness-out="):
            out = Path(arg.partition("=")[2])
    return out.resolve()
