"""SGLang's debug tensor dump as per-layer states: run by SGLang's own interpreter (torch only).

    python sglang_dump.py OUT.npz PASS_PROMPT1.pt PASS_PROMPT2.pt ...

Each ``Pass#####.pt`` (``--debug-tensor-dump-output-folder``, one file per forward pass, every leaf
module's output) is the prefill of one probe prompt, so its last row is the prompt's last token.
Points as harness/runtimes/hf_layers.py names them, where SGLang's leaves give them exactly:
``embeddings`` (``model.embed_tokens``), ``L:attention`` (``model.layers.L.self_attn.o_proj``),
``L:mlp`` (``model.layers.L.mlp.down_proj``), ``L:moe`` (``model.layers.L.mlp.experts``, only without
shared experts), ``L:layer`` (the residual half of the next ``input_layernorm``'s, or ``model.norm``'s,
``[normed, residual]`` output: SGLang adds the residual there) and ``final:norm``. Writes ``names``
and ``values`` (``[prompts, points, hidden]`` float32) to OUT.npz.
"""
from __future__ import annotations

import re
import sys

import numpy as np
import torch


def _last(value: object, part: int = 0) -> torch.Tensor | None:
    if isinstance(value, (list, tuple)):
        value = value[part] if len(value) > part else None
    elif part:
        return None
    return value[-1].float() if isinstance(value, torch.Tensor) and value.dim() == 2 else None


def _layers(dump: dict) -> list[int]:
    return sorted({int(m[1]) for k in dump if (m := re.match(r"model\.layers\.(\d+)\.", k))})


def points(dump: dict) -> list[tuple[str, torch.Tensor]]:
    """(point name, last-token vector) for every point this dump gives exactly, in forward order."""
    out: list[tuple[str, torch.Tensor | None]] = [("embeddings", _last(dump.get("model.embed_tokens")))]
    layers = _layers(dump)
    for i in layers:
        p = f"model.layers.{i}."
        out.append((f"{i}:attention", _last(dump.get(p + "self_attn.o_proj"))))
        if p + "mlp.down_proj" in dump:
            out.append((f"{i}:mlp", _last(dump[p + "mlp.down_proj"])))
        elif p + "mlp.experts" in dump and not any(k.startswith(p + "mlp.shared_expert") for k in dump):
            out.append((f"{i}:moe", _last(dump[p + "mlp.experts"])))
        after = f"model.layers.{i + 1}.input_layernorm" if i + 1 in layers else "model.norm"
        out.append((f"{i}:layer", _last(dump.get(after), part=1)))
    out.append(("final:norm", _last(dump.get("model.norm"))))
    return [(name, t) for name, t in out if t is not None]


def convert(passes: list[str]) -> tuple[list[str], np.ndarray]:
    """Point names (those every pass has) and ``[prompts, points, hidden]`` float32 values."""
    per_prompt = [dict(points(torch.load(path, map_location="cpu", weights_only=False))) for path in passes]
    names = [n for n in per_prompt[0] if all(n in d for d in per_prompt)]
    values = torch.stack([torch.stack([d[n] for n in names]) for d in per_prompt])
    return names, values.numpy().astype(np.float32)


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    names, values = convert(argv[1:])
    np.savez(argv[0], names=np.array(names), values=values)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
