"""Benchmarks of the harness itself (issue 8): how close a run comes to the best possible wall time."""
