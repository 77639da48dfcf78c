"""Read the report back out of the HTML (tests parse the page, they do not compare strings).

Grid rows are ``<tr data-cell data-status>`` with ``<td data-check data-status data-change>``;
the verdict is ``id="verdict"`` (``data-verdict`` GO / NO-GO, ``data-title`` e.g. "GO on cpu only");
the sign-off lists carry ``data-blocker`` / ``data-waived`` / ``data-stale``; the diff rows
``data-diff`` + ``data-ref``. The first screen: coverage rows ``tr[data-axis data-value data-ran
data-planned]``, heatmap rows ``tr[data-heat-model]`` of ``td.sq[data-status]`` (with the link's
href), models that did not run ``details[data-idle-model]``; a drill-down's figures are
``dl.figures`` of ``dt``/``dd`` pairs.
"""
from __future__ import annotations

from html.parser import HTMLParser


class ReportParser(HTMLParser):
    """Collects the grid, the verdict, sign-off lists, diff rows, drill-downs and script tags."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, str] = {}
        self.results: dict[tuple[str, str], str] = {}
        self.changes: dict[tuple[str, str], str] = {}
        self.verdict = ""
        self.verdict_word = ""
        self.verdict_title = ""
        self.verdict_class = ""
        self.coverage: dict[tuple[str, str], tuple[int, int]] = {}
        self.heat: dict[str, list[tuple[str, str]]] = {}  # model -> [(status, href)] in column order
        self.heat_columns: list[str] = []
        self.idle_models: dict[str, str] = {}  # model -> the folded line's text
        self.figures: dict[str, dict[str, str]] = {}  # "cell::check" -> {label: value}
        self.links: list[str] = []
        self._heat_row: str | None = None
        self._idle: str | None = None
        self._idle_text: list[str] = []
        self._drill = ""
        self._check = ""
        self._capture: str | None = None
        self._dt = ""
        self.blockers: dict[str, str] = {}
        self.waived: list[str] = []
        self.stale: list[str] = []
        self.diff: dict[str, list[str]] = {}
        self.drift: list[tuple[str, str]] = []
        self.appeared: list[str] = []
        self.disappeared: list[str] = []
        self.drills: dict[str, bool] = {}
        self.scripts = 0
        self.external: list[str] = []
        self._row: str | None = None
        self._in_verdict = 0

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self._first_screen(tag, a)
        if tag == "script":
            self.scripts += 1
        if tag in ("link", "img", "iframe", "object", "embed", "source") or (tag == "script" and "src" in a):
            self.external.append(tag)
        if tag == "tr" and "data-cell" in a:
            self._row = a["data-cell"]
            self.rows[self._row] = a.get("data-status", "")
        if tag == "td" and "data-check" in a and self._row:
            self.results[(self._row, a["data-check"])] = a.get("data-status", "")
            if a.get("data-change"):
                self.changes[(self._row, a["data-check"])] = a["data-change"]
        if "data-blocker" in a:
            self.blockers[a["data-blocker"]] = a.get("data-kind", "")
        if "data-waived" in a:
            self.waived.append(a["data-waived"])
        if "data-stale" in a:
            self.stale.append(a["data-stale"])
        if "data-diff" in a:
            self.diff.setdefault(a["data-diff"], []).append(a.get("data-ref", ""))
        if "data-drift" in a:
            self.drift.append((a["data-drift"], a.get("data-ref", "")))
        if "data-appeared" in a:
            self.appeared.append(a["data-appeared"])
        if "data-disappeared" in a:
            self.disappeared.append(a["data-disappeared"])
        if tag == "details" and "data-drill" in a:
            self.drills[a["data-drill"]] = "open" in a
        if a.get("id") == "verdict":
            self._in_verdict = 1
            self.verdict_word = a.get("data-verdict", "")
            self.verdict_title = a.get("data-title", "")
            self.verdict_class = a.get("class", "")
        elif self._in_verdict:
            self._in_verdict += 1

    def _first_screen(self, tag: str, a: dict) -> None:
        if tag == "a" and a.get("href"):
            self.links.append(a["href"])
            if self._heat_row and self.heat[self._heat_row]:
                status, _ = self.heat[self._heat_row][-1]
                self.heat[self._heat_row][-1] = (status, a["href"])
        if tag == "tr" and "data-axis" in a:
            self.coverage[(a["data-axis"], a["data-value"])] = (int(a["data-ran"]), int(a["data-planned"]))
        if tag == "tr" and "data-heat-model" in a:
            self._heat_row = a["data-heat-model"]
            self.heat[self._heat_row] = []
        if tag == "td" and self._heat_row and "sq" in a.get("class", "").split():
            self.heat[self._heat_row].append((a.get("data-status", ""), ""))
        if tag == "th" and a.get("class") == "off":
            self.heat_columns.append("")
            self._capture = "column"
        if tag == "details" and "data-idle-model" in a:
            self._idle = a["data-idle-model"]
        if tag == "summary" and self._idle:
            self._capture = "idle"
        if tag == "details" and "data-drill" in a:
            self._drill = a["data-drill"]
        if tag == "h4" and self._drill:
            self._capture, self._check = "check", ""
        if tag in ("dt", "dd") and self._drill:
            self._capture = tag

    def handle_endtag(self, tag):
        if self._in_verdict:
            self._in_verdict -= 1
        if tag == "tr":
            self._heat_row = None
        if tag == "summary" and self._capture == "idle" and self._idle:
            self.idle_models[self._idle] = " ".join(" ".join(self._idle_text).split())
            self._idle, self._idle_text, self._capture = None, [], None
        if tag in ("th", "h4", "dt", "dd") and self._capture in ("column", "check", "dt", "dd"):
            self._capture = None

    def _captured(self, data: str) -> None:
        if self._capture == "column":
            self.heat_columns[-1] += data.strip()
        elif self._capture == "idle":
            self._idle_text.append(data)
        elif self._capture == "check" and not self._check:
            self._check = data.strip()
        elif self._capture == "dt":
            self._dt = data.strip()
        elif self._capture == "dd":
            self.figures.setdefault(f"{self._drill}::{self._check}", {})[self._dt] = data.strip()

    def handle_data(self, data):
        if self._capture:
            self._captured(data)
        if self._in_verdict and data.strip():
            self.verdict = f"{self.verdict} {data.strip()}".strip()


def parse_report(html: str) -> ReportParser:
    p = ReportParser()
    p.feed(html)
    return p
