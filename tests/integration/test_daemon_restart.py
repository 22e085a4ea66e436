"""The daemon dies or stops while trainers log: the next one resumes every
ring, knows which writers were open and what was already written, and every
committed record reaches a file exactly once."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from summaryd import SummaryWriter
from summaryd.daemon.tfrecord import whole_records_length

from ..conftest import DaemonEnv, read_events

pytestmark = pytest.mark.integration
PEERS = Path(__file__).resolve().parent.parent / "peers"


def points(log_dir: Path) -> Counter[tuple[str, int]]:
    return Counter((v.tag, e.step) for e in read_events(log_dir) for v in e.summary.value)


def test_records_logged_while_the_daemon_is_stopped_are_written_once(
    daemon: DaemonEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SUMMARYD_NO_SPAWN", "1")
    w = SummaryWriter(tmp_path / "run")
    for i in range(100):
        w.add_scalar("x", float(i), i)
    w.flush()
    daemon.stop()  # graceful: drains, writes, saves its state
    for i in range(100, 200):
        w.add_scalar("x", float(i), i)  # the OPEN of this writer lies before the tail
    daemon.start()
    w.close()
    assert points(tmp_path / "run") == Counter({("x", i): 1 for i in range(200)})


@pytest.mark.parametrize("trial", range(5))
def test_daemon_sigkill_under_load_loses_and_repeats_nothing(
    daemon: DaemonEnv, tmp_path: Path, trial: int
) -> None:
    n = 6000
    log_dir = tmp_path / "run"
    env = daemon.env | {"PEER_LOG_DIR": str(log_dir), "PEER_N": str(n), "SUMMARYD_NO_SPAWN": "1"}
    peer = subprocess.Popen(
        [sys.executable, str(PEERS / "log_until_told.py")],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert peer.stdout is not None
    kill_at = 500 * (1 + trial % 4)
    for line in peer.stdout:
        if int(line) >= kill_at:
            break
    daemon.stop(signal.SIGKILL)  # mid-stream, no chance to drain or save
    daemon.start()
    rest = peer.stdout.read()
    peer.stdout.close()
    assert peer.wait(60) == 0
    assert rest.strip().endswith("flushed")
    assert points(log_dir) == Counter({("loss", i): 1 for i in range(n)})
    assert points(log_dir / "grp_a") == Counter({("grp", i): 1 for i in range(n)})
    for d in (log_dir, log_dir / "grp_a"):
        for f in d.iterdir():
            if "tfevents" not in f.name:
                continue
            data = f.read_bytes()
            assert whole_records_length(data) == len(data)


def test_next_flush_starts_a_new_daemon_after_a_sigkill(daemon: DaemonEnv, tmp_path: Path) -> None:
    w = SummaryWriter(tmp_path / "run")
    for i in range(1000):
        w.add_scalar("x", float(i), i)
    w.flush()
    old = daemon.pid
    daemon.stop(signal.SIGKILL)
    for i in range(1000, 2000):
        w.add_scalar("x", float(i), i)  # no daemon: the ring keeps them
    w.flush()  # notices the daemon is gone, starts one, waits for its ack
    new = daemon.pid
    assert new is not None and new != old
    w.close()
    assert points(tmp_path / "run") == Counter({("x", i): 1 for i in range(2000)})
