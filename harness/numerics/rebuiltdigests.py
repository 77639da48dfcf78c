"""Digests of runtime tensors rebuilt from a checkpoint, memoised on disk so a host hashes them once.

Comparing by digest (harness/checks/weight_digest.py) rebuilds every runtime tensor from the
checkpoint (fused q/k/v, gate/up, 128-expert stacks) and hashes it as the runtime does: a full
pass of sha256 over the model, the slowest part of the check. What it gives depends only on the
checkpoint files, the layout rules, the architecture and the cell dtype, so it is kept under
``$HARNESS_DIGEST_DIR`` (harness/numerics/digestmemo.py) in one JSON file per such combination, keyed by
every file's (path, size, mtime): a changed file, rule or dtype starts afresh. Later cells on the
host (each xdist worker, each nightly run) wait only for the runtime's own checksums.

    memo = RebuiltDigests.open(ckpt, layout, "Qwen3MoeForCausalLM", "bfloat16")
    memo.get("model.layers.0.mlp.experts.w13_weight", members)   # None the first time
    memo.put(...); memo.save()
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

from harness.numerics.checkpoint import Checkpoint
from harness.numerics.digestmemo import digest_dir
from harness.numerics.layout import Layout

VERSION = "sglang-tensor-hash-sha256-8/1"  # bump when layout_build.digest or build changes what it hashes


class RebuiltDigests:
    """The memo of one (checkpoint, layout, architecture, dtype); ``save`` writes what was added."""

    def __init__(self, path: Path | None, key: str, entries: dict[str, dict[str, object]]) -> None:
        self.path, self.key, self.entries, self.changed = path, key, entries, False

    @classmethod
    def open(cls, ckpt: Checkpoint, layout: Layout, architecture: str | None, dtype: str) -> RebuiltDigests:
        try:
            files = [(str(f.resolve()), f.stat().st_size, f.stat().st_mtime_ns) for f in ckpt.files()]
        except OSError:
            return cls(None, "", {})  # a file went away: nothing to key on, nothing kept
        rules = [[r.pattern.pattern, r.runtime, [dict(op) for op in r.ops], list(r.architectures)] for r in layout.rules]
        key = json.dumps([VERSION, files, layout.name, rules, architecture, dtype], sort_keys=True, default=str)
        path = digest_dir() / f"rebuilt-{hashlib.sha256(key.encode()).hexdigest()[:32]}.json"
        try:
            data = json.loads(path.read_text())
            entries = data["entries"] if data.get("key") == key and isinstance(data.get("entries"), dict) else {}
        except (OSError, ValueError, KeyError, AttributeError):
            entries = {}
        return cls(path, key, entries)

    def get(self, runtime_name: str, members: Sequence[str]) -> str | None:
        entry = self.entries.get(runtime_name)
        if isinstance(entry, dict) and entry.get("members") == list(members) and isinstance(entry.get("digest"), str):
            return str(entry["digest"])
        return None

    def put(self, runtime_name: str, members: Sequence[str], digest: str) -> None:
        self.entries[runtime_name] = {"members": list(members), "digest": digest}
        self.changed = True

    def save(self) -> None:
        """Write the memo atomically if anything was added; a read-only cache costs only the hashing."""
        if not self.changed or self.path is None:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".rebuilt-")
            with os.fdopen(fd, "w") as fh:
                json.dump({"key": self.key, "entries": self.entries}, fh)
            os.replace(tmp, self.path)
            self.changed = False
        except OSError:
            pass
