"""What a bisection prints and leaves in its directory: one line per step, the answer, ``bisect.md``."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.bisect.search import Decision, Found, Undecided
from harness.bisect.state import BisectState, Step

REPORT_FILE = "bisect.md"


def step_line(state: BisectState, step: Step) -> str:
    """``  toyrt==1.2: bad — weight_parity: fail: … (env 3.1 s, check 6.0 s)``."""
    return (f"  {state.label(step.ref)}: {step.verdict} — {step.reason} "
            f"(env {step.env_s:.1f} s, {'check' if step.verdict != 'skip' else 'try'} {step.probe_s:.1f} s)")


def conclusion(state: BisectState, decision: Decision) -> dict[str, Any]:
    """The answer as JSON: first bad and last good, or why there is none and the range left."""
    if isinstance(decision, Found):
        return {"status": "found", "first_bad": decision.first_bad, "last_good": decision.last_good,
                "first_bad_label": state.label(decision.first_bad), "last_good_label": state.label(decision.last_good)}
    if isinstance(decision, Undecided):
        return {"status": "undecided", "reason": decision.reason, "first_bad_among": list(decision.first_bad_among),
                "last_good": decision.last_good}
    return {"status": "running"}


def summary_lines(state: BisectState, decision: Decision | None) -> list[str]:
    """The closing lines: the answer first, then the steps in the order they ran."""
    if isinstance(decision, Found):
        head = [f"first bad: {state.label(decision.first_bad)}", f"last good: {state.label(decision.last_good)}"]
    elif isinstance(decision, Undecided):
        among = ", ".join(state.label(r) for r in decision.first_bad_among)
        head = [f"undecided: {decision.reason}"] + ([f"first bad is one of: {among}"] if among else [])
    else:
        head = [f"interrupted after {len(state.steps)} step(s); run the same command again to resume"]
    total = sum(s.env_s + s.probe_s for s in state.steps)
    head.append(f"{len(state.steps)} step(s) over {len(state.refs)} ref(s), {total:.1f} s in steps:")
    return head + [step_line(state, s) for s in state.steps]


def write(out: Path, state: BisectState, decision: Decision | None) -> Path:
    """``bisect.md``: the answer, then every step with its environment, run directory and timings."""
    ident = state.identity
    lines = [f"# harness bisect: {ident.target}", "",
             f"- mode: {ident.mode}; checks: {', '.join(ident.checks) or '-'}; candidates from {ident.origin}",
             f"- environments layered on: {ident.base or 'nothing (standalone venvs)'}",
             f"- refs from good to bad: {len(state.refs)} ({state.label(state.refs[0])} … {state.label(state.refs[-1])})",
             "", "## Answer", ""]
    lines += [f"    {ln}" for ln in summary_lines(state, decision)[:2]]
    lines += ["", "## Steps", "", "| # | ref | verdict | reason | environment | env s | check s | run |",
              "|---|---|---|---|---|---|---|---|"]
    for i, s in enumerate(state.steps, 1):
        cells = [str(i), state.label(s.ref), s.verdict, s.reason, s.env or "-", f"{s.env_s:.1f}", f"{s.probe_s:.1f}",
                 s.run_dir or "-"]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    path = out / REPORT_FILE
    out.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


