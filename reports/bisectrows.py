"""The runtime version each cell ran in a past run, for the `harness bisect` command of a regression row.

A baseline is loaded light (records cut before ``details``, so without fingerprints); only the
lines of the cells that fail now are read whole here, to learn which runtime version last passed.
"""
from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path


def runtime_versions(results: Path, cells: Iterable[str]) -> dict[str, str]:
    """cell -> ``fingerprint.version`` from ``results`` (a results.jsonl), for the given cells only."""
    names = set(cells)
    wanted = {json.dumps(c) for c in names}
    out: dict[str, str] = {}
    if not wanted or not results.is_file():
        return out
    with open(results, encoding="utf-8") as fh:
        for line in fh:
            if not any(w in line for w in wanted):
                continue
            try:
                row = json.loads(line)
            except ValueError:
                continue
            version = (row.get("fingerprint") or {}).get("version") if isinstance(row, dict) else None
            if version and row.get("cell") in names:
                out[row["cell"]] = str(version)
    return out
