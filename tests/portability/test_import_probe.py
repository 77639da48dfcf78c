"""The import probe, run for real in a child of this interpreter with accelerator packages hidden."""

from __future__ import annotations

import sys

from harness.portability.probe import ProbeConfig, run_probe
from tests.portability.support import PROBE

STUBS = str(PROBE / "stubs")  # an importable stand-in for sgl_kernel, so only the blocker can hide it


def probe(*modules: str, **options: float) -> dict[str, object]:
    config = ProbeConfig.create(
        sys.executable, modules, ["sgl_kernel", "flashinfer"],
        sys_path=(str(PROBE), STUBS), roots=(str(PROBE),), **options,
    )
    return run_probe(config).to_dict()


def test_top_level_blocked_import_is_recorded_with_file_and_line() -> None:
    result = probe("dirty_pkg.bad_model", "dirty_pkg.uses_bad_model", "dirty_pkg.clean_module")
    assert (result["modules"], result["imported"]) == (3, 1)
    failures = {f["module"]: f for f in result["failures"]}
    bad = failures["dirty_pkg.bad_model"]
    assert bad["kind"] == "blocked-import"
    assert bad["blocked_module"] == "sgl_kernel"
    assert bad["origin"] == f"{PROBE / 'dirty_pkg' / 'bad_model.py'}:5"
    assert "No module named 'sgl_kernel'" in bad["message"]
    # a module failing through another one points at the line that really raised
    assert failures["dirty_pkg.uses_bad_model"]["origin"] == bad["origin"]


def test_other_import_time_errors_are_recorded() -> None:
    (failure,) = probe("dirty_pkg.broken")["failures"]
    assert (failure["kind"], failure["exception"]) == ("error", "KeyError")
    assert failure["last_frame"].endswith("broken.py:1")


def test_clean_package_imports_although_the_kernel_is_hidden() -> None:
    result = probe("clean_pkg", "clean_pkg.model")
    assert result["failures"] == []
    assert result["imported"] == 2


def test_a_hanging_module_times_out_and_the_rest_still_runs() -> None:
    result = probe("slow_pkg.hangs", "slow_pkg.after", module_timeout=1.0)
    (failure,) = result["failures"]
    assert (failure["module"], failure["kind"]) == ("slow_pkg.hangs", "timeout")
    assert result["imported"] == 1


def test_a_crashing_module_is_recorded_and_the_child_restarts() -> None:
    result = probe("crash_pkg.a_crash", "crash_pkg.b_after")
    (failure,) = result["failures"]
    assert (failure["module"], failure["kind"]) == ("crash_pkg.a_crash", "crash")
    assert "status 3" in failure["message"]
    assert result["imported"] == 1


def test_a_parent_package_vanishing_is_the_import_machinery_not_the_module() -> None:
    (failure,) = probe("selfdel_pkg.mod")["failures"]
    assert (failure["kind"], failure["exception"], failure["message"]) == ("probe-machinery", "KeyError", "'selfdel_pkg'")
