"""The contract every check fulfils, and the values it produces."""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, final

from harness.checks.figure import Figure
from harness.checks.meaning import NARule
from harness.config.cards import ModelCard
from harness.config.matrix import Cell
from harness.config.options import HarnessOptions
from harness.runtimes import capabilities_of
from harness.runtimes.base import Capabilities

if TYPE_CHECKING:  # the client (requests, numpy) is imported where a runtime is asked something
    from harness.runtimes.client import RuntimeClient

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

    @property
    def capabilities(self) -> Capabilities | None:
        """What the cell's runtime declares it can do (None: a runtime not registered here)."""
        return capabilities_of(self.cell.runtime)


class Check(Protocol):
    """A conformance check run against a live runtime, and what its results mean (harness/checks/meaning.py's
    CheckDefaults gives every member but ``name``, ``key_metric`` and ``run`` a default)."""

    name: str
    key_metric: str
    na_rules: tuple[NARule, ...]
    tensor_table: str | None

    def na_reason(self, cell: Cell, card: ModelCard) -> str | None:
        """Why this check cannot apply to the cell (an N/A result), or None."""

    def figure(self, metrics: Mapping[str, Any], details: Mapping[str, Any]) -> Figure:
        """How a result reads: the report's headline and labelled facts, from its metrics and details."""

    def warning(self, metrics: Mapping[str, Any]) -> str | None:
        """A caution about a result the report lists above the grids, or None."""

    def run(self, ctx: CheckContext) -> CheckResult:
        """Query the runtime and judge."""
