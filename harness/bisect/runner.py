"""The bisection loop: decide, prepare the candidate, judge it, save what was learned, repeat.

Every step is saved (``bisect.json``, atomically) before the next begins; Ctrl-C ends the loop with
exit 130 and a re-run of the same command resumes where it stopped.
"""
from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import final

from harness.bisect import report
from harness.bisect.envs import CandidateError, Log
from harness.bisect.search import Decision, Found, Next, decide
from harness.bisect.state import STATE_FILE, BisectState, Step, save

EXIT_FOUND, EXIT_UNDECIDED, EXIT_INTERRUPTED = 0, 1, 130

# (ref, the step's own directory) -> (verdict, reason, environment described)
Judge = Callable[[str, Path], tuple[str, str, str, float]]


@final
@dataclasses.dataclass(frozen=True)
class Outcome:
    """How a bisection ended: its last state and decision, or interrupted."""

    state: BisectState
    decision: Decision | None
    interrupted: bool = False

    @property
    def exit_code(self) -> int:
        if self.interrupted:
            return EXIT_INTERRUPTED
        return EXIT_FOUND if isinstance(self.decision, Found) else EXIT_UNDECIDED


def bisect(state: BisectState, out: Path, judge: Judge, log: Log, *, verify_ends: bool = False) -> Outcome:
    """Test refs until the first bad one is known or cannot be; ``judge`` runs one step.

    ``verify_ends``: test the good and the bad ref first (else they are taken as given, as git bisect does).
    """
    ends = (state.refs[0], state.refs[-1]) if verify_ends else ()
    try:
        for ref, said in zip(ends, ("good", "bad"), strict=False):
            if ref not in state.verdicts():
                state = _record(state, ref, f"checking that the {said} ref {state.label(ref)} is {said}", out, judge, log)
        decision = decide(state.refs, state.verdicts())
        while isinstance(decision, Next):
            state = _record(state, decision.ref, f"about {decision.steps_left} left: testing {state.label(decision.ref)}, "
                            f"between {state.label(decision.lo)} (good) and {state.label(decision.hi)} (bad)", out, judge, log)
            decision = decide(state.refs, state.verdicts())
    except KeyboardInterrupt:
        log(f"interrupted: {len(state.steps)} step(s) kept in {out / STATE_FILE}; run the same command again to resume")
        report.write(out, state, None)
        return Outcome(state, None, interrupted=True)
    save(out / STATE_FILE, state, {"conclusion": report.conclusion(state, decision)})
    report.write(out, state, decision)
    return Outcome(state, decision)


def _record(state: BisectState, ref: str, what: str, out: Path, judge: Judge, log: Log) -> BisectState:
    """Judge ``ref``, add the step to the state and save it before anything else happens."""
    number = len(state.steps) + 1
    log(f"step {number} ({what})")
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    step_dir = out / "steps" / f"{number:02d}-{_dirname(state.label(ref))}"
    t0 = time.monotonic()
    try:
        verdict, reason, env, env_s = judge(ref, step_dir)
    except CandidateError as exc:
        verdict, reason, env, env_s = "skip", f"environment not made: {exc}", "", time.monotonic() - t0
    total = time.monotonic() - t0
    run_dir = str(step_dir) if step_dir.exists() else ""
    step = Step(ref, verdict, reason, env, round(env_s, 2), round(total - env_s, 2), run_dir, started)
    state = state.with_step(step)
    save(out / STATE_FILE, state)
    log(report.step_line(state, step))
    return state


def _dirname(label: str) -> str:
    return "".join(c if c.isalnum() or c in "._=-" else "_" for c in label)[:60]


def timed(fn: Callable[[], Path]) -> tuple[Path, float]:
    """Run ``fn`` and return its result with the seconds it took."""
    t0 = time.monotonic()
    return fn(), time.monotonic() - t0
