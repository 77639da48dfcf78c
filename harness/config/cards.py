"""Model cards: what a model is, where it comes from, what it must answer, how close it must be."""
from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast, final

import yaml

import harness.models
from harness.config.pairedspec import KEYS as PAIRED_KEYS
from harness.config.pairedspec import PairedSpec
from harness.errors import ConfigError
from harness.models.zoo import ARCHES, ZooArch

CARDS_DIR = Path(harness.models.__file__).resolve().parent / "cards"
FACTS_DIR = Path(harness.models.__file__).resolve().parent / "facts"
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
    "bfloat16": Tolerance(atol=1e-5, rtol=8e-3),  # 2x bf16's rounding bound 2^-8
    "float16": Tolerance(atol=1e-4, rtol=1e-3),
}


@final
@dataclasses.dataclass(frozen=True)
class LogprobThresholds:
    """How close a cell's greedy answers must stay to the reference cell's (one dtype).

    ``max_abs_delta``: largest |logprob difference| allowed on a chosen token both agree on;
    ``max_topk_delta``: the same over the top-k alternatives both list (far more sensitive: a
    confident token's logprob is near 0 and barely moves, its rivals' logprobs move with the logits);
    ``min_token_agreement``: fraction of reference tokens the cell must reproduce greedily;
    ``min_topk_overlap``: smallest share of the reference's top-k tokens the cell must also rank top-k.
    """

    max_abs_delta: float
    max_topk_delta: float
    min_token_agreement: float
    min_topk_overlap: float

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], where: str, base: LogprobThresholds) -> LogprobThresholds:
        """Override ``base`` field by field; every value is a number, fractions lie in [0, 1]."""
        if not isinstance(data, Mapping):
            raise ConfigError(f"{where}: expected a mapping such as {{max_abs_delta: 0.5}}, got {data!r}")
        known = {f.name for f in dataclasses.fields(cls)}
        extra = sorted(set(data) - known)
        if extra:
            raise ConfigError(f"{where}: unknown field(s) {extra}; known fields: {sorted(known)}")
        try:
            merged = {k: float(data.get(k, getattr(base, k))) for k in known}
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{where}: thresholds must be numbers, got {dict(data)!r}") from exc
        out = cls(**merged)
        if min(out.max_abs_delta, out.max_topk_delta) < 0 or not (0 <= out.min_token_agreement <= 1 and 0 <= out.min_topk_overlap <= 1):
            raise ConfigError(f"{where}: need deltas >= 0 and fractions within [0, 1], got {merged}")
        return out


# Measured on the tiny zoo against the float32 reference (docs/numerics.md): float32 cells of
# every offload mode agree exactly on the CPU; bfloat16 cells differ by ~1e-3 (chosen) and ~0.09
# (top-k); one projection scaled by 1.001 moves chosen logprobs by ~1e-4 and top-k ones by ~1e-2.
DEFAULT_LOGPROB_THRESHOLDS: dict[str, LogprobThresholds] = {
    "float32": LogprobThresholds(max_abs_delta=1e-4, max_topk_delta=1e-3, min_token_agreement=1.0, min_topk_overlap=0.8),
    "bfloat16": LogprobThresholds(max_abs_delta=0.5, max_topk_delta=1.0, min_token_agreement=0.9, min_topk_overlap=0.6),
    "float16": LogprobThresholds(max_abs_delta=0.2, max_topk_delta=0.5, min_token_agreement=0.95, min_topk_overlap=0.6),
}


@final
@dataclasses.dataclass(frozen=True)
class LogprobSpec:
    """The card's ``logprob:`` block: how many top alternatives to compare, thresholds per dtype."""

    top_k: int = 5
    thresholds: Mapping[str, LogprobThresholds] = dataclasses.field(default_factory=dict)

    def for_dtype(self, dtype: str) -> LogprobThresholds:
        return self.thresholds.get(dtype) or DEFAULT_LOGPROB_THRESHOLDS.get(dtype) or DEFAULT_LOGPROB_THRESHOLDS["float32"]

    @classmethod
    def from_mapping(cls, data: Any, where: str) -> LogprobSpec:
        """``{top_k: 5, thresholds: {bfloat16: {max_abs_delta: 0.5}}}``; omitted values keep the defaults."""
        if data is None:
            return cls()
        if not isinstance(data, Mapping) or set(data) - {"top_k", "thresholds"}:
            raise ConfigError(f"{where}: 'logprob' takes {{top_k: N, thresholds: {{DTYPE: {{...}}}}}}, got {data!r}")
        top_k = data.get("top_k", 5)
        if not isinstance(top_k, int) or isinstance(top_k, bool) or top_k < 1:
            raise ConfigError(f"{where}: logprob.top_k must be a positive integer, got {top_k!r}")
        raw = data.get("thresholds") or {}
        thresholds = {
            dt: LogprobThresholds.from_mapping(v, f"{where}: logprob.thresholds.{dt}",
                                               DEFAULT_LOGPROB_THRESHOLDS.get(dt, DEFAULT_LOGPROB_THRESHOLDS["float32"]))
            for dt, v in raw.items()
        }
        return cls(top_k=top_k, thresholds=thresholds)


@final
@dataclasses.dataclass(frozen=True)
class AccuracySet:
    """One prompt set of the accuracy check: a facts file, its pass threshold, how to ask.

    ``shots`` > 0 makes it few-shot: the set's first ``shots`` items become worked examples
    written before every other prompt, and only those others are scored.
    """

    name: str
    threshold: float
    max_new_tokens: int
    shots: int = 0

    @property
    def path(self) -> Path:
        return FACTS_DIR / f"{self.name}.yaml"

    @classmethod
    def from_item(cls, item: Any, where: str, threshold: float, max_new_tokens: int) -> AccuracySet:
        """``world`` (card-level threshold) or ``{set: arithmetic, threshold: 0.7, shots: 4, max_new_tokens: 4}``."""
        if isinstance(item, str) and item:
            return cls(item, threshold, max_new_tokens)
        allowed = {"set", "threshold", "max_new_tokens", "shots"}
        if not isinstance(item, Mapping) or not isinstance(item.get("set"), str) or set(item) - allowed:
            raise ConfigError(f"{where}: a facts item is a set name or {{set: NAME, threshold: 0.8, "
                              f"max_new_tokens: 6, shots: 0}}, got {item!r}")
        try:
            out = cls(item["set"], float(item.get("threshold", threshold)),
                      int(item.get("max_new_tokens", max_new_tokens)), int(item.get("shots", 0)))
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{where}: threshold, max_new_tokens and shots must be numbers, got {item!r}") from exc
        if not 0.0 <= out.threshold <= 1.0 or out.max_new_tokens < 1 or out.shots < 0:
            raise ConfigError(f"{where}: set {out.name!r} needs threshold in [0, 1], max_new_tokens >= 1, "
                              f"shots >= 0; got {item!r}")
        return out


@final
@dataclasses.dataclass(frozen=True)
class BuilderSource:
    """A tiny model the project builds itself (models/build_tiny.py)."""

    arch: ZooArch
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
    accuracy_sets: tuple[AccuracySet, ...] = ()
    logprob: LogprobSpec = LogprobSpec()
    paired: PairedSpec = PairedSpec()  # accuracy vs the reference cell: alpha, the drop to detect (pairedspec.py)

    @property
    def sets(self) -> tuple[AccuracySet, ...]:
        """The accuracy sets; a card with one ``facts:`` name has one, with the card's threshold."""
        return self.accuracy_sets or (AccuracySet(self.facts, self.threshold, self.max_new_tokens),)

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
        allowed = {"name", "architecture", "source", "facts", "accuracy", "parity", "logprob", "tags", "description"}
        extra = sorted(set(data) - allowed)
        if extra:
            raise ConfigError(f"{where}: unknown field(s) {extra}; known fields: {sorted(allowed)}")
        name = _req_str(data, "name", where)
        accuracy = data.get("accuracy") or {}
        _known_accuracy_keys(accuracy, where)
        parity = data.get("parity") or {}
        threshold = float(accuracy.get("threshold", 0.9))
        if not 0.0 <= threshold <= 1.0:
            raise ConfigError(f"{where}: accuracy.threshold must be within [0, 1], got {threshold}")
        tolerances = {
            dt: Tolerance.from_mapping(tol, f"{where}: parity.tolerances.{dt}")
            for dt, tol in (parity.get("tolerances") or {}).items()
        }
        truncate = parity.get("truncate_rows")
        max_new_tokens = int(accuracy.get("max_new_tokens", 6))
        sets = _accuracy_sets(data.get("facts", "world"), where, threshold, max_new_tokens)
        return cls(
            name=name,
            architecture=_req_str(data, "architecture", where),
            source=_source(data.get("source"), where),
            facts=sets[0].name,
            threshold=sets[0].threshold,
            max_new_tokens=sets[0].max_new_tokens,
            tolerances=tolerances,
            truncate_rows=int(truncate) if truncate is not None else None,
            tags=tuple(str(t) for t in data.get("tags") or ()),
            description=str(data.get("description", "")),
            accuracy_sets=sets if isinstance(data.get("facts"), list) else (),
            logprob=LogprobSpec.from_mapping(data.get("logprob"), where),
            paired=PairedSpec.from_mapping(accuracy, where),
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
    check_fact_sets(card, str(path))
    return dataclasses.replace(card, card_path=path)


def check_fact_sets(card: ModelCard, where: str) -> None:
    """Every accuracy set of ``card`` must be a facts file of models/facts/."""
    for fact_set in card.sets:
        if not fact_set.path.is_file():
            known = sorted(p.stem for p in FACTS_DIR.glob("*.yaml"))
            raise ConfigError(f"{where}: facts {fact_set.name!r} not found in {FACTS_DIR}; known: {known}")


def load_cards(directory: Path = CARDS_DIR) -> dict[str, ModelCard]:
    """All cards of a directory, by name, in file-name order."""
    return {c.name: c for c in (load_card(p) for p in sorted(directory.glob("*.yaml")))}


def _accuracy_sets(value: Any, where: str, threshold: float, max_new_tokens: int) -> tuple[AccuracySet, ...]:
    """``facts: world`` (one set) or ``facts: [world, {set: arithmetic, shots: 4}]`` (several)."""
    items = value if isinstance(value, list) else [str(value)]
    if not items:
        raise ConfigError(f"{where}: 'facts' is an empty list; name at least one set, e.g. facts: [world]")
    sets = tuple(AccuracySet.from_item(item, f"{where}: facts[{i}]", threshold, max_new_tokens)
                 for i, item in enumerate(items))
    names = [s.name for s in sets]
    if len(set(names)) != len(names):
        raise ConfigError(f"{where}: 'facts' names a set twice in {names}; list each set once")
    return sets


def _known_accuracy_keys(accuracy: Any, where: str) -> None:
    known = ("threshold", "max_new_tokens", *PAIRED_KEYS)
    if not isinstance(accuracy, Mapping) or set(accuracy) - set(known):
        raise ConfigError(f"{where}: 'accuracy' takes {{{', '.join(known)}}}, got {accuracy!r}")


def _req_str(data: Mapping[str, Any], key: str, where: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where}: field '{key}' is required and must be a non-empty string, got {value!r}")
    return value


def _source(data: Any, where: str) -> BuilderSource | PathSource:
    if isinstance(data, Mapping) and "builder" in data:
        b = data["builder"] or {}
        arch = str(b.get("arch", ""))
        if arch not in ARCHES:
            raise ConfigError(f"{where}: source.builder needs 'arch', one of {', '.join(ARCHES)} (got {arch or 'none'})")
        return BuilderSource(arch=cast(ZooArch, arch), facts=str(b.get("facts", "world")), seed=int(b.get("seed", 0)))
    if isinstance(data, Mapping) and "path" in data:
        return PathSource(path=str(data["path"]))
    raise ConfigError(
        f"{where}: 'source' must be {{builder: {{arch: ...}}}} or {{path: DIR}}, got {data!r}"
    )
