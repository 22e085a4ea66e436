"""The core with array records: each becomes an ``Encode`` (or, for
add_embedding, ``Project``) action whose result comes back as an input; slots
keep each client's order, the core never waits for a result (a due run writes
what is ready), bad records are isolated, blobs are released only once their
records are written, and a closing run closes once its slots are written.

The encoder used here is a stand-in registered for ``wire.TENSOR`` (the real
encoders have their own tests): the core's rules do not depend on what an
encoder computes, only on when and in which order its output is placed.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import msgpack
import numpy as np
import pytest

from summaryd import wire
from summaryd.arrays import array_parts
from summaryd.daemon import encode
from summaryd.daemon.actions import (
    Ack,
    Action,
    Append,
    CloseFile,
    Encode,
    Notice,
    Project,
    RemoveBlobs,
    SetTail,
)
from summaryd.daemon.arrays import decode_arrays
from summaryd.daemon.core import Core
from summaryd.proto import summary_pb2

from .core_helpers import LOG, T0, WALL, Client, events, of


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


def payload(act: Encode | Project, blobs: dict[int, bytes] | None = None) -> bytes | memoryview:
    """What the loop's encoder reads: the record's data, or its blob."""
    if act.blob is None:
        assert act.data is not None
        return act.data
    if blobs is None or act.blob not in blobs:
        raise ValueError(f"blob {act.blob} unreadable: no such file")
    return blobs[act.blob]


def result(act: Encode, blobs: dict[int, bytes] | None = None) -> bytes | Exception:
    try:
        return encode.array_record(act.rec, payload(act, blobs))
    except Exception as exc:  # as the loop's pool: returned, never raised
        return exc


def run_jobs(
    core: Core, acts: list[Action], now: float, blobs: dict[int, bytes] | None = None
) -> list[Action]:
    """Carry out the Encode actions among ``acts`` at once (as a pool would,
    later), feed their results back, and tick."""
    for act in of(acts, Encode):
        core.encoded(act.job, result(act, blobs), now)
    return core.tick(now)


def test_array_records_are_written_in_order_between_scalars() -> None:
    """Encodings finish in any order; each record's events still take its place."""
    core = Core()
    c = Client(core)
    c.send(
        T0,
        c.open(),
        array_rec(c, "a", [1, 2], 1),
        c.scalar(1, "s", 0.5, 2),
        array_rec(c, "b", [3], 3),
        array_rec(c, "c", [4, 5, 6], 4),
    )
    acts = core.tick(T0 + 0.5)
    jobs = of(acts, Encode)
    assert [j.rec[2] for j in jobs] == ["a", "b", "c"]  # asked for as they were drained
    core.encoded(jobs[2].job, result(jobs[2]), T0 + 0.5)
    assert of(core.tick(T0 + 0.5), Append) == []  # not due, and "a", "b" are still encoding
    for job in reversed(jobs[:2]):
        core.encoded(job.job, result(job), T0 + 0.5)
    [app] = of(core.tick(T0 + 1), Append)
    assert tags_values(app.data) == [("a", 3.0, 1), ("s", 0.5, 2), ("b", 3.0, 3), ("c", 15.0, 4)]


def test_a_due_run_writes_what_is_encoded_and_never_waits() -> None:
    """A flush makes the run due: the encoded front is written at once, the
    rest (and the acknowledgement) when the slow encoding comes back."""
    core = Core()
    c = Client(core)
    c.send(T0, c.open(), array_rec(c, "t0", [0.0], 0), array_rec(c, "t1", [1.0], 1))
    c.send(T0, c.scalar(1, "s", 2.0, 2), array_rec(c, "t3", [3.0], 3))
    core.flush(c.cid, 1, c.pos)
    acts = core.tick(T0)
    jobs = of(acts, Encode)
    core.encoded(jobs[0].job, result(jobs[0]), T0)
    core.encoded(jobs[2].job, result(jobs[2]), T0)
    acts = core.tick(T0)
    [app] = of(acts, Append)
    assert [t for t, _, _ in tags_values(app.data)] == ["t0"]  # the header too, before it
    assert of(acts, Ack) == []
    tail = of(acts, SetTail)[-1].pos
    assert tail < c.pos  # held at the slow record
    core.encoded(jobs[1].job, result(jobs[1]), T0 + 0.1)
    acts = core.tick(T0 + 0.1)
    [app] = of(acts, Append)
    assert [t for t, _, _ in tags_values(app.data)] == ["t1", "s", "t3"]
    assert of(acts, Ack) == [Ack(c.cid, 1)]


def test_a_closing_run_closes_once_its_encodings_are_back_and_others_go_on() -> None:
    """A close after a large record does not stall the daemon: another
    client's flush is acknowledged while the encoding runs; the closing run's
    file closes right after its last record is written."""
    core = Core(linger=5.0)
    a, b = Client(core, "a"), Client(core, "b")
    a.send(T0, a.open(), array_rec(a, "big", [1.0], 1), a.close())
    [job] = of(core.tick(T0), Encode)
    b.send(T0 + 5, b.open(log_dir=LOG + "-b"), b.scalar(1, "s", 1.0, 1))
    core.flush("b", 7, b.pos)
    acts = core.tick(T0 + 5)  # a's linger is over: its run ends while "big" encodes
    assert Ack("b", 7) in acts
    assert of(acts, CloseFile) == []
    assert core.runs.keys() == {(LOG + "-b", "")}  # the ending run takes no writers
    acts = run_jobs(core, [job], T0 + 5.2)
    [app] = of(acts, Append)
    assert tags_values(app.data) == [("big", 1.0, 1)]
    assert acts.index(app) < acts.index(CloseFile(1))
    assert of(acts, SetTail)[-1] == SetTail("a", a.pos)


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
    acts = run_jobs(core, core.tick(T0), T0 + 1)
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
    acts = core.tick(T0)
    notices = of(acts, Notice)
    acts = run_jobs(core, acts, T0 + 1)
    assert len(notices + of(acts, Notice)) == 1
    [app] = of(acts, Append)
    assert tags_values(app.data)[-1] == ("after", 2.0, 1)


def test_blobs_are_read_by_the_encoder_and_released_after_the_write() -> None:
    blobs = {7: np.asarray([10.0, 20.0]).tobytes()}
    core = Core()
    c = Client(core)
    c.send(T0, c.open(), array_rec(c, "big", [0.0, 0.0], blob=7))
    acts = core.plan_writes(T0)
    [job] = of(acts, Encode)
    assert (job.blob, job.data) == (7, None)
    core.encoded(job.job, result(job, blobs), T0)
    acts = core.plan_writes(T0)  # not due yet: the blob must stay
    assert of(acts + core.settle(T0), RemoveBlobs) == []
    acts = core.tick(T0 + 1)
    [app] = of(acts, Append)
    assert tags_values(app.data) == [("big", 30.0, 1)]
    assert of(acts, RemoveBlobs) == [RemoveBlobs("c1", (7,))]
    assert acts.index(of(acts, SetTail)[0]) < acts.index(of(acts, RemoveBlobs)[0])


def test_a_failed_write_keeps_the_blob() -> None:
    core = Core()
    c = Client(core)
    c.send(T0, c.open(), array_rec(c, "big", [0.0, 0.0], blob=3))
    [job] = of(core.plan_writes(T0), Encode)
    core.encoded(job.job, result(job, {3: np.zeros(2).tobytes()}), T0)
    acts = core.plan_writes(T0 + 1)
    [app] = of(acts, Append)
    core.write_failed(app, "No space left on device", T0 + 1)
    assert of(core.settle(T0 + 1), RemoveBlobs) == []
    acts = core.tick(T0 + 3)
    assert of(acts, RemoveBlobs) == [RemoveBlobs("c1", (3,))]


def test_an_unreadable_blob_is_a_notice_and_still_released() -> None:
    core = Core()
    c = Client(core)
    c.send(T0, c.open(), array_rec(c, "big", [0.0], blob=5), c.scalar(1, "s", 1.0, 2))
    acts = run_jobs(core, core.tick(T0), T0 + 1, blobs={})
    assert "blob 5 unreadable" in of(acts, Notice)[0].msg
    assert of(acts, RemoveBlobs) == [RemoveBlobs("c1", (5,))]


def test_embedding_files_hold_the_tail_until_written_and_failures_are_notices() -> None:
    """add_embedding's files (seconds of work for a large matrix) are a
    ``Project`` action; the ring's tail passes the record only after its
    result, and a failure is a notice to the client."""
    core = Core()
    c = Client(core)
    c.send(T0, c.open())
    core.tick(T0 + 1)  # the file's first record written
    before = c.pos
    c.send(
        T0 + 1,
        array_rec(c, "", [1.0, 2.0], kind=wire.EMBEDDING, params={"subdir": "00000/a"}),
        array_rec(c, "", [1.0], kind=wire.EMBEDDING, params={"fail": True}),
    )
    acts = core.plan_writes(T0 + 1.5) + core.settle(T0 + 1.5)
    projects = of(acts, Project)
    assert [(p.log_dir, p.rec[5]) for p in projects] == [
        (LOG, {"subdir": "00000/a"}),
        (LOG, {"fail": True}),
    ]
    [arr] = decode_arrays(projects[0].rec[6], payload(projects[0]))
    np.testing.assert_array_equal(arr, [1, 2])
    assert of(acts, Encode) == []
    assert all(t.pos <= before for t in of(acts, SetTail))
    core.encoded(projects[0].job, b"", T0 + 2)
    core.encoded(projects[1].job, ValueError("not written: disk on fire"), T0 + 2)
    acts = core.tick(T0 + 3)
    assert any("disk on fire" in n.msg for n in of(acts, Notice))
    assert [t.pos for t in of(acts, SetTail)] == [c.pos]
