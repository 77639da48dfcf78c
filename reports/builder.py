"""Render a run directory into one self-contained HTML file (jinja2, autoescape on)."""
from __future__ import annotations

import json
from pathlib import Path

import jinja2

from reports.data import ReportData, build_data

TEMPLATES = Path(__file__).resolve().parent / "templates"


def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=jinja2.select_autoescape(["html", "jinja2"], default=True),
        undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
    )
    env.filters["tojson_pretty"] = lambda v: json.dumps(v, indent=2, sort_keys=True, default=str)
    env.filters["num"] = _num
    return env


def render(data: ReportData) -> str:
    return environment().get_template("index.html.jinja2").render(data=data)


def build_report(run_dir: Path) -> Path:
    """Write ``run_dir/index.html`` from the run's manifest and results; returns its path."""
    out = run_dir / "index.html"
    tmp = run_dir / ".index.html.tmp"
    tmp.write_text(render(build_data(run_dir)), encoding="utf-8")
    tmp.replace(out)
    return out


def _num(value: object, digits: int = 3) -> str:
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return "" if value is None else str(value)
