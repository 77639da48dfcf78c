"""`harness run`: the matrix as a pytest session over suites/, ending with the verdict and the report's path.

Exit status (CI gates on it): 0 GO, 1 NO-GO (including "nothing ran"), 2 bad input (an unknown
option, model or matrix field), 130 interrupted (Ctrl-C; results so far kept, report rendered),
3 an internal error (no verdict could be computed).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import harness.suites
from harness.config.options import DEFAULT_OUT, DEFAULTS, add_options
from harness.runtimes import RUNTIMES

SUITES = Path(harness.suites.__file__).resolve().parent
EXIT_USAGE, EXIT_INTERRUPTED = 2, 130
RUN_ONLY = {"--harness-out", "--harness-progress"}  # spelt --out / --no-progress here
EPILOG = """Exit status: 0 GO, 1 NO-GO (also when nothing ran), 2 bad input, 130 interrupted, 3 internal error.
The last lines printed are the verdict and the report path.

Examples:
  harness run --matrix nightly.yaml --simulate-devices npu:8 -n 8
  harness run --models tiny-llama -- -x -k disk
"""


def add_run_parser(sub: Any) -> None:
    run = sub.add_parser("run", help="boot each matrix cell's runtime, run every check, write results and an HTML report",
                         epilog=EPILOG + plugin_options_help(), formatter_class=argparse.RawDescriptionHelpFormatter,
                         allow_abbrev=False)  # else `--model NAME=PATH` would be read as an abbreviated --models
    run.add_argument("--out", type=Path, default=DEFAULT_OUT, help="run directory (default: %(default)s)")
    for opt, key in (("--runtimes", "runtimes"), ("--devices", "devices"), ("--models", "models"),
                     ("--offload-modes", "offload_modes"), ("--dtypes", "dtypes"), ("--tp", "tp")):
        known = f"; known: {', '.join(RUNTIMES.names())}" if key == "runtimes" else ""  # installed ones too
        run.add_argument(opt, default=None, help=f"comma list (default: the matrix file's, else {DEFAULTS[key]}{known})")
    run.add_argument("--no-progress", action="store_true", help="no per-cell progress lines")
    run.set_defaults(func=run_matrix, passthrough=True)


class _HelpCollector:
    """Stands in for pytest's option parser to list the plugin's options in ``harness run --help``."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def getgroup(self, *_: Any) -> _HelpCollector:
        return self

    def addoption(self, *names: str, **kw: Any) -> None:
        if set(names) & RUN_ONLY or any(n.lstrip("-") in DEFAULTS or n == "--offload-modes" for n in names):
            return  # already a `harness run` option above
        flag = ", ".join(names) + (f" {kw['metavar']}" if kw.get("metavar") else "")
        text = str(kw.get("help", "")).replace("%(default)s", str(kw.get("default")))
        self.lines.append(f"  {flag:<26} {text}" if len(flag) <= 26 else f"  {flag}\n  {'':<26} {text}")


def plugin_options_help() -> str:
    """Every option of the pytest plugin that `harness run` passes through, plus xdist's ``-n``."""
    collector = _HelpCollector()
    add_options(collector)
    xdist = "  -n N                       run cells on N worker processes (pytest-xdist; each cell on one worker)"
    return "\nMatrix options (passed to the harness's pytest plugin):\n" + "\n".join([*collector.lines, xdist]) + "\n"


def pytest_argv(args: argparse.Namespace, extra: list[str]) -> list[str]:
    """The pytest command line for a `harness run`."""
    cmd = [str(SUITES), "-p", "no:cacheprovider", "-q", "-rfE", "-W", "ignore::pytest.PytestAssertRewriteWarning",
           "--harness-out", str(args.out)]
    for opt in ("runtimes", "devices", "models", "offload_modes", "dtypes", "tp"):
        value = getattr(args, opt)
        if value is not None:
            cmd += [f"--{opt.replace('_', '-')}", value]
    if not args.no_progress:
        cmd.append("--harness-progress")
    return cmd + extra


class OutcomeCatcher:
    """A plugin of this one pytest session: keeps the report outcome this session rendered (if any)."""

    def __init__(self) -> None:
        self.outcome: Any = None

    def pytest_unconfigure(self, config: Any) -> None:
        from harness.plugin.main import outcome_of

        self.outcome = outcome_of(config)


def run_matrix(args: argparse.Namespace, extra: list[str]) -> int:
    import pytest

    catcher = OutcomeCatcher()
    code = pytest.main(pytest_argv(args, extra), plugins=[catcher])
    outcome = catcher.outcome
    if code == pytest.ExitCode.USAGE_ERROR:
        print("\nharness run: bad input (see the error above); nothing ran and no report was written.", file=sys.stderr)
        return EXIT_USAGE
    if outcome is None:
        print(f"\nNo report written (no matrix test ran; pytest exit code {int(code)}).", file=sys.stderr)
        return EXIT_INTERRUPTED if code == pytest.ExitCode.INTERRUPTED else (int(code) or 1)
    from harness.reports.commands import verdict_lines

    print()
    print(verdict_lines(outcome, limit=0)[0])
    print(f"Report: {outcome.index}")
    return EXIT_INTERRUPTED if code == pytest.ExitCode.INTERRUPTED else int(code)
