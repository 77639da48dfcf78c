from __future__ import annotations

from pathlib import Path

import pytest

from harness.config.cards import CARDS_DIR, ModelCard, load_card, load_cards
from harness.errors import ConfigError


def test_shipped_cards_cover_three_architectures_and_real_models():
    cards = load_cards()
    archs = {c.architecture for c in cards.values() if c.embedded}
    assert {"LlamaForCausalLM", "Qwen2MoeForCausalLM", "Glm4MoeLiteForCausalLM"} <= archs
    real = {n for n, c in cards.items() if not c.embedded}
    assert {"glm-4.7-flash", "deepseek-v2-lite", "qwen3-30b-a3b", "llama-3.1-8b-instruct"} <= real


def test_real_model_is_unavailable_without_model_root(monkeypatch):
    monkeypatch.delenv("HARNESS_MODEL_ROOT", raising=False)
    reason = load_cards()["glm-4.7-flash"].unavailable_reason()
    assert reason and "HARNESS_MODEL_ROOT" in reason and "GLM-4.7-Flash" in reason


def test_real_model_resolves_under_model_root(monkeypatch, tmp_path):
    (tmp_path / "GLM-4.7-Flash").mkdir()
    (tmp_path / "GLM-4.7-Flash" / "config.json").write_text("{}")
    monkeypatch.setenv("HARNESS_MODEL_ROOT", str(tmp_path))
    card = load_cards()["glm-4.7-flash"]
    assert card.unavailable_reason() is None
    assert card.source.resolve() == tmp_path / "GLM-4.7-Flash"


@pytest.mark.parametrize("text, expect", [
    ("name: x\narchitecture: A\nsource: {builder: {arch: llama}}\naccuracy: {threshold: 1.5}\n", "accuracy.threshold must be within"),
    ("name: x\narchitecture: A\nsource: {nowhere: 1}\n", "'source' must be"),
    ("name: x\nsource: {path: p}\n", "field 'architecture' is required"),
    ("name: x\narchitecture: A\nsource: {path: p}\ncolour: red\n", "unknown field(s) ['colour']"),
    ("name: x\narchitecture: A\nsource: {path: p}\nparity: {tolerances: {float32: {atol: -1, rtol: 0}}}\n", "atol and rtol must be >= 0"),
    ("name: [unclosed\n", "not valid YAML"),
])
def test_bad_cards_name_the_file_and_the_fix(tmp_path: Path, text, expect):
    path = tmp_path / "x.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_card(path)
    assert str(path) in str(err.value) and expect in str(err.value)


def test_card_name_must_match_file(tmp_path: Path):
    path = tmp_path / "other.yaml"
    path.write_text((CARDS_DIR / "tiny-llama.yaml").read_text())
    with pytest.raises(ConfigError, match="must match its file name"):
        load_card(path)


def test_tolerance_defaults_by_dtype():
    card = ModelCard.from_mapping({"name": "x", "architecture": "A", "source": {"path": "p"}}, "x")
    assert card.tolerance("float32").rtol < card.tolerance("bfloat16").rtol
