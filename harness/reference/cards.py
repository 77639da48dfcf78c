"""A card of its own for a reference on an accelerator, leased while it boots and computes.

    inv = reference_inventory(cell, options)                    # probed once
    with reference_cards(cell, options, wait=True, inv=inv) as cards:   # (3,) on a real NPU; None on the CPU
        preflight(..., cards=cards, inv=inv); cellrun.boot(cell, card, options, visible=cards)
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator

from harness.boot import leases
from harness.boot.devices import DeviceInventory
from harness.config.matrix import Cell
from harness.config.options import HarnessOptions
from harness.reference.memory import ReferenceRefused, device_inventory

WAIT_S = 3600.0


def reference_inventory(cell: Cell, options: HarnessOptions) -> DeviceInventory | None:
    """The reference cell's device, probed once (simulated as the run says; None on the CPU)."""
    if cell.device == "cpu":
        return None
    if cell.device in options.simulate:
        return DeviceInventory.simulate(cell.device, options.simulate[cell.device])
    return device_inventory(cell, options.python_for(cell.runtime))


@contextlib.contextmanager
def reference_cards(cell: Cell, options: HarnessOptions, wait: bool,
                    inv: DeviceInventory | None = None) -> Iterator[tuple[int, ...] | None]:
    """One card of the reference cell's device held while the block runs (None on the CPU);
    ``inv``: its device, probed already (reference_inventory)."""
    inv = inv or reference_inventory(cell, options)
    if inv is None:
        yield None
        return
    lease_dir = leases.card_lease_dir(options.out_dir, options.lease_dir, inv.simulated)
    try:
        lease = leases.acquire(cell.device, 1, inv.count, f"reference {cell.id}", lease_dir=lease_dir,
                               events=options.out_dir / "events.jsonl", timeout_s=WAIT_S if wait else 0.0)
    except leases.LeaseTimeout as exc:
        raise ReferenceRefused(cell.id, (
            f"reference {cell.id}: no free {cell.device} card for it now ({exc}). It is computed before the first "
            f"cell that needs it boots, so this means that attempt failed (see that cell's logprob result) or the "
            f"cards are held elsewhere; or compute it on another host: `harness reference export {cell.model} --out "
            f"{cell.model}.golden.json.gz` there, then `harness reference import {cell.model}.golden.json.gz` here")) from exc
    try:
        yield lease.cards
    finally:
        lease.release()
