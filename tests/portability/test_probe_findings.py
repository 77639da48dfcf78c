"""Only a blocked accelerator-only import becomes an ``import-probe`` finding; environment problems are counted."""

from __future__ import annotations

from harness.portability.analyzer import Analysis
from harness.portability.check import probe_findings
from harness.portability.probe import ProbeFailure, ProbeResult
from harness.portability.profile import RuntimeProfile
from harness.portability.report import _probe_lines
from tests.portability.support import SRC


def failure(module: str, kind: str, exception: str, message: str, **extra: str) -> ProbeFailure:
    return ProbeFailure(module, kind, exception, message, **extra)  # type: ignore[arg-type]


FAILURES = (
    failure("fakert.models.unguarded_import", "blocked-import", "ModuleNotFoundError", "No module named 'sgl_kernel'",
            blocked_module="sgl_kernel", origin=f"{SRC}/fakert/models/unguarded_import.py:3"),
    *(failure(f"fakert.models.m{i}", "probe-machinery", "KeyError", "'fakert'") for i in range(5)),
    failure("fakert.models.needs_numpy", "missing-module", "ModuleNotFoundError", "No module named 'numpy'",
            missing_module="numpy"),
    failure("fakert.models.asserts", "error", "AssertionError", "Torch not compiled with CUDA enabled"),
)


def test_only_the_accelerator_only_import_is_a_finding(analysis: Analysis, fakert_profile: RuntimeProfile) -> None:
    probe = ProbeResult("python", ("sgl_kernel",), 8, 0, FAILURES, (), 1.0)
    found, _ = probe_findings(probe, SRC, analysis, fakert_profile, None)
    (finding,) = found
    assert (finding.rule, finding.path, finding.line, finding.symbol) == (
        "import-probe", "fakert/models/unguarded_import.py", 3, "sgl_kernel")
    assert finding.platforms == ("npu",) and finding.severity == "breaks"  # a model: the registry imports it at start
    lines = "\n".join(_probe_lines(probe.to_dict(), []))
    assert "5 module(s) failed in the import system's or the probe's own bookkeeping" in lines
    assert "1 module(s) need 'numpy'" in lines and "AssertionError" in lines
