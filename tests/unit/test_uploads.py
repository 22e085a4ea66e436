"""Flushes of clients writing ``s3://`` runs: held until uploaded (``daemon/uploads.py``).

Through the core, as the loop drives it, without sockets or a store: an
``Append`` to an s3 run is in the spool once written; the loop reports what
the uploader thread did with ``Core.uploaded`` and ``Core.upload_failed``.
"""

from __future__ import annotations

from summaryd.daemon.actions import Ack, Append, Notice, RemoveRing, Upload
from summaryd.daemon.core import Core

from .core_helpers import LOG, T0, Client, of

S3 = "s3://my-bucket/experiments/run1"


def s3_append(acts: list) -> Append:
    [app] = [a for a in of(acts, Append) if a.log_dir == S3]
    assert app.seq > 0  # s3 writes are numbered so uploads can be matched
    return app


def test_flush_is_acknowledged_only_once_the_uploads_cover_its_records() -> None:
    core = Core()
    c = Client(core)
    c.send(T0, c.open(log_dir=S3), c.scalar(1, "t", 1.0, 1))
    first = s3_append(core.tick(T0 + 1))  # written by latency, no flush yet: seq 1
    c.send(T0 + 1.5, c.scalar(1, "t", 2.0, 2))
    core.flush(c.cid, 7, c.pos)
    acts = core.tick(T0 + 1.5)
    second = s3_append(acts)
    assert (first.seq, second.seq) == (1, 2)
    assert of(acts, Ack) == []  # spooled is not uploaded
    assert core.queued  # the upload it asked for goes out at the next planning
    assert of(core.tick(T0 + 1.5), Upload) == [Upload(second.run_id)]
    assert of(core.tick(T0 + 2), Upload) == []  # asked once per write

    core.uploaded(second.run_id, 1, T0 + 3)  # only the first write: not enough
    assert of(core.tick(T0 + 3), Ack) == []
    core.uploaded(second.run_id, 2, T0 + 4)
    assert of(core.tick(T0 + 4), Ack) == [Ack(c.cid, 7)]
    assert of(core.tick(T0 + 5), Ack) == []  # acknowledged once


def test_a_later_flush_waits_only_for_writes_made_so_far() -> None:
    core = Core()
    c = Client(core)
    c.send(T0, c.open(log_dir=S3), c.scalar(1, "t", 1.0, 1))
    core.flush(c.cid, 1, c.pos)
    rid = s3_append(core.tick(T0)).run_id
    c.send(T0 + 0.1, c.scalar(1, "t", 2.0, 2))
    core.flush(c.cid, 2, c.pos)
    assert s3_append(core.tick(T0 + 0.1)).seq == 2
    core.uploaded(rid, 1, T0 + 1)
    assert of(core.tick(T0 + 1), Ack) == [Ack(c.cid, 1)]
    core.uploaded(rid, 2, T0 + 2)
    assert of(core.tick(T0 + 2), Ack) == [Ack(c.cid, 2)]


def test_upload_failures_warn_once_per_distinct_error_and_the_ack_keeps_waiting() -> None:
    core = Core()
    c = Client(core)
    other = Client(core, "c2")  # writes the same run, flushes nothing
    c.send(T0, c.open(log_dir=S3), c.scalar(1, "t", 1.0, 1))
    other.send(T0, other.open(log_dir=S3), other.scalar(1, "u", 1.0, 1))
    core.flush(c.cid, 5, c.pos)
    rid = s3_append(core.tick(T0)).run_id
    core.tick(T0)  # the Upload

    down = "uploading to s3://my-bucket/experiments/run1 failed: connection refused"
    for i in range(3):  # the uploader retries with backoff: the same error each time
        core.upload_failed(rid, down, T0 + 1 + i)
    acts = core.tick(T0 + 4)
    assert sorted((n.cid, n.level, n.msg) for n in of(acts, Notice)) == [
        ("c1", "warning", down),
        ("c2", "warning", down),
    ]
    assert of(acts, Ack) == []

    refused = "uploading to s3://my-bucket/experiments/run1 failed: access refused (403)"
    core.upload_failed(rid, refused, T0 + 5)
    core.upload_failed(rid, refused, T0 + 6)
    acts = core.tick(T0 + 6)
    assert [(n.cid, n.msg) for n in of(acts, Notice)] == [("c1", refused), ("c2", refused)]
    assert of(acts, Ack) == []
    assert of(core.tick(T0 + 30), Ack) == []  # still waiting, however long

    core.uploaded(rid, 1, T0 + 31)  # the store is back: the ack goes, the error is forgotten
    acts = core.tick(T0 + 31)
    assert of(acts, Ack) == [Ack(c.cid, 5)] and of(acts, Notice) == []
    core.upload_failed(rid, down, T0 + 40)
    assert len(of(core.tick(T0 + 40), Notice)) == 2  # a new failure is told again


def test_a_client_writing_a_local_and_an_s3_run() -> None:
    core = Core()
    c = Client(core)
    c.send(T0, c.open(1, LOG), c.open(2, S3), c.scalar(1, "a", 1.0, 1), c.scalar(2, "b", 2.0, 1))
    core.flush(c.cid, 9, c.pos)
    acts = core.tick(T0)
    local = [a for a in of(acts, Append) if a.log_dir == LOG]
    assert len(local) == 1 and local[0].seq == 0  # a local write is in its file: no upload
    rid = s3_append(acts).run_id
    assert of(acts, Ack) == []  # the local run is written, the s3 one only spooled
    assert of(core.tick(T0), Upload) == [Upload(rid)]
    core.uploaded(rid, 1, T0 + 1)
    assert of(core.tick(T0 + 1), Ack) == [Ack(c.cid, 9)]

    # Uploaded writes are forgotten: a flush after local records only acks at once.
    c.send(T0 + 2, c.scalar(1, "a", 3.0, 2))
    core.flush(c.cid, 10, c.pos)
    acts = core.tick(T0 + 2)
    assert of(acts, Ack) == [Ack(c.cid, 10)]
    assert of(core.tick(T0 + 2), Upload) == []


def test_a_local_only_client_is_not_held_by_another_clients_upload() -> None:
    core = Core()
    s3c, local = Client(core, "s3c"), Client(core, "loc")
    s3c.send(T0, s3c.open(log_dir=S3), s3c.scalar(1, "t", 1.0, 1))
    local.send(T0, local.open(log_dir=LOG), local.scalar(1, "t", 1.0, 1))
    core.flush(s3c.cid, 1, s3c.pos)
    core.flush(local.cid, 2, local.pos)
    assert of(core.tick(T0), Ack) == [Ack(local.cid, 2)]


def test_a_client_gone_while_its_upload_is_pending_is_forgotten() -> None:
    core = Core()
    c = Client(core)
    c.send(T0, c.open(log_dir=S3), c.scalar(1, "t", 1.0, 1))
    core.flush(c.cid, 3, c.pos)
    rid = s3_append(core.tick(T0)).run_id
    assert of(core.tick(T0), Upload) == [Upload(rid)]

    core.gone(c.cid, T0 + 1)  # the trainer died inside flush()
    acts = core.tick(T0 + 1)
    # Its records are in the spool (the uploader still uploads them): the ring can go.
    assert of(acts, RemoveRing) == [RemoveRing(c.cid)]
    assert c.cid not in core.clients and of(acts, Ack) == []

    core.upload_failed(rid, "uploading failed: timeout", T0 + 2)
    core.uploaded(rid, 1, T0 + 3)
    acts = core.tick(T0 + 10)  # past the linger: the run closes
    assert of(acts, Ack) == [] and of(acts, Notice) == []  # nobody to tell
    assert core.runs == {}


def _restarted(core: Core, *clients: Client) -> tuple[Core, dict]:
    """A new core restored from ``core``'s snapshot, told first (as the loop's
    first cycle is) that the run's spool was adopted with 500 bytes waiting."""
    saved = core.snapshot()
    new = Core()
    new.backlog(500, (S3, ""), T0 + 10)
    for c in clients:
        new.hello(c.cid, 1234, 99, f"ring-{c.cid}", T0 + 10, tail=saved[c.cid]["tail"])
        new.restore(c.cid, saved[c.cid], T0 + 10)
        c.core = new  # its records from now on go to the new daemon
    return new, saved


def test_after_a_restart_flushes_wait_for_the_adopted_spool_of_their_runs() -> None:
    core = Core()
    c, loc = Client(core), Client(core, "loc")
    c.send(T0, c.open(log_dir=S3), c.scalar(1, "t", 1.0, 1), c.close())
    loc.send(T0, loc.open(log_dir=LOG), loc.scalar(1, "t", 1.0, 1))
    s3_append(core.tick(T0 + 1))  # spooled; the daemon dies before the upload
    new, saved = _restarted(core, c, loc)
    assert saved[c.cid]["spooled"] == [[S3, ""]] and saved[c.cid]["at_tail"] == []

    # The writer was closed before the kill (close()'s flush, sent again to the
    # new daemon): the snapshot still says which spool holds its records.
    new.flush(c.cid, 1, c.pos)
    new.flush(loc.cid, 2, loc.pos)
    acts = new.tick(T0 + 11)
    assert of(acts, Ack) == [Ack(loc.cid, 2)]  # a local-only client is not held
    assert of(acts, Upload) == []  # the uploader forces adopted spools by itself
    new.backlog(200, (S3, "other-suffix"), T0 + 12)  # another run's backlog: not ours
    assert of(new.tick(T0 + 12), Ack) == []
    new.backlog(0, (S3, ""), T0 + 13)  # all of it in the bucket
    assert of(new.tick(T0 + 13), Ack) == [Ack(c.cid, 1)]
    assert new.clients[c.cid].spooled == set()  # nothing of it waits anywhere now
    new.flush(c.cid, 3, c.pos)
    assert of(new.tick(T0 + 14), Ack) == [Ack(c.cid, 3)]


def test_after_a_restart_writers_of_the_run_wait_for_its_adopted_spool() -> None:
    core = Core()
    c = Client(core)
    c.send(T0, c.open(log_dir=S3), c.scalar(1, "t", 1.0, 1))
    s3_append(core.tick(T0 + 1))
    core.clients[c.cid].spooled.clear()  # a snapshot of a daemon that kept no such list
    new, saved = _restarted(core, c)
    assert saved[c.cid]["spooled"] == []
    newcomer = Client(new, "c2", now=T0 + 10)  # opens the run after the restart
    newcomer.send(T0 + 10, newcomer.open(log_dir=S3))
    new.tick(T0 + 10)
    new.flush(c.cid, 1, c.pos)  # its writer is re-created from the snapshot: it waits
    new.flush(newcomer.cid, 2, newcomer.pos)  # a writer of the run: waits too
    assert of(new.tick(T0 + 11), Ack) == []

    c.send(T0 + 12, c.scalar(1, "t", 2.0, 2))
    new.flush(c.cid, 4, c.pos)
    app = s3_append(new.tick(T0 + 12))
    new.tick(T0 + 12)  # its Upload
    # Uploaded in spool order: the barrier goes with the first upload after it.
    new.backlog(0, (S3, ""), T0 + 13)
    new.uploaded(app.run_id, app.seq, T0 + 13)
    acks = of(new.tick(T0 + 13), Ack)
    assert sorted((a.cid, a.tok) for a in acks) == [(c.cid, 1), (c.cid, 4), ("c2", 2)]
