"""Two daemons on one machine, one ring directory and one ring prefix, but each
with its own runtime dir (two users' containers, two test runs, simulated
nodes): neither touches a live client of the other.

A daemon adopts a ring when its owner is dead, when its client says hello to
it, or when the ring names the daemon's runtime dir (a restarted daemon takes
back its live clients' rings).  Every scan a daemon makes is forced here by an
event, never by waiting out ``SCAN_EVERY``: the start-up and shutdown scans of
a restart, and the scan a writer opened with ``purge_step`` asks for.
"""

from __future__ import annotations

import signal
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from summaryd.daemon.cli import request
from summaryd.paths import locations

from ..conftest import DaemonEnv, daemons, read_events
from ..driven import Trainer

pytestmark = pytest.mark.integration


def points(log_dir: Path) -> Counter[tuple[str, int]]:
    return Counter((v.tag, e.step) for e in read_events(log_dir) for v in e.summary.value)


def sessions(d: DaemonEnv) -> set[str]:
    return {c["sid"] for c in request(locations(d.env), {"t": "status"})["clients"]}


@pytest.fixture
def two(tmp_path: Path) -> Iterator[tuple[DaemonEnv, DaemonEnv]]:
    """Daemons A and B: own runtime dirs, one ring prefix; stopped by PID after."""
    with daemons(tmp_path, ("a", "b"), one_prefix=True) as (a, b):
        yield a, b


def test_daemons_sharing_a_ring_prefix_leave_each_others_live_clients_alone(
    two: tuple[DaemonEnv, DaemonEnv], tmp_path: Path
) -> None:
    a, b = two
    run_a, run_b, run_k = tmp_path / "run_a", tmp_path / "run_b", tmp_path / "run_killed"
    peers: list[Trainer] = []
    try:
        a.start()
        b.start()
        pa = Trainer(a.env)
        peers.append(pa)
        pb = Trainer(b.env)
        peers.append(pb)
        pa("log", run_a, "a", 0, 50)
        pb("log", run_b, "b", 0, 50)
        pa("flush", run_a)
        pb("flush", run_b)

        # B's shutdown and start-up scans while A serves its client.
        b.stop()
        b.start()
        assert sessions(b) == {pb.session}
        pa("log", run_a, "a", 50, 100)
        pb("log", run_b, "b", 50, 100)
        pa("flush", run_a)
        pb("flush", run_b)

        # A stops: its live client's ring is unlocked, and still A's.
        a.stop()
        pa("log", run_a, "a", 100, 150)  # waits in the ring for A
        # A client of A that dies while A is down: a dead owner's ring is anyone's.
        pk = Trainer(a.env)
        peers.append(pk)
        pk("log", run_k, "k", 0, 80)
        pk.proc.send_signal(signal.SIGKILL)
        assert pk.proc.wait() == -signal.SIGKILL
        b_pid = b.pid
        resumed = tmp_path / "run_b_resumed"
        pb("resume", resumed, 1000)
        pb("log", resumed, "resumed", 1000, 1001, -1000)
        pb("flush", resumed)  # B scans before acknowledging
        assert pa.session not in sessions(b)

        # Restarted, A takes its live client's ring back at its start-up scan,
        # before the client says hello again.
        a.start()
        assert sessions(a) == {pa.session}
        pa("flush", run_a)
        pa("log", run_a, "a", 150, 200)
        pb("log", run_b, "b", 100, 200)
        pa("flush", run_a)
        pb("flush", run_b)

        # B's scans once more, then A's, each while the other serves its client.
        b.stop()
        b.start()
        a.stop()
        a.start()
        pa("quit")
        pb("quit")
        for p in (pa, pb):
            assert p.proc.wait(30) == 0
        assert b.stop() == 0
        assert a.stop() == 0
    finally:
        for p in peers:
            p.end()

    assert points(run_a) == Counter({("a", i): 1 for i in range(200)})
    assert points(run_b) == Counter({("b", i): 1 for i in range(200)})
    assert points(run_k) == Counter({("k", i): 1 for i in range(80)})
    # B, scanning first, adopted the dead client of A (file names carry the daemon's pid).
    assert [p.name.split(".")[-2] for p in run_k.iterdir()] == [str(b_pid)]
    assert a.rings() == []
