"""Model cards: what a model is, where it comes from, what it must answer, how close it must be."""
from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, final

import yaml

from harness.errors import ConfigError

CARDS_DIR = Path(__file__).resolve().parent.parent / "models" / "cards"
FACTS_DIR = Path(__file__).resolve().parent.parent / "models" / "facts"
MODEL_ROOT_ENV = "HARNESS_MODEL_ROOT"


@final
@dataclasses.dataclass(frozen=True)
class Tolerance:
    """Element-wise closeness: |a - b| <= atol + rtol * |b| (numpy.allclose semantics)."""

    atol: float
    rtol: float

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], where: str) -> Tolerance:
        try:
            atol, rtol = float(data["atol"]), float(data["rtol"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"{where}: a tolerance needs numeric 'atol' and 'rtol', got {dict(data)!r}") from exc
        if atol < 0 or rtol < 0:
            raise ConfigError(f"{where}: atol and rtol must be >= 0, got atol={atol} rtol={rtol}")
        return cls(atol, rtol)


DEFAULT_TOLERANCES: dict[str, Tolerance] = {
    "float32": Tolerance(atol=1e-6, rtol=1e-5),
    "bfloat16": Tolerance(atol=1e-5, rtol=4e-3),
    "float16": Tolerance(atol=1e-4, rtol=1e-3),
}


@final
@dataclasses.dataclass(frozen=True)
class BuilderSource:
    """A tiny model the project builds itself (models/build_tiny.py)."""

    arch: str
    facts: str
    seed: int = 0


@final
@dataclasses.dataclass(frozen=True)
class PathSource:
    """A checkpoint directory, relative to $HARNESS_MODEL_ROOT unless absolute."""

    path: str

    def resolve(self) -> Path | None:
        p = Path(self.path).expanduser()
        if not p.is_absolute():
            root = os.environ.get(MODEL_ROOT_ENV)
            if not root:
                return None
            p = Path(root).expanduser() / p
        return p if (p / "config.json").is_file() else None


@final
@dataclasses.dataclass(frozen=True)
class ModelCard:
    """One model of the zoo or of a local model directory, loaded from models/cards/NAME.yaml."""

    name: str
    architecture: str
    source: BuilderSource | PathSource
    facts: str
    threshold: float
    max_new_tokens: int
    tolerances: Mapping[str, Tolerance]
    truncate_rows: int | None
    tags: tuple[str, ...]
    description: str = ""
    card_path: Path | None = None

    @property
    def embedded(self) -> bool:
        return isinstance(self.source, BuilderSource)

    @property
    def facts_path(self) -> Path:
        return FACTS_DIR / f"{self.facts}.yaml"

    def tolerance(self, dtype: str) -> Tolerance:
        return self.tolerances.get(dtype, DEFAULT_TOLERANCES.get(dtype, DEFAULT_TOLERANCES["float32"]))

    def unavailable_reason(self) -> str | None:
        """Why this card's checkpoint cannot be used here, or None when it can."""
        if isinstance(self.source, BuilderSource):
            return None
        if self.source.resolve() is not None:
            return None
        root = os.environ.get(MODEL_ROOT_ENV)
        looked = f"{root}/{self.source.path}" if root and not Path(self.source.path).is_absolute() else self.source.path
        if not root and not Path(self.source.path).is_absolute():
            return f"model {self.name} needs a local checkpoint: set {MODEL_ROOT_ENV} to a directory holding {self.source.path}/"
        return f"model {self.name}: no checkpoint (config.json) at {looked}; put it there or fix {MODEL_ROOT_ENV}"

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], where: str) -> ModelCard:
        """Validate a card's fields; every error names the file and the field."""
        if not isinstance(data, Mapping):
            raise ConfigError(f"{where}: a model card must be a mapping, got {type(data).__name__}")
        allowed = {"name", "architecture", "source", "facts", "accuracy", "parity", "tags", "description"}
        extra = sorted(set(data) - allowed)
        if extra:
            raise ConfigError(f"{where}: unknown field(s) {extra}; known fields: {sorted(allowed)}")
        name = _req_str(data, "name", where)
        accuracy = data.get("accuracy") or {}
        parity = data.get("parity") or {}
        threshold = float(accuracy.get("threshold", 0.9))
        if not 0.0 <= threshold <= 1.0:
            raise ConfigError(f"{where}: accuracy.threshold must be within [0, 1], got {threshold}")
        tolerances = {
            dt: Tolerance.from_mapping(tol, f"{where}: parity.tolerances.{dt}")
            for dt, tol in (parity.get("tolerances") or {}).items()
        }
        truncate = parity.get("truncate_rows")
        return cls(
            name=name,
            architecture=_req_str(data, "architecture", where),
            source=_source(data.get("source"), where),
            facts=str(data.get("facts", "world")),
            threshold=threshold,
            max_new_tokens=int(accuracy.get("max_new_tokens", 6)),
            tolerances=tolerances,
            truncate_rows=int(truncate) if truncate is not None else None,
            tags=tuple(str(t) for t in data.get("tags") or ()),
            description=str(data.get("description", "")),
        )


def load_card(path: Path) -> ModelCard:
    """Read and validate one card file."""
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    card = ModelCard.from_mapping(data, str(path))
    if card.name != path.stem:
        raise ConfigError(f"{path}: card name {card.name!r} must match its file name {path.stem!r}; rename one")
    if not card.facts_path.is_file():
        known = sorted(p.stem for p in FACTS_DIR.glob("*.yaml"))
        raise ConfigError(f"{path}: facts {card.facts!r} not found in {FACTS_DIR}; known: {known}")
    return dataclasses.replace(card, card_path=path)


def load_cards(directory: Path = CARDS_DIR) -> dict[str, ModelCard]:
    """All cards of a directory, by name, in file-name order."""
    return {c.name: c for c in (load_card(p) for p in sorted(directory.glob("*.yaml")))}


def _req_str(data: Mapping[str, Any], key: str, where: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where}: field '{key}' is required and must be a non-empty string, got {value!r}")
    return value


def _source(data: Any, where: str) -> BuilderSource | PathSource:
    if isinstance(data, Mapping) and "builder" in data:
        b = data["builder"] or {}
        if "arch" not in b:
            raise ConfigError(f"{where}: source.builder needs 'arch' (llama, qwen2_moe, glm4_moe_lite)")
        return BuilderSource(arch=str(b["arch"]), facts=str(b.get("facts", "world")), seed=int(b.get("seed", 0)))
    if isinstance(data, Mapping) and "path" in data:
        return PathSource(path=str(data["path"]))
    raise ConfigError(
        f"{where}: 'source' must be {{builder: {{arch: ...}}}} or {{path: DIR}}, got {data!r}"
    )
