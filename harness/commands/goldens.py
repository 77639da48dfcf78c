"""Golden references: a model's reference answers in one file, made on one host and used on others.

A golden file (JSON, gzip when its name ends in ``.gz``; read either way) holds what the reference
store caches (greedy answers with chosen and top-k logprobs) and what they are only valid for: the
checkpoint digest, the prompts and generation settings, the reference cell, and the producing
environment (host, harness, torch / transformers versions, runtime, device, dtype):

    golden = export("tiny-llama", Path("tiny-llama.golden.json.gz"), options)  # computes it when not cached
    imported = import_golden(Path("tiny-llama.golden.json.gz"), options)        # into the store, under its key

Import refuses a golden whose checkpoint digest, prompts or generation settings differ from the
local checkpoint and card (GoldenMismatch, naming each difference).
"""
from __future__ import annotations

import dataclasses
import gzip
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, final

from harness import __version__
from harness.config.cards import ModelCard
from harness.config.catalog import load_catalog
from harness.config.options import HarnessOptions
from harness.config.refspec import ReferenceSpec
from harness.errors import ConfigError
from harness.reference.store import (
    GENERATION,
    ReferenceRequest,
    ReferenceStore,
    boot_and_generate,
    checkpoint_digest,
    generation_from_dict,
    now,
    obtain,
    reference_dir,
    reference_spec,
)
from harness.runtimes.generation import Generation

FORMAT = "llm-harness-golden"
VERSION = 1


class GoldenMismatch(ConfigError):
    """A golden made for other weights, prompts or generation settings than the local checkpoint and card."""


@final
@dataclasses.dataclass(frozen=True)
class Golden:
    """One model's reference answers and everything they are valid for."""

    model: str
    checkpoint_digest: str
    reference: ReferenceSpec
    request: ReferenceRequest
    generation: str  # hf_server's generation path (reference.GENERATION) when it was made
    producer: Mapping[str, Any]
    generations: tuple[Generation, ...]

    def as_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, "version": VERSION, "model": self.model, "checkpoint_digest": self.checkpoint_digest,
                "reference": self.reference.as_dict(), **self.request.as_dict(), "generation": self.generation,
                "producer": dict(self.producer), "generations": [dataclasses.asdict(g) for g in self.generations]}

    @classmethod
    def from_dict(cls, data: Any, where: str) -> Golden:
        if not isinstance(data, Mapping) or data.get("format") != FORMAT:
            raise ConfigError(f"{where} is not a golden reference file (no \"format\": \"{FORMAT}\"); "
                              f"make one with `harness reference export MODEL --out FILE`")
        if data.get("version") != VERSION:
            raise ConfigError(f"{where}: golden format version {data.get('version')!r}, this harness reads {VERSION}; "
                              f"export it again with harness {__version__}")
        try:
            request = ReferenceRequest(tuple(map(str, data["prompts"])), int(data["max_new_tokens"]),
                                       int(data["top_logprobs"]))
            return cls(str(data["model"]), str(data["checkpoint_digest"]),
                       ReferenceSpec.from_mapping(data["reference"], f"{where}: reference"), request,
                       str(data.get("generation", "")), dict(data.get("producer") or {}),
                       tuple(generation_from_dict(g) for g in data["generations"]))
        except KeyError as exc:
            raise ConfigError(f"{where}: golden file is incomplete: missing field {exc}; export it again") from None
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{where}: golden file is damaged ({type(exc).__name__}: {exc}); export it again") from None

    @property
    def made(self) -> str:
        """``gpu-7 (harness 0.9.0, 2026-01-05; torch 2.13.0, transformers 4.57.1)``."""
        p, versions = self.producer, self.producer.get("versions") or {}
        libs = ", ".join(f"{k} {versions[k]}" for k in ("torch", "transformers") if versions.get(k))
        return (f"{p.get('host', '?')} (harness {p.get('harness', '?')}, {str(p.get('created', '?'))[:10]}"
                + (f"; {libs}" if libs else "") + ")")


@final
@dataclasses.dataclass(frozen=True)
class LocalModel:
    """A model as this host has it: its card, checkpoint, checkpoint digest and what its reference is asked."""

    card: ModelCard
    checkpoint: Path
    digest: str
    request: ReferenceRequest

    @classmethod
    def resolve(cls, name: str, options: HarnessOptions, runtime: str = "hf") -> LocalModel:
        from harness.boot.cellrun import resolve_checkpoint
        from harness.checks.logprob_parity import reference_request

        cards = load_catalog(options.catalog)  # the package's cards, --cards directories, --model checkpoints
        if name not in cards:
            raise ConfigError(f"unknown model {name!r}; known: {', '.join(sorted(cards))}")
        card = cards[name]
        checkpoint = resolve_checkpoint(card, options.python_for(runtime))
        return cls(card, checkpoint, checkpoint_digest(checkpoint), reference_request(card))


def write(golden: Golden, path: Path) -> None:
    """Write atomically; gzip when the name ends in ``.gz``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = json.dumps(golden.as_dict()).encode()
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(gzip.compress(data, mtime=0) if path.name.endswith(".gz") else data)
    os.replace(tmp, path)


def read(path: Path) -> Golden:
    """Read a golden file, gzip or not (told by its first bytes)."""
    try:
        raw = path.read_bytes()
        text = gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
        data = json.loads(text)
    except OSError as exc:
        raise ConfigError(f"golden file {path} cannot be read: {exc.strerror}; check the path") from None
    except (ValueError, EOFError, gzip.BadGzipFile) as exc:
        raise ConfigError(f"golden file {path} is not JSON (or gzip of JSON): {exc}; export it again") from None
    return Golden.from_dict(data, str(path))


def export(model: str, out: Path, options: HarnessOptions) -> tuple[Golden, str]:
    """Write ``model``'s reference (the configured cell) to ``out``; computed first when not cached.

    Returns the golden and where its answers came from: ``cache``, ``golden`` (an imported one) or ``computed``."""
    local = LocalModel.resolve(model, options, reference_spec(options).runtime)
    spec, store = reference_spec(options), ReferenceStore(reference_dir())
    key = local.request.key(local.digest, spec)
    answers = obtain(store, model, key, own=None, compute=lambda: boot_and_generate(local.card, options, local.request),
                     spec=spec)
    entry = store.load_entry(model, key)
    producer = dict((entry[1] if entry else {}).get("producer") or {})
    golden = Golden(model, local.digest, spec, local.request, GENERATION, producer, answers.generations)
    write(golden, out)
    return golden, answers.source


def import_golden(path: Path, options: HarnessOptions) -> tuple[Golden, Path]:
    """Check ``path`` against the local checkpoint and card, then place it in the reference store under its key."""
    golden = read(path)
    local = LocalModel.resolve(golden.model, options, golden.reference.runtime)
    differences = mismatches(golden, local)
    if differences:
        raise GoldenMismatch(f"golden {path} refused for model {golden.model} (made on {golden.made}): "
                             + "; ".join(differences) + ". A golden is valid only for the same weights, prompts and "
                             "generation settings: export it again from this checkpoint and card on a host that can "
                             "compute the reference, or point the card at the weights the golden was made from")
    store = ReferenceStore(reference_dir())
    key = local.request.key(local.digest, golden.reference)
    meta = {"source": "golden", "harness": __version__, "created": now(), "producer": dict(golden.producer),
            "imported_from": str(path), "checkpoint_digest": golden.checkpoint_digest, "generation": golden.generation}
    with store.locked(golden.model, key):
        store.save(golden.model, key, golden.generations, meta)
    return golden, store.path(golden.model, key)


def mismatches(golden: Golden, local: LocalModel) -> list[str]:
    """Each way the golden differs from what the local card asks of the local checkpoint (empty: it fits)."""
    out = []
    if golden.checkpoint_digest != local.digest:
        out.append(f"checkpoint differs: the golden was made from weights with sha256 {golden.checkpoint_digest[:16]}…, "
                   f"the local checkpoint {local.checkpoint} has sha256 {local.digest[:16]}…")
    want, got = local.request, golden.request
    if got.prompts != want.prompts:
        out.append(_prompt_difference(got.prompts, want.prompts, local.card.name))
    for field in ("max_new_tokens", "top_logprobs"):
        if getattr(got, field) != getattr(want, field):
            out.append(f"generation settings differ: {field} is {getattr(got, field)} in the golden, "
                       f"{getattr(want, field)} for the local card")
    return out


def _prompt_difference(golden: tuple[str, ...], card: tuple[str, ...], model: str) -> str:
    first = next((i for i, (a, b) in enumerate(zip(golden, card, strict=False)) if a != b), min(len(golden), len(card)))
    at = (f"first at prompt {first}: golden {golden[first]!r}, card {card[first]!r}"
          if first < min(len(golden), len(card)) else f"the first {first} agree")
    return f"prompts differ: the golden has {len(golden)} prompts, the local card {model} asks {len(card)}; {at}"
