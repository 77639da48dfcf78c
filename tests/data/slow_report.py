"""Test plugin (`-p tests.data.slow_report`): the first report rendering announces itself and takes
a moment, so a test can send Ctrl-C while the report is being rendered.

$HARNESS_TEST_RENDERING names the file written when rendering starts.
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import harness.reports.builder

_real = harness.reports.builder.build_outcome
_calls = 0


def _announced(run_dir: Path, *args: Any, **kwargs: Any) -> Any:
    global _calls
    _calls += 1
    if _calls == 1:
        Path(os.environ["HARNESS_TEST_RENDERING"]).write_text(str(run_dir))
        time.sleep(2.0)
    return _real(run_dir, *args, **kwargs)


harness.reports.builder.build_outcome = _announced
