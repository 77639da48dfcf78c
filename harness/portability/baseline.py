"""Baselines: a JSON list of finding keys (``rule:path:symbol``) that are accepted for now."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable
from pathlib import Path

from harness.portability.finding import Finding


@dataclasses.dataclass(frozen=True)
class Baseline:
    """Accepted finding keys; keys leave out line numbers, so edits elsewhere keep them valid."""

    keys: frozenset[str]

    @classmethod
    def load(cls, path: str | Path) -> Baseline:
        """Read a baseline file written by ``--write-baseline``."""
        try:
            data = json.loads(Path(path).read_text())
        except OSError as exc:
            raise ValueError(
                f"cannot read baseline {str(path)!r}: {exc.strerror}; create it with --write-baseline"
            ) from None
        except json.JSONDecodeError as exc:
            raise ValueError(f"baseline {str(path)!r} is not JSON ({exc}); regenerate it with --write-baseline") from None
        if isinstance(data, dict):
            data = data.get("keys")
        if not isinstance(data, list) or not all(isinstance(k, str) for k in data):
            raise ValueError(
                f"baseline {str(path)!r} must be a JSON list of finding keys like "
                f'"accel-import:pkg/mod.py:sgl_kernel", got {type(data).__name__}'
            )
        return cls(frozenset(data))

    @classmethod
    def empty(cls) -> Baseline:
        """A baseline that accepts nothing."""
        return cls(frozenset())

    @classmethod
    def of(cls, findings: Iterable[Finding]) -> Baseline:
        """The keys of the unsuppressed findings."""
        return cls(frozenset(f.key for f in findings if not f.suppressed))

    def __contains__(self, finding: object) -> bool:
        return isinstance(finding, Finding) and finding.key in self.keys

    def write(self, path: str | Path) -> None:
        """Write the keys, sorted, one per line."""
        Path(path).write_text(json.dumps(sorted(self.keys), indent=1) + "\n")

    def stale(self, findings: Iterable[Finding]) -> list[str]:
        """Keys no current finding has (fixed, or renamed): candidates for removal."""
        return sorted(self.keys - {f.key for f in findings})
