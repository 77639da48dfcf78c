"""Named, opt-in workarounds for known upstream gaps; each changes the system under test and says how.

A workaround is applied only when asked for (``--workaround NAME``); the cells it touches record
it in their results and the report shows it. Without it, the affected cells fail with the
upstream error in their reason and log tail.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import final

from harness.registry import Registry

HERE = Path(__file__).resolve().parent


@final
@dataclasses.dataclass(frozen=True)
class Workaround:
    """A named change to how a runtime is launched."""

    name: str
    runtime: str
    summary: str
    changes: str
    pythonpath: tuple[Path, ...] = ()
    env: tuple[tuple[str, str], ...] = ()


WORKAROUNDS: Registry[Workaround] = Registry("workaround")
WORKAROUNDS.register("sglang-cpu-rotary-shim", Workaround(
    name="sglang-cpu-rotary-shim",
    runtime="sglang",
    summary="SGLang on a CPU without AMX: supply vllm._custom_ops.rotary_embedding, which SGLang imports "
            "unconditionally when no platform flag is set (else: ModuleNotFoundError: No module named 'vllm').",
    changes="puts a pure-torch `vllm` package (harness/runtimes/workarounds/sglang_vllm_shim) first on SGLang's PYTHONPATH. "
            "Measured: the op is imported but never called with --device cpu (SGLang's forward_native rotates); "
            "it must never be visible to a real vLLM install.",
    pythonpath=(HERE / "sglang_vllm_shim",),
))


def apply(names: tuple[str, ...], env: dict[str, str]) -> dict[str, str]:
    """The environment with the named workarounds applied (PYTHONPATH entries first, then variables)."""
    out = dict(env)
    for name in names:
        w = WORKAROUNDS.get(name)
        if w.pythonpath:
            parts = [str(p) for p in w.pythonpath] + ([out["PYTHONPATH"]] if out.get("PYTHONPATH") else [])
            out["PYTHONPATH"] = ":".join(parts)
        out.update(dict(w.env))
    return out
