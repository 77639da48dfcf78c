"""Rule platform-missing-name: a package imports on a platform, but its build there lacks the name.

Runs on the trimmed SGLang trees of tests/data/portability_history (sglang-1.0 ships the bugs,
sglang-1.1 the upstream fixes), with the shipped sglang profile and its missing_names table.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from harness.portability.analyzer import analyse_tree
from harness.portability.builds import MISSING_NAMES
from harness.portability.finding import Finding
from harness.portability.profile import PROFILES, RuntimeProfile

TREES = Path(__file__).resolve().parents[1] / "data" / "portability_history"
SGLANG = PROFILES.get("sglang")


def findings(version: str, path: str, profile: RuntimeProfile = SGLANG) -> list[Finding]:
    analysis = analyse_tree(TREES / f"sglang-{version}", SGLANG.packages, profile, jobs=1)
    return [f for f in analysis.findings if f.path == path]


def test_a_listed_name_covers_what_lies_under_it_and_the_longest_entry_wins() -> None:
    kvcacheio = SGLANG.missing_on("sgl_kernel.kvcacheio.transfer_kv_all_layer")
    assert kvcacheio == ("sgl_kernel.kvcacheio", frozenset({"cpu"}))
    assert SGLANG.missing_on("sgl_kernel.silu_and_mul")[0] == "sgl_kernel.silu_and_mul"
    assert SGLANG.missing_on("sgl_kernel.silu_and_mul_cpu") is None  # a prefix of the name, not of the dotted path
    assert SGLANG.missing_on("torch.cuda.memory._cuda_releasePool") is None  # torch 2.7.1 has it
    wider = SGLANG.with_overrides({"missing_names": {"sgl_kernel": ["xpu"]}}, source="t.yaml")
    assert wider.missing_on("sgl_kernel.kvcacheio.x")[0] == "sgl_kernel.kvcacheio"
    assert wider.missing_on("sgl_kernel.gemm.x") == ("sgl_kernel", frozenset({"xpu"}))


def test_the_table_names_only_packages_that_import_where_the_name_is_missing() -> None:
    for name, platforms in MISSING_NAMES.items():
        package = SGLANG.available_on(name)
        assert package is None or platforms <= package[1], f"{name}: {package} already says it does not import"


def test_a_bad_platform_in_an_override_is_refused_with_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown platform\(s\) \['tpu'\] in t.yaml: missing_names.torch.x"):
        SGLANG.with_overrides({"missing_names": {"torch.x": ["tpu"]}}, source="t.yaml")


def test_an_overbroad_guard_admitting_cpu_is_a_missing_name_that_breaks_there() -> None:
    (finding,) = [f for f in findings("1.0", "sglang/srt/layers/moe_runner.py") if f.rule == "platform-missing-name"]
    assert (finding.line, finding.symbol, finding.platforms) == (9, "sgl_kernel.silu_and_mul", ("cpu",))
    assert finding.severity == "breaks" and "sglang.srt.models.tiny_llama" in finding.reach  # the model registry
    assert "build there lacks `sgl_kernel.silu_and_mul`" in finding.hint


def test_a_listed_module_covers_its_names_and_is_reached_from_a_server_entry() -> None:
    (finding,) = [f for f in findings("1.0", "sglang/srt/mem_cache/host_pool.py") if f.rule == "platform-missing-name"]
    assert finding.symbol == "sgl_kernel.kvcacheio.transfer_kv_all_layer" and finding.platforms == ("cpu",)
    assert finding.severity == "breaks" and "server entry" in finding.reach


def test_a_torch_name_missing_from_the_platforms_pinned_torch() -> None:
    (finding,) = findings("1.0", "sglang/srt/distributed/pynccl_allocator.py")
    assert (finding.rule, finding.platforms) == ("platform-missing-name", ("npu",))
    assert finding.symbol == "torch.cuda.memory._cuda_beginAllocateCurrentThreadToPool"


@pytest.mark.parametrize("path", ["sglang/srt/layers/moe_runner.py", "sglang/srt/mem_cache/host_pool.py",
                                  "sglang/srt/distributed/pynccl_allocator.py"])
def test_the_upstream_fixes_leave_no_missing_name(path: str) -> None:
    assert [f for f in findings("1.1", path) if f.rule == "platform-missing-name"] == []


def test_without_the_table_the_overbroad_guard_is_not_seen() -> None:
    bare = dataclasses.replace(SGLANG, missing_names={})
    runner = findings("1.0", "sglang/srt/layers/moe_runner.py", bare)
    assert runner and [f for f in runner if f.rule == "platform-missing-name"] == []  # analysed, not flagged


def test_a_diffusion_dit_is_a_start_point_so_its_layer_import_breaks() -> None:
    by_rule = {f.rule: f for f in findings("1.0", "sglang/multimodal_gen/activation.py")}
    accel = by_rule["accel-import"]
    assert accel.platforms == ("npu",) and accel.severity == "breaks"
    assert "sglang.multimodal_gen.runtime.models.dits.tiny_dit (model registry)" in accel.reach
    assert by_rule["platform-missing-name"].platforms == ("cpu",)  # the CPU build lacks silu_and_mul too
    assert findings("1.1", "sglang/multimodal_gen/activation.py") == []
