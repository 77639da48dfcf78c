"""Where a cell departs from its reference: the first divergent layer, added to logprob parity's result.

``--layer-diff on-failure`` (the default) runs it when logprob parity fails, ``always`` on every
cell, ``never`` not at all. It asks the cell for the per-layer last-token states of the card's first
``PROBE_PROMPTS`` prompts (harness/reference/layerstates.py) and compares them with the reference's
(harness/numerics/layerdiff.py, per-dtype tolerance), e.g. ``first divergent layer: layer 1 attention
output: rel. error 0.05 > 0.001, cosine 1``.

The reference's states are captured whenever a clean reference runtime is up anyway: the reference
cell itself (its own states, after its check) and the reference a check boots for its answers
(``boot_and_generate(..., also=probe.keep)``); both cost one forward pass per probe prompt. So a
failing cell usually compares without booting anything. Only when none are stored (a golden
imported from another host, a cache from before this check) is the reference booted for them once,
and then stored (``layer_reference_source``: ``cache``, ``booted``, ``self``).
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, Literal, final, get_args

from harness.checks.accuracy import card_prompts
from harness.checks.base import CheckContext, CheckResult
from harness.config.cards import ModelCard
from harness.config.matrix import Cell
from harness.config.options import HarnessOptions
from harness.errors import HarnessError, RuntimeRequestError
from harness.numerics.layerdiff import LayerDivergence, LayerStates, compare
from harness.reference.layerstates import LayerStateStore, LayerStatesUnavailable, fetch_layer_states, layer_key
from harness.reference.store import (
    checkpoint_digest,
    default_options,
    reference_dir,
    reference_spec,
    with_reference_runtime,
)
from harness.registry import Registry

LayerDiffMode = Literal["always", "on-failure", "never"]
LAYER_DIFF_MODES: tuple[str, ...] = get_args(LayerDiffMode)
DEFAULT_MODE: LayerDiffMode = "on-failure"
PROBE_PROMPTS = 3

# Runtimes whose running server cannot give per-layer states but a second, dumping boot of the cell can.
DumpBoot = Callable[[Cell, ModelCard, HarnessOptions, tuple[str, ...]], LayerStates]
SECOND_BOOT: Registry[DumpBoot] = Registry("layer dump")
SECOND_BOOT.register("sglang", "harness.reference.sglang_layers:dumped_states")


def layer_diff_mode(options: HarnessOptions | None) -> LayerDiffMode:
    """The run's ``--layer-diff`` (the default when the caller has no options)."""
    mode = getattr(options, "layer_diff", None) or DEFAULT_MODE
    return mode if mode in LAYER_DIFF_MODES else DEFAULT_MODE


@final
@dataclasses.dataclass(frozen=True)
class LayerProbe:
    """One cell's layer comparison: its probe prompts, the reference's store key, and the mode."""

    card: ModelCard
    cell: Cell
    reference_runtime: str
    mode: LayerDiffMode
    prompts: tuple[str, ...]
    key: str
    options: HarnessOptions | None
    store: LayerStateStore

    @classmethod
    def of(cls, ctx: CheckContext) -> LayerProbe:
        spec = reference_spec(ctx.options)
        prompts = tuple(card_prompts(ctx.card)[:PROBE_PROMPTS])
        return cls(ctx.card, ctx.cell, spec.runtime, layer_diff_mode(ctx.options), prompts,
                   layer_key(checkpoint_digest(ctx.checkpoint), prompts, spec), ctx.options,
                   LayerStateStore(reference_dir()))

    def keep(self, client: Any) -> None:
        """Store a clean reference runtime's states, if none are stored and the mode may use them."""
        if self.mode == "never" or self.store.load(self.card.name, self.key) is not None:
            return
        try:
            self.store.keep(self.card.name, self.key, fetch_layer_states(client, self.prompts, self.reference_runtime))
        except (LayerStatesUnavailable, RuntimeRequestError, ValueError):
            pass  # no states from this reference: a failing cell boots it for them, or says why not

    def judge(self, result: CheckResult, client: Any, *, is_reference: bool, version: str = "") -> CheckResult:
        """``result`` with the layer comparison added where the mode asks for one."""
        if self.mode == "never":
            return result
        if self.mode == "on-failure" and result.status != "fail":
            if is_reference:
                self.keep(client)
            return result
        try:
            got, how = self._cell_states(client, version)
            if is_reference and self.store.keep(self.card.name, self.key, got):
                ref, source = got, "self"  # the clean reference cell: its states are the reference's
            else:
                ref, source = self._reference_states()
            return _with(result, compare(ref, got, self.cell.dtype), source, how)
        except LayerStatesUnavailable as exc:
            return _with_note(result, str(exc), "not available")
        except (HarnessError, ValueError) as exc:
            return _with_note(result, f"layer states could not be compared: {exc}", "not compared")

    def _cell_states(self, client: Any, version: str) -> tuple[LayerStates, str]:
        """The cell's states from its endpoint, else from a second, dumping boot where its runtime has one."""
        try:
            return fetch_layer_states(client, self.prompts, self.cell.runtime, version), "endpoint"
        except LayerStatesUnavailable:
            if self.cell.runtime not in SECOND_BOOT:
                raise
        dump = SECOND_BOOT.get(self.cell.runtime)
        return dump(self.cell, self.card, self.options or default_options(), self.prompts), "second boot, dumping"

    def _reference_states(self) -> tuple[LayerStates, str]:
        def boot() -> LayerStates:
            return with_reference_runtime(self.card, self.options,
                                          lambda client, _fp: fetch_layer_states(client, self.prompts,
                                                                                 self.reference_runtime),
                                          wait_for_cards=False)  # inside a check: the cell holds its cards

        states, source = self.store.obtain(self.card.name, self.key, boot)
        return states, "cache" if source == "cache" else "booted"


def _with(result: CheckResult, div: LayerDivergence, source: str, how: str) -> CheckResult:
    first = div.first
    shown = first or max(div.diffs, key=lambda d: d.rel_error / div.tolerance.max_rel_error)
    metrics: dict[str, Any] = {
        "layer_divergence": div.summary(), "layer_first": first.point.name if first else "",
        "layer_index": first.point.layer if first else None, "layer_module": first.point.module if first else "",
        "layer_rel_error": shown.rel_error, "layer_cosine": shown.cosine,
        "layer_limit_rel_error": div.tolerance.max_rel_error, "layer_limit_cosine": div.tolerance.min_cosine,
        "layer_points": len(div.diffs), "layer_prompts": div.prompts, "layer_reference_source": source,
        "layer_cell_source": how}
    reason = result.reason + (f"; first divergent layer: {div.summary()}" if first else
                              f"; per-layer states: {div.summary()}" if result.status == "fail" else "")
    return dataclasses.replace(result, reason=reason, metrics={**result.metrics, **metrics},
                               details={**result.details, "layers": div.rows()})


def _with_note(result: CheckResult, note: str, short: str) -> CheckResult:
    reason = result.reason + (f"; first divergent layer: {short} ({note.split(':', 1)[0]})"
                              if result.status == "fail" else "")
    return dataclasses.replace(result, reason=reason, metrics={**result.metrics, "layer_divergence": note})
