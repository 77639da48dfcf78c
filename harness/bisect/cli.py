"""``harness bisect``: which release or commit of a runtime broke a cell's check, or brought a portability finding.

Exit status: 0 the first bad ref was found, 1 the bisection could not decide (the reason is
printed: skips around the answer, or the good/bad refs are not), 2 bad input (an unknown cell,
check, finding or ref; good == bad), 130 interrupted (what was learned is kept; re-run to resume).
"""
from __future__ import annotations

import argparse
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from harness.bisect.envs import EnvSpec
from harness.bisect.origins import Commits, Origin, Releases
from harness.bisect.probes import CellProbe, PortabilityProbe, parse_cell_id
from harness.bisect.refs import (
    RUNTIME_DISTRIBUTIONS,
    BisectInputError,
    PipIndex,
    commits,
    distribution,
    is_checkout,
    refs_with_labels,
    releases,
)
from harness.bisect.report import summary_lines
from harness.bisect.runner import EXIT_INTERRUPTED, bisect, timed
from harness.bisect.state import STATE_FILE, Identity, resume
from harness.errors import ConfigError

EXIT_USAGE = 2
DEFAULT_ROOT = Path("reports/bisect")
TOP_PACKAGES = {"hf": "transformers", "sglang": "sglang", "vllm": "vllm"}
EPILOG = """Exit status: 0 first bad ref found, 1 undecided (says why), 2 bad input, 130 interrupted (re-run resumes).

Examples:
  harness bisect --cell sglang-npu-glm-4.7-flash-none --check accuracy --good sglang==0.5.9 --bad sglang==0.5.12
  harness bisect --cell sglang-cuda-tiny-llama-none --source ~/src/sglang --good v0.5.9 --bad main
  harness bisect --portability accel-import:sglang/srt/layers/x.py:flashinfer --good 0.5.9 --bad 0.5.12
  harness bisect --cell hf-cpu-tiny-llama-none --dist mypkg --good 1.0 --bad 1.3 --find-links wheels/ --no-index \\
      -- --model my=/ckpt       # options after -- go to each step's `harness run`
"""


def add_bisect_parser(sub: Any) -> None:
    p = sub.add_parser("bisect", help="find the first bad runtime version or commit for a red cell or a portability finding",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter, allow_abbrev=False)
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--cell", metavar="CELL_ID", help="the red cell, as the report names it (hf-cpu-tiny-llama-none)")
    what.add_argument("--portability", metavar="FINDING_KEY", help="a portability finding key, rule:path:symbol")
    p.add_argument("--check", action="append", default=[], metavar="NAME",
                   help="the failing check to run (repeatable; default: every check of the cell)")
    p.add_argument("--good", required=True, metavar="REF",
                   help="a version (0.5.9, sglang==0.5.9) or, with --source, a commit/tag that is good")
    p.add_argument("--bad", required=True, metavar="REF", help="a newer version or commit that is bad")
    p.add_argument("--dist", metavar="NAME", help="distribution to install (default: the one the refs name, else the runtime's)")
    p.add_argument("--source", type=Path, metavar="DIR", help="a git checkout of the runtime: refs are its commits")
    p.add_argument("--source-subdir", metavar="DIR", help="where the top package lies in the checkout (default: found)")
    p.add_argument("--index-url", metavar="URL", help="package index for versions and installs (pip's default otherwise)")
    p.add_argument("--find-links", action="append", default=[], metavar="DIR", help="also look for packages here (repeatable)")
    p.add_argument("--no-index", action="store_true", help="use only --find-links")
    p.add_argument("--pre", action="store_true", help="include pre-releases among the candidates")
    base = p.add_mutually_exclusive_group()
    base.add_argument("--base-python", metavar="PATH", default=sys.executable,
                      help="candidate venvs see this interpreter's packages beneath their own (default: the harness's)")
    base.add_argument("--standalone", action="store_true", help="candidate venvs install everything themselves")
    p.add_argument("--runtime", metavar="NAME", help="portability profile (default: the finding path's top package)")
    p.add_argument("--profile", metavar="YAML", help="portability profile overrides, as `harness portability --profile`")
    p.add_argument("--out", type=Path, metavar="DIR", help=f"bisection directory (default: {DEFAULT_ROOT}/<target>)")
    p.add_argument("--verify-ends", action=argparse.BooleanOptionalAction, default=None,
                   help="test the good and bad refs first (default: on for --portability, which is cheap; off for --cell)")
    p.add_argument("--step-timeout", type=float, default=3600.0, metavar="S", help="seconds one cell step may take (default: %(default)s)")
    p.set_defaults(func=bisect_command, passthrough=True)


def bisect_command(args: argparse.Namespace, rest: list[str]) -> int:
    started = time.monotonic()
    previous = signal.signal(signal.SIGTERM, _as_interrupt)  # a CI job's cancel stops as Ctrl-C does: state kept
    try:
        return _bisect(args, [a for a in rest if a != "--"], started)
    except ConfigError as exc:
        print(f"harness bisect: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:  # before the first step (finding the candidates); the loop handles its own
        print("harness bisect: interrupted before any step ran; nothing to keep", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        signal.signal(signal.SIGTERM, previous)


def _as_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _bisect(args: argparse.Namespace, run_args: list[str], started: float) -> int:
    if run_args and args.portability:
        raise BisectInputError(f"options after -- ({' '.join(run_args)}) go to `harness run`; a portability bisect boots nothing")
    if args.check and args.portability:
        raise BisectInputError("--check is for --cell; a portability bisect looks for its finding key")
    out = args.out or DEFAULT_ROOT / _slug(args.cell or args.portability)
    log = _logger(out)  # the directory is made by the first line logged: bad input leaves nothing
    env = EnvSpec(None if args.standalone else args.base_python, _index(args))
    if args.cell:
        cell_probe, origin = _cell_target(args, run_args, env)
        checks, mode, target = cell_probe.checks, "cell", cell_probe.cell.id
    else:
        port_probe, origin = _portability_target(args, env)
        checks, mode, target = (), "portability", args.portability
    refs, labels = _refs(args, origin)
    identity = Identity(mode, target, checks, origin.key, env.base_python or "", tuple(run_args))
    state, note = resume(out / STATE_FILE, identity, refs, labels)
    log(f"harness bisect {target}: {len(refs)} ref(s) from {state.label(refs[0])} (good) to {state.label(refs[-1])} (bad)"
        + (f", checks {', '.join(checks)}" if checks else ""))
    if note:
        log(note)

    def judge(ref: str, step_dir: Path) -> tuple[str, str, str, float]:
        if args.cell:
            python, env_s = timed(lambda: origin.python(ref, log))
            return (*cell_probe.judge(python, step_dir), str(python), env_s)
        tree, env_s = timed(lambda: origin.tree(ref, log))
        return (*port_probe.judge(tree), str(tree), env_s)

    verify = args.verify_ends if args.verify_ends is not None else mode == "portability"
    outcome = bisect(state, out, judge, log, verify_ends=verify)
    for line in summary_lines(outcome.state, outcome.decision):
        log(line)
    log(f"bisection directory: {out} ({STATE_FILE}, bisect.md); {time.monotonic() - started:.1f} s in all")
    return outcome.exit_code


def _cell_target(args: argparse.Namespace, run_args: list[str], env: EnvSpec) -> tuple[CellProbe, Origin]:
    from harness.runtimes import RUNTIMES

    cell = parse_cell_id(args.cell, RUNTIMES.names())
    probe = CellProbe(cell, tuple(args.check), tuple(run_args), args.step_timeout)
    with tempfile.TemporaryDirectory(prefix="harness-bisect-collect-") as scratch:  # collecting writes no run
        probe = CellProbe(cell, probe.collected_checks(Path(scratch) / "run"), tuple(run_args), args.step_timeout)
    top = TOP_PACKAGES.get(cell.runtime, cell.runtime)
    if args.source:
        return probe, Commits(args.source, top, env, args.source_subdir)
    dist = distribution(args.good, args.bad, args.dist, RUNTIME_DISTRIBUTIONS.get(cell.runtime))
    return probe, Releases(dist, top, env)


def _portability_target(args: argparse.Namespace, env: EnvSpec) -> tuple[PortabilityProbe, Origin]:
    from harness.portability.finding import RULES
    from harness.portability.profile import PROFILES

    rule, _, rest = args.portability.partition(":")
    path, _, symbol = rest.rpartition(":")
    if rule not in RULES or not path or not symbol:
        raise BisectInputError(f"--portability {args.portability!r} is not a finding key rule:path:symbol with rule in "
                               f"{', '.join(RULES)}; copy it from the report or portability.json")
    runtime = args.runtime or path.split("/")[0]
    profile = PROFILES.get(runtime)  # an unknown one raises with the known names
    probe = PortabilityProbe(args.portability, runtime, args.profile)
    if args.source:
        return probe, Commits(args.source, profile.top_package, env, args.source_subdir)
    dist = distribution(args.good, args.bad, args.dist, profile.distribution)
    return probe, Releases(dist, profile.top_package, env)


def _refs(args: argparse.Namespace, origin: Origin) -> tuple[tuple[str, ...], dict[str, str]]:
    if isinstance(origin, Commits):
        if not args.source.is_dir() or not is_checkout(args.source):
            raise BisectInputError(f"--source {args.source} is not a git checkout; pass the directory you cloned")
        return commits(args.source, args.good, args.bad)
    assert isinstance(origin, Releases)
    refs = releases(origin.dist, args.good, args.bad, origin.env.index)
    return refs, refs_with_labels(refs, origin.dist)


def _index(args: argparse.Namespace) -> PipIndex:
    links = tuple(str(Path(d).resolve()) if Path(d).exists() else d for d in args.find_links)
    return PipIndex(args.index_url, links, args.no_index, args.pre)


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in text)[:100]


def _logger(out: Path):
    log_file = out / "bisect.log"

    def log(line: str) -> None:
        print(line, flush=True)
        out.mkdir(parents=True, exist_ok=True)
        with open(log_file, "a") as fh:
            fh.write(line + "\n")

    return log
