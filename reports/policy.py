"""Sign-off policy: which checks must pass on which cells (YAML; see reports/examples/policy.yaml).

    schema: 1
    name: NPU release
    required:
      - cells: ["*-npu-*"]            # fnmatch patterns on cell ids
        checks: [accuracy, weight_parity]
      - cells: hf-cpu-tiny-llama-none  # a cell named without wildcards must be in the run
        checks: "*"                    # every check the cell recorded
        allow_skipped: true            # skipped results of this rule are not "missing"
    require_complete: true             # an interrupted run is NO-GO (default true)
    require:                           # coverage: the required part must have run (see reports/coverage.py)
      devices: [npu]                   # every planned (non-N/A) cell of each must have run on real hardware
      runtimes: [sglang]
      models: [qwen3-30b-a3b]
      min_cells: 8                     # at least this many cells ran
      weight_coverage: 1.0             # every weight_parity result verified this fraction of the checkpoint
    allow_nothing_ran: false           # true: a run where nothing required ran is GO (default false: NO-GO)
    flaky_blocks: false                # true: a check that passed only when its cell was booted again blocks
    tolerances:                        # metric drift vs the baseline (defaults in docs/reports.md)
      accuracy.pass_rate: {abs: 0.05}
"""
from __future__ import annotations

import dataclasses
import fnmatch
from collections.abc import Mapping
from pathlib import Path
from typing import Any, final

from harness.config.matrix import DEVICES
from harness.reports.drift import METRIC_NAMES, Tolerance
from harness.reports.yamlfile import SpecFile, check_keys, load_spec, string_list

POLICY_SCHEMA = 1
EXAMPLE = Path(__file__).resolve().parent / "examples" / "policy.yaml"


@final
@dataclasses.dataclass(frozen=True)
class RequiredRule:
    """Checks that must pass on every cell matching one of ``cells`` (``"*"`` in checks: all of them)."""

    cells: tuple[str, ...]
    checks: tuple[str, ...]
    allow_skipped: bool = False
    line: int | None = None

    def matches(self, cell: str) -> bool:
        return any(fnmatch.fnmatchcase(cell, p) for p in self.cells)

    def checks_for(self, recorded: tuple[str, ...]) -> tuple[str, ...]:
        """The required checks of a cell that recorded ``recorded``: ``*`` expands to those."""
        out = [c for c in recorded if any(fnmatch.fnmatchcase(c, p) for p in self.checks if _is_glob(p))]
        out += [c for c in self.checks if not _is_glob(c) and c not in out]
        return tuple(out)

    def literal_cells(self) -> tuple[str, ...]:
        """Cells named without wildcards: each must be present in the run."""
        return tuple(p for p in self.cells if not _is_glob(p))


@final
@dataclasses.dataclass(frozen=True)
class CoverageRule:
    """The part of the matrix that must have run: every planned cell of each listed value, and a minimum count."""

    devices: tuple[str, ...] = ()
    runtimes: tuple[str, ...] = ()
    models: tuple[str, ...] = ()
    min_cells: int = 0
    weight_coverage: float | None = None  # least fraction of checkpoint elements weight parity must verify

    def axes(self) -> tuple[tuple[str, tuple[str, ...]], ...]:
        return (("device", self.devices), ("runtime", self.runtimes), ("model", self.models))


@final
@dataclasses.dataclass(frozen=True)
class Policy:
    """A validated sign-off policy."""

    name: str
    rules: tuple[RequiredRule, ...]
    require_complete: bool = True
    tolerances: Mapping[str, Tolerance] = dataclasses.field(default_factory=dict)
    source: str = "default policy"
    is_default: bool = False
    require: CoverageRule = CoverageRule()
    allow_nothing_ran: bool = False
    flaky_blocks: bool = False

    @classmethod
    def default(cls) -> Policy:
        """Every check on every cell that ran must pass; skipped and N/A results are not required."""
        rule = RequiredRule(("*",), ("*",), allow_skipped=True)
        return cls("default: every check on every non-skipped, non-N/A cell must pass", (rule,), is_default=True)

    @classmethod
    def from_file(cls, path: Path) -> Policy:
        """Load and validate a policy file; any mistake raises SpecFileError naming file, line, fix."""
        spec = load_spec(path, "policy", str(EXAMPLE))
        data = spec.data
        check_keys(spec, (), data, {"required"},
                   {"schema", "name", "require_complete", "tolerances", "require", "allow_nothing_ran", "flaky_blocks"})
        _check_schema(spec, data.get("schema", POLICY_SCHEMA))
        rules = data["required"]
        if not isinstance(rules, list) or not rules:
            raise spec.error(("required",), f"expected a non-empty list of rules, got {rules!r}",
                             "write required: [{cells: '*-npu-*', checks: [accuracy]}]")
        complete, nothing, flaky = (_flag(spec, data, key, default) for key, default in
                                    (("require_complete", True), ("allow_nothing_ran", False), ("flaky_blocks", False)))
        return cls(str(data.get("name") or path.stem), tuple(_rule(spec, i, r) for i, r in enumerate(rules)),
                   complete, _tolerances(spec, data.get("tolerances") or {}), str(path),
                   require=_coverage_rule(spec, data.get("require")), allow_nothing_ran=nothing, flaky_blocks=flaky)


def _flag(spec: SpecFile, data: Mapping[str, Any], key: str, default: bool) -> bool:
    value = data.get(key, default)
    if not isinstance(value, bool):
        raise spec.error((key,), f"expected true or false, got {value!r}", "write true or false")
    return value


def _coverage_rule(spec: SpecFile, data: Any) -> CoverageRule:
    if data is None:
        return CoverageRule()
    if not isinstance(data, Mapping):
        raise spec.error(("require",), f"expected a mapping of devices / runtimes / models / min_cells / weight_coverage, "
                                       f"got {data!r}",
                         "write require: {devices: [npu], min_cells: 8}")
    check_keys(spec, ("require",), data, set(), {"devices", "runtimes", "models", "min_cells", "weight_coverage"})
    lists = {k: string_list(spec, ("require", k), data[k], f"{k}: [...]") if k in data else ()
             for k in ("devices", "runtimes", "models")}
    bad = [d for d in lists["devices"] if d not in DEVICES]
    if bad:
        raise spec.error(("require", "devices"), f"unknown device(s) {bad}", f"use any of {', '.join(DEVICES)}")
    minimum = data.get("min_cells", 0)
    if isinstance(minimum, bool) or not isinstance(minimum, int) or minimum < 0:
        raise spec.error(("require", "min_cells"), f"expected a whole number >= 0, got {minimum!r}", "write min_cells: 8")
    return CoverageRule(lists["devices"], lists["runtimes"], lists["models"], minimum, _fraction(spec, data))


def _fraction(spec: SpecFile, data: Mapping[str, Any]) -> float | None:
    value = data.get("weight_coverage")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        raise spec.error(("require", "weight_coverage"), f"expected a fraction in [0, 1], got {value!r}",
                         "write weight_coverage: 1.0 (every checkpoint element verified)")
    return float(value)


def _rule(spec: SpecFile, i: int, data: Any) -> RequiredRule:
    where = ("required", i)
    if not isinstance(data, Mapping):
        raise spec.error(where, f"expected a mapping with cells and checks, got {data!r}",
                         "write - {cells: '*-npu-*', checks: [accuracy, weight_parity]}")
    check_keys(spec, where, data, {"cells", "checks"}, {"allow_skipped"})
    allow = data.get("allow_skipped", False)
    if not isinstance(allow, bool):
        raise spec.error((*where, "allow_skipped"), f"expected true or false, got {allow!r}", "write true or false")
    return RequiredRule(string_list(spec, (*where, "cells"), data["cells"], "cells: ['*-npu-*']"),
                        string_list(spec, (*where, "checks"), data["checks"], "checks: [accuracy, weight_parity] or '*'"),
                        allow, spec.line(*where))


def _tolerances(spec: SpecFile, data: Any) -> dict[str, Tolerance]:
    if not isinstance(data, Mapping):
        raise spec.error(("tolerances",), f"expected a mapping of metric name to {{abs, rel}}, got {data!r}",
                         "write tolerances: {accuracy.pass_rate: {abs: 0.05}}")
    out = {}
    for name, value in data.items():
        where = ("tolerances", name)
        if name not in METRIC_NAMES:
            raise spec.error(where, f"unknown metric {name!r}", f"use one of {', '.join(METRIC_NAMES)}")
        if not isinstance(value, Mapping):
            raise spec.error(where, f"expected {{abs: N, rel: N}}, got {value!r}", "write e.g. {abs: 0.02, rel: 0.1}")
        try:
            out[str(name)] = Tolerance.from_mapping(value, f"tolerances.{name}")
        except ValueError as exc:
            raise spec.error(where, str(exc).split(": ", 1)[-1], "give abs and/or rel as non-negative numbers") from None
    return out


def _check_schema(spec: SpecFile, value: Any) -> None:
    if value != POLICY_SCHEMA:
        raise spec.error(("schema",), f"unsupported schema {value!r} (this harness reads schema {POLICY_SCHEMA})",
                         f"write schema: {POLICY_SCHEMA}, or upgrade the harness")


def _is_glob(pattern: str) -> bool:
    return any(ch in pattern for ch in "*?[")
