"""Platforms and the sets of platforms on which a condition may hold."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Literal, get_args

Platform = Literal["cuda", "rocm", "npu", "xpu", "cpu"]
PLATFORMS: tuple[Platform, ...] = get_args(Platform)
PlatformSet = frozenset[str]
ALL: PlatformSet = frozenset(PLATFORMS)
NONE: PlatformSet = frozenset()


def platform_set(names: Iterable[str], *, what: str = "platform list") -> PlatformSet:
    """Validate platform names and return them as a set."""
    chosen = frozenset(names)
    unknown = sorted(chosen - ALL)
    if unknown:
        raise ValueError(
            f"unknown platform(s) {unknown} in {what}; use some of {list(PLATFORMS)}"
        )
    return chosen


def ordered(platforms: Iterable[str]) -> tuple[str, ...]:
    """Platforms in canonical order (cuda, rocm, npu, xpu, cpu)."""
    chosen = set(platforms)
    return tuple(p for p in PLATFORMS if p in chosen)


@dataclasses.dataclass(frozen=True)
class Condition:
    """Where a test may evaluate true and where it may evaluate false.

    ``_is_cuda`` is exact: true on {cuda}, false elsewhere. ``_use_aiter``
    only implies ROCm: true on {rocm} at most, false possibly everywhere.
    A test that says nothing about platforms is true and false everywhere.
    """

    may_true: PlatformSet
    may_false: PlatformSet

    @classmethod
    def unknown(cls) -> Condition:
        """A test unrelated to platforms."""
        return cls(ALL, ALL)

    @classmethod
    def exact(cls, platforms: Iterable[str]) -> Condition:
        """True on exactly these platforms, false on the rest."""
        chosen = platform_set(platforms)
        return cls(chosen, ALL - chosen)

    @classmethod
    def implies(cls, platforms: Iterable[str]) -> Condition:
        """True only on these platforms, and not necessarily there."""
        return cls(platform_set(platforms), ALL)

    @classmethod
    def constant(cls, value: bool) -> Condition:
        """A literal True or False."""
        return cls(ALL, NONE) if value else cls(NONE, ALL)

    @property
    def is_platform(self) -> bool:
        """Whether the test narrows the platforms of either branch."""
        return self.may_true != ALL or self.may_false != ALL

    @property
    def decided(self) -> bool:
        """Whether the platform alone decides the test (no platform is both true and false)."""
        return not (self.may_true & self.may_false)

    def negate(self) -> Condition:
        """The condition of ``not test``."""
        return Condition(self.may_false, self.may_true)

    def both(self, other: Condition) -> Condition:
        """The condition of ``self and other``."""
        return Condition(
            self.may_true & other.may_true, self.may_false | other.may_false
        )

    def either(self, other: Condition) -> Condition:
        """The condition of ``self or other``."""
        return Condition(
            self.may_true | other.may_true, self.may_false & other.may_false
        )

    def join(self, other: Condition) -> Condition:
        """The condition of a name assigned either value on different paths."""
        return Condition(
            self.may_true | other.may_true, self.may_false | other.may_false
        )

    def covering(self) -> Condition:
        """Platforms on which neither branch was seen are treated as unknown."""
        unseen = ALL - (self.may_true | self.may_false)
        return Condition(self.may_true | unseen, self.may_false | unseen)

    def within(self, platforms: PlatformSet) -> Condition:
        """The condition as seen from code that only runs on ``platforms``."""
        return Condition(self.may_true & platforms, self.may_false & platforms)
