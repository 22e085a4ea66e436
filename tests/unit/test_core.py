"""Tests for the daemon's core (``summaryd.daemon.core``).

The core does no I/O and reads no clock (STYLE sections 1 and 8): these tests
feed it ring records built with msgpack, as the SDK packs them, at chosen
``now`` values, and check the actions it returns.  Written bytes are read back
as TFRecords of TensorBoard Events.  The rule-based state machine over random
clients is ``test_core_machine.py``.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from typing import Any

import msgpack
import pytest
from tensorboard.compat.proto import event_pb2 as tb_event_pb2

from summaryd import wire
from summaryd.daemon.actions import (
    Ack,
    Action,
    Append,
    CheckAlive,
    CloseFile,
    Notice,
    OpenFile,
    PurgeFiles,
    RemoveRing,
    ScanRings,
    SetTail,
)
from summaryd.daemon.core import (
    DEFAULT_MAX_LATENCY,
    NOTICE_LIMIT,
    PURGE_WAIT,
    WRITE_CHUNK,
    Core,
)
from summaryd.daemon.tfrecord import HEADER_BYTES, whole_records_length
from summaryd.ring import padded_size

# Paths are only names here: the core never touches the file system.
LOG = "/nonexistent/summaryd-unit/run"
LOG2 = "/nonexistent/summaryd-unit/other"
T0 = 1000.0  # the loop's monotonic clock
WALL = 1700000000.0  # trainers' wall clock

Record = tuple[int, int, bytes]


# -- helpers -------------------------------------------------------------------------------


class Client:
    """One SDK client: packs records the way ``sdk/writer.py`` does, at ring positions."""

    def __init__(self, core: Core, cid: str = "c1", now: float = T0, tail: int = 0) -> None:
        self.core = core
        self.cid = cid
        self.pos = tail
        core.hello(cid, 1234, 99, f"ring-{cid}", now, tail=tail)

    def raw(self, payload: bytes) -> Record:
        start = self.pos
        self.pos += padded_size(len(payload))
        return (start, self.pos, payload)

    def rec(self, *items: Any) -> Record:
        return self.raw(msgpack.packb(list(items), use_bin_type=True))

    def open(
        self,
        wid: int = 1,
        log_dir: str = LOG,
        suffix: str = "",
        max_queue: int = 10,
        flush_secs: float = 120.0,
        purge_step: int | None = None,
        walltime: float = WALL,
    ) -> Record:
        return self.rec(
            wire.OPEN, wid, log_dir, suffix, max_queue, flush_secs, purge_step, walltime
        )

    def scalar(
        self, wid: int, tag: str, value: float, step: int | None = None, walltime: float = WALL + 1
    ) -> Record:
        return self.rec(wire.SCALAR, wid, tag, value, step, walltime)

    def close(self, wid: int = 1) -> Record:
        return self.rec(wire.CLOSE, wid)

    def send(self, now: float, *recs: Record) -> None:
        self.core.records(self.cid, list(recs), now)


def events(data: bytes) -> list[Any]:
    """The Events in ``data``, which must be whole TFRecords."""
    assert whole_records_length(data) == len(data)
    out = []
    o = 0
    while o < len(data):
        (n,) = struct.unpack_from("<Q", data, o)
        out.append(tb_event_pb2.Event.FromString(data[o + HEADER_BYTES : o + HEADER_BYTES + n]))
        o += HEADER_BYTES + n + 4
    return out


def scalars(data: bytes) -> list[tuple[str, float]]:
    return [(v.tag, v.simple_value) for e in events(data) for v in e.summary.value]


def of(actions: Iterable[Action], kind: type) -> list[Any]:
    return [a for a in actions if isinstance(a, kind)]


def index(actions: list[Action], kind: type) -> int:
    return next(i for i, a in enumerate(actions) if isinstance(a, kind))


# -- OPEN ------------------------------------------------------------------------------------------


def test_open_emits_open_file_then_the_version_record() -> None:
    core = Core()
    c = Client(core)
    c.send(T0, c.open(suffix=".sfx"))
    acts = core.tick(T0)
    assert acts == [OpenFile(1, LOG, ".sfx")]
    acts = core.tick(T0 + DEFAULT_MAX_LATENCY)
    [app] = of(acts, Append)
    assert app.run_id == 1 and app.records == 1
    [ev] = events(app.data)
    assert ev.file_version == "brain.Event:2"
    assert ev.source_metadata.writer == "tensorboard.summary.writer.event_file_writer"
    assert ev.wall_time == WALL
    assert ev.step == 0 and not ev.HasField("summary")


def test_first_append_starts_with_the_version_record() -> None:
    core = Core()
    c = Client(core)
    c.send(T0, c.open(), c.scalar(1, "loss", 0.5, 1), c.scalar(1, "loss", 0.25, 2))
    acts = core.tick(T0 + 1)
    [app] = of(acts, Append)
    evs = events(app.data)
    assert evs[0].file_version == "brain.Event:2"
    assert [(v.tag, v.simple_value, e.step) for e in evs[1:] for v in e.summary.value] == [
        ("loss", 0.5, 1),
        ("loss", 0.25, 2),
    ]
    assert app.records == 3


def test_purge_step_writes_the_version_and_start_pair() -> None:
    core = Core()
    c = Client(core)
    c.send(T0, c.open(purge_step=42), c.scalar(1, "x", 1.0, 42))
    assert of(core.tick(T0), ScanRings) == [ScanRings()]  # the loop scans, then answers
    core.scanned(T0)
    [app] = of(core.tick(T0 + 1), Append)
    version, purge_version, start, scalar = events(app.data)
    assert version.file_version == "brain.Event:2" and version.step == 0
    assert version.HasField("source_metadata")
    # torch's SummaryWriter(purge_step=...) pair: a bare version event, then START.
    assert purge_version.file_version == "brain.Event:2" and purge_version.step == 42
    assert not purge_version.HasField("source_metadata")
    assert start.session_log.status == tb_event_pb2.SessionLog.START and start.step == 42
    assert scalar.summary.value[0].tag == "x"


def test_open_outside_int64_purge_step_leaves_nothing_behind() -> None:
    """A rejected OPEN must not half-create a run that no writer can ever close."""
    core = Core()
    c = Client(core)
    c.send(T0, c.open(purge_step=1 << 63))
    acts = core.tick(T0)
    assert len(of(acts, Notice)) == 1
    assert of(acts, OpenFile) == []
    assert core.runs == {}
    # Today a run is left half-made: no writer can close it, so even a dead client's
    # departure leaves its file open.
    core.gone(c.cid, T0)
    core.tick(T0 + 5)
    assert core.runs == {}


# -- latency and max_queue -------------------------------------------------------------------------


def test_nothing_is_written_before_the_latency() -> None:
    core = Core()
    c = Client(core)
    c.send(T0, c.open(), *(c.scalar(1, "t", float(i), i) for i in range(5)))
    assert of(core.tick(T0), Append) == []
    assert of(core.tick(T0 + 0.5), Append) == []
    c.send(T0 + 0.9, c.scalar(1, "t", 5.0, 5))  # a later record does not restart the clock
    assert of(core.tick(T0 + 0.999), Append) == []
    acts = core.tick(T0 + 1.0)
    [app] = of(acts, Append)
    assert scalars(app.data) == [("t", float(i)) for i in range(6)]
    assert of(core.tick(T0 + 5), Append) == []


@pytest.mark.parametrize(
    ("flush_secs", "max_latency", "latency"),
    [(120.0, 1.0, 1.0), (0.25, 1.0, 0.25), (120.0, 5.0, 5.0), (3.0, 5.0, 3.0), (0, 1.0, 0.0)],
)
def test_latency_is_min_of_max_latency_and_flush_secs(
    flush_secs: float, max_latency: float, latency: float
) -> None:
    core = Core(max_latency=max_latency)
    c = Client(core)
    c.send(T0, c.open(flush_secs=flush_secs))
    assert core.next_deadline() == T0 + latency
    if latency > 0:
        assert of(core.tick(T0 + latency * 0.99), Append) == []
    assert len(of(core.tick(T0 + latency), Append)) == 1


def test_max_queue_triggers_a_write() -> None:
    core = Core()
    c = Client(core)
    c.send(T0, c.open(max_queue=3))
    core.tick(T0 + 1)  # the version record
    c.send(T0 + 2, c.scalar(1, "t", 1.0), c.scalar(1, "t", 2.0))
    assert of(core.tick(T0 + 2), Append) == []
    c.send(T0 + 2, c.scalar(1, "t", 3.0))
    [app] = of(core.tick(T0 + 2), Append)
    assert scalars(app.data) == [("t", 1.0), ("t", 2.0), ("t", 3.0)]
    assert app.records == 3


def test_max_queue_is_the_smallest_of_the_writers() -> None:
    core = Core()
    a, b = Client(core, "a"), Client(core, "b")
    a.send(T0, a.open(max_queue=10))
    b.send(T0, b.open(max_queue=2))
    core.tick(T0 + 1)
    a.send(T0 + 2, a.scalar(1, "t", 1.0))
    assert of(core.tick(T0 + 2), Append) == []
    a.send(T0 + 2, a.scalar(1, "t", 2.0))
    assert len(of(core.tick(T0 + 2), Append)) == 1


def test_write_chunk_triggers_a_write() -> None:
    """Module docstring: a write happens when "the buffer reached WRITE_CHUNK bytes"."""
    core = Core()
    c = Client(core)
    c.send(T0, c.open())
    core.tick(T0 + 1)
    body = "x" * (WRITE_CHUNK // 4)
    c.send(T0 + 2, *(c.rec(wire.TEXT, 1, "big", body, i, WALL) for i in range(5)))
    [app] = of(core.tick(T0 + 2), Append)
    assert len(app.data) >= WRITE_CHUNK


# -- next_deadline ---------------------------------------------------------------------------------


def test_next_deadline() -> None:
    core = Core()
    assert core.next_deadline() is None
    a, b = Client(core, "a"), Client(core, "b")
    a.send(T0, a.open(log_dir=LOG))
    assert core.next_deadline() == T0 + 1.0
    a.send(T0 + 0.5, a.scalar(1, "t", 1.0))
    assert core.next_deadline() == T0 + 1.0  # the oldest pending record counts
    b.send(T0 + 0.6, b.open(log_dir=LOG2, flush_secs=0.1))
    assert core.next_deadline() == pytest.approx(T0 + 0.7)
    core.tick(T0 + 0.7)
    assert core.next_deadline() == T0 + 1.0
    core.tick(T0 + 1.0)
    assert core.next_deadline() is None
    a.send(T0 + 3, a.scalar(1, "t", 2.0))
    assert core.next_deadline() == T0 + 4.0


# -- flush and tails -------------------------------------------------------------------------------


def test_flush_acks_after_the_append_and_the_tail() -> None:
    core = Core()
    c = Client(core)
    c.send(T0, c.open(), c.scalar(1, "t", 1.0), c.scalar(1, "t", 2.0))
    pos = c.pos
    core.flush(c.cid, 7, pos)
    acts = core.tick(T0 + 0.01)  # long before the latency
    i_app, i_tail, i_ack = index(acts, Append), index(acts, SetTail), index(acts, Ack)
    assert i_app < i_tail < i_ack
    assert scalars(acts[i_app].data) == [("t", 1.0), ("t", 2.0)]
    assert acts[i_tail] == SetTail(c.cid, pos)
    assert acts[i_ack] == Ack(c.cid, 7)
    assert of(core.tick(T0 + 0.02), Ack) == []  # acknowledged once


def test_flush_before_the_records_are_drained_waits_for_them() -> None:
    core = Core()
    c = Client(core)
    c.send(T0, c.open())
    r1, r2 = c.scalar(1, "t", 1.0), c.scalar(1, "t", 2.0)
    core.flush(c.cid, 1, c.pos)  # the client put r1, r2, then flushed; not yet drained
    assert of(core.tick(T0), Ack) == []
    c.send(T0 + 0.01, r1)
    acts = core.tick(T0 + 0.01)
    assert of(acts, Ack) == []
    assert all(t.pos < r2[1] for t in of(acts, SetTail))
    c.send(T0 + 0.02, r2)
    acts = core.tick(T0 + 0.02)
    assert of(acts, Ack) == [Ack(c.cid, 1)]
    written = b"".join(a.data for a in of(acts, Append))
    assert ("t", 2.0) in scalars(written)


def test_flush_of_an_empty_client_acks_at_once() -> None:
    core = Core()
    c = Client(core, tail=4096)
    core.flush(c.cid, 3, 4096)
    assert core.tick(T0) == [Ack(c.cid, 3)]


def test_flush_of_an_unknown_client_is_ignored() -> None:
    core = Core()
    core.flush("nobody", 1, 0)
    assert core.tick(T0) == []


def test_tail_does_not_pass_unwritten_records_of_another_run() -> None:
    core = Core()
    c = Client(core)
    open_a = c.open(1, log_dir=LOG, max_queue=3)
    open_b = c.open(2, log_dir=LOG2)
    a1 = c.scalar(1, "a", 1.0)
    b1 = c.scalar(2, "b", 1.0)
    a2 = c.scalar(1, "a", 2.0)  # run A now holds 3 records: max_queue
    c.send(T0, open_a, open_b, a1, b1, a2)
    acts = core.tick(T0)
    [app] = of(acts, Append)
    assert app.run_id == 1
    # Run B's first unwritten record is its OPEN's version event: the tail stops there.
    assert of(acts, SetTail) == [SetTail(c.cid, open_b[0])]
    b2 = c.scalar(2, "b", 2.0)
    a3 = c.scalar(1, "a", 3.0)
    c.send(T0 + 0.5, b2, a3)
    assert of(core.tick(T0 + 0.5), SetTail) == []
    acts = core.tick(T0 + 1.0)  # run B's latency (run A's a3 is younger)
    assert [a.run_id for a in of(acts, Append)] == [2]
    # a3 is still unwritten in run A: the tail stops at it.
    assert of(acts, SetTail) == [SetTail(c.cid, a3[0])]
    acts = core.tick(T0 + 1.5)
    assert of(acts, SetTail) == [SetTail(c.cid, c.pos)]


def test_tail_starts_from_the_adopted_tail() -> None:
    core = Core()
    c = Client(core, tail=800)
    assert core.tick(T0) == []
    c.send(T0, c.open(), c.scalar(1, "t", 1.0))
    assert of(core.tick(T0), SetTail) == []
    acts = core.tick(T0 + 1)
    assert of(acts, SetTail) == [SetTail(c.cid, c.pos)]


def test_pressure_forces_the_writes_that_hold_the_tail() -> None:
    core = Core()
    c = Client(core)
    c.send(T0, c.open(), c.scalar(1, "t", 1.0))
    core.pressure(c.cid)
    acts = core.tick(T0)
    assert len(of(acts, Append)) == 1
    assert of(acts, SetTail) == [SetTail(c.cid, c.pos)]


# -- CLOSE and shared runs -------------------------------------------------------------------------


def test_close_writes_pending_at_once_and_closes_the_file_after_the_linger() -> None:
    core = Core()
    c = Client(core)
    c.send(T0, c.open(), c.scalar(1, "t", 1.0), c.close(1))
    acts = core.tick(T0)
    assert [type(a) for a in acts] == [OpenFile, Append, SetTail]
    assert scalars(acts[1].data) == [("t", 1.0)]
    assert acts[2] == SetTail(c.cid, c.pos)
    assert core.next_deadline() == T0 + core.linger
    assert core.tick(T0 + core.linger - 0.01) == []
    assert core.tick(T0 + core.linger) == [CloseFile(1)]
    assert core.runs == {}


def test_another_process_opening_during_the_linger_joins_the_same_file() -> None:
    core = Core()
    a, b = Client(core, "a"), Client(core, "b")
    a.send(T0, a.open(), a.scalar(1, "a", 1.0), a.close(1))
    core.tick(T0)
    b.send(T0 + 1, b.open(), b.scalar(1, "b", 2.0), b.close(1))
    acts = core.tick(T0 + 1)
    assert of(acts, OpenFile) == [] and of(acts, CloseFile) == []
    assert [scalars(x.data) for x in of(acts, Append)] == [[("b", 2.0)]]
    assert core.tick(T0 + 1 + core.linger) == [CloseFile(1)]


def test_reopen_after_close_starts_a_new_file() -> None:
    core = Core()
    c = Client(core)
    c.send(T0, c.open(), c.close(1), c.open(1))
    acts = core.tick(T0)
    assert of(acts, OpenFile) == [OpenFile(1, LOG, ""), OpenFile(2, LOG, "")]
    assert of(acts, CloseFile) == [CloseFile(1)]
    # The first file is whole before the second exists (TensorBoard's Python
    # loader leaves a file for good once a later one appears); its descriptor
    # closes once that write is known to have worked.
    [first] = [a for a in of(acts, Append) if a.run_id == 1]
    assert acts.index(first) < acts.index(OpenFile(2, LOG, "")) < acts.index(CloseFile(1))


def test_a_second_writer_shares_the_run() -> None:
    core = Core()
    a, b = Client(core, "a"), Client(core, "b")
    a.send(T0, a.open(1), a.scalar(1, "a", 1.0))
    b.send(T0, b.open(5), b.scalar(5, "b", 1.0))
    a.send(T0, a.open(2), a.scalar(2, "a2", 1.0))  # same client, second writer
    acts = core.tick(T0)
    assert of(acts, OpenFile) == [OpenFile(1, LOG, "")]
    a.send(T0, a.close(1), a.close(2))
    acts = core.tick(T0)
    assert of(acts, CloseFile) == []  # b's writer is still open
    b.send(T0 + 0.1, b.scalar(5, "b", 2.0), b.close(5))
    acts = core.tick(T0 + 0.1)
    [app] = of(acts, Append)
    assert scalars(app.data) == [("a", 1.0), ("b", 1.0), ("a2", 1.0), ("b", 2.0)]
    assert of(core.tick(T0 + 0.1 + core.linger), CloseFile) == [CloseFile(1)]


def test_a_different_suffix_is_a_different_run() -> None:
    core = Core()
    c = Client(core)
    c.send(T0, c.open(1, suffix=""), c.open(2, suffix=".b"), c.open(3, log_dir=LOG2))
    assert of(core.tick(T0), OpenFile) == [
        OpenFile(1, LOG, ""),
        OpenFile(2, LOG, ".b"),
        OpenFile(3, LOG2, ""),
    ]


# -- gone ------------------------------------------------------------------------------------------


def test_gone_writes_closes_and_removes_the_ring_last() -> None:
    core = Core()
    c = Client(core)
    c.send(T0, c.open(1), c.open(2, log_dir=LOG2), c.scalar(1, "t", 1.0), c.scalar(2, "u", 2.0))
    core.tick(T0)
    core.gone(c.cid, T0 + 0.1)
    acts = core.tick(T0 + 0.1)
    assert len(of(acts, Append)) == 2
    assert acts[-1] == RemoveRing(c.cid)
    assert of(acts, SetTail) == [SetTail(c.cid, c.pos)]
    assert c.cid not in core.clients
    acts = core.tick(T0 + 0.1 + core.linger)
    assert sorted(a.run_id for a in of(acts, CloseFile)) == [1, 2]
    assert core.runs == {}
    assert core.tick(T0 + 20) == []


def test_gone_client_sharing_a_run_is_written_before_removal() -> None:
    core = Core()
    a, b = Client(core, "a"), Client(core, "b")
    a.send(T0, a.open(), a.scalar(1, "a", 1.0))
    b.send(T0, b.open(), b.scalar(1, "b", 1.0))
    core.tick(T0)
    core.gone("a", T0 + 0.1)
    acts = core.tick(T0 + 0.1)
    [app] = of(acts, Append)
    assert ("a", 1.0) in scalars(app.data)
    assert of(acts, CloseFile) == []  # b still writes there
    assert index(acts, Append) < acts.index(RemoveRing("a"))
    assert of(acts, RemoveRing) == [RemoveRing("a")]


def test_gone_unknown_client_is_ignored() -> None:
    core = Core()
    core.gone("nobody", T0)
    assert core.tick(T0) == []


def test_close_all_writes_closes_and_acks() -> None:
    core = Core()
    c = Client(core)
    c.send(T0, c.open(), c.scalar(1, "t", 1.0))
    core.flush(c.cid, 9, c.pos)
    c.send(T0, c.open(2, log_dir=LOG2))
    acts = core.close_all(T0)
    assert len(of(acts, Append)) == 2
    assert sorted(a.run_id for a in of(acts, CloseFile)) == [1, 2]
    assert Ack(c.cid, 9) in acts
    assert index(acts, Append) < acts.index(Ack(c.cid, 9))


# -- malformed records -----------------------------------------------------------------------------


def _bad_records(c: Client) -> dict[str, Record]:
    return {
        "garbage": c.raw(b"\xc1\xc1\xc1"),
        "truncated": c.raw(msgpack.packb([wire.SCALAR, 1, "t", 1.0, 1, WALL])[:-3]),
        "not-array": c.raw(msgpack.packb({"kind": 3})),
        "int": c.raw(msgpack.packb(3)),
        "empty-array": c.rec(),
        "unknown-kind": c.rec(99, 1),
        "str-kind": c.rec("SCALAR", 1, "t", 1.0, 1, WALL),
        "bool-kind": c.rec(True, 7, LOG, "", 10, 120.0, None, WALL),
        "float-kind": c.rec(3.0, 1, "t", 1.0, 1, WALL),
        "list-kind": c.rec([3], 1, "t", 1.0, 1, WALL),
        "kind-only": c.rec(wire.SCALAR),
        "unknown-writer": c.scalar(42, "t", 1.0),
        "unhashable-writer": c.rec(wire.SCALAR, [1], "t", 1.0, 1, WALL),
        "tag-int": c.rec(wire.SCALAR, 1, 5, 1.0, 1, WALL),
        "value-nil": c.rec(wire.SCALAR, 1, "t", None, 1, WALL),
        "value-str": c.rec(wire.SCALAR, 1, "t", "abc", 1, WALL),
        "step-float": c.rec(wire.SCALAR, 1, "t", 1.0, 1.5, WALL),
        "step-too-big": c.rec(wire.SCALAR, 1, "t", 1.0, 1 << 63, WALL),
        "walltime-nil": c.rec(wire.SCALAR, 1, "t", 1.0, 1, None),
        "arity": c.rec(wire.SCALAR, 1, "t", 1.0, 1),
        "text-body-int": c.rec(wire.TEXT, 1, "t", 5, 1, WALL),
        "scalar-t-arity": c.rec(wire.SCALAR_T, 1, "t", 1.0, 1, WALL),
        "open-relative": c.open(8, log_dir="relative/dir"),
        "open-duplicate": c.open(1),
        "open-arity": c.rec(wire.OPEN, 9, LOG),
        "open-suffix-slash": c.open(10, suffix="/x"),
        "open-nul": c.open(11, log_dir=LOG + "\0"),
        "open-wid-str": c.open("w"),  # type: ignore[arg-type]
        "open-max-queue-float": c.rec(wire.OPEN, 12, LOG, "", 1.5, 120.0, None, WALL),
        "open-flush-str": c.rec(wire.OPEN, 13, LOG, "", 10, "soon", None, WALL),
        "open-purge-float": c.open(14, purge_step=1.5),  # type: ignore[arg-type]
        "open-walltime-list": c.rec(wire.OPEN, 15, LOG, "", 10, 120.0, None, [1]),
        "close-unknown": c.close(77),
        "close-arity": c.rec(wire.CLOSE),
        "close-unhashable": c.rec(wire.CLOSE, {"a": 1}),
    }


def test_each_malformed_record_gives_one_notice_and_good_records_still_get_written() -> None:
    core = Core()
    c = Client(core)
    c.send(T0, c.open())
    core.tick(T0)
    bad = _bad_records(c)
    assert len(bad) > NOTICE_LIMIT
    every: list[Action] = []
    for i, (name, rec) in enumerate(bad.items()):
        c.send(T0 + 0.5, rec, c.scalar(1, "good", float(i)))  # never raises
        acts = core.tick(T0 + 0.5)
        every += acts
        assert len(of(acts, Notice)) == (1 if i < NOTICE_LIMIT else 0), name
    assert core.clients[c.cid].malformed == len(bad)
    assert core.malformed_total == len(bad)
    acts = core.tick(T0 + 2)
    every += acts
    written = scalars(b"".join(a.data for a in of(every, Append)))
    assert written == [("good", float(i)) for i in range(len(bad))]
    assert of(every, OpenFile) == []  # no malformed OPEN created a run
    assert list(core.runs) == [(LOG, "")]
    assert of(acts, SetTail) == [SetTail(c.cid, c.pos)]  # malformed records do not hold it


@pytest.mark.parametrize("name", sorted(_bad_records(Client(Core()))))
def test_malformed_record_alone(name: str) -> None:
    core = Core()
    c = Client(core)
    c.send(T0, c.open())
    core.tick(T0)
    rec = _bad_records(c)[name]
    # Re-base the record at the client's position (the dict above advanced it).
    c.pos = rec[1]
    c.send(T0, rec, c.scalar(1, "after", 1.0))
    acts = core.tick(T0 + 1)
    notices = of(acts, Notice)
    assert len(notices) == 1, notices
    assert notices[0].cid == c.cid and notices[0].level in ("warning", "error")
    assert ("after", 1.0) in scalars(b"".join(a.data for a in of(acts, Append)))
    assert of(acts, OpenFile) == []


def test_notices_are_limited_per_client() -> None:
    core = Core()
    c = Client(core)
    other = Client(core, "other")
    c.send(T0, *(c.raw(b"\xc1") for _ in range(NOTICE_LIMIT + 15)))
    other.send(T0, other.raw(b"\xc1"))
    acts = core.tick(T0)
    mine = [n for n in of(acts, Notice) if n.cid == c.cid]
    assert len(mine) == NOTICE_LIMIT
    assert "suppressed" in mine[-1].msg and "suppressed" not in mine[0].msg
    assert [n.cid for n in of(acts, Notice) if n.cid != c.cid] == ["other"]
    assert core.clients[c.cid].malformed == NOTICE_LIMIT + 15
    c.send(T0, c.raw(b"\xc1"))
    assert of(core.tick(T0), Notice) == []


# -- other record kinds ----------------------------------------------------------------------------


def test_scalar_tensor_and_text_records() -> None:
    core = Core()
    c = Client(core)
    c.send(
        T0,
        c.open(),
        c.rec(wire.SCALAR_T, 1, "d", 0.1, 5, WALL, True),
        c.rec(wire.TEXT, 1, "note", "hello", 6, WALL),
    )
    [app] = of(core.tick(T0 + 1), Append)
    _, d, note = events(app.data)
    assert d.summary.value[0].tensor.double_val == [0.1] and d.step == 5
    assert note.summary.value[0].tag == "note/text_summary"
    assert note.summary.value[0].tensor.string_val == [b"hello"]


def test_step_none_leaves_the_step_unset() -> None:
    core = Core()
    c = Client(core)
    c.send(T0, c.open(), c.scalar(1, "t", 1.0, None), c.scalar(1, "t", 1.0, -5))
    [app] = of(core.tick(T0 + 1), Append)
    _, a, b = events(app.data)
    assert a.step == 0 and b.step == -5


def test_hello_is_idempotent() -> None:
    core = Core()
    c = Client(core, tail=64)
    c.send(T0, c.open())
    again = core.hello(c.cid, 1234, 99, "ring-c1", T0 + 5, tail=0, argv=["python"])
    assert again is core.clients[c.cid]
    assert again.tail == 64 and again.argv == ["python"] and again.writers


def test_records_with_nothing_do_nothing() -> None:
    core = Core()
    c = Client(core)
    c.send(
        T0,
    )
    assert core.tick(T0) == []


# -- restart: snapshot and restore -----------------------------------------------------------


def test_restore_knows_writers_opened_before_the_tail_and_skips_written_records() -> None:
    """Two runs of one client: run A written, run B not, tail held back by B.
    A new core restored from the snapshot and fed the records from the tail
    writes B's records and none of A's again."""
    core = Core()
    c = Client(core)
    c.send(T0, c.open(1), c.open(2, log_dir=LOG2))
    core.tick(T0 + 2)  # both OPENs written: the tail passes them
    assert core.clients[c.cid].tail == c.pos
    recs = [c.scalar(1, "a", 1.0, 1), c.scalar(2, "b", 2.0, 1), c.scalar(1, "a", 3.0, 2)]
    core.records(c.cid, recs, T0 + 3)
    core.clients[c.cid].force = False
    # Only run A is due (max_queue reached for it alone): write it, not B.
    [run_a] = [r for r in core.runs.values() if r.log_dir == LOG]
    run_a.max_queue = 1
    acts = core.tick(T0 + 3)
    assert [scalars(a.data) for a in of(acts, Append)] == [[("a", 1.0), ("a", 3.0)]]
    assert core.clients[c.cid].tail == recs[1][0]  # held back by B's record
    saved = core.snapshot()[c.cid]
    assert {r[1] for r in saved["at_tail"]} == {1, 2}

    new = Core()
    new.hello(c.cid, 1234, 99, "ring", T0 + 10, tail=saved["tail"])
    new.restore(c.cid, saved, T0 + 10)
    replay = [r for r in recs if r[0] >= saved["tail"]]
    new.records(c.cid, replay, T0 + 10)
    acts = new.tick(T0 + 20)
    written = {a.run_id: scalars(a.data) for a in of(acts, Append)}
    runs = {r.run_id: r.log_dir for r in new.runs.values()}
    by_dir = {runs[rid]: vals for rid, vals in written.items()}
    assert by_dir == {LOG: [], LOG2: [("b", 2.0)]}  # new files: headers, and B's record
    assert of(acts, OpenFile) and len(of(acts, OpenFile)) == 2


def test_restore_skips_a_purge_pair_already_written() -> None:
    """The purge pair of run A is in A's file, but run B holds the tail before it."""
    core = Core()
    c = Client(core)
    recs = [c.open(2, log_dir=LOG2), c.scalar(2, "b", 1.0, 1), c.open(1, purge_step=5)]
    core.records(c.cid, recs, T0)
    [run_a] = [r for r in core.runs.values() if r.log_dir == LOG]
    run_a.max_queue = 1
    core.scanned(T0)
    acts = core.tick(T0)
    [app] = of(acts, Append)
    assert any(e.HasField("session_log") for e in events(app.data))
    saved = core.snapshot()[c.cid]
    assert saved["tail"] == 0 and saved["at_tail"] == []

    new = Core()
    new.hello(c.cid, 1234, 99, "ring", T0, tail=0)
    new.restore(c.cid, saved, T0)
    new.records(c.cid, recs, T0)
    new.scanned(T0)
    acts = new.tick(T0 + 2)
    evs = [e for a in of(acts, Append) for e in events(a.data)]
    assert not any(e.HasField("session_log") for e in evs)  # not purged twice
    assert [v.tag for e in evs for v in e.summary.value] == ["b"]


def test_same_tag_from_two_clients_warns_both_once() -> None:
    """The core asks whether the tag's first logger still runs; once the loop
    says it does, both clients are told, once per (run, tag)."""
    core = Core()
    a, b = Client(core, "a"), Client(core, "b")
    a.send(T0, a.open(), a.scalar(1, "loss", 1.0, 1), a.scalar(1, "own", 1.0, 1))
    b.send(T0, b.open(), b.scalar(1, "loss", 2.0, 1), b.scalar(1, "loss", 3.0, 2))
    acts = core.tick(T0)
    assert of(acts, CheckAlive) == [CheckAlive("a")]
    assert of(acts, Notice) == []
    core.alive("a", T0)
    notices = of(core.tick(T0), Notice)
    assert sorted(n.cid for n in notices) == ["a", "b"]
    assert all("'loss'" in n.msg and "rank<N>/loss" in n.msg for n in notices)
    b.send(T0, b.scalar(1, "loss", 4.0, 3))
    acts = core.tick(T0)
    assert of(acts, Notice) == [] and of(acts, CheckAlive) == []  # once per (run, tag)


def test_a_restarted_process_takes_over_the_tags_of_a_dead_one() -> None:
    core = Core()
    a = Client(core, "a")
    a.send(T0, a.open(), a.scalar(1, "loss", 1.0, 1))
    core.gone("a", T0)
    b = Client(core, "b")
    b.send(T0, b.open(), b.scalar(1, "loss", 2.0, 2))
    assert of(core.tick(T0), Notice) == []


# -- resume with purge_step ------------------------------------------------------------------------


def test_resume_waits_for_the_dead_life_then_purges_and_opens_a_new_file() -> None:
    core = Core()
    old = Client(core, "old")
    old.send(T0, old.open(), old.scalar(1, "a", 1.0, 7))
    core.tick(T0)
    new = Client(core, "new")
    new.send(T0 + 1, new.open(purge_step=5), new.scalar(1, "a", 2.0, 5))
    acts = core.tick(T0 + 1)
    assert of(acts, ScanRings) == [ScanRings()]
    core.scanned(T0 + 1)  # the loop found no ring it did not know
    acts = core.tick(T0 + 1)
    assert of(acts, PurgeFiles) == [] and of(acts, OpenFile) == []  # old life still open
    old_tail = old.scalar(1, "b", 3.0, 8)  # the dead trainer's last record, drained late
    old.send(T0 + 1.5, old_tail)
    core.gone("old", T0 + 1.5)
    acts = core.tick(T0 + 2)
    # The old life's last record is written and, once that worked, its file closed ...
    assert [type(a) for a in acts if not isinstance(a, (SetTail, Ack, RemoveRing))] == [
        Append,
        CloseFile,
    ]
    assert core.next_deadline() is not None and core.next_deadline() <= T0 + 2  # due now
    acts += core.tick(T0 + 2)
    kinds = [type(a) for a in acts if not isinstance(a, (SetTail, Ack, RemoveRing))]
    # ... then purged, then the new file.
    assert kinds == [Append, CloseFile, PurgeFiles, OpenFile, Append]
    assert scalars(of(acts, Append)[0].data) == [("b", 3.0)]
    assert of(acts, PurgeFiles) == [PurgeFiles(LOG, 5)]
    new_events = events(of(acts, Append)[1].data)
    assert [e.session_log.status for e in new_events if e.HasField("session_log")] == [1]
    assert [(v.tag, e.step) for e in new_events for v in e.summary.value] == [("a", 5)]


def test_a_second_rank_resuming_at_the_same_step_neither_purges_nor_starts() -> None:
    core = Core()
    r0 = Client(core, "r0")
    r0.send(T0, r0.open(purge_step=5), r0.scalar(1, "rank0/a", 1.0, 5))
    core.scanned(T0)
    core.tick(T0 + 2)
    r1 = Client(core, "r1")
    r1.send(T0 + 3, r1.open(purge_step=5), r1.scalar(1, "rank1/a", 1.0, 5))
    acts = core.tick(T0 + 5)
    assert of(acts, PurgeFiles) == [] and of(acts, OpenFile) == []
    evs = [e for a in of(acts, Append) for e in events(a.data)]
    assert not any(e.HasField("session_log") for e in evs)
    assert [v.tag for e in evs for v in e.summary.value] == ["rank1/a"]


def test_resume_stops_waiting_for_a_live_earlier_writer() -> None:
    core = Core()
    old = Client(core, "old")
    old.send(T0, old.open(), old.scalar(1, "a", 1.0, 7))
    core.tick(T0)
    new = Client(core, "new")
    new.send(T0, new.open(purge_step=5))
    assert of(core.tick(T0 + 1), PurgeFiles) == []
    acts = core.tick(T0 + PURGE_WAIT)
    assert of(acts, PurgeFiles) == [PurgeFiles(LOG, 5)]
    old.send(T0 + PURGE_WAIT, old.scalar(1, "a", 2.0, 8))  # it goes on, in the new file
    acts = core.tick(T0 + PURGE_WAIT + 2)
    assert [scalars(a.data) for a in of(acts, Append)] == [[("a", 2.0)]]


def test_a_tag_of_a_process_that_died_unnoticed_passes_to_its_successor() -> None:
    """A DataLoader worker of the previous epoch exited; the loop's liveness
    check has not run yet.  Asked, the loop finds it dead: no warning, and the
    successor owns the tag."""
    core = Core()
    a = Client(core, "a")
    a.send(T0, a.open(), a.scalar(1, "x", 1.0, 1))
    b = Client(core, "b")
    b.send(T0, b.open(), b.scalar(1, "x", 2.0, 2))
    assert of(core.tick(T0), CheckAlive) == [CheckAlive("a")]
    core.gone("a", T0)
    assert of(core.tick(T0), Notice) == []
    b.send(T0, b.scalar(1, "x", 3.0, 3))
    acts = core.tick(T0 + 1)
    assert of(acts, Notice) == [] and of(acts, CheckAlive) == []


def test_a_failed_write_holds_the_tail_back_until_it_succeeds() -> None:
    """Disk full: the records stay in the ring (a daemon killed meanwhile must
    find them there), so the tail must not pass them until the retry worked."""
    core = Core()
    c = Client(core)
    c.send(T0, c.open(), c.scalar(1, "x", 1.0, 1), c.scalar(1, "x", 2.0, 2))
    acts = core.plan_writes(T0 + 1)
    [app] = of(acts, Append)
    core.write_failed(app, "No space left on device", T0 + 1)
    assert [a.pos for a in of(core.settle(T0 + 1), SetTail)] == []
    acts = core.plan_writes(T0 + 3)
    [retry] = of(acts, Append)
    assert retry.data == app.data
    core.write_succeeded(retry)
    assert [a.pos for a in of(core.settle(T0 + 3), SetTail)] == [c.pos]


def test_a_resume_waiting_for_its_earlier_life_has_no_write_deadline() -> None:
    """A life waiting for its purge has no file: its records' latency must not
    make ``next_deadline`` lie in the past (the loop would spin until the purge)."""
    core = Core()
    old = Client(core, "old")
    old.send(T0, old.open(), old.scalar(1, "a", 1.0, 7))
    core.tick(T0)
    new = Client(core, "new")
    new.send(T0 + 1, new.open(purge_step=5, flush_secs=0.2), new.scalar(1, "a", 2.0, 5))
    core.tick(T0 + 1)
    core.scanned(T0 + 1)
    assert of(core.tick(T0 + 2), PurgeFiles) == []  # the old life is still open
    deadline = core.next_deadline()
    assert deadline is not None and deadline > T0 + 2


def test_a_started_life_keeps_the_live_writers_it_took_over_after_its_resumer_closed() -> None:
    """The resumer closes before its purge; the earlier life's process lives on
    and its writer moves into the new life when the wait is over.  The new life
    is then not idle: it must not end (its records would go to a closed run)."""
    core = Core()
    old = Client(core, "old")
    old.send(T0, old.open(), old.scalar(1, "a", 1.0, 7))
    core.tick(T0)
    new = Client(core, "new")
    new.send(T0, new.open(purge_step=5), new.close())
    core.tick(T0)
    core.scanned(T0)
    acts = core.tick(T0 + PURGE_WAIT)  # the wait and the resumer's linger are over
    assert of(acts, PurgeFiles) == [PurgeFiles(LOG, 5)]
    [opened] = of(acts, OpenFile)
    assert CloseFile(opened.run_id) not in acts
    old.send(T0 + PURGE_WAIT, old.scalar(1, "a", 2.0, 8))
    acts = core.tick(T0 + PURGE_WAIT + 2)
    assert [(a.run_id, scalars(a.data)) for a in of(acts, Append)] == [
        (opened.run_id, [("a", 2.0)])
    ]
