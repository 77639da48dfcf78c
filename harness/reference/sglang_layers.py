"""Per-layer states of an SGLang cell: its running server cannot give them, so the cell is booted a
second time with SGLang's debug tensor dump (``--debug-tensor-dump-output-folder``, plus
``--disable-radix-cache`` so every prompt is prefilled whole), asked each probe prompt alone for one
token, torn down, and the pass files are converted by SGLang's interpreter (sglang_dump.py).

Costs one more boot of the cell, only when the layer comparison runs (a failing cell, or
``--layer-diff always``). CPU cells only: on an accelerator the cell's own runtime still holds the
card while its checks run.
"""
from __future__ import annotations

import dataclasses
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

import harness.runtimes
from harness.config.cards import ModelCard
from harness.config.matrix import Cell
from harness.config.matrixfile import MatrixFile
from harness.config.options import HarnessOptions
from harness.numerics.layerdiff import LayerStates
from harness.reference.layerstates import LayerStatesUnavailable

CONVERTER = Path(harness.runtimes.__file__).with_name("sglang_dump.py")
HOW = "a second boot of the cell with --debug-tensor-dump-output-folder"


def with_args(options: HarnessOptions, runtime: str, args: tuple[str, ...]) -> HarnessOptions:
    """``options`` with ``args`` added to ``runtime``'s launch arguments."""
    matrix = options.matrix or MatrixFile(path=Path("<layer-diff>"), axes={}, runtime_options={}, exclude=(), na=())
    ro = options.runtime_options(runtime)
    runtime_options = {**matrix.runtime_options, runtime: dataclasses.replace(ro, args=(*ro.args, *args))}
    return dataclasses.replace(options, matrix=dataclasses.replace(matrix, runtime_options=runtime_options))


def dumped_states(cell: Cell, card: ModelCard, options: HarnessOptions, prompts: tuple[str, ...]) -> LayerStates:
    """Boot ``cell`` dumping, ask ``prompts`` one at a time, convert; LayerStatesUnavailable off the CPU."""
    if cell.device != "cpu":
        raise LayerStatesUnavailable(f"per-layer states of sglang come from {HOW}; done for cpu cells only "
                                     f"(on {cell.device} the cell's runtime still holds the card)")
    from harness.boot import cellrun  # cellrun imports the checks, which import this module's caller

    options.out_dir.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".layerdump-", dir=options.out_dir))
    try:
        dumping = with_args(options, "sglang", ("--debug-tensor-dump-output-folder", str(scratch / "dump"),
                                                "--disable-radix-cache"))
        rt = cellrun.boot(cell, card, dumping, log_name=f"layerdump-{cell.id}.log")
        try:
            passes = [_prefill_of(rt.client, scratch / "dump", p) for p in prompts]
        finally:
            cellrun.shutdown(rt)
        return _convert(options.python_for("sglang"), scratch / "states.npz", passes, prompts)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _prefill_of(client, dump: Path, prompt: str) -> Path:
    """The pass file the prompt's prefill wrote (the largest of the new ones)."""
    before = set(dump.rglob("Pass*.pt"))
    client.generate([prompt], max_new_tokens=1)
    new = set(dump.rglob("Pass*.pt")) - before
    if not new:
        raise ValueError(f"sglang dumped no forward pass for prompt {prompt!r} into {dump}")
    return max(new, key=lambda f: f.stat().st_size)


def _convert(python: str, out: Path, passes: list[Path], prompts: tuple[str, ...]) -> LayerStates:
    done = subprocess.run([python, str(CONVERTER), str(out), *map(str, passes)], capture_output=True, text=True,
                          timeout=600)
    if done.returncode != 0:
        raise ValueError(f"{CONVERTER.name} failed (exit {done.returncode}): {done.stderr[-500:]}")
    with np.load(out, allow_pickle=False) as data:
        return LayerStates.build([str(n) for n in data["names"]], data["values"], prompts)
