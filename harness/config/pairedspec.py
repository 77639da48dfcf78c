"""The card's paired-accuracy settings: the test's level and the smallest drop the fact sets must detect.

In a card (``accuracy:`` block, beside ``threshold``)::

    accuracy: {threshold: 0.9, min_detectable_drop: 0.05, alpha: 0.05, power: 0.8}

``alpha``: level of the one-sided exact McNemar test against the reference cell (default 0.05);
``min_detectable_drop``: the accuracy drop (a fraction of the prompts) the sets must be able to
detect with probability ``power`` (default 0.8); ``discordance``: the assumed share of prompts the
cell and the reference answer differently (default: the drop itself, which gives the fewest prompts
any discordance could need; see harness/config/pairedstats.py).
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, final

from harness.config.pairedstats import connor_pairs, exact_power
from harness.errors import ConfigError

KEYS = ("alpha", "min_detectable_drop", "power", "discordance")


@final
@dataclasses.dataclass(frozen=True)
class PairedSpec:
    """How a cell's accuracy is compared with its reference cell's on the same prompts."""

    alpha: float = 0.05
    min_detectable_drop: float | None = None
    power: float = 0.8
    discordance: float | None = None

    @property
    def assumed_discordance(self) -> float | None:
        return self.discordance if self.discordance is not None else self.min_detectable_drop

    def pairs_needed(self) -> int | None:
        """Prompts needed to detect the drop (Connor 1987, one-sided), or None when the card states no drop."""
        drop, psi = self.min_detectable_drop, self.assumed_discordance
        return None if drop is None or psi is None else connor_pairs(drop, psi, self.alpha, self.power)

    def power_at(self, prompts: int) -> float | None:
        """The exact test's power to detect the drop with ``prompts`` prompts, or None without a drop."""
        drop, psi = self.min_detectable_drop, self.assumed_discordance
        return None if drop is None or psi is None else exact_power(prompts, drop, psi, self.alpha)

    def shortfall(self, prompts: int) -> str | None:
        """A warning when ``prompts`` are too few to detect the drop, else None:

        ``12 prompts cannot detect a 5% accuracy drop: that needs >= 122 (α 0.05, power 80%, discordance 5%);
        power with 12: 0.02%``.
        """
        needed, power = self.pairs_needed(), self.power_at(prompts)
        if needed is None or power is None or (prompts >= needed and power >= self.power):
            return None
        assert self.min_detectable_drop is not None and self.assumed_discordance is not None
        if prompts >= needed:  # the approximation says enough; the exact test, discrete, falls short
            return (f"{prompts} prompts give the exact test {power:.2%} power to detect a {self.min_detectable_drop:.3g} "
                    f"accuracy drop, below the card's {self.power:.0%} (α {self.alpha:g}, discordance "
                    f"{self.assumed_discordance:.3g}; Connor's approximation asks >= {needed})")
        return (f"{prompts} prompts cannot detect a {self.min_detectable_drop:.3g} accuracy drop: that needs >= {needed} "
                f"(α {self.alpha:g}, power {self.power:.0%}, discordance {self.assumed_discordance:.3g}); "
                f"power with {prompts}: {power:.2%}")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], where: str) -> PairedSpec:
        """Read ``alpha``, ``min_detectable_drop``, ``power`` and ``discordance`` of an ``accuracy:`` block."""
        try:
            values = {k: float(data[k]) for k in KEYS if data.get(k) is not None}
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{where}: accuracy.{'/'.join(KEYS)} must be numbers, got "
                              f"{ {k: data.get(k) for k in KEYS if k in data} }") from exc
        spec = cls(**values)
        if not 0.0 < spec.alpha < 1.0 or not 0.0 < spec.power < 1.0:
            raise ConfigError(f"{where}: accuracy.alpha and accuracy.power must lie within (0, 1), "
                              f"got alpha={spec.alpha} power={spec.power}; e.g. alpha: 0.05, power: 0.8")
        drop, psi = spec.min_detectable_drop, spec.discordance
        if drop is not None and not 0.0 < drop <= 1.0:
            raise ConfigError(f"{where}: accuracy.min_detectable_drop is a fraction of the prompts within (0, 1], "
                              f"got {drop}; e.g. 0.05 for five points")
        if psi is not None and (drop is None or not drop <= psi <= 1.0):
            raise ConfigError(f"{where}: accuracy.discordance needs min_detectable_drop and must lie within "
                              f"[min_detectable_drop, 1], got discordance={psi} min_detectable_drop={drop}")
        return spec
