"""The daemon's core: opening a file, when it writes, and flushes and tails.

The core does no I/O and reads no clock (STYLE sections 1 and 8): these tests
feed it ring records built with msgpack, as the SDK packs them, at chosen
``now`` values, and check the actions it returns (helpers in
``core_helpers.py``). Covered here: ``OpenFile`` then the version record
(and the purge pair of a resumed writer), the write latency, ``max_queue`` and
the write chunk, ``next_deadline``, and flushes acknowledged only after the
append and the tail, which never passes an unwritten record. The rest of the
core: ``test_core_close_gone.py``, ``test_core_records.py``,
``test_core_restart_resume.py``; random clients: ``test_core_machine.py``.
"""

from __future__ import annotations

import pytest
from tensorboard.compat.proto import event_pb2 as tb_event_pb2

from summaryd import wire
from summaryd.daemon.actions import Ack, Append, Notice, OpenFile, ScanRings, SetTail
from summaryd.daemon.core import DEFAULT_MAX_LATENCY, WRITE_CHUNK, Core

from .core_helpers import LOG, LOG2, T0, WALL, Client, events, index, of, scalars

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
