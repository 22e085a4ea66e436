"""``SummaryWriter("s3://...")`` through the real daemon into a real S3 server (weed).

Read back only with TensorBoard's own loader: ``EventAccumulator`` on the
``s3://`` path with ``S3_ENDPOINT`` set, what ``tensorboard --logdir s3://``
uses.  Each test starts its own isolated daemon(s) (runtime dir, ring prefix,
spool dir), stopped by PID.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from summaryd import SummaryWriter
from summaryd.errors import S3AccessError, UnsupportedLogDirError

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
