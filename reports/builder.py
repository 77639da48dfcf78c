"""Render a run directory into index.html, summary.md and junit.xml (jinja2, autoescape on).

``build_report(run_dir)`` is what the plugin calls at the end of ``harness run``; it reads the
policy, waivers and history retention from the environment (``HARNESS_POLICY``,
``HARNESS_WAIVERS``, ``HARNESS_BASELINE``, ``HARNESS_HISTORY``, ``HARNESS_HISTORY_KEEP``).
``harness report`` calls ``render_run`` with explicit ``ReportInputs`` and gates on the verdict.
Sections other plugins add (harness/reports/sections.py) come in as a callable from the plugin,
which asks its ``pytest_harness_report_sections`` hook; without a pytest session there are none.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import html
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, final

import jinja2
from markupsafe import Markup

from harness.errors import ConfigError
from harness.redact import Redactor
from harness.reports.bisectrows import runtime_versions
from harness.reports.data import ReportData, assemble
from harness.reports.diff import diff_runs
from harness.reports.environment import build_environment
from harness.reports.policy import Policy
from harness.reports.portability import read_portability
from harness.reports.sections import Section, SectionSource, gather
from harness.reports.signoff import Finding, evaluate
from harness.reports.store import (
    RunRef,
    StoredRun,
    find_baseline,
    history_runs,
    load_light,
    load_run,
    prune_history,
    read_manifest,
    require_results,
)
from harness.reports.trends import (
    CACHE_DIR,
    HistoryScan,
    RunSummary,
    build_trends,
    results_stamp,
    store_summary,
    summarize_records,
)
from harness.reports.waivers import load_waivers

TEMPLATES = Path(__file__).resolve().parent / "templates"
TREND_RUNS = 30
MD_ROW_LIMIT = 50


def _bytecode_cache() -> jinja2.BytecodeCache | None:
    """Compiled templates cached beside the harness's other caches, ``~/.cache/llm-harness/templates``
    (checked by source hash; nothing lands in /tmp); none if that is unusable."""
    where = Path.home() / ".cache" / "llm-harness" / "templates"
    try:
        where.mkdir(parents=True, exist_ok=True)
        return jinja2.FileSystemBytecodeCache(str(where))
    except (OSError, RuntimeError):
        return None


_BYTECODE = _bytecode_cache()
_CONTROL = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")  # ANSI colours; not valid XML
_MD_SPECIAL = re.compile(r"([\\`*_\[\]|#~])")


@final
@dataclasses.dataclass(frozen=True)
class ReportInputs:
    """What to render and against what: baseline, policy, waivers, history and its retention."""

    run_dir: Path
    baseline: Path | None = None
    policy: Path | None = None
    waivers: Path | None = None
    history: Path | None = None
    keep: int | None = None
    today: dt.date | None = None
    environ: Mapping[str, str] = dataclasses.field(default_factory=lambda: dict(os.environ))
    config_error: str | None = None  # set by build_report when the policy/waivers could not be read

    @classmethod
    def from_env(cls, run_dir: Path, environ: Mapping[str, str] | None = None, **given: Any) -> ReportInputs:
        """Explicit arguments first, then ``HARNESS_*`` variables, then the defaults."""
        env = dict(os.environ if environ is None else environ)
        for field, var in (("baseline", "HARNESS_BASELINE"), ("policy", "HARNESS_POLICY"),
                           ("waivers", "HARNESS_WAIVERS"), ("history", "HARNESS_HISTORY")):
            if given.get(field) is None and env.get(var):
                given[field] = Path(env[var])
        if given.get("keep") is None and env.get("HARNESS_HISTORY_KEEP"):
            try:
                given["keep"] = int(env["HARNESS_HISTORY_KEEP"])
            except ValueError:
                raise ConfigError(f"HARNESS_HISTORY_KEEP must be a whole number of runs, got "
                                  f"{env['HARNESS_HISTORY_KEEP']!r}; e.g. HARNESS_HISTORY_KEEP=30") from None
        return cls(run_dir=run_dir, environ=env, **{k: v for k, v in given.items() if v is not None})

    @property
    def history_dir(self) -> Path:
        return self.history or self.run_dir.parent / "history"


@final
@dataclasses.dataclass(frozen=True)
class ReportOutcome:
    """The files written and the verdict, for the CLI's exit code."""

    index: Path
    summary: Path
    junit: Path
    verdict: str
    headline: str
    data: ReportData
    redactor: Redactor


def build_report(run_dir: Path) -> Path:
    """Write ``run_dir/index.html`` (and summary.md, junit.xml); returns the HTML's path."""
    return build_outcome(run_dir).index


def build_outcome(run_dir: Path, sections: SectionSource | None = None) -> ReportOutcome:
    """Render ``run_dir``'s report with the environment's policy; the verdict gates the run's exit code.

    At the end of ``harness run`` a wrong HARNESS_POLICY / HARNESS_WAIVERS must not lose the
    report: it is rendered with the default policy and NO-GO, the error as its first blocker.
    (``harness report`` refuses instead, exit status 2.) ``sections`` gives the report's extra sections.
    """
    try:
        return render_run(ReportInputs.from_env(run_dir), sections)
    except ConfigError as exc:
        if not (run_dir / "results.jsonl").is_file():
            raise
        return render_run(ReportInputs(run_dir=run_dir, config_error=str(exc)), sections)


def render_run(inputs: ReportInputs, sections: SectionSource | None = None) -> ReportOutcome:
    """Load the run, its baseline, policy and waivers; write the three outputs (with ``sections``'s
    extra sections in the HTML)."""
    data, redactor = build_data(inputs)
    run_dir = inputs.run_dir
    outputs = {"index.html": _render(_environment(redactor, "html"), "index.html.jinja2", data,
                                     sections=extra_sections(sections, data)),
               "summary.md": _render(_environment(redactor, "md"), "summary.md.jinja2", data,
                                     report_path=str(run_dir / "index.html"), limit=MD_ROW_LIMIT),
               "junit.xml": _render(_environment(redactor, "xml"), "junit.xml.jinja2", data)}
    for name, text in outputs.items():
        tmp = run_dir / f".{name}.tmp"
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(run_dir / name)
    return ReportOutcome(run_dir / "index.html", run_dir / "summary.md", run_dir / "junit.xml",
                         data.signoff.verdict, data.signoff.headline, data, redactor)


def build_data(inputs: ReportInputs | Path) -> tuple[ReportData, Redactor]:
    """Everything the templates show, and the redactor every rendered string passes through."""
    if isinstance(inputs, Path):
        inputs = ReportInputs.from_env(inputs)
    policy = Policy.from_file(inputs.policy) if inputs.policy else Policy.default()
    waivers = load_waivers(inputs.waivers) if inputs.waivers else ()
    history_dir = inputs.history_dir
    if inputs.keep is not None:
        prune_history(history_dir, inputs.keep)
    require_results(inputs.run_dir)
    current_id = read_manifest(inputs.run_dir).run_id
    refs = [r for r in history_runs(history_dir, exclude=[inputs.run_dir]) if r.manifest.run_id != current_id]
    recent = [(r.path, r.manifest.run_id, r.manifest.started or "") for r in refs[-(TREND_RUNS - 1):]]
    cache_dir = trend_cache_dir(history_dir)
    with HistoryScan(recent, cache_dir) as scan:  # uncached history is read in the background
        run = load_run(inputs.run_dir)
        baseline, why = _baseline(run, inputs, refs, history_dir)
        failing = {r.cell for r in run.records if r.status in ("fail", "error")}
        diff = None if baseline is None else diff_runs(
            run.records, baseline.records, baseline_id=baseline.run_id, baseline_path=str(baseline.path),
            chosen_because=why, overrides=policy.tolerances,
            baseline_versions=runtime_versions(Path(baseline.path) / "results.jsonl", failing))
        today = inputs.today or dt.datetime.now(dt.timezone.utc).date()
        signoff = evaluate(run.records, run.manifest.status, policy, waivers, today)
        if inputs.config_error:
            signoff = signoff.with_blocker(Finding("config", "", "", f"the report's configuration is invalid: {inputs.config_error}"))
        portability = read_portability(inputs.run_dir, run.manifest.run_id)
        if portability is not None and portability.failing:  # a new device-only import breaks a device: it blocks
            signoff = signoff.with_blocker(Finding(
                "portability", "", "", f"{portability.failing} new portability finding(s) that break a platform: "
                "see the Portability section; fix them or accept them into the baseline"))
        past = scan.result()
    redactor = Redactor.from_sources(inputs.environ, run.manifest.raw, *(r.fingerprint for r in run.records))
    trends = build_trends([*past, _current_summary(run, cache_dir)])
    manifest = redactor.value(dict(run.manifest.raw))
    data = assemble(run, signoff, diff, why, trends, build_environment(run.manifest.raw, run.records, redactor), manifest)
    data = dataclasses.replace(data, portability=portability)
    return data, redactor


def extra_sections(source: SectionSource | None, data: ReportData) -> tuple[Section, ...]:
    """The extra sections for ``data``; a source that fails leaves a note saying so, never a lost report."""
    try:
        return gather(source, data)
    except Exception as exc:  # a plugin's bug: the report of the run still renders
        return (Section.note("Report sections", f"a plugin's pytest_harness_report_sections failed "
                                                f"({type(exc).__name__}: {exc}); its sections are missing: fix "
                                                "that plugin and render again with `harness report RUN_DIR`"),)


def _baseline(run: StoredRun, inputs: ReportInputs, refs: list[RunRef], history_dir: Path) -> tuple[StoredRun | None, str]:
    if inputs.baseline is not None:
        return load_light(inputs.baseline), "given with --baseline"
    path, why = find_baseline(run, history_dir, refs)
    return (load_light(path) if path is not None else None), why


def trend_cache_dir(history_dir: Path) -> Path | None:
    """``<history>/.trend-cache`` when the history exists; None (no cache, nothing written) before the first archive."""
    return history_dir / CACHE_DIR if history_dir.is_dir() else None


def _current_summary(run: StoredRun, cache_dir: Path | None) -> RunSummary:
    """This run's summary, cached so that once archived into the history it is not read again."""
    summary = summarize_records(run.run_id, run.manifest.started or "", run.records)
    store_summary(cache_dir, summary, results_stamp(run.path / "results.jsonl"))
    return summary


def _environment(redactor: Redactor, kind: str) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=kind != "md", finalize=_finalizer(redactor),
        bytecode_cache=_BYTECODE, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
    )
    env.filters["num"] = _num
    env.filters["md"] = _md_filter(redactor)
    env.filters["code"] = lambda v: "`" + redactor.text(str(v)).replace("`", "'") + "`"
    return env


def _finalizer(redactor: Redactor) -> Callable[[Any], Any]:
    """Every ``{{ expression }}`` passes through here before escaping: secrets masked, control characters dropped."""
    seen: dict[str, str] = {}

    def finalize(value: Any) -> Any:
        if value.__class__ is str:
            done = seen.get(value)
            if done is None:
                done = redactor.text(value)
                seen[value] = done = _CONTROL.sub("", done)
            return done
        if value is None:
            return ""
        if isinstance(value, str) and not isinstance(value, Markup):  # str subclasses other than Markup
            return finalize(str(value))
        return value

    return finalize


def _render(env: jinja2.Environment, template: str, data: ReportData, **extra: Any) -> str:
    return env.get_template(template).render(data=data, **extra)


def _md_filter(redactor: Redactor) -> Callable[[Any], str]:
    def md(value: Any, limit: int = 300) -> str:
        """Text made inert for Markdown: one line, HTML escaped, markup characters backslashed."""
        text = " ".join(redactor.text(str(value)).split())
        if len(text) > limit:
            text = text[: limit - 1] + "…"
        return _MD_SPECIAL.sub(r"\\\1", html.escape(text, quote=False))

    return md


def _num(value: object, digits: int = 3) -> str:
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return "" if value is None else str(value)
