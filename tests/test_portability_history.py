"""benchmarks/portability_history.py: the case file, matching findings to cases, and a run on trimmed trees.

No download: the trimmed trees under tests/data/portability_history stand in for two releases
(sglang-1.0 ships the bugs, sglang-1.1 the upstream fixes).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from benchmarks.portability_history import (
    CASES_FILE,
    MECHANISMS,
    CheckRun,
    HistoryCase,
    evaluate,
    load_cases,
    matches,
    release_source,
    render,
    reported_via_chain,
    run_history,
    verify_case,
    why_missed,
)

DATA = Path(__file__).resolve().parent / "data" / "portability_history"
TRIMMED_CASES = DATA / "cases.yaml"

_CASE: dict[str, Any] = {
    "id": "c", "runtime": "sglang", "buggy": "1.0", "fixed": "1.1", "file": "sglang/srt/models/m.py", "line": 5,
    "symbol": "sgl_kernel.router_gemm", "platforms": ["npu"], "mechanism": ["direct-import"],
    "evidence": "https://github.com/sgl-project/sglang/pull/1",
}


def case(**changes: Any) -> HistoryCase:
    return HistoryCase.from_mapping({**_CASE, **changes}, "test")


def finding(path: str = "sglang/srt/models/m.py", line: int = 5, symbol: str = "sgl_kernel.router_gemm",
            platforms: tuple[str, ...] = ("npu",), hint: str = "", rule: str = "accel-import") -> dict[str, Any]:
    return {"rule": rule, "path": path, "line": line, "symbol": symbol, "platforms": list(platforms), "hint": hint}


def run(*findings: dict[str, Any], packages: tuple[str, ...] = ("sglang.srt.models", "sglang.srt.layers")) -> CheckRun:
    return CheckRun("1.0", packages, tuple(findings), 0.1)


def test_shipped_cases_are_valid_and_real() -> None:
    cases = load_cases(CASES_FILE)
    assert len(cases) >= 8
    assert len({c.id for c in cases}) == len(cases)
    for c in cases:
        assert c.evidence.startswith("https://github.com/"), c.id
        assert c.buggy != c.fixed and c.file.startswith("sglang/") and c.platforms
        assert set(c.mechanism) <= set(MECHANISMS)


@pytest.mark.parametrize(("changes", "message"), [
    ({"platforms": ["tpu"]}, r"unknown platform\(s\) \['tpu'\]"),
    ({"platforms": []}, "platforms is empty"),
    ({"mechanism": ["magic"]}, "mechanism must be a non-empty list"),
    ({"line": 0}, "line must be a positive integer"),
    ({"when": "later"}, "when must be 'import' or 'call'"),
    ({"fixed": "1.0"}, "buggy and fixed are the same release"),
    ({"file": "/abs/m.py"}, "file must be a .py path inside the wheel"),
    ({"runtime": "tgi"}, "runtime 'tgi' has no portability profile"),
])
def test_a_bad_field_is_named_with_its_fix(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        case(**changes)


def test_a_missing_field_and_a_duplicate_id_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"missing field\(s\) \['evidence'\]"):
        HistoryCase.from_mapping({k: v for k, v in _CASE.items() if k != "evidence"}, "test")
    path = tmp_path / "cases.yaml"
    path.write_text(yaml.safe_dump({"schema": "portability-history-cases/1", "cases": [_CASE, _CASE]}))
    with pytest.raises(ValueError, match="case id 'c' appears twice"):
        load_cases(path)
    path.write_text(yaml.safe_dump({"cases": [_CASE]}))
    with pytest.raises(ValueError, match="schema: portability-history-cases/1"):
        load_cases(path)


def test_a_finding_matches_by_file_import_and_platform() -> None:
    c = case()
    assert matches(c, finding())
    assert matches(c, finding(symbol="sgl_kernel"))                     # the blocked package, as the probe names it
    assert matches(c, finding(line=7, symbol="sgl_kernel.other"))       # same package, a line or two away
    assert not matches(c, finding(platforms=("cpu",)))                  # right import, wrong platform
    assert not matches(c, finding(path="sglang/srt/models/n.py"))       # another file
    assert not matches(c, finding(line=40, symbol="flashinfer.x"))      # another import in the same file
    assert not matches(c, finding(line=40, symbol="sgl_kernel.other"))  # same package far away, another import


def test_a_chain_finding_elsewhere_counts_when_it_names_the_module() -> None:
    c = case(file="sglang/srt/layers/mhc.py", symbol="tilelang")
    at_model = finding(path="sglang/srt/models/dsv4.py", line=72, symbol="sglang.srt.layers.mhc",
                       hint="imports tilelang via sglang.srt.layers.mhc")
    assert reported_via_chain(c, at_model)
    assert not reported_via_chain(c, {**at_model, "platforms": ["cuda"]})
    outcome = evaluate(c, run(at_model), run())
    assert outcome.caught and outcome.via_chain and not outcome.false_alarms


def test_a_finding_left_in_the_fixed_release_is_a_false_alarm() -> None:
    c = case()
    moved = finding(line=12)  # the fix moved the import under a guard the check does not understand
    outcome = evaluate(c, run(finding()), run(moved, finding(symbol="other_name", line=30, rule="platform-unbound-name")))
    assert outcome.caught and outcome.false_alarms == (moved,)
    assert [f["symbol"] for f in outcome.other_in_fixed] == ["other_name"]
    assert "caught 1 / 1, false alarms 1" in render([outcome])


def test_a_missed_case_says_what_the_check_needs() -> None:
    unscanned = case(file="sglang/srt/mem_cache/pool.py", symbol="sgl_kernel.kvcacheio", platforms=["cpu"],
                     mechanism=["overbroad-guard", "missing-name"], guard="if not (_is_npu or _is_xpu):")
    reasons = " | ".join(why_missed(unscanned, run()))
    assert "outside the scanned packages" in reasons
    assert "lists `sgl_kernel.kvcacheio` as missing from the cpu build, yet no finding matched" in reasons
    unlisted = " | ".join(why_missed(case(symbol="sgl_kernel.not_a_listed_op", platforms=["cpu"]), run()))
    assert "declares `sgl_kernel` importable on cuda, rocm, xpu, cpu, so `sgl_kernel.not_a_listed_op` is not " \
           "flagged on cpu" in unlisted and "missing_names" in unlisted
    assert "guard `if not (_is_npu or _is_xpu):` admits cpu" in reasons
    not_installed = " | ".join(why_missed(case(symbol="gpu_only_pkg.x", platforms=["cpu"], mechanism=["not-installed"],
                                               when="call"), run()))
    assert "`gpu_only_pkg` is not in the accelerator list" in not_installed and "inside a function" in not_installed
    assert "outside the scanned packages" not in not_installed


def test_an_unpacked_release_is_used_without_download() -> None:
    assert release_source("sglang", "1.0", DATA) == DATA / "sglang-1.0"


def test_history_on_trimmed_trees(tmp_path: Path) -> None:
    cases = load_cases(TRIMMED_CASES)
    by_id = {o.case.id: o for o in run_history(cases, lambda r, v: DATA / f"{r}-{v}", log=lambda _: None,
                                               scratch=tmp_path)}
    assert by_id["trim-direct-import"].caught
    assert by_id["trim-direct-import"].found[0]["line"] == 3
    assert by_id["trim-transitive-layer"].caught
    # a name the platform's build lacks, in a package that imports there (the profile's missing_names)
    for name in ("trim-overbroad-guard", "trim-overbroad-guard-unscanned", "trim-missing-name-torch"):
        assert [f["rule"] for f in by_id[name].found] == ["platform-missing-name"], name
    # the diffusion model registry's packages are analysed: its DiT reaches the layer at start
    assert by_id["trim-unscanned-direct"].caught
    assert not any(o.false_alarms for o in by_id.values())  # every fix in sglang-1.1 is a real fix
    assert all(o.caught for o in by_id.values())
    whole = run_history([c for c in cases if c.id == "trim-unscanned-direct"], lambda r, v: DATA / f"{r}-{v}",
                        ["--package", "sglang"], log=lambda _: None, scratch=tmp_path)
    assert whole[0].caught and not whole[0].false_alarms
    assert list(tmp_path.iterdir()) == []  # the checker's JSON is removed


def test_verify_holds_on_the_trimmed_trees_and_catches_a_wrong_case() -> None:
    cases = {c.id: c for c in load_cases(TRIMMED_CASES)}
    buggy, fixed = DATA / "sglang-1.0", DATA / "sglang-1.1"
    assert [p for c in cases.values() for p in verify_case(c, buggy, fixed)] == []
    direct = cases["trim-direct-import"]
    assert "has no import of sgl_kernel.dsv3_router_gemm at sglang/srt/models/tiny_moe.py:4" in \
        verify_case(HistoryCase.from_mapping({**_CASE, "id": "x", "file": direct.file, "line": 4,
                                              "symbol": direct.symbol}, "t"), buggy, fixed)[0]
    assert "1.1 still imports sgl_kernel.dsv3_router_gemm bare at module level" in \
        " ".join(verify_case(direct, buggy, buggy))  # the buggy tree given as the fixed release
    # `import torch` in the fixed allocator is not the missing `_cuda_*` name
    assert verify_case(cases["trim-missing-name-torch"], buggy, fixed) == []
