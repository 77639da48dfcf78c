"""Fixtures for the portability tests: the synthetic ``fakert`` runtime and its analysis."""

from __future__ import annotations

import pytest
import yaml

from harness.portability.analyzer import Analysis, analyse_tree
from harness.portability.finding import Finding
from harness.portability.profile import PROFILES, RuntimeProfile
from tests.portability.support import PROFILE_YAML, SRC, Pick


@pytest.fixture(scope="session")
def fakert_profile() -> RuntimeProfile:
    """SGLang's rules pointed at the synthetic ``fakert`` packages."""
    overrides = yaml.safe_load(PROFILE_YAML.read_text())
    return PROFILES.get("sglang").with_overrides(overrides, source=str(PROFILE_YAML))


@pytest.fixture(scope="session")
def analysis(fakert_profile: RuntimeProfile) -> Analysis:
    """Static analysis of ``data/src`` (one process: the tree is small)."""
    return analyse_tree(SRC, fakert_profile.packages, fakert_profile, jobs=1)


@pytest.fixture(scope="session")
def pick(analysis: Analysis) -> Pick:
    """``pick("models/x.py", rule=...)``: the findings of one synthetic module."""

    def select(relpath: str, rule: str | None = None) -> list[Finding]:
        path = f"fakert/{relpath}"
        return [f for f in analysis.findings if f.path == path and rule in (None, f.rule)]

    return select
