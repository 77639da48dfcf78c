"""Read the report's grid back out of the HTML (tests parse the page, they do not compare strings)."""
from __future__ import annotations

from html.parser import HTMLParser


class ReportParser(HTMLParser):
    """Collects grid cells (data-cell/data-check/data-status), the verdict text and script tags."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, str] = {}
        self.results: dict[tuple[str, str], str] = {}
        self.verdict = ""
        self.scripts = 0
        self._row: str | None = None
        self._in_verdict = 0

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "script":
            self.scripts += 1
        if tag == "tr" and "data-cell" in a:
            self._row = a["data-cell"]
            self.rows[self._row] = a.get("data-status", "")
        if tag == "td" and "data-check" in a and self._row:
            self.results[(self._row, a["data-check"])] = a.get("data-status", "")
        if a.get("id") == "verdict":
            self._in_verdict = 1
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
