"""Checkpoint digests are memoised on disk by (path, size, mtime): a new process does not hash again."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from harness.numerics import digestmemo
from harness.reference.store import checkpoint_digest


def test_a_digest_is_read_back_from_disk_and_recomputed_when_the_file_changes(tmp_path: Path, monkeypatch):
    monkeypatch.setenv(digestmemo.DIGEST_DIR_ENV, str(tmp_path / "memo"))
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    f = ckpt / "model.safetensors"
    f.write_bytes(b"x" * 1000)
    first = checkpoint_digest(ckpt)
    assert len(list((tmp_path / "memo").glob("*.json"))) == 1
    monkeypatch.setattr(digestmemo, "_MEMO", {})  # a fresh process: only the disk memo is left

    def no_hashing(path, key):
        raise AssertionError("hashed again although the disk memo holds it")

    monkeypatch.setattr(digestmemo, "_hash_and_store", no_hashing)
    assert checkpoint_digest(ckpt) == first
    monkeypatch.undo()
    monkeypatch.setenv(digestmemo.DIGEST_DIR_ENV, str(tmp_path / "memo"))
    f.write_bytes(b"y" * 1000)
    st = f.stat()
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    assert checkpoint_digest(ckpt) != first


def test_an_unwritable_memo_only_costs_the_hashing(tmp_path: Path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv(digestmemo.DIGEST_DIR_ENV, str(blocker / "sub"))  # under a file: cannot be created
    f = tmp_path / "a.safetensors"
    f.write_bytes(b"abc")
    assert digestmemo.file_sha256(f) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


@pytest.fixture(autouse=True)
def _fresh_memo(monkeypatch):
    monkeypatch.setattr(digestmemo, "_MEMO", {})
