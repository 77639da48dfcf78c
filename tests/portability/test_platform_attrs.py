"""Rule platform-only-attr: ``self.x`` assigned only under a platform check, read elsewhere."""

from __future__ import annotations

from tests.portability.support import Pick


def test_attribute_set_only_on_gfx95_and_read_in_forward_is_flagged(pick: Pick) -> None:
    (finding,) = pick("models/quant_attrs.py")
    assert finding.rule == "platform-only-attr"
    assert finding.symbol == "Attention._gfx95_quant_format"
    assert finding.line == 14
    assert finding.platforms == ("cuda", "npu", "xpu", "cpu")
    assert "self._gfx95_quant_format = None" in finding.hint


def test_attribute_set_in_both_branches_is_not_flagged(pick: Pick) -> None:
    symbols = {f.symbol for f in pick("models/quant_attrs.py")}
    assert not any(s.startswith("AttentionBothBranches.") for s in symbols)


def test_read_under_the_same_check_or_hasattr_is_not_flagged(pick: Pick) -> None:
    symbols = {f.symbol for f in pick("models/quant_attrs.py")}
    assert not any(s.startswith("AttentionGuardedRead.") for s in symbols)


def test_reads_in_a_class_whose_init_raises_elsewhere_are_not_flagged(pick: Pick) -> None:
    assert pick("models/cuda_only_class.py") == []
