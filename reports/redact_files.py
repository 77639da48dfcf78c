"""Secrets masked in the files of a run directory, runtime logs included (CI uploads it whole).

Runtimes write their logs directly (stdout and stderr go to ``logs/<cell>.log``), so a log is
masked when its runtime stops (``harness.lifecycle.ServerProcess.stop``), before its tail is read
for a result; and the whole run directory is swept when the run finishes
(``harness.recorder.ResultRecorder.finish``): logs, ``events.jsonl``, ``portability.json``,
the manifest and anything else there. Files are read as bytes, line by line: a file that is not
UTF-8 is masked too and keeps its other bytes. A file is rewritten (atomically, same mode) only
when something in it was masked.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

from reports.redact import Redactor

_TMP_SUFFIX = ".redact-tmp"


def needs_redaction(path: Path, redactor: Redactor) -> bool:
    """True when some line of ``path`` holds a secret ``redactor`` masks."""
    with path.open("rb") as fh:
        for raw in fh:
            text = raw.decode("utf-8", "surrogateescape")
            if redactor.mask(text) != text:
                return True
    return False


def redact_file(path: Path, redactor: Redactor) -> bool:
    """Mask secrets in ``path`` in place; True when it changed. A missing file or a symlink is left alone."""
    if path.is_symlink() or not path.is_file() or not needs_redaction(path, redactor):
        return False
    tmp = path.with_name(f".{path.name}.{os.getpid()}{_TMP_SUFFIX}")
    try:
        with path.open("rb") as src, tmp.open("wb") as dst:
            for raw in src:
                text = raw.decode("utf-8", "surrogateescape")
                dst.write(redactor.mask(text).encode("utf-8", "surrogateescape"))
        shutil.copymode(path, tmp)
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)
        raise
    return True


def redact_tree(root: Path, redactor: Redactor) -> tuple[list[Path], list[tuple[Path, str]]]:
    """Mask secrets in every regular file under ``root`` (symlinks are not followed).

    Returns the files changed, and the files that could not be masked with why (never raises for
    one file: the rest are still masked).
    """
    changed: list[Path] = []
    failed: list[tuple[Path, str]] = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if not os.path.islink(os.path.join(folder, d))]
        for name in sorted(files):
            path = Path(folder, name)
            if name.endswith(_TMP_SUFFIX):
                continue
            try:
                if redact_file(path, redactor):
                    changed.append(path)
            except OSError as exc:
                failed.append((path, f"{type(exc).__name__}: {exc}"))
    return changed, failed
