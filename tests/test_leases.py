"""Device and port leases with real processes: exclusive, released on exit and on SIGKILL."""
from __future__ import annotations

import json
import multiprocessing as mp
import os
import signal
import time
from pathlib import Path

import pytest

from harness.boot.leases import LeaseTimeout, PortLease, acquire, overlaps


def hold(lease_dir: str, events: str, name: str, count: int, seconds: float) -> None:
    lease = acquire("npu", count, 4, name, lease_dir=Path(lease_dir), events=Path(events), timeout_s=60)
    time.sleep(seconds)
    lease.release()


def test_many_processes_never_share_a_card(tmp_path):
    events = tmp_path / "events.jsonl"
    spawn = mp.get_context("spawn")
    procs = [spawn.Process(target=hold, args=(str(tmp_path / "l"), str(events), f"cell{i}", 1 + i % 2, 0.2)) for i in range(8)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    recs = [json.loads(line) for line in events.read_text().splitlines()]
    assert len([r for r in recs if r["event"] == "acquire"]) == 8
    assert len([r for r in recs if r["event"] == "release"]) == 8
    assert overlaps(recs) == []
    assert {len(r["cards"]) for r in recs} == {1, 2}


def test_overlaps_detects_a_double_booking():
    recs = [{"t": 1, "event": "acquire", "cell": "a", "device": "npu", "cards": [0]},
            {"t": 2, "event": "acquire", "cell": "b", "device": "npu", "cards": [0]}]
    assert overlaps(recs) == ["npu:0 taken by b while held by a"]


def test_a_killed_holder_leaves_no_stale_lease(tmp_path):
    p = mp.get_context("spawn").Process(target=hold, args=(str(tmp_path), str(tmp_path / "e.jsonl"), "doomed", 4, 60))
    p.start()
    deadline = time.time() + 30
    while time.time() < deadline and not (tmp_path / "e.jsonl").exists():
        time.sleep(0.05)
    os.kill(p.pid, signal.SIGKILL)
    p.join()
    lease = acquire("npu", 4, 4, "next", lease_dir=tmp_path, timeout_s=5)
    assert lease.cards == (0, 1, 2, 3)
    lease.release()


def test_waiting_too_long_and_asking_too_much_say_why(tmp_path):
    held = acquire("npu", 2, 2, "first", lease_dir=tmp_path)
    with pytest.raises(LeaseTimeout, match="waited 0s for 1 free npu card"):
        acquire("npu", 1, 2, "second", lease_dir=tmp_path, timeout_s=0.3)
    held.release()
    with pytest.raises(LeaseTimeout, match="needs 4 npu cards but only 2 exist"):
        acquire("npu", 4, 2, "big", lease_dir=tmp_path)


def test_port_leases_are_distinct_while_held(tmp_path):
    ports = [PortLease(lease_dir=tmp_path) for _ in range(20)]
    assert len({p.port for p in ports}) == 20
    for p in ports:
        p.release()


def test_port_lock_files_do_not_pile_up(tmp_path):
    folder = tmp_path / "ports"
    seen = set()
    for _ in range(40):  # one lease after another, as cells boot in turn
        lease = PortLease(lease_dir=tmp_path)
        seen.add(lease.port)
        assert [p.name for p in folder.iterdir()] == [f"{lease.port}.lock"]
        lease.release()
        lease.release()  # idempotent
    assert len(seen) > 1 and list(folder.iterdir()) == []
    held = [PortLease(lease_dir=tmp_path) for _ in range(5)]
    assert len(list(folder.iterdir())) == 5  # one file per port held, no more
    for p in held:
        p.release()
    assert list(folder.iterdir()) == []



def race_for_one_lock(path: str, events: str, name: str, rounds: int) -> None:
    from harness.boot.leases import _try_lock, _unlink_locked, log_event

    for _ in range(rounds):
        fh = _try_lock(Path(path))
        if fh is not None:
            log_event(Path(events), "acquire", name, "port", [7])
            log_event(Path(events), "release", name, "port", [7])
            _unlink_locked(fh, Path(path))


def test_deleting_a_lock_file_on_release_never_lets_two_processes_hold_it(tmp_path):
    events = tmp_path / "events.jsonl"
    procs = [mp.get_context("spawn").Process(target=race_for_one_lock, args=(str(tmp_path / "7.lock"), str(events), f"p{i}", 300))
             for i in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    recs = [json.loads(line) for line in events.read_text().splitlines()]
    assert len(recs) > 100 and overlaps(recs) == []
    assert not (tmp_path / "7.lock").exists()


def test_port_lock_files_left_by_killed_holders_are_swept_and_held_ones_kept(tmp_path):
    from harness.boot.leases import sweep_port_locks

    folder = tmp_path / "ports"
    folder.mkdir()
    for port in range(1000, 1010):
        (folder / f"{port}.lock").write_bytes(b"")  # the kernel dropped the killed holders' locks, the files stayed
    held = PortLease(lease_dir=tmp_path)  # a new lease sweeps them
    assert [p.name for p in folder.iterdir()] == [f"{held.port}.lock"]
    assert sweep_port_locks(folder) == 0 and (folder / f"{held.port}.lock").exists()  # a held file is never swept
    held.release()
    assert list(folder.iterdir()) == []
