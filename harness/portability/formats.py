"""Findings in formats tools read: ``path:line: rule message`` lines and GitHub workflow annotations.

Both read the result record only (``build_result``), like the text rendering::

    sglang/srt/models/glm4_moe_lite.py:23: accel-import [breaks] sgl_kernel.dsv3_router_gemm on npu: ...
    ::error file=python/sglang/srt/models/glm4_moe_lite.py,line=23,title=accel-import (breaks)::...
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Literal

Format = Literal["text", "lines", "github"]


def _message(record: Mapping[str, Any]) -> str:
    severity = record.get("severity", "breaks")
    option = f" (needs {record['option']})" if record.get("option") else ""
    platforms = ", ".join(record["platforms"])
    status = "" if record["status"] == "new" else f" [{record['status']}]"
    reach = f" — {record['reach']}" if record.get("reach") else ""
    return (f"{record['rule']} [{severity}]{status} {record['symbol']} on {platforms}{option}: "
            f"{record['hint']}{reach}")


def render_lines(result: Mapping[str, Any], prefix: str = "") -> str:
    """One ``path:line: rule [severity] symbol on platforms: hint — reach`` line per finding."""
    return "\n".join(f"{prefix}{r['path']}:{r['line']}: {_message(r)}" for r in _ordered(result))


def render_github(result: Mapping[str, Any], prefix: str = "") -> str:
    """GitHub workflow commands: ``::error`` for findings that fail the check, ``::warning`` for other
    new ones, ``::notice`` for baselined and suppressed ones."""
    lines = []
    for record in _ordered(result):
        level = "error" if record.get("failing", record["status"] == "new") else (
            "warning" if record["status"] == "new" else "notice")
        title = f"{record['rule']} ({record.get('severity', 'breaks')})"
        lines.append(f"::{level} file={_property(prefix + record['path'])},line={record['line']},"
                     f"title={_property(title)}::{_data(_message(record))}")
    return "\n".join(lines)


def _ordered(result: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return sorted(result["findings"], key=lambda r: (r["path"], r["line"], r["rule"], r["symbol"]))


def _data(text: str) -> str:
    """Escape a workflow command's message (GitHub's ``escapeData``)."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _property(text: str) -> str:
    """Escape a workflow command's property value (GitHub's ``escapeProperty``)."""
    return _data(text).replace(":", "%3A").replace(",", "%2C")


RENDERERS: Mapping[str, Callable[[Mapping[str, Any], str], str]] = {
    "lines": render_lines,
    "github": render_github,
}
