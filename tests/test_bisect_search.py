"""The binary search of `harness bisect`: pure logic, no processes."""
from __future__ import annotations

import math

import pytest

from harness.bisect.search import Found, Next, Undecided, decide

REFS = tuple(f"1.{i}" for i in range(8))  # 1.0 good ... 1.7 bad


def run_search(refs, oracle):
    """Drive decide() with an oracle ref -> verdict; the refs tested in order, and the decision."""
    verdicts: dict[str, str] = {}
    tested = []
    decision = decide(refs, verdicts)
    while isinstance(decision, Next):
        assert decision.ref not in verdicts, "a ref is never tested twice"
        tested.append(decision.ref)
        verdicts[decision.ref] = oracle(decision.ref)
        decision = decide(refs, verdicts)
    return tested, decision


@pytest.mark.parametrize("first_bad", range(1, 8))
def test_finds_every_possible_first_bad_in_log2_steps(first_bad):
    tested, decision = run_search(REFS, lambda r: "bad" if REFS.index(r) >= first_bad else "good")
    assert decision == Found(REFS[first_bad], REFS[first_bad - 1])
    assert len(tested) <= math.ceil(math.log2(len(REFS) - 1))


def test_a_long_history_takes_about_log2_steps():
    refs = tuple(str(i) for i in range(1025))
    tested, decision = run_search(refs, lambda r: "bad" if int(r) >= 700 else "good")
    assert decision == Found("700", "699")
    assert len(tested) == 10


def test_first_step_is_the_middle():
    assert decide(REFS, {}) == Next("1.3", "1.0", "1.7", 6)


def test_a_skipped_middle_is_stepped_around_by_its_nearest_neighbour():
    decision = decide(REFS, {"1.3": "skip"})
    assert isinstance(decision, Next) and decision.ref == "1.4"  # |4 - 3.5| = 0.5 beats 1.2's 1.5


def test_skips_away_from_the_answer_do_not_matter():
    oracle = {"1.3": "skip", "1.2": "skip"}
    tested, decision = run_search(REFS, lambda r: oracle.get(r) or ("bad" if r >= "1.6" else "good"))
    assert decision == Found("1.6", "1.5")
    assert "1.3" in tested


def test_skips_next_to_the_answer_give_a_range():
    tested, decision = run_search(REFS, lambda r: "skip" if r in ("1.4", "1.5") else ("bad" if r >= "1.5" else "good"))
    assert isinstance(decision, Undecided)
    assert decision.first_bad_among == ("1.4", "1.5", "1.6")
    assert decision.last_good == "1.3"
    assert "1.4, 1.5" in decision.reason


def test_every_candidate_skipped_is_undecided_over_the_whole_range():
    _, decision = run_search(REFS, lambda r: "skip")
    assert isinstance(decision, Undecided)
    assert decision.first_bad_among == REFS[1:]
    assert decision.last_good == "1.0"


def test_adjacent_good_and_bad_need_no_step():
    assert decide(("a", "b"), {}) == Found("b", "a")


@pytest.mark.parametrize(("verdicts", "words"), [
    ({"1.0": "bad"}, "good ref 1.0 is bad"),
    ({"1.7": "good"}, "bad ref 1.7 is good"),
    ({"1.0": "skip"}, "1.0 could not be tested"),
    ({"1.7": "skip"}, "1.7 could not be tested"),
])
def test_verified_ends_that_are_wrong_stop_the_search(verdicts, words):
    decision = decide(REFS, verdicts)
    assert isinstance(decision, Undecided) and words in decision.reason


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="good and a bad"):
        decide(("1.0",), {})
    with pytest.raises(ValueError, match="verdicts must be one of"):
        decide(REFS, {"1.2": "maybe"})
