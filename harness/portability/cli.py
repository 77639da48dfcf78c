"""``harness portability``: find code that imports or runs on some accelerators and breaks on others."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from harness.portability.baseline import Baseline
from harness.portability.check import PortabilityOptions, run_portability
from harness.portability.finding import SEVERITIES, Finding
from harness.portability.formats import RENDERERS
from harness.portability.locate import RuntimeLocateError
from harness.portability.platforms import PLATFORMS
from harness.portability.probe import ProbeError
from harness.portability.profile import PROFILES
from harness.portability.report import render_text

EXIT_OK, EXIT_NEW_FINDINGS, EXIT_USAGE = 0, 1, 2


def build_parser(prog: str = "harness portability") -> argparse.ArgumentParser:
    """The argument parser (also used to document the command)."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Statically check a serving runtime for accelerator-only imports, names and "
                    "attributes bound only on some platforms, and probe that every module imports "
                    "with accelerator packages hidden. Each finding is ranked breaks / option / latent by how a "
                    "platform reaches it; exits 1 when a new finding (not in the baseline) has a "
                    "--fail-on severity.",
    )
    parser.add_argument("--runtime", default="sglang", choices=PROFILES.names(),
                        help="runtime profile (default: sglang)")
    parser.add_argument("--runtime-python", metavar="PATH",
                        help="interpreter of the runtime's environment (default: this python)")
    parser.add_argument("--source", metavar="DIR",
                        help="analyse this directory (the one holding the top package) instead of "
                             "the installed runtime")
    parser.add_argument("--package", action="append", default=[], metavar="PKG",
                        help="dotted package to analyse; repeatable (default: the profile's)")
    parser.add_argument("--profile", metavar="YAML", help="YAML overrides for the runtime profile")
    parser.add_argument("--baseline", metavar="FILE", help="JSON list of accepted finding keys")
    parser.add_argument("--write-baseline", metavar="FILE",
                        help="write the current unsuppressed finding keys to FILE and exit 0")
    parser.add_argument("--suppressions", metavar="FILE", help="suppression YAML (rule, path, symbol, reason)")
    parser.add_argument("--json", metavar="OUT", help="also write the result record as JSON")
    _probe_options(parser)
    parser.add_argument("--strict", action="store_true",
                        help="also report reads under non-platform tests (configuration choices)")
    parser.add_argument("--jobs", type=int, metavar="N", help="parser processes (default: CPU count)")
    _output_options(parser)
    return parser


def _probe_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--probe", action=argparse.BooleanOptionalAction, default=None,
                        help="import every module with accelerator packages hidden (default: on for "
                             "an installed runtime, off with --source)")
    parser.add_argument("--probe-platform", choices=PLATFORMS,
                        help="hide only the packages this platform lacks (default: hide all)")
    parser.add_argument("--probe-module-timeout", type=float, default=60.0, metavar="S",
                        help="seconds allowed per module import (default: 60)")
    parser.add_argument("--probe-timeout", type=float, default=600.0, metavar="S",
                        help="seconds allowed for the whole probe (default: 600)")


def _output_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--fail-on", default="breaks", metavar="SEVERITIES",
                        help=f"comma-separated severities whose new findings fail the check, from "
                             f"{','.join(SEVERITIES)} (default: breaks)")
    parser.add_argument("--format", choices=("text", *RENDERERS), default="text",
                        help="stdout format: text (grouped by file), lines (path:line: rule message) or "
                             "github (workflow annotations); --json writes the record besides")
    parser.add_argument("--path-prefix", default="", metavar="DIR/",
                        help="prefix for paths in lines/github output, e.g. python/ in an SGLang checkout")


def main(argv: list[str] | None = None) -> int:
    """Run the check; 1 when a new finding has a ``--fail-on`` severity (breaks), 0 otherwise, 2 on bad usage."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        options = PortabilityOptions.create(
            runtime=args.runtime, python=args.runtime_python, source=args.source,
            packages=args.package, profile_file=args.profile, suppressions=args.suppressions,
            baseline=args.baseline, probe=args.probe, probe_platform=args.probe_platform,
            probe_module_timeout=args.probe_module_timeout, probe_timeout=args.probe_timeout,
            strict=args.strict, jobs=args.jobs,
            fail_on=[s.strip() for s in args.fail_on.split(",") if s.strip()],
        )
        result = run_portability(options)
    except (ValueError, KeyError, FileNotFoundError, RuntimeLocateError, ProbeError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"{parser.prog}: error: {message}", file=sys.stderr)
        return EXIT_USAGE
    print(render_text(result) if args.format == "text" else RENDERERS[args.format](result, args.path_prefix))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n")
    if args.write_baseline:
        findings = [Finding.from_dict(r) for r in result["findings"]]
        Baseline.of(findings).write(args.write_baseline)
        print(f"wrote {len(Baseline.of(findings).keys)} key(s) to {args.write_baseline}")
        return EXIT_OK
    return EXIT_NEW_FINDINGS if result["counts"]["failing"] else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
