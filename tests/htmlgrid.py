"""Read the report back out of the HTML (tests parse the page, they do not compare strings).

Grid rows are ``<tr data-cell data-status>`` with ``<td data-check data-status data-change>``;
the verdict is ``id="verdict"`` (``data-verdict`` GO / NO-GO); the sign-off lists carry
``data-blocker`` / ``data-waived`` / ``data-stale``; the diff rows ``data-diff`` + ``data-ref``.
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
        elif self._in_verdict:
            self._in_verdict += 1

    def handle_endtag(self, tag):
        if self._in_verdict:
            self._in_verdict -= 1

    def handle_data(self, data):
        if self._in_verdict and data.strip():
            self.verdict = f"{self.verdict} {data.strip()}".strip()


def parse_report(html: str) -> ReportParser:
    p = ReportParser()
    p.feed(html)
    return p
