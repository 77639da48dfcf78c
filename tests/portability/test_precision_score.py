"""The precision benchmark's scoring of a labelled sample (no download, no analysis)."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.bench_portability_precision import LABELS, Label, load_labels, score


def finding(key: str, severity: str, status: str = "new") -> dict[str, str]:
    return {"key": key, "severity": severity, "status": status}


def test_precision_demotions_and_gaps_are_counted() -> None:
    labels = [Label("1", "a", "TRUE", "e"), Label("1", "b", "FALSE", "e"), Label("1", "c", "TRUE", "e"),
              Label("1", "gone", "FALSE", "e"), Label("2", "other version", "TRUE", "e")]
    runs = {"1": [finding("a", "latent"), finding("a", "breaks"), finding("b", "breaks"), finding("c", "option"),
                  finding("new", "breaks"), finding("hidden", "breaks", status="suppressed")]}
    result = score(labels, runs)
    assert (result.breaks_true, result.breaks_labelled, result.precision) == (1, 2, 0.5)  # a key ranks as its worst line
    assert result.demoted == ("1 c (option)",) and result.gone == ("1 gone (FALSE)",)
    assert result.unlabelled_breaks == ("1 new",) and not result.target_met()


def test_the_shipped_labels_load_and_a_bad_verdict_says_how_to_fix_it(tmp_path: Path) -> None:
    labels = load_labels(LABELS)
    assert len(labels) >= 20 and {lab.verdict for lab in labels} == {"TRUE", "LATENT", "FALSE"}
    bad = tmp_path / "labels.yaml"
    bad.write_text("labels:\n  - {version: '1', key: k, verdict: TRUE, evidence: x}\n")
    with pytest.raises(ValueError, match=r"verdict must be one of \['TRUE', 'LATENT', 'FALSE'\] \(quoted\), got True"):
        load_labels(bad)
