"""Undo runtime weight layouts: data-driven rules mapping checkpoint names to runtime tensors.

A rule file (``harness/layouts/NAME.yaml``) lists ``match`` (a regex on the checkpoint name),
``runtime`` (the runtime tensor's name, formatted with the match's groups) and ``ops`` applied in
order to the runtime tensor to recover the checkpoint tensor:

- ``{index: GROUP}``: take ``[int(GROUP)]`` along dim 0 (stacked experts);
- ``{chunk: {dim, part, parts}}``: split ``dim`` into ``parts`` equal parts, keep ``part`` (fused gate/up);
- ``{transpose: [d0, d1]}``: swap two dims (transposed storage);
- ``{unpad: true}``: cut every dim down to the checkpoint's shape (vocab padding, zeros expected).
"""
from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, final

import numpy as np
import yaml

from harness.errors import ConfigError

LAYOUTS_DIR = Path(__file__).resolve().parent / "layouts"
_OPS = ("index", "chunk", "transpose", "unpad")


@final
@dataclasses.dataclass(frozen=True)
class LayoutRule:
    """One checkpoint-name pattern and how to cut its tensor out of a runtime tensor."""

    pattern: re.Pattern[str]
    runtime: str
    ops: tuple[Mapping[str, Any], ...]

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], where: str) -> LayoutRule:
        try:
            pattern = re.compile(str(data["match"]))
            runtime = str(data["runtime"])
        except KeyError as exc:
            raise ConfigError(f"{where}: a layout rule needs 'match' and 'runtime', got {dict(data)!r}") from exc
        except re.error as exc:
            raise ConfigError(f"{where}: bad regex {data.get('match')!r}: {exc}") from exc
        ops = tuple(data.get("ops") or ())
        for op in ops:
            if not isinstance(op, Mapping) or len(op) != 1 or next(iter(op)) not in _OPS:
                raise ConfigError(f"{where}: bad op {op!r}; each op is one of {', '.join(_OPS)}")
        return cls(pattern, runtime, ops)


@final
@dataclasses.dataclass(frozen=True)
class Mapped:
    """Where a checkpoint tensor lives in the runtime and how to get it back."""

    runtime_name: str
    ops: tuple[Mapping[str, Any], ...]
    groups: Mapping[str, str]


@final
@dataclasses.dataclass(frozen=True)
class Layout:
    """An ordered list of rules; the first match wins, no match means same name, no ops."""

    name: str
    rules: tuple[LayoutRule, ...]

    @classmethod
    def load(cls, name: str, directory: Path = LAYOUTS_DIR) -> Layout:
        path = directory / f"{name}.yaml"
        if not path.is_file():
            known = sorted(p.stem for p in directory.glob("*.yaml"))
            raise ConfigError(f"unknown layout {name!r}: no {path}; known: {known}")
        data = yaml.safe_load(path.read_text()) or {}
        rules = tuple(LayoutRule.from_mapping(r, f"{path} rule {i}") for i, r in enumerate(data.get("rules") or ()))
        return cls(name, rules)

    def candidates(self, checkpoint_name: str) -> list[Mapped]:
        """The matching rule's mapping first, then the name itself as a fallback."""
        out = []
        for rule in self.rules:
            m = rule.pattern.match(checkpoint_name)
            if m:
                out.append(Mapped(rule.runtime.format(**m.groupdict()), rule.ops, m.groupdict()))
                break
        out.append(Mapped(checkpoint_name, (), {}))
        return out


def apply_ops(tensor: np.ndarray, mapped: Mapped, want_shape: Sequence[int]) -> np.ndarray:
    """Cut the checkpoint tensor out of the runtime tensor following ``mapped.ops``."""
    t = tensor
    for op in mapped.ops:
        (kind, arg), = op.items()
        if kind == "index":
            t = t[int(mapped.groups[arg])]
        elif kind == "chunk":
            t = np.split(t, int(arg["parts"]), axis=int(arg["dim"]))[int(arg["part"])]
        elif kind == "transpose":
            t = np.swapaxes(t, int(arg[0]), int(arg[1]))
        elif kind == "unpad":
            t = t[tuple(slice(0, n) for n in want_shape)] if t.ndim == len(want_shape) else t
    return t
