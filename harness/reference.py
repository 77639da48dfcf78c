"""Reference answers of a model: the greedy generations of its reference cell, cached on disk.

The reference cell is ``hf-cpu-<model>-none`` in float32. Its answers are cached under
``$HARNESS_REFERENCE_DIR`` (default ``~/.cache/llm-harness/reference``), keyed by the checkpoint's
safetensors bytes, the prompts, the generation settings and the harness version, and computed
under a file lock so that concurrent xdist workers compute them once:

    store = ReferenceStore(reference_dir())
    answers = obtain(store, "tiny-llama", request.key(checkpoint_digest(ckpt)), own=None,
                     compute=lambda: boot_and_generate(card, options, request))
    answers.source  # "cache", "computed" (booted the reference runtime) or "self"
"""
from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal, final

from harness import __version__
from harness.cards import ModelCard
from harness.client import Generation
from harness.digestmemo import file_sha256
from harness.matrix import Cell
from harness.options import HarnessOptions

REFERENCE_DIR_ENV = "HARNESS_REFERENCE_DIR"
FAULT_ENV = "HARNESS_HF_FAULT"  # hf_server.py's test-only fault switch; never set for the reference
ReferenceSource = Literal["cache", "computed", "self"]
Compute = Callable[[], Sequence[Generation]]


def reference_dir() -> Path:
    """$HARNESS_REFERENCE_DIR, else ~/.cache/llm-harness/reference."""
    override = os.environ.get(REFERENCE_DIR_ENV)
    return Path(override).expanduser() if override else Path.home() / ".cache" / "llm-harness" / "reference"


def reference_cell(model: str) -> Cell:
    """The cell every other cell of ``model`` is compared with: hf, cpu, no offload, float32, tp 1."""
    return Cell("hf", "cpu", model, "none", "float32", 1)


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

    def key(self, checkpoint_digest: str) -> str:
        """sha256 over the checkpoint digest, the request and the harness version."""
        blob = json.dumps({"checkpoint": checkpoint_digest, "prompts": list(self.prompts),
                           "max_new_tokens": self.max_new_tokens, "top_logprobs": self.top_logprobs,
                           "harness": __version__, "generation": GENERATION}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()


@final
@dataclasses.dataclass(frozen=True)
class ReferenceAnswers:
    """The reference's generations and where they came from."""

    generations: tuple[Generation, ...]
    source: ReferenceSource
    key: str
    path: Path
    seconds: float


def checkpoint_digest(directory: Path) -> str:
    """sha256 over every ``*.safetensors`` file of a checkpoint (names and bytes), memoised per file
    on disk (harness.digestmemo: by path, size and mtime)."""
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
        try:
            data = json.loads(self.path(model, key).read_text())
            if data.get("key") != key:
                return None
            return tuple(_generation(g) for g in data["generations"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def save(self, model: str, key: str, generations: Sequence[Generation], meta: dict[str, Any]) -> None:
        payload = {"key": key, "model": model, **meta, "generations": [dataclasses.asdict(g) for g in generations]}
        fd, tmp = tempfile.mkstemp(prefix=f".{model}-", dir=self.root)
        with os.fdopen(fd, "w") as fh:
            json.dump(payload, fh)
        os.replace(tmp, self.path(model, key))


def obtain(store: ReferenceStore, model: str, key: str, *, own: Compute | None, compute: Compute) -> ReferenceAnswers:
    """The cached answers; else ``own`` (the cell is the reference) or ``compute``, then cached."""
    t0 = time.monotonic()
    with store.locked(model, key):
        cached = store.load(model, key)
        if cached is not None:
            return ReferenceAnswers(cached, "cache", key, store.path(model, key), round(time.monotonic() - t0, 3))
        source: ReferenceSource = "self" if own is not None else "computed"
        gens = tuple((own or compute)())
        store.save(model, key, gens, {"source": source, "harness": __version__,
                                      "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
    return ReferenceAnswers(gens, source, key, store.path(model, key), round(time.monotonic() - t0, 3))


def boot_and_generate(card: ModelCard, options: HarnessOptions | None, request: ReferenceRequest) -> list[Generation]:
    """Boot the model's reference cell (without any test fault), ask it, tear it down."""
    from harness import cellrun  # cellrun imports the checks, which import this module

    with _env_without(FAULT_ENV):
        cell = reference_cell(card.name)  # its own log: the matrix may be booting the same cell meanwhile
        rt = cellrun.boot(cell, card, options or default_options(), log_name=f"reference-{cell.id}.log")
    try:
        return rt.client.generate(list(request.prompts), max_new_tokens=request.max_new_tokens,
                                  top_logprobs=request.top_logprobs)
    finally:
        cellrun.shutdown(rt)


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


def _generation(data: dict[str, Any]) -> Generation:
    return Generation(
        prompt=str(data["prompt"]), text=str(data["text"]), token_ids=tuple(int(t) for t in data["token_ids"]),
        logprobs=tuple(float(x) for x in data["logprobs"]),
        top_logprobs=tuple(tuple((int(t), float(lp)) for t, lp in step) for step in data.get("top_logprobs") or ()),
    )
