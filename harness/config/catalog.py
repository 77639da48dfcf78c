"""The model cards of a run: the package's, those of ``--cards DIR``, and ad-hoc ``--model NAME=PATH`` ones.

A name is defined once: a card in a ``--cards`` directory (or a ``--model``) whose name is already
taken is refused, naming both places, as every registry of the harness refuses duplicates.

    spec = CatalogSpec.build(cards=["team/cards"], models=["ft=/ckpt/llama-ft"], facts=None)
    cards = load_catalog(spec, reserved=("all", "tiny", "real"))
    cards["ft"].architecture  # 'LlamaForCausalLM', read from /ckpt/llama-ft/config.json
"""
from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final, final

from harness.config.architectures import architecture_of
from harness.config.cards import CARDS_DIR, ModelCard, check_fact_sets, load_cards
from harness.errors import ConfigError

NAME_PATTERN: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
# What the shipped real-model cards ask (models/cards/llama-3.1-8b-instruct.yaml and its siblings):
# the factual set, a general-knowledge set and a few-shot arithmetic set; tests keep them in step.
ADHOC_FACTS: Final[tuple[Any, ...]] = (
    "world",
    {"set": "general", "threshold": 0.8},
    {"set": "arithmetic", "threshold": 0.75, "shots": 4, "max_new_tokens": 6},
)
ADHOC_ACCURACY: Final = {"threshold": 0.8, "max_new_tokens": 8}
ADHOC_LOGPROB: Final = {"top_k": 5}


@final
@dataclasses.dataclass(frozen=True)
class CatalogSpec:
    """Where this run's cards come from beyond ``models/cards/``: directories and ad-hoc checkpoints."""

    card_dirs: tuple[Path, ...] = ()
    adhoc: Mapping[str, Path] = dataclasses.field(default_factory=dict)
    adhoc_facts: tuple[str, ...] = ()

    @classmethod
    def build(cls, cards: Sequence[str], models: Sequence[str], facts: str | None,
              matrix_cards: Sequence[Path] = ()) -> CatalogSpec:
        """``--cards`` (after the matrix file's ``cards:``), ``--model NAME=PATH`` items, ``--model-facts``."""
        dirs = tuple(dict.fromkeys(p.resolve() for p in (*matrix_cards, *(Path(c).expanduser() for c in cards))))
        sets = tuple(s.strip() for s in facts.split(",") if s.strip()) if facts is not None else ()
        if facts is not None and not sets:
            raise ConfigError(f"--model-facts takes a comma list of fact sets such as 'world,arithmetic', got {facts!r}")
        if sets and not models:
            raise ConfigError(f"--model-facts {facts} chooses the fact sets of --model cards, and no --model is "
                              f"given; add --model NAME=PATH or drop --model-facts (a card file names its own facts)")
        return cls(dirs, parse_model_specs(models), sets)

    def models_axis(self, axis: tuple[str, ...], *, from_cli: bool, from_matrix: bool) -> tuple[str, ...]:
        """The models axis with the ad-hoc models: ``--models`` decides when given; a matrix file's
        models get them added; otherwise (the default ``all``) the ad-hoc models alone are run."""
        if not self.adhoc or from_cli:
            return axis
        if from_matrix:
            return (*axis, *(n for n in self.adhoc if n not in axis))
        return tuple(self.adhoc)


def parse_model_specs(items: Sequence[str]) -> dict[str, Path]:
    """``["ft=/ckpt/llama-ft"]`` -> {"ft": Path("/ckpt/llama-ft")}; names are unique and id-safe."""
    out: dict[str, Path] = {}
    for item in items:
        name, sep, path = item.partition("=")
        name, path = name.strip(), path.strip()
        if not sep or not name or not path:
            raise ConfigError(f"--model takes NAME=PATH, got {item!r}; e.g. --model my-llama=/ckpt/llama-ft")
        if not NAME_PATTERN.fullmatch(name):
            raise ConfigError(f"--model {item}: name {name!r} must match {NAME_PATTERN.pattern} (it is part of "
                              f"every cell id); e.g. --model my-llama={path}")
        if name in out:
            raise ConfigError(f"--model {name!r} is given twice ({out[name]} and {path}); give each model its own name")
        out[name] = Path(path).expanduser()
    return out


def load_catalog(spec: CatalogSpec, reserved: Iterable[str] = ()) -> dict[str, ModelCard]:
    """The package's cards, then each ``--cards`` directory's, then the ad-hoc ones; one card per name."""
    cards: dict[str, ModelCard] = {}
    origins: dict[str, str] = {}
    reserved = tuple(reserved)
    for directory in (CARDS_DIR.resolve(), *(d for d in spec.card_dirs if d != CARDS_DIR.resolve())):
        for card in _directory_cards(directory, extra=directory != CARDS_DIR.resolve()).values():
            _add(cards, origins, card, str(card.card_path), reserved)
    for name, path in spec.adhoc.items():
        card = adhoc_card(name, path, spec.adhoc_facts)
        _add(cards, origins, card, f"--model {name}={card.source.path}", reserved)  # type: ignore[union-attr]
    return cards


def adhoc_card(name: str, path: Path, facts: Sequence[str] = ()) -> ModelCard:
    """A card for the checkpoint directory ``path``: architecture from its config.json, the real
    cards' fact sets (or ``facts``), the default per-dtype tolerances, every row compared."""
    path = path.expanduser().resolve()
    where = f"--model {name}={path}"
    config = _read_config(path, where)
    if not any(path.glob("*.safetensors")):
        found = sorted(p.name for p in path.iterdir())[:8]
        raise ConfigError(f"{where}: no *.safetensors file in {path} (found: {found}); the harness reads "
                          f"safetensors checkpoints only: save the model with save_pretrained(safe_serialization=True)")
    arch = architecture_of(config, f"{where} ({path / 'config.json'})")
    data = {
        "name": name, "architecture": arch.name, "source": {"path": str(path)},
        "facts": _facts(facts), "accuracy": dict(ADHOC_ACCURACY), "logprob": dict(ADHOC_LOGPROB),
        "tags": [*arch.tags, "real", "adhoc"],
        "description": f"ad-hoc card for {path} ({arch.name}, model_type {config.get('model_type')!r})",
    }
    card = ModelCard.from_mapping(data, where)
    check_fact_sets(card, f"{where} (--model-facts)")
    return card


def _facts(names: Sequence[str]) -> list[Any]:
    """The default sets, or the named ones with the defaults' settings where a default names them."""
    if not names:
        return list(ADHOC_FACTS)
    by_name = {item if isinstance(item, str) else item["set"]: item for item in ADHOC_FACTS}
    return [by_name.get(n, n) for n in names]


def _read_config(path: Path, where: str) -> Mapping[str, Any]:
    if not path.is_dir():
        raise ConfigError(f"{where}: {path} is not a directory; point --model at a checkpoint directory "
                          f"(the one holding config.json and *.safetensors)")
    config_path = path / "config.json"
    if not config_path.is_file():
        raise ConfigError(f"{where}: no config.json in {path}; point --model at the checkpoint directory "
                          f"(the one holding config.json and *.safetensors), not a parent or a file in it")
    try:
        config = json.loads(config_path.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{where}: {config_path} is not readable JSON ({exc}); re-export the checkpoint") from None
    if not isinstance(config, Mapping):
        raise ConfigError(f"{where}: {config_path} must hold a JSON object, got {type(config).__name__}")
    return config


def _directory_cards(directory: Path, extra: bool) -> dict[str, ModelCard]:
    where = f"card directory {directory} (--cards or a matrix file's cards:)"
    if not directory.is_dir():
        raise ConfigError(f"{where}: not a directory; pass a directory of model card files "
                          f"(NAME.yaml, the format of {CARDS_DIR})")
    cards = load_cards(directory)
    if extra and not cards:
        raise ConfigError(f"{where}: no *.yaml model card in it; write NAME.yaml cards there "
                          f"(see {CARDS_DIR} for examples) or drop the option")
    return cards


def _add(cards: dict[str, ModelCard], origins: dict[str, str], card: ModelCard, origin: str,
         reserved: tuple[str, ...]) -> None:
    if card.name in reserved:
        raise ConfigError(f"{origin}: model name {card.name!r} is a model group ({', '.join(reserved)}) of "
                          f"--models; rename the card")
    if card.name in cards:
        raise ConfigError(f"{origin}: model {card.name!r} is already defined by {origins[card.name]}; a name is "
                          f"defined once: rename one of them (a card's name and file name)")
    cards[card.name] = card
    origins[card.name] = origin
