"""``run_portability`` returns one JSON-serialisable record per runtime version, for report sections."""

from __future__ import annotations

import json

import pytest

from harness.portability.check import PortabilityOptions, run_portability
from tests.portability.support import PROFILE_YAML, SRC


@pytest.fixture(scope="module")
def record() -> dict[str, object]:
    options = PortabilityOptions.create(source=str(SRC), profile_file=str(PROFILE_YAML), jobs=1)
    return run_portability(options)


def test_record_is_json_and_names_runtime_and_version(record: dict[str, object]) -> None:
    assert json.loads(json.dumps(record)) == record
    assert (record["schema"], record["runtime"], record["version"]) == ("harness.portability/1", "sglang", "1.2.3")
    assert record["packages"] == ["fakert.models", "fakert.layers"]
    assert record["probe"] is None  # --source does not probe unless asked


def test_counts_add_up(record: dict[str, object]) -> None:
    counts = record["counts"]
    assert counts["findings"] == len(record["findings"]) == counts["new"] + counts["baselined"] + counts["suppressed"]
    assert counts["by_rule"]["accel-import"] >= 1
    assert {f["status"] for f in record["findings"]} <= {"new", "baselined", "suppressed"}


def test_each_finding_has_location_rule_platforms_symbol_and_hint(record: dict[str, object]) -> None:
    for finding in record["findings"]:
        assert finding["path"].startswith("fakert/") and finding["line"] > 0
        assert finding["platforms"] and finding["symbol"] and finding["hint"]
        assert finding["key"] == f"{finding['rule']}:{finding['path']}:{finding['symbol']}"


def test_bad_options_say_what_was_wrong() -> None:
    with pytest.raises(KeyError, match="known runtimes: sglang, vllm"):
        PortabilityOptions.create(runtime="tgi")
    with pytest.raises(ValueError, match="--probe-platform must be one of"):
        PortabilityOptions.create(probe_platform="tpu")
