"""Per-layer hidden states of the hf runtime: forward hooks on the decoder layers and their attention and
MLP / MoE submodules, for POST /layer_states (hf_server.py; the harness's side: harness/reference/layerstates.py).

Standalone like hf_server.py (torch only). Each prompt runs alone (no padding), one forward pass, and
every probe point keeps only the last prompt token's vector, so the answer is ``[prompts, points,
hidden]`` float32 (a few KB for a tiny model, ~3 x 3 x layers x hidden x 4 bytes for a real one).
Point names say where they were taken: ``embeddings``, ``3:attention``, ``3:mlp`` (``3:moe`` for a
sparse block), ``3:layer`` (the layer's output, residual included), ``final:norm``. Hooks registered
here run after any registered at load (the test-only compute faults of hf_faults.py), so they see
what the model really computed.
"""
from __future__ import annotations

from collections.abc import Iterator

import torch

ATTENTION_NAMES = ("self_attn", "attention", "attn", "self_attention")
MLP_NAMES = ("mlp", "block_sparse_moe", "feed_forward", "moe")
FINAL_NORM_NAMES = ("norm", "final_layernorm", "ln_f")


def decoder_layers(model: torch.nn.Module) -> tuple[str, torch.nn.ModuleList]:
    """The ModuleList holding most parameters (the decoder layers), with its name."""
    lists = [(n, m) for n, m in model.named_modules() if isinstance(m, torch.nn.ModuleList) and len(m)]
    if not lists:
        raise ValueError("the model has no ModuleList of decoder layers to probe")
    return max(lists, key=lambda item: sum(p.numel() for p in item[1].parameters()))


def _child(module: torch.nn.Module, names: tuple[str, ...]) -> torch.nn.Module | None:
    return next((getattr(module, n) for n in names if isinstance(getattr(module, n, None), torch.nn.Module)), None)


def _is_moe(module: torch.nn.Module) -> bool:
    return hasattr(module, "experts") or "moe" in type(module).__name__.lower()


def probe_points(model: torch.nn.Module) -> Iterator[tuple[str, torch.nn.Module]]:
    """(point name, module) in the order the forward pass reaches them."""
    prefix, layers = decoder_layers(model)
    owner = model.get_submodule(prefix.rpartition(".")[0]) if "." in prefix else model
    # a transformers model; torch's Module.__getattr__ stub types the method as Tensor | Module
    embed = model.get_input_embeddings()  # type: ignore[operator]
    if embed is not None:
        yield "embeddings", embed
    for i, layer in enumerate(layers):
        attn, mlp = _child(layer, ATTENTION_NAMES), _child(layer, MLP_NAMES)
        if attn is not None:
            yield f"{i}:attention", attn
        if mlp is not None:
            yield f"{i}:{'moe' if _is_moe(mlp) else 'mlp'}", mlp
        yield f"{i}:layer", layer
    norm = _child(owner, FINAL_NORM_NAMES)
    if norm is not None:
        yield "final:norm", norm


def _last_token(output: object) -> torch.Tensor | None:
    """The last position's vector of a module's output (a tensor, or a tuple whose first item is one)."""
    t = output[0] if isinstance(output, (tuple, list)) and output else output
    if not isinstance(t, torch.Tensor) or t.dim() < 2:
        return None
    return t.reshape(-1, t.shape[-1])[-1].detach().to("cpu", torch.float32)


def capture(model: torch.nn.Module, tokenizer, prompts: list[str], device: str) -> tuple[list[str], torch.Tensor]:
    """Point names and a ``[prompts, points, hidden]`` float32 tensor of last-token outputs."""
    points = list(probe_points(model))
    seen: dict[str, torch.Tensor] = {}
    handles = [module.register_forward_hook(_recorder(name, seen)) for name, module in points]
    rows = []
    try:
        for prompt in prompts:
            seen.clear()
            enc = tokenizer(prompt, return_tensors="pt").to(device)
            with torch.no_grad():
                model(**enc, use_cache=False)
            missing = [name for name, _ in points if name not in seen]
            if missing:
                raise ValueError(f"no output captured at {missing}: the module returned no hidden-state tensor")
            rows.append(torch.stack([seen[name] for name, _ in points]))
    finally:
        for h in handles:
            h.remove()
    return [name for name, _ in points], torch.stack(rows).contiguous()


def _recorder(name: str, seen: dict[str, torch.Tensor]):
    def hook(module: torch.nn.Module, args: object, output: object) -> None:
        vector = _last_token(output)
        if vector is not None and name not in seen:  # the first call: a module reused later is not overwritten
            seen[name] = vector

    return hook
