"""From options to the list of planned cells: the only place that knows all registries at once."""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import final

from harness.checks import CHECKS
from harness.config.cards import ModelCard
from harness.config.catalog import load_catalog
from harness.config.matrix import Cell, MatrixSpec, PlannedCell, expand
from harness.config.options import HarnessOptions
from harness.errors import ConfigError
from harness.runtimes import RUNTIMES, all_offload_modes

MODEL_GROUPS = {"all": lambda c: True, "tiny": lambda c: c.embedded, "real": lambda c: not c.embedded}


@final
@dataclasses.dataclass(frozen=True)
class Plan:
    """The matrix of this run: cells (with N/A reasons), the cards they use, the checks to run."""

    cells: tuple[PlannedCell, ...]
    cards: Mapping[str, ModelCard]
    checks: tuple[str, ...]

    def card(self, cell: Cell) -> ModelCard:
        return self.cards[cell.model]


def select_models(selectors: tuple[str, ...], cards: Mapping[str, ModelCard]) -> list[str]:
    """Expand 'all' / 'tiny' / 'real' and keep explicit names (validated later)."""
    out: list[str] = []
    for sel in selectors:
        names = [n for n, c in cards.items() if MODEL_GROUPS[sel](c)] if sel in MODEL_GROUPS else [sel]
        out += [n for n in names if n not in out]
    return out


def build_plan(options: HarnessOptions) -> Plan:
    """Validate the options against the registries and expand the matrix."""
    cards = load_catalog(options.catalog, reserved=MODEL_GROUPS)
    if not cards:
        raise ConfigError("no model cards found in models/cards/; the checkout is incomplete")
    spec = MatrixSpec.build(
        runtimes=options.runtimes, devices=options.devices, models=select_models(options.models, cards),
        offload_modes=options.offload_modes, dtypes=options.dtypes, tps=options.tps,
        known_runtimes=RUNTIMES.names(), known_models=[*cards, *MODEL_GROUPS],
        known_offload_modes=all_offload_modes(),
    )
    for w in options.workarounds:
        from harness.runtimes.workarounds import WORKAROUNDS

        WORKAROUNDS.get(w)

    matrix = options.matrix

    def na_reason(cell: Cell) -> str | None:
        from_file = matrix.na_reason(cell) if matrix else None
        simulated = cell.device in options.simulate
        return from_file or RUNTIMES.get(cell.runtime).na_reason(cell, cards[cell.model], simulated=simulated)

    cells = [p for p in expand(spec, na_reason) if not (matrix and matrix.excluded(p.cell))]
    return Plan(tuple(cells), cards, tuple(CHECKS.names()))
