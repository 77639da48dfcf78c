"""Suppressions: inline ``portable-ok(reason)`` markers and a YAML file; counted, never hidden."""

from __future__ import annotations

import pytest

from harness.portability.analyzer import Analysis
from harness.portability.suppress import SuppressionFile
from tests.portability.support import SUPPRESSIONS_YAML, Pick


def test_inline_marker_suppresses_and_keeps_the_reason(pick: Pick) -> None:
    found = {f.line: f for f in pick("models/suppressed_inline.py")}
    assert found[1].suppressed == "inline: only registered by the CUDA model loader"
    assert found[4].suppressed == "inline: a marker on its own line covers the next line"


def test_marker_without_reason_is_ignored_with_a_warning(pick: Pick, analysis: Analysis) -> None:
    found = {f.line: f for f in pick("models/suppressed_inline.py")}
    assert found[6].suppressed is None
    assert any("suppressed_inline.py:6" in w and "needs a reason" in w for w in analysis.warnings)


def test_suppression_file_marks_matching_findings(pick: Pick) -> None:
    suppressions = SuppressionFile.load(SUPPRESSIONS_YAML)
    (finding,) = suppressions.apply(pick("models/suppressed_by_file.py"))
    assert finding.suppressed == f"{SUPPRESSIONS_YAML}: DeepGEMM models are only registered on CUDA builds"
    assert suppressions.unused([finding]) == []


@pytest.mark.parametrize(
    ("entry", "complaint"),
    [
        ({"rule": "accel-import", "path": "*"}, "'reason' is required"),
        ({"rule": "no-such-rule", "reason": "x"}, "unknown rule 'no-such-rule'"),
        ({"rule": "accel-import", "reason": "x", "file": "a.py"}, "unknown key(s) ['file']"),
    ],
)
def test_bad_entries_say_what_is_wrong(entry: dict[str, str], complaint: str) -> None:
    with pytest.raises(ValueError, match="suppressions.yaml\\[0\\]") as raised:
        SuppressionFile.from_data({"suppressions": [entry]}, "suppressions.yaml")
    assert complaint in str(raised.value)
