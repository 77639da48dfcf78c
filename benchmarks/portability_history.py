"""Validate the static portability check against real bugs that shipped in PyPI releases.

    python benchmarks/portability_history.py                      # every case in portability_history_cases.yaml
    python benchmarks/portability_history.py --only sglang-dsv4-mhc-tilelang --checker-arg=--strict
    python benchmarks/portability_history.py --checker-arg=--package=sglang   # scan the whole distribution

Each case names a release that shipped a portability bug (``buggy``), the first release without
it (``fixed``) and the file and line of the offending import. For every release named, the wheel
is downloaded once (``pip download --no-deps``) and unpacked under ~/.cache/llm-harness/wheels;
the harness's current check runs on the unpacked source (``harness portability --source DIR
--no-probe --json``, nothing installed). A case is **caught** when a finding in ``buggy`` sits in
the case's file, names the same import (or its line) and covers one of the case's platforms; it
is a **false alarm** when such a finding is still there in ``fixed``. A missed case says what the
check would have needed (file not scanned, package declared importable there, function-level
import, ...). Prints one row per case and ``caught X / N, false alarms Y``, and writes JSON
(default benchmarks/results/<time>-portability-history.json).
"""
from __future__ import annotations

import argparse
import ast
import dataclasses
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, get_args

import yaml

if __package__ in (None, ""):  # run as a script: make the repo importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness.portability.platforms import PLATFORMS, ordered, platform_set
from harness.portability.profile import PROFILES

ROOT = Path(__file__).resolve().parent.parent
CASES_FILE = Path(__file__).resolve().parent / "portability_history_cases.yaml"
WHEEL_CACHE = Path.home() / ".cache" / "llm-harness" / "wheels"
SCHEMA = "portability-history-cases/1"
RESULT_SCHEMA = "harness.portability.history/1"
LINE_SLACK = 3

When = Literal["import", "call"]
Mechanism = Literal["direct-import", "transitive", "overbroad-guard", "not-installed", "missing-name",
                    "unscanned", "call-time"]
Attribution = Literal["confirmed", "probable", "unidentified"]
MECHANISMS: tuple[str, ...] = get_args(Mechanism)
_REQUIRED = ("id", "runtime", "buggy", "fixed", "file", "line", "symbol", "platforms", "mechanism", "evidence")


@dataclasses.dataclass(frozen=True)
class HistoryCase:
    """One released portability bug: where it was, on which platforms, and the release that fixed it."""

    id: str
    runtime: str
    buggy: str
    fixed: str
    file: str
    line: int
    symbol: str
    platforms: tuple[str, ...]
    mechanism: tuple[str, ...]
    evidence: str
    when: When = "import"
    statement: str = ""
    guard: str = ""
    entry: str = ""
    chain: tuple[str, ...] = ()
    attribution: Attribution = "confirmed"
    note: str = ""

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], where: str) -> HistoryCase:
        """Validate one YAML entry; errors name the entry, the field, the value and the fix."""
        if not isinstance(data, Mapping):
            raise ValueError(f"{where}: a case must be a mapping of fields, got {data!r}")
        missing = [k for k in _REQUIRED if k not in data]
        if missing:
            raise ValueError(f"{where}: missing field(s) {missing}; every case needs {list(_REQUIRED)}")
        where = f"{where} ({data['id']})"
        line = data["line"]
        if not isinstance(line, int) or isinstance(line, bool) or line < 1:
            raise ValueError(f"{where}: line must be a positive integer (1-based), got {line!r}")
        if data["runtime"] not in PROFILES.names():
            raise ValueError(f"{where}: runtime {data['runtime']!r} has no portability profile; "
                             f"use one of {list(PROFILES.names())}")
        platforms = ordered(platform_set(_strings(data["platforms"], f"{where}: platforms"), what=f"{where}: platforms"))
        if not platforms:
            raise ValueError(f"{where}: platforms is empty; name the platforms the bug breaks on, from {list(PLATFORMS)}")
        mechanism = tuple(_strings(data["mechanism"], f"{where}: mechanism"))
        unknown = sorted(set(mechanism) - set(MECHANISMS))
        if unknown or not mechanism:
            raise ValueError(f"{where}: mechanism must be a non-empty list from {list(MECHANISMS)}, got {list(mechanism)}")
        when = data.get("when", "import")
        if when not in get_args(When):
            raise ValueError(f"{where}: when must be 'import' or 'call', got {when!r}")
        attribution = data.get("attribution", "confirmed")
        if attribution not in get_args(Attribution):
            raise ValueError(f"{where}: attribution must be one of {list(get_args(Attribution))}, got {attribution!r}")
        if str(data["buggy"]) == str(data["fixed"]):
            raise ValueError(f"{where}: buggy and fixed are the same release {data['buggy']!r}")
        if not str(data["file"]).endswith(".py") or str(data["file"]).startswith("/"):
            raise ValueError(f"{where}: file must be a .py path inside the wheel (e.g. sglang/srt/x.py), "
                             f"got {data['file']!r}")
        return cls(
            id=str(data["id"]), runtime=str(data["runtime"]), buggy=str(data["buggy"]), fixed=str(data["fixed"]),
            file=str(data["file"]), line=line, symbol=str(data["symbol"]), platforms=platforms,
            mechanism=mechanism, evidence=str(data["evidence"]), when=when, statement=str(data.get("import", "")),
            guard=str(data.get("guard", "")), entry=str(data.get("entry", "")),
            chain=tuple(_strings(data.get("chain", []), f"{where}: chain")), attribution=attribution,
            note=str(data.get("note", "")),
        )

    @property
    def module(self) -> str:
        """Dotted module of ``file``: ``sglang/srt/layers/mhc.py`` -> ``sglang.srt.layers.mhc``."""
        return self.file.removesuffix(".py").removesuffix("/__init__").replace("/", ".")


def _strings(value: Any, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{where} must be a list of strings, got {value!r}")
    return value


def load_cases(path: Path = CASES_FILE) -> tuple[HistoryCase, ...]:
    """Read and validate the case file; ids must be unique."""
    try:
        data = yaml.safe_load(Path(path).read_text())
    except OSError as exc:
        raise ValueError(f"cannot read case file {str(path)!r}: {exc.strerror}") from None
    if not isinstance(data, Mapping) or data.get("schema") != SCHEMA or not isinstance(data.get("cases"), list):
        raise ValueError(f"{path}: expected a mapping with schema: {SCHEMA} and a list under cases:")
    cases = tuple(HistoryCase.from_mapping(c, f"{path}: cases[{i}]") for i, c in enumerate(data["cases"]))
    seen: set[str] = set()
    for case in cases:
        if case.id in seen:
            raise ValueError(f"{path}: case id {case.id!r} appears twice; ids must be unique")
        seen.add(case.id)
    return cases


def _related(a: str, b: str) -> bool:
    """One dotted name is the other or a prefix of it: ``sgl_kernel`` ~ ``sgl_kernel.silu_and_mul``."""
    return a == b or a.startswith(b + ".") or b.startswith(a + ".")


def matches(case: HistoryCase, finding: Mapping[str, Any], *, use_line: bool = True) -> bool:
    """Whether ``finding`` reports this case's bug: same file, same import (or line), a shared platform."""
    if finding.get("path") != case.file or not set(finding.get("platforms", ())) & set(case.platforms):
        return False
    symbol = str(finding.get("symbol", ""))
    if _related(symbol, case.symbol):
        return True
    near = use_line and abs(int(finding.get("line", 0)) - case.line) <= LINE_SLACK
    return near and (symbol.split(".")[0] == case.symbol.split(".")[0] or int(finding.get("line", 0)) == case.line)


def reported_via_chain(case: HistoryCase, finding: Mapping[str, Any]) -> bool:
    """A finding elsewhere (e.g. at the first link of an import chain) that names this case's module."""
    if finding.get("path") == case.file or not set(finding.get("platforms", ())) & set(case.platforms):
        return False
    text = f"{finding.get('hint', '')} {finding.get('symbol', '')}"
    return case.module in text or case.file in text


@dataclasses.dataclass(frozen=True)
class CheckRun:
    """The portability check's result on one unpacked release."""

    version: str
    packages: tuple[str, ...]
    findings: tuple[Mapping[str, Any], ...]
    seconds: float


def run_check(source: Path, runtime: str, checker_args: Sequence[str] = (), *, scratch: Path | None = None,
              timeout: float = 900.0) -> CheckRun:
    """Run ``python -m harness.portability --source DIR --no-probe --json`` on an unpacked release.

    The JSON goes to a temporary directory under ``scratch`` (default: beside ``source``), removed after.
    """
    with tempfile.TemporaryDirectory(prefix="porthist-", dir=scratch or source.parent) as tmp:
        out = Path(tmp) / "result.json"
        command = [sys.executable, "-m", "harness.portability", "--runtime", runtime, "--source", str(source),
                   "--no-probe", "--json", str(out), *checker_args]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
        start = time.monotonic()
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env, check=False)
        if done.returncode not in (0, 1) or not out.exists():
            tail = (done.stderr.strip() or done.stdout.strip()).splitlines()[-3:]
            raise RuntimeError(f"portability check failed on {source} (exit {done.returncode}): "
                               f"{' | '.join(tail) or 'no output'}; command: {' '.join(command)}")
        result = json.loads(out.read_text())
    return CheckRun(str(result.get("version")), tuple(result.get("packages", ())),
                    tuple(result.get("findings", ())), round(time.monotonic() - start, 2))


def release_source(runtime: str, version: str, cache: Path = WHEEL_CACHE) -> Path:
    """The unpacked wheel of ``runtime==version`` (downloaded and unpacked on first use)."""
    distribution = PROFILES.get(runtime).distribution
    target = cache / f"{distribution}-{version}"
    top = PROFILES.get(runtime).top_package
    if (target / top).is_dir():
        return target
    downloads = cache / "downloads" / f"{distribution}-{version}"
    downloads.mkdir(parents=True, exist_ok=True)
    wheels = sorted(downloads.glob("*.whl"))
    if not wheels:
        command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary", ":all:",
                   f"{distribution}=={version}", "-d", str(downloads)]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        wheels = sorted(downloads.glob("*.whl"))
        if done.returncode != 0 or not wheels:
            tail = done.stderr.strip().splitlines()[-1:] or ["no wheel downloaded"]
            raise RuntimeError(f"cannot download {distribution}=={version}: {tail[0]}; check the version "
                               f"(`pip index versions {distribution}`) and that PyPI is reachable")
    partial = Path(tempfile.mkdtemp(prefix=f"{target.name}.partial-", dir=cache))
    try:
        with zipfile.ZipFile(wheels[0]) as wheel:
            wheel.extractall(partial)
        partial.rename(target)  # atomic; another process may have won the race
    except OSError:
        if not (target / top).is_dir():
            raise
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return target


def _imports_of(path: Path, symbol: str, package_counts: bool = True) -> list[tuple[int, bool]]:
    """(line, unguarded at module level) of each import in ``path`` that names ``symbol``.

    ``import pkg`` counts for ``pkg.name`` only when ``package_counts`` (not when the package is
    there and only the name is missing).
    """
    if not path.is_file():
        return []
    found: list[tuple[int, bool]] = []

    def visit(node: ast.AST, bare: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.ImportFrom) and child.module and not child.level:
                module = child.module  # `from torch.cuda.memory import X` names X, not every torch.cuda.memory.*
                hit = module == symbol or module.startswith(symbol + ".") or any(
                    _related(f"{module}.{a.name}", symbol) for a in child.names)
            elif isinstance(child, ast.Import):
                hit = any(a.name == symbol or a.name.startswith(symbol + ".")
                          or package_counts and symbol.startswith(a.name + ".") for a in child.names)
            else:
                visit(child, bare and isinstance(child, (ast.Expr, ast.Assign)))
                continue
            if hit:
                found.append((child.lineno, bare))

    visit(ast.parse(path.read_text(errors="replace")), True)
    return found


def verify_case(case: HistoryCase, buggy: Path, fixed: Path) -> list[str]:
    """Problems with the case against the unpacked releases (empty when the case holds).

    ``buggy`` must import ``symbol`` at ``line`` (at module level unless ``when: call``, or under
    the case's ``guard``); ``fixed`` must not import it bare at module level any more.
    """
    problems, package_counts = [], "missing-name" not in case.mechanism
    at_line = [bare for line, bare in _imports_of(buggy / case.file, case.symbol, package_counts)
               if line == case.line]
    if not at_line:
        problems.append(f"{case.id}: {case.buggy} has no import of {case.symbol} at {case.file}:{case.line}")
    elif case.when == "import" and not case.guard and not at_line[0]:
        problems.append(f"{case.id}: the import at {case.file}:{case.line} in {case.buggy} is not bare at module "
                        f"level; give its guard or mark it when: call")
    still = [line for line, bare in _imports_of(fixed / case.file, case.symbol, package_counts) if bare]
    if still:
        problems.append(f"{case.id}: {case.fixed} still imports {case.symbol} bare at module level "
                        f"({case.file}:{still[0]}); is it really fixed there?")
    return problems


def why_missed(case: HistoryCase, run: CheckRun) -> list[str]:
    """What the check would have needed to report this case, from the case and the run."""
    reasons = []
    if not any(case.module == p or case.module.startswith(p + ".") for p in run.packages):
        reasons.append(f"{case.file} is outside the scanned packages {list(run.packages)}: scan the whole distribution")
    if case.when == "call":
        reasons.append("the import runs inside a function (model construction): the imported module's own imports "
                       "must be followed from that call site")
    profile = PROFILES.get(case.runtime)
    found = profile.available_on(case.symbol)
    top, where = case.symbol.split(".")[0], ", ".join(case.platforms)
    missing = profile.missing_on(case.symbol)
    if missing is not None and set(case.platforms) & missing[1]:
        reasons.append(f"the profile lists `{missing[0]}` as missing from the {where} build, yet no finding "
                       f"matched: see the guard and the reach")
    elif found is None and "missing-name" in case.mechanism:
        reasons.append(f"`{top}` is installed on {where} but lacks `{case.symbol}` there: list it in the "
                       f"profile's missing_names (harness/portability/builds.py) with its source")
    elif found is None:
        reasons.append(f"`{top}` is not in the accelerator list: derive per-platform packages from the "
                       f"distribution's extras (it is not installed on {where})")
    elif set(case.platforms) <= found[1]:
        reasons.append(f"the profile declares `{found[0]}` importable on {', '.join(ordered(found[1]))}, so "
                       f"`{case.symbol}` is not flagged on {where}, where it breaks: list the name that build "
                       f"lacks in the profile's missing_names, with its source")
    if case.guard:
        reasons.append(f"guard `{case.guard}` admits {', '.join(case.platforms)}")
    if "transitive" in case.mechanism and case.chain:
        reasons.append(f"reached through {' > '.join(case.chain)}")
    in_file = [f for f in run.findings if f.get("path") == case.file]
    if in_file:
        shown = ", ".join(f"{f['rule']}:{f['line']}:{f['symbol']} on {'/'.join(f['platforms'])}" for f in in_file[:3])
        reasons.append(f"findings in the file do not match (symbol, line or platforms): {shown}")
    return reasons


@dataclasses.dataclass(frozen=True)
class CaseOutcome:
    """Whether the check caught one case in ``buggy`` and still reports it in ``fixed``."""

    case: HistoryCase
    caught: bool
    via_chain: bool
    found: tuple[Mapping[str, Any], ...]
    false_alarms: tuple[Mapping[str, Any], ...]
    other_in_fixed: tuple[Mapping[str, Any], ...]
    missed_because: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (the case's fields plus the outcome)."""
        data = dataclasses.asdict(self)
        data["case"] = {**dataclasses.asdict(self.case), "import": self.case.statement}
        data["case"].pop("statement")
        return data


def evaluate(case: HistoryCase, buggy: CheckRun, fixed: CheckRun) -> CaseOutcome:
    """Compare the check's findings in the buggy and the fixed release with the case."""
    found = tuple(f for f in buggy.findings if matches(case, f))
    chained = tuple(f for f in buggy.findings if reported_via_chain(case, f))
    alarms = tuple(f for f in fixed.findings if matches(case, f, use_line=False)
                   or reported_via_chain(case, f) and f not in chained)
    other = tuple(f for f in fixed.findings if f.get("path") == case.file and f not in alarms)
    caught = bool(found or chained)
    return CaseOutcome(case, caught, bool(chained) and not found, found + chained, alarms, other,
                       () if caught else tuple(why_missed(case, buggy)))


def run_history(cases: Iterable[HistoryCase], source: Callable[[str, str], Path],
                checker_args: Sequence[str] = (), log: Callable[[str], None] = print,
                scratch: Path | None = None) -> list[CaseOutcome]:
    """Check every release the cases name (each once) and evaluate each case."""
    runs: dict[tuple[str, str], CheckRun] = {}

    def run_of(runtime: str, version: str) -> CheckRun:
        if (runtime, version) not in runs:
            path = source(runtime, version)
            runs[(runtime, version)] = run = run_check(path, runtime, checker_args, scratch=scratch)
            log(f"  checked {runtime} {version}: {len(run.findings)} finding(s) in {run.seconds:.1f}s")
        return runs[(runtime, version)]

    return [evaluate(c, run_of(c.runtime, c.buggy), run_of(c.runtime, c.fixed)) for c in cases]


def render(outcomes: Sequence[CaseOutcome]) -> str:
    """The table and the totals line."""
    lines = [f"{'case':<46} {'buggy -> fixed':<26} {'platforms':<12} {'result':<8} false-alarm"]
    for o in outcomes:
        c = o.case
        result = "caught" if o.caught else "MISSED"
        result += " (chain)" if o.via_chain else ""
        lines.append(f"{c.id:<46} {c.buggy + ' -> ' + c.fixed:<26} {','.join(c.platforms):<12} {result:<8} "
                     f"{'yes' if o.false_alarms else 'no'}")
        for f in o.found[:2]:
            lines.append(f"    found: {f['rule']} {f['path']}:{f['line']} {f['symbol']} on {'/'.join(f['platforms'])}")
        for reason in o.missed_because:
            lines.append(f"    missed: {reason}")
        for f in o.false_alarms[:2]:
            lines.append(f"    still in {c.fixed}: {f['rule']} {f['path']}:{f['line']} {f['symbol']}")
    caught = sum(o.caught for o in outcomes)
    alarms = sum(bool(o.false_alarms) for o in outcomes)
    lines.append(f"caught {caught} / {len(outcomes)}, false alarms {alarms}")
    return "\n".join(lines)


def _git_head() -> str | None:
    done = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                          check=False)
    return done.stdout.strip() or None


def main(argv: list[str] | None = None) -> int:
    """Run the history validation; 0 when it ran (whatever it found), 1 when --verify fails, 2 on bad usage."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=Path, default=CASES_FILE, help="case YAML (default: %(default)s)")
    parser.add_argument("--cache", type=Path, default=WHEEL_CACHE, help="wheel cache (default: %(default)s)")
    parser.add_argument("--only", action="append", default=[], metavar="ID", help="run only this case; repeatable")
    parser.add_argument("--checker-arg", action="append", default=[], metavar="ARG",
                        help="extra argument for `harness portability` (e.g. --checker-arg=--strict); repeatable")
    parser.add_argument("--verify", action="store_true",
                        help="only check each case against its two releases (import at file:line in buggy, "
                             "gone from module level in fixed); exit 1 when one does not hold")
    parser.add_argument("--json", type=Path, metavar="OUT",
                        help="result JSON (default: benchmarks/results/<time>-portability-history.json)")
    args = parser.parse_args(argv)
    try:
        cases = load_cases(args.cases)
    except ValueError as exc:
        print(f"portability_history: error: {exc}", file=sys.stderr)
        return 2
    unknown = sorted(set(args.only) - {c.id for c in cases})
    if unknown:
        print(f"portability_history: error: unknown case id(s) {unknown}; known: {[c.id for c in cases]}",
              file=sys.stderr)
        return 2
    chosen = [c for c in cases if not args.only or c.id in args.only]
    if args.verify:
        problems = [p for c in chosen for p in verify_case(c, release_source(c.runtime, c.buggy, args.cache),
                                                          release_source(c.runtime, c.fixed, args.cache))]
        print("\n".join(problems) or f"{len(chosen)} case(s) hold on their releases")
        return 1 if problems else 0
    print(f"portability history: {len(chosen)} case(s), checker at {_git_head() or 'unknown commit'}"
          f"{', checker args ' + ' '.join(args.checker_arg) if args.checker_arg else ''}")
    outcomes = run_history(chosen, lambda r, v: release_source(r, v, args.cache), args.checker_arg)
    print(render(outcomes))
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    out = args.json or ROOT / "benchmarks" / "results" / f"{stamp}-portability-history.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "schema": RESULT_SCHEMA, "created": stamp, "checker_commit": _git_head(),
        "checker_args": args.checker_arg, "cases_file": str(args.cases),
        "caught": sum(o.caught for o in outcomes), "total": len(outcomes),
        "false_alarms": sum(bool(o.false_alarms) for o in outcomes),
        "outcomes": [o.to_dict() for o in outcomes],
    }, indent=1) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
