"""Which cell a model's logprob reference is: a matrix file's ``reference:`` block, validated.

    reference: {runtime: hf, device: cpu, dtype: float32, offload: none}   # the default

Omitted fields keep the default; the reference always runs at tp 1. ``ReferenceSpec().cell("tiny-llama")``
is ``hf-cpu-tiny-llama-none`` (float32); ``ReferenceSpec(dtype="bfloat16").label`` is ``hf-cpu bfloat16``.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, final

from harness.config.matrix import DEVICES, DTYPES, Cell
from harness.errors import ConfigError

FIELDS = ("runtime", "device", "dtype", "offload")


@final
@dataclasses.dataclass(frozen=True)
class ReferenceSpec:
    """The runtime, device, dtype and offload mode of every model's reference cell."""

    runtime: str = "hf"
    device: str = "cpu"
    dtype: str = "float32"
    offload: str = "none"

    @classmethod
    def from_mapping(cls, data: Any, where: str) -> ReferenceSpec:
        """Validate ``{runtime, device, dtype, offload}``; every message names the field, the value and the fix."""
        if not isinstance(data, Mapping):
            raise ConfigError(f"{where}: 'reference' is a mapping of {list(FIELDS)}, got {data!r}; "
                              f"e.g. reference: {{runtime: hf, device: cpu, dtype: float32, offload: none}}")
        bad = sorted(set(map(str, data)) - set(FIELDS))
        if bad:
            raise ConfigError(f"{where}: unknown reference field(s) {bad}; known: {list(FIELDS)}")
        spec = cls(**{k: str(v) for k, v in data.items()})
        if spec.device not in DEVICES:
            raise ConfigError(f"{where}: reference.device {spec.device!r} is not a device; known: {', '.join(DEVICES)}")
        if spec.dtype not in DTYPES:
            raise ConfigError(f"{where}: reference.dtype {spec.dtype!r} is not a dtype; known: {', '.join(DTYPES)}")
        return spec

    def cell(self, model: str) -> Cell:
        """The reference cell of ``model`` (tp 1)."""
        return Cell(self.runtime, self.device, model, self.offload, self.dtype, 1)

    @property
    def label(self) -> str:
        """``hf-cpu float32``, with ``, disk offload`` when it offloads."""
        offload = "" if self.offload == "none" else f", {self.offload} offload"
        return f"{self.runtime}-{self.device} {self.dtype}{offload}"

    def as_dict(self) -> dict[str, str]:
        return dataclasses.asdict(self)


DEFAULT_REFERENCE = ReferenceSpec()
