"""The daemon's core across a restart, shared tags, and writers resuming with ``purge_step``.

The core does no I/O and reads no clock (STYLE sections 1 and 8): these tests
feed it ring records built with msgpack, as the SDK packs them, at chosen
``now`` values, and check the actions it returns (helpers in
``core_helpers.py``). Covered here: a core restored from its snapshot knows the
writers opened before the tail and skips what was written (a purge pair
too); a tag logged by two clients warns both once and passes to a restarted or
successor process; a resume waits for its dead earlier life, then purges and
opens a new file, and a failed write holds the tail back until it succeeds.
"""

from __future__ import annotations

from summaryd.daemon.actions import (
    Ack,
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
from summaryd.daemon.core import PURGE_WAIT, Core

from .core_helpers import LOG, LOG2, T0, Client, events, of, scalars

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
