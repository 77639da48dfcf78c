"""The candidates between a good and a bad ref: released versions on a package index, or commits.

    releases("toyrt", "1.0", "1.3", index)  -> ("1.0", "1.1", "1.2", "1.3")   # pip index versions
    commits(Path("~/src/sglang"), "v0.5.9", "main")  -> (sha_good, ..., sha_bad)  # git rev-list

A ref is a version (``0.5.9``), a requirement (``sglang==0.5.9``: it names the distribution), or,
with ``--source DIR``, anything ``git rev-parse`` knows (a tag, a branch, a commit).
"""
from __future__ import annotations

import dataclasses
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import final

from packaging.version import InvalidVersion, Version

from harness.errors import ConfigError

# The distribution that carries each runtime, when a ref does not name one.
RUNTIME_DISTRIBUTIONS = {"hf": "transformers", "sglang": "sglang", "vllm": "vllm"}


class BisectInputError(ConfigError):
    """A bisection cannot start: an unknown ref, cell or finding; the message says the fix."""


@final
@dataclasses.dataclass(frozen=True)
class PipIndex:
    """Where pip looks for versions: ``--index-url``, ``--find-links`` (repeatable), ``--no-index``."""

    index_url: str | None = None
    find_links: tuple[str, ...] = ()
    no_index: bool = False
    pre: bool = False

    def args(self) -> tuple[str, ...]:
        out: list[str] = ["--index-url", self.index_url] if self.index_url else []
        for link in self.find_links:
            out += ["--find-links", link]
        return (*out, *(["--no-index"] if self.no_index else []))


def split_ref(ref: str) -> tuple[str | None, str]:
    """``"sglang==0.5.9"`` -> ("sglang", "0.5.9"); ``"0.5.9"`` -> (None, "0.5.9")."""
    name, sep, version = ref.partition("==")
    if not sep:
        return None, ref.strip()
    if not name.strip() or not version.strip():
        raise BisectInputError(f"ref {ref!r} is not NAME==VERSION; write e.g. sglang==0.5.9, or just 0.5.9")
    return name.strip(), version.strip()


def distribution(good: str, bad: str, given: str | None, default: str | None) -> str:
    """The distribution both refs are versions of: ``--dist``, else the one the refs name, else ``default``."""
    named = {n for n in (split_ref(good)[0], split_ref(bad)[0]) if n}
    if len(named) > 1:
        raise BisectInputError(f"--good and --bad name different distributions ({', '.join(sorted(named))}); "
                               "bisect the versions of one distribution")
    dist = given or (named.pop() if named else default)
    if not dist:
        raise BisectInputError("no distribution to bisect: write the refs as NAME==VERSION or pass --dist NAME")
    return dist


def releases(dist: str, good: str, bad: str, index: PipIndex) -> tuple[str, ...]:
    """Every version of ``dist`` on the index from ``good`` to ``bad`` inclusive, oldest first."""
    lo, hi = _version(good, "--good"), _version(bad, "--bad")
    if lo == hi:
        raise BisectInputError(f"--good and --bad are the same version ({good}); pass two different versions")
    if lo > hi:
        raise BisectInputError(f"--good {good} is newer than --bad {bad}; swap them (the good one is the older)")
    found = index_versions(dist, index)
    for ref, v in ((good, lo), (bad, hi)):
        if v not in found:
            near = ", ".join(str(x) for x in sorted(found)[-12:]) or "none"
            raise BisectInputError(f"{dist}=={ref} is not on the package index ({' '.join(index.args()) or 'pip default'}); "
                                   f"versions there (newest 12): {near}; pass one of those")
    keep = [v for v in sorted(found) if lo <= v <= hi and (index.pre or not v.is_prerelease or v in (lo, hi))]
    return tuple(found[v] for v in keep)


def index_versions(dist: str, index: PipIndex) -> dict[Version, str]:
    """``pip index versions`` of ``dist``: each version as parsed and as the index spells it."""
    cmd = [sys.executable, "-m", "pip", "index", "versions", dist, *index.args(), *(["--pre"] if index.pre else [])]
    done = subprocess.run(cmd, capture_output=True, text=True)
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("Available versions:")), None)
    if done.returncode != 0 or line is None:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise BisectInputError(f"no versions of {dist!r} found with `{' '.join(cmd[2:])}` ({tail}); check the "
                               "name (--dist, or NAME==VERSION refs) and the index (--index-url / --find-links)")
    out: dict[Version, str] = {}
    for text in line.partition(":")[2].split(","):
        try:
            out[Version(text.strip())] = text.strip()
        except InvalidVersion:
            continue
    return out


def commits(source: Path, good: str, bad: str) -> tuple[tuple[str, ...], dict[str, str]]:
    """Commits from ``good`` to ``bad`` on bad's first-parent line, oldest first, and a label for each.

    The first-parent line keeps the list linear: the first bad commit found is the merge (or the
    direct commit) that brought the regression in, as a PR is merged.
    """
    lo, hi = _rev(source, good, "--good"), _rev(source, bad, "--bad")
    if lo == hi:
        raise BisectInputError(f"--good {good} and --bad {bad} are the same commit ({lo[:12]}); pass two different refs")
    if _git(source, "merge-base", "--is-ancestor", lo, hi, check=False).returncode != 0:
        raise BisectInputError(f"--good {good} is not an ancestor of --bad {bad} in {source}; the good ref must be "
                               "the older one, on the bad one's history")
    listed = _git(source, "rev-list", "--first-parent", "--ancestry-path", "--reverse", f"{lo}..{hi}").stdout.split()
    refs = (lo, *listed)
    log = _git(source, "log", "--no-walk=unsorted", "--format=%H %h %s", *refs).stdout.splitlines()
    labels = {}
    for line in log:
        sha, short, subject = (line.split(" ", 2) + ["", ""])[:3]
        labels[sha] = f"{short} {subject[:60]}".strip()
    labels[lo], labels[hi] = f"{good} ({labels.get(lo, lo[:10])})", f"{bad} ({labels.get(hi, hi[:10])})"
    return refs, labels


def _version(ref: str, option: str) -> Version:
    try:
        return Version(split_ref(ref)[1])
    except InvalidVersion:
        raise BisectInputError(f"{option} {ref!r} is not a version; pass a release such as 0.5.9 "
                               "(or a commit with --source DIR)") from None


def _rev(source: Path, ref: str, option: str) -> str:
    done = _git(source, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", check=False)
    if done.returncode != 0:
        raise BisectInputError(f"{option} {ref!r} is not a commit of {source}; pass a tag, branch or commit there "
                               "(git fetch --tags if it is upstream's)")
    return done.stdout.strip()


def _git(source: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    try:
        done = subprocess.run(["git", "-C", str(source), *args], capture_output=True, text=True)
    except FileNotFoundError:
        raise BisectInputError("git is not installed; install it to bisect commits of --source") from None
    if check and done.returncode != 0:
        raise BisectInputError(f"`git {' '.join(args)}` failed in {source}: {done.stderr.strip()}; "
                               "--source must be a git checkout")
    return done


def is_checkout(source: Path) -> bool:
    return _git(source, "rev-parse", "--git-dir", check=False).returncode == 0


def refs_with_labels(refs: Sequence[str], dist: str) -> dict[str, str]:
    """``1.2`` -> ``toyrt==1.2``: how a release is shown."""
    return {r: f"{dist}=={r}" for r in refs}
