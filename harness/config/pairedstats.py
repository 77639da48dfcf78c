"""Paired statistics for accuracy: the exact McNemar test and its sample size (pure Python, no scipy).

A cell and its reference cell answer the *same* prompts, so their right/wrong answers pair up.
Only the discordant pairs carry information: ``lost`` (the reference right, the cell wrong) and
``gained`` (the reference wrong, the cell right). Under "the cell is as accurate as the
reference" each discordant pair is a loss with probability 1/2, so ``lost`` ~ Binomial(lost + gained, 1/2):

    >>> test = mcnemar_exact(lost=7, gained=1)   # Fagerland et al. 2013's example (b=1, c=7)
    >>> round(test.p_two_sided, 4), round(test.p_drop, 4)
    (0.0703, 0.0352)

The sample size for detecting a drop δ = p_lost - p_gained with an assumed discordance rate
ψ = p_lost + p_gained is Connor's (1987) normal approximation for McNemar's test:

    n = ((z_{1-α} √ψ + z_{1-β} √(ψ - δ²)) / δ)²      (z_{1-α/2} when two-sided)

ψ is at least δ; with ψ = δ (every disagreement a loss) n is the smallest over all discordance
rates, so a fact set below that n is too small whatever the discordance turns out to be.
``exact_power`` gives the power of the exact one-sided test at a given n without approximation.
"""
from __future__ import annotations

import dataclasses
import math
from statistics import NormalDist
from typing import Literal, final

Sided = Literal["one", "two"]


@final
@dataclasses.dataclass(frozen=True)
class McNemarResult:
    """The exact conditional McNemar test of one paired comparison."""

    lost: int      # reference right, cell wrong
    gained: int    # reference wrong, cell right
    p_two_sided: float
    p_drop: float  # one-sided: the chance of this many losses or more if the cell were as accurate

    @property
    def discordant(self) -> int:
        return self.lost + self.gained


def binom_cdf(k: int, n: int, p: float = 0.5) -> float:
    """P(X <= k) for X ~ Binomial(n, p), summed exactly in log space."""
    if k < 0:
        return 0.0
    if k >= n:
        return 1.0
    return min(1.0, sum(math.exp(_log_pmf(i, n, p)) for i in range(k + 1)))


def binom_sf(k: int, n: int, p: float = 0.5) -> float:
    """P(X >= k) for X ~ Binomial(n, p)."""
    if k <= 0:
        return 1.0
    if k > n:
        return 0.0
    return min(1.0, sum(math.exp(_log_pmf(i, n, p)) for i in range(k, n + 1)))


def _log_pmf(i: int, n: int, p: float) -> float:
    if p <= 0.0:
        return 0.0 if i == 0 else -math.inf
    if p >= 1.0:
        return 0.0 if i == n else -math.inf
    return (math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1)
            + i * math.log(p) + (n - i) * math.log1p(-p))


def mcnemar_exact(lost: int, gained: int) -> McNemarResult:
    """Exact McNemar: two-sided p = min(1, 2 P(X <= min(b, c))), one-sided p_drop = P(X >= lost)."""
    if lost < 0 or gained < 0:
        raise ValueError(f"discordant counts must be >= 0, got lost={lost} gained={gained}")
    n = lost + gained
    two = 1.0 if n == 0 else min(1.0, 2.0 * binom_cdf(min(lost, gained), n))
    return McNemarResult(lost, gained, two, binom_sf(lost, n))


def z(alpha: float, sided: Sided = "one") -> float:
    """The normal quantile a test at level ``alpha`` rejects beyond: 1.645 one-sided at 0.05, 1.96 two-sided."""
    return NormalDist().inv_cdf(1.0 - (alpha / 2.0 if sided == "two" else alpha))


def connor_pairs(drop: float, discordance: float, alpha: float, power: float, sided: Sided = "one") -> int:
    """Pairs (prompts) needed to detect ``drop`` with McNemar's test (Connor 1987), rounded up.

    ``connor_pairs(0.40, 0.50, 0.05, 0.80, "two")`` is 23 (p10 = 0.05, p01 = 0.45).
    """
    _validate(drop, discordance, alpha, power)
    za, zb = z(alpha, sided), NormalDist().inv_cdf(power)
    n = ((za * math.sqrt(discordance) + zb * math.sqrt(discordance - drop ** 2)) / drop) ** 2
    return math.ceil(n - 1e-9)


def exact_power(n: int, drop: float, discordance: float, alpha: float) -> float:
    """Power of the exact one-sided McNemar test with ``n`` pairs, unconditionally on the discordant count.

    The discordant count D ~ Binomial(n, ψ); given D, losses ~ Binomial(D, (ψ + δ) / 2ψ), and the
    test rejects when P(X >= losses | D, 1/2) <= α.
    """
    _validate(drop, discordance, alpha, 0.5)
    p_loss = (discordance + drop) / (2.0 * discordance)
    total = 0.0
    for d in range(n + 1):
        weight = math.exp(_log_pmf(d, n, discordance))
        if weight < 1e-15:
            continue
        total += weight * binom_sf(critical_losses(d, alpha), d, p_loss)
    return min(1.0, total)


def critical_losses(discordant: int, alpha: float) -> int:
    """The fewest losses among ``discordant`` pairs that the one-sided exact test calls a drop
    (``discordant + 1`` when none would): 5 of 5 at α 0.05 (0.5⁵ = 0.031)."""
    tail = 0.0
    for k in range(discordant, -1, -1):  # P(X >= k) grows as k falls: stop where it passes alpha
        tail += math.exp(_log_pmf(k, discordant, 0.5))
        if tail > alpha:
            return k + 1
    return 0


def _validate(drop: float, discordance: float, alpha: float, power: float) -> None:
    if not 0.0 < drop <= 1.0:
        raise ValueError(f"the drop to detect must be within (0, 1], got {drop}")
    if not drop <= discordance <= 1.0:
        raise ValueError(f"the discordance rate must be within [drop, 1] = [{drop}, 1], got {discordance}: "
                         "a drop of δ needs at least δ of the prompts answered differently")
    if not 0.0 < alpha < 1.0 or not 0.0 < power < 1.0:
        raise ValueError(f"alpha and power must be within (0, 1), got alpha={alpha} power={power}")
