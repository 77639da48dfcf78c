"""Reference answers of a model: the greedy generations of its reference cell, cached on disk.

The reference cell is ``hf-cpu-<model>-none`` in float32 unless a matrix file's ``reference:``
says otherwise (harness/config/refspec.py). Its answers are cached under ``$HARNESS_REFERENCE_DIR``
(default ``~/.cache/llm-harness/reference``), keyed by the checkpoint's safetensors bytes, the
prompts, the generation settings, the reference cell and the harness version, and computed under a
file lock so that concurrent xdist workers compute them once; a golden imported with
``harness reference import`` (harness/commands/goldens.py) sits in the same store under the same key:

    store = ReferenceStore(reference_dir())
    answers = obtain(store, "tiny-llama", request.key(checkpoint_digest(ckpt), spec), own=None,
                     compute=lambda: boot_and_generate(card, options, request), spec=spec)
    answers.source  # "cache", "golden" (imported), "computed" (booted the reference runtime) or "self"
    answers.origin  # "computed here on hf-cpu float32" or "golden imported from gpu-7 (harness 0.9.0, 2026-01-05)"
"""
from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import functools
import hashlib
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar, final

from harness import __version__
from harness.config.cards import ModelCard
from harness.config.matrix import Cell
from harness.config.options import HarnessOptions
from harness.config.refspec import DEFAULT_REFERENCE, ReferenceSpec
from harness.numerics.digestmemo import file_sha256
from harness.runtimes.generation import Generation

REFERENCE_DIR_ENV = "HARNESS_REFERENCE_DIR"
FAULT_ENV = "HARNESS_HF_FAULT"  # hf_server.py's test-only fault switch; never set for the reference
ReferenceSource = Literal["cache", "golden", "computed", "self"]


def reference_dir() -> Path:
    """$HARNESS_REFERENCE_DIR, else ~/.cache/llm-harness/reference."""
    override = os.environ.get(REFERENCE_DIR_ENV)
    return Path(override).expanduser() if override else Path.home() / ".cache" / "llm-harness" / "reference"


def reference_spec(options: HarnessOptions | None) -> ReferenceSpec:
    """The matrix file's ``reference:``, else hf, cpu, float32, no offload."""
    matrix = options.matrix if options is not None else None
    return getattr(matrix, "reference", None) or DEFAULT_REFERENCE


def reference_cell(model: str, spec: ReferenceSpec = DEFAULT_REFERENCE) -> Cell:
    """The cell every other cell of ``model`` is compared with (default: hf, cpu, no offload, float32, tp 1)."""
    return spec.cell(model)


# How hf_server generates (bump when its maths can move a logprob): references cached by an
# older path are recomputed once instead of being compared with figures of another kernel order.
# "batched": the prompts of a request left-padded into one generate call (--max-batch).
GENERATION = "batched"


@final
@dataclasses.dataclass(frozen=True)
class ReferenceRequest:
    """What the reference is asked: the prompts and how to generate."""

    prompts: tuple[str, ...]
    max_new_tokens: int
    top_logprobs: int

    def key(self, checkpoint_digest: str, reference: ReferenceSpec = DEFAULT_REFERENCE) -> str:
        """sha256 over the checkpoint digest, the request, the reference cell and the harness version."""
        blob = json.dumps({"checkpoint": checkpoint_digest, "prompts": list(self.prompts),
                           "max_new_tokens": self.max_new_tokens, "top_logprobs": self.top_logprobs,
                           "reference": reference.as_dict(), "harness": __version__, "generation": GENERATION},
                          sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()

    def as_dict(self) -> dict[str, Any]:
        return {"prompts": list(self.prompts), "max_new_tokens": self.max_new_tokens, "top_logprobs": self.top_logprobs}


@final
@dataclasses.dataclass(frozen=True)
class Produced:
    """Generations and the versions of the runtime that produced them (torch, transformers, ...)."""

    generations: tuple[Generation, ...]
    versions: Mapping[str, Any] = dataclasses.field(default_factory=dict)


Compute = Callable[[], "Sequence[Generation] | Produced"]


@final
@dataclasses.dataclass(frozen=True)
class ReferenceAnswers:
    """The reference's generations and where they came from."""

    generations: tuple[Generation, ...]
    source: ReferenceSource
    key: str
    path: Path
    seconds: float
    origin: str = ""  # "computed here on hf-cpu float32", "golden imported from HOST (harness V, DATE)"
    cell: str = ""  # the reference cell's id: hf-cpu-tiny-llama-none


def checkpoint_digest(directory: Path) -> str:
    """sha256 over every ``*.safetensors`` file of a checkpoint (names and bytes), memoised per file
    on disk (harness.numerics.digestmemo: by path, size and mtime)."""
    outer = hashlib.sha256()
    for f in sorted(Path(directory).glob("*.safetensors")):
        outer.update(f"{f.name}:{file_sha256(f)}\n".encode())
    return outer.hexdigest()


class ReferenceStore:
    """One JSON file per (model, key) under ``root``, written atomically, computed under an flock."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path(self, model: str, key: str) -> Path:
        return self.root / f"{model}-{key[:16]}.json"

    @contextlib.contextmanager
    def locked(self, model: str, key: str) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / f"{model}-{key[:16]}.lock", "a+b") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    def load(self, model: str, key: str) -> tuple[Generation, ...] | None:
        """The cached generations, or None when absent, unreadable or for another key."""
        entry = self.load_entry(model, key)
        return None if entry is None else entry[0]

    def load_entry(self, model: str, key: str) -> tuple[tuple[Generation, ...], dict[str, Any]] | None:
        """The cached generations and the entry's other fields (source, producer, ...), or None."""
        try:
            data = json.loads(self.path(model, key).read_text())
            if data.get("key") != key:
                return None
            return tuple(generation_from_dict(g) for g in data.pop("generations")), data
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None

    def save(self, model: str, key: str, generations: Sequence[Generation], meta: dict[str, Any]) -> None:
        payload = {"key": key, "model": model, **meta, "generations": [dataclasses.asdict(g) for g in generations]}
        fd, tmp = tempfile.mkstemp(prefix=f".{model}-", dir=self.root)
        with os.fdopen(fd, "w") as fh:
            json.dump(payload, fh)
        os.replace(tmp, self.path(model, key))


def obtain(store: ReferenceStore, model: str, key: str, *, own: Compute | None, compute: Compute,
           spec: ReferenceSpec = DEFAULT_REFERENCE) -> ReferenceAnswers:
    """The cached answers (computed earlier or an imported golden); else ``own`` (the cell is the
    reference) or ``compute``, then cached with who produced them."""
    t0 = time.monotonic()
    with store.locked(model, key):
        entry = store.load_entry(model, key)
        if entry is not None:
            source: ReferenceSource = "golden" if entry[1].get("source") == "golden" else "cache"
            return ReferenceAnswers(entry[0], source, key, store.path(model, key), round(time.monotonic() - t0, 3),
                                    origin(entry[1], spec), spec.cell(model).id)
        source = "self" if own is not None else "computed"
        made = (own or compute)()
        produced = made if isinstance(made, Produced) else Produced(tuple(made))
        meta = {"source": source, "harness": __version__, "created": now(), "producer": producer(spec, produced.versions)}
        store.save(model, key, produced.generations, meta)
    return ReferenceAnswers(produced.generations, source, key, store.path(model, key), round(time.monotonic() - t0, 3),
                            origin(meta, spec), spec.cell(model).id)


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def producer(spec: ReferenceSpec, versions: Mapping[str, Any]) -> dict[str, Any]:
    """The producing environment's fingerprint: host, harness, the runtime's versions, the reference cell."""
    return {"host": platform.node(), "harness": __version__, "created": now(), "python": platform.python_version(),
            "platform": platform.platform(), **spec.as_dict(),
            "versions": {k: v for k, v in versions.items() if isinstance(v, (str, int, float)) and v != ""}}


def origin(meta: Mapping[str, Any], spec: ReferenceSpec) -> str:
    """Where an entry came from, for people: ``golden imported from HOST (harness V, DATE)`` or
    ``computed here on hf-cpu float32``."""
    made = meta.get("producer") or {}
    host = str(made.get("host") or "an unknown host")
    if meta.get("source") == "golden":
        return f"golden imported from {host} (harness {made.get('harness', '?')}, {str(made.get('created', '?'))[:10]})"
    where = "here" if host == platform.node() else f"on {host}"
    return f"computed {where} on {spec.label}"


def answers_for(card: ModelCard, options: HarnessOptions | None, digest: str, request: ReferenceRequest, *,
                own: Compute | None = None, also: Callable[[Any], None] | None = None,
                wait_for_cards: bool = True) -> ReferenceAnswers:
    """The reference's answers to ``request`` for the checkpoint ``digest``: from the store; else
    ``own`` (the asking cell is the reference cell); else the reference cell booted for it
    (boot_and_generate, ``also`` and ``wait_for_cards`` passed on), then stored."""
    spec = reference_spec(options)
    compute = functools.partial(boot_and_generate, card, options, request, also=also, wait_for_cards=wait_for_cards)
    return obtain(ReferenceStore(reference_dir()), card.name, request.key(digest, spec), own=own, compute=compute,
                  spec=spec)


def boot_and_generate(card: ModelCard, options: HarnessOptions | None, request: ReferenceRequest,
                      also: Callable[[Any], None] | None = None, wait_for_cards: bool = True) -> Produced:
    """Refuse a reference that will not fit (ReferenceRefused); else boot the model's reference cell
    (without any test fault) on a card leased for it (harness/plugin/refboot.py; ``wait_for_cards=False``:
    only a card free at once), ask it, tear it down. ``also(client)`` runs while it is up (the layer
    states are captured there: harness/checks/layer_divergence.py). events.jsonl says
    ``reference-refused``, or ``reference-boot`` and ``reference-stopped``."""
    def ask(client: Any, fingerprint: Mapping[str, Any]) -> Produced:
        gens = client.generate(list(request.prompts), max_new_tokens=request.max_new_tokens,
                               top_logprobs=request.top_logprobs)
        if also is not None:
            also(client)
        return Produced(tuple(gens), dict(fingerprint.get("versions") or {}))

    return with_reference_runtime(card, options, ask, wait_for_cards)


T = TypeVar("T")


def with_reference_runtime(card: ModelCard, options: HarnessOptions | None,
                           use: Callable[[Any, Mapping[str, Any]], T], wait_for_cards: bool = True) -> T:
    """Boot the model's reference cell after the memory preflight, on a card of its own where it is
    an accelerator cell, give ``use`` its client and fingerprint, tear it down."""
    from harness.boot import cellrun
    from harness.boot.leases import log_event
    from harness.reference.cards import reference_cards, reference_inventory
    from harness.reference.memory import ReferenceRefused, preflight

    options = options or default_options()
    spec = reference_spec(options)
    cell = reference_cell(card.name, spec)
    events = options.out_dir / "events.jsonl"
    simulated = cell.device in options.simulate
    python = options.python_for(cell.runtime)
    try:
        checkpoint = cellrun.resolve_checkpoint(card, python)
        inv = reference_inventory(cell, options)  # the device probed once, for both preflights and the lease
        preflight(cell, spec, checkpoint, python, simulated, inv=inv)  # before waiting for a card: none is large enough
        with reference_cards(cell, options, wait_for_cards, inv) as cards:
            if cards is not None:
                preflight(cell, spec, checkpoint, python, simulated, cards=cards, inv=inv)  # that card's free memory
            log_event(events, "reference-boot", cell.id, cell.device, cards or ())
            with _env_without(FAULT_ENV):  # its own log: the matrix may be booting the same cell meanwhile
                rt = cellrun.boot(cell, card, options, visible=cards, simulated=simulated,
                                  log_name=f"reference-{cell.id}.log")
            try:
                return use(rt.client, rt.fingerprint)
            finally:
                cellrun.shutdown(rt)
                log_event(events, "reference-stopped", cell.id, cell.device, cards or ())
    except ReferenceRefused:
        log_event(events, "reference-refused", cell.id, cell.device, ())
        raise


def default_options(out_dir: Path | None = None) -> HarnessOptions:
    """Options for booting the reference when the caller passed none: the hf runtime's interpreter
    from $HARNESS_PYTHON_HF (else this one), logs under ``out_dir``, $HARNESS_OUT or a temporary directory."""
    out = out_dir or os.environ.get("HARNESS_OUT") or tempfile.mkdtemp(prefix="harness-reference-")
    python = os.environ.get("HARNESS_PYTHON_HF") or sys.executable
    return HarnessOptions(out_dir=Path(out), runtimes=("hf",), devices=("cpu",), models=(), offload_modes=("none",),
                          dtypes=("float32",), tps=(1,), runtime_python={"hf": python}, boot_timeout_s=None,
                          workarounds=())


@contextlib.contextmanager
def _env_without(name: str) -> Iterator[None]:
    saved = os.environ.pop(name, None)
    try:
        yield
    finally:
        if saved is not None:
            os.environ[name] = saved


def generation_from_dict(data: dict[str, Any]) -> Generation:
    return Generation(
        prompt=str(data["prompt"]), text=str(data["text"]), token_ids=tuple(int(t) for t in data["token_ids"]),
        logprobs=tuple(float(x) for x in data["logprobs"]),
        top_logprobs=tuple(tuple((int(t), float(lp)) for t, lp in step) for step in data.get("top_logprobs") or ()),
    )
