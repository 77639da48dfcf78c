"""Fact sets (prompt -> expected answer), shared by the model builder and the accuracy check."""
from __future__ import annotations

from harness.models.zoo import Fact, load_facts

__all__ = ["Fact", "load_facts"]
