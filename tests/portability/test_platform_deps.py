"""What each platform has, derived from the runtime's own per-platform extras."""

from __future__ import annotations

from harness.portability.check import PortabilityOptions, run_portability
from harness.portability.platform_deps import read_platform_deps
from tests.portability.support import DATA

EXTRAS = DATA / "extras"


def test_extras_and_the_extras_they_include_give_each_platform_its_set() -> None:
    deps = read_platform_deps(EXTRAS, "exrt", {"srt": "cuda", "srt_npu": "npu", "srt_cpu": "cpu"}, {})
    assert deps.installs == {"cuda": {"shared-lib", "fast-kernels"}, "npu": {"shared-lib", "npu-ops"},
                             "cpu": {"shared-lib"}}  # base dependencies (numpy, decord2) say nothing per platform
    # rocm and xpu declare nothing, so they are not judged
    assert deps.accelerator_distributions() == {"fast-kernels": {"cuda", "rocm", "xpu"}, "npu-ops": {"npu", "rocm", "xpu"}}


def test_a_package_only_another_platforms_set_installs_is_found_and_reported() -> None:
    record = run_portability(PortabilityOptions.create(source=str(EXTRAS), profile_file=str(EXTRAS / "extras-profile.yaml"),
                                                       jobs=1))
    found = {f["symbol"]: f for f in record["findings"]}
    assert set(found) == {"fast_kernels", "npu_ops"}  # shared_lib is on every platform
    assert (found["fast_kernels"]["platforms"], found["fast_kernels"]["severity"]) == (["npu", "cpu"], "breaks")
    assert found["npu_ops"]["platforms"] == ["cuda", "cpu"]
    derived = record["analysis"]["platform_packages"]
    assert derived["derived"] == {"fast_kernels": ["cuda", "rocm", "xpu"], "npu_ops": ["rocm", "npu", "xpu"]}
    assert derived["read"] == "cuda 2, npu 2, cpu 1 distributions (from METADATA)"


def test_a_checkouts_pyproject_per_platform_gives_its_base_set(tmp_path) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "exrt"\ndependencies = ["numpy", "fast-kernels"]\n')
    (tmp_path / "pyproject_npu.toml").write_text(
        '[project]\nname = "exrt"\ndependencies = ["numpy", "npu-ops"]\n[project.optional-dependencies]\n'
        'srt_cpu = ["numpy"]\n')
    deps = read_platform_deps(tmp_path, "exrt", {"srt_cpu": "cpu"},
                              {"pyproject.toml": "cuda", "pyproject_npu.toml": "npu", "pyproject_xpu.toml": "xpu"})
    assert deps.installs == {"cuda": {"numpy", "fast-kernels"}, "npu": {"numpy", "npu-ops"}, "cpu": {"numpy"}}
    assert deps.accelerator_packages({}, tmp_path) == {"fast_kernels": {"cuda", "rocm", "xpu"},
                                                       "npu_ops": {"npu", "rocm", "xpu"}}
