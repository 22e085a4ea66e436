"""The daemon's core: ring records in, actions out.  No socket, file, clock or thread.

Theory of operation
-------------------
The loop feeds the core what happened — ``hello``, ``batch`` (records drained
from a client's ring), ``flush``, ``pressure``, ``gone`` (a dead client whose
ring is drained), ``alive``, ``encoded`` (an encoding's result), a write that
failed — with the current time, then calls ``plan_writes`` and ``settle`` and
carries out the returned actions (``actions.py``).  The core never waits: work
that takes time (encoding images, writing projector files, checking a process)
goes out as an action and comes back as an input.

*Runs.*  One run per ``(log_dir, filename_suffix)`` at a time, shared by every
writer of every client that logs there, backed by one event file (torch's
``brain.Event:2`` header first).  When its last writer closes, the run's
records are written at once but its file stays open ``linger`` seconds: ranks
of one job finish at different moments, and one that opens the run meanwhile
joins the same file.  A process that closes and re-opens gets a new file, as
torch.  Lifecycles of runs and clients are the tables of ``lifecycle.py``.

*Batching and latency.*  Framed records wait in their run's ``pending`` list
and are appended in one write when the first of these holds: ``max_queue``
records wait (the smallest of the run's writers), the oldest waited the run's
latency (``min(max_latency, flush_secs)``), ``WRITE_CHUNK`` bytes wait, a
flush or a filling ring needs it, or the run ends.  An array record takes a
slot (None) that its ``Encode`` result fills; a write takes the filled prefix
of the list, so each client's records reach the file in order and a slow
encoding holds back only what follows it.

*Durability.*  A ring's tail (``SetTail``) only passes records that are in
their files: per client and run the core knows where its first unwritten
record starts; the tail is the smallest of those, or the drained position.

*Restart.*  ``snapshot`` gives, per client, the writers open at its tail and
how far each run's records are in files; the loop persists it before it
publishes a tail, and ``restore`` re-creates both in the next daemon, which
then skips records already written: each committed record reaches a file once.

*Resume (purge_step).*  A writer opening with ``purge_step`` starts a new life
of the run in PURGE_WAIT: the earlier life is retired (it keeps its live
writers), every ring is scanned (``ScanRings``) so the earlier life's records
are known, and once the earlier life is closed (or ``PURGE_WAIT`` seconds
passed) its files are purged of the steps the new life logs again and the new
life's file opens.

*Uploads.*  For a client writing an ``s3://`` run, written means spooled: its
flush is acknowledged once the uploader reports the writes it covers, and what
an earlier daemon left in that run's spool, in the bucket (``uploads.py``).

*Isolation.*  A record that does not decode or validate is skipped, counted
and reported to its client (at most ``NOTICE_LIMIT`` notices per client); it
never raises out of the core.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from summaryd import wire

from . import encode
from .actions import (
    Action,
    Append,
    CheckAlive,
    Encode,
    Notice,
    Project,
    RemoveBlobs,
    RemoveRing,
    SetTail,
)
from .arrays import decode_record
from .batch import encode_batch
from .lifecycle import ClientState
from .runs import PURGE_WAIT, WRITE_CHUNK, WRITE_RETRY, Runs
from .state import DEFAULT_MAX_LATENCY, Client, Run, parse_open
from .uploads import Uploads

NOTICE_LIMIT = 20
DEFAULT_LINGER = 5.0

__all__ = [
    "DEFAULT_LINGER",
    "DEFAULT_MAX_LATENCY",
    "NOTICE_LIMIT",
    "PURGE_WAIT",
    "WRITE_CHUNK",
    "WRITE_RETRY",
    "Core",
    "parse_open",
]


class Core:
    """Records in, actions out; see the module docstring."""

    def __init__(
        self, max_latency: float = DEFAULT_MAX_LATENCY, linger: float = DEFAULT_LINGER
    ) -> None:
        self.max_latency = max_latency
        self.linger = linger
        self.clients: dict[str, Client] = {}
        # Actions in order; both the core and its runs add to it (never rebound).
        self._actions: list[Action] = []
        self._runs = Runs(self.clients, self._actions, max_latency, linger)
        self._job_ids = 0
        # job -> (run, client, absolute slot index)
        self._jobs: dict[int, tuple[Run, Client, int]] = {}
        # (run_id, tag) -> (run, tag, owner cid, newcomer cid): a tag a second
        # client logs while we ask whether its first logger still lives.
        self._suspects: dict[tuple[int, Any], tuple[Run, Any, str, str]] = {}
        self._asked: set[str] = set()
        # s3 runs: flush acknowledgements held until the bucket has their writes.
        self._uploads = Uploads(self.clients, self._actions, self._runs.find)
        self.records_total = 0
        self.malformed_total = 0
        self.bytes_total = 0
        self._handlers: dict[int, Callable[[Client, list[Any], int, float], None]] = {
            wire.OPEN: self._open,
            wire.CLOSE: self._close,
        }
        for kind in wire.ARRAY_KINDS:
            self._handlers[kind] = self._array

    # -- inputs ------------------------------------------------------------

    def hello(
        self,
        cid: str,
        pid: int,
        start: int,
        ring: str,
        now: float,
        *,
        tail: int = 0,
        argv: list[str] | None = None,
    ) -> Client:
        """Register a client (idempotent: a repeated hello changes nothing)."""
        c = self.clients.get(cid)
        if c is None:
            c = Client(cid, pid, start, ring, now, argv or [], drained=tail, tail=tail)
            c.last_activity = now
            self.clients[cid] = c
        elif argv and not c.argv:
            c.argv = argv
        return c

    def records(
        self, cid: str, recs: list[tuple[int, int, bytes | memoryview]], now: float
    ) -> None:
        """Feed ``(start, end, payload)`` records drained from a client's ring, in order."""
        if recs:
            self.batch(cid, [r[0] for r in recs], [r[2] for r in recs], recs[-1][1], now)

    def batch(
        self,
        cid: str,
        starts: list[int],
        payloads: list[bytes | memoryview],
        end: int,
        now: float,
    ) -> None:
        """Feed records drained from a client's ring: their start positions and
        payloads in ring order, and the position after the last one."""
        c = self.clients[cid]
        if not payloads:
            return
        # The daemon's hot loop: runs of one writer's scalars and text come back
        # from ``encode_batch`` framed and joined, one part each (``batch.py``);
        # whatever it declines goes through ``_one_by_one``.
        unwritten = c.unwritten
        writers = c.writers
        replay = c.replay_until
        n = 0
        for wid, first, count, data, tags in encode_batch(payloads):
            run = None if wid is None else writers.get(wid)
            if run is None or data is None or tags is None or starts[first] < replay:
                n += self._one_by_one(c, starts, payloads, first, first + count, now)
                continue
            for tag in tags:
                if run.tags.get(tag) != cid:
                    self._tag_owner(run, tag, c)
            pending = run.pending
            if not pending:
                run.oldest = now
            pending.append(data)
            run.meta.append((cid, starts[first], starts[first + count - 1], count))
            if run.run_id not in unwritten:
                unwritten[run.run_id] = starts[first]
            n += count
        c.drained = end
        c.records += n
        self.records_total += n
        c.last_activity = now

    def _one_by_one(
        self,
        c: Client,
        starts: list[int],
        payloads: list[bytes | memoryview],
        first: int,
        stop: int,
        now: float,
    ) -> int:
        """Records ``first..stop-1`` one at a time; how many went to a run's list."""
        decode = decode_record
        encoders = encode.RECORD_ENCODERS
        handlers = self._handlers
        cid = c.cid
        replay = c.replay_until
        n = 0
        for i in range(first, stop):
            start = starts[i]
            try:
                rec = decode(payloads[i])
                enc = encoders.get(rec[0])
                if enc is not None:
                    run = c.writers.get(rec[1])
                    if run is None:
                        raise ValueError(f"record for unknown writer {rec[1]!r}")
                    if start < replay and self._written_before(c, run, start):
                        continue
                    if run.tags.get(rec[2]) != cid:
                        self._tag_owner(run, rec[2], c)
                    self._runs.add(run, c, start, now, enc(rec))
                    n += 1
                else:
                    handler = handlers.get(rec[0])
                    if handler is None:
                        raise ValueError(f"unknown record kind {rec[0]!r}")
                    handler(c, rec, start, now)
            except Exception as exc:  # a bad record never stops the daemon
                self._malformed(c, exc)
        return n

    def encoded(self, job: int, result: bytes | Exception, now: float) -> None:
        """An ``Encode`` or ``Project`` came back: fill its slot (an exception
        leaves it empty and tells the client)."""
        entry = self._jobs.pop(job, None)
        if entry is None:
            return
        run, c, slot = entry
        i = slot - run.base
        if isinstance(result, Exception):
            self._malformed(c, result)
            result = b""
            cid, s0, s1, _ = run.meta[i]
            run.meta[i] = (cid, s0, s1, 0)  # the slot holds no record
        run.pending[i] = result
        run.encoding -= 1

    def alive(self, cid: str, now: float) -> None:
        """Answer to ``CheckAlive``: the process lives, so a tag it logs that
        another client logs too is logged by two processes."""
        self._asked.discard(cid)
        for key, (run, tag, owner, newcomer) in list(self._suspects.items()):
            if owner != cid:
                continue
            del self._suspects[key]
            run.shared_tags.add(tag)
            first, second = self.clients.get(owner), self.clients.get(newcomer)
            if first is None or second is None:
                continue
            msg = (
                f"tag {tag!r} in {run.log_dir} is logged by two processes (pids {first.pid} "
                f"and {second.pid}); TensorBoard then keeps only some of its points. Use a "
                f"tag per process, e.g. 'rank<N>/{tag}'"
            )
            for who in (owner, newcomer):
                self._actions.append(Notice(who, "warning", msg))

    def _tag_owner(self, run: Run, tag: Any, c: Client) -> None:
        """First record of ``tag`` from ``c`` in ``run``: take it, or, if a live
        client already logs it, ask whether that process still runs (TensorBoard
        keeps only some points of a tag written by two processes)."""
        owner = self.clients.get(run.tags.get(tag, ""))
        if owner is None or owner.gone or owner is c:
            run.tags[tag] = c.cid
            return
        if tag in run.shared_tags or (run.run_id, tag) in self._suspects:
            return
        # DataLoader workers of the previous epoch may be dead without the loop
        # having noticed yet: a successor, not a second writer.
        self._suspects[(run.run_id, tag)] = (run, tag, owner.cid, c.cid)
        if owner.cid not in self._asked:
            self._asked.add(owner.cid)
            self._actions.append(CheckAlive(owner.cid))

    @staticmethod
    def _written_before(c: Client, run: Run, start: int) -> bool:
        return start < c.skip_below.get((run.log_dir, run.suffix), 0)

    def snapshot(self) -> dict[str, Any]:
        """What a restarted daemon needs per client (see "Restart" above)."""
        return {
            c.cid: {
                "pid": c.pid,
                "start": c.start,
                "tail": c.tail,
                "at_tail": list(c.at_tail.values()),
                "written": [[k[0], k[1], v] for k, v in c.written.items()],
                "spooled": sorted(map(list, c.spooled)),
            }
            for c in self.clients.values()
        }

    def restore(self, cid: str, saved: dict[str, Any], now: float) -> None:
        """Re-create a client's writers as of its tail and what is already written.

        Call right after ``hello`` for a ring adopted from an earlier daemon,
        before feeding its records from the tail.  Runs get new files.
        """
        c = self.clients[cid]
        for k0, k1, upto in saved.get("written", []):
            c.skip_below[(k0, k1)] = max(c.skip_below.get((k0, k1), 0), int(upto))
            c.written[(k0, k1)] = c.skip_below[(k0, k1)]
        c.replay_until = max(c.skip_below.values(), default=0)
        for rec in saved.get("at_tail", []):
            try:
                # Its purge pair was written in the earlier life.
                o = parse_open(list(rec))._replace(purge_step=None)
                self._runs.open_writer(c, o, c.tail, now, restored=True)
            except Exception as exc:
                self._malformed(c, exc)
                continue
            # Still open at the tail: the next snapshot must name it too, or a
            # daemon restarted twice forgets the writer ("CLOSE: unknown writer").
            c.at_tail[o.wid] = o.record()
        c.control.clear()  # the restored writers are the state at the tail
        self._uploads.restored(c, saved.get("spooled", []))

    def scanned(self, now: float) -> None:
        """Answer to ``ScanRings``: every ring is adopted and drained (dead
        clients found are ``gone``), so a resumed life may start."""
        self._runs.scanned()

    def flush(self, cid: str, tok: int, pos: int) -> None:
        """Acknowledge ``tok`` once every record of ``cid`` before ``pos`` is written."""
        c = self.clients.get(cid)
        if c is not None:
            c.flushes.append((pos, tok))

    def pressure(self, cid: str) -> None:
        """The client's ring is filling: write whatever holds its tail back."""
        c = self.clients.get(cid)
        if c is not None:
            c.force = True

    def gone(self, cid: str, now: float) -> None:
        """The client's process is dead and its ring drained: close and forget it."""
        c = self.clients.get(cid)
        if c is None or c.gone:
            return
        for wid in list(c.writers):
            self._close(c, [wire.CLOSE, wid], c.drained, now)
        c.force = True
        c.advance("gone")
        self._asked.discard(cid)
        for key, (run, tag, owner, newcomer) in list(self._suspects.items()):
            if owner == cid:  # a successor after all
                del self._suspects[key]
                run.tags[tag] = newcomer

    def end_all(self, now: float) -> None:
        """Shutdown: end every run (written, then closed once its encodings are
        back: keep feeding ``encoded`` and planning until ``jobs_outstanding``
        is 0) and acknowledge what is written."""
        for c in self.clients.values():
            c.force = True
        self._runs.end_all(now)

    def close_all(self, now: float) -> list[Action]:
        """``end_all`` then ``tick``, for callers whose writes cannot fail."""
        self.end_all(now)
        return self.tick(now)

    @property
    def runs(self) -> dict[tuple[str, str], Run]:
        """The live run of each ``(log_dir, suffix)``."""
        return self._runs.by_key

    @property
    def jobs_outstanding(self) -> int:
        return len(self._jobs)

    @property
    def queued(self) -> bool:
        """Whether planning again now has work: inputs fed while actions were
        carried out queued new ones, a write waited for one that is now done,
        or a file that just closed lets a resumed life start."""
        return bool(self._actions) or self._runs.replan or self._runs.startable()

    # -- outputs -----------------------------------------------------------

    def tick(self, now: float) -> list[Action]:
        """``plan_writes`` then ``settle``, for callers whose writes cannot fail."""
        actions = self.plan_writes(now)
        for act in actions:
            if isinstance(act, Append):
                self.write_succeeded(act)
        return actions + self.settle(now)

    def plan_writes(self, now: float) -> list[Action]:
        """Work to start, files to open or purge, notices, and the writes that are due.

        The loop carries them out, reports each failed ``Append`` with
        ``write_failed``, then asks ``settle`` for closes, tails and
        acknowledgements, so no tail passes a record whose write failed.
        """
        self._runs.advance_time(now)
        actions = self._take()
        forced: set[int] = set()
        for c in self.clients.values():
            if c.flushes and any(pos <= c.drained for pos, _ in c.flushes):
                c.force = True
            if c.force:
                forced.update(c.unwritten)
        actions.extend(self._runs.plan(now, forced))
        for c in self.clients.values():
            c.force = False
        # Notices raised while planning (a failed write's, ...).
        actions.extend(self._take())
        return actions

    def _take(self) -> list[Action]:
        actions = self._actions[:]
        self._actions.clear()
        return actions

    def settle(self, now: float) -> list[Action]:
        """Files to close, tails to publish, flushes to acknowledge, rings to
        remove (after the writes)."""
        if self._actions:
            # Inputs fed while the last plan was carried out queued writes not
            # done yet: no tail, ack or close may pass them.  Plan again first.
            return []
        actions = self._runs.settle()
        for cid, c in list(self.clients.items()):
            tail = min(c.unwritten.values()) if c.unwritten else c.drained
            if tail != c.tail:
                c.tail = tail
                actions.append(SetTail(cid, tail))
                if c.blobs and c.blobs[0][0] < tail:
                    done = tuple(n for pos, n in c.blobs if pos < tail)
                    c.blobs = [(pos, n) for pos, n in c.blobs if pos >= tail]
                    actions.append(RemoveBlobs(cid, done))
                if c.control and c.control[0][0] < tail:
                    self._advance_at_tail(c, tail)
            if c.flushes:
                keep = []
                for pos, tok in c.flushes:
                    if pos > tail:
                        keep.append((pos, tok))
                    else:  # written; s3 runs: held until uploaded (``uploads.py``)
                        actions.extend(self._uploads.written(c, tok))
                c.flushes = keep
            actions.extend(self._uploads.release(c))
            if c.state is ClientState.GONE and not c.unwritten:
                c.advance("written")
                actions.append(RemoveRing(cid))
                del self.clients[cid]
        return actions

    @staticmethod
    def _advance_at_tail(c: Client, tail: int) -> None:
        keep = []
        for pos, rec in c.control:
            if pos >= tail:
                keep.append((pos, rec))
            elif rec[0] == wire.OPEN:
                c.at_tail[rec[1]] = rec
            else:
                c.at_tail.pop(rec[1], None)
        c.control = keep

    def next_deadline(self) -> float | None:
        """When ``plan_writes`` next has work without new input (None: never).
        A run whose first slot is still encoding has none: its result wakes the loop."""
        due = self._runs.deadlines()
        return min(due) if due else None

    def status(self) -> dict[str, Any]:
        return {
            "clients": [
                {
                    "sid": c.cid,
                    "pid": c.pid,
                    "ring": c.ring,
                    "argv": c.argv,
                    "state": c.state.value,
                    "writers": len(c.writers),
                    "records": c.records,
                    "malformed": c.malformed,
                    "tail": c.tail,
                    "drained": c.drained,
                    "last_activity": c.last_activity,
                }
                for c in self.clients.values()
            ],
            "runs": self._runs.status(),
            "records": self.records_total,
            "bytes": self.bytes_total,
            "malformed": self.malformed_total,
            "encoding": len(self._jobs),
        }

    # -- record handlers ---------------------------------------------------

    def _open(self, c: Client, rec: list[Any], start: int, now: float) -> None:
        self._runs.open_writer(c, parse_open(rec), start, now)
        c.control.append((start, rec))

    def _array(self, c: Client, rec: list[Any], start: int, now: float) -> None:
        """An array record: a slot in its run's list, filled when its ``Encode``
        (or, for add_embedding, ``Project``) comes back."""
        data = rec[-1]
        blob = None
        if type(data) is int and len(rec) == wire.ARRAY_FIELDS:
            if not 0 <= data < 1 << 63:
                raise ValueError(f"blob number {data} out of range")
            c.blobs.append((start, data))  # removed after the tail passes, whatever happens
            blob, data = data, None
        encode.check_array_record(rec)
        run = c.writers.get(rec[1])
        if run is None:
            raise ValueError(f"record for unknown writer {rec[1]!r}")
        if start < c.replay_until and self._written_before(c, run, start):
            return
        if blob is None and type(data) is not bytes and type(data) is not memoryview:
            raise TypeError("array record data must be bytes or a blob number")
        c.records += 1
        self.records_total += 1
        self._job_ids += 1
        job = self._job_ids
        if rec[0] == wire.EMBEDDING and run.log_dir.startswith("s3://"):
            raise ValueError(
                f"add_embedding into {run.log_dir}: s3:// log dirs take no projector files"
            )
        if rec[0] == wire.EMBEDDING:
            # Files, not events; the tail passes the record only once they are written.
            self._actions.append(Project(job, c.cid, run.log_dir, rec, data, blob))
        else:
            tag = rec[2]
            if tag and run.tags.get(tag) != c.cid:
                self._tag_owner(run, tag, c)
            self._actions.append(Encode(job, c.cid, rec, data, blob))
        self._runs.add(run, c, start, now, None)
        run.encoding += 1
        self._jobs[job] = (run, c, run.base + len(run.pending) - 1)

    def _close(self, c: Client, rec: list[Any], start: int, now: float) -> None:
        _, wid = rec
        self._runs.close_writer(c, wid, now)
        c.control.append((start, rec))

    def write_failed(self, act: Append, error: str, now: float) -> None:
        """The loop could not write ``act`` (it wrote nothing of it): keep its
        records pending, hold the tails behind them, retry after WRITE_RETRY,
        and tell the run's clients once per distinct error."""
        self._runs.write_failed(act, error, now)

    def write_succeeded(self, act: Append) -> None:
        """``act`` is in its file: record how far each client got, forget an earlier error."""
        for cid, k0, k1, upto in act.commits:
            c = self.clients.get(cid)
            if c is not None and upto > c.written.get((k0, k1), 0):
                c.written[(k0, k1)] = upto
        self.bytes_total += sum(map(len, act.parts))
        self._runs.write_succeeded(act)
        if act.seq:  # in the spool, not yet in the bucket: a flush of these clients waits
            self._uploads.spooled(act)

    def uploaded(self, run_id: int, seq: int, now: float) -> None:
        """Every ``Append`` of s3 run ``run_id`` up to ``seq`` is in the bucket:
        flushes waiting for them may be acknowledged (``settle``)."""
        self._uploads.uploaded(run_id, seq)

    def backlog(self, waiting: int, key: tuple[str, str], now: float) -> None:
        """A spool adopted from an earlier daemon holds ``waiting`` bytes of the
        s3 run ``key`` (log_dir, suffix); 0 once they are all uploaded."""
        self._uploads.backlog(key, waiting)

    def upload_failed(self, run_id: int, error: str, now: float) -> None:
        """An upload of s3 run ``run_id`` failed (retried by the uploader): tell
        its clients, once per distinct error."""
        self._uploads.failed(run_id, error)

    def _malformed(self, c: Client, exc: Exception) -> None:
        c.malformed += 1
        self.malformed_total += 1
        if c.notices < NOTICE_LIMIT:
            c.notices += 1
            more = " (further notices suppressed)" if c.notices == NOTICE_LIMIT else ""
            self._actions.append(
                Notice(c.cid, "warning", f"record skipped: {exc.__class__.__name__}: {exc}{more}")
            )
