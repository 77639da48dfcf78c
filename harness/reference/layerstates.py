"""Per-layer hidden states: asked of a runtime in binary, and the reference's cached beside its answers.

A runtime that can (the hf runtime) answers ``POST /layer_states {"text": [...]}`` with a raw float32
``[prompts, points, hidden]`` tensor (harness/numerics/tensorwire.py's binary answer) and the point names in
``X-Layer-Points``; one without the endpoint answers 404 and the result says why, per runtime
(the adapter's ``capabilities.no_layer_states``). The reference's states are stored in the reference store
(``$HARNESS_REFERENCE_DIR``) as ``<model>-<key16>.layers.npz``, keyed by the checkpoint digest, the
probe prompts, the reference cell and the harness version, written atomically under the store's flock:

    store = LayerStateStore(reference_dir())
    key = layer_key(checkpoint_digest(ckpt), prompts, spec)
    states, source = store.obtain("tiny-llama", key, compute=lambda: boot_reference_states(...))
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from harness import __version__
from harness.config.refspec import ReferenceSpec
from harness.numerics.layerdiff import LayerStates
from harness.numerics.tensors import widen
from harness.reference.store import ReferenceStore
from harness.runtimes import capabilities_of

LAYER_PATH = "/layer_states"
POINTS_HEADER = "X-Layer-Points"  # hf_server.py spells the same name
PROBE = "last-token-v1"  # what a state is (bump when hf_layers.py changes what it captures)
StatesSource = Literal["cache", "stored"]

class LayerStatesUnavailable(Exception):
    """The runtime cannot give per-layer states; the message says which runtime and why."""


def fetch_layer_states(client: Any, prompts: Sequence[str], runtime: str, version: str = "") -> LayerStates:
    """The runtime's per-layer states of ``prompts``; LayerStatesUnavailable when it has no such endpoint."""
    fetcher: Any = getattr(client, "fetcher", None)
    answer = fetcher.post_binary(LAYER_PATH, {"text": list(prompts)}) if hasattr(fetcher, "post_binary") else None
    if answer is None:
        caps = capabilities_of(runtime)
        why = (caps.no_layer_states if caps else "") or f"it has no {LAYER_PATH} endpoint and no other way to them is known"
        raise LayerStatesUnavailable(f"per-layer states not available from {runtime} {version}".rstrip() + f": {why}")
    values, headers = answer
    names = [n for n in headers.get(POINTS_HEADER.lower(), "").split(",") if n]
    return LayerStates.build(names, widen(values), prompts)


def layer_key(checkpoint_digest: str, prompts: Sequence[str], spec: ReferenceSpec) -> str:
    """sha256 over the checkpoint digest, the probe prompts, the reference cell, the probe and the harness version."""
    blob = json.dumps({"checkpoint": checkpoint_digest, "prompts": list(prompts), "reference": spec.as_dict(),
                       "probe": PROBE, "harness": __version__}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


class LayerStateStore:
    """The reference's layer states, one ``.layers.npz`` per (model, key), beside the reference answers."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.locks = ReferenceStore(self.root)

    def path(self, model: str, key: str) -> Path:
        return self.root / f"{model}-{key[:16]}.layers.npz"

    def load(self, model: str, key: str) -> LayerStates | None:
        """The stored states, or None when absent, unreadable or for another key."""
        try:
            with np.load(self.path(model, key), allow_pickle=False) as data:
                if str(data["key"]) != key:
                    return None
                return LayerStates.build([str(n) for n in data["points"]], data["values"],
                                         [str(p) for p in data["prompts"]])
        except (OSError, ValueError, KeyError):
            return None

    def save(self, model: str, key: str, states: LayerStates) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{model}-", suffix=".npz", dir=self.root)
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, key=np.array(key), points=np.array(states.names()), values=states.values,
                     prompts=np.array(states.prompts))
        os.replace(tmp, self.path(model, key))

    def keep(self, model: str, key: str, states: LayerStates) -> bool:
        """Store ``states`` unless some are stored already; True when these were stored."""
        with self.locks.locked(model, key):
            if self.load(model, key) is not None:
                return False
            self.save(model, key, states)
            return True

    def obtain(self, model: str, key: str, compute: Callable[[], LayerStates]) -> tuple[LayerStates, StatesSource]:
        """The stored states (``cache``), else ``compute()`` stored now (``stored``)."""
        with self.locks.locked(model, key):
            found = self.load(model, key)
            if found is not None:
                return found, "cache"
            states = compute()
            self.save(model, key, states)
            return states, "stored"
