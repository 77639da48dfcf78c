"""Sign-off: GO or NO-GO for a run, from a policy and waivers, with every reason.

Each required (cell, check) is judged:

- pass (not simulated)               → satisfied
- na                                 → not applicable, not required
- skipped                            → missing, unless its rule says ``allow_skipped``
- simulated (any status)             → missing: simulated results never count towards sign-off
- fail / error / missing             → blocks, unless a valid waiver matches; an expired waiver
                                       matching it is reported, and it blocks
A required cell named without wildcards that is absent, or a rule matching no cell, is missing.
Waivers that waive nothing are stale (reported, never blocking). An interrupted run blocks when
the policy says ``require_complete`` (the default), and a run where nothing required ran blocks
(unless the policy says ``allow_nothing_ran``).

Coverage (reports/coverage.py) is part of the verdict: the headline says what ran against what
was planned per device, so a GO on the CPU reads "GO on cpu", never as NPU sign-off; a policy's
``require:`` (devices, runtimes, models, min_cells) makes "the required part never ran" a
``not-covered`` blocker.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import fnmatch
from collections.abc import Mapping, Sequence
from typing import Literal, final

from harness.reports.coverage import Coverage
from harness.reports.policy import CoverageRule, Policy, RequiredRule
from harness.reports.waivers import Waiver
from harness.results import ResultRecord

Verdict = Literal["GO", "NO-GO"]
FindingKind = Literal["fail", "error", "missing", "incomplete", "nothing-ran", "not-covered", "flaky", "config"]


@final
@dataclasses.dataclass(frozen=True)
class Finding:
    """A required result that is not a real pass; ``waiver`` says what (if anything) covers it."""

    kind: str
    cell: str
    check: str
    reason: str
    waiver: Waiver | None = None
    waiver_expired: bool = False


@final
@dataclasses.dataclass(frozen=True)
class StaleWaiver:
    waiver: Waiver
    why: str


@final
@dataclasses.dataclass(frozen=True)
class SignOff:
    """The verdict and everything behind it."""

    verdict: str
    headline: str
    policy: Policy
    blockers: tuple[Finding, ...]
    waived: tuple[Finding, ...]
    stale: tuple[StaleWaiver, ...]
    required: int
    satisfied: int
    not_applicable: int
    today: dt.date
    coverage: Coverage = dataclasses.field(default_factory=lambda: Coverage.from_records(()))
    flaky: tuple[Finding, ...] = ()  # passed only when the cell was booted again (not blocking under this policy)

    @property
    def go(self) -> bool:
        return self.verdict == "GO"

    @property
    def title(self) -> str:
        """``GO``, ``GO on cpu only`` when planned cells did not run, or ``NO-GO``."""
        if self.go and not self.coverage.complete:
            return f"GO on {self.coverage.scope()} only"
        return self.verdict

    def with_blocker(self, finding: Finding) -> SignOff:
        """The same sign-off with one more blocker first (e.g. an invalid policy file): always NO-GO."""
        blockers = (finding, *self.blockers)
        return dataclasses.replace(self, verdict="NO-GO", blockers=blockers,
                                   headline=_headline("NO-GO", blockers, self.waived, self.satisfied, self.required,
                                                      self.coverage, self.flaky))


def evaluate(records: Sequence[ResultRecord], run_status: str, policy: Policy, waivers: Sequence[Waiver],
             today: dt.date) -> SignOff:
    """Judge a run's records against ``policy`` and ``waivers`` as of ``today``."""
    by_cell: dict[str, dict[str, ResultRecord]] = {}
    for r in records:
        by_cell.setdefault(r.cell, {})[r.check] = r
    problems, satisfied, na, flaky = _judge(by_cell, policy.rules)
    if policy.flaky_blocks:  # a pass only on the retry does not satisfy this policy
        problems += flaky
        satisfied -= len(flaky)
    blockers: list[Finding] = []
    waived: list[Finding] = []
    used: set[int] = set()
    for f in problems:
        valid = next((w for w in waivers if w.matches(f.cell, f.check) and not w.expired(today)), None)
        expired = next((w for w in waivers if w.matches(f.cell, f.check) and w.expired(today)), None)
        if valid is not None:
            used.add(id(valid))
            waived.append(dataclasses.replace(f, waiver=valid))
        elif expired is not None:
            used.add(id(expired))
            blockers.append(dataclasses.replace(f, waiver=expired, waiver_expired=True))
        else:
            blockers.append(f)
    if policy.require_complete and run_status in ("interrupted", "running"):
        blockers.insert(0, Finding("incomplete", "", "", f"the run is {run_status}: not every cell ran to the end"))
    required = satisfied + len(problems)
    coverage = Coverage.from_records(records)
    blockers[:0] = _not_covered(coverage, policy.require) + _weights_sampled(by_cell, policy.require)
    if satisfied == 0 and not problems and not policy.allow_nothing_ran:
        blockers.insert(0, Finding("nothing-ran", "", "", f"no required result ran: every cell was skipped, N/A or "
                                                          f"absent ({coverage.line()})"))
    stale = tuple(StaleWaiver(w, _stale_why(w, by_cell)) for w in waivers if id(w) not in used)
    verdict = "NO-GO" if blockers else "GO"
    shown_flaky = () if policy.flaky_blocks else tuple(flaky)
    return SignOff(verdict, _headline(verdict, blockers, waived, satisfied, required, coverage, shown_flaky), policy,
                   tuple(blockers), tuple(waived), stale, required, satisfied, na, today, coverage, shown_flaky)


def _not_covered(coverage: Coverage, rule: CoverageRule) -> list[Finding]:
    """A blocker per required device / runtime / model whose planned cells did not all run."""
    out = []
    for axis, values in rule.axes():
        for value in values:
            count = coverage.get(axis, value)
            if count is None or count.planned == 0:
                out.append(Finding("not-covered", "", "", f"required {axis} {value} has no planned cell in this run: "
                                                          f"add it to the matrix (--{axis}s {value})"))
            elif not count.complete:
                why = "; ".join(f"{n} {reason}" for reason, n in count.skip_reasons[:2])
                sim = f"; {count.simulated} ran only on simulated devices" if count.simulated else ""
                out.append(Finding("not-covered", "", "", f"required {axis} {value}: {count.ran} of {count.planned} "
                                                          f"planned cells ran{sim}" + (f" (skipped: {why})" if why else "")))
    if coverage.ran < rule.min_cells:
        out.append(Finding("not-covered", "", "", f"{coverage.ran} cell(s) ran, the policy requires at least {rule.min_cells}"))
    return out


def _weights_sampled(by_cell: Mapping[str, Mapping[str, ResultRecord]], rule: CoverageRule) -> list[Finding]:
    """A blocker per cell whose weight parity ran but verified less of the checkpoint than required."""
    if rule.weight_coverage is None:
        return []
    out = []
    for cell, checks in sorted(by_cell.items()):
        rec = checks.get("weight_parity")
        if rec is None or rec.status not in ("pass", "fail"):
            continue
        got = (rec.metrics or {}).get("coverage")
        if not isinstance(got, (int, float)) or got < rule.weight_coverage:
            shown = f"{got:.3%}" if isinstance(got, (int, float)) else "not recorded (a harness without coverage)"
            why = (rec.metrics or {}).get("not_verified_why")
            out.append(Finding("not-covered", cell, "weight_parity",
                               f"weight parity verified {shown} of the checkpoint, the policy requires "
                               f"{rule.weight_coverage:.3%}" + (f" (not verified: {why})" if why else "")
                               + ": drop parity.truncate_rows from the model card to compare every row; a tensor the "
                                 "runtime does not expose needs a layout rule (harness/numerics/layouts/) or digests"))
    return out


def _judge(by_cell: Mapping[str, Mapping[str, ResultRecord]],
           rules: Sequence[RequiredRule]) -> tuple[list[Finding], int, int, list[Finding]]:
    """Problems (unwaived as yet), the count of satisfied items and of N/A items, and the flaky passes
    (counted as satisfied). The last record of a (cell, check) decides: a retry's, when there is one."""
    seen: dict[tuple[str, str], bool] = {}  # (cell, check) → allow_skipped of any rule requiring it
    problems: list[Finding] = []
    for rule in rules:
        matched = [c for c in by_cell if rule.matches(c)]
        for literal in rule.literal_cells():
            if literal not in by_cell:
                problems.append(Finding("missing", literal, ",".join(rule.checks), f"required cell {literal} is not in this run"))
        globs = [p for p in rule.cells if p not in rule.literal_cells()]
        for pattern in globs:
            if not any(_fn(c, pattern) for c in by_cell):
                problems.append(Finding("missing", pattern, ",".join(rule.checks),
                                        f"no cell of this run matches the required pattern {pattern!r}"))
        for cell in matched:
            for check in rule.checks_for(tuple(by_cell[cell])):
                key = (cell, check)
                seen[key] = seen.get(key, False) or rule.allow_skipped
    satisfied = na = 0
    flaky: list[Finding] = []
    for (cell, check), allow_skipped in seen.items():
        rec = by_cell[cell].get(check)
        if rec is None:
            problems.append(Finding("missing", cell, check, f"no {check} result was recorded for {cell}"))
        elif rec.status == "na":
            na += 1
        elif rec.simulated:
            problems.append(Finding("missing", cell, check, f"simulated result ({rec.status}): simulated devices "
                                                            "never count towards sign-off"))
        elif rec.status == "pass":
            satisfied += 1
            if rec.flake == "flaky":
                flaky.append(Finding("flaky", cell, check, "failed, then passed when the cell was booted again"))
        elif rec.status == "skipped":
            if allow_skipped:
                continue
            problems.append(Finding("missing", cell, check, f"skipped: {rec.reason}"))
        else:
            why = f"{rec.flake} (failed on both boots): {rec.reason}" if rec.flake else rec.reason
            problems.append(Finding(rec.status, cell, check, why))
    return problems, satisfied, na, flaky


def _fn(name: str, pattern: str) -> bool:
    return fnmatch.fnmatchcase(name, pattern)


def _stale_why(w: Waiver, by_cell: Mapping[str, Mapping[str, ResultRecord]]) -> str:
    hits = [r for cell, checks in by_cell.items() if any(_fn(cell, p) for p in w.cells)
            for name, r in checks.items() if _fn(name, w.check)]
    if not hits:
        return "matches no result of this run (renamed or removed cell or check?): delete it"
    return f"matches {len(hits)} result(s), none of them a required failure: the problem looks fixed, delete it"


def _headline(verdict: str, blockers: Sequence[Finding], waived: Sequence[Finding], satisfied: int, required: int,
              coverage: Coverage, flaky: Sequence[Finding] = ()) -> str:
    """``24 of 24 required result(s) passed · ran 8 of 64 planned cells: cpu 8/16 · cuda 0/24 · npu 0/24``."""
    if verdict == "GO":
        extra = (f"; {len(waived)} waived" if waived else "") + (f"; {len(flaky)} flaky (passed on retry)" if flaky else "")
        return f"{satisfied} of {required} required result(s) passed{extra} · {coverage.line()}"
    kinds: dict[str, int] = {}
    for b in blockers:
        label = "expired waiver" if b.waiver_expired else b.kind
        kinds[label] = kinds.get(label, 0) + 1
    return f"{len(blockers)} blocker(s): " + ", ".join(f"{n} {k}" for k, n in kinds.items()) + f" · {coverage.line()}"
