"""Pure-torch replacement for vllm._custom_ops.rotary_embedding (in-place, like the CUDA op).

Semantics follow vLLM's csrc/pos_encoding_kernels.cu `rotary_embedding`:
  positions:     [num_tokens] or [batch, seq] (int64)
  query:         [num_tokens, num_heads * head_size] or [num_tokens, num_heads, head_size]
                 (or [batch, seq, ...]); rotated IN PLACE
  key:           same layout as query with num_kv_heads, or None; rotated IN PLACE
  head_size:     int
  cos_sin_cache: [max_position, rot_dim]; first rot_dim/2 columns cos, last rot_dim/2 sin
  is_neox:       True  -> rotate first/second halves of the rotary part (GPT-NeoX / Llama HF style)
                 False -> rotate interleaved (even, odd) pairs (GPT-J style)
Only the first rot_dim elements of each head are rotated; the rest pass through.
Returns None.
"""
import os

import torch

CALLS = 0  # how often the op was actually invoked (SGLANG CPU path may never call it)
_TRACE = os.environ.get("HARNESS_SHIM_TRACE") == "1"


def _rotate_(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, head_size: int, is_neox: bool):
    # x: [num_tokens, heads * head_size] view (any contiguous-compatible layout)
    n = x.shape[0]
    xv = x.view(n, -1, head_size)
    rot_dim = cos.shape[-1] * 2
    rot = xv[..., :rot_dim]
    c = cos.unsqueeze(1).to(torch.float32)  # [n, 1, rot_dim/2]
    s = sin.unsqueeze(1).to(torch.float32)
    if is_neox:
        x1 = rot[..., : rot_dim // 2].to(torch.float32)
        x2 = rot[..., rot_dim // 2:].to(torch.float32)
        o1 = x1 * c - x2 * s
        o2 = x2 * c + x1 * s
        out = torch.cat((o1, o2), dim=-1)
    else:
        x1 = rot[..., 0::2].to(torch.float32)
        x2 = rot[..., 1::2].to(torch.float32)
        o1 = x1 * c - x2 * s
        o2 = x2 * c + x1 * s
        out = torch.stack((o1, o2), dim=-1).flatten(-2)
    rot.copy_(out.to(x.dtype))


def rotary_embedding(positions: torch.Tensor, query: torch.Tensor, key, head_size: int,
                     cos_sin_cache: torch.Tensor, is_neox: bool) -> None:
    global CALLS
    CALLS += 1
    if _TRACE and CALLS <= 3:
        print(f"[harness-shim] vllm._custom_ops.rotary_embedding call #{CALLS}: "
              f"q{tuple(query.shape)} k{None if key is None else tuple(key.shape)} "
              f"head_size={head_size} cache{tuple(cos_sin_cache.shape)} neox={is_neox}", flush=True)
    pos = positions.reshape(-1)
    n = pos.shape[0]
    cos_sin = cos_sin_cache.index_select(0, pos.to(torch.long))
    cos, sin = cos_sin.chunk(2, dim=-1)
    for t in (query, key):
        if t is None:
            continue
        t2 = t.view(n, -1) if t.is_contiguous() else None
        if t2 is None:  # non-contiguous: rotate a copy, then write back
            tmp = t.reshape(n, -1).clone()
            _rotate_(tmp, cos, sin, head_size, is_neox)
            t.copy_(tmp.view_as(t))
        else:
            _rotate_(t2, cos, sin, head_size, is_neox)
    return None


def batched_rotary_embedding(positions, query, key, head_size, cos_sin_cache, is_neox,
                             rot_dim, cos_sin_cache_offsets):
    # vLLM signature; offsets index into a concatenated cache (long-rope / scaling variants)
    rotary_embedding(positions + cos_sin_cache_offsets.view_as(positions), query, key,
                     head_size, cos_sin_cache, is_neox)
