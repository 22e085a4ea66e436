"""Segments from several simulated nodes, read back by TensorBoard's own loader on s3://.

Each node is a separate spool (its own node id) and uploader; the daemon
will drive the same calls. Read back only with TensorBoard's
``EventAccumulator`` on the ``s3://`` path (env ``S3_ENDPOINT``), the loader
``tensorboard --logdir s3://...`` uses.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.compat.proto import event_pb2, summary_pb2

from summaryd.daemon.s3layout import TailPolicy
from summaryd.daemon.s3store import (
    RetryPolicy,
    S3AccessError,
    S3Store,
    S3UnavailableError,
    Uploader,
)
from summaryd.daemon.spool import Spool
from summaryd.daemon.tfrecord import frame

from ..s3server import WeedServer

pytestmark = pytest.mark.s3
PEER = Path(__file__).with_name("s3peer.py")


def scalars(tag: str, steps: range) -> bytes:
    return b"".join(
        frame(
            event_pb2.Event(
                wall_time=1.0e9 + s,
                step=s,
                summary=summary_pb2.Summary(
                    value=[summary_pb2.Summary.Value(tag=tag, simple_value=float(s))]
                ),
            ).SerializeToString()
        )
        for s in steps
    )


def steps_by_tag(acc: EventAccumulator) -> dict[str, list[int]]:
    return {t: [e.step for e in acc.Scalars(t)] for t in acc.Tags()["scalars"]}


def reader(url: str) -> EventAccumulator:
    return EventAccumulator(url, size_guidance={"scalars": 0})


def fill(spool: Spool, tag: str, segments: int, per: int, start: int = 0) -> None:
    """``segments`` sealed segments of ``per`` scalar events each."""
    for k in range(segments):
        first = start + k * per
        spool.append(scalars(tag, range(first, first + per)), wall_time=1.0e9 + first)
        spool.seal()


def test_three_nodes_interleaved_live_and_after(
    s3server: WeedServer, s3_prefix: str, s3_env: dict[str, str], tmp_path: Path
) -> None:
    url = f"s3://{s3server.bucket}/{s3_prefix}/run"
    nodes = [Spool(tmp_path / f"node{i}") for i in range(3)]
    uploaders = [Uploader(S3Store(url), sp, TailPolicy(max_writes=3)) for sp in nodes]
    live = reader(url)
    rng = random.Random(11)
    for rnd in range(4):  # rounds: every node logs a little, uploads in a random order
        order = list(range(3))
        rng.shuffle(order)
        for i in order:
            base = rnd * 10
            nodes[i].append(scalars(f"node{i}/loss", range(base, base + 10)), 1.0e9 + base)
            nodes[i].seal()
            uploaders[i].upload_ready()
        if rnd in (0, 2):
            live.Reload()  # the live reader sits at the newest name between rounds
    live.Reload()
    expected = {f"node{i}/loss": list(range(40)) for i in range(3)}
    assert steps_by_tag(live) == expected
    fresh = reader(url)
    fresh.Reload()
    assert steps_by_tag(fresh) == expected
    # 12 segments, three writes per object whichever node made them: 4 objects
    placed = sorted(p for u in uploaders for p in u.placed)
    assert sorted({seq for seq, _ in placed}) == [1, 2, 3, 4]
    keys = [
        o["Key"]
        for o in s3server.client().list_objects_v2(
            Bucket=s3server.bucket, Prefix=f"{s3_prefix}/run/"
        )["Contents"]
    ]
    assert len(keys) == 4 and all("tfevents" in k for k in keys)


def test_concurrent_nodes_race_for_numbers(
    s3server: WeedServer, s3_prefix: str, s3_env: dict[str, str], tmp_path: Path
) -> None:
    """Three uploaders at once (threads stand in for nodes): 412s are taken in stride."""
    url = f"s3://{s3server.bucket}/{s3_prefix}/run"
    nodes = [Spool(tmp_path / f"node{i}") for i in range(3)]
    for i, sp in enumerate(nodes):
        fill(sp, f"node{i}/loss", segments=3, per=5)
    uploaders = [Uploader(S3Store(url), sp, TailPolicy(max_writes=2)) for sp in nodes]
    live = reader(url)
    go = threading.Barrier(3)
    errors: list[BaseException] = []

    def run(u: Uploader) -> None:
        try:
            go.wait()
            for seg in u.spool.sealed():
                u.upload(seg)
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=run, args=(u,)) for u in uploaders]
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        live.Reload()
    for t in threads:
        t.join()
    assert not errors
    live.Reload()
    expected = {f"node{i}/loss": list(range(15)) for i in range(3)}
    assert steps_by_tag(live) == expected
    seqs = sorted({seq for u in uploaders for seq, _ in u.placed})
    assert seqs == list(range(1, len(seqs) + 1)) and len(seqs) >= 5  # 9 writes, 2 per object


def test_wrong_bucket_and_credentials_name_bucket_and_cause(
    s3server: WeedServer, s3_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(S3AccessError) as e:
        S3Store("s3://no-such-bucket/run").check()
    assert "no-such-bucket" in str(e.value) and e.value.cause == "no such bucket"
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong")
    with pytest.raises(S3AccessError) as e:
        S3Store(f"s3://{s3server.bucket}/run").put("run/x", b"x", writes=1, seal=True)
    assert s3server.bucket in str(e.value) and e.value.cause == "SignatureDoesNotMatch"


def run_peer(spool: Path, url: str, env: dict[str, str], die: str = "", writes: int = 8) -> int:
    p = subprocess.run(
        [sys.executable, str(PEER)],
        env={
            **env,
            "PEER_SPOOL": str(spool),
            "PEER_URL": url,
            "PEER_DIE": die,
            "PEER_MAX_WRITES": str(writes),
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    return p.returncode


@pytest.mark.parametrize(
    ("die", "writes"),
    [("before-put:3", 8), ("after-put:3", 8), ("before-put:3", 1), ("after-put:3", 1)],
)
def test_killed_uploader_spool_is_uploaded_once(
    s3server: WeedServer,
    s3_prefix: str,
    s3_env: dict[str, str],
    tmp_path: Path,
    die: str,
    writes: int,
) -> None:
    """Killed with the third segment's PUT recorded, before it is sent or after it
    landed; appending to one object (max_writes 8) or one object each (1)."""
    url = f"s3://{s3server.bucket}/{s3_prefix}/run"
    spool = Spool(tmp_path / "spool")
    fill(spool, "loss", segments=4, per=10)
    assert run_peer(spool.dir, url, s3_env, die, writes) == -signal.SIGKILL
    left = Spool(tmp_path / "spool").sealed()
    assert len(left) == 2 and len(left[0].attempts) == 1  # the third was under way
    assert run_peer(spool.dir, url, s3_env, writes=writes) == 0  # the next daemon
    assert Spool(tmp_path / "spool").sealed() == []
    acc = reader(url)
    acc.Reload()
    assert steps_by_tag(acc) == {"loss": list(range(40))}  # every event, once


def test_killed_from_outside_mid_put(
    s3server: WeedServer, s3_prefix: str, s3_env: dict[str, str], tmp_path: Path
) -> None:
    """SIGKILL by PID as the second PUT starts (from outside: no chosen point), then a
    new uploader."""
    url = f"s3://{s3server.bucket}/{s3_prefix}/run"
    spool = Spool(tmp_path / "spool")
    per = 8_000  # ~0.75 MB of scalar events per segment
    fill(spool, "loss", segments=3, per=per)
    p = subprocess.Popen(
        [sys.executable, str(PEER)],
        env={**s3_env, "PEER_SPOOL": str(spool.dir), "PEER_URL": url},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert p.stdout is not None
        while p.stdout.readline() != "put 2\n":
            pass
        os.kill(p.pid, signal.SIGKILL)  # the second PUT is being sent
    finally:
        p.wait()
        if p.stdout is not None:
            p.stdout.close()
    assert run_peer(spool.dir, url, s3_env) == 0
    acc = reader(url)
    acc.Reload()
    assert steps_by_tag(acc) == {"loss": list(range(3 * per))}


def test_store_down_then_back_nothing_lost(
    s3server: WeedServer, s3_prefix: str, s3_env: dict[str, str], tmp_path: Path
) -> None:
    url = f"s3://{s3server.bucket}/{s3_prefix}/run"
    spool = Spool(tmp_path / "spool")
    naps: list[float] = []
    store = S3Store(url, retry=RetryPolicy(attempts=3, first_delay=0.01), sleep=naps.append)
    up = Uploader(store, spool, TailPolicy(max_writes=1))
    fill(spool, "loss", segments=2, per=10)
    assert up.upload_ready() == 2
    fill(spool, "loss", segments=3, per=10, start=20)
    s3server.stop(graceful=False)
    try:
        with pytest.raises(S3UnavailableError):
            up.upload_ready()
        assert naps == [0.01, 0.02]  # backed off, then gave up this call
        assert len(spool.sealed()) == 3  # still waiting, nothing dropped
        assert store.statistics().last_error is not None
    finally:
        s3server.start()
    # Resumes by itself, as the daemon's loop will call it: weed answers 500 to
    # GETs for a moment after a restart (its volumes re-register), which is
    # one more transient error to back off from.
    deadline = time.monotonic() + 30
    while True:
        try:
            up.upload_ready()
            break
        except S3UnavailableError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    assert spool.sealed() == []
    acc = reader(url)
    acc.Reload()
    assert steps_by_tag(acc) == {"loss": list(range(50))}
    assert [seq for seq, _ in up.placed] == [1, 2, 3, 4, 5]
