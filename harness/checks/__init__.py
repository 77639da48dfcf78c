"""Checks, one module each, behind one registry (adding a check: one file, one line here).

Installed packages add checks through the ``harness.checks`` entry-point group (docs/extending.md).
"""
from __future__ import annotations

from harness.checks.base import Check, CheckContext, CheckResult
from harness.registry import Registry

CHECKS: Registry[Check] = Registry("check", protocol=Check, group="harness.checks", instantiate=True)
CHECKS.register("accuracy", "harness.checks.accuracy:CHECK")
CHECKS.register("weight_parity", "harness.checks.weight_parity:CHECK", aliases=("weights",))
CHECKS.register("logprob_parity", "harness.checks.logprob_parity:CHECK", aliases=("logprobs",))
CHECKS.register("mode_active", "harness.checks.mode_active:CHECK", aliases=("mode",))

__all__ = ["CHECKS", "Check", "CheckContext", "CheckResult"]
