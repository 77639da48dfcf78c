"""Portability checks: code that imports or runs on some accelerators and breaks on others.

Public entry points: ``run_portability(PortabilityOptions.create(...))`` returns the
JSON-able result record for reports; ``analyse_tree`` runs the static rules alone;
``run_probe`` imports modules with accelerator packages hidden; ``cli.main`` is the
``harness portability`` command; ``runfile`` runs it as a matrix test (suites/test_portability.py)
against the baselines shipped in ``baselines/``.
"""

from __future__ import annotations

from harness.portability.analyzer import Analysis, analyse_tree
from harness.portability.baseline import Baseline
from harness.portability.check import PortabilityOptions, run_portability
from harness.portability.finding import RULES, Finding, Rule
from harness.portability.platforms import PLATFORMS, Condition, Platform
from harness.portability.probe import ProbeConfig, ProbeResult, run_probe
from harness.portability.profile import PROFILES, RuntimeProfile
from harness.portability.suppress import SuppressionFile

__all__ = [
    "Analysis", "Baseline", "Condition", "Finding", "PLATFORMS", "PROFILES", "Platform",
    "PortabilityOptions", "ProbeConfig", "ProbeResult", "RULES", "Rule", "RuntimeProfile",
    "SuppressionFile", "analyse_tree", "run_portability", "run_probe",
]
