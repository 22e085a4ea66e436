"""``SummaryWriter("s3://...")`` through the real daemon into a real S3 server (weed).

Read back only with TensorBoard's own loader: ``EventAccumulator`` on the
``s3://`` path with ``S3_ENDPOINT`` set, what ``tensorboard --logdir s3://``
uses.  Each test starts its own isolated daemon(s) (runtime dir, ring prefix,
spool dir), stopped by PID.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from summaryd import SummaryWriter, client
from summaryd.errors import (
    DaemonNoticeWarning,
    S3AccessError,
    SummarydWarning,
    UnsupportedLogDirError,
)

from ..conftest import DaemonEnv, isolated_env
from ..s3server import WeedServer

pytestmark = [pytest.mark.s3, pytest.mark.integration]
PEER = Path(__file__).with_name("s3trainer.py")


def accumulate(url: str) -> EventAccumulator:
    acc = EventAccumulator(url, size_guidance={"scalars": 0, "images": 0})
    acc.Reload()
    return acc


def steps(acc: EventAccumulator, tag: str) -> list[int]:
    return [e.step for e in acc.Scalars(tag)] if tag in acc.Tags()["scalars"] else []


def wait_until(pred: object, timeout: float = 20.0) -> None:
    """Poll TensorBoard's view of the bucket (the store has no event to await)."""
    deadline = time.monotonic() + timeout
    while not pred():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.3)


@pytest.fixture
def node(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, s3_env: dict[str, str]
) -> Iterator[DaemonEnv]:
    """An isolated daemon environment with its own spool dir, pointed at weed."""
    monkeypatch.setenv("SUMMARYD_SPOOL_DIR", str(tmp_path / "spool"))
    monkeypatch.setenv("SUMMARYD_S3_SEAL_SECS", "1")
    with isolated_env(tmp_path, monkeypatch) as d:
        yield d


def test_scalars_and_image_in_bucket_after_close(
    node: DaemonEnv, s3server: WeedServer, s3_prefix: str
) -> None:
    node.start()
    url = f"s3://{s3server.bucket}/{s3_prefix}/run"
    w = SummaryWriter(url)
    assert w.get_logdir() == url
    for i in range(50):
        w.add_scalar("loss", 1.0 / (i + 1), i)
    w.add_image("img", np.zeros((3, 8, 8), dtype=np.uint8), 7)
    w.add_scalars("multi", {"a": 1.0, "b": 2.0}, 3)
    w.close()
    # close() returned: everything is in the bucket now, without waiting.
    acc = accumulate(url)
    assert steps(acc, "loss") == list(range(50))
    assert [e.step for e in acc.Images("img")] == [7]
    assert steps(accumulate(url + "/multi_a"), "multi") == [3]
    assert not (Path.cwd() / "s3:").exists()


def test_visible_within_seconds_without_flush(
    node: DaemonEnv, s3server: WeedServer, s3_prefix: str
) -> None:
    node.start()
    url = f"s3://{s3server.bucket}/{s3_prefix}/run"
    with SummaryWriter(url) as w:
        t = time.monotonic()
        w.add_scalar("x", 1.0, 1)
        wait_until(lambda: steps(accumulate(url), "x") == [1], timeout=10.0)
        assert time.monotonic() - t < 10.0


def test_other_schemes_refused(node: DaemonEnv) -> None:
    for url in ("gs://bucket/run", "hdfs://nn/run", "http://host/run"):
        with pytest.raises(UnsupportedLogDirError, match="log_dir.*s3://"):
            SummaryWriter(url)
    assert not (Path.cwd() / "gs:").exists()


def test_wrong_bucket_and_credentials_at_construction(
    node: DaemonEnv, s3server: WeedServer, s3_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(S3AccessError, match="no-such-bucket-x") as e:
        SummaryWriter(f"s3://no-such-bucket-x/{s3_prefix}")
    assert e.value.bucket == "no-such-bucket-x"
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong")
    with pytest.raises(S3AccessError, match="access refused"):
        SummaryWriter(f"s3://{s3server.bucket}/{s3_prefix}/other")


def _second_node(base: Path, first: DaemonEnv) -> DaemonEnv:
    """Another simulated node: own runtime dir, ring prefix and spool."""
    env = dict(first.env)
    env["SUMMARYD_RUNTIME_DIR"] = str(base / "rt2")
    env["SUMMARYD_RING_PREFIX"] = first.ring_prefix + "n2"
    env["SUMMARYD_SPOOL_DIR"] = str(base / "spool2")
    return DaemonEnv(base / "rt2", first.ring_prefix + "n2", env)


def _trainer(
    env: dict[str, str], url: str, tag: str, n: int, delay: float
) -> subprocess.Popen[str]:
    env = {**env, "S3T_URL": url, "S3T_TAG": tag, "S3T_STEPS": str(n), "S3T_DELAY": str(delay)}
    env["SUMMARYD_NO_SPAWN"] = "1"
    return subprocess.Popen([sys.executable, str(PEER)], env=env, stdout=subprocess.PIPE, text=True)


def test_two_nodes_one_run_live_and_after(
    node: DaemonEnv, s3server: WeedServer, s3_prefix: str, tmp_path: Path
) -> None:
    node.env["SUMMARYD_S3_MAX_WRITES"] = "2"  # many objects: readers must cross them
    node.start()
    other = _second_node(tmp_path, node)
    other.start()
    url = f"s3://{s3server.bucket}/{s3_prefix}/run"
    live = EventAccumulator(url, size_guidance={"scalars": 0})
    try:
        peers = [
            _trainer(node.env, url, "node0/loss", 60, 0.05),
            _trainer(other.env, url, "node1/loss", 60, 0.05),
        ]
        while any(p.poll() is None for p in peers):
            live.Reload()  # a reader that follows the run while it grows
            time.sleep(0.5)
        for p in peers:
            out, _ = p.communicate()
            assert p.returncode == 0 and out.strip() == "done"
        live.Reload()
        for acc in (live, accumulate(url)):
            assert steps(acc, "node0/loss") == list(range(60))
            assert steps(acc, "node1/loss") == list(range(60))
    finally:
        other.stop()
        for name in other.rings():
            os.unlink(os.path.join("/dev/shm", name))


def _status(d: DaemonEnv) -> dict[str, object]:
    from summaryd.daemon.cli import request
    from summaryd.paths import locations

    return request(locations(d.env), {"t": "status"}, timeout=5.0)  # type: ignore[no-any-return]


def _spooled_writer(
    node: DaemonEnv, s3server: WeedServer, s3_prefix: str
) -> tuple[str, SummaryWriter]:
    """A node's daemon started with a 600 s seal and a writer whose steps 0..99
    of "loss" are in its spool (so they stay there until the test kills it)."""
    node.env["SUMMARYD_S3_SEAL_SECS"] = "600"
    node.start()
    url = f"s3://{s3server.bucket}/{s3_prefix}/run"
    w = SummaryWriter(url)
    for i in range(100):
        w.add_scalar("loss", float(i), i)

    def spooled() -> bool:
        return any(s["backlog_bytes"] > 0 for s in _status(node)["daemon"]["spools"])  # type: ignore[index]

    wait_until(spooled)
    return url, w


def test_daemon_sigkill_spool_uploaded_once(
    node: DaemonEnv, s3server: WeedServer, s3_prefix: str
) -> None:
    url, w = _spooled_writer(node, s3server, s3_prefix)
    node.stop(signal.SIGKILL)
    for i in range(100, 200):
        w.add_scalar("loss", float(i), i)  # into the ring: no daemon runs
    node.env["SUMMARYD_S3_SEAL_SECS"] = "1"
    node.start()
    w.close()
    assert steps(accumulate(url), "loss") == list(range(200))


def test_store_down_nothing_lost_never_blocks(
    node: DaemonEnv, s3server: WeedServer, s3_prefix: str
) -> None:
    node.start()
    url = f"s3://{s3server.bucket}/{s3_prefix}/run"
    w = SummaryWriter(url)
    w.add_scalar("loss", 0.0, 0)
    w.flush()
    s3server.stop()
    try:
        slowest = 0.0
        for i in range(1, 200):
            t = time.perf_counter()
            w.add_scalar("loss", float(i), i)
            slowest = max(slowest, time.perf_counter() - t)
            time.sleep(0.01)

        def failing() -> bool:
            runs = _status(node)["runs"]
            s3 = [r["s3"] for r in runs if "s3" in r]  # type: ignore[union-attr, index, operator]
            return bool(s3) and bool(s3[0]["last_error"]) and s3[0]["backlog_bytes"] > 0

        wait_until(failing, timeout=30.0)
        assert slowest < 0.1
    finally:
        s3server.start()
    wait_until(lambda: len(steps(accumulate(url), "loss")) == 200, timeout=60.0)
    with pytest.warns(Warning):  # the daemon's notice about the failed uploads
        w.close()
    assert steps(accumulate(url), "loss") == list(range(200))


def test_resume_with_purge_step(node: DaemonEnv, s3server: WeedServer, s3_prefix: str) -> None:
    node.start()
    url = f"s3://{s3server.bucket}/{s3_prefix}/run"
    with SummaryWriter(url) as w:
        for i in range(10):
            w.add_scalar("loss", float(i), i)
    with SummaryWriter(url, purge_step=5) as w:
        for i in range(5, 8):
            w.add_scalar("loss", 100.0 + i, i)
    acc = accumulate(url)
    assert [(e.step, e.value) for e in acc.Scalars("loss")] == [
        *((i, float(i)) for i in range(5)),
        *((i, 100.0 + i) for i in range(5, 8)),
    ]


def test_tensorboard_server_shows_s3_run(
    node: DaemonEnv, s3server: WeedServer, s3_prefix: str, tmp_path: Path
) -> None:
    from ..integration.test_tensorboard_server import Server

    node.start()
    url = f"s3://{s3server.bucket}/{s3_prefix}"
    with SummaryWriter(url + "/run") as w:
        for i in range(20):
            w.add_scalar("loss", float(i), i)
    # `S3_ENDPOINT=... tensorboard --logdir s3://... --load_fast=false` (the
    # fast loader does not read s3://); 127.0.0.1 only, stopped by PID.
    server = Server("s3", url, False, tmp_path / "tb.log")  # type: ignore[arg-type]
    try:
        server.wait_answering(time.monotonic() + 60)

        def shown() -> bool:
            try:
                pts = server.json("/data/plugin/scalars/scalars", {"run": "run", "tag": "loss"})
            except AssertionError:
                return False  # the run is not loaded yet
            return [p[1] for p in pts] == list(range(20))

        wait_until(shown, timeout=60.0)
    finally:
        server.terminate()
        server.reap()


def _dead_endpoint() -> str:
    """An address nothing listens on (a port just freed): uploads are refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def test_spool_overflow_is_a_counted_warning_and_in_status(
    node: DaemonEnv, s3server: WeedServer, s3_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The trainer's own check reaches weed; the daemon's store never answers.
    node.env["AWS_ENDPOINT_URL_S3"] = _dead_endpoint()
    node.env["SUMMARYD_SPOOL_MAX_BYTES"] = "4096"
    node.start()
    url = f"s3://{s3server.bucket}/{s3_prefix}/run"
    w = SummaryWriter(url)
    full = re.compile(r"spool of .* is full \(4096 bytes, SUMMARYD_SPOOL_MAX_BYTES\): (\d+) record")
    told: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        deadline = time.monotonic() + 30.0
        i = 0
        while not told and time.monotonic() < deadline:
            w.add_scalar("loss", float(i), i)  # notices arrive on the logging path
            i += 1
            time.sleep(0.005)
            told = [str(m.message) for m in caught if full.search(str(m.message))]
    assert told, [str(m.message) for m in caught]
    assert all(issubclass(m.category, DaemonNoticeWarning) for m in caught)
    assert len(told) == 1  # once per overflow, not once per dropped write
    m = full.search(told[0])
    assert m is not None and int(m.group(1)) > 0  # counted

    def s3_status() -> dict[str, Any]:
        [s3] = [r["s3"] for r in _status(node)["runs"] if "s3" in r]  # type: ignore[union-attr, index, operator]
        return s3  # type: ignore[no-any-return]

    wait_until(lambda: s3_status()["last_error"])  # the first upload's retries are over
    s3 = s3_status()
    assert s3["overflowed_records"] >= int(m.group(1))
    assert 0 < s3["backlog_bytes"] <= 4096
    out = subprocess.run(
        [sys.executable, "-m", "summaryd.daemon", "status"],
        env=node.env,
        capture_output=True,
        text=True,
        timeout=30,
    ).stdout
    assert re.search(r"[1-9]\d* dropped \(spool full\)", out), out
    assert "UPLOAD ERROR" in out

    # Nothing can reach the store: close() and the client's last flush give up
    # after their timeout, with a warning (a flush returns once uploaded).
    monkeypatch.setenv("SUMMARYD_FLUSH_TIMEOUT", "1")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        w.close()
        client.shutdown_client(1.0)


def test_dropped_write_does_not_hold_flush(
    node: DaemonEnv, s3server: WeedServer, s3_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The store answers; only the spool is too small for a burst of 100 scalars
    # (one write: max_queue holds them until the flush).
    node.env["SUMMARYD_SPOOL_MAX_BYTES"] = "1024"
    node.start()
    monkeypatch.setenv("SUMMARYD_FLUSH_TIMEOUT", "60")  # a held flush would show as a wait
    url = f"s3://{s3server.bucket}/{s3_prefix}/run"
    w = SummaryWriter(url, max_queue=1000)
    full = re.compile(r"spool of .* is full \(1024 bytes, SUMMARYD_SPOOL_MAX_BYTES\)")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        w.add_scalar("loss", 0.0, 0)
        w.flush()
        assert steps(accumulate(url), "loss") == [0]
        for i in range(1, 101):
            w.add_scalar("loss", float(i), i)
        t = time.monotonic()
        w.flush()  # the burst is dropped: nothing of it will ever be uploaded
        took = time.monotonic() - t
        told = [str(m.message) for m in caught if full.search(str(m.message))]
        w.add_scalar("loss", 101.0, 101)  # room again: the spool is empty
        w.close()
    assert took < 15.0, f"flush held {took:.1f} s by a dropped write"
    assert len(told) == 1, [str(m.message) for m in caught]  # told before the ack
    assert not [m for m in caught if "timed out" in str(m.message)]
    assert steps(accumulate(url), "loss") == [0, 101]


def test_close_with_store_down_returns_after_timeout_events_uploaded_later(
    node: DaemonEnv, s3server: WeedServer, s3_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    node.start()
    monkeypatch.setenv("SUMMARYD_FLUSH_TIMEOUT", "2")
    url = f"s3://{s3server.bucket}/{s3_prefix}/run"
    w = SummaryWriter(url)
    for i in range(50):
        w.add_scalar("loss", float(i), i)
    w.flush()
    s3server.stop()
    try:
        for i in range(50, 100):
            w.add_scalar("loss", float(i), i)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            t = time.monotonic()
            w.close()
            took = time.monotonic() - t
        assert 2.0 <= took < 10.0, took
        told = [str(m.message) for m in caught]
        timed_out = [m for m in told if "flush() timed out after 2 s" in m]
        assert len(timed_out) == 1, told
        assert "s3:// log dirs the daemon spooled" in timed_out[0]  # not lost: spooled
        assert all(issubclass(m.category, SummarydWarning) for m in caught), told
        spools = _status(node)["daemon"]["spools"]  # type: ignore[index]
        assert [s["url"] for s in spools if s["backlog_bytes"] > 0] == [url]  # kept for later
    finally:
        s3server.start()

    # Every event once: no purge of out-of-order steps, so a duplicate would show.
    def all_in() -> bool:
        acc = EventAccumulator(url, size_guidance={"scalars": 0}, purge_orphaned_data=False)
        acc.Reload()
        return len(steps(acc, "loss")) >= 100

    wait_until(all_in, timeout=90.0)
    acc = EventAccumulator(url, size_guidance={"scalars": 0}, purge_orphaned_data=False)
    acc.Reload()
    assert [(e.step, e.value) for e in acc.Scalars("loss")] == [(i, float(i)) for i in range(100)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the daemon's notices of the failed uploads
        client.shutdown_client(5.0)


def test_flush_after_restart_waits_for_the_adopted_spool(
    node: DaemonEnv, s3server: WeedServer, s3_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, w = _spooled_writer(node, s3server, s3_prefix)
    s3server.stop()  # the next daemon cannot upload what it adopts yet
    try:
        node.stop(signal.SIGKILL)
        node.start()
        monkeypatch.setenv("SUMMARYD_FLUSH_TIMEOUT", "3")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            w.flush()  # nothing new: only the adopted records, not in the bucket
        told = [str(m.message) for m in caught]
        assert [m for m in told if "flush() timed out after 3 s" in m], told
    finally:
        s3server.start()
    monkeypatch.setenv("SUMMARYD_FLUSH_TIMEOUT", "60")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        w.flush()
    assert not [m for m in caught if "timed out" in str(m.message)]
    # flush() returned: the earlier daemon's records are in the bucket, no waiting.
    assert steps(accumulate(url), "loss") == list(range(100))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # notices of the failed uploads
        w.close()
