"""Secrets masked in the files of a run directory, runtime logs included (CI uploads it whole).

Runtimes write their logs directly (stdout and stderr go to ``logs/<cell>.log``), so a log is
masked when its runtime stops (``harness.boot.lifecycle.ServerProcess.stop``), before its tail is read
for a result; and the whole run directory is swept when the run finishes
(``harness.plugin.recorder.ResultRecorder.finish``): logs, ``events.jsonl``, ``portability.json``,
the manifest and anything else there. Files are read as bytes, line by line: a file that is not
UTF-8 is masked too and keeps its other bytes. JSON (``*.json``) and JSON Lines (``*.jsonl``)
are masked value by value, so they stay valid (masking their text could eat the backslash of an
escaped quote); a line that does not parse is masked as text. A file is rewritten (atomically,
same mode) only when something in it was masked, and only its changed lines are re-encoded.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from harness.redact import Redactor

_TMP_SUFFIX = ".redact-tmp"


def needs_redaction(path: Path, redactor: Redactor) -> bool:
    """True when some line of ``path`` holds a secret ``redactor`` masks."""
    if path.suffix == ".json":
        return _masked_json(path.read_bytes(), redactor) is not None
    as_json = path.suffix == ".jsonl"
    with path.open("rb") as fh:
        return any(_masked_line(raw, redactor, as_json) != raw for raw in fh)


def redact_file(path: Path, redactor: Redactor) -> bool:
    """Mask secrets in ``path`` in place; True when it changed. A missing file or a symlink is left alone."""
    if path.is_symlink() or not path.is_file() or not needs_redaction(path, redactor):
        return False
    tmp = path.with_name(f".{path.name}.{os.getpid()}{_TMP_SUFFIX}")
    try:
        with path.open("rb") as src, tmp.open("wb") as dst:
            if path.suffix == ".json":
                dst.write(_masked_json(src.read(), redactor) or b"")
            else:
                for raw in src:
                    dst.write(_masked_line(raw, redactor, path.suffix == ".jsonl"))
        shutil.copymode(path, tmp)
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)
        raise
    return True


def _masked_line(raw: bytes, redactor: Redactor, as_json: bool) -> bytes:
    """One line masked: value by value when ``as_json`` and it parses, else as text; ``raw`` itself if unchanged."""
    if as_json and raw.strip():
        try:
            data = json.loads(raw)
        except ValueError:
            pass
        else:
            masked = redactor.value(data)
            return raw if masked == data else json.dumps(masked).encode() + raw[len(raw.rstrip(b"\r\n")):]
    text = raw.decode("utf-8", "surrogateescape")
    masked_text = redactor.mask(text)
    return raw if masked_text == text else masked_text.encode("utf-8", "surrogateescape")


def _masked_json(raw: bytes, redactor: Redactor) -> bytes | None:
    """A whole JSON document masked value by value (text masking if it does not parse); None when unchanged."""
    try:
        data = json.loads(raw)
    except ValueError:
        out = b"".join(_masked_line(line, redactor, False) for line in raw.splitlines(keepends=True))
        return None if out == raw else out
    masked = redactor.value(data)
    return None if masked == data else (json.dumps(masked, indent=2) + "\n").encode()


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
