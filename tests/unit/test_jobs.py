"""``daemon.jobs.EncoderPool`` with real worker processes.

* Results equal ``encode.array_record``'s bytes for records built as the SDK
  builds them (image, images, histogram; from data and from a blob file).
* A bad record (unknown kind, specs that do not add up, a blob that is
  missing, a FIFO, a symlink or sparse) becomes that job's exception; the jobs
  around it are unaffected.
* A worker SIGKILLed in the middle of a job is replaced, the job reported as
  ``WorkerDiedError``, the next job encoded by the new worker.
* ``close()`` leaves no child process (checked by pid); workers die with a
  SIGKILLed daemon.
* Embeddings: projector files written in submission order, errors returned.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import pytest

from summaryd import convert_embedding, convert_image, convert_numeric, wire
from summaryd.arrays import array_parts
from summaryd.daemon import encode, jobs
from summaryd.daemon.jobs import EncoderPool, WorkerDiedError, read_blob

Payload = tuple[dict[str, Any], list[Any]]


def record(kind: int, payload: Payload, tag: str = "t", step: int = 3) -> tuple[list[Any], bytes]:
    """An array record and its data as ``SummaryWriter._put_arrays`` commits them."""
    params, arrays = payload
    specs, parts, _ = array_parts(arrays)
    return [kind, 1, tag, step, 1.5, params, specs, b""], b"".join(bytes(p) for p in parts)


def image(seed: int = 0, side: int = 64) -> tuple[list[Any], bytes]:
    rng = np.random.default_rng(seed)
    x = rng.random((3, side, side), dtype=np.float32)
    return record(wire.IMAGE, convert_image.image(x, "CHW"))


def histogram(n: int = 10_000) -> tuple[list[Any], bytes]:
    # Small integers: values.dot(values) is exact, whatever BLAS kernel a process
    # picks (its last bits otherwise depend on the thread setup, see test_numeric).
    values = np.random.default_rng(1).integers(-50, 50, n).astype(np.float32)
    return record(wire.HISTOGRAM, convert_numeric.histogram(values, "tensorflow", None))


@pytest.fixture
def pool() -> Iterator[EncoderPool]:
    p = EncoderPool(2)
    yield p
    p.close()


def run(p: EncoderPool, timeout: float = 60.0) -> dict[int, bytes | Exception]:
    assert p.wait(timeout), "jobs did not finish"
    out = dict(p.results())
    assert p.outstanding() == 0
    return out


def test_results_equal_array_record(pool: EncoderPool, tmp_path: Path) -> None:
    batch = np.random.default_rng(2).integers(0, 256, (4, 3, 16, 16), dtype=np.uint8)
    recs = {
        1: image(),
        2: histogram(),
        3: record(wire.IMAGES, convert_image.images(batch, "NCHW")),
        4: image(seed=5, side=200),
        5: record(wire.IMAGE, convert_image.image(np.zeros((1, 8, 8), np.float32), "CHW")),
    }
    for job, (rec, data) in recs.items():
        pool.encode(job, rec, data)
    blob = tmp_path / "ring.b7"
    brec, bdata = image(seed=9)
    blob.write_bytes(bdata)
    pool.encode(6, [*brec[:7], 7], None, str(blob))
    got = run(pool)
    assert set(got) == {1, 2, 3, 4, 5, 6}
    for job, (rec, data) in recs.items():
        assert got[job] == encode.array_record(rec, data), job
    assert got[6] == encode.array_record([*brec[:7], 7], bdata)


def test_wake_is_called_and_memoryviews_are_accepted() -> None:
    woken = threading.Event()
    with EncoderPool(1, wake=woken.set) as p:
        rec, data = image()
        buf = bytearray(b"\0" * 5 + data)
        p.encode(1, rec, memoryview(buf)[5:])
        assert woken.wait(60)
        assert p.wait(60)
        assert p.results() == [(1, encode.array_record(rec, data))]
        assert p.results() == []


def test_no_workers_encodes_in_process() -> None:
    with EncoderPool(0) as p:
        rec, data = image()
        p.encode(1, rec, data)
        p.encode(2, [99, *rec[1:]], data)
        got = run(p)
        assert p.worker_pids() == []
        assert got[1] == encode.array_record(rec, data) and isinstance(got[2], ValueError)


def test_bad_records_become_their_jobs_exceptions(pool: EncoderPool, tmp_path: Path) -> None:
    good, data = image()
    fifo = tmp_path / "fifo.b1"
    os.mkfifo(fifo)
    link = tmp_path / "link.b2"
    link.symlink_to(tmp_path / "target")
    (tmp_path / "target").write_bytes(data)
    sparse = tmp_path / "sparse.b3"
    with open(sparse, "wb") as f:
        f.truncate(len(data))
    pool.encode(1, good, data)
    pool.encode(2, [99, *good[1:]], data)  # no encoder for the kind
    pool.encode(3, good, data[:-4])  # specs describe more bytes than sent
    pool.encode(4, good, data)
    pool.encode(5, [*good[:7], 0], None, str(tmp_path / "missing.b0"))
    pool.encode(6, [*good[:7], 1], None, str(fifo))
    pool.encode(7, [*good[:7], 2], None, str(link))
    pool.encode(8, [*good[:7], 3], None, str(sparse))
    pool.encode(9, [*good[:5], {"x": object()}, *good[6:]], data)  # cannot reach a worker
    pool.encode(10, good, data)
    got = run(pool)
    want = encode.array_record(good, data)
    assert got[1] == got[4] == got[10] == want
    assert isinstance(got[2], ValueError) and "has no event encoder" in str(got[2])
    assert isinstance(got[3], ValueError) and "more bytes" in str(got[3])
    for job, blob, why in ((5, 0, "No such file"), (6, 1, "regular file"), (8, 3, "sparse")):
        exc = got[job]
        assert isinstance(exc, ValueError), exc
        assert str(exc).startswith(f"blob {blob} unreadable: ") and why in str(exc), exc
    assert isinstance(got[7], ValueError) and "unreadable" in str(got[7])  # O_NOFOLLOW
    assert isinstance(got[9], TypeError)


def test_read_blob_checks(tmp_path: Path) -> None:
    path = tmp_path / "r.b1"
    path.write_bytes(b"abc")
    view = read_blob(str(path))
    assert bytes(view) == b"abc" and view.readonly
    with pytest.raises(OSError, match="exceeds"):
        old, jobs.MAX_BLOB = jobs.MAX_BLOB, 2
        try:
            read_blob(str(path))
        finally:
            jobs.MAX_BLOB = old


def _busy(pid: int, since: float) -> bool:
    t = psutil.Process(pid).cpu_times()
    return t.user + t.system > since + 0.03


def test_a_worker_killed_mid_job_is_replaced() -> None:
    with EncoderPool(1) as p:
        small, data = image()
        p.encode(1, small, data)
        assert p.wait(60)
        (pid,) = p.worker_pids()
        t = psutil.Process(pid).cpu_times()
        # Large enough to take a quarter of a second or more; killed once it runs.
        rec, big = image(seed=3, side=3000)
        p.encode(2, rec, big)
        p.encode(3, small, data)
        deadline = time.monotonic() + 60
        while not _busy(pid, t.user + t.system):
            assert time.monotonic() < deadline
            time.sleep(0.005)
        os.kill(pid, signal.SIGKILL)
        got = run(p)
        assert isinstance(got[2], WorkerDiedError) and "signal 9" in str(got[2])
        assert got[1] == got[3] == encode.array_record(small, data)
        (new,) = p.worker_pids()
        assert new != pid and not psutil.pid_exists(pid)


def test_a_hung_job_is_killed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jobs, "JOB_TIMEOUT", 0.05)
    with EncoderPool(1) as p:
        p.encode(1, *image(seed=3, side=3000))  # a quarter of a second or more
        got = run(p)
        assert isinstance(got[1], WorkerDiedError) and "killed after 0.05 s" in str(got[1])


def test_a_job_that_never_reached_a_dead_worker_is_retried() -> None:
    with EncoderPool(1) as p:
        rec, data = image()
        p.encode(1, rec, data)
        assert p.wait(60)
        (pid,) = p.worker_pids()
        os.kill(pid, signal.SIGKILL)
        psutil.Process(pid).wait(10) if psutil.pid_exists(pid) else None
        p.encode(2, rec, data)
        assert run(p)[2] == encode.array_record(rec, data)


def test_close_leaves_no_child_process() -> None:
    # Children of this process that are not the pool's (a session-scoped test
    # server started by another test directory) stay out of the count.
    before = {c.pid for c in psutil.Process().children(recursive=True)}
    p = EncoderPool(2)
    rec, data = image()
    for job in range(6):
        p.encode(job, rec, data)
    assert p.wait(60)
    pids = p.worker_pids()
    assert len(pids) == 2
    p.encode(99, *image(seed=4, side=2000))  # busy at close: not waited for
    p.close()
    for pid in pids:
        assert not psutil.pid_exists(pid), pid
    assert [c for c in psutil.Process().children(recursive=True) if c.pid not in before] == []
    with pytest.raises(RuntimeError):
        p.encode(100, rec, data)
    p.close()  # idempotent


_DAEMON = textwrap.dedent(
    """
    import json, sys, time
    from summaryd.daemon.jobs import EncoderPool
    p = EncoderPool(2)
    while len(p.worker_pids()) < 2:
        time.sleep(0.01)
    print(json.dumps(p.worker_pids()), flush=True)
    sys.stdin.read()
    """
)


def test_workers_die_with_a_killed_daemon() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", _DAEMON], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    try:
        assert proc.stdout is not None
        pids = json.loads(proc.stdout.readline())
        workers = [psutil.Process(pid) for pid in pids]
        proc.kill()
        proc.wait()
        gone, alive = psutil.wait_procs(workers, timeout=10)
        assert alive == []
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for f in (proc.stdin, proc.stdout):
            if f is not None:
                f.close()


def test_embeddings_are_written_in_order(pool: EncoderPool, tmp_path: Path) -> None:
    mat = np.arange(12, dtype=np.float32).reshape(4, 3)
    for job, tag in enumerate(("a", "b", "c")):
        params, arrays = convert_embedding.embedding(mat, None, None, None)
        params["subdir"] = convert_embedding.subdir(job, tag)
        specs, parts, _ = array_parts(arrays)
        pool.project(job, str(tmp_path), params, specs, b"".join(bytes(p) for p in parts))
    pool.project(9, str(tmp_path), {"subdir": "../x"}, specs, b"".join(bytes(p) for p in parts))
    got = run(pool)
    assert got[0] == got[1] == got[2] == b""
    assert isinstance(got[9], ValueError) and "not written" in str(got[9])
    config = (tmp_path / "projector_config.pbtxt").read_text()
    assert [config.index(f"/{t}") for t in "abc"] == sorted(config.index(f"/{t}") for t in "abc")
