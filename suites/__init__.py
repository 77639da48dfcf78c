"""Conformance suites run by `harness run` (pytest files over the matrix)."""
