"""Test-only faults for hf_server.py: corrupt the loaded weights in named ways, or expose them in
SGLang's fused layout, so the harness's own tests can prove which check catches which bug class.

Selected by the env var HARNESS_HF_FAULT, a comma list (``sglang_layout,moe_expert_transposed``).
Standalone like hf_server.py (torch only). Offloaded weights (accelerate's weights_map, cpu or
disk) are rewritten where the forward pass reads them, so a fault behaves the same in every
offload mode. The server reports the active faults in /get_server_info (``fault``), so a faulted
run is never mistaken for a clean one. The fault table is in docs/numerics.md.
"""
from __future__ import annotations

import dataclasses
import os
import random
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

FAULT_ENV = "HARNESS_HF_FAULT"
STATE_ENV = "HARNESS_HF_CHAOS_STATE"  # a directory where test-only faults count boots (shared with hf_chaos)
VOCAB_PAD = 64  # SGLang pads vocab rows to a multiple of 64 (DEFAULT_VOCAB_PADDING_SIZE)


# ---- live tensors: where the forward pass reads a parameter, offloaded or not -----------------

def locate(model: torch.nn.Module, name: str) -> tuple[torch.Tensor, Callable[[torch.Tensor], None]] | None:
    """The tensor the model computes with for ``name``, and a setter that replaces it there."""
    module_name, _, leaf = name.rpartition(".")
    try:
        module = model.get_submodule(module_name)
    except AttributeError:
        return None
    t = getattr(module, leaf, None)
    if not isinstance(t, torch.Tensor):
        return None
    if t.device.type != "meta":
        def copy_into(v: torch.Tensor) -> None:
            t.data.copy_(v.to(t.dtype))

        return t, copy_into
    parts = module_name.split(".") if module_name else []
    for cut in range(len(parts), -1, -1):
        owner = model.get_submodule(".".join(parts[:cut]))
        wmap = getattr(getattr(owner, "_hf_hook", None), "weights_map", None)
        rel = ".".join(parts[cut:] + [leaf])
        if wmap is not None and rel in wmap:
            return wmap[rel], _map_setter(wmap, rel)
    return None


def _map_setter(wmap, key: str) -> Callable[[torch.Tensor], None]:
    """Replace an entry of accelerate's (prefixed) weights map: the state dict wins over disk."""
    while hasattr(wmap, "dataset") and hasattr(wmap, "prefix"):
        key, wmap = f"{wmap.prefix}{key}", wmap.dataset
    store = wmap.state_dict if hasattr(wmap, "state_dict") else wmap
    old = wmap[key]

    def set_value(v: torch.Tensor) -> None:
        store[key] = v.to(old.dtype).to(old.device).contiguous()

    return set_value


def _modify(model: torch.nn.Module, name: str, change: Callable[[torch.Tensor], torch.Tensor]) -> str:
    found = locate(model, name)
    if found is None:
        raise SystemExit(f"{FAULT_ENV}: the model has no tensor {name!r} to corrupt")
    value, set_value = found
    set_value(change(value.detach().clone()))
    return name


def _names(model: torch.nn.Module, pattern: str) -> list[str]:
    rx = re.compile(pattern)
    return [n for n, _ in model.named_parameters() if rx.search(n)]


def _pick(model: torch.nn.Module, pattern: str, what: str, last: bool = False) -> str:
    found = _names(model, pattern)
    if not found:
        raise SystemExit(f"{FAULT_ENV}: this model has no {what} (no parameter matches {pattern!r}); "
                         f"pick a fault that fits the model")
    return found[-1] if last else found[0]


# ---- harmful faults: each returns what it changed ------------------------------------------

def moe_expert_transposed(model: torch.nn.Module) -> str:
    """Expert 1's fused gate/up weight of the last MoE layer, transposed then reshaped back."""
    name = _pick(model, r"\.experts\.gate_up_proj$", "MoE experts", last=True)

    def change(t: torch.Tensor) -> torch.Tensor:
        t[1] = t[1].t().contiguous().reshape(t[1].shape)
        return t

    return _modify(model, name, change) + "[1] transposed and reshaped back"


def moe_late_expert_scaled(model: torch.nn.Module) -> str:
    """The last expert's down projection of the last MoE layer scaled by 1.5: with 128 experts it lies
    beyond the first 64 rows of the stack, where a card's ``truncate_rows: 64`` never looks."""
    name = _pick(model, r"\.experts\.down_proj$", "MoE experts", last=True)

    def change(t: torch.Tensor) -> torch.Tensor:
        t[-1] = t[-1] * 1.5
        return t

    return _modify(model, name, change) + "[-1] scaled by 1.5"


def tp_shard_zeroed(model: torch.nn.Module) -> str:
    """The second half of the output rows (rank 1's shard at tp 2) of layer 0's query projection, zeroed."""
    name = _pick(model, r"layers\.0\.self_attn\.(q_proj|q_b_proj)\.weight$", "layer-0 query projection")

    def change(t: torch.Tensor) -> torch.Tensor:
        t[t.shape[0] // 2:] = 0
        return t

    return _modify(model, name, change) + " second half of the rows zeroed"


def bf16_rounded(model: torch.nn.Module) -> str:
    """Every floating-point weight rounded through bfloat16 (a no-op in a bfloat16 cell)."""
    names = [n for n, p in model.named_parameters() if p.is_floating_point()]
    for n in names:
        _modify(model, n, lambda t: t.to(torch.bfloat16).to(t.dtype))
    return f"{len(names)} tensors rounded through bfloat16"


def norm_reset(model: torch.nn.Module) -> str:
    """The last layer's post-attention norm weight reset to ones (its initial value)."""
    name = _pick(model, r"layers\.\d+\.post_attention_layernorm\.weight$", "post-attention norm", last=True)
    return _modify(model, name, torch.ones_like) + " reset to ones"


def attn_scaled(model: torch.nn.Module) -> str:
    """The last layer's attention output projection scaled by 1.005: small enough to keep every answer,
    large enough to move a chosen token's logprob well past the float32 limit (1.001 sat on it)."""
    name = _pick(model, r"layers\.\d+\.self_attn\.o_proj\.weight$", "attention output projection", last=True)
    return _modify(model, name, lambda t: t * 1.005) + " scaled by 1.005"


FAULTS: dict[str, Callable[[torch.nn.Module], str]] = {
    f.__name__: f for f in (moe_expert_transposed, moe_late_expert_scaled, tp_shard_zeroed, bf16_rounded, norm_reset, attn_scaled)
}


def norm_jitter(model: torch.nn.Module) -> str:
    """The last layer's post-attention norm scaled by a factor that changes from boot to boot, so two
    boots of the cell disagree: 1.25, 1.75, 2.25, ... by the boots counted in $HARNESS_HF_CHAOS_STATE,
    else drawn at random in [1.2, 2)."""
    name = _pick(model, r"layers\.\d+\.post_attention_layernorm\.weight$", "post-attention norm", last=True)
    factor = 1.25 + 0.5 * _boots_before("jitter") if os.environ.get(STATE_ENV) else 1.2 + 0.8 * random.random()
    return _modify(model, name, lambda t: t * factor) + f" scaled by {factor:.3f} (differs per boot)"


def _boots_before(tag: str) -> int:
    """How many earlier boots of this cell counted ``tag`` in the chaos state dir (this one is counted too)."""
    state, cell = Path(os.environ[STATE_ENV]), os.environ.get("HARNESS_CELL", "cell")
    n = len(list(state.glob(f"{cell}.{tag}.*")))
    (state / f"{cell}.{tag}.{n}").touch()
    return n


FAULTS[norm_jitter.__name__] = norm_jitter


# ---- compute faults: one layer's computation changed, its weights untouched (``name@LAYER``) --------

COMPUTE_SCALE = 1.05  # a wrong scale in one kernel: the answers stay, every logprob after it moves


def _scale_output(model: torch.nn.Module, layer: int, pattern: str, what: str) -> str:
    """Multiply the output of the module of decoder layer ``layer`` matching ``pattern`` by COMPUTE_SCALE."""
    rx = re.compile(rf"(^|\.)layers\.{layer}\.({pattern})$")
    name = next((n for n, _ in model.named_modules() if rx.search(n)), None)
    if name is None:
        raise SystemExit(f"{FAULT_ENV}: this model has no {what} in decoder layer {layer} (no module matches "
                         f"{rx.pattern!r}); pick a layer index below the model's num_hidden_layers")

    def hook(module: torch.nn.Module, args: object, output: torch.Tensor | tuple[Any, ...]) -> object:
        if isinstance(output, tuple):
            return (output[0] * COMPUTE_SCALE, *output[1:])
        return output * COMPUTE_SCALE

    model.get_submodule(name).register_forward_hook(hook)
    return f"{name} output scaled by {COMPUTE_SCALE} in the forward pass (weights untouched)"


def attn_output_scaled(model: torch.nn.Module, layer: int) -> str:
    """Decoder layer ``layer``'s attention output x1.05, computed, not stored: weight parity cannot see it."""
    return _scale_output(model, layer, "self_attn|attention|attn|self_attention", "attention block")


def mlp_output_scaled(model: torch.nn.Module, layer: int) -> str:
    """Decoder layer ``layer``'s MLP / MoE block output x1.05, computed, not stored."""
    return _scale_output(model, layer, "mlp|block_sparse_moe|feed_forward|moe", "MLP or MoE block")


LAYER_FAULTS: dict[str, Callable[[torch.nn.Module, int], str]] = {
    f.__name__: f for f in (attn_output_scaled, mlp_output_scaled)}


def _fault(name: str) -> Callable[[torch.nn.Module], str] | None:
    """A fault by name: ``attn_scaled`` from FAULTS, ``attn_output_scaled@1`` from LAYER_FAULTS at layer 1."""
    base, at, layer = name.partition("@")
    if at and base in LAYER_FAULTS and layer.isdigit():
        return lambda model: LAYER_FAULTS[base](model, int(layer))
    return FAULTS.get(name)


# ---- views: the weights endpoint shows SGLang's names (computation untouched) ------------------

@dataclasses.dataclass(frozen=True)
class SGLangView:
    """Serve /get_weights_by_name under SGLang's fused names (qkv_proj, gate_up_proj, w13/w2,
    fused_qkv_a_proj_with_mqa) with vocab rows padded to a multiple of 64 (one block more when
    already aligned, so the padding is always there to check); the unfused names disappear.
    ``pad_value`` != 0 is the fault vocab_padding_garbage."""

    pad_value: float = 0.0

    def read(self, model: torch.nn.Module, name: str, live: Callable[[str], torch.Tensor | None]) -> torch.Tensor | None:
        if _hidden(name, live):
            return None
        for pattern, build in _FUSED:
            m = re.match(pattern, name)
            if m:
                return build(self, m, live)
        return live(name)

    def pad_rows(self, t: torch.Tensor | None) -> torch.Tensor | None:
        if t is None:
            return None
        rows = (t.shape[0] // VOCAB_PAD + 1) * VOCAB_PAD
        pad = torch.full((rows - t.shape[0], *t.shape[1:]), self.pad_value, dtype=t.dtype, device=t.device)
        return torch.cat([t, pad])


def _cat(live: Callable[[str], torch.Tensor | None], names: list[str]) -> torch.Tensor | None:
    parts = [live(n) for n in names]
    present = [p for p in parts if p is not None]
    return None if len(present) < len(parts) else torch.cat([p.to("cpu") for p in present])


_FUSED: tuple[tuple[str, Callable[..., torch.Tensor | None]], ...] = (
    (r"^(.+)\.qkv_proj\.(weight|bias)$",
     lambda v, m, live: _cat(live, [f"{m[1]}.{x}_proj.{m[2]}" for x in "qkv"])),
    (r"^(.+)\.fused_qkv_a_proj_with_mqa\.weight$",
     lambda v, m, live: _cat(live, [f"{m[1]}.q_a_proj.weight", f"{m[1]}.kv_a_proj_with_mqa.weight"])),
    (r"^(.+\.experts)\.w13_weight$", lambda v, m, live: live(f"{m[1]}.gate_up_proj")),
    (r"^(.+\.experts)\.w2_weight$", lambda v, m, live: live(f"{m[1]}.down_proj")),
    (r"^(.+)\.gate_up_proj\.weight$",
     lambda v, m, live: _cat(live, [f"{m[1]}.gate_proj.weight", f"{m[1]}.up_proj.weight"])),
    (r"^(model\.embed_tokens|lm_head)\.weight$", lambda v, m, live: v.pad_rows(live(m[0]))),
)


def _hidden(name: str, live: Callable[[str], torch.Tensor | None]) -> bool:
    """Names SGLang does not have because it fused them."""
    if re.search(r"\.experts\.(gate_up_proj|down_proj)$", name):
        return True
    m = re.match(r"^(.+)\.(q|k|v)_proj\.(weight|bias)$", name)
    if m:
        return live(f"{m[1]}.k_proj.{m[3]}") is not None
    m = re.match(r"^(.+)\.(gate|up)_proj\.weight$", name)
    if m:
        return live(f"{m[1]}.gate_proj.weight") is not None and live(f"{m[1]}.up_proj.weight") is not None
    m = re.match(r"^(.+)\.(q_a_proj|kv_a_proj_with_mqa)\.weight$", name)
    return m is not None and live(f"{m[1]}.q_a_proj.weight") is not None


VIEWS: dict[str, SGLangView] = {"sglang_layout": SGLangView(), "vocab_padding_garbage": SGLangView(pad_value=0.01)}


# ---- load faults: change how hf_server.py loads, not the weights ------------------------------

LOAD_FAULTS: dict[str, str] = {
    "inert_offload": "offload asked for but every weight loaded on the device (the device map reported as asked)",
}


def inert_offload(spec: str) -> bool:
    """Whether ``spec`` (HARNESS_HF_FAULT) asks hf_server.py to ignore its offload mode silently."""
    return "inert_offload" in (n.strip() for n in spec.split(","))


# ---- the fault set of one server -------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class FaultSet:
    """The faults applied to this server's model and the view its weights endpoint shows."""

    names: tuple[str, ...] = ()
    applied: tuple[str, ...] = ()
    view: SGLangView | None = None

    @property
    def label(self) -> str | None:
        return ",".join(self.names) or None

    def read(self, model: torch.nn.Module, name: str, live: Callable[[torch.nn.Module, str], torch.Tensor | None]):
        if self.view is None:
            return live(model, name)
        return self.view.read(model, name, lambda n: live(model, n))


def apply_faults(model: torch.nn.Module, spec: str) -> FaultSet:
    """Apply the comma list ``spec`` to the loaded model; an unknown name exits, listing the known ones."""
    names = tuple(n.strip() for n in spec.split(",") if n.strip())
    unknown = [n for n in names if _fault(n) is None and n not in VIEWS and n not in LOAD_FAULTS]
    if unknown:
        raise SystemExit(f"unknown {FAULT_ENV} fault(s) {unknown}; known: {', '.join([*FAULTS, *VIEWS, *LOAD_FAULTS])}, "
                         f"and per layer: {', '.join(f'{n}@LAYER' for n in LAYER_FAULTS)}")
    views = [VIEWS[n] for n in names if n in VIEWS]
    if len(views) > 1:
        raise SystemExit(f"{FAULT_ENV}: pick one of the views {', '.join(VIEWS)}, got {names}")
    with torch.no_grad():
        applied = tuple(LOAD_FAULTS[n] if n in LOAD_FAULTS else _fault(n)(model)  # type: ignore[misc]
                        for n in names if n not in VIEWS)
    return FaultSet(names, applied, views[0] if views else None)
