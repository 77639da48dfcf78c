"""The model architectures the harness knows: their names, transformers model types and tags.

A card names its architecture as transformers' model class (``LlamaForCausalLM``), the name the
layout tables (``harness/numerics/layouts/*.yaml``, ``architectures:``) and the runtime adapters key on.
An ad-hoc card (``--model NAME=PATH``) reads it from the checkpoint's ``config.json``:

    >>> architecture_of({"architectures": ["LlamaForCausalLM"], "model_type": "llama"}, "x").name
    'LlamaForCausalLM'
    >>> architecture_of({"model_type": "qwen3_moe"}, "x").name
    'Qwen3MoeForCausalLM'

Another package adds one with ``ARCHITECTURES.register(name, Architecture(...))``; a name is
registered once.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, final

from harness.errors import ConfigError
from harness.registry import Registry


@final
@dataclasses.dataclass(frozen=True)
class Architecture:
    """One model class: its ``config.json`` model types and the card tags it implies (moe, mla)."""

    name: str
    model_types: tuple[str, ...]
    tags: tuple[str, ...] = ()


ARCHITECTURES: Registry[Architecture] = Registry("architecture")
for _arch in (
    Architecture("LlamaForCausalLM", ("llama",), ("dense",)),
    Architecture("Qwen2MoeForCausalLM", ("qwen2_moe",), ("moe",)),
    Architecture("Qwen3MoeForCausalLM", ("qwen3_moe",), ("moe",)),
    Architecture("Glm4MoeLiteForCausalLM", ("glm4_moe_lite",), ("moe", "mla")),
    Architecture("DeepseekV2ForCausalLM", ("deepseek_v2",), ("moe", "mla")),
    Architecture("DeepseekV3ForCausalLM", ("deepseek_v3",), ("moe", "mla")),
):
    ARCHITECTURES.register(_arch.name, _arch)


def by_model_type(model_type: str) -> Architecture | None:
    """The architecture whose ``config.json`` ``model_type`` is ``model_type``, if one is known."""
    return next((a for a in map(ARCHITECTURES.get, ARCHITECTURES) if model_type in a.model_types), None)


def architecture_of(config: Mapping[str, Any], where: str) -> Architecture:
    """``architectures[0]`` of a ``config.json`` if it is known, else its ``model_type``'s architecture."""
    names = config.get("architectures") or []
    first = names[0] if isinstance(names, list) and names else None
    if isinstance(first, str) and first in ARCHITECTURES:
        return ARCHITECTURES.get(first)
    model_type = config.get("model_type")
    found = by_model_type(model_type) if isinstance(model_type, str) else None
    if found is not None:
        return found
    known = ", ".join(f"{a.name} ({'/'.join(a.model_types)})" for a in map(ARCHITECTURES.get, ARCHITECTURES))
    raise ConfigError(
        f"{where}: unknown architecture (architectures: {names!r}, model_type: {model_type!r}); the harness "
        f"has layout tables for: {known}. Use a checkpoint of one of these, or register the architecture "
        f"(harness.config.architectures.ARCHITECTURES) with layout rules for it in harness/numerics/layouts/")
