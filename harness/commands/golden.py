"""`harness reference export MODEL --out FILE` / `harness reference import FILE`: golden references.

Exit status: 0 done; 1 the reference could not be computed (refused by the memory preflight, or
its runtime failed); 2 bad input (unknown model, unreadable file, a golden that does not match).
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from harness.config.refspec import DEFAULT_REFERENCE
from harness.errors import ConfigError, HarnessError, RuntimeRequestError, RuntimeStartError


def add_reference_parser(sub: Any) -> None:
    """The ``reference`` subcommand and its ``export`` / ``import`` actions."""
    ref = sub.add_parser("reference", help="export a model's reference answers as a golden file, or import one",
                         epilog="Exit status: 0 done, 1 the reference could not be computed, 2 bad input.")
    actions = ref.add_subparsers(dest="reference_command", required=True)
    ex = actions.add_parser("export", help="write MODEL's reference (computed here first when not cached) to FILE")
    ex.add_argument("model", help="model card name, e.g. tiny-llama")
    ex.add_argument("--out", type=Path, required=True, metavar="FILE", help="golden file to write (.json or .json.gz)")
    ex.add_argument("--matrix", type=Path, default=None, metavar="FILE",
                    help="matrix file whose `reference:` and runtime_options apply (default: hf-cpu float32)")
    _catalog_options(ex)
    ex.set_defaults(func=_export)
    im = actions.add_parser("import", help="check a golden file against the local checkpoint and card, then place "
                                           "it in the reference store ($HARNESS_REFERENCE_DIR)")
    im.add_argument("file", type=Path, help="golden file made by `harness reference export`")
    im.add_argument("--matrix", type=Path, default=None, metavar="FILE",
                    help="matrix file whose runtime_options.<runtime>.python builds tiny models (default: this Python)")
    _catalog_options(im)
    im.set_defaults(func=_import)


def _catalog_options(p: argparse.ArgumentParser) -> None:
    """The same model catalog as `harness run`: --cards DIR and --model NAME=PATH (and the matrix file's cards:)."""
    p.add_argument("--cards", action="append", default=[], metavar="DIR", help="extra model card directory (repeatable)")
    p.add_argument("--model", action="append", default=[], metavar="NAME=PATH", dest="adhoc",
                   help="ad-hoc model from a checkpoint directory (repeatable)")


def _options(args: argparse.Namespace, logs: Path) -> Any:
    from harness.config.catalog import CatalogSpec
    from harness.config.matrixfile import MatrixFile
    from harness.config.options import parse_runtime_python
    from harness.reference.store import default_options

    base = default_options(logs)
    mf = MatrixFile.load(args.matrix) if args.matrix else None
    from_file = {k: v.python for k, v in (mf.runtime_options if mf else {}).items() if v.python}
    pythons = {"hf": base.python_for("hf"), **parse_runtime_python([], os.environ, from_file)}
    catalog = CatalogSpec.build(args.cards, args.adhoc, None, mf.cards if mf else ())
    return dataclasses.replace(base, matrix=mf, runtime_python=pythons, catalog=catalog)


def _export(args: argparse.Namespace, _: list[str]) -> int:
    from harness.commands.goldens import export

    with tempfile.TemporaryDirectory(prefix="harness-reference-") as logs:
        try:
            golden, source = export(args.model, args.out, _options(args, Path(logs)))
        except BaseException as exc:
            return _failed("export", exc)
    how = {"computed": "computed here now", "cache": "from the reference store", "golden": "an imported golden"}[source]
    print(f"exported the {golden.reference.label} reference of {golden.model} ({how}, made on {golden.made}) to "
          f"{args.out}: {len(golden.generations)} prompts, checkpoint sha256 {golden.checkpoint_digest[:16]}…")
    return 0


def _import(args: argparse.Namespace, _: list[str]) -> int:
    from harness.commands.goldens import import_golden

    with tempfile.TemporaryDirectory(prefix="harness-reference-") as logs:
        try:
            golden, stored = import_golden(args.file, _options(args, Path(logs)))
        except BaseException as exc:
            return _failed("import", exc)
    spec = golden.reference
    use = ("runs use it (the default reference)" if spec == DEFAULT_REFERENCE else
           "runs use it with this in their matrix file: reference: {"
           + ", ".join(f"{k}: {v}" for k, v in spec.as_dict().items()) + "}")
    print(f"imported the {spec.label} reference of {golden.model}, golden made on {golden.made}, into {stored}; {use}")
    return 0


def _failed(action: str, exc: BaseException) -> int:
    """Say what went wrong on one line (plus the runtime's log tail); 1 when computing failed, 2 on bad input."""
    if not isinstance(exc, HarnessError):
        raise exc
    if isinstance(exc, (RuntimeStartError, RuntimeRequestError)):
        tail = f"\n--- runtime log tail ---\n{exc.log_tail}" if exc.log_tail else ""
        print(f"harness reference {action}: {exc.kind}: {exc.detail}{tail}", file=sys.stderr)
        return 1
    kind = "bad input" if isinstance(exc, ConfigError) else "cannot continue"
    print(f"harness reference {action}: {kind}: {exc}", file=sys.stderr)
    return 2
