"""The core's uploads: flush acknowledgements held until an ``s3://`` run's
writes are in the bucket.

Part of the core (no I/O, never waits): the loop reports what the uploader
thread did (``Core.uploaded``, ``Core.upload_failed``); ``Uploads`` decides
which held ``Ack`` may go and asks for uploads on the core's outbox.

Theory of operation
-------------------
An ``Append`` to an s3 run puts records in the run's local spool, not in the
bucket; it carries a number, ``seq`` (1, 2, ... per run).  Once it is written,
each client with records in it remembers the run's highest such number
(``Client.uploading``: run_id -> seq).

A flush is written once the client's tail passes its position (``settle``).
For a client with nothing in ``uploading`` that is the end: ``Ack``.  Else the
flush is *held* with a copy of ``uploading`` (``Client.upload_waits``: the
writes made so far, not later ones) and one ``Upload`` per run is asked for,
so the uploader seals the spool now rather than at its next age limit.  The
held ``Ack`` goes once ``uploaded`` reported every number it needs.

*After a restart.*  Which uploads a client waited on is not in the state file,
but what was not uploaded is in the spools: a spool adopted from an earlier
daemon (SIGKILL) is a barrier (``backlog``: its bytes, then 0 once uploaded).
Each client remembers the runs it spooled records for (``Client.spooled``,
kept in the snapshot, plus the s3 writers a restart re-creates); its flushes
wait, besides their own writes, for the backlog of those runs and of the s3
runs it writes.  Writes spooled after the adoption are uploaded after the
backlog (one spool, uploaded in order), so their numbers need nothing more.

``upload_failed`` tells the run's writers and every client waiting on it, once
per distinct error (the uploader retries with backoff: the same error every
few seconds must not flood the trainer); the ack keeps waiting.  A later
``uploaded`` forgets the error, so a new failure is told again.  A client that
is gone is forgotten with its held flushes: nobody waits for them.
"""

from __future__ import annotations

from collections.abc import Callable

from .actions import Ack, Action, Append, Notice, Upload
from .state import Client, Run


class Uploads:
    def __init__(
        self,
        clients: dict[str, Client],
        outbox: list[Action],
        find_run: Callable[[int], Run | None],
    ) -> None:
        self.clients = clients  # the core's (each client's ``uploading`` kept here)
        self.outbox = outbox  # the core's actions, in order
        self.find_run = find_run
        self.uploaded_seq: dict[int, int] = {}  # run_id -> highest seq in the bucket
        self.asked: dict[int, int] = {}  # run_id -> highest seq an Upload was asked for
        self.errors: dict[int, str] = {}  # run_id -> the last error told
        # (log_dir, suffix) -> bytes an earlier daemon left in its spool, not uploaded
        self.adopted: dict[tuple[str, str], int] = {}

    def spooled(self, act: Append) -> None:
        """``act`` (an s3 run's write) is in the spool: its clients' flushes wait for it."""
        for m in act.meta:
            c = self.clients.get(m[0])
            if c is not None:
                c.uploading[act.run_id] = act.seq
                c.spooled.add((act.log_dir, act.suffix))

    def restored(self, c: Client, spooled: list[list[str]]) -> None:
        """``c`` is restored from an earlier daemon's snapshot: the s3 runs it
        spooled records for then, and those it still writes, may hold its
        records in a spool this daemon adopted."""
        c.spooled.update((str(k[0]), str(k[1])) for k in spooled)
        c.spooled.update((r.log_dir, r.suffix) for r in c.writers.values() if r.remote)

    def backlog(self, key: tuple[str, str], waiting: int) -> None:
        """The spool of s3 run ``key`` holds ``waiting`` bytes an earlier daemon
        left (0: all of them are in the bucket now)."""
        if waiting:
            self.adopted[key] = waiting
        else:
            self.adopted.pop(key, None)

    def uploaded(self, run_id: int, seq: int) -> None:
        """Every write of ``run_id`` up to ``seq`` is in the bucket."""
        if seq > self.uploaded_seq.get(run_id, 0):
            self.uploaded_seq[run_id] = seq
        self.errors.pop(run_id, None)

    def failed(self, run_id: int, error: str) -> None:
        """An upload of ``run_id`` failed: tell its clients, once per distinct error."""
        if self.errors.get(run_id) == error:
            return
        self.errors[run_id] = error
        run = self.find_run(run_id)
        told = {cid for cid, _ in run.writers} if run is not None else set()
        told |= {cid for cid, c in self.clients.items() if run_id in c.uploading}
        for cid in sorted(told):
            self.outbox.append(Notice(cid, "warning", error))

    def written(self, c: Client, tok: int) -> list[Action]:
        """Flush ``tok`` of ``c`` is written: its ``Ack`` now, or held for the uploads."""
        barrier = self._barrier(c)
        if not c.uploading and not barrier:
            return [Ack(c.cid, tok)]
        c.upload_waits.append((tok, dict(c.uploading), barrier))
        return []

    def _barrier(self, c: Client) -> set[tuple[str, str]]:
        """The adopted spools a flush of ``c`` waits for (see "After a restart")."""
        if not self.adopted:
            return set()
        keys = c.spooled | {(r.log_dir, r.suffix) for r in c.writers.values() if r.remote}
        return keys & self.adopted.keys()

    def release(self, c: Client) -> list[Action]:
        """The held ``Ack`` of ``c`` whose uploads are all done."""
        if not c.upload_waits:
            return []
        acks: list[Action] = []
        waits = []
        for tok, need, barrier in c.upload_waits:
            barrier &= self.adopted.keys()
            if self._done(need) and not barrier:
                acks.append(Ack(c.cid, tok))
            else:
                waits.append((tok, need, barrier))
        c.upload_waits = waits
        if not waits:  # forget what is uploaded (later writes stay)
            c.uploading = {
                rid: seq for rid, seq in c.uploading.items() if self.uploaded_seq.get(rid, 0) < seq
            }
            if not c.uploading:  # nothing of it left in a spool but an adopted backlog
                c.spooled &= self.adopted.keys()
        return acks

    def _done(self, need: dict[int, int]) -> bool:
        """Whether the writes ``need`` (run_id -> seq) are all in the bucket
        (those that are leave ``need``); else ask for their upload, once per write."""
        done = True
        for rid, seq in list(need.items()):
            if self.uploaded_seq.get(rid, 0) >= seq:
                del need[rid]
                continue
            done = False
            if self.asked.get(rid, 0) < seq:
                self.asked[rid] = seq
                self.outbox.append(Upload(rid))
        return done
