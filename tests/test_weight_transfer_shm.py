"""Tensors through shared memory, without a runtime: the region's ranges, the runtime-side writer,
the tmpfs transfer directory, and the socket fallback when the runtime does not write the region."""
from __future__ import annotations

import gc
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from harness.boot import xferdir
from harness.errors import ConfigError
from harness.numerics.tensors import from_bytes
from harness.numerics.tensorshm import ALIGN, Region
from harness.numerics.tensorwire import TensorFetcher
from harness.runtimes.hf_region import RegionWriter
from tests.test_weight_stream import _Server

pytestmark = pytest.mark.skipif(xferdir.fs_type(xferdir.SHM_ROOT) not in xferdir.TMPFS_TYPES,
                                reason="needs a tmpfs at /dev/shm")


@pytest.fixture
def shm_dir() -> Iterator[Path]:
    path = xferdir.make_xfer_dir(Path("/nonexistent-so-not-tmpfs"), "shm")
    assert path is not None and path.parent == xferdir.SHM_ROOT
    yield path
    xferdir.remove_xfer_dir(path)


def written(region: Region, writer: RegionWriter, data: bytes) -> np.ndarray:
    """What the runtime side writes, as the harness side claims it."""
    offer = region.reserve()
    assert offer is not None
    offset = writer.write(offer.as_request(region), memoryview(data))
    assert offset is not None
    return region.claim(offer, offset, len(data))


def test_a_tensor_written_by_the_runtime_side_is_read_in_place(shm_dir):
    region, writer = Region.create(shm_dir, capacity=1 << 20), RegionWriter()
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    got = from_bytes(written(region, writer, x.tobytes()), "F32", (3, 4))
    assert np.array_equal(got, x) and not got.flags.writeable
    region.unlink()  # the writer holds it open: later writes still land
    y = written(region, writer, b"\x01" * 10)
    assert bytes(y) == b"\x01" * 10 and list(shm_dir.iterdir()) == []
    region.close()
    assert writer.release(str(region.path)) and not writer.release(str(region.path))


def test_a_range_is_reused_only_after_every_view_of_it_is_gone(shm_dir):
    region, writer = Region.create(shm_dir, capacity=1 << 20), RegionWriter()
    a = written(region, writer, b"a" * 5000)
    view = a[10:20]
    del a
    gc.collect()
    b = written(region, writer, b"b" * 100)
    assert bytes(view) == b"a" * 10 and region.in_use == 3 * ALIGN  # the view kept a's two pages
    del view
    gc.collect()
    c = written(region, writer, b"c" * 100)
    assert c.__array_interface__["data"][0] < b.__array_interface__["data"][0]  # lowest free range first
    assert region.in_use == 2 * ALIGN
    region.close()


def test_one_offer_at_a_time_and_a_full_region_offers_nothing(shm_dir):
    region, writer = Region.create(shm_dir, capacity=4 * ALIGN), RegionWriter()
    offer = region.reserve()
    assert offer is not None and region.reserve() is None
    region.cancel(offer)
    big = written(region, writer, b"x" * 3 * ALIGN)
    offer = region.reserve()
    assert offer is None and len(big) == 3 * ALIGN
    region.close()


def test_the_writer_refuses_a_file_without_the_token_and_a_path_it_cannot_see(shm_dir, tmp_path):
    region, writer = Region.create(shm_dir, capacity=1 << 20), RegionWriter()
    offer = region.reserve()
    assert offer is not None
    request = offer.as_request(region)
    assert writer.write({**request, "token": "00" * 16}, memoryview(b"data")) is None
    assert writer.write({**request, "path": str(tmp_path / "elsewhere")}, memoryview(b"data")) is None
    assert writer.write({**request, "gaps": [[ALIGN, 2]]}, memoryview(b"data")) is None  # no gap fits
    region.cancel(offer)
    region.close()


def test_the_transfer_dir_is_in_dev_shm_when_the_scratch_dir_is_not_tmpfs(tmp_path, monkeypatch):
    if xferdir.fs_type(tmp_path) in xferdir.TMPFS_TYPES:
        pytest.skip("tmp_path is on tmpfs here")
    path = xferdir.make_xfer_dir(tmp_path)
    try:
        assert path is not None and path.parent == xferdir.SHM_ROOT
        assert path.name.startswith(f"harness-xfer-{os.getpid()}-")
    finally:
        xferdir.remove_xfer_dir(path)
    assert not path.exists()
    monkeypatch.setenv(xferdir.MODE_ENV, "socket")
    assert xferdir.make_xfer_dir(tmp_path) is None
    monkeypatch.setenv(xferdir.MODE_ENV, "pigeon")
    with pytest.raises(ConfigError, match="HARNESS_WEIGHT_TRANSFER='pigeon'.*'socket'"):
        xferdir.make_xfer_dir(tmp_path)


def test_the_transfer_dir_of_a_killed_harness_is_swept():
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = xferdir.SHM_ROOT / f"{xferdir.PREFIX}{int(dead.stdout)}-abc"
    stale.mkdir()
    (stale / "region-1-00").write_bytes(b"left by a SIGKILL")
    mine = xferdir.make_xfer_dir(Path("/nonexistent"), "shm")
    try:
        assert not stale.exists() and mine is not None and mine.exists()
    finally:
        xferdir.remove_xfer_dir(mine)
        xferdir.remove_xfer_dir(stale)


def test_a_runtime_that_ignores_the_region_answers_over_the_socket(shm_dir):
    x = np.random.default_rng(1).normal(size=(5, 3)).astype(np.float32)
    server = _Server({"f": x}, raw=True)
    fetcher = TensorFetcher(server.url, "cell", timeout_s=10)
    try:
        fetcher.use_directory(shm_dir)
        assert np.array_equal(fetcher.fetch("f", 1 << 30), x)
        assert fetcher.stats["raw_tensors"] == 1 and fetcher.stats["region_tensors"] == 0
        fetcher.end_transfer()  # gives the (unused) region back: its file goes
        assert list(shm_dir.iterdir()) == []
    finally:
        fetcher.close()
        server.close()
