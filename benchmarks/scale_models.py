"""Random-weight checkpoints of real shapes, generated on the fly (no downloads), for weight-parity runs.

Run with an interpreter that has torch and transformers (the harness process never imports them):

    python benchmarks/scale_models.py --shape llama-gqa --dtype float32 --tokenizer ZOO_DIR --out DIR

``--tokenizer`` names a checkpoint directory to copy the tokenizer files from (a tiny zoo model:
its ids fit every vocabulary here). Shapes (parameters; float32 size):

- ``llama-gqa``: hidden 1024, GQA 16/4 heads of 64, 8 layers, intermediate 2816 (91.2M; 365 MB);
- ``qwen3-moe-128``: 128 experts, hidden 512, expert intermediate 256, 4 layers (203M; 812 MB);
  ``--layers 8`` gives the same size in bfloat16;
- ``qwen3-moe-128-tiny``: 128 experts, hidden 64, 2 layers, q_proj of 256 rows (1.6M; 6 MB) for tests.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path
from typing import Any

SHAPES: dict[str, dict[str, Any]] = {
    "llama-gqa": {"model_type": "llama", "hidden_size": 1024, "num_attention_heads": 16, "num_key_value_heads": 4,
                  "head_dim": 64, "num_hidden_layers": 8, "intermediate_size": 2816},
    "qwen3-moe-128": {"model_type": "qwen3_moe", "hidden_size": 512, "num_attention_heads": 8,
                      "num_key_value_heads": 4, "head_dim": 64, "num_hidden_layers": 4, "intermediate_size": 1024,
                      "moe_intermediate_size": 256, "num_experts": 128, "num_experts_per_tok": 8},
    "qwen3-moe-128-tiny": {"model_type": "qwen3_moe", "hidden_size": 64, "num_attention_heads": 4,
                           "num_key_value_heads": 2, "head_dim": 64, "num_hidden_layers": 2, "intermediate_size": 128,
                           "moe_intermediate_size": 32, "num_experts": 128, "num_experts_per_tok": 4},
}
ARCHITECTURES = {"llama": "LlamaForCausalLM", "qwen3_moe": "Qwen3MoeForCausalLM"}
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "generation_config.json")


def config_dict(shape: str, tokenizer_dir: Path, layers: int | None = None) -> dict[str, Any]:
    """The model config: the shape, the tokenizer's vocabulary and special ids, an untied head."""
    base = json.loads((tokenizer_dir / "config.json").read_text())
    cfg = dict(SHAPES[shape])
    if layers:
        cfg["num_hidden_layers"] = layers
    cfg.update({k: base[k] for k in ("vocab_size", "bos_token_id", "eos_token_id", "pad_token_id") if k in base})
    cfg.update({"tie_word_embeddings": False, "max_position_embeddings": 256,
                "architectures": [ARCHITECTURES[cfg["model_type"]]]})
    return cfg


def generate(shape: str, dtype: str, tokenizer_dir: Path, out: Path, seed: int = 0, layers: int | None = None) -> Path:
    """Write a random-weight checkpoint (safetensors, config, tokenizer) of ``shape`` in ``dtype`` to ``out``."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    torch.manual_seed(seed)
    cfg = config_dict(shape, tokenizer_dir, layers)
    config = AutoConfig.for_model(**cfg)
    with torch.no_grad():
        model = AutoModelForCausalLM.from_config(config, dtype=getattr(torch, dtype))
        for p in model.parameters():  # from_config leaves norms at ones: every tensor random, so a swap shows
            p.normal_(0.0, 0.02)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True, max_shard_size="2GB")
    for name in TOKENIZER_FILES:
        if (tokenizer_dir / name).is_file() and not (out / name).exists():
            shutil.copy(tokenizer_dir / name, out / name)
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--shape", required=True, choices=sorted(SHAPES))
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    p.add_argument("--tokenizer", required=True, type=Path, help="a checkpoint directory to copy the tokenizer from")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--layers", type=int, default=None, help="override the shape's layer count")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if not (args.tokenizer / "tokenizer.json").is_file():
        p.error(f"--tokenizer {args.tokenizer} has no tokenizer.json; give a tiny zoo checkpoint directory")
    out = generate(args.shape, args.dtype, args.tokenizer, args.out, args.seed, args.layers)
    size = sum(f.stat().st_size for f in out.glob("*.safetensors"))
    print(json.dumps({"out": str(out), "shape": args.shape, "dtype": args.dtype, "bytes": size}), flush=True)


if __name__ == "__main__":
    sys.exit(main())
