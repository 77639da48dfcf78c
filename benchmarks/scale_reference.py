"""The time to obtain a checkpoint's logprob reference, as logprob_parity obtains it.

The default reference cell (hf, cpu, float32, no offload; harness/config/refspec.py) is asked the card's
prompts through harness.reference.store.obtain in a fresh store, so it is computed: the checkpoint's
digest (the cache key), the memory preflight (harness/reference/memory.py), booting the reference runtime,
generating, tearing it down, writing the cache entry. Then the same call again, answered from the
cache, which is what every later cell of that checkpoint pays.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from harness.checks.logprob_parity import reference_request
from harness.config.cards import ModelCard
from harness.config.options import HarnessOptions
from harness.config.refspec import DEFAULT_REFERENCE
from harness.reference.memory import ReferenceRefused, estimate, preflight
from harness.reference.store import ReferenceStore, boot_and_generate, checkpoint_digest, obtain, reference_cell

MB = 1e6


def reference_time(card: ModelCard, checkpoint: Path, options: HarnessOptions, store_dir: Path) -> dict[str, Any]:
    """Seconds to compute ``card``'s reference from nothing, and to read it back from the cache."""
    request = reference_request(card)
    cell = reference_cell(card.name, DEFAULT_REFERENCE)
    python = options.python_for(cell.runtime)
    out: dict[str, Any] = {"cell": cell.id, "reference": DEFAULT_REFERENCE.label, "prompts": len(request.prompts),
                           "max_new_tokens": request.max_new_tokens, "top_logprobs": request.top_logprobs,
                           "preflight_need_mb": estimate(checkpoint, DEFAULT_REFERENCE).needed_bytes / MB}
    t0 = time.perf_counter()
    key = request.key(checkpoint_digest(checkpoint), DEFAULT_REFERENCE)
    out["checkpoint_digest_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    try:
        preflight(cell, DEFAULT_REFERENCE, checkpoint, python)
    except ReferenceRefused as exc:
        out.update(status="refused", reason=exc.detail)
        return out
    out["preflight_s"] = time.perf_counter() - t0
    store = ReferenceStore(store_dir)
    t0 = time.perf_counter()
    first = obtain(store, card.name, key, own=None, compute=lambda: boot_and_generate(card, options, request))
    out["obtain_s"] = time.perf_counter() - t0  # its own preflight, boot, generate, stop, save
    t0 = time.perf_counter()
    again = obtain(store, card.name, key, own=None, compute=lambda: boot_and_generate(card, options, request))
    out["cached_s"] = time.perf_counter() - t0
    out.update(status="ok", source=first.source, source_again=again.source, origin=first.origin,
               total_s=out["checkpoint_digest_s"] + out["preflight_s"] + out["obtain_s"],
               tokens=sum(len(g.token_ids) for g in first.generations))
    return out
