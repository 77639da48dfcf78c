"""Preflight: before any cell boots, each runtime's interpreter must import the runtime and its device stack.

One subprocess per runtime that has a cell going to run, all started at once. A runtime adapter
declares what it needs with a ``preflight`` attribute (a RuntimeNeeds); the device stack comes
from the cells' devices (simulated devices run on the CPU). Modules in ``present`` are only
located (``importlib.util.find_spec``: milliseconds), modules in ``imports`` are imported for real.
"""
from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import time
from collections.abc import Iterable, Mapping
from typing import Literal, final

from harness.config.matrix import Cell
from harness.config.options import HarnessOptions
from harness.errors import PREFLIGHT_REASON
from harness.runtimes.base import RuntimeNeeds

PROBE_TIMEOUT_S = 120.0
MARK = "HARNESS-PREFLIGHT "
DEVICE_STACK: Mapping[str, tuple[str, ...]] = {
    "cpu": ("torch",), "cuda": ("torch",), "rocm": ("torch",), "xpu": ("torch",), "npu": ("torch", "torch_npu"),
}
How = Literal["find", "import"]

# Runs in the runtime's interpreter; prints one marked JSON line {module: error or null}.
_PROBE = r"""
import importlib, importlib.util, json, sys
out = {}
for how, name in json.loads(sys.argv[1]):
    try:
        if how == "import":
            importlib.import_module(name)
        elif importlib.util.find_spec(name) is None:
            raise ModuleNotFoundError(f"No module named {name!r}")
        out[name] = None
    except BaseException as exc:
        out[name] = f"{type(exc).__name__}: {exc}"
print("HARNESS-PREFLIGHT " + json.dumps(out), flush=True)
"""


@final
@dataclasses.dataclass(frozen=True)
class PreflightFailure:
    """A module a runtime's cells need that its interpreter cannot import."""

    runtime: str
    python: str
    module: str
    error: str
    install: str

    @property
    def cause(self) -> str:
        how = f"install it ({self.install})" if self.install else f"install {self.module} there"
        return (f"python {self.python} cannot `import {self.module}` ({self.error}); {how} or point "
                f"--runtime-python {self.runtime}=PATH at its venv")

    @property
    def reason(self) -> str:
        """The result records' reason for each of the runtime's cells."""
        return f"{PREFLIGHT_REASON} {self.cause}"

    @property
    def line(self) -> str:
        """The one terminal line."""
        return f"harness: runtime {self.runtime} cannot run: {self.cause}"


def needs_of(runtime: str) -> RuntimeNeeds:
    """The adapter's declared needs; an adapter without a ``preflight`` attribute needs only its device stack."""
    from harness.runtimes import RUNTIMES

    needs = getattr(RUNTIMES.get(runtime), "preflight", None)
    return needs if isinstance(needs, RuntimeNeeds) else RuntimeNeeds()


class Preflight:
    """The run's import probes: collects the cells that will run, probes each runtime once, answers per cell."""

    def __init__(self, options: HarnessOptions) -> None:
        self.options = options
        self.devices: dict[str, dict[str, None]] = {}  # runtime -> device stacks its running cells need
        self.found: dict[str, dict[str, str | None]] = {}  # runtime -> module -> error (None: importable)
        self.seconds = 0.0

    def want(self, cells: Iterable[Cell]) -> None:
        """Cells that are going to run (after deselection and skips)."""
        for cell in cells:
            self.devices.setdefault(cell.runtime, {})[self._run_device(cell)] = None

    def run(self) -> list[PreflightFailure]:
        """Probe every wanted runtime not probed yet, concurrently; the distinct failures, in runtime order."""
        todo = {rt: self._modules(rt) for rt in self.devices if rt not in self.found}
        if todo:
            t0 = time.monotonic()
            self.found.update(probe_all({rt: (self.options.python_for(rt), mods, self._env(rt)) for rt, mods in todo.items()}))
            self.seconds += time.monotonic() - t0
        failures = (self._first_failure(rt, DEVICE_STACK.get(d, ())) for rt, ds in self.devices.items() for d in ds)
        return list(dict.fromkeys(f for f in failures if f is not None))

    def failure(self, cell: Cell) -> PreflightFailure | None:
        """Why the cell's runtime cannot run (probing its runtime now if that was not done yet), or None."""
        if cell.runtime not in self.found:
            self.want([cell])
            self.run()
        return self._first_failure(cell.runtime, DEVICE_STACK.get(self._run_device(cell), ()))

    def _first_failure(self, runtime: str, device_modules: tuple[str, ...]) -> PreflightFailure | None:
        needs, errors = needs_of(runtime), self.found.get(runtime, {})
        for module in (*needs.present, *needs.imports, *device_modules):
            if errors.get(module):
                install = needs.install if module in needs.present + needs.imports else f"pip install {module.replace('_', '-')}"
                return PreflightFailure(runtime, self.options.python_for(runtime), module, str(errors[module]), install)
        return None

    def _modules(self, runtime: str) -> list[tuple[How, str]]:
        needs = needs_of(runtime)
        stack = [m for d in self.devices.get(runtime, {}) for m in DEVICE_STACK.get(d, ())]
        found: list[tuple[How, str]] = [("find", m) for m in dict.fromkeys([*needs.present, *stack]) if m not in needs.imports]
        return found + [("import", m) for m in needs.imports]

    def _run_device(self, cell: Cell) -> str:
        return "cpu" if cell.device in self.options.simulate else cell.device

    def _env(self, runtime: str) -> dict[str, str]:
        """The runtime's environment as a boot would set it up (workarounds' PYTHONPATH included)."""
        from harness.runtimes import workarounds

        names = tuple(n for n in self.options.workarounds if workarounds.WORKAROUNDS.get(n).runtime == runtime)
        base = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "COV_CORE_"))}
        return workarounds.apply(names, base)


def probe_all(requests: Mapping[str, tuple[str, list[tuple[How, str]], dict[str, str]]],
              timeout_s: float = PROBE_TIMEOUT_S) -> dict[str, dict[str, str | None]]:
    """Start one probe per key (python, modules, env) at once, then collect each: key -> module -> error."""
    started: dict[str, subprocess.Popen[str] | str] = {}
    for key, (python, modules, env) in requests.items():
        try:
            started[key] = subprocess.Popen([python, "-c", _PROBE, json.dumps(modules)], stdout=subprocess.PIPE,
                                            stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True, env=env)
        except OSError as exc:
            started[key] = f"the interpreter did not start ({type(exc).__name__}: {exc})"
    deadline = time.monotonic() + timeout_s
    return {key: _collect(started[key], [m for _, m in requests[key][1]], deadline, timeout_s) for key in requests}


def _collect(proc: subprocess.Popen[str] | str, modules: list[str], deadline: float,
             timeout_s: float) -> dict[str, str | None]:
    if isinstance(proc, str):
        return dict.fromkeys(modules, proc)
    try:
        out, err = proc.communicate(timeout=max(0.1, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        return dict.fromkeys(modules, f"the import probe took more than {timeout_s:.0f}s and was stopped")
    for line in reversed(out.splitlines()):
        if line.startswith(MARK):
            return {m: json.loads(line[len(MARK):]).get(m) for m in modules}
    why = (err.strip().splitlines() or ["no output"])[-1][:300]
    return dict.fromkeys(modules, f"the probe exited with code {proc.returncode}: {why}")
