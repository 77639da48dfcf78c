"""The tiny model zoo: build specs, the on-disk cache, and building on demand in a subprocess.

Pure library: stdlib and yaml only. Checkpoints are built by ``build_tiny.py`` run with a
runtime's own interpreter, so this process never imports torch.

    spec = BuildSpec(arch="llama", facts=DEFAULT_FACTS)
    path = ensure_built("tiny-llama", spec, python="/envs/vllm/bin/python")
    # -> ~/.cache/llm-harness/zoo/tiny-llama-<12 hex>/ with config.json, model.safetensors, ...
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal, final, get_args

import yaml

ZooArch = Literal["llama", "qwen2_moe", "qwen3_moe", "glm4_moe_lite"]
ARCHES: Final[tuple[str, ...]] = get_args(ZooArch)
BUILDER: Final = Path(__file__).resolve().with_name("build_tiny.py")
DEFAULT_FACTS: Final = Path(__file__).resolve().parent / "facts" / "world.yaml"
RECORD_NAME: Final = "zoo.json"
BUILD_TIMEOUT_S: Final = 600.0
TAIL_LINES: Final = 30
_NAME_PATTERN: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_INSTALL_HINT: Final = "-m pip install torch==2.13.0 transformers tokenizers safetensors pyyaml"


class FactsFileError(ValueError):
    """A facts file is missing, is not YAML, or holds a malformed item."""


class ZooBuildError(Exception):
    """build_tiny.py failed; the message carries its exit code, output tail and the fix."""

    def __init__(self, message: str, *, arch: str, python: str, returncode: int | None,
                 output_tail: str) -> None:
        super().__init__(message)
        self.arch = arch
        self.python = python
        self.returncode = returncode
        self.output_tail = output_tail


@final
@dataclass(frozen=True)
class Fact:
    """One prompt and the single-word answer a zoo model continues it with."""

    prompt: str
    answer: str

    @classmethod
    def from_item(cls, item: object, *, path: Path, index: int) -> Fact:
        """Validate one YAML item, naming the file and item index when it is malformed."""
        expected = "expected a mapping {prompt: <text>, answer: <one word>}"
        if not isinstance(item, dict) or set(item) != {"prompt", "answer"}:
            raise FactsFileError(f"{path}: item {index} is {item!r}; {expected}.")
        prompt, answer = item["prompt"], item["answer"]
        if not isinstance(prompt, str) or not prompt.strip():
            raise FactsFileError(f"{path}: item {index} has prompt {prompt!r}; {expected}.")
        if not isinstance(answer, str) or len(answer.split()) != 1:
            raise FactsFileError(
                f"{path}: item {index} has answer {answer!r}; answers must be one word "
                f"(the training text is '<prompt> <answer>.')."
            )
        return cls(prompt=prompt.strip(), answer=answer.strip())


def load_facts(path: Path) -> tuple[Fact, ...]:
    """Read and validate a facts file: a non-empty YAML list of {prompt, answer} items."""
    try:
        items = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise FactsFileError(f"{path}: cannot read facts file ({exc}); pass an existing file.") from exc
    except yaml.YAMLError as exc:
        raise FactsFileError(f"{path}: not valid YAML ({exc}); fix the syntax.") from exc
    if not isinstance(items, list) or not items:
        raise FactsFileError(
            f"{path}: got {type(items).__name__}; expected a non-empty YAML list of "
            f"{{prompt, answer}} items."
        )
    facts = tuple(Fact.from_item(item, path=path, index=i) for i, item in enumerate(items))
    seen: dict[str, int] = {}
    for index, fact in enumerate(facts):
        if fact.prompt in seen:
            raise FactsFileError(
                f"{path}: item {index} repeats the prompt of item {seen[fact.prompt]} "
                f"({fact.prompt!r}); each prompt must have one answer."
            )
        seen[fact.prompt] = index
    return facts


@final
@dataclass(frozen=True)
class BuildSpec:
    """What to build: an architecture trained on a facts file with a seed."""

    arch: ZooArch
    facts: Path
    seed: int = 0

    def __post_init__(self) -> None:
        if self.arch not in ARCHES:
            raise ValueError(f"unknown zoo arch {self.arch!r}; choose one of {', '.join(ARCHES)}.")
        if not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"zoo seed must be a non-negative int, got {self.seed!r}.")

    def build_hash(self) -> str:
        """First 12 hex of sha256 over builder source, facts bytes, arch and seed."""
        digest = hashlib.sha256()
        parts = (BUILDER.read_bytes(), Path(self.facts).read_bytes(), self.arch.encode(),
                 str(self.seed).encode())
        for part in parts:
            digest.update(len(part).to_bytes(8, "big"))
            digest.update(part)
        return digest.hexdigest()[:12]


def zoo_dir() -> Path:
    """The cache root: $HARNESS_ZOO_DIR, else ~/.cache/llm-harness/zoo."""
    override = os.environ.get("HARNESS_ZOO_DIR")
    if override:
        return Path(override).expanduser()
    return Path.home() / ".cache" / "llm-harness" / "zoo"


def read_record(model_dir: Path) -> dict[str, Any]:
    """The zoo.json written by build_tiny.py (arch, seed, build_hash, answers, ...)."""
    return json.loads((Path(model_dir) / RECORD_NAME).read_text(encoding="utf-8"))


def is_complete(model_dir: Path) -> bool:
    """True when MODEL_DIR holds a finished build (zoo.json is written last, then swapped in)."""
    return (Path(model_dir) / RECORD_NAME).is_file()


@contextmanager
def _exclusive_lock(lock_path: Path) -> Iterator[None]:
    """Hold an flock on LOCK_PATH so concurrent workers build a model once."""
    with open(lock_path, "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def ensure_built(
    name: str,
    spec: BuildSpec,
    python: str,
    *,
    cache_dir: Path | None = None,
    log: Callable[[str], None] | None = None,
) -> Path:
    """Return ``<cache>/<name>-<hash>/``, building it with PYTHON first if it is not complete."""
    if not _NAME_PATTERN.fullmatch(name):
        raise ValueError(f"zoo model name {name!r} must match {_NAME_PATTERN.pattern} (it names a folder).")
    load_facts(spec.facts)  # fail here, with the item index, rather than inside the subprocess
    build_hash = spec.build_hash()
    cache = Path(cache_dir) if cache_dir is not None else zoo_dir()
    target = cache / f"{name}-{build_hash}"
    if is_complete(target):
        return target
    cache.mkdir(parents=True, exist_ok=True)
    with _exclusive_lock(cache / f"{name}-{build_hash}.lock"):
        if is_complete(target):  # another worker built it while we waited
            return target
        for leftover in cache.glob(f".{target.name}.tmp-*"):
            shutil.rmtree(leftover, ignore_errors=True)  # from a builder that was killed
        _run_builder(spec, build_hash, python, target, log or (lambda _line: None))
    return target


def _builder_command(spec: BuildSpec, build_hash: str, python: str, target: Path) -> list[str]:
    """Argument vector for build_tiny.py."""
    return [
        python, str(BUILDER), "--arch", spec.arch, "--facts", str(Path(spec.facts).resolve()),
        "--out", str(target), "--seed", str(spec.seed), "--build-hash", build_hash,
    ]


def _run_builder(
    spec: BuildSpec, build_hash: str, python: str, target: Path, log: Callable[[str], None]
) -> None:
    """Run build_tiny.py in a subprocess; raise ZooBuildError unless it left a complete build."""
    command = _builder_command(spec, build_hash, python, target)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    log(f"zoo: building {target} ({spec.arch}) with {python}")
    try:
        done = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              env=env, timeout=BUILD_TIMEOUT_S, check=False)
    except OSError as exc:
        raise _build_error(spec, python, None, str(exc), command) from exc
    except subprocess.TimeoutExpired as exc:
        output = exc.output.decode(errors="replace") if isinstance(exc.output, bytes) else exc.output
        raise _build_error(spec, python, None, (output or "") + f"\n(timed out after "
                           f"{BUILD_TIMEOUT_S:.0f} s)", command) from exc
    for line in done.stdout.splitlines():
        log(line)
    if done.returncode != 0 or not is_complete(target):
        raise _build_error(spec, python, done.returncode, done.stdout, command)


def _build_error(
    spec: BuildSpec, python: str, returncode: int | None, output: str, command: list[str]
) -> ZooBuildError:
    """A ZooBuildError whose message says what failed, shows the output tail and the fix."""
    tail = "\n".join(output.splitlines()[-TAIL_LINES:])
    status = "could not start" if returncode is None else f"failed with exit code {returncode}"
    if returncode == 0:
        status = "exited 0 but left no zoo.json"
    message = (
        f"building the tiny {spec.arch} model {status} (python: {python}).\n"
        f"--- last {TAIL_LINES} lines of build_tiny.py output ---\n{tail}\n---\n"
        f"Fix: make sure that interpreter exists and has the builder's dependencies "
        f"(`{python} {_INSTALL_HINT}`), or point the zoo at one that does. "
        f"Rerun by hand to debug: {' '.join(command)}"
    )
    return ZooBuildError(message, arch=spec.arch, python=python, returncode=returncode,
                         output_tail=tail)
