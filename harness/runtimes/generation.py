"""What a runtime answers to a greedy request: a record, light to import (the reference store and the
report read it; the client that asks for it lives in harness/runtimes/client.py)."""
from __future__ import annotations

import dataclasses
from typing import final


@final
@dataclasses.dataclass(frozen=True)
class Generation:
    """A greedy completion with the logprob of each chosen token and the top-k alternatives."""

    prompt: str
    text: str
    token_ids: tuple[int, ...]
    logprobs: tuple[float, ...]
    top_logprobs: tuple[tuple[tuple[int, float], ...], ...] = ()
