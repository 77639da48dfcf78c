"""sha256 of checkpoint files, memoised on disk by (path, size, mtime) so no process hashes a file twice.

A 61 GB checkpoint takes minutes to hash; every pytest process (xdist workers, each ``harness run``)
used to do it again. The memo is one small JSON file per file digest under ``$HARNESS_DIGEST_DIR``
(default ``~/.cache/llm-harness/digests``), written atomically; a file whose size or mtime changed
is hashed again. An unwritable memo directory only costs the hashing, never an error.

    file_sha256(Path("/models/llama/model-00001-of-00004.safetensors"))  # hashed once per host
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

DIGEST_DIR_ENV = "HARNESS_DIGEST_DIR"
BLOCK = 1 << 24
_MEMO: dict[tuple[str, int, int], str] = {}


def digest_dir() -> Path:
    """$HARNESS_DIGEST_DIR, else ~/.cache/llm-harness/digests."""
    override = os.environ.get(DIGEST_DIR_ENV)
    return Path(override).expanduser() if override else Path.home() / ".cache" / "llm-harness" / "digests"


def file_sha256(path: Path) -> str:
    """The file's sha256 (hex), from this process's memo, the disk memo, or by reading it."""
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _MEMO:
        _MEMO[key] = _from_disk(key) or _hash_and_store(path, key)
    return _MEMO[key]


def _entry(key: tuple[str, int, int]) -> Path:
    return digest_dir() / f"{hashlib.sha256(json.dumps(key).encode()).hexdigest()[:32]}.json"


def _from_disk(key: tuple[str, int, int]) -> str | None:
    try:
        data = json.loads(_entry(key).read_text())
    except (OSError, ValueError):
        return None
    if [data.get("path"), data.get("size"), data.get("mtime_ns")] != list(key):
        return None
    value = data.get("sha256")
    return value if isinstance(value, str) and len(value) == 64 else None


def _hash_and_store(path: Path, key: tuple[str, int, int]) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(BLOCK), b""):
            h.update(block)
    value = h.hexdigest()
    entry = _entry(key)
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=entry.parent, prefix=".digest-")
        with os.fdopen(fd, "w") as fh:
            json.dump({"path": key[0], "size": key[1], "mtime_ns": key[2], "sha256": value}, fh)
        os.replace(tmp, entry)
    except OSError:
        pass  # a read-only cache: hashed again next time, nothing worse
    return value
