"""An accelerator reference: a card leased for it, its memory preflight on that card, and computed
before a cell boots.

A reference on the CPU boots when first needed, inside the logprob check of the first cell that
needs it. One on an accelerator needs a card of its own: computed inside a cell's check it would
wait for a card while that cell holds one, and under ``-n`` with every card held by the matrix it
would wait forever. So the cell fixture obtains it before the cell leases its cards (``prepare``),
a cell is not booted ahead while its accelerator reference is missing (``ready``), and inside a
check (``wait=False``) a card is taken only if one is free at once, else the check says why
(harness/reference/cards.py):

    inv = reference_inventory(cell, options)                    # probed once
    with reference_cards(cell, options, wait=True, inv=inv) as cards:   # (3,) on a real NPU; None on the CPU
        preflight(..., cards=cards, inv=inv); cellrun.boot(cell, card, options, visible=cards)
"""
from __future__ import annotations

import functools

from harness.config.cards import ModelCard
from harness.config.matrix import Cell
from harness.config.options import HarnessOptions
from harness.errors import HarnessError


def needs_card(cell: Cell, card: ModelCard, options: HarnessOptions) -> bool:
    """The cell's logprob reference runs on an accelerator and is another cell than this one."""
    from harness.reference.store import reference_cell, reference_spec

    spec = reference_spec(options)
    return spec.device != "cpu" and cell != reference_cell(card.name, spec)


def ready(cell: Cell, card: ModelCard, options: HarnessOptions) -> bool:
    """Whether booting ``cell`` can go ahead: no accelerator reference is needed, or all it will be
    asked is in the store."""
    if not needs_card(cell, card, options):
        return True
    try:
        store, keyed = _entries(card, options)
        return all(store.load(card.name, key) is not None for key, _ in keyed)
    except (HarnessError, OSError):
        return False


def prepare(cell: Cell, card: ModelCard, options: HarnessOptions) -> str | None:
    """Obtain ``cell``'s accelerator reference (every request the logprob and accuracy checks will
    make of it) before the cell leases its cards; None when done or not needed, else why not (the
    cell's checks then report it)."""
    if not needs_card(cell, card, options):
        return None
    from harness.reference.store import boot_and_generate, obtain, reference_spec

    try:
        store, keyed = _entries(card, options)
        for key, request in keyed:
            obtain(store, card.name, key, own=None, spec=reference_spec(options),
                   compute=functools.partial(boot_and_generate, card, options, request, wait_for_cards=True))
    except (HarnessError, OSError) as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def _entries(card: ModelCard, options: HarnessOptions):  # -> (ReferenceStore, [(key, ReferenceRequest)])
    """The store and every request a cell's checks make of the reference: the logprob check's, and
    the accuracy check's per answer length (the same entry when a card has one length)."""
    from harness.boot import cellrun
    from harness.checks.accuracy import questions
    from harness.checks.accuracy_paired import length_requests
    from harness.checks.logprob_parity import reference_request
    from harness.reference.store import ReferenceStore, checkpoint_digest, reference_dir, reference_spec

    spec = reference_spec(options)
    digest = checkpoint_digest(cellrun.resolve_checkpoint(card, options.python_for(spec.runtime)))
    prompts = [[q.prompt for q in questions(s)] for s in card.sets]
    requests = [reference_request(card), *(r for _, r in length_requests(card, card.sets, prompts))]
    keyed = {r.key(digest, spec): r for r in requests}
    return ReferenceStore(reference_dir()), list(keyed.items())
