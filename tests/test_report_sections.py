"""Sections other plugins add to the report: plain values checked when made, drawn escaped after the built-in ones."""
from __future__ import annotations

from html.parser import HTMLParser

import pytest

from harness.reports.builder import ReportInputs, render_run
from harness.reports.sections import Section, gather
from tests.reportruns import TODAY, rec, write_run


class Headings(HTMLParser):
    """The h2 headings of a page, in order, and the text of ``p.extra-text``."""

    def __init__(self) -> None:
        super().__init__()
        self.h2: list[str] = []
        self.texts: list[str] = []
        self._in: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "h2":
            self._in = "h2"
            self.h2.append("")
        elif tag == "p" and ("class", "extra-text") in attrs:
            self._in = "p"
            self.texts.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("h2", "p"):
            self._in = None

    def handle_data(self, data: str) -> None:
        if self._in == "h2":
            self.h2[-1] += data
        elif self._in == "p":
            self.texts[-1] += data


def _page(tmp_path, sections=None) -> Headings:
    run = write_run(tmp_path / "latest", [rec("hf-cpu-tiny-llama-none", "accuracy", "pass")])
    out = render_run(ReportInputs(run_dir=run, today=TODAY, environ={}), sections)
    page = Headings()
    page.feed(out.index.read_text())
    return page


def test_sections_are_drawn_in_order_after_the_built_in_ones(tmp_path) -> None:
    seen = []

    def source(data):
        seen.append(data.manifest["run_id"])
        return [Section.table("Lab", ("rack",), [("r12",)]), Section.note("Firmware", "<i>8.0</i>")]

    page = _page(tmp_path, source)
    assert seen == ["r1"]  # called once, with the report's data
    assert page.h2[-2:] == ["Lab", "Firmware"] and "Environment" in page.h2[:-2]
    assert page.texts == ["<i>8.0</i>"]


def test_without_a_source_the_page_has_only_the_built_in_sections(tmp_path) -> None:
    plain = _page(tmp_path / "plain")
    extra = _page(tmp_path / "extra", lambda data: [Section.note("Firmware", "8.0")])
    assert plain.texts == [] and extra.h2 == [*plain.h2, "Firmware"]


def test_a_failing_source_leaves_a_note_and_the_report(tmp_path) -> None:
    def broken(data):
        raise KeyError("rack")

    page = _page(tmp_path, broken)
    assert page.h2[-1] == "Report sections"
    assert "KeyError" in page.texts[0] and "harness report" in page.texts[0]


def test_a_source_must_return_sections() -> None:
    with pytest.raises(TypeError, match=r"returned dict .*Section.table"):
        gather(lambda data: [{"title": "Lab"}], None)
    assert gather(None, None) == ()


@pytest.mark.parametrize("make, message", [
    (lambda: Section(" ", text="x"), "non-empty title"),
    (lambda: Section("Lab"), "neither rows nor text"),
    (lambda: Section.table("Lab", ("a", "b"), [("1",)]), "row 0 has 1 cells but there are 2 columns"),
])
def test_a_malformed_section_says_what_is_wrong(make, message) -> None:
    with pytest.raises(ValueError, match=message):
        make()


def test_table_values_become_text() -> None:
    assert Section.table("Lab", ("rack", "cards", "note"), [("r12", 8, None)]).rows == (("r12", "8", ""),)
