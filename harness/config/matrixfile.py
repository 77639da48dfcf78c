"""Matrix files: a YAML matrix (axes, per-runtime options, include/exclude/N/A rules).

    include: base.yaml              # optional: start from another file (paths relative to this one)
    cards: [team-cards]             # optional: more model card directories (relative to this file)
    runtimes: [hf, sglang]
    devices: [cpu, npu]
    models: [tiny-llama, glm-4.7-flash]
    offload_modes: [none, disk]
    dtypes: [float32]
    tp: [1, 2]
    runtime_options:
      sglang: {python: /venvs/sglang/bin/python, boot_timeout: 600, args: [--attention-backend, ascend], env: {K: V}}
    exclude:                        # drop cells; values are fnmatch patterns
      - {runtime: hf, tp: 2}
    na:                             # keep cells but mark them N/A with a reason
      - {match: {device: npu, offload: meta}, reason: "meta offload is a debug mode"}
    reference:                      # the logprob reference cell of every model (default below; harness/config/refspec.py)
      {runtime: hf, device: cpu, dtype: float32, offload: none}
"""
from __future__ import annotations

import dataclasses
import fnmatch
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, final

import yaml

from harness.config.matrix import Cell
from harness.config.refspec import ReferenceSpec
from harness.errors import ConfigError

AXES = ("runtimes", "devices", "models", "offload_modes", "dtypes", "tp")
FIELDS = set(AXES) | {"include", "runtime_options", "exclude", "na", "cards", "reference"}
CELL_KEYS = ("runtime", "device", "model", "offload", "dtype", "tp")
RUNTIME_OPTION_KEYS = {"python", "boot_timeout", "args", "env"}


@final
@dataclasses.dataclass(frozen=True)
class CellPattern:
    """A partial cell whose values are fnmatch patterns: ``{runtime: hf, device: 'np*'}``."""

    fields: Mapping[str, str]

    @classmethod
    def from_mapping(cls, data: Any, where: str) -> CellPattern:
        if not isinstance(data, Mapping) or not data:
            raise ConfigError(f"{where}: expected a mapping of cell fields {list(CELL_KEYS)}, got {data!r}")
        bad = sorted(set(data) - set(CELL_KEYS))
        if bad:
            raise ConfigError(f"{where}: unknown cell field(s) {bad}; known: {list(CELL_KEYS)}")
        return cls({k: str(v) for k, v in data.items()})

    def matches(self, cell: Cell) -> bool:
        return all(fnmatch.fnmatchcase(str(getattr(cell, k)), pat) for k, pat in self.fields.items())


@final
@dataclasses.dataclass(frozen=True)
class RuntimeOptions:
    """Per-runtime launch settings from a matrix file."""

    python: str | None = None
    boot_timeout: float | None = None
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = dataclasses.field(default_factory=dict)


@final
@dataclasses.dataclass(frozen=True)
class MatrixFile:
    """A validated matrix file; axes it does not set are None (CLI or defaults decide)."""

    path: Path
    axes: Mapping[str, tuple[str, ...] | None]
    runtime_options: Mapping[str, RuntimeOptions]
    exclude: tuple[CellPattern, ...]
    na: tuple[tuple[CellPattern, str], ...]
    cards: tuple[Path, ...] = ()  # model card directories, resolved against the file's directory
    reference: ReferenceSpec | None = None  # None: the default reference (hf-cpu float32)

    @classmethod
    def load(cls, path: Path, _seen: tuple[Path, ...] = ()) -> MatrixFile:
        path = path.resolve()
        if path in _seen:
            raise ConfigError(f"{path}: include cycle through {' -> '.join(map(str, _seen))}")
        data = _read(path)
        base = cls.load(path.parent / str(data["include"]), (*_seen, path)) if "include" in data else None
        own = cls._from_mapping(path, data)
        return own if base is None else base._merged(own)

    @classmethod
    def _from_mapping(cls, path: Path, data: Mapping[str, Any]) -> MatrixFile:
        axes = {a: _axis(data, a, path) for a in AXES}
        ro = {str(k): _runtime_options(v, f"{path}: runtime_options.{k}") for k, v in (data.get("runtime_options") or {}).items()}
        exclude = tuple(CellPattern.from_mapping(e, f"{path}: exclude[{i}]") for i, e in enumerate(_list(data, "exclude", path)))
        na = tuple(_na_rule(r, f"{path}: na[{i}]") for i, r in enumerate(_list(data, "na", path)))
        cards = tuple((path.parent / str(c)).resolve() for c in _list(data, "cards", path))
        ref = ReferenceSpec.from_mapping(data["reference"], str(path)) if "reference" in data else None
        return cls(path, axes, ro, exclude, na, cards=cards, reference=ref)

    def _merged(self, child: MatrixFile) -> MatrixFile:
        axes = {a: child.axes[a] if child.axes[a] is not None else self.axes[a] for a in AXES}
        return MatrixFile(child.path, axes, {**self.runtime_options, **child.runtime_options},
                          self.exclude + child.exclude, self.na + child.na,
                          cards=tuple(dict.fromkeys(self.cards + child.cards)),
                          reference=child.reference or self.reference)

    def excluded(self, cell: Cell) -> bool:
        return any(p.matches(cell) for p in self.exclude)

    def na_reason(self, cell: Cell) -> str | None:
        return next((reason for p, reason in self.na if p.matches(cell)), None)


def _read(path: Path) -> Mapping[str, Any]:
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ConfigError(f"matrix file {path} cannot be read: {exc.strerror}; check the --matrix path") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}:{where} not valid YAML: {getattr(exc, 'problem', exc)}; fix the syntax") from None
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path}: a matrix file is a mapping of {sorted(FIELDS)}, got {type(data).__name__}")
    unknown = sorted(set(data) - FIELDS)
    if unknown:
        raise ConfigError(f"{path}: unknown field(s) {unknown}; known: {sorted(FIELDS)}")
    return data


def _axis(data: Mapping[str, Any], axis: str, path: Path) -> tuple[str, ...] | None:
    if axis not in data:
        return None
    value = data[axis]
    items = [value] if isinstance(value, (str, int)) else value
    if not isinstance(items, Sequence) or not items:
        raise ConfigError(f"{path}: '{axis}' must be a non-empty list, got {value!r}")
    return tuple(str(v) for v in items)


def _list(data: Mapping[str, Any], key: str, path: Path) -> list:
    value = data.get(key) or []
    if not isinstance(value, list):
        raise ConfigError(f"{path}: '{key}' must be a list, got {value!r}")
    return value


def _runtime_options(data: Any, where: str) -> RuntimeOptions:
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where}: expected a mapping of {sorted(RUNTIME_OPTION_KEYS)}, got {data!r}")
    bad = sorted(set(data) - RUNTIME_OPTION_KEYS)
    if bad:
        raise ConfigError(f"{where}: unknown option(s) {bad}; known: {sorted(RUNTIME_OPTION_KEYS)}")
    timeout = data.get("boot_timeout")
    if timeout is not None and (not isinstance(timeout, (int, float)) or timeout <= 0):
        raise ConfigError(f"{where}.boot_timeout must be a positive number of seconds, got {timeout!r}")
    args = data.get("args") or []
    if not isinstance(args, list):
        raise ConfigError(f"{where}.args must be a list of strings, got {args!r}")
    return RuntimeOptions(data.get("python"), float(timeout) if timeout else None, tuple(map(str, args)),
                          {str(k): str(v) for k, v in (data.get("env") or {}).items()})


def _na_rule(data: Any, where: str) -> tuple[CellPattern, str]:
    if not isinstance(data, Mapping) or "match" not in data or not data.get("reason"):
        raise ConfigError(f"{where}: an N/A rule is {{match: {{...}}, reason: '...'}}, got {data!r}")
    return CellPattern.from_mapping(data["match"], f"{where}.match"), str(data["reason"])
