"""Regression diff of a run against its baseline, by (cell, check).

    baseline pass     → now fail/error : new failure      (also: absent before and failing now)
    baseline fail/err → now pass       : fixed
    baseline fail/err → now fail/error : still failing
    baseline pass/bad → now skipped/na : coverage lost    (it no longer runs; nothing is proven)
    cells only in one run              : appeared / disappeared
    metrics beyond tolerance           : drift (see reports/drift.py)
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Literal, final

from harness.bisect.command import cell_command
from harness.reports.drift import METRICS, Drift, Tolerance, compare, metric_values, tolerances
from harness.results import ResultRecord

ChangeKind = Literal["new-failure", "fixed", "still-failing", "coverage-lost"]
CHANGE_KINDS: tuple[str, ...] = ("new-failure", "fixed", "still-failing", "coverage-lost")
BAD = ("fail", "error")
_BOOT = next(m for m in METRICS if m.name == "boot_s")


@final
@dataclasses.dataclass(frozen=True)
class Change:
    """One (cell, check) whose outcome class changed (or stayed bad) since the baseline."""

    kind: str
    cell: str
    check: str
    before: str | None  # None: the baseline had no such result
    after: str
    reason_before: str
    reason_after: str
    bisect: str = ""  # a new failure: the `harness bisect` command that finds the runtime release that broke it


@final
@dataclasses.dataclass(frozen=True)
class RunDiff:
    """Everything that changed between the baseline and this run."""

    baseline_id: str
    baseline_path: str
    chosen_because: str
    changes: tuple[Change, ...]
    appeared: tuple[str, ...]
    disappeared: tuple[str, ...]
    drift: tuple[Drift, ...]

    def of_kind(self, kind: str) -> tuple[Change, ...]:
        return tuple(c for c in self.changes if c.kind == kind)

    @property
    def counts(self) -> dict[str, int]:
        out = dict.fromkeys(CHANGE_KINDS, 0)
        for c in self.changes:
            out[c.kind] += 1
        return out

    def kind_of(self) -> dict[tuple[str, str], str]:
        """(cell, check) → change kind, for marking the grid."""
        return {(c.cell, c.check): c.kind for c in self.changes}


def diff_runs(current: Sequence[ResultRecord], baseline: Sequence[ResultRecord], *, baseline_id: str,
              baseline_path: str, chosen_because: str, overrides: Mapping[str, Tolerance] | None = None,
              baseline_versions: Mapping[str, str] | None = None) -> RunDiff:
    """Compare two runs' records; linear in their size.

    ``baseline_versions``: cell -> the runtime version it ran in the baseline, where its records carry
    no fingerprint (a light load); it makes a new failure's `harness bisect` command exact.
    """
    now = {(r.cell, r.check): r for r in current}
    before = {(r.cell, r.check): r for r in baseline}
    cells_now = {r.cell for r in current}
    cells_before = {r.cell for r in baseline}
    versions = baseline_versions or {}
    changes = [c for key, rec in now.items() if (c := _change(before.get(key), rec, versions)) is not None]
    changes.sort(key=lambda c: (CHANGE_KINDS.index(c.kind), c.cell, c.check))
    return RunDiff(baseline_id, baseline_path, chosen_because, tuple(changes),
                   tuple(sorted(cells_now - cells_before)), tuple(sorted(cells_before - cells_now)),
                   _drift(now, before, tolerances(overrides)))


def _change(old: ResultRecord | None, new: ResultRecord, versions: Mapping[str, str]) -> Change | None:
    was = old.status if old else None
    kind: str | None = None
    if new.status in BAD:
        kind = "still-failing" if was in BAD else "new-failure"
    elif was in BAD:
        kind = "fixed" if new.status == "pass" else "coverage-lost"
    elif was == "pass" and new.status in ("skipped", "na"):
        kind = "coverage-lost"
    if kind is None:
        return None
    bisect = ""
    if kind == "new-failure" and old is not None:
        bisect = cell_command(new.cell, new.check, new.runtime, _version(old) or versions.get(old.cell), _version(new))
    return Change(kind, new.cell, new.check, was, new.status, old.reason if old else "", new.reason, bisect)


def _version(record: ResultRecord) -> str | None:
    version = (record.fingerprint or {}).get("version")
    return str(version) if version else None


def _drift(now: Mapping[tuple[str, str], ResultRecord], before: Mapping[tuple[str, str], ResultRecord],
           tol: Mapping[str, Tolerance]) -> tuple[Drift, ...]:
    out: list[Drift] = []
    boot_seen: set[str] = set()
    for key, rec in now.items():
        old = before.get(key)
        if old is None or rec.status in ("skipped", "na") or old.status in ("skipped", "na"):
            continue
        old_values = {(spec.name, k): v for spec, k, v in metric_values(old)}
        for spec, k, value in metric_values(rec):
            prior = old_values.get((spec.name, k))
            if prior is not None and (d := compare(rec.cell, rec.check, spec, k, prior, value, tol[spec.name])):
                out.append(d)
        if "boot_s" in tol and rec.cell not in boot_seen and rec.boot_s is not None and old.boot_s is not None:
            boot_seen.add(rec.cell)
            d = compare(rec.cell, "(boot)", _BOOT, "boot_s", float(old.boot_s), float(rec.boot_s), tol["boot_s"])
            if d:
                out.append(d)
    out.sort(key=lambda d: (not d.worse, d.metric, d.cell, d.check))
    return tuple(out)
