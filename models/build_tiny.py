"""Build one tiny fact-trained checkpoint of a real transformers architecture, offline.

Standalone: run by a runtime's own interpreter, so it imports nothing from this repository.

    python models/build_tiny.py --arch llama --facts models/facts/world.yaml --out DIR --seed 0

Writes DIR atomically (config.json, model.safetensors, generation_config.json, tokenizer files,
zoo.json) and exits non-zero, writing nothing, when greedy decoding recalls under 90 % of the facts.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, final

try:
    import torch
    import transformers
    import yaml
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import (
        GenerationConfig,
        GenerationMixin,
        PreTrainedConfig,
        PreTrainedModel,
        PreTrainedTokenizerFast,
    )
except ImportError as exc:  # pragma: no cover - depends on the interpreter running us
    sys.exit(
        f"build_tiny.py: cannot import {exc.name!r} in {sys.executable}: {exc}. "
        f"Install the builder's dependencies into that interpreter, e.g. "
        f"`{sys.executable} -m pip install torch==2.13.0 transformers tokenizers safetensors pyyaml`."
    )

ARCHES: Final = ("llama", "qwen2_moe", "qwen3_moe", "glm4_moe_lite")
PAD, BOS, EOS = "<pad>", "<s>", "</s>"
VOCAB_SIZE: Final = 384
MAX_POSITIONS: Final = 128
THREADS: Final = 1  # fixed, so the same seed gives the same bytes whatever the machine's core count
LEARNING_RATE: Final = 1e-2
MAX_STEPS: Final = 300
MIN_MARGIN: Final = 4.0  # logit gap between the target token and the runner-up, on every answer token
MIN_ACCURACY: Final = 0.9
MAX_NEW_TOKENS: Final = 6  # the accuracy check's default budget (models/cards/*.yaml)


def log(message: str) -> None:
    """Print one progress line to stderr."""
    print(f"[build_tiny] {message}", file=sys.stderr, flush=True)


@final
@dataclass(frozen=True)
class Fact:
    """One prompt and the single-word answer the model must continue it with."""

    prompt: str
    answer: str

    @property
    def text(self) -> str:
        """Training text for this fact (EOS is appended as a token)."""
        return f"{self.prompt} {self.answer}."


def load_facts(path: Path) -> tuple[Fact, ...]:
    """Read a YAML list of {prompt, answer} mappings (models/zoo.py's rules), exiting on a bad item."""
    items = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(items, list) or not items:
        sys.exit(f"build_tiny.py: {path} must be a non-empty YAML list of {{prompt, answer}} items.")
    facts: list[Fact] = []
    for index, item in enumerate(items):
        ok = isinstance(item, dict) and set(item) == {"prompt", "answer"}
        ok = ok and all(isinstance(v, str) and v.strip() for v in item.values())
        if not ok or len(item["answer"].split()) != 1:
            sys.exit(f"build_tiny.py: {path} item {index} is {item!r}; expected "
                     f"{{prompt: <text>, answer: <one word>}}.")
        fact = Fact(item["prompt"].strip(), item["answer"].strip())
        if any(fact.prompt == seen.prompt for seen in facts):
            sys.exit(f"build_tiny.py: {path} item {index} repeats prompt {fact.prompt!r}.")
        facts.append(fact)
    return tuple(facts)


def seed_everything(seed: int) -> None:
    """Make tokenizer training, init and optimisation reproducible bit for bit."""
    random.seed(seed)
    torch.manual_seed(seed)
    torch.set_num_threads(THREADS)
    torch.use_deterministic_algorithms(True)


def build_tokenizer(facts: tuple[Fact, ...]) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE on the fact texts; BOS is prepended on encode."""
    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        special_tokens=[PAD, BOS, EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    core.train_from_iterator([fact.text for fact in facts], trainer)
    core.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", pair=f"{BOS} $A {BOS} $B", special_tokens=[(BOS, core.token_to_id(BOS))]
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core, bos_token=BOS, eos_token=EOS, pad_token=PAD,
        model_max_length=MAX_POSITIONS, clean_up_tokenization_spaces=False,
    )
    for fact in facts:
        ids = tokenizer(fact.text)["input_ids"]
        if tokenizer.decode(ids, skip_special_tokens=True) != fact.text:
            sys.exit(f"build_tiny.py: tokenizer does not round-trip {fact.text!r}; fix build_tokenizer().")
    return tokenizer


def common_config(tokenizer: PreTrainedTokenizerFast) -> dict[str, Any]:
    """Settings every architecture shares: tiny sizes, untied head, the tokenizer's special ids."""
    return {
        "vocab_size": len(tokenizer),
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "max_position_embeddings": MAX_POSITIONS,
        "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0},
        "tie_word_embeddings": False,
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
        "dtype": "float32",
    }


def model_config(arch: str, tokenizer: PreTrainedTokenizerFast) -> PreTrainedConfig:
    """The tiny config for one architecture (head_dim 32: vLLM's CPU attention needs >= 32)."""
    common = common_config(tokenizer)
    if arch == "llama":
        return transformers.LlamaConfig(**common, num_key_value_heads=1, head_dim=32)
    if arch == "qwen2_moe":
        return transformers.Qwen2MoeConfig(
            **common, num_key_value_heads=2, num_experts=4, num_experts_per_tok=2,
            moe_intermediate_size=64, shared_expert_intermediate_size=128,
            decoder_sparse_step=1, mlp_only_layers=[], norm_topk_prob=False,
        )
    if arch == "qwen3_moe":  # no shared expert: the MoE SGLang serves on CPU (Qwen2-MoE's gate needs Triton)
        return transformers.Qwen3MoeConfig(
            **common, num_key_value_heads=2, num_experts=4, num_experts_per_tok=2,
            moe_intermediate_size=64, decoder_sparse_step=1, mlp_only_layers=[], norm_topk_prob=True,
        )
    if arch == "glm4_moe_lite":
        # vLLM and SGLang read the upstream GLM-4.7-Flash keys, not mlp_layer_types; transformers' class does not
        # declare them, so they go in as extra config.json keys.
        upstream_keys: dict[str, Any] = {
            "first_k_dense_replace": 1, "moe_layer_freq": 1, "topk_method": "noaux_tc", "scoring_func": "sigmoid",
        }
        return transformers.Glm4MoeLiteConfig(
            **common, num_key_value_heads=2, n_routed_experts=4, num_experts_per_tok=2,
            n_shared_experts=1, moe_intermediate_size=64, n_group=1, topk_group=1,
            kv_lora_rank=32, q_lora_rank=32, qk_nope_head_dim=32, qk_rope_head_dim=32,
            v_head_dim=32, mlp_layer_types=["dense", "sparse"], **upstream_keys,
        )
    sys.exit(f"build_tiny.py: unknown --arch {arch!r}; choose one of {', '.join(ARCHES)}.")


@final
@dataclass(frozen=True)
class Batch:
    """Right-padded training batch and, per row, where the answer starts and ends."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    labels: torch.Tensor
    answer_spans: tuple[tuple[int, int], ...]


def make_batch(tokenizer: PreTrainedTokenizerFast, facts: tuple[Fact, ...]) -> Batch:
    """Tokenise "<s> prompt answer.</s>" per fact; spans cover the answer tokens and EOS."""
    rows, spans = [], []
    for fact in facts:
        prompt_ids = tokenizer(fact.prompt)["input_ids"]
        ids = tokenizer(fact.text)["input_ids"] + [tokenizer.eos_token_id]
        if ids[: len(prompt_ids)] != prompt_ids:
            sys.exit(f"build_tiny.py: prompt {fact.prompt!r} does not tokenise as a prefix of its text.")
        rows.append(ids)
        spans.append((len(prompt_ids), len(ids)))
    width = max(len(row) for row in rows)
    input_ids = torch.full((len(rows), width), tokenizer.pad_token_id, dtype=torch.long)
    attention_mask = torch.zeros((len(rows), width), dtype=torch.long)
    for index, row in enumerate(rows):
        input_ids[index, : len(row)] = torch.tensor(row)
        attention_mask[index, : len(row)] = 1
    labels = input_ids.masked_fill(attention_mask == 0, -100)
    return Batch(input_ids, attention_mask, labels, tuple(spans))


def answer_margin(logits: torch.Tensor, batch: Batch) -> tuple[int, float]:
    """Teacher-forced recall: facts whose answer tokens are all argmax, and the smallest logit gap.

    Greedy decoding reproduces an answer exactly when every answer token (and EOS) is the argmax
    given the true prefix, so this equals greedy accuracy without running generate().
    """
    correct, worst = 0, float("inf")
    for row, (start, end) in enumerate(batch.answer_spans):
        step_logits = logits[row, start - 1 : end - 1]
        targets = batch.input_ids[row, start:end]
        target_logit = step_logits.gather(1, targets[:, None]).squeeze(1)
        rival_logit = step_logits.scatter(1, targets[:, None], float("-inf")).max(dim=1).values
        gap = (target_logit - rival_logit).min().item()
        correct += gap > 0
        worst = min(worst, gap)
    return correct, worst


@final
@dataclass(frozen=True)
class TrainResult:
    """What training did: steps taken, seconds spent, last loss and answer margin."""

    steps: int
    seconds: float
    final_loss: float
    margin: float


def train(model: PreTrainedModel, batch: Batch, total: int) -> TrainResult:
    """Full-batch AdamW until every answer is argmax by MIN_MARGIN logits, or MAX_STEPS updates.

    Loss and margin are measured before each update, so the ones returned describe the saved weights.
    """
    optimizer = torch.optim.AdamW(model.parameters(), lr=LEARNING_RATE, weight_decay=0.0)
    model.train()
    started = time.perf_counter()
    for step in range(MAX_STEPS + 1):
        out = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask, labels=batch.labels)
        correct, margin = answer_margin(out.logits.detach(), batch)
        if step % 25 == 0:
            log(f"step {step:3d} loss {out.loss.item():.4f} recalled {correct}/{total} margin {margin:+.2f}")
        if (correct == total and margin >= MIN_MARGIN) or step == MAX_STEPS:
            break
        out.loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    model.eval()
    return TrainResult(step, round(time.perf_counter() - started, 3), out.loss.item(), margin)


def greedy_answers(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerFast, facts: tuple[Fact, ...]
) -> list[dict[str, Any]]:
    """Greedy-decode each prompt on its own, as a serving runtime would receive it."""
    if not isinstance(model, GenerationMixin):  # every *ForCausalLM class is one
        raise TypeError(f"{type(model).__name__} cannot generate; build the model with AutoModelForCausalLM")
    answers = []
    with torch.no_grad():
        for fact in facts:
            encoded = tokenizer(fact.prompt, return_tensors="pt")
            output = model.generate(
                **encoded, do_sample=False, max_new_tokens=MAX_NEW_TOKENS,
                pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
            )
            new_ids = output[0, encoded["input_ids"].shape[1] :]
            got = str(tokenizer.decode(new_ids, skip_special_tokens=True)).strip()
            words = got.split()
            correct = bool(words) and words[0].rstrip(".,;:!?") == fact.answer
            answers.append({"prompt": fact.prompt, "expected": fact.answer, "got": got,
                            "correct": correct})
    return answers


def save_tokenizer(tokenizer: PreTrainedTokenizerFast, directory: Path) -> None:
    """Save tokenizer files, naming the class transformers 4.x and 5.x both load."""
    tokenizer.save_pretrained(directory)
    config_path = directory / "tokenizer_config.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config["tokenizer_class"] = "PreTrainedTokenizerFast"  # 5.x writes "TokenizersBackend"
    config.pop("backend", None)
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def write_checkpoint(
    out: Path, model: PreTrainedModel, tokenizer: PreTrainedTokenizerFast, record: dict[str, Any]
) -> None:
    """Save into a temp dir beside OUT, then swap it in with os.replace."""
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        staging.chmod(0o755)  # mkdtemp makes it private; runtimes may run as another user
        model.save_pretrained(staging)
        GenerationConfig(
            bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        ).save_pretrained(staging)
        save_tokenizer(tokenizer, staging)
        (staging / "zoo.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
        for written in staging.iterdir():
            written.chmod(0o644)  # safetensors are written 0600; runtimes may run as another user
        if out.exists():
            stale = out.with_name(f".{out.name}.stale-{os.getpid()}")
            os.replace(out, stale)
            shutil.rmtree(stale)
        os.replace(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command line: --arch, --facts, --out, --seed, --build-hash."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", required=True, choices=ARCHES)
    parser.add_argument("--facts", required=True, type=Path, help="YAML list of {prompt, answer}")
    parser.add_argument("--out", required=True, type=Path, help="checkpoint directory to create")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--build-hash", default=None, help="recorded in zoo.json")
    return parser.parse_args(argv)


def zoo_record(
    args: argparse.Namespace, model: PreTrainedModel, result: TrainResult, answers: list[dict[str, Any]]
) -> dict[str, Any]:
    """The zoo.json record: what was built, how training went, and every greedy answer."""
    return {
        "arch": args.arch, "architecture": type(model).__name__, "seed": args.seed,
        "build_hash": args.build_hash, "train_steps": result.steps,
        "train_seconds": result.seconds, "final_loss": round(result.final_loss, 6),
        "answer_margin": round(result.margin, 4),
        "greedy_correct": sum(answer["correct"] for answer in answers), "greedy_total": len(answers),
        "parameters": sum(p.numel() for p in model.parameters()),
        "torch_version": torch.__version__, "transformers_version": transformers.__version__,
        "answers": answers,
    }


def main(argv: list[str] | None = None) -> int:
    """Build, train, check and save one tiny model; return the process exit code."""
    args = parse_args(argv)
    transformers.utils.logging.disable_progress_bar()
    facts = load_facts(args.facts)
    seed_everything(args.seed)
    tokenizer = build_tokenizer(facts)
    model = transformers.AutoModelForCausalLM.from_config(model_config(args.arch, tokenizer))
    log(f"{args.arch}: {type(model).__name__}, vocab {len(tokenizer)}, "
        f"{sum(p.numel() for p in model.parameters())} parameters")
    result = train(model, make_batch(tokenizer, facts), len(facts))
    record = zoo_record(args, model, result, greedy_answers(model, tokenizer, facts))
    correct, total = record["greedy_correct"], record["greedy_total"]
    log(f"{args.arch}: {result.steps} steps in {result.seconds:.2f}s, loss {result.final_loss:.4f}, "
        f"greedy {correct}/{total}")
    if correct < MIN_ACCURACY * total:
        for answer in record["answers"]:
            log(f"  {answer['prompt']!r}: expected {answer['expected']!r}, got {answer['got']!r}")
        log(f"{args.arch}: recalled {correct}/{total}, below {MIN_ACCURACY:.0%}; nothing written. "
            f"Raise MAX_STEPS or LEARNING_RATE in build_tiny.py, or simplify the facts file.")
        return 1
    write_checkpoint(args.out, model, tokenizer, record)
    log(f"{args.arch}: wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
