"""suites/test_portability.py inside the matrix: one test per runtime, portability.json, baseline verdicts.

The synthetic tests point each runtime's interpreter at this Python and put small ``sglang`` and
``vllm`` packages first on its PYTHONPATH: the suite locates them in a subprocess of that
interpreter and analyses their files exactly as it does a real install. The last test runs the
real SGLang 0.5.23 environment against its shipped baseline when that venv exists.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from harness.boot import venvs
from harness.portability.baseline import Baseline
from harness.portability.runfile import BASELINE_ENV, SHIPPED_BASELINES
from tests.test_portability_wiring_cli import BAD_KEY, fake_runtime

SUITE = Path(__file__).resolve().parent.parent / "suites" / "test_portability.py"
FAKE_VERSIONS = {"sglang": "0.5.23", "vllm": "0.32.0"}  # the shipped baselines' versions


@pytest.fixture
def suite(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.Pytester:
    """A pytester dir holding the real portability suite; fake sglang (one bad model) and vllm (clean) importable."""
    pytester.makepyfile(test_portability=SUITE.read_text())
    site = tmp_path / "site"
    fake_runtime(site, "sglang", FAKE_VERSIONS["sglang"], bad=True)
    fake_runtime(site, "vllm", FAKE_VERSIONS["vllm"], bad=False)
    monkeypatch.setenv("PYTHONPATH", str(site))
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    monkeypatch.delenv(BASELINE_ENV, raising=False)
    return pytester


def run(suite: pytest.Pytester, out: Path, runtimes: str, *extra: str, python: dict[str, str] | None = None) -> pytest.RunResult:
    pythons = python or {r: sys.executable for r in runtimes.split(",") if r != "hf"}
    args = [a for r, p in pythons.items() for a in ("--runtime-python", f"{r}={p}")]
    return suite.runpytest("-rsf", "--runtimes", runtimes, "--harness-out", str(out), *args, *extra)


def stored(out: Path) -> dict:
    return json.loads((out / "portability.json").read_text())


def test_one_test_per_runtime_with_matrix_ids_and_hf_skipped(suite: pytest.Pytester, tmp_path: Path) -> None:
    result = run(suite, tmp_path / "run", "hf,sglang,vllm", "--collect-only", "-q")
    result.stdout.fnmatch_lines(["*test_portability[[]portability-hf[]]",
                                 "*test_portability[[]portability-sglang[]]",
                                 "*test_portability[[]portability-vllm[]]"])


def test_a_new_finding_fails_with_where_and_how_and_is_written_per_runtime(suite: pytest.Pytester, tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = run(suite, out, "hf,sglang,vllm")
    result.assert_outcomes(passed=1, failed=1, skipped=1)
    result.stdout.fnmatch_lines([
        "*sglang 0.5.23: 1 new portability finding(s) ranked breaks, not in the baseline (shipped baseline for sglang 0.5.23)*",
        "*sglang/srt/models/bad_model.py:3  breaks  accel-import  flashinfer.rmsnorm  [[]rocm/npu/xpu/cpu[]]*",
        "*reach: imported at start on {rocm, npu, xpu, cpu}: sglang.srt.models.bad_model (model registry)*",
        f"*harness portability --runtime sglang --runtime-python {sys.executable} --no-probe --write-baseline "
        f"{SHIPPED_BASELINES / 'sglang-0.5.23.json'}*",
        "*SKIPPED*hf is the transformers reference, not a serving runtime*",
    ])
    data = stored(out)
    assert set(data["runtimes"]) == {"sglang", "vllm"}  # hf is not a runtime with device kernels
    assert data["run_id"] is None  # no matrix cell ran, so there is no live run to attach to
    sglang, vllm = data["runtimes"]["sglang"], data["runtimes"]["vllm"]
    assert sglang["counts"]["new"] == 1 and sglang["findings"][0]["key"] == BAD_KEY
    assert sglang["baseline"]["path"] == str(SHIPPED_BASELINES / "sglang-0.5.23.json")
    assert vllm["counts"] == {**vllm["counts"], "findings": 0, "new": 0}
    assert sglang["probe"] is None  # the import probe is opt-in


def test_the_same_finding_passes_once_baselined(suite: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    baselines = tmp_path / "baselines"
    baselines.mkdir()
    (baselines / "sglang-0.5.20.json").write_text(json.dumps([BAD_KEY]))  # an older version's baseline applies
    monkeypatch.setenv(BASELINE_ENV, str(baselines))
    out = tmp_path / "run"
    run(suite, out, "sglang").assert_outcomes(passed=1)
    sglang = stored(out)["runtimes"]["sglang"]
    assert sglang["counts"]["new"] == 0 and sglang["counts"]["baselined"] == 1
    assert "using the newest older one, sglang-0.5.20.json" in sglang["baseline"]["note"]


def test_a_runtime_missing_from_its_interpreter_is_skipped_and_recorded(suite: pytest.Pytester, tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PYTHONPATH")
    out = tmp_path / "run"
    result = run(suite, out, "sglang")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines([f"*portability of sglang not checked: 'sglang' is not importable by '{sys.executable}'*"])
    assert "not importable" in stored(out)["runtimes"]["sglang"]["skipped"]


def test_results_of_an_earlier_run_are_not_mixed_in(suite: pytest.Pytester, tmp_path: Path) -> None:
    out = tmp_path / "run"
    out.mkdir()
    (out / "portability.json").write_text(json.dumps({"run_id": "earlier", "runtimes": {"vllm": {"runtime": "vllm"}}}))
    run(suite, out, "sglang")
    assert set(stored(out)["runtimes"]) == {"sglang"}


# read before pytester points HOME (and so the venv root) at a temporary directory
REAL_SGLANG = venvs.python_path("sglang")


@pytest.mark.skipif(not REAL_SGLANG.exists(), reason=f"no real SGLang venv at {REAL_SGLANG} (python -m harness.boot.venvs sglang)")
def test_real_sglang_passes_against_its_shipped_baseline(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch,
                                                         tmp_path: Path) -> None:
    """A clean install passes, and the shipped baseline matches it exactly: no new finding and no stale key (~20-40 s)."""
    pytester.makepyfile(test_portability=SUITE.read_text())
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")  # the runtime venv is only read
    monkeypatch.delenv(BASELINE_ENV, raising=False)
    out = tmp_path / "run"
    run(pytester, out, "sglang", python={"sglang": str(REAL_SGLANG)}).assert_outcomes(passed=1)
    entry = stored(out)["runtimes"]["sglang"]
    assert entry["version"] == FAKE_VERSIONS["sglang"]
    assert entry["counts"]["new"] == 0 and entry["counts"]["baselined"] > 0 and entry["stale_baseline"] == []
    shipped = Baseline.load(SHIPPED_BASELINES / "sglang-0.5.23.json")
    assert {f["key"] for f in entry["findings"]} == set(shipped.keys)
