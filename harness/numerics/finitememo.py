"""Which checkpoint tensors are known to hold only finite values, memoised on disk like digests.

A runtime tensor whose bytes equal the checkpoint's is finite exactly when the checkpoint tensor
is; once a comparison has shown a checkpoint tensor finite (equal within tolerance with no NaN or
infinity on either side), later comparisons of that file (same path, size and mtime) skip the
finiteness pass over equal bytes: one pass over the data instead of two. Entries live beside the
file digests (harness/numerics/digestmemo.py: ``$HARNESS_DIGEST_DIR``), one JSON file per checkpoint file,
written atomically at the end of a check; an unwritable directory only costs the pass.

    memo = FiniteMemo(ckpt.extent)                   # name -> (file, ...)
    memo.known("model.layers.0.mlp.up_proj.weight")  # False the first time
    memo.add("model.layers.0.mlp.up_proj.weight"); memo.save()
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from harness.numerics.digestmemo import digest_dir

FileOf = Callable[[str], tuple]  # Checkpoint.extent: the tensor's file comes first
_Key = tuple[str, int, int]


class FiniteMemo:
    """Finite checkpoint tensors by file: read once per file, saved when new ones were added."""

    def __init__(self, extent: FileOf) -> None:
        self.extent = extent
        self._files: dict[str, _Key | None] = {}  # tensor name -> its file's key
        self._by_path: dict[object, _Key | None] = {}  # the file as the checkpoint names it -> its key (one stat)
        self._known: dict[_Key, set[str]] = {}
        self._added: set[_Key] = set()

    def known(self, name: str) -> bool:
        key = self._key(name)
        return key is not None and name in self._names(key)

    def add(self, name: str) -> None:
        key = self._key(name)
        if key is not None and name not in self._names(key):
            self._known[key].add(name)
            self._added.add(key)

    def save(self) -> None:
        """Write the files that gained names (atomically; errors ignored: a cache only)."""
        for key in self._added:
            _store(key, self._known[key])
        self._added.clear()

    def _key(self, name: str) -> _Key | None:
        if name not in self._files:
            try:
                self._files[name] = self._file_key(self.extent(name)[0])
            except KeyError:
                self._files[name] = None
        return self._files[name]

    def _file_key(self, file: object) -> _Key | None:
        if file not in self._by_path:
            try:
                path = Path(str(file))
                st = path.stat()
                self._by_path[file] = (str(path.resolve()), st.st_size, st.st_mtime_ns)
            except OSError:
                self._by_path[file] = None
        return self._by_path[file]

    def _names(self, key: _Key) -> set[str]:
        if key not in self._known:
            self._known[key] = _load(key)
        return self._known[key]


def _entry(key: _Key) -> Path:
    return digest_dir() / f"finite-{hashlib.sha256(json.dumps(key).encode()).hexdigest()[:32]}.json"


def _load(key: _Key) -> set[str]:
    try:
        data = json.loads(_entry(key).read_text())
    except (OSError, ValueError):
        return set()
    if not isinstance(data, dict) or [data.get("path"), data.get("size"), data.get("mtime_ns")] != list(key):
        return set()
    names = data.get("finite")
    return {n for n in names if isinstance(n, str)} if isinstance(names, list) else set()


def _store(key: _Key, names: set[str]) -> None:
    entry = _entry(key)
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=entry.parent, prefix=".finite-")
        with os.fdopen(fd, "w") as fh:
            json.dump({"path": key[0], "size": key[1], "mtime_ns": key[2], "finite": sorted(names)}, fh)
        os.replace(tmp, entry)
    except OSError:
        pass
