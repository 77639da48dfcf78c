"""The paired statistics of the accuracy check against published values, and the card's power settings."""
from __future__ import annotations

import math

import pytest

from harness.config.cards import ModelCard
from harness.config.pairedspec import PairedSpec
from harness.config.pairedstats import binom_cdf, connor_pairs, critical_losses, exact_power, mcnemar_exact
from harness.errors import ConfigError


def test_exact_mcnemar_matches_fagerland_2013_worked_example():
    # Fagerland, Lydersen & Laake, BMC Med Res Methodol 13:91 (2013): b = 1, c = 7 discordant pairs,
    # exact conditional p = 0.070 (= 2 * 9/256), one-sided 9/256
    t = mcnemar_exact(lost=7, gained=1)
    assert t.p_two_sided == pytest.approx(18 / 256) and round(t.p_two_sided, 3) == 0.070
    assert t.p_drop == pytest.approx(9 / 256)
    assert mcnemar_exact(lost=1, gained=7).p_drop == pytest.approx(1 - 1 / 256)  # gains are no drop


def test_exact_mcnemar_edge_cases_by_hand():
    assert mcnemar_exact(0, 0).p_two_sided == 1.0 and mcnemar_exact(0, 0).p_drop == 1.0
    assert mcnemar_exact(6, 0).p_two_sided == pytest.approx(2 / 64) and mcnemar_exact(6, 0).p_drop == pytest.approx(1 / 64)
    assert mcnemar_exact(3, 3).p_two_sided == 1.0  # capped: 2 * P(X <= 3 | 6) > 1
    assert binom_cdf(1, 8) == pytest.approx(9 / 256)
    with pytest.raises(ValueError, match="discordant counts must be >= 0"):
        mcnemar_exact(-1, 2)


def test_connor_sample_size_matches_published_values():
    # Connor (1987) as given with R code by powerandsamplesize.com: p10 = 0.05, p01 = 0.45 -> 23 pairs,
    # two-sided alpha 0.05 power 0.80, and one-sided alpha 0.05 power 0.90
    assert connor_pairs(0.40, 0.50, 0.05, 0.80, "two") == 23
    assert connor_pairs(0.40, 0.50, 0.05, 0.90, "one") == 23
    # p_disc 0.45, delta 0.15, two-sided 0.05, power 0.80 -> 155 pairs (Connor 1987 / Lachin 1992 calculators)
    assert connor_pairs(0.15, 0.45, 0.05, 0.80, "two") == 155


def test_a_drop_needs_at_least_its_own_discordance_and_fewest_prompts_there():
    assert connor_pairs(0.05, 0.05, 0.05, 0.8) == 122
    assert connor_pairs(0.05, 0.05, 0.05, 0.8) < connor_pairs(0.05, 0.10, 0.05, 0.8) < connor_pairs(0.05, 0.30, 0.05, 0.8)
    with pytest.raises(ValueError, match=r"discordance rate must be within \[drop, 1\]"):
        connor_pairs(0.10, 0.05, 0.05, 0.8)


def test_exact_power_is_small_for_twelve_prompts_and_reaches_the_target_near_connors_n():
    # with every disagreement a loss, the exact test needs 5 losses (0.5^5 < 0.05 < 0.5^4)
    assert critical_losses(5, 0.05) == 5 and critical_losses(4, 0.05) == 5 and critical_losses(0, 0.05) == 1
    twelve = exact_power(12, 0.05, 0.05, 0.05)
    assert twelve == pytest.approx(sum(math.comb(12, k) * 0.05 ** k * 0.95 ** (12 - k) for k in range(5, 13)))
    at_n = exact_power(connor_pairs(0.05, 0.05, 0.05, 0.8), 0.05, 0.05, 0.05)
    assert 0.7 < at_n < 0.9 and exact_power(400, 0.05, 0.05, 0.05) > 0.99


def test_a_card_states_the_drop_and_gets_the_prompts_it_needs_and_a_shortfall_warning():
    spec = PairedSpec.from_mapping({"threshold": 0.9, "min_detectable_drop": 0.05, "alpha": 0.05, "power": 0.8}, "c")
    assert spec.pairs_needed() == 122 and spec.shortfall(200) is None
    warning = spec.shortfall(12)
    assert warning.startswith("12 prompts cannot detect a 0.05 accuracy drop: that needs >= 122 (α 0.05, power 80%")
    assert PairedSpec.from_mapping({}, "c").pairs_needed() is None and PairedSpec().shortfall(3) is None
    exact_short = PairedSpec(min_detectable_drop=0.1).shortfall(60)  # Connor: 60 suffice; the exact test has 73%
    assert exact_short.startswith("60 prompts give the exact test 72.90% power to detect a 0.1 accuracy drop, below the card's 80%")


@pytest.mark.parametrize("accuracy, expect", [
    ({"alpha": 0}, "accuracy.alpha and accuracy.power must lie within (0, 1)"),
    ({"min_detectable_drop": 5}, "accuracy.min_detectable_drop is a fraction of the prompts within (0, 1]"),
    ({"min_detectable_drop": 0.2, "discordance": 0.1}, "accuracy.discordance needs min_detectable_drop"),
    ({"power": "high"}, "must be numbers"),
    ({"min_detectible_drop": 0.05}, "'accuracy' takes {threshold, max_new_tokens, alpha, min_detectable_drop"),
])
def test_bad_paired_settings_name_the_field_and_the_fix(accuracy, expect):
    with pytest.raises(ConfigError) as err:
        ModelCard.from_mapping({"name": "x", "architecture": "A", "source": {"path": "p"}, "accuracy": accuracy}, "x.yaml")
    assert "x.yaml" in str(err.value) and expect in str(err.value)
