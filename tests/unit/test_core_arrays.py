"""The core with array records: encoding slots keep each client's order, the
pool's map is used for batches, bad records are isolated, blobs are released
only once their records are written, embeddings become file actions.

The encoder used here is a stand-in registered for ``wire.TENSOR`` (the real
encoders have their own tests): the core's rules do not depend on what an
encoder computes, only on when and in which order its output is placed.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import msgpack
import numpy as np
import pytest

from summaryd import wire
from summaryd.arrays import array_parts
from summaryd.daemon import encode
from summaryd.daemon.core import (
    Ack,
    Append,
    Core,
    Notice,
    RemoveBlobs,
    SetTail,
)
from summaryd.proto import summary_pb2

from .test_core import LOG, T0, WALL, Client, events, of


def _sum_encoder(tag: str, params: dict[str, Any], arrays: list[np.ndarray]) -> list[Any]:
    if params.get("fail"):
        raise ValueError("refused by the encoder")
    total = float(sum(a.sum() for a in arrays))
    return [summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=tag, simple_value=total)])]


@pytest.fixture(autouse=True)
def _stand_in_encoder(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setitem(encode.MEDIA_ENCODERS, wire.TENSOR, _sum_encoder)
    yield


def array_rec(
    c: Client,
    tag: str,
    values: list[float],
    step: int = 1,
    params: dict[str, Any] | None = None,
    blob: int | None = None,
    kind: int = wire.TENSOR,
    wid: int = 1,
) -> tuple[int, int, bytes]:
    specs, parts, _ = array_parts([np.asarray(values, dtype="f8")])
    data: Any = blob if blob is not None else b"".join(bytes(p) for p in parts)
    return c.rec(kind, wid, tag, step, WALL + step, params or {}, specs, data)


def tags_values(data: bytes) -> list[tuple[str, float, int]]:
    return [(v.tag, v.simple_value, e.step) for e in events(data) for v in e.summary.value]


def test_array_records_are_written_in_order_between_scalars() -> None:
    """Encoders finish in any order; each record's events still take its place."""
    futures: list[tuple[Future[Any], Any, Any]] = []

    def submit(fn: Any, work: Any) -> Future[Any]:
        fut: Future[Any] = Future()
        futures.append((fut, fn, work))
        return fut

    core = Core(submit=submit)
    c = Client(core)
    c.send(
        T0,
        c.open(),
        array_rec(c, "a", [1, 2], 1),
        c.scalar(1, "s", 0.5, 2),
        array_rec(c, "b", [3], 3),
        array_rec(c, "c", [4, 5, 6], 4),
    )
    assert len(futures) == 3  # started as they were drained
    futures[2][0].set_result(futures[2][1](futures[2][2]))
    assert of(core.tick(T0 + 0.5), Append) == []  # not due, and "a", "b" are still encoding
    for fut, fn, work in reversed(futures[:2]):
        fut.set_result(fn(work))
    [app] = of(core.tick(T0 + 1), Append)
    assert tags_values(app.data) == [("a", 3.0, 1), ("s", 0.5, 2), ("b", 3.0, 3), ("c", 15.0, 4)]


def test_a_due_run_waits_for_its_encoders() -> None:
    """A flush (or the latency bound) writes the run once its encoders are done."""
    pool = ThreadPoolExecutor(2)
    try:
        core = Core(submit=pool.submit)
        c = Client(core)
        c.send(T0, c.open(), *(array_rec(c, f"t{i}", [float(i)], i) for i in range(20)))
        core.flush(c.cid, 1, c.pos)
        acts = core.tick(T0)
        [app] = of(acts, Append)
        assert [t for t, _, _ in tags_values(app.data)] == [f"t{i}" for i in range(20)]
        assert of(acts, Ack)
    finally:
        pool.shutdown()


def test_a_refused_array_record_is_isolated() -> None:
    core = Core()
    c = Client(core)
    c.send(
        T0,
        c.open(),
        array_rec(c, "ok1", [1], 1),
        array_rec(c, "bad", [1], 2, params={"fail": True}),
        array_rec(c, "ok2", [2], 3),
    )
    acts = core.tick(T0 + 1)
    [app] = of(acts, Append)
    assert tags_values(app.data) == [("ok1", 1.0, 1), ("ok2", 2.0, 3)]
    [notice] = of(acts, Notice)
    assert "refused by the encoder" in notice.msg
    assert core.clients["c1"].malformed == 1


@pytest.mark.parametrize(
    "mutate",
    [
        lambda r: r[:7],  # no data field
        lambda r: [*r[:5], [], *r[6:]],  # params not a map
        lambda r: [*r[:3], "x", *r[4:]],  # step not an int
        lambda r: [*r[:6], [["<f8", [3]]], r[7]],  # specs describe more than the data
        lambda r: [*r[:7], "text"],  # data neither bytes nor a blob number
        lambda r: [*r[:7], -1],  # blob number out of range
        lambda r: [r[0], 99, *r[2:]],  # unknown writer
    ],
)
def test_malformed_array_records_are_notices(mutate: Any) -> None:
    core = Core()
    c = Client(core)
    good = msgpack.unpackb(array_rec(c, "t", [1.0])[2])
    c.send(T0, c.open(), c.raw(msgpack.packb(mutate(good))), array_rec(c, "after", [2.0]))
    acts = core.tick(T0 + 1)
    assert len(of(acts, Notice)) == 1
    [app] = of(acts, Append)
    assert tags_values(app.data)[-1] == ("after", 2.0, 1)


def test_blobs_are_read_through_the_loop_and_released_after_the_write() -> None:
    blobs = {7: np.asarray([10.0, 20.0]).tobytes()}
    reads: list[tuple[str, int]] = []

    def read_blob(cid: str, n: int) -> bytes:
        reads.append((cid, n))
        return blobs[n]

    core = Core(read_blob=read_blob)
    c = Client(core)
    c.send(T0, c.open(), array_rec(c, "big", [0.0, 0.0], blob=7))
    assert reads == [("c1", 7)]
    acts = core.plan_writes(T0)  # not due yet: the blob must stay
    assert of(acts + core.settle(T0), RemoveBlobs) == []
    acts = core.tick(T0 + 1)
    [app] = of(acts, Append)
    assert tags_values(app.data) == [("big", 30.0, 1)]
    assert of(acts, RemoveBlobs) == [RemoveBlobs("c1", (7,))]
    assert acts.index(of(acts, SetTail)[0]) < acts.index(of(acts, RemoveBlobs)[0])


def test_a_failed_write_keeps_the_blob() -> None:
    core = Core(read_blob=lambda cid, n: np.zeros(2).tobytes())
    c = Client(core)
    c.send(T0, c.open(), array_rec(c, "big", [0.0, 0.0], blob=3))
    acts = core.plan_writes(T0 + 1)
    [app] = of(acts, Append)
    core.write_failed(app, "No space left on device", T0 + 1)
    assert of(core.settle(T0 + 1), RemoveBlobs) == []
    acts = core.tick(T0 + 3)
    assert of(acts, RemoveBlobs) == [RemoveBlobs("c1", (3,))]


def test_an_unreadable_blob_is_a_notice_and_still_released() -> None:
    def read_blob(cid: str, n: int) -> bytes:
        raise FileNotFoundError(f"no blob {n}")

    core = Core(read_blob=read_blob)
    c = Client(core)
    c.send(T0, c.open(), array_rec(c, "big", [0.0], blob=5), c.scalar(1, "s", 1.0, 2))
    acts = core.tick(T0 + 1)
    assert "blob 5 unreadable" in of(acts, Notice)[0].msg
    assert of(acts, RemoveBlobs) == [RemoveBlobs("c1", (5,))]


def test_embedding_files_are_written_before_the_tail_moves() -> None:
    """Without a pool the loop's projector writer runs when the record's slot is
    needed, still before the tail passes the record."""
    written: list[tuple[str, dict[str, Any], list[Any]]] = []
    core = Core(project=lambda log_dir, params, arrays: written.append((log_dir, params, arrays)))
    c = Client(core)
    c.send(T0, c.open())
    core.tick(T0 + 1)
    before = c.pos
    c.send(
        T0 + 1,
        array_rec(c, "emb", [1.0, 2.0], kind=wire.EMBEDDING, params={"subdir": "00000/emb"}),
    )
    acts = core.plan_writes(T0 + 1.5) + core.settle(T0 + 1.5)
    assert all(t.pos <= before for t in of(acts, SetTail))
    acts = core.tick(T0 + 2)
    [(log_dir, params, arrays)] = written
    assert log_dir == LOG and params == {"subdir": "00000/emb"}
    np.testing.assert_array_equal(arrays[0], [1.0, 2.0])
    assert [t.pos for t in of(acts, SetTail)] == [c.pos]


def test_a_daemon_without_a_projector_writer_refuses_embeddings() -> None:
    core = Core()
    c = Client(core)
    c.send(T0, c.open(), array_rec(c, "", [1.0], kind=wire.EMBEDDING))
    assert "no projector files" in of(core.tick(T0 + 1), Notice)[0].msg


def test_with_a_pool_embedding_files_are_written_there_and_hold_the_tail() -> None:
    """The projector's files (seconds of work for a large matrix) are written in
    the pool, not the loop; the ring's tail passes the record only after them,
    and a failure is a notice to the client."""
    written: list[tuple[str, dict[str, Any]]] = []
    release = threading.Event()

    def project(log_dir: str, params: dict[str, Any], arrays: list[Any]) -> None:
        assert release.wait(10)
        if params.get("fail"):
            raise ValueError("add_embedding into x not written: disk on fire")
        written.append((log_dir, params))

    pool = ThreadPoolExecutor(2)
    try:
        core = Core(submit=pool.submit, project=project)
        c = Client(core)
        c.send(T0, c.open())
        core.tick(T0 + 1)  # the file's first record written
        before = c.pos
        c.send(
            T0 + 1,
            array_rec(c, "", [1.0], kind=wire.EMBEDDING, params={"subdir": "00000/a"}),
            array_rec(c, "", [1.0], kind=wire.EMBEDDING, params={"fail": True}),
        )
        acts = core.plan_writes(T0 + 1.5) + core.settle(T0 + 1.5)  # not due: no waiting
        assert written == []
        assert all(t.pos <= before for t in of(acts, SetTail))
        release.set()
        acts = core.tick(T0 + 3)
        assert written == [(LOG, {"subdir": "00000/a"})]
        assert any("disk on fire" in n.msg for n in of(acts, Notice))
        assert [t.pos for t in of(acts, SetTail)] == [c.pos]
    finally:
        release.set()
        pool.shutdown()


def test_embedding_files_go_to_the_in_order_executor() -> None:
    """Each embedding merges into its log dir's config, so their jobs run one at a
    time in record order (torch lists embeddings in call order), apart from the
    encoding pool."""
    encoding = ThreadPoolExecutor(2)
    serial = ThreadPoolExecutor(1)
    used: list[str] = []
    written: list[str] = []

    def submit(fn: Any, work: Any) -> Future[Any]:
        used.append("pool")
        return encoding.submit(fn, work)

    def submit_in_order(fn: Any, work: Any) -> Future[Any]:
        used.append("in order")
        return serial.submit(fn, work)

    try:
        core = Core(
            submit=submit,
            submit_in_order=submit_in_order,
            project=lambda log_dir, params, arrays: written.append(params["subdir"]),
        )
        c = Client(core)
        c.send(
            T0,
            c.open(),
            *(
                array_rec(c, "", [1.0], kind=wire.EMBEDDING, params={"subdir": f"0000{i}/e"})
                for i in range(5)
            ),
            array_rec(c, "t", [1.0]),
        )
        core.tick(T0 + 1)
        assert used == ["in order"] * 5 + ["pool"]
        assert written == [f"0000{i}/e" for i in range(5)]
    finally:
        encoding.shutdown()
        serial.shutdown()
