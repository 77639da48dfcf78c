"""Lines from the harness to the terminal: through pytest's terminal reporter when there is one."""
from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable

import pytest


def say(config: pytest.Config, message: str, *, red: bool = False, yellow: bool = False) -> None:
    """One line on the terminal (stderr for red ones when pytest has no terminal reporter)."""
    tr = config.pluginmanager.get_plugin("terminalreporter")
    if tr is not None:
        tr.write_line(message, red=red, yellow=yellow)
    else:
        print(message, file=sys.stderr if red else sys.stdout)


def line_writer(config: pytest.Config) -> Callable[[str], None]:
    """A writer that starts on a fresh line even after pytest's progress dots, and reaches the
    terminal from inside a fixture too (where pytest captures output). Plugins are looked up at
    write time: the terminal reporter may be configured after the harness."""

    def write(line: str) -> None:
        tr = config.pluginmanager.get_plugin("terminalreporter")
        capman = config.pluginmanager.get_plugin("capturemanager")
        with capman.global_and_fixture_disabled() if capman is not None else contextlib.nullcontext():
            if tr is None:
                print(line, flush=True)
                return
            if getattr(tr._tw, "width_of_current_line", 0):
                tr._tw.line()
            tr.write_line(line)

    return write
