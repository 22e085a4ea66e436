"""The daemon's core: closing writers, shared runs, and clients that are gone.

The core does no I/O and reads no clock (STYLE sections 1 and 8): these tests
feed it ring records built with msgpack, as the SDK packs them, at chosen
``now`` values, and check the actions it returns (helpers in
``core_helpers.py``). Covered here: a close writes what is pending and closes
the file after the linger, another process opening meanwhile joins the same
file, writers of one run share it; a gone client's records are written, its
files closed and its ring removed last; ``close_all`` writes, closes and acks.
"""

from __future__ import annotations

from summaryd.daemon.actions import Ack, Append, CloseFile, OpenFile, RemoveRing, SetTail
from summaryd.daemon.core import Core

from .core_helpers import LOG, LOG2, T0, Client, index, of, scalars

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
