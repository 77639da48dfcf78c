"""The fixture matrix: runtime x device x model x offload (x dtype x tp) expanded into cells."""
from __future__ import annotations

import dataclasses
import fnmatch
import itertools
from collections.abc import Callable, Iterable, Sequence
from typing import Literal, final, get_args

from harness.errors import ConfigError

Device = Literal["cpu", "cuda", "npu", "rocm", "xpu"]
DEVICES: tuple[str, ...] = get_args(Device)
DType = Literal["float32", "bfloat16", "float16"]
DTYPES: tuple[str, ...] = get_args(DType)
DTYPE_SHORT = {"float32": "fp32", "bfloat16": "bf16", "float16": "fp16"}


@final
@dataclasses.dataclass(frozen=True, order=True)
class Cell:
    """One point of the matrix; its id reads like the matrix: ``hf-cpu-tiny-llama-disk``.

    dtype and tp appear in the id only when they differ from float32 / 1:
    ``sglang-npu-glm4-moe-lite-sharded_gpu-bf16-tp2``.
    """

    runtime: str
    device: str
    model: str
    offload: str
    dtype: str = "float32"
    tp: int = 1

    @property
    def id(self) -> str:
        parts = [self.runtime, self.device, self.model, self.offload]
        if self.dtype != "float32":
            parts.append(DTYPE_SHORT.get(self.dtype, self.dtype))
        if self.tp != 1:
            parts.append(f"tp{self.tp}")
        return "-".join(parts)

    def as_dict(self) -> dict[str, object]:
        return dataclasses.asdict(self)


@final
@dataclasses.dataclass(frozen=True)
class PlannedCell:
    """A cell and, when the combination means nothing, why it is N/A."""

    cell: Cell
    na_reason: str | None = None


@final
@dataclasses.dataclass(frozen=True)
class MatrixSpec:
    """Which values each axis takes; validated against the known names."""

    runtimes: tuple[str, ...]
    devices: tuple[str, ...]
    models: tuple[str, ...]
    offload_modes: tuple[str, ...]
    dtypes: tuple[str, ...] = ("float32",)
    tps: tuple[int, ...] = (1,)

    @classmethod
    def build(
        cls,
        *,
        runtimes: Sequence[str],
        devices: Sequence[str],
        models: Sequence[str],
        offload_modes: Sequence[str],
        dtypes: Sequence[str] = ("float32",),
        tps: Sequence[int] = (1,),
        known_runtimes: Iterable[str],
        known_models: Iterable[str],
        known_offload_modes: Iterable[str],
    ) -> MatrixSpec:
        """Validate every axis value; an unknown one raises ConfigError listing the known ones."""
        _check_known("runtime", runtimes, known_runtimes, "--runtimes")
        _check_known("device", devices, DEVICES, "--devices")
        _check_known("model", models, known_models, "--models")
        _check_known("offload mode", offload_modes, known_offload_modes, "--offload-modes")
        _check_known("dtype", dtypes, DTYPES, "--dtypes")
        bad_tp = [t for t in tps if t < 1]
        if bad_tp:
            raise ConfigError(f"tp must be a positive integer, got {bad_tp}; use e.g. --tp 1,2")
        return cls(
            tuple(_dedupe(runtimes)), tuple(_dedupe(devices)), tuple(_dedupe(models)),
            tuple(_dedupe(offload_modes)), tuple(_dedupe(dtypes)), tuple(_dedupe(tps)),
        )


NaRule = Callable[[Cell], "str | None"]


def expand(spec: MatrixSpec, na_reason: NaRule) -> list[PlannedCell]:
    """Every combination of the spec's axes, in axis order, each judged by ``na_reason``."""
    planned = []
    for runtime, device, model, offload, dtype, tp in itertools.product(
        spec.runtimes, spec.devices, spec.models, spec.offload_modes, spec.dtypes, spec.tps
    ):
        cell = Cell(runtime, device, model, offload, dtype, tp)
        planned.append(PlannedCell(cell, na_reason(cell)))
    return planned


def parse_list(value: str | Sequence[str] | None, option: str) -> tuple[str, ...]:
    """Split a comma list (``"hf,sglang"``); an empty item is a usage mistake."""
    if value is None:
        return ()
    items = value.split(",") if isinstance(value, str) else list(value)
    out = tuple(i.strip() for i in items)
    if any(not i for i in out):
        raise ConfigError(f"{option} got an empty item in {value!r}; write a comma list such as 'a,b'")
    return out


def _check_known(what: str, values: Iterable[object], known: Iterable[object], option: str) -> None:
    """Values must be known; a known entry with ``*`` is a pattern (``cpu_offload_gb:*``)."""
    known_list = list(known)
    unknown = [v for v in values if v not in known_list
               and not any("*" in str(k) and fnmatch.fnmatchcase(str(v), str(k)) for k in known_list)]
    if unknown:
        raise ConfigError(
            f"unknown {what} {', '.join(map(repr, unknown))} in {option}; "
            f"known: {', '.join(map(str, known_list))}"
        )


def _dedupe(values: Iterable[object]) -> list:
    seen: list = []
    for v in values:
        if v not in seen:
            seen.append(v)
    return seen
