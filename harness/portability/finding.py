"""One portability finding, and the rule ids that produce them."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any, Literal, get_args

from harness.portability.platforms import ordered, platform_set

Rule = Literal[
    "accel-import",
    "platform-unbound-name",
    "platform-only-attr",
    "platform-missing-name",
    "import-probe",
]
RULES: tuple[Rule, ...] = get_args(Rule)
When = Literal["import", "call"]
# How a platform reaches the finding: at start ("breaks"), only under a user choice ("option"),
# or by no path found ("latent"). Ordered from worst to mildest.
Severity = Literal["breaks", "option", "latent"]
SEVERITIES: tuple[Severity, ...] = get_args(Severity)


@dataclasses.dataclass(frozen=True)
class Finding:
    """A place where code works on some platforms and breaks on others.

    ``key`` leaves the line out, so a baseline survives edits above the finding.
    """

    rule: Rule
    path: str
    line: int
    symbol: str
    platforms: tuple[str, ...]
    hint: str
    when: When = "import"
    suppressed: str | None = None
    severity: Severity = "breaks"
    reach: str = ""
    option: str | None = None

    @classmethod
    def create(
        cls,
        rule: str,
        path: str,
        line: int,
        symbol: str,
        platforms: Iterable[str],
        hint: str,
        when: str = "import",
    ) -> Finding:
        """Validate the rule, platforms and timing, and build a Finding."""
        if rule not in RULES:
            raise ValueError(f"unknown portability rule {rule!r}; known rules: {list(RULES)}")
        if when not in get_args(When):
            raise ValueError(f"finding 'when' must be 'import' or 'call', got {when!r}")
        chosen = platform_set(platforms, what=f"finding {rule} at {path}:{line}")
        if not chosen:
            raise ValueError(f"finding {rule} at {path}:{line} affects no platform; drop it")
        return cls(rule, path, int(line), symbol, ordered(chosen), hint, when)  # type: ignore[arg-type]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Finding:
        """Rebuild a Finding from ``to_dict`` output."""
        finding = cls.create(
            data["rule"], data["path"], data["line"], data["symbol"],
            data["platforms"], data["hint"], data.get("when", "import"),
        )
        finding = finding.ranked(data.get("severity", "breaks"), data.get("reach", ""), data.get("option"))
        return dataclasses.replace(finding, suppressed=data.get("suppressed"))

    @property
    def key(self) -> str:
        """Baseline key, stable across line shifts: ``rule:path:symbol``."""
        return f"{self.rule}:{self.path}:{self.symbol}"

    @property
    def location(self) -> str:
        """``path:line``."""
        return f"{self.path}:{self.line}"

    def ranked(self, severity: str, reach: str = "", option: str | None = None) -> Finding:
        """This finding with its severity, how the platform reaches it, and the option it needs."""
        if severity not in SEVERITIES:
            raise ValueError(f"finding severity must be one of {list(SEVERITIES)}, got {severity!r}")
        return dataclasses.replace(self, severity=severity, reach=reach, option=option)

    def suppress(self, reason: str) -> Finding:
        """This finding, marked suppressed with a reason."""
        return dataclasses.replace(self, suppressed=reason)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form."""
        data = dataclasses.asdict(self)
        data["platforms"] = list(self.platforms)
        data["key"] = self.key
        return data
