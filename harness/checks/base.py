"""The contract every check fulfils, and the values it produces."""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, Protocol, final

from harness.config.cards import ModelCard
from harness.runtimes.client import RuntimeClient
from harness.config.matrix import Cell
from harness.config.options import HarnessOptions

CheckStatus = Literal["pass", "fail", "na"]


@final
@dataclasses.dataclass(frozen=True)
class CheckResult:
    """The verdict of one check on one cell, with its key figures and evidence."""

    status: CheckStatus
    reason: str = ""
    metrics: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    details: Mapping[str, Any] = dataclasses.field(default_factory=dict)


@final
@dataclasses.dataclass(frozen=True)
class CheckContext:
    """What a check may use: the cell, its card and checkpoint, and the live runtime's client.

    ``options``: the run's options, for checks that boot another runtime (logprob parity's
    reference); None when the caller has none, and such checks then fall back to the defaults.
    """

    cell: Cell
    card: ModelCard
    checkpoint: Path
    client: RuntimeClient
    weight_layout: str
    options: HarnessOptions | None = None


class Check(Protocol):
    """A conformance check run against a live runtime."""

    name: str
    key_metric: str

    def na_reason(self, cell: Cell, card: ModelCard) -> str | None:
        """Why this check cannot apply to the cell (an N/A result), or None."""

    def run(self, ctx: CheckContext) -> CheckResult:
        """Query the runtime and judge."""
