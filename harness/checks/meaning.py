"""What a check means: the cells it does not apply to (its N/A rules, as data) and the defaults a check
that declares nothing more gets.

A check lists its rules, ``na_rules = (EMPTY_ANSWERS,)``, and ``na_reason`` returns the first one that
holds; a rule is data (``CellRule``: offload modes, devices, runtimes, with the reason) or reads what
the cell's runtime adapter declares it can do (``WeightsUnreadable``: its ``capabilities``), never a
runtime's name.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, Protocol, final

from harness.checks.figure import GENERIC, Figure
from harness.config.cards import ModelCard
from harness.config.matrix import Cell
from harness.runtimes import capabilities_of


class NARule(Protocol):
    """One reason a check means nothing on some cells."""

    def why(self, cell: Cell, card: ModelCard) -> str | None:
        """The reason, when the rule holds for this cell, else None."""


@final
@dataclasses.dataclass(frozen=True)
class CellRule:
    """N/A on cells of these offload modes, devices and runtimes (an empty tuple: any), with the reason.

    >>> rule = CellRule("no real weights", offloads=("meta",))
    >>> rule.why(Cell("sglang", "npu", "m", "meta"), None), rule.why(Cell("sglang", "npu", "m", "none"), None)
    ('no real weights', None)
    """

    reason: str
    offloads: tuple[str, ...] = ()
    devices: tuple[str, ...] = ()
    runtimes: tuple[str, ...] = ()

    def why(self, cell: Cell, card: ModelCard | None) -> str | None:
        holds = ((not self.offloads or cell.offload in self.offloads) and (not self.devices or cell.device in self.devices)
                 and (not self.runtimes or cell.runtime in self.runtimes))
        return self.reason if holds else None


@final
@dataclasses.dataclass(frozen=True)
class WeightsUnreadable:
    """N/A where the cell's runtime returns none of the model's tensors by name and publishes no digests
    this cell can reproduce (its adapter's ``capabilities``)."""

    def why(self, cell: Cell, card: ModelCard) -> str | None:
        caps = capabilities_of(cell.runtime)
        return None if caps is None else caps.why_weights_unreadable(card.architecture, cell.device, cell.tp)


# meta offload (SGLang's --offload-mode meta) materialises empty weights on every use
EMPTY_ANSWERS = CellRule("meta offload creates empty weights on every use by design: its answers are garbage",
                         offloads=("meta",))
EMPTY_WEIGHTS = CellRule("meta offload keeps no real weights by design: nothing to compare", offloads=("meta",))


def first_reason(rules: Sequence[NARule], cell: Cell, card: ModelCard) -> str | None:
    """The reason of the first rule that holds for the cell, or None: the one place N/A rules are judged."""
    return next((why for why in (rule.why(cell, card) for rule in rules) if why), None)


class CheckDefaults:
    """What a check gets unless it declares its own: no N/A rules, the generic figure, no warning, no
    tensor table (the built-in checks and a third party's start from these)."""

    na_rules: tuple[NARule, ...] = ()
    tensor_table: str | None = None  # the details key whose rows the report shows as tensors (max |Δ|, cosine)

    def na_reason(self, cell: Cell, card: ModelCard) -> str | None:
        """Why this check cannot apply to the cell: the first of its ``na_rules`` that holds, or None."""
        return first_reason(self.na_rules, cell, card)

    def figure(self, metrics: Mapping[str, Any], details: Mapping[str, Any]) -> Figure:
        """How a result of this check reads (the report's grid headline and the drill's facts)."""
        return GENERIC

    def warning(self, metrics: Mapping[str, Any]) -> str | None:
        """A caution the report lists above the grids (e.g. too few prompts to detect a drop), or None."""
        return None
