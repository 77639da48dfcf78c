"""Environments and sources of the candidates, each prepared once and cached under the harness cache.

- a release's venv: ``pip install DIST==VERSION`` into a venv that sees the base interpreter's
  packages beneath its own (torch and the rest are not installed again), built with
  harness.boot.venvs (a stamp of the recipe decides reuse);
- a commit's venv: the commit's tree (``git archive``) put on the path before the base's packages;
- a release's or commit's source alone, for the static portability check: ``pip download --no-deps``
  unpacked (a wheel, or an sdist), or the commit's tree.

Cache: ``$HARNESS_VENV_DIR/bisect/`` (default ~/.cache/llm-harness/venvs/bisect).
"""
from __future__ import annotations

import dataclasses
import io
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import final

from harness.bisect.refs import PipIndex
from harness.boot.venvs import VenvRecipe, ensure_recipe, venv_root
from harness.errors import ConfigError

Log = Callable[[str], None]
DONE_MARK = ".harness-complete"


class CandidateError(ConfigError):
    """One candidate's environment or source could not be prepared: the step is a skip."""


def cache_root() -> Path:
    return venv_root() / "bisect"


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text)[:80]


@final
@dataclasses.dataclass(frozen=True)
class EnvSpec:
    """How candidate venvs are made: which base interpreter they layer on (None: standalone)."""

    base_python: str | None
    index: PipIndex

    def release(self, dist: str, version: str, log: Log) -> Path:
        """The interpreter of a venv with ``dist==version`` installed."""
        recipe = VenvRecipe(dist, version, (f"{dist}=={version}",), pip_args=self.index.args(),
                            base_python=self.base_python)
        return _ensure(recipe, cache_root() / f"{_slug(dist)}-{_slug(version)}-{recipe.key[:8]}", log)

    def commit(self, tree: Path, sha: str, log: Log) -> Path:
        """The interpreter of a venv whose path starts with ``tree`` (a commit's source)."""
        recipe = VenvRecipe(f"src-{tree.name}", sha, (), base_python=self.base_python or sys.executable,
                            paths=(str(tree),))
        return _ensure(recipe, cache_root() / f"src-{sha[:12]}-{recipe.key[:8]}", log)


def _ensure(recipe: VenvRecipe, home: Path, log: Log) -> Path:
    try:
        return ensure_recipe(recipe, home, log=log)
    except ConfigError as exc:
        shutil.rmtree(home, ignore_errors=True)
        raise CandidateError(str(exc)) from None


def fetch_release(dist: str, version: str, index: PipIndex, log: Log) -> Path:
    """``dist==version``'s source unpacked (``pip download --no-deps``: a wheel, else the sdist)."""
    home = cache_root() / "src" / f"{_slug(dist)}-{_slug(version)}"
    if (home / DONE_MARK).is_file():
        return home / "tree"
    shutil.rmtree(home, ignore_errors=True)
    (home / "dl").mkdir(parents=True)
    cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--dest", str(home / "dl"), *index.args(),
           f"{dist}=={version}"]
    done = subprocess.run(cmd, capture_output=True, text=True)
    files = sorted((home / "dl").iterdir())
    if done.returncode != 0 or len(files) != 1:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-5:])
        shutil.rmtree(home, ignore_errors=True)
        raise CandidateError(f"`pip download --no-deps {dist}=={version}` failed (exit {done.returncode}): {tail}")
    log(f"downloaded {files[0].name}")
    _unpack(files[0], home / "tree")
    shutil.rmtree(home / "dl")
    (home / DONE_MARK).write_text(f"{files[0].name}\n")
    return home / "tree"


def _unpack(archive: Path, dest: Path) -> None:
    name = archive.name
    try:
        if name.endswith((".whl", ".zip")):
            with zipfile.ZipFile(archive) as zf:
                zf.extractall(dest)
        elif name.endswith((".tar.gz", ".tgz", ".tar")):
            with tarfile.open(archive) as tf:
                tf.extractall(dest, filter="data")
        else:
            raise CandidateError(f"cannot unpack {name}: neither a wheel nor an sdist")
    except (zipfile.BadZipFile, tarfile.TarError, OSError) as exc:
        raise CandidateError(f"cannot unpack {name}: {exc}") from None


def export_commit(source: Path, sha: str, log: Log) -> Path:
    """The tree of commit ``sha`` of the checkout ``source`` (``git archive``), cached by commit."""
    home = cache_root() / "src" / f"{_slug(source.resolve().name)}-{sha[:12]}"
    if (home / DONE_MARK).is_file():
        return home / "tree"
    shutil.rmtree(home, ignore_errors=True)
    done = subprocess.run(["git", "-C", str(source), "archive", "--format=tar", sha], capture_output=True)
    if done.returncode != 0:
        raise CandidateError(f"`git archive {sha[:12]}` failed in {source}: {done.stderr.decode(errors='replace').strip()}")
    with tarfile.open(fileobj=io.BytesIO(done.stdout)) as tf:
        tf.extractall(home / "tree", filter="data")
    (home / DONE_MARK).write_text(sha + "\n")
    log(f"exported {sha[:12]} to {home / 'tree'}")
    return home / "tree"


def package_root(tree: Path, top_package: str, subdir: str | None = None) -> Path:
    """The directory of ``tree`` that holds ``top_package/``: given, or found (``.``, ``python``, ``src``, an sdist's top)."""
    if subdir:
        return tree / subdir
    candidates = [tree, tree / "python", tree / "src"]
    candidates += [p for d in sorted(tree.iterdir()) if d.is_dir() for p in (d, d / "python", d / "src")]
    for root in candidates:
        if (root / top_package).is_dir():
            return root
    raise CandidateError(f"no {top_package}/ directory in {tree} (looked in ., python/, src/ and an sdist's top "
                         "directory); pass --source-subdir DIR")
