"""YAML spec files (policy, waivers) read with the line of every field, for errors that point at it."""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any, final

import yaml

from harness.errors import ConfigError

FieldPath = tuple[str | int, ...]


class _SpecLoader(yaml.SafeLoader):
    """SafeLoader that keeps dates as text, so a bad date is reported by field, not as a crash."""


def _date_as_text(loader: _SpecLoader, node: yaml.ScalarNode) -> str:
    return loader.construct_scalar(node)


_SpecLoader.add_constructor("tag:yaml.org,2002:timestamp", _date_as_text)


class SpecFileError(ConfigError):
    """A policy or waivers file is wrong: the message names the file, line, field, value and fix."""

    def __init__(self, path: Path, line: int | None, field: str, problem: str, fix: str) -> None:
        self.path, self.line, self.field = path, line, field
        where = f"{path}:{line}" if line else str(path)
        super().__init__(f"{where}: {field}: {problem}; fix: {fix}")


@final
@dataclasses.dataclass(frozen=True)
class SpecFile:
    """Parsed YAML plus the line of each field, e.g. ``lines[("waivers", 0, "expires")] == 7``."""

    path: Path
    data: Any
    lines: Mapping[FieldPath, int]

    def line(self, *where: str | int) -> int | None:
        """The line of the field at ``where``, or of its nearest enclosing field."""
        for cut in range(len(where), -1, -1):
            if where[:cut] in self.lines:
                return self.lines[where[:cut]]
        return None

    def error(self, where: FieldPath, problem: str, fix: str) -> SpecFileError:
        """A SpecFileError for the field at ``where`` (``("waivers", 2, "expires")`` → ``waivers[2].expires``)."""
        return SpecFileError(self.path, self.line(*where), field_name(where), problem, fix)


def field_name(where: FieldPath) -> str:
    """``("waivers", 2, "expires")`` → ``waivers[2].expires``."""
    out = ""
    for part in where:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def load_spec(path: Path, kind: str, example: str) -> SpecFile:
    """Read a YAML mapping from ``path``; ``kind``/``example`` name the file type and a valid example."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SpecFileError(path, None, kind, f"cannot read the file ({exc.strerror or exc})",
                            f"pass an existing {kind} file, e.g. {example}") from None
    loader = _SpecLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        raise SpecFileError(path, mark.line + 1 if mark else None, kind, f"not valid YAML ({problem})",
                            f"correct the YAML syntax; compare with {example}") from None
    finally:
        loader.dispose()
    if node is None or not isinstance(data, Mapping):  # an empty file has no node and no data
        raise SpecFileError(path, 1, kind, f"expected a YAML mapping at the top level, got {type(data).__name__}",
                            f"start from {example}")
    lines: dict[FieldPath, int] = {}
    _collect_lines(node, (), lines)
    return SpecFile(path, data, lines)


def _collect_lines(node: yaml.Node, where: FieldPath, out: dict[FieldPath, int]) -> None:
    out[where] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            name = key.value if isinstance(key, yaml.ScalarNode) else str(key.start_mark.line)
            field = (*where, name)
            _collect_lines(value, field, out)
            out[field] = key.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _collect_lines(item, (*where, i), out)


def check_keys(spec: SpecFile, where: FieldPath, data: Mapping[str, Any], required: set[str], optional: set[str]) -> None:
    """Refuse unknown keys (likely typos) and missing required ones, naming the known keys."""
    known = required | optional
    unknown = sorted(str(k) for k in data if k not in known)
    if unknown:
        raise spec.error((*where, unknown[0]), f"unknown field {unknown[0]!r}",
                         f"use only {', '.join(sorted(known))}")
    missing = sorted(required - set(data))
    if missing:
        raise spec.error(where, f"missing required field {missing[0]!r}",
                         f"add {missing[0]}: (required fields: {', '.join(sorted(required))})")


def string_list(spec: SpecFile, where: FieldPath, value: Any, example: str) -> tuple[str, ...]:
    """A non-empty string or list of non-empty strings, as a tuple."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items or not all(isinstance(i, str) and i.strip() for i in items):
        raise spec.error(where, f"expected a pattern or a list of patterns, got {value!r}", f"write e.g. {example}")
    return tuple(i.strip() for i in items)
