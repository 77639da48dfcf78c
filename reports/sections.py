"""Report sections other plugins add (``pytest_harness_report_sections``): plain values, no markup.

A section is a title and either a table (columns and rows of text) or a paragraph of text; the
template draws it after the built-in sections, escaped like every other value of the report::

    Section.table("Lab", ("rack", "cards"), [("r12", 8)])
    Section.note("Firmware", "CANN 8.0.RC3 on every card")
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Sequence
from typing import Any, final


@final
@dataclasses.dataclass(frozen=True)
class Section:
    """One extra section of the HTML report: ``title``, then ``rows`` under ``columns``, or ``text``.

    >>> Section.table("Lab", ("rack", "cards"), [("r12", 8)]).rows
    (('r12', '8'),)
    >>> Section("Lab", text="")
    Traceback (most recent call last):
    ...
    ValueError: report section 'Lab' has neither rows nor text; give Section.table(title, columns, rows) or Section.note(title, text)
    """

    title: str
    columns: tuple[str, ...] = ()
    rows: tuple[tuple[str, ...], ...] = ()
    text: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.title, str) or not self.title.strip():
            raise ValueError(f"a report section needs a non-empty title, got {self.title!r}")
        if not self.rows and not self.text:
            raise ValueError(f"report section {self.title!r} has neither rows nor text; give "
                             "Section.table(title, columns, rows) or Section.note(title, text)")
        wrong = [i for i, row in enumerate(self.rows) if self.columns and len(row) != len(self.columns)]
        if wrong:
            raise ValueError(f"report section {self.title!r}: row {wrong[0]} has {len(self.rows[wrong[0]])} cells "
                             f"but there are {len(self.columns)} columns {self.columns!r}; give one value per column")

    @classmethod
    def table(cls, title: str, columns: Sequence[Any], rows: Iterable[Sequence[Any]]) -> Section:
        """A table; every value is shown as text."""
        return cls(title, tuple(str(c) for c in columns), tuple(tuple(_text(v) for v in row) for row in rows))

    @classmethod
    def note(cls, title: str, text: str) -> Section:
        """A paragraph of text (line breaks kept)."""
        return cls(title, text=str(text))


SectionSource = Callable[[Any], Iterable[Section]]  # called with the report's data; e.g. the plugin's hook


def gather(source: SectionSource | None, data: Any) -> tuple[Section, ...]:
    """The sections ``source`` gives for ``data``; anything that is not a Section is refused with a fix."""
    if source is None:
        return ()
    found = tuple(source(data))
    for section in found:
        if not isinstance(section, Section):
            raise TypeError(f"pytest_harness_report_sections returned {type(section).__name__} {section!r}; return a "
                            "list of harness.reports.sections.Section (Section.table(...) or Section.note(...))")
    return found


def _text(value: Any) -> str:
    return "" if value is None else str(value)
