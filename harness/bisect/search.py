"""The binary search of `harness bisect` as pure logic: from what is known, the next ref or the answer.

Refs are ordered oldest to newest; the first is the good ref, the last the bad one. Verdicts
known so far decide the window: ``lo`` is the newest good ref before ``hi``, the oldest bad ref.
The next ref to test is the untested one nearest the window's middle (the lower on a tie), so a
ref that could not be tested (``skip``, as ``git bisect skip``) is stepped around by its
neighbours. When only skipped refs are left in the window the answer is a range.

    >>> decide(("1.0", "1.1", "1.2", "1.3"), {})
    Next(ref='1.1', lo='1.0', hi='1.3', left=2)
    >>> decide(("1.0", "1.1", "1.2", "1.3"), {"1.1": "good", "1.2": "bad"})
    Found(first_bad='1.2', last_good='1.1')
    >>> decide(("1.0", "1.1", "1.2", "1.3"), {"1.1": "skip", "1.2": "bad"}).first_bad_among
    ('1.1', '1.2')
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Literal, final, get_args

Verdict = Literal["good", "bad", "skip"]
VERDICTS: tuple[str, ...] = get_args(Verdict)


@final
@dataclasses.dataclass(frozen=True)
class Next:
    """Test ``ref`` next; ``left`` refs are untested in the window (lo, hi)."""

    ref: str
    lo: str
    hi: str
    left: int

    @property
    def steps_left(self) -> int:
        """About how many more steps a binary search over ``left`` refs takes (skips add to it)."""
        return max(1, math.ceil(math.log2(self.left + 1)))


@final
@dataclasses.dataclass(frozen=True)
class Found:
    """``first_bad`` is bad and the ref just before it, ``last_good``, is good."""

    first_bad: str
    last_good: str


@final
@dataclasses.dataclass(frozen=True)
class Undecided:
    """The search cannot name one first bad ref; ``reason`` says why.

    ``first_bad_among``: the refs one of which is the first bad (empty when the ends are wrong).
    """

    reason: str
    first_bad_among: tuple[str, ...] = ()
    last_good: str | None = None


Decision = Next | Found | Undecided


def decide(refs: Sequence[str], verdicts: Mapping[str, str]) -> Decision:
    """The next ref to test, the first bad ref, or why there is none (see the module docstring)."""
    if len(refs) < 2:
        raise ValueError(f"a bisection needs a good and a bad ref, got {list(refs)}")
    unknown = sorted({v for v in verdicts.values() if v not in VERDICTS})
    if unknown:
        raise ValueError(f"verdicts must be one of {VERDICTS}, got {unknown}")
    wrong_end = _check_ends(refs, verdicts)
    if wrong_end is not None:
        return wrong_end
    hi = next(i for i, r in enumerate(refs) if i == len(refs) - 1 or verdicts.get(r) == "bad")
    lo = max(i for i in range(hi) if i == 0 or verdicts.get(refs[i]) == "good")
    window = range(lo + 1, hi)
    if not window:
        return Found(refs[hi], refs[lo])
    untested = [i for i in window if refs[i] not in verdicts]
    if not untested:
        among = tuple(refs[lo + 1:hi + 1])
        return Undecided(f"{len(window)} ref(s) between the last good {refs[lo]} and the first bad {refs[hi]} "
                         f"could not be tested (skip): {', '.join(refs[lo + 1:hi])}; the first bad is one of "
                         f"{', '.join(among)}", among, refs[lo])
    middle = (lo + hi) / 2
    pick = min(untested, key=lambda i: (abs(i - middle), i))
    return Next(refs[pick], refs[lo], refs[hi], len(untested))


def _check_ends(refs: Sequence[str], verdicts: Mapping[str, str]) -> Undecided | None:
    """The ends are taken as given unless tested (--verify-ends): then they must be good and bad."""
    good, bad = refs[0], refs[-1]
    said_good, said_bad = verdicts.get(good, "good"), verdicts.get(bad, "bad")
    if said_good == "bad":
        return Undecided(f"the good ref {good} is bad here: the regression is older; pass an older --good")
    if said_bad == "good":
        return Undecided(f"the bad ref {bad} is good here: nothing to find (a flaky failure, another check "
                         "failed, or the finding key differs); pass the --check that failed, or the key as the report spells it")
    for ref, said in ((good, said_good), (bad, said_bad)):
        if said == "skip":
            return Undecided(f"the ref {ref} could not be tested (skip); pick another --good / --bad")
    return None
