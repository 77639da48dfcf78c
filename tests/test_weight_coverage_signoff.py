"""Weight coverage in the report and the sign-off: 'sampled N%' figures and require.weight_coverage."""
from __future__ import annotations

from pathlib import Path

import pytest

from harness.reports.data import figure
from harness.reports.figures import facts
from harness.reports.policy import CoverageRule, Policy
from harness.reports.signoff import evaluate
from harness.reports.yamlfile import SpecFileError
from tests.reportruns import TODAY, rec

FULL = {"tensors_compared": 21, "max_abs": 0.0, "coverage": 1.0, "coverage_by_value": 1.0,
        "coverage_by_digest": 0.0, "coverage_not_verified": 0.0}
SAMPLED = {**FULL, "coverage": 0.042, "coverage_by_value": 0.042, "coverage_not_verified": 0.958,
           "not_verified_why": "sampled: truncate_rows=64"}


def test_a_sampled_pass_reads_sampled_and_a_full_one_does_not():
    assert figure(rec("hf-cpu-m-none", "weight_parity", "pass", metrics=FULL)) == "21 tensors, max|Δ| 0"
    assert figure(rec("hf-cpu-m-none", "weight_parity", "pass", metrics=SAMPLED)) == "sampled 4.2% · 21 tensors, max|Δ| 0"
    near = {**SAMPLED, "coverage": 0.99999}
    assert figure(rec("hf-cpu-m-none", "weight_parity", "pass", metrics=near)).startswith("sampled 99.9%")


def test_the_coverage_fact_says_how_and_what_was_not_verified():
    shown = dict(facts("weight_parity", SAMPLED, {}))
    assert shown["coverage"] == "sampled 4.2% (by value 4.2%; not verified 95.8%: sampled: truncate_rows=64)"
    both = {**FULL, "coverage_by_value": 0.55, "coverage_by_digest": 0.45}
    assert dict(facts("weight_parity", both, {}))["coverage"] == "100% (by value 55%, by digest 45%)"


def policy(fraction: float | None) -> Policy:
    return Policy("p", Policy.default().rules, require=CoverageRule(weight_coverage=fraction))


def test_require_weight_coverage_blocks_the_cells_below_it_and_names_them():
    records = [rec("hf-cpu-a-none", "weight_parity", "pass", metrics=FULL),
               rec("hf-cpu-b-none", "weight_parity", "pass", metrics=SAMPLED),
               rec("hf-cpu-c-none", "weight_parity", "pass", metrics={"tensors_compared": 3}),
               rec("hf-cpu-d-none", "weight_parity", "na")]
    assert evaluate(records, "complete", policy(None), (), TODAY).verdict == "GO"
    so = evaluate(records, "complete", policy(1.0), (), TODAY)
    assert so.verdict == "NO-GO"
    found = {f.cell: f for f in so.blockers if f.kind == "not-covered"}
    assert set(found) == {"hf-cpu-b-none", "hf-cpu-c-none"}
    assert "verified 4.200% of the checkpoint, the policy requires 100.000%" in found["hf-cpu-b-none"].reason
    assert "truncate_rows=64" in found["hf-cpu-b-none"].reason
    assert "not recorded" in found["hf-cpu-c-none"].reason
    assert evaluate(records[:2], "complete", policy(0.04), (), TODAY).verdict == "GO"


def test_the_policy_file_reads_weight_coverage_and_refuses_a_bad_value(tmp_path: Path):
    good = tmp_path / "p.yaml"
    good.write_text("schema: 1\nrequired: [{cells: '*', checks: '*'}]\nrequire: {weight_coverage: 1.0}\n")
    assert Policy.from_file(good).require.weight_coverage == 1.0
    bad = tmp_path / "bad.yaml"
    bad.write_text("schema: 1\nrequired: [{cells: '*', checks: '*'}]\nrequire: {weight_coverage: 100}\n")
    with pytest.raises(SpecFileError, match="expected a fraction in \\[0, 1\\], got 100"):
        Policy.from_file(bad)
