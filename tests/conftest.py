from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SUITE = REPO / "suites" / "test_matrix.py"


@pytest.fixture
def matrix_suite(pytester: pytest.Pytester) -> pytest.Pytester:
    """A pytester dir holding the real matrix suite file."""
    pytester.makepyfile(test_matrix=SUITE.read_text())
    return pytester
