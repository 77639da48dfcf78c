"""Paths and types shared by the portability tests (conftest holds the fixtures)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from harness.portability.finding import Finding

DATA = Path(__file__).resolve().parent / "data"
SRC = DATA / "src"
PROBE = DATA / "probe"
PROFILE_YAML = DATA / "fakert-profile.yaml"
SUPPRESSIONS_YAML = DATA / "suppressions.yaml"

Pick = Callable[..., list[Finding]]
REACH = DATA / "reach"  # the synthetic ``reachrt`` runtime: severity by reachability
REACH_PROFILE_YAML = DATA / "reach-profile.yaml"
