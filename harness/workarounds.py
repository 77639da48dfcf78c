"""Named, opt-in workarounds for known upstream gaps; each changes the system under test and says how."""
from __future__ import annotations

import dataclasses
from typing import final

from harness.registry import Registry


@final
@dataclasses.dataclass(frozen=True)
class Workaround:
    """A named change to how a runtime is launched."""

    name: str
    runtime: str
    summary: str
    changes: str


WORKAROUNDS: Registry[Workaround] = Registry("workaround")
