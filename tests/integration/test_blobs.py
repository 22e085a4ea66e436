"""One-off shared-memory blobs: records too big for the ring.

A record larger than a quarter of the client's ring goes to ``<ring>.b<n>`` in
/dev/shm; the daemon reads it, writes the events, and removes the blob once the
ring's tail passed the record, or with the ring when the client died, or at
start-up when its ring is gone.  Checked with a real daemon and TensorBoard's
reader; a hostile blob (FIFO, sparse, symlink) costs only that record.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import msgpack
import numpy as np
import pytest

from summaryd import SummaryWriter, client, wire
from summaryd.errors import DaemonNoticeWarning

from ..conftest import PEERS, DaemonEnv, wait_for_daemon

pytestmark = pytest.mark.integration

SMALL_RING = str(1 << 20)  # 1 MiB: a 1e6-value histogram (4 MB) needs a blob


def histograms(log_dir: Path) -> list[tuple[int, int, float]]:
    """(step, num, sum) of each histogram TensorBoard's reader finds."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(log_dir), size_guidance={"histograms": 0})
    acc.Reload()
    return [
        (e.step, int(e.histogram_value.num), e.histogram_value.sum)
        for tag in acc.Tags()["histograms"]
        for e in acc.Histograms(tag)
    ]


def blobs(d: DaemonEnv) -> list[str]:
    return [n for n in d.rings() if ".b" in n.rsplit(".", 1)[-1][:2]]


def test_a_record_larger_than_the_ring_arrives_and_its_blob_is_removed(
    daemon: DaemonEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SUMMARYD_RING_BYTES", SMALL_RING)
    values = np.ones(1_000_000, dtype=np.float32)
    with SummaryWriter(tmp_path / "run") as w:
        w.add_histogram("big", values, 1)
        w.add_histogram("small", values[:10], 2)
        assert client.get_client().blobs_written == 1  # the big one only
        w.flush()
        assert blobs(daemon) == []
    assert sorted(histograms(tmp_path / "run")) == [(1, 1_000_000, 1e6), (2, 10, 10.0)]


@pytest.mark.timeout(600)
def test_a_512_mb_tensor_logs_fine(daemon: DaemonEnv, tmp_path: Path) -> None:
    values = np.zeros(128 << 20, dtype=np.float32)  # 512 MiB
    values[::2] = 1.0
    with SummaryWriter(tmp_path / "run") as w:
        w.add_histogram("huge", values, 7)
        del values
        w.flush()
        assert blobs(daemon) == []
    assert histograms(tmp_path / "run") == [(7, 128 << 20, float(64 << 20))]


@pytest.mark.parametrize("orphan", [False, True], ids=["committed", "orphan"])
def test_blobs_of_a_killed_client_are_written_and_removed(
    daemon: DaemonEnv, tmp_path: Path, orphan: bool
) -> None:
    env = daemon.env | {
        "PEER_LOG_DIR": str(tmp_path / "run"),
        "PEER_N": "3",
        "PEER_SIZE": "1000000",
        "PEER_ORPHAN": "1" if orphan else "0",
        "SUMMARYD_RING_BYTES": SMALL_RING,
    }
    proc = subprocess.run(
        [sys.executable, str(PEERS / "big_then_killed.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.stdout == "logged\n", proc.stderr
    # The daemon notices the death, drains the ring, writes, removes ring and blobs;
    # a status round trip after `stop` is the barrier (stop drains every ring first).
    daemon.stop()
    assert daemon.rings() == []
    steps = sorted(s for s, _, _ in histograms(tmp_path / "run"))
    assert steps == [0, 1, 2]


def test_a_blob_whose_ring_is_gone_is_removed_at_start(daemon_env: DaemonEnv) -> None:
    stale = f"/dev/shm/{daemon_env.ring_prefix}.999999.0123456789abcdef.b1"
    with open(stale, "wb") as f:
        f.write(b"x" * 100)
    daemon_env.start()
    assert not os.path.exists(stale)


@pytest.mark.parametrize("kind", ["fifo", "sparse", "symlink", "missing"])
def test_a_hostile_blob_costs_only_its_record(daemon: DaemonEnv, tmp_path: Path, kind: str) -> None:
    with SummaryWriter(tmp_path / "run") as w:
        w.add_histogram("before", np.ones(10, np.float32), 1)
        c = client.get_client()
        path = f"{c.ring_path}.b77"
        if kind == "fifo":
            os.mkfifo(path, 0o600)
        elif kind == "sparse":
            with open(path, "wb") as f:
                f.truncate(1 << 30)
        elif kind == "symlink":
            os.symlink("/etc/passwd", path)
        specs = [["<f4", [(1 << 30) // 4 if kind == "sparse" else 10]]]
        record = msgpack.packb(
            [wire.HISTOGRAM, w._wid, "bad", 2, 1.0, {"bins": "tensorflow"}, specs, 77]
        )
        assert c._put_bell(record)  # as the SDK would put it, naming blob 77
        w.add_histogram("after", np.ones(10, np.float32), 3)
        with pytest.warns(DaemonNoticeWarning, match="blob 77"):
            w.flush()
            w.add_scalar("poll", 0.0)  # the notice is read on the next call
        wait_for_daemon(daemon)
        assert blobs(daemon) == []  # removed once the tail passed the record
    assert sorted(s for s, _, _ in histograms(tmp_path / "run")) == [1, 3]
