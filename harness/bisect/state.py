"""What a bisection has learned, written to ``bisect.json`` after every step so a re-run resumes.

The file is replaced atomically (temp file, then rename): a Ctrl-C or a crash leaves the previous
complete state, never half of one. A state belongs to one bisection (its ``Identity``: mode,
target, checks, distribution or source, environment base); a re-run with another identity starts
afresh and says so, a re-run with the same one skips every ref already judged.
"""
from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, final

from harness.bisect.search import VERDICTS
from harness.results import write_json_atomic

STATE_FILE = "bisect.json"
STATE_SCHEMA = "harness.bisect/1"
Mode = Literal["cell", "portability"]


@final
@dataclasses.dataclass(frozen=True)
class Identity:
    """Which bisection a state belongs to; refs judged under another identity are not reused."""

    mode: str
    target: str
    checks: tuple[str, ...]
    origin: str  # "pypi:<distribution>" or "git:<source dir>"
    base: str  # the interpreter whose packages the candidate environments see, or "" for none
    run_args: tuple[str, ...] = ()


@final
@dataclasses.dataclass(frozen=True)
class Step:
    """One ref tested: its verdict, why, where its environment and run are, and how long it took."""

    ref: str
    verdict: str
    reason: str
    env: str
    env_s: float
    probe_s: float
    run_dir: str = ""
    started: str = ""

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> Step:
        fields = {f.name for f in dataclasses.fields(cls)}
        step = cls(**{k: v for k, v in data.items() if k in fields})
        if step.verdict not in VERDICTS:
            raise ValueError(f"step verdict must be one of {VERDICTS}, got {step.verdict!r}")
        return step


@final
@dataclasses.dataclass(frozen=True)
class BisectState:
    """The refs (oldest to newest, good first, bad last) and the steps taken so far."""

    identity: Identity
    refs: tuple[str, ...]
    steps: tuple[Step, ...] = ()
    labels: Mapping[str, str] = dataclasses.field(default_factory=dict)

    def verdicts(self) -> dict[str, str]:
        return {s.ref: s.verdict for s in self.steps}

    def with_step(self, step: Step) -> BisectState:
        return dataclasses.replace(self, steps=(*self.steps, step))

    def label(self, ref: str) -> str:
        """How a ref is shown: ``toyrt==1.2``, or a short commit with its subject."""
        return self.labels.get(ref, ref)

    def to_dict(self) -> dict[str, Any]:
        return {"schema": STATE_SCHEMA, "identity": dataclasses.asdict(self.identity), "refs": list(self.refs),
                "labels": dict(self.labels), "steps": [dataclasses.asdict(s) for s in self.steps]}


def save(path: Path, state: BisectState, extra: Mapping[str, Any] | None = None) -> None:
    """Write the state (and ``extra``, e.g. the conclusion) atomically."""
    write_json_atomic(path, {**state.to_dict(), **(extra or {})})


def load(path: Path) -> tuple[BisectState | None, str]:
    """The state in ``path`` and "", or None and why it cannot be used (absent, unreadable, other schema)."""
    if not path.is_file():
        return None, ""
    try:
        data = json.loads(path.read_text())
        if data.get("schema") != STATE_SCHEMA:
            return None, f"{path} has schema {data.get('schema')!r}, not {STATE_SCHEMA}"
        ident = data["identity"]
        identity = Identity(**{**ident, "checks": tuple(ident["checks"]), "run_args": tuple(ident.get("run_args", ()))})
        steps = tuple(Step.from_mapping(s) for s in data["steps"])
        return BisectState(identity, tuple(data["refs"]), steps, dict(data.get("labels") or {})), ""
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return None, f"{path} is unreadable ({type(exc).__name__}: {exc})"


def resume(path: Path, identity: Identity, refs: Sequence[str], labels: Mapping[str, str]) -> tuple[BisectState, str]:
    """The state to continue from: the saved one's steps on these refs when it is the same bisection.

    Returns the state and a line saying what was reused or why nothing was.
    """
    fresh = BisectState(identity, tuple(refs), (), dict(labels))
    old, why = load(path)
    if old is None:
        return fresh, f"starting afresh: {why}" if why else ""
    if old.identity != identity:
        return fresh, f"starting afresh: {path} holds another bisection ({old.identity.target}, {old.identity.origin})"
    kept = tuple(s for s in old.steps if s.ref in set(refs))
    state = dataclasses.replace(fresh, steps=kept)
    return state, f"resuming from {path}: {len(kept)} step(s) already done, not repeated" if kept else ""
