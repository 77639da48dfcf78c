"""The harness's command-line options, read once into a validated frozen value."""
from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, final

from harness.errors import ConfigError
from harness.matrix import parse_list

DEFAULT_OUT = Path("reports/latest")
DEFAULTS = {
    "runtimes": "hf",
    "devices": "cpu,cuda,npu",
    "models": "all",
    "offload_modes": "none,cpu,disk",
}


def add_options(parser: Any) -> None:
    """Register the harness's options on a pytest parser."""
    group = parser.getgroup("harness", "LLM serving conformance matrix")
    group.addoption("--runtimes", default=DEFAULTS["runtimes"], help="comma list of runtimes (default: %(default)s)")
    group.addoption("--devices", default=DEFAULTS["devices"], help="comma list of devices (default: %(default)s)")
    group.addoption("--models", default=DEFAULTS["models"], help="comma list of model cards, or 'all', or 'tiny' (default: %(default)s)")
    group.addoption("--offload-modes", default=DEFAULTS["offload_modes"], help="comma list of offload modes (default: %(default)s)")
    group.addoption("--dtypes", default="float32", help="comma list of dtypes (default: %(default)s)")
    group.addoption("--tp", default="1", help="comma list of tensor-parallel sizes (default: %(default)s)")
    group.addoption("--harness-out", default=None, help=f"directory for results.jsonl, manifest.json, index.html (default: {DEFAULT_OUT})")
    group.addoption("--runtime-python", action="append", default=[], metavar="NAME=PATH",
                    help="interpreter that launches runtime NAME (repeatable; env HARNESS_PYTHON_<NAME>)")
    group.addoption("--boot-timeout", type=float, default=None, help="seconds a runtime may take to become ready (default: per runtime)")
    group.addoption("--workaround", action="append", default=[], metavar="NAME", help="apply a named upstream workaround (see `harness workarounds`)")


@final
@dataclasses.dataclass(frozen=True)
class HarnessOptions:
    """Validated option values (names of models/runtimes are checked later against the registries)."""

    out_dir: Path
    runtimes: tuple[str, ...]
    devices: tuple[str, ...]
    models: tuple[str, ...]
    offload_modes: tuple[str, ...]
    dtypes: tuple[str, ...]
    tps: tuple[int, ...]
    runtime_python: Mapping[str, str]
    boot_timeout_s: float | None
    workarounds: tuple[str, ...]

    @classmethod
    def from_config(cls, config: Any) -> HarnessOptions:
        opt = config.getoption
        out = opt("--harness-out") or DEFAULT_OUT
        tps_raw = parse_list(opt("--tp"), "--tp")
        try:
            tps = tuple(int(t) for t in tps_raw)
        except ValueError:
            raise ConfigError(f"--tp takes integers such as '1,2', got {opt('--tp')!r}") from None
        timeout = opt("--boot-timeout")
        if timeout is not None and timeout <= 0:
            raise ConfigError(f"--boot-timeout must be > 0 seconds, got {timeout}")
        return cls(
            out_dir=Path(out).resolve(),
            runtimes=parse_list(opt("--runtimes"), "--runtimes"),
            devices=parse_list(opt("--devices"), "--devices"),
            models=parse_list(opt("--models"), "--models"),
            offload_modes=parse_list(opt("--offload-modes"), "--offload-modes"),
            dtypes=parse_list(opt("--dtypes"), "--dtypes"),
            tps=tps,
            runtime_python=parse_runtime_python(opt("--runtime-python"), os.environ),
            boot_timeout_s=timeout,
            workarounds=tuple(opt("--workaround") or ()),
        )

    def python_for(self, runtime: str) -> str:
        """The interpreter that launches ``runtime`` (default: the harness's own)."""
        return self.runtime_python.get(runtime, sys.executable)


def parse_runtime_python(values: list[str], environ: Mapping[str, str]) -> dict[str, str]:
    """``NAME=PATH`` items plus HARNESS_PYTHON_<NAME> env vars; the command line wins.

    >>> parse_runtime_python(["sglang=/venvs/sgl/bin/python"], {"HARNESS_PYTHON_VLLM": "/v/bin/python"})
    {'vllm': '/v/bin/python', 'sglang': '/venvs/sgl/bin/python'}
    """
    out = {k[len("HARNESS_PYTHON_"):].lower(): v for k, v in environ.items() if k.startswith("HARNESS_PYTHON_") and v}
    for item in values:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise ConfigError(f"--runtime-python takes NAME=PATH, got {item!r}; e.g. --runtime-python sglang=/venvs/sglang/bin/python")
        out[name.strip()] = path.strip()
    for name, path in out.items():
        if not Path(path).exists():
            raise ConfigError(f"interpreter for runtime {name!r} not found: {path}; create that venv or fix the path")
    return out
