"""Domain exceptions: each carries what failed, where, and how to fix it."""
from __future__ import annotations

from pathlib import Path


class HarnessError(Exception):
    """Base class of the harness's own errors."""


class ConfigError(HarnessError):
    """A matrix, card, option or policy value is wrong; the message names it and the fix."""


class RuntimeStartError(HarnessError):
    """A runtime did not come up: crashed during boot or timed out."""

    def __init__(self, kind: str, cell_id: str, detail: str, log_path: Path | None, log_tail: str = "") -> None:
        self.kind = kind
        self.cell_id = cell_id
        self.detail = detail
        self.log_path = log_path
        self.log_tail = log_tail
        where = f" (log: {log_path})" if log_path else ""
        super().__init__(f"{kind}: {cell_id}: {detail}{where}")


class ReadinessTimeout(RuntimeStartError):
    """The runtime process stayed alive but never answered its readiness probe in time."""

    def __init__(self, cell_id: str, detail: str, log_path: Path | None, log_tail: str = "") -> None:
        super().__init__("boot-timeout", cell_id, detail, log_path, log_tail)


class RuntimeRequestError(HarnessError):
    """A request to a running runtime failed (connection lost, HTTP error, bad payload)."""

    def __init__(self, cell_id: str, detail: str, log_path: Path | None = None, log_tail: str = "") -> None:
        self.kind = "request-error"
        self.cell_id = cell_id
        self.detail = detail
        self.log_path = log_path
        self.log_tail = log_tail
        super().__init__(f"request-error: {cell_id}: {detail}")


PREFLIGHT_REASON = "preflight:"  # how the reason of a cell refused by the preflight starts (it never booted)


class PreflightError(RuntimeStartError):
    """The runtime's interpreter cannot import the runtime or its device stack: the cell is not booted."""

    def __init__(self, cell_id: str, detail: str) -> None:
        super().__init__("preflight", cell_id, detail, None)
