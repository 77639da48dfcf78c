"""One check on a booted cell: the step the suite runs per test."""
from __future__ import annotations

from harness.boot.cellrun import RunningRuntime
from harness.boot.lifecycle import tail
from harness.checks import CHECKS
from harness.checks.base import CheckContext, CheckResult
from harness.errors import RuntimeRequestError


def run_check(rt: RunningRuntime, check_name: str) -> CheckResult:
    """Run one check; a request failure says whether the runtime process died and how."""
    check = CHECKS.get(check_name)
    ctx = CheckContext(cell=rt.cell, card=rt.card, checkpoint=rt.checkpoint, client=rt.client,
                       weight_layout=rt.weight_layout, options=rt.options)
    try:
        return check.run(ctx)
    except RuntimeRequestError as exc:
        died = rt.server.exit_description(wait_s=3.0)  # a connection drops a moment before the exit is seen
        detail = exc.detail + (f"; the runtime process died ({died})" if died else "")
        raise RuntimeRequestError(rt.cell.id, detail, rt.log_path, tail(rt.log_path)) from exc
