"""Where candidates come from: releases of a distribution on a package index, or commits of a checkout."""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Protocol, final

from harness.bisect.envs import EnvSpec, Log, export_commit, fetch_release, package_root


class Origin(Protocol):
    """Turns a ref into an interpreter that runs it, or into its source tree."""

    @property
    def key(self) -> str:
        """Names the origin in the bisect state, so a resume refuses another origin."""

    def python(self, ref: str, log: Log) -> Path:
        """An interpreter whose environment has this ref of the runtime (cached)."""

    def tree(self, ref: str, log: Log) -> Path:
        """The directory holding this ref's top package (cached)."""


@final
@dataclasses.dataclass(frozen=True)
class Releases:
    """Versions of ``dist`` on the index; the import name is ``top_package``."""

    dist: str
    top_package: str
    env: EnvSpec

    @property
    def key(self) -> str:
        return f"pypi:{self.dist}"

    def python(self, ref: str, log: Log) -> Path:
        return self.env.release(self.dist, ref, log)

    def tree(self, ref: str, log: Log) -> Path:
        return package_root(fetch_release(self.dist, ref, self.env.index, log), self.top_package)


@final
@dataclasses.dataclass(frozen=True)
class Commits:
    """Commits of the checkout ``source``; the package lives under ``subdir`` (found when None)."""

    source: Path
    top_package: str
    env: EnvSpec
    subdir: str | None = None

    @property
    def key(self) -> str:
        return f"git:{self.source.resolve()}"

    def python(self, ref: str, log: Log) -> Path:
        return self.env.commit(self.tree(ref, log), ref, log)

    def tree(self, ref: str, log: Log) -> Path:
        return package_root(export_commit(self.source, ref, log), self.top_package, self.subdir)
