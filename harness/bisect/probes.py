"""Judge one candidate: boot only the cell and run only its check(s), or run the static portability check.

A candidate is ``good`` (the checks pass / the finding is absent), ``bad`` (a check fails, or a
request to the runtime fails / the finding is present) or ``skip`` (its environment could not be
made, or the runtime did not boot: broken for a reason of its own, as ``git bisect skip``).
"""
from __future__ import annotations

import dataclasses
import json
import signal
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, final

from harness.bisect.refs import BisectInputError
from harness.boot.procgroup import stop_group
from harness.config.matrix import DEVICES, DTYPE_SHORT, Cell
from harness.errors import PREFLIGHT_REASON

BOOT_CLASSES = ("boot-crash", "boot-timeout", PREFLIGHT_REASON.rstrip(":"))  # the cell never came up: skip
EXIT_USAGE, EXIT_INTERRUPTED = 2, 130
STOP_GRACE_S = 30.0  # `harness run` stops within 10 s of SIGINT; then the whole group is killed


def parse_cell_id(cell_id: str, runtimes: Iterable[str]) -> Cell:
    """``hf-cpu-tiny-llama-disk`` -> Cell(hf, cpu, tiny-llama, disk); dtype and tp only when in the id.

    The model is what lies between the device and the offload mode, so model names may hold ``-``.
    """
    parts = cell_id.split("-")
    known = list(runtimes)
    if len(parts) < 4 or parts[0] not in known or parts[1] not in DEVICES:
        raise BisectInputError(f"--cell {cell_id!r} is not a cell id RUNTIME-DEVICE-MODEL-OFFLOAD[-DTYPE][-tpN] with "
                               f"RUNTIME in {', '.join(known)} and DEVICE in {', '.join(DEVICES)}; copy the id from the "
                               "report, e.g. hf-cpu-tiny-llama-none")
    rest, tp, dtype = parts[2:], 1, "float32"
    if len(rest) > 2 and rest[-1].startswith("tp") and rest[-1][2:].isdigit():
        tp, rest = int(rest[-1][2:]), rest[:-1]
    by_short = {v: k for k, v in DTYPE_SHORT.items()}
    if len(rest) > 2 and rest[-1] in by_short:
        dtype, rest = by_short[rest[-1]], rest[:-1]
    return Cell(parts[0], parts[1], "-".join(rest[:-1]), rest[-1], dtype, tp)


def classify(records: Sequence[Mapping[str, Any]], cell_id: str, checks: Sequence[str]) -> tuple[str, str]:
    """The verdict of one cell's run and its reason, from its results.jsonl records (first attempt).

    Any failing check, or an error after the boot (a request the runtime broke on), is bad; a
    cell that did not come up (boot-crash, boot-timeout, preflight) or was not run is a skip.
    """
    mine = {r["check"]: r for r in records if r.get("cell") == cell_id and r.get("check") in checks
            and r.get("attempt", 1) == 1}
    missing = [c for c in checks if c not in mine]
    bad = [r for r in mine.values() if r["status"] == "fail"
           or (r["status"] == "error" and not str(r.get("reason", "")).startswith(BOOT_CLASSES))]
    if bad:
        return "bad", "; ".join(f"{r['check']}: {r['status']}: {_short(r.get('reason', ''))}" for r in bad)
    broken = [r for r in mine.values() if r["status"] != "pass"]
    if broken:
        return "skip", "; ".join(f"{r['check']}: {r['status']}: {_short(r.get('reason', ''))}" for r in broken)
    if missing:
        return "skip", f"no result for {', '.join(missing)} (the run stopped early; see its log)"
    return "good", f"{', '.join(checks)} passed"


def _short(text: str, limit: int = 200) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[:limit - 1] + "…"


@final
@dataclasses.dataclass(frozen=True)
class CellProbe:
    """Boots one cell with a candidate's interpreter through `harness run`, only the chosen checks."""

    cell: Cell
    checks: tuple[str, ...]
    run_args: tuple[str, ...] = ()
    timeout_s: float = 3600.0

    def argv(self, out: Path, python: str | None, extra: Sequence[str]) -> list[str]:
        c = self.cell
        cmd = [sys.executable, "-m", "harness.cli", "run", "--out", str(out), "--runtimes", c.runtime,
               "--devices", c.device, "--models", c.model, "--offload-modes", c.offload, "--dtypes", c.dtype,
               "--tp", str(c.tp), "--retries", "0", "--no-progress", *self.run_args]
        if python:
            cmd += ["--runtime-python", f"{c.runtime}={python}"]
        return cmd + ["--", *extra]

    def collected_checks(self, out: Path) -> tuple[str, ...]:
        """The cell's checks as `harness run` would collect them; bad input (an unknown model) raises."""
        done = subprocess.run(self.argv(out, None, ["--collect-only"]), capture_output=True, text=True)
        if done.returncode == EXIT_USAGE:
            tail = "\n".join(ln for ln in (done.stdout + done.stderr).splitlines() if "ERROR" in ln or "error" in ln)
            raise BisectInputError(f"`harness run` refuses the cell {self.cell.id}: {tail.strip() or 'bad input'}")
        prefix = f"[{self.cell.id}-"
        found = [ln.rsplit(prefix, 1)[1].rstrip("]") for ln in done.stdout.splitlines() if prefix in ln]
        if not found:
            raise BisectInputError(f"the cell {self.cell.id} is not in the matrix these options make (excluded by "
                                   "the matrix file?); check the id against the report, and the options after --")
        unknown = [c for c in self.checks if c not in found]
        if unknown:
            raise BisectInputError(f"--check {', '.join(unknown)}: the cell {self.cell.id} has no such check; "
                                   f"its checks: {', '.join(found)}")
        return tuple(self.checks or found)

    def judge(self, python: Path, out: Path) -> tuple[str, str]:
        """Run the cell's checks with ``python`` as the runtime's interpreter, results into ``out``."""
        out.mkdir(parents=True, exist_ok=True)
        keep = " or ".join(f"{self.cell.id}-{c}" for c in self.checks)
        code = run_child(self.argv(out, str(python), ["-k", keep]), out / "bisect-step.log", self.timeout_s)
        if code is None:
            return "skip", f"`harness run` took longer than {self.timeout_s:.0f} s (stopped); see {out / 'bisect-step.log'}"
        if code == EXIT_USAGE:
            raise BisectInputError(f"`harness run` refused its input (exit 2); see {out / 'bisect-step.log'}")
        if code == EXIT_INTERRUPTED:  # interrupted from outside: no verdict, the bisection stops as on Ctrl-C
            raise KeyboardInterrupt
        results = out / "results.jsonl"
        records = [json.loads(ln) for ln in results.read_text().splitlines() if ln.strip()] if results.exists() else []
        return classify(records, self.cell.id, self.checks)


def run_child(argv: list[str], log_path: Path, timeout_s: float) -> int | None:
    """Run ``argv`` in its own process group, output to ``log_path``; None when it ran out of time.

    Ctrl-C reaches only the bisector; it passes one SIGINT on, so the child tears its runtime
    down as `harness run` does on Ctrl-C, and waits for that before re-raising.
    """
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            return proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            stop_group(proc, signal.SIGINT, STOP_GRACE_S)
            return None
        except KeyboardInterrupt:
            stop_group(proc, signal.SIGINT, STOP_GRACE_S)
            raise


@final
@dataclasses.dataclass(frozen=True)
class PortabilityProbe:
    """The static portability check on a candidate's source: is the finding ``key`` there?"""

    key: str
    runtime: str
    profile_file: str | None = None
    packages: tuple[str, ...] = ()

    def judge(self, root: Path) -> tuple[str, str]:
        from harness.portability.check import PortabilityOptions, run_portability
        from harness.portability.locate import RuntimeLocateError

        try:
            options = PortabilityOptions.create(runtime=self.runtime, source=str(root), probe=False,
                                                profile_file=self.profile_file, packages=self.packages)
            result = run_portability(options)
        except (RuntimeLocateError, ValueError, FileNotFoundError, OSError) as exc:
            return "skip", f"the portability check could not run on {root}: {exc}"
        hits = [f for f in result["findings"] if f.get("key") == self.key]
        if hits:
            f = hits[0]
            return "bad", f"{f['path']}:{f['line']} {f['rule']} {f['symbol']} on {', '.join(f['platforms'])}: {_short(f['hint'])}"
        return "good", f"absent ({len(result['findings'])} other finding(s) in {result['analysis']['files']} file(s))"
