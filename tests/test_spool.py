"""SQLite spool: order, acks, the cap and its counter, threads, and survival of kill -9."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from edge_agent.daemon.spool import Entry, Spool, SpoolError

REPO = Path(__file__).resolve().parent.parent


def test_append_pending_ack(tmp_path: Path) -> None:
    with Spool(tmp_path / "spool.db") as spool:
        ids = [spool.append(f"t/{n}", bytes([n]), n % 3, 1000.0 + n) for n in range(5)]
        assert ids == sorted(ids) and len(set(ids)) == 5
        assert spool.count() == 5
        first = spool.pending(limit=2)
        assert first == [
            Entry(ids[0], "t/0", b"\x00", 0, 1000.0),
            Entry(ids[1], "t/1", b"\x01", 1, 1001.0),
        ]
        # Entries in flight are skipped with `after`.
        assert [e.id for e in spool.pending(limit=10, after=ids[1])] == ids[2:]
        assert spool.ack([ids[0], ids[1], 999_999]) == 2
        assert spool.ack([ids[0]]) == 0
        assert spool.count() == 3
        assert [e.topic for e in spool.pending()] == ["t/2", "t/3", "t/4"]


def test_contents_and_counters_survive_reopening(tmp_path: Path) -> None:
    path = tmp_path / "spool.db"
    with Spool(path, max_entries=2) as spool:
        last = [spool.append("t", b"x" * n, 1, n) for n in range(3)][-1]
        spool.ack([last])
    with Spool(path, max_entries=2) as spool:
        assert spool.count() == 1
        assert spool.stats().dropped == 1
        # Ids are never reused, even after the newest was acknowledged.
        assert spool.append("t", b"", 0, 0) > last


def test_cap_drops_oldest_and_counts_them(tmp_path: Path) -> None:
    with Spool(tmp_path / "spool.db", max_entries=3) as spool:
        ids = [spool.append("t", str(n).encode(), 1, n) for n in range(5)]
        assert [e.id for e in spool.pending()] == ids[2:]
        stats = spool.stats()
        assert (stats.count, stats.dropped, stats.max_entries) == (3, 2, 3)


def test_append_many_is_one_batch(tmp_path: Path) -> None:
    with Spool(tmp_path / "spool.db", max_entries=4) as spool:
        first = spool.append("t", b"a", 1, 1.0)
        ids = spool.append_many([("t", bytes([n]), 1, float(n)) for n in range(3)])
        assert ids == [first + 1, first + 2, first + 3]
        assert spool.append_many([]) == []
        # A batch larger than the cap keeps only the newest rows, and counts the rest.
        spool.append_many([("u", bytes([n]), 0, float(n)) for n in range(6)])
        assert [e.payload for e in spool.pending()] == [b"\x02", b"\x03", b"\x04", b"\x05"]
        assert spool.stats().dropped == 6
        with pytest.raises(SpoolError, match="qos"):
            spool.append_many([("t", b"", 1, 0.0), ("t", b"", 7, 0.0)])
        assert spool.count() == 4


def test_invalid_use_raises_spool_error(tmp_path: Path) -> None:
    with pytest.raises(SpoolError, match="max_entries"):
        Spool(tmp_path / "a.db", max_entries=0)
    spool = Spool(tmp_path / "b.db")
    with pytest.raises(SpoolError, match="qos"):
        spool.append("t", b"", 3, 0)
    spool.close()
    with pytest.raises(SpoolError):
        spool.pending()
    with pytest.raises(SpoolError):
        spool.append("t", b"", 0, 0)
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not a database" * 100)
    with pytest.raises(SpoolError, match="cannot open spool"):
        Spool(garbage)
    with pytest.raises(SpoolError, match="cannot open spool"):
        Spool(tmp_path / "missing-dir" / "c.db")


def test_threads_share_one_spool(tmp_path: Path) -> None:
    with Spool(tmp_path / "spool.db") as spool:

        def writer(n: int) -> None:
            for i in range(25):
                spool.append(f"t/{n}", bytes([i]), 1, i)

        threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        entries = spool.pending(limit=1000)
        assert len(entries) == spool.count() == 100
        assert len({e.id for e in entries}) == 100


async def test_usable_from_asyncio_through_to_thread(tmp_path: Path) -> None:
    with Spool(tmp_path / "spool.db") as spool:
        ids = await asyncio.gather(
            *(asyncio.to_thread(spool.append, "t", b"p", 1, n) for n in range(10))
        )
        pending = await asyncio.to_thread(spool.pending, 100)
        assert sorted(ids) == [e.id for e in pending]


_WRITER = textwrap.dedent(
    """
    import sys
    from edge_agent.daemon.spool import Spool

    spool = Spool(sys.argv[1])
    n = 0
    while True:
        entry_id = spool.append("gridmeter/t/state", b"%d" % n, 1, float(n))
        print(entry_id, flush=True)
        n += 1
    """
)


def test_acknowledged_appends_survive_sigkill(tmp_path: Path) -> None:
    path = tmp_path / "spool.db"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    child = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(path)], stdout=subprocess.PIPE, env=env, text=True
    )
    assert child.stdout is not None
    acknowledged = [int(child.stdout.readline()) for _ in range(300)]
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=10)
    child.stdout.close()
    assert child.returncode == -signal.SIGKILL

    with Spool(path) as spool:
        stored = {e.id: e.payload for e in spool.pending(limit=1_000_000)}
    assert set(acknowledged) <= stored.keys()
    assert len(stored) >= 300
    assert stored[acknowledged[-1]] == b"299"
