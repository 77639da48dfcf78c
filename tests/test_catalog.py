"""Your own models: card directories beyond the package (--cards, matrix cards:) and ad-hoc --model cards."""
from __future__ import annotations

import json
import re
import types
from pathlib import Path
from typing import Any

import pytest

from harness.config.cards import CARDS_DIR, load_cards
from harness.config.catalog import CatalogSpec, adhoc_card, load_catalog, parse_model_specs
from harness.config.matrixfile import MatrixFile
from harness.config.options import HarnessOptions, add_options
from harness.errors import ConfigError
from harness.plugin.plan import MODEL_GROUPS, build_plan, select_models


def card_dir(tmp_path: Path, name: str = "mine", source: str = "/ckpt/mine", **extra: str) -> Path:
    """A card directory outside the package holding a copy of tiny-llama's card under another name."""
    directory = tmp_path / "cards"
    directory.mkdir(parents=True, exist_ok=True)
    text = (CARDS_DIR / "tiny-llama.yaml").read_text().replace("name: tiny-llama", f"name: {name}")
    text = text.replace("  builder: {arch: llama, facts: world, seed: 0}", f"  path: {source}")
    (directory / f"{name}.yaml").write_text(text + "".join(f"{k}: {v}\n" for k, v in extra.items()))
    return directory


def checkpoint(tmp_path: Path, config: dict[str, Any] | None, weights: str | None = "model.safetensors") -> Path:
    """A checkpoint directory: config.json (unless None) and one weights file (unless None)."""
    path = tmp_path / "ckpt"
    path.mkdir()
    if config is not None:
        (path / "config.json").write_text(json.dumps(config))
    if weights:
        (path / weights).write_bytes(b"\0" * 8)
    return path


LLAMA = {"architectures": ["LlamaForCausalLM"], "model_type": "llama"}


def options(**given: Any) -> HarnessOptions:
    """HarnessOptions.from_config over a stand-in config: the plugin's defaults, then ``given``."""
    defaults: dict[str, Any] = {}

    class Parser:
        def getgroup(self, *_: Any) -> Parser:
            return self

        def addoption(self, *names: str, **kw: Any) -> None:
            defaults[names[0]] = kw.get("default")

    add_options(Parser())
    values = {**defaults, **{"--" + k.replace("_", "-"): v for k, v in given.items()}}
    return HarnessOptions.from_config(types.SimpleNamespace(getoption=values.__getitem__))


def test_a_card_directory_adds_its_cards_to_all_and_real(tmp_path):
    cards = load_catalog(CatalogSpec(card_dirs=(card_dir(tmp_path),)), reserved=MODEL_GROUPS)
    assert cards["mine"].card_path == tmp_path / "cards" / "mine.yaml"
    assert set(load_cards()) < set(cards)
    assert "mine" in select_models(("all",), cards) and "mine" in select_models(("real",), cards)
    assert "mine" not in select_models(("tiny",), cards)


def test_a_card_named_like_a_package_card_is_refused_naming_both_files(tmp_path):
    directory = tmp_path / "cards"
    directory.mkdir()
    (directory / "tiny-llama.yaml").write_text((CARDS_DIR / "tiny-llama.yaml").read_text())
    with pytest.raises(ConfigError) as err:
        load_catalog(CatalogSpec(card_dirs=(directory,)))
    assert str(directory / "tiny-llama.yaml") in str(err.value)
    assert str(CARDS_DIR.resolve() / "tiny-llama.yaml") in str(err.value) and "rename" in str(err.value)


def test_the_same_name_in_two_card_directories_is_refused(tmp_path):
    first = card_dir(tmp_path / "a")  # both define "mine"
    second = card_dir(tmp_path / "b")
    with pytest.raises(ConfigError, match="already defined by") as err:
        load_catalog(CatalogSpec(card_dirs=(first, second)))
    assert str(first / "mine.yaml") in str(err.value) and str(second / "mine.yaml") in str(err.value)


def test_an_invalid_card_in_a_card_directory_names_the_file_and_the_field(tmp_path):
    directory = card_dir(tmp_path, colour="red")
    with pytest.raises(ConfigError) as err:
        load_catalog(CatalogSpec(card_dirs=(directory,)))
    assert str(directory / "mine.yaml") in str(err.value) and "unknown field(s) ['colour']" in str(err.value)


@pytest.mark.parametrize("make, expect", [
    (lambda p: p / "absent", "not a directory"),
    (lambda p: p, "no *.yaml model card"),
])
def test_a_card_directory_that_is_missing_or_empty_is_refused(tmp_path, make, expect):
    with pytest.raises(ConfigError, match=f"card directory .*{re.escape(expect)}"):
        load_catalog(CatalogSpec(card_dirs=(make(tmp_path),)))


def test_an_adhoc_card_takes_the_real_cards_fact_sets_and_the_default_tolerances(tmp_path):
    card = adhoc_card("ft", checkpoint(tmp_path, LLAMA))
    real = load_cards()["llama-3.1-8b-instruct"]
    assert card.architecture == "LlamaForCausalLM" and card.source.path == str(tmp_path / "ckpt")
    assert card.sets == real.sets and card.logprob == real.logprob
    assert card.tolerance("bfloat16") == real.tolerance("bfloat16") and card.truncate_rows is None
    assert "dense" in card.tags and not card.embedded and card.unavailable_reason() is None


def test_an_adhoc_architecture_falls_back_to_the_model_type(tmp_path):
    card = adhoc_card("moe", checkpoint(tmp_path, {"architectures": ["Qwen3MoeForCausalLMWithHead"],
                                                   "model_type": "qwen3_moe"}))
    assert card.architecture == "Qwen3MoeForCausalLM" and "moe" in card.tags


def test_an_unknown_architecture_is_refused_listing_the_known_ones(tmp_path):
    path = checkpoint(tmp_path, {"architectures": ["MambaForCausalLM"], "model_type": "mamba"})
    with pytest.raises(ConfigError) as err:
        adhoc_card("m", path)
    message = str(err.value)
    assert "MambaForCausalLM" in message and "'mamba'" in message and str(path / "config.json") in message
    assert all(a in message for a in ("LlamaForCausalLM", "Qwen3MoeForCausalLM", "Glm4MoeLiteForCausalLM"))


def test_a_path_without_config_json_is_refused(tmp_path):
    path = checkpoint(tmp_path, None)
    with pytest.raises(ConfigError, match="no config.json in") as err:
        adhoc_card("m", path)
    assert f"--model m={path}" in str(err.value)


def test_a_path_without_safetensors_is_refused_saying_what_it_found(tmp_path):
    with pytest.raises(ConfigError, match=r"no \*\.safetensors file .*pytorch_model\.bin.*safe_serialization"):
        adhoc_card("m", checkpoint(tmp_path, LLAMA, weights="pytorch_model.bin"))


def test_an_adhoc_name_already_taken_is_refused_naming_both(tmp_path):
    path = checkpoint(tmp_path, LLAMA)
    with pytest.raises(ConfigError) as err:
        load_catalog(CatalogSpec(adhoc={"tiny-llama": path}))
    assert f"--model tiny-llama={path}" in str(err.value) and str(CARDS_DIR.resolve() / "tiny-llama.yaml") in str(err.value)
    with pytest.raises(ConfigError, match="is a model group"):
        load_catalog(CatalogSpec(adhoc={"real": path}), reserved=MODEL_GROUPS)


@pytest.mark.parametrize("items, expect", [
    (["nopath"], "--model takes NAME=PATH"),
    (["=/x"], "--model takes NAME=PATH"),
    (["my model=/x"], "must match"),
    (["a=/x", "a=/y"], "given twice"),
])
def test_bad_model_items_say_the_form(items, expect):
    with pytest.raises(ConfigError, match=expect):
        parse_model_specs(items)


def test_model_facts_choose_the_sets_and_an_unknown_set_is_refused(tmp_path):
    path = checkpoint(tmp_path, LLAMA)
    card = adhoc_card("m", path, ("world", "arithmetic"))
    assert [(s.name, s.shots) for s in card.sets] == [("world", 0), ("arithmetic", 4)]
    with pytest.raises(ConfigError, match="facts 'trivia' not found .*known: .*'world'"):
        adhoc_card("m", path, ("trivia",))
    with pytest.raises(ConfigError, match="no --model is given"):
        CatalogSpec.build(cards=(), models=(), facts="world")


def test_adhoc_models_run_instead_of_the_default_unless_models_are_named(tmp_path):
    path = str(checkpoint(tmp_path, LLAMA))
    assert options(model=[f"ft={path}"]).models == ("ft",)
    assert options(model=[f"ft={path}"], models="tiny-llama").models == ("tiny-llama",)
    matrix = tmp_path / "m.yaml"
    matrix.write_text("models: [tiny-llama]\n")
    assert options(model=[f"ft={path}"], matrix=str(matrix)).models == ("tiny-llama", "ft")


def test_an_adhoc_model_plans_cells_named_after_it(tmp_path):
    path = str(checkpoint(tmp_path, LLAMA))
    plan = build_plan(options(model=[f"ft={path}"], devices="cpu", offload_modes="none,disk"))
    assert [p.cell.id for p in plan.cells] == ["hf-cpu-ft-none", "hf-cpu-ft-disk"]
    assert plan.cards["ft"].architecture == "LlamaForCausalLM"


def test_matrix_file_cards_are_relative_to_the_file_and_include_adds_to_them(tmp_path):
    card_dir(tmp_path / "team")
    (tmp_path / "team" / "base.yaml").write_text("cards: [cards]\n")
    (tmp_path / "child.yaml").write_text("include: team/base.yaml\ncards: [more/cards]\nmodels: [mine]\n")
    assert MatrixFile.load(tmp_path / "child.yaml").cards == (tmp_path / "team" / "cards", tmp_path / "more" / "cards")
    card_dir(tmp_path / "more", name="other")
    opts = options(matrix=str(tmp_path / "child.yaml"), devices="cpu", offload_modes="none")
    assert [p.cell.id for p in build_plan(opts).cells] == ["hf-cpu-mine-none"]
    assert {"mine", "other"} <= set(build_plan(opts).cards)
