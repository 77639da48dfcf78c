"""The harness's command-line options, read once into a validated frozen value.

Axis values resolve in this order: the command line, then the matrix file (``--matrix``), then
the built-in defaults.
"""
from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, final

from harness.config.catalog import CatalogSpec
from harness.config.matrix import DEVICES, parse_list
from harness.config.matrixfile import MatrixFile, RuntimeOptions
from harness.errors import ConfigError

DEFAULT_OUT = Path("reports/latest")
DEFAULTS = {
    "runtimes": "hf", "devices": "cpu,cuda,npu", "models": "all", "offload_modes": "none,cpu,disk",
    "dtypes": "float32", "tp": "1",
}
_AXIS_OPTIONS = {"runtimes": "--runtimes", "devices": "--devices", "models": "--models",
                 "offload_modes": "--offload-modes", "dtypes": "--dtypes", "tp": "--tp"}


def axis_help(axis: str, known: Sequence[str] = (), lead: str = "comma list overriding the matrix") -> str:
    """An axis option's help: its default and, when given, the names it takes (installed ones too).

    >>> axis_help("runtimes", ["hf", "sglang", "vllm", "hf_ext"])
    'comma list overriding the matrix (default: hf; known: hf, sglang, vllm, hf_ext)'
    """
    names = f"; known: {', '.join(known)}" if known else ""
    return f"{lead} (default: {DEFAULTS[axis]}{names})"


def add_options(parser: Any, *, known_runtimes: Sequence[str] = ()) -> None:
    """Register the harness's options on a pytest parser.

    ``known_runtimes``: the runtime registry's names (built-in and installed), listed in the help of --runtimes.
    """
    group = parser.getgroup("harness", "LLM serving conformance matrix")
    group.addoption("--matrix", default=None, metavar="FILE", help="YAML matrix file (axes, runtime options, exclude/N/A rules)")
    for axis, opt in _AXIS_OPTIONS.items():
        group.addoption(opt, default=None, help=axis_help(axis, known_runtimes if axis == "runtimes" else ()))
    group.addoption("--cards", action="append", default=[], metavar="DIR",
                    help="also read the model cards (NAME.yaml) of DIR; a name already defined is refused (repeatable)")
    group.addoption("--model", action="append", default=[], metavar="NAME=PATH",
                    help="test the checkpoint directory PATH as model NAME, its card built from PATH/config.json; "
                         "runs instead of the default models unless --models or the matrix file names models (repeatable)")
    group.addoption("--model-facts", default=None, metavar="SET,...",
                    help="fact sets of the --model cards (default: world,general,arithmetic, as the real cards)")
    group.addoption("--harness-out", default=None, help=f"directory for results.jsonl, manifest.json, index.html (default: {DEFAULT_OUT})")
    group.addoption("--runtime-python", action="append", default=[], metavar="NAME=PATH",
                    help="interpreter that launches runtime NAME (repeatable; env HARNESS_PYTHON_<NAME>)")
    group.addoption("--boot-timeout", type=float, default=None, metavar="S",
                    help="seconds a runtime may take to become ready (default: per runtime)")
    group.addoption("--workaround", action="append", default=[], metavar="NAME",
                    help="apply a named upstream workaround (see `harness workarounds`)")
    group.addoption("--simulate-devices", default=None, metavar="KIND:N,...",
                    help="pretend these devices exist (e.g. npu:8); their cells run on the CPU and are marked simulated")
    group.addoption("--require-devices", default=None, metavar="KIND,...",
                    help="fail the run when none of these devices is found (a nightly must not pass by skipping)")
    group.addoption("--shard", default=None, metavar="I/N", help="run only shard I of N (1-based), balanced by past durations")
    group.addoption("--shard-durations", default=None, metavar="RESULTS",
                    help="results.jsonl of an earlier run, for balancing shards (default: the run directory's own)")
    group.addoption("--lease-dir", default=None, metavar="DIR",
                    help="directory of device and port lock files (default: /tmp/llm-harness-leases)")
    group.addoption("--boot-ahead", type=int, default=1, metavar="N",
                    help="boot up to N next cells while the current one is checked, where a card (or the CPU) is free; "
                         "0 boots each cell only when it is needed (default: %(default)s; ignored under xdist)")
    group.addoption("--retries", type=int, default=None, metavar="N",
                    help="boot a failing cell again once and re-check what failed, to tell flaky from broken "
                         "(1, the default; 0: never; env HARNESS_RETRIES)")
    group.addoption("--harness-progress", action="store_true", default=False, help="print one line per cell as cells finish")
    group.addoption("--layer-diff", default="on-failure", metavar="WHEN",
                    help="name the first divergent layer against the reference: on-failure (of logprob parity, "
                         "the default), always, or never")


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
    matrix: MatrixFile | None = None
    simulate: Mapping[str, int] = dataclasses.field(default_factory=dict)
    require_devices: tuple[str, ...] = ()
    shard: tuple[int, int] | None = None
    shard_durations: Path | None = None
    lease_dir: Path | None = None
    progress: bool = False
    boot_ahead: int = 1
    retries: int = 1
    catalog: CatalogSpec = CatalogSpec()
    layer_diff: str = "on-failure"  # harness/checks/layer_divergence.py: always | on-failure | never

    @classmethod
    def from_config(cls, config: Any) -> HarnessOptions:
        opt = config.getoption
        matrix = MatrixFile.load(Path(opt("--matrix"))) if opt("--matrix") else None
        axes = {a: _axis(opt(o), matrix, a, o) for a, o in _AXIS_OPTIONS.items()}
        timeout = opt("--boot-timeout")
        if timeout is not None and timeout <= 0:
            raise ConfigError(f"--boot-timeout must be > 0 seconds, got {timeout}")
        ahead = opt("--boot-ahead")
        if ahead is None or ahead < 0:
            raise ConfigError(f"--boot-ahead takes a count >= 0 (0: no boot ahead), got {ahead}")
        catalog = CatalogSpec.build(opt("--cards") or (), opt("--model") or (), opt("--model-facts"),
                                    matrix.cards if matrix else ())
        models = catalog.models_axis(axes["models"], from_cli=opt("--models") is not None,
                                     from_matrix=bool(matrix and matrix.axes.get("models") is not None))
        from_file = {k: v.python for k, v in (matrix.runtime_options if matrix else {}).items() if v.python}
        return cls(
            out_dir=Path(opt("--harness-out") or DEFAULT_OUT).resolve(),
            runtimes=axes["runtimes"], devices=axes["devices"], models=models,
            offload_modes=axes["offload_modes"], dtypes=axes["dtypes"], tps=_ints(axes["tp"], "--tp"),
            runtime_python=parse_runtime_python(opt("--runtime-python"), os.environ, from_file),
            boot_timeout_s=timeout, workarounds=tuple(opt("--workaround") or ()), matrix=matrix,
            simulate=parse_simulate(opt("--simulate-devices")),
            require_devices=_devices(opt("--require-devices"), "--require-devices"),
            shard=parse_shard(opt("--shard")),
            shard_durations=Path(opt("--shard-durations")) if opt("--shard-durations") else None,
            lease_dir=Path(opt("--lease-dir")) if opt("--lease-dir") else None,
            progress=bool(opt("--harness-progress")), boot_ahead=int(ahead),
            retries=parse_retries(opt("--retries"), os.environ), catalog=catalog,
            layer_diff=parse_layer_diff(opt("--layer-diff")),
        )

    def python_for(self, runtime: str) -> str:
        """The interpreter that launches ``runtime`` (default: the harness's own)."""
        return self.runtime_python.get(runtime, sys.executable)

    def runtime_options(self, runtime: str) -> RuntimeOptions:
        return (self.matrix.runtime_options.get(runtime) if self.matrix else None) or RuntimeOptions()


def _axis(cli: str | None, matrix: MatrixFile | None, axis: str, option: str) -> tuple[str, ...]:
    if cli is not None:
        return parse_list(cli, option)
    if matrix is not None and matrix.axes.get(axis) is not None:
        return tuple(matrix.axes[axis] or ())
    return parse_list(DEFAULTS[axis], option)


def _ints(values: tuple[str, ...], option: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in values)
    except ValueError:
        raise ConfigError(f"{option} takes integers such as '1,2', got {','.join(values)!r}") from None


def _devices(value: str | None, option: str) -> tuple[str, ...]:
    devices = parse_list(value, option) if value else ()
    bad = [d for d in devices if d not in DEVICES]
    if bad:
        raise ConfigError(f"{option}: unknown device(s) {bad}; known: {', '.join(DEVICES)}")
    return devices


def parse_retries(value: int | None, environ: Mapping[str, str]) -> int:
    """--retries, else HARNESS_RETRIES, else 1; a cell is booted again at most once."""
    raw: Any = value if value is not None else environ.get("HARNESS_RETRIES", "1")
    try:
        retries = int(raw)
    except ValueError:
        retries = -1
    if retries not in (0, 1):
        raise ConfigError(f"--retries / HARNESS_RETRIES takes 0 (never retry) or 1 (boot a failing cell again once), "
                          f"got {raw!r}")
    return retries


def parse_layer_diff(value: str | None) -> str:
    """``--layer-diff``: always, on-failure (the default) or never."""
    modes = ("always", "on-failure", "never")  # layer_divergence.LayerDiffMode
    if value is None:
        return "on-failure"
    if value not in modes:
        raise ConfigError(f"--layer-diff takes one of {', '.join(modes)}, got {value!r}; e.g. --layer-diff always")
    return value


def parse_simulate(value: str | None) -> dict[str, int]:
    """``"npu:8,cuda:4"`` -> {"npu": 8, "cuda": 4}; the CPU cannot be simulated.

    >>> parse_simulate("npu:8")
    {'npu': 8}
    """
    out: dict[str, int] = {}
    for item in parse_list(value, "--simulate-devices") if value else ():
        kind, sep, count = item.partition(":")
        if not sep or not count.isdigit() or int(count) < 1 or kind not in DEVICES or kind == "cpu":
            raise ConfigError(f"--simulate-devices takes KIND:N with KIND in {', '.join(d for d in DEVICES if d != 'cpu')} "
                              f"and N >= 1, got {item!r}; e.g. --simulate-devices npu:8")
        out[kind] = int(count)
    return out


def parse_shard(value: str | None) -> tuple[int, int] | None:
    """``"2/4"`` -> (2, 4); shards are numbered from 1."""
    if not value:
        return None
    i, sep, n = value.partition("/")
    if not sep or not i.isdigit() or not n.isdigit() or not 1 <= int(i) <= int(n):
        raise ConfigError(f"--shard takes I/N with 1 <= I <= N, got {value!r}; e.g. --shard 2/4")
    return int(i), int(n)


def parse_runtime_python(values: list[str], environ: Mapping[str, str], from_file: Mapping[str, str] | None = None) -> dict[str, str]:
    """Matrix-file pythons, then HARNESS_PYTHON_<NAME> env vars, then ``NAME=PATH`` items (the command line wins).

    ``["sglang=/venvs/sgl/bin/python"]`` with ``HARNESS_PYTHON_VLLM=/v/bin/python`` gives
    ``{"vllm": "/v/bin/python", "sglang": "/venvs/sgl/bin/python"}``; each path must exist.
    """
    out = dict(from_file or {})
    out.update({k[len("HARNESS_PYTHON_"):].lower(): v for k, v in environ.items() if k.startswith("HARNESS_PYTHON_") and v})
    for item in values:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise ConfigError(f"--runtime-python takes NAME=PATH, got {item!r}; e.g. --runtime-python sglang=/venvs/sglang/bin/python")
        out[name.strip()] = path.strip()
    for name, path in out.items():
        if not Path(path).exists():
            raise ConfigError(f"interpreter for runtime {name!r} not found: {path}; create that venv or fix the path")
    return out
