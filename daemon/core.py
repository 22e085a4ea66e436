"""The daemon's core: ring records in, event-file bytes and acknowledgements out.

Theory of operation
-------------------
The core owns no socket, file or clock.  The loop feeds it what happened
(``hello``, ``records`` drained from a client's ring, ``flush`` requests,
``gone`` for a dead client) with the current time, then calls ``tick(now)``
and carries out the returned actions in order: open a file for a run, append
bytes to it, publish a ring's tail, acknowledge a flush, send a notice, close
a file, remove a ring.

*Runs.*  One run per ``(log_dir, filename_suffix)``, shared by every writer of
every client that logs there, backed by one event file at a time.  A run
opens when its first writer sends OPEN (the file starts with torch's
``brain.Event:2`` record).  When its last writer closes (CLOSE, or its client
is gone) the run's records are written at once, but the file stays open for
``linger`` seconds: ranks of one job start and finish at different moments,
and a process that opens the run meanwhile joins the same file instead of
starting a second one (records from different rings are drained in no
particular order, so "last writer" is only known after a while).  A writer
that closes and opens again from the same process gets a new file, as torch.

*Batching and latency.*  Encoded records wait in their run's buffer and are
appended in one write when the first of these holds: ``max_queue`` records
wait (the smallest of the run's writers), the oldest waited the run's
latency (``min(max_latency, flush_secs)``, max_latency 1 s by default, so an
event shows in TensorBoard within about a second), the buffer reached
``WRITE_CHUNK`` bytes, a flush barrier or a full ring needs it, or the run
closes.  The loop drains many records per cycle, so a busy run gets one
write per cycle, never one per event.

*Durability.*  A ring's tail (published with ``SetTail``) only passes records
that are in their files: a daemon killed between drain and write leaves the
records in the ring for the next daemon.  Per client the core tracks, per
run, where its first unwritten record starts; the tail is the smallest of
those, or the drained position when nothing waits.

*Restart.*  A daemon that dies (or stops) leaves the rings in place; the
next one must know, per client, which writers were open at the ring's tail
(their OPEN records lie before it) and which records after the tail are
already in files (another run of the same client may have held the tail
back).  ``snapshot`` gives both, the loop persists it before it publishes a
tail, and ``restore`` re-creates them: records already written are skipped,
so every committed record reaches a file exactly once.

*Flush.*  A flush names a ring position; it is acknowledged once the tail has
reached it, forcing the writes that hold it back.

*Isolation.*  A record that does not decode or validate is skipped, counted
and reported to its client with a notice (at most ``NOTICE_LIMIT`` per
client); it never raises out of the core.

Client lifecycle::

    hello -> active --(ring drained to the end after its process died)--> gone
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from summaryd import wire

from . import encode
from .arrays import decode_arrays, decode_record
from .tfrecord import frame

WRITE_CHUNK = 1 << 20
WRITE_RETRY = 1.0  # seconds between attempts to write a run whose last write failed
PURGE_WAIT = 5.0  # seconds a resumed run waits for the earlier life's writers to be gone
NOTICE_LIMIT = 20
DEFAULT_MAX_LATENCY = 1.0
DEFAULT_LINGER = 5.0


# -- actions -------------------------------------------------------------------


@dataclass(frozen=True)
class OpenFile:
    run_id: int
    log_dir: str
    suffix: str


@dataclass(frozen=True)
class Append:
    run_id: int
    data: bytes
    records: int
    # (cid, start) of each client's first record in ``data``: what ``write_failed``
    # puts back so the tails stay behind records that did not reach the disk.
    restore: tuple[tuple[str, int], ...] = ()
    # (cid, log_dir, suffix, upto): once written, each client's records of this
    # run that start before ``upto`` are in a file.
    commits: tuple[tuple[str, str, str, int], ...] = ()


@dataclass(frozen=True)
class CloseFile:
    run_id: int


@dataclass(frozen=True)
class SetTail:
    cid: str
    pos: int


@dataclass(frozen=True)
class Ack:
    cid: str
    tok: int


@dataclass(frozen=True)
class Notice:
    cid: str
    level: str
    msg: str


@dataclass(frozen=True)
class RemoveRing:
    cid: str


@dataclass(frozen=True)
class PurgeFiles:
    """Rewrite the run directory's closed event files without events at or after ``step``."""

    log_dir: str
    step: int


@dataclass(frozen=True)
class RemoveBlobs:
    """The client's blobs ``<ring>.b<n>`` whose records are now in their files."""

    cid: str
    blobs: tuple[int, ...]


Action = (
    OpenFile | Append | CloseFile | SetTail | Ack | Notice | RemoveRing | PurgeFiles | RemoveBlobs
)


def _project_job(
    job: tuple[Callable[..., None], str, dict[str, Any], list[Any]],
) -> bytes | Exception:
    """An add_embedding record's files (the loop's writer); no event bytes."""
    project, log_dir, params, arrays = job
    try:
        project(log_dir, params, arrays)
    except Exception as exc:
        return exc
    return b""


def _encode_job(job: tuple[list[Any], bytes | memoryview]) -> bytes | Exception:
    """One array record's framed events, or the exception that refused it
    (returned, not raised: jobs run in a pool and one bad record must not
    take the others' results with it)."""
    try:
        return encode.array_record(*job)
    except Exception as exc:
        return exc


# -- state ---------------------------------------------------------------------


@dataclass(eq=False)
class Run:
    run_id: int
    log_dir: str
    suffix: str
    opened_at: float
    max_queue: int = 0
    latency: float = DEFAULT_MAX_LATENCY
    writers: set[tuple[str, int]] = field(default_factory=set)
    pending: list[bytes] = field(default_factory=list)
    oldest: float = math.inf
    # clients with records waiting in ``pending``
    clients: set[str] = field(default_factory=set)
    records_written: int = 0
    bytes_written: int = 0
    last_write: float | None = None
    # Set while the run has no writers and waits ``linger`` seconds before closing.
    idle_since: float | None = None
    closed_by: str | None = None
    # After a failed write (disk full, unwritable directory): no write before
    # ``retry_at``; ``error`` is what clients were told.
    retry_at: float = 0.0
    error: str | None = None
    # cid -> start of that client's last pending record + 1
    upto: dict[str, int] = field(default_factory=dict)
    # tag -> the client that logs it; tags reported as logged by two clients
    tags: dict[Any, str] = field(default_factory=dict)
    shared_tags: set[Any] = field(default_factory=set)
    # array records in ``pending`` whose encoding has not filled their slot yet
    encoding: int = 0
    # Where it lives in Core.runs: (log_dir, suffix), or a key of its own once a
    # resumed trainer's purge has retired it.
    key: Any = ()
    # A life begun with purge_step: its step, and until the earlier life is
    # closed and purged, the run it waits for and how long at most.
    purge_step: int | None = None
    purge_pending: bool = False
    predecessor: Run | None = None
    purge_deadline: float = 0.0
    resumer_start: int = 0  # start time of the process that resumed: older ones are the past


@dataclass(eq=False)
class Client:
    cid: str
    pid: int
    start: int
    ring: str
    connected_at: float
    argv: list[str] = field(default_factory=list)
    writers: dict[int, Run] = field(default_factory=dict)
    drained: int = 0
    tail: int = 0
    unwritten: dict[int, int] = field(default_factory=dict)  # run_id -> first unwritten start
    flushes: list[tuple[int, int]] = field(default_factory=list)  # (pos, tok)
    records: int = 0
    malformed: int = 0
    notices: int = 0
    last_activity: float = 0.0
    force: bool = False
    gone: bool = False
    # For restarts: OPEN/CLOSE records after the tail, the OPEN records of the
    # writers open at the tail, and how far each run's records are in files.
    control: list[tuple[int, list[Any]]] = field(default_factory=list)
    at_tail: dict[int, list[Any]] = field(default_factory=dict)
    written: dict[tuple[str, str], int] = field(default_factory=dict)
    # Restored ``written``: records before these positions are not written again.
    skip_below: dict[tuple[str, str], int] = field(default_factory=dict)
    replay_until: int = 0
    # (start, n) of records whose data is in the blob ``<ring>.b<n>``: removed
    # once the tail passes the record.
    blobs: list[tuple[int, int]] = field(default_factory=list)


class Core:
    """Records in, file bytes and acknowledgements out; see the module docstring."""

    def __init__(
        self,
        max_latency: float = DEFAULT_MAX_LATENCY,
        linger: float = DEFAULT_LINGER,
        alive: Callable[[int, int], bool] | None = None,
        read_blob: Callable[[str, int], bytes | memoryview] | None = None,
        submit: Callable[[Callable[[Any], Any], Any], Future[Any]] | None = None,
        project: Callable[[str, dict[str, Any], list[Any]], None] | None = None,
        submit_in_order: Callable[[Callable[[Any], Any], Any], Future[Any]] | None = None,
    ) -> None:
        self.max_latency = max_latency
        # The loop's reader of a client's blob ``n`` (I/O stays at the edge).
        self._read_blob = read_blob
        # Array records are encoded off the loop: ``submit`` (the loop passes a
        # thread pool's) starts each one as it is drained, so PNG, GIF and
        # histogram work runs on every core while the loop keeps draining; the
        # result fills the record's slot in its run's buffer, and a run is
        # written only once all its slots are filled, so each client's records
        # reach the file in order.  Without ``submit`` (tests) a job runs when
        # its slot is needed.
        self._submit = submit
        # The loop's writer of add_embedding's files (I/O at the edge), run as a
        # job like an encoding; its record's slot stays empty, and holds the
        # tail until the files are written.
        self._project = project
        # Projector jobs run one at a time, in record order (each merges into the
        # log dir's config: torch lists embeddings in call order).
        self._submit_in_order = submit_in_order or submit
        # [run, slot index in run.pending, client, future or None, job function, its argument]
        self._jobs: list[list[Any]] = []
        self.linger = linger
        # Whether a client's process still runs (pid, start ticks): the loop passes
        # paths.process_alive; None trusts ``gone`` alone.
        self._alive = alive
        self.clients: dict[str, Client] = {}
        self.runs: dict[tuple[str, str], Run] = {}
        self._run_ids = 0
        self._actions: list[Action] = []
        # Set when a trainer resumes: the loop should adopt and drain every ring
        # now, so the earlier life's records are known before the new life starts.
        self.scan_requested = False
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
        # The daemon's hot loop: locals only, one dict lookup per step.
        decode = decode_record
        encoders = encode.RECORD_ENCODERS
        handlers = self._handlers
        unwritten = c.unwritten
        writers = c.writers
        replay = c.replay_until
        n = 0
        for start, payload in zip(starts, payloads, strict=True):
            try:
                rec = decode(payload)
                enc = encoders.get(rec[0])
                if enc is not None:
                    run = writers.get(rec[1])
                    if run is None:
                        raise ValueError(f"record for unknown writer {rec[1]!r}")
                    if start < replay and self._written_before(c, run, start):
                        continue
                    if run.tags.get(rec[2]) != cid:
                        self._tag_owner(run, rec[2], c)
                    data = enc(rec)
                    pending = run.pending
                    if not pending:
                        run.oldest = now
                    pending.append(data)
                    run.upto[cid] = start + 1
                    rid = run.run_id
                    if rid not in unwritten:
                        unwritten[rid] = start
                        run.clients.add(cid)
                    n += 1
                else:
                    handler = handlers.get(rec[0])
                    if handler is None:
                        raise ValueError(f"unknown record kind {rec[0]!r}")
                    handler(c, rec, start, now)
            except Exception as exc:  # a bad record never stops the daemon
                self._malformed(c, exc)
        c.drained = end
        c.records += n
        self.records_total += n
        c.last_activity = now

    def _tag_owner(self, run: Run, tag: Any, c: Client) -> None:
        """First record of ``tag`` from ``c`` in ``run``: take it, or warn if a
        live client already logs it (TensorBoard keeps only some points of a
        tag written by two processes: a lower step evicts later ones)."""
        owner = self.clients.get(run.tags.get(tag, ""))
        if owner is None or owner.gone or owner is c:
            run.tags[tag] = c.cid
            return
        if tag in run.shared_tags:
            return
        if self._alive is not None and not self._alive(owner.pid, owner.start):
            # The owner died and the loop has not noticed yet (DataLoader workers
            # of the previous epoch): a successor, not a second writer.
            run.tags[tag] = c.cid
            return
        run.shared_tags.add(tag)
        msg = (
            f"tag {tag!r} in {run.log_dir} is logged by two processes (pids {owner.pid} "
            f"and {c.pid}); TensorBoard then keeps only some of its points. Use a tag per "
            f"process, e.g. 'rank<N>/{tag}'"
        )
        for cid in (owner.cid, c.cid):
            self._actions.append(Notice(cid, "warning", msg))

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
            rec = list(rec)
            rec[6] = None  # its purge pair was written in the earlier life
            try:
                self._open(c, rec, c.tail, now)
            except Exception as exc:
                self._malformed(c, exc)
                continue
            # Still open at the tail: the next snapshot must name it too, or a
            # daemon restarted twice forgets the writer ("CLOSE: unknown writer").
            c.at_tail[rec[1]] = rec
        c.control.clear()  # the restored writers are the state at the tail

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
        if c is None:
            return
        for wid in list(c.writers):
            self._close(c, [wire.CLOSE, wid], c.drained, now)
        c.force = True
        c.gone = True

    def close_all(self, now: float) -> list[Action]:
        """Shutdown: write and close every run, acknowledge every flush."""
        for c in self.clients.values():
            c.force = True
        for run in list(self.runs.values()):
            run.retry_at = 0.0
            if run.purge_pending:
                self._start_resumed(run, now)
        actions = self.tick(now)
        for run in list(self.runs.values()):
            self._end_run(run, now)
        actions.extend(self._actions)
        self._actions = []
        return actions

    # -- outputs -----------------------------------------------------------

    def tick(self, now: float) -> list[Action]:
        """``plan_writes`` then ``settle``, for callers whose writes cannot fail."""
        actions = self.plan_writes(now)
        for act in actions:
            if isinstance(act, Append):
                self.write_succeeded(act)
        return actions + self.settle(now)

    def plan_writes(self, now: float) -> list[Action]:
        """Files to open or close, notices, and the writes that are due.

        The loop carries them out, reports each failed ``Append`` with
        ``write_failed``, then asks ``settle`` for tails and acknowledgements,
        so no tail passes a record whose write failed.
        """
        self._resolve_jobs(wait=False)
        for run in list(self.runs.values()):
            if run.idle_since is not None and now - run.idle_since >= self.linger:
                self._end_run(run, now)
            elif run.purge_pending and (
                run.predecessor is None
                or run.predecessor.key not in self.runs
                or now >= run.purge_deadline
            ):
                self._start_resumed(run, now)
        actions, self._actions = self._actions, []
        forced: set[int] = set()
        for c in self.clients.values():
            if c.flushes and any(pos <= c.drained for pos, _ in c.flushes):
                c.force = True
            if c.force:
                forced.update(c.unwritten)
        for run in list(self.runs.values()):
            if not run.pending or run.retry_at > now:
                continue
            urgent = run.run_id in forced or now - run.oldest >= run.latency
            if run.encoding and not urgent:
                continue  # its encoders finish first (they wake the loop)
            if (
                urgent
                or (run.max_queue and len(run.pending) >= run.max_queue)
                or sum(map(len, run.pending)) >= WRITE_CHUNK
            ):
                actions.extend(self._write(run, now))
        for c in self.clients.values():
            c.force = False
        # Notices of array records that failed while a write waited for them.
        actions.extend(self._actions)
        self._actions = []
        return actions

    def settle(self, now: float) -> list[Action]:
        """Tails to publish, flushes to acknowledge, rings to remove (after the writes)."""
        actions: list[Action] = []
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
                    if pos <= tail:
                        actions.append(Ack(cid, tok))
                    else:
                        keep.append((pos, tok))
                c.flushes = keep
            if c.gone and not c.unwritten:
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
        """When ``tick`` next has a write to do without new input (None: never)."""
        due = [max(r.oldest + r.latency, r.retry_at) for r in self.runs.values() if r.pending]
        due += [r.purge_deadline for r in self.runs.values() if r.purge_pending]
        due += [r.idle_since + self.linger for r in self.runs.values() if r.idle_since is not None]
        return min(due) if due else None

    def status(self) -> dict[str, Any]:
        return {
            "clients": [
                {
                    "sid": c.cid,
                    "pid": c.pid,
                    "ring": c.ring,
                    "argv": c.argv,
                    "writers": len(c.writers),
                    "records": c.records,
                    "malformed": c.malformed,
                    "tail": c.tail,
                    "drained": c.drained,
                    "last_activity": c.last_activity,
                }
                for c in self.clients.values()
            ],
            "runs": [
                {
                    "run_id": r.run_id,
                    "log_dir": r.log_dir,
                    "suffix": r.suffix,
                    "writers": len(r.writers),
                    "records": r.records_written,
                    "bytes": r.bytes_written,
                    "pending": len(r.pending),
                    "last_write": r.last_write,
                    "opened_at": r.opened_at,
                    "idle_since": r.idle_since,
                    "error": r.error,
                }
                for r in self.runs.values()
            ],
            "records": self.records_total,
            "bytes": self.bytes_total,
            "malformed": self.malformed_total,
        }

    # -- record handlers ---------------------------------------------------

    def _open(self, c: Client, rec: list[Any], start: int, now: float) -> None:
        _, wid, log_dir, suffix, max_queue, flush_secs, purge_step, walltime = rec
        if type(wid) is not int or wid in c.writers:
            raise ValueError(f"OPEN: writer id {wid!r} invalid or already open")
        if not (
            isinstance(log_dir, str)
            and log_dir.startswith("/")
            and "\0" not in log_dir
            and os.path.normpath(log_dir) == log_dir
        ):
            raise ValueError(f"OPEN: log_dir must be a normalised absolute path, got {log_dir!r}")
        if not isinstance(suffix, str) or "/" in suffix or "\0" in suffix:
            raise ValueError(f"OPEN: invalid filename_suffix {suffix!r}")
        if type(max_queue) is not int or not isinstance(flush_secs, (int, float)):
            raise ValueError("OPEN: max_queue must be int and flush_secs a number")
        if purge_step is not None and (
            type(purge_step) is not int or not -(1 << 63) <= purge_step < (1 << 63)
        ):
            raise ValueError("OPEN: purge_step must be an int64 or nil")
        walltime = float(walltime)
        # Encode before touching any state: a record that fails leaves nothing behind.
        header = frame(encode.file_header(walltime))
        if purge_step is not None and start < c.skip_below.get((log_dir, suffix), 0):
            purge_step = None  # an earlier daemon wrote this pair already
        purge = (
            [
                # torch's purge pair: a version event and SessionLog.START at purge_step.
                frame(encode.file_version(walltime, purge_step)),
                frame(encode.session_start(walltime, purge_step)),
            ]
            if purge_step is not None
            else []
        )
        key = (log_dir, suffix)
        run = self.runs.get(key)
        if purge_step is not None:
            if run is not None and run.purge_step == purge_step:
                # Another rank resuming at the same step: the first one's pair
                # stands (a second START would make TensorBoard's Python loader
                # drop the points the first resumed rank already wrote).
                purge = []
            else:
                run = self._resume(run, key, c, start, now, max_queue, flush_secs, header)
                run.purge_step = purge_step
        elif run is not None and run.purge_pending and c.start < run.resumer_start:
            # A writer of the earlier life (its process started before the resumed
            # one), found only now: its records go to the earlier life's file.
            old = run.predecessor
            if old is None or old.key not in self.runs:
                old = self._new_run(key, now, max_queue, flush_secs)
                del self.runs[key]
                old.key = (*key, "retired", old.run_id)
                self.runs[old.key] = old
                self.runs[key] = run
                self._actions.append(OpenFile(old.run_id, log_dir, suffix))
                self._add(old, c, start, now, header)
                run.predecessor = old
            run = old
        if run is not None and run.idle_since is not None:
            if run.closed_by == c.cid:
                # The same process re-opens what it closed: a new file, as torch.
                self._end_run(run, now)
                run = None
            else:
                run.idle_since = run.closed_by = None
        if run is None:
            run = self._new_run(key, now, max_queue, flush_secs)
            self._actions.append(OpenFile(run.run_id, log_dir, suffix))
            self._add(run, c, start, now, header)
        else:
            if max_queue > 0:
                run.max_queue = min(run.max_queue, max_queue) if run.max_queue else max_queue
            run.latency = min(run.latency, max(0.0, float(flush_secs)))
        for data in purge:
            self._add(run, c, start, now, data)
        run.writers.add((c.cid, wid))
        c.writers[wid] = run
        c.control.append((start, rec))

    def _array(self, c: Client, rec: list[Any], start: int, now: float) -> None:
        """An array record: queue its encoding (``_resolve_jobs``) in its run's buffer."""
        data = rec[-1]
        if type(data) is int and len(rec) == wire.ARRAY_FIELDS:
            if not 0 <= data < 1 << 63:
                raise ValueError(f"blob number {data} out of range")
            c.blobs.append((start, data))  # removed after the tail passes, whatever happens
        encode.check_array_record(rec)
        run = c.writers.get(rec[1])
        if run is None:
            raise ValueError(f"record for unknown writer {rec[1]!r}")
        if start < c.replay_until and self._written_before(c, run, start):
            return
        if type(data) is int:
            if self._read_blob is None:
                raise ValueError("this daemon reads no blobs")
            try:
                data = self._read_blob(c.cid, data)
            except OSError as exc:
                raise ValueError(f"blob {rec[-1]} unreadable: {exc}") from None
        elif type(data) is not bytes and type(data) is not memoryview:
            raise TypeError("array record data must be bytes or a blob number")
        c.records += 1
        self.records_total += 1
        if rec[0] == wire.EMBEDDING:
            # Files, not events; the tail passes the record only once they are written.
            if self._project is None:
                raise ValueError("this daemon writes no projector files")
            job: Callable[[Any], bytes | Exception] = _project_job
            work: Any = (self._project, run.log_dir, rec[5], decode_arrays(rec[6], data))
            submit = self._submit_in_order
        else:
            tag = rec[2]
            if tag and run.tags.get(tag) != c.cid:
                self._tag_owner(run, tag, c)
            job, work, submit = _encode_job, (rec, data), self._submit
        self._add(run, c, start, now, b"")  # a slot, filled by _resolve_jobs
        fut = submit(job, work) if submit is not None else None
        self._jobs.append([run, len(run.pending) - 1, c, fut, job, work])
        run.encoding += 1

    def _resolve_jobs(self, run: Run | None = None, *, wait: bool = True) -> None:
        """Fill the slots of encoded array records: all finished ones, and with
        ``wait`` also the unfinished ones (of ``run`` only, if given)."""
        keep = []
        for job in self._jobs:
            jrun, i, c, fut, fn, work = job
            if fut is None:
                res = fn(work)
            elif fut.done() or wait and (run is None or jrun is run):
                res = fut.result()
            else:
                keep.append(job)
                continue
            jrun.encoding -= 1
            if isinstance(res, Exception):
                self._malformed(c, res)
            else:
                jrun.pending[i] = res
        self._jobs = keep

    def _close(self, c: Client, rec: list[Any], start: int, now: float) -> None:
        _, wid = rec
        run = c.writers.pop(wid, None)
        if run is None:
            raise ValueError(f"CLOSE: unknown writer {wid!r}")
        c.control.append((start, rec))
        run.writers.discard((c.cid, wid))
        if not run.writers:
            if run.key != (run.log_dir, run.suffix):  # retired by a resume: nobody joins it
                self._end_run(run, now)
                return
            # Written now (unless its file waits for a purge), closed after the linger.
            self._actions.extend(self._write(run, now))
            run.idle_since = now
            run.closed_by = c.cid

    def _new_run(self, key: tuple[str, str], now: float, max_queue: int, flush_secs: float) -> Run:
        self._run_ids += 1
        run = Run(self._run_ids, key[0], key[1], now, max_queue=max_queue, key=key)
        run.latency = min(self.max_latency, max(0.0, float(flush_secs)))
        self.runs[key] = run
        return run

    def _resume(
        self,
        old: Run | None,
        key: tuple[str, str],
        c: Client,
        start: int,
        now: float,
        max_queue: int,
        flush_secs: float,
        header: bytes,
    ) -> Run:
        """A trainer resumes with purge_step: a new life in a new file, opened
        once the earlier life's writers are gone (their rings drained) and its
        files are purged of the steps the new life logs again."""
        if old is not None:
            del self.runs[key]
            old.key = (*key, "retired", old.run_id)
            self.runs[old.key] = old
            if not old.writers:
                self._end_run(old, now)
        run = self._new_run(key, now, max_queue, flush_secs)
        run.purge_pending = True
        run.predecessor = old
        run.purge_deadline = now + PURGE_WAIT
        run.resumer_start = c.start
        self.scan_requested = True
        self._add(run, c, start, now, header)
        return run

    def _start_resumed(self, run: Run, now: float) -> None:
        old = run.predecessor
        if old is not None and old.key in self.runs:
            # Its writers outlived the wait (a live process): they go on in the new life.
            for cid, wid in old.writers:
                oc = self.clients.get(cid)
                if oc is not None:
                    oc.writers[wid] = run
                run.writers.add((cid, wid))
            old.writers.clear()
            self._end_run(old, now)
        assert run.purge_step is not None
        self._actions.append(PurgeFiles(run.log_dir, run.purge_step))
        self._actions.append(OpenFile(run.run_id, run.log_dir, run.suffix))
        run.purge_pending = False
        run.predecessor = None

    def _end_run(self, run: Run, now: float) -> None:
        """Write what it holds and close its file (a run whose file waits for a
        purge is started first: its records must not be lost)."""
        if run.purge_pending:
            self._start_resumed(run, now)
        self._actions.extend(self._write(run, now))
        self._actions.append(CloseFile(run.run_id))
        del self.runs[run.key]

    def _add(self, run: Run, c: Client, start: int, now: float, data: bytes) -> None:
        if not run.pending:
            run.oldest = now
        run.pending.append(data)
        run.upto[c.cid] = start + 1
        if run.run_id not in c.unwritten:
            c.unwritten[run.run_id] = start
            run.clients.add(c.cid)

    def _write(self, run: Run, now: float) -> list[Action]:
        if run.encoding:
            self._resolve_jobs(run)
        if not run.pending or run.purge_pending:  # no file yet: it waits for the purge
            return []
        data = b"".join(run.pending)
        n = len(run.pending)
        run.pending = []
        run.oldest = math.inf
        run.records_written += n
        run.bytes_written += len(data)
        run.last_write = now
        self.bytes_total += len(data)
        # Each client's first unwritten record of this run, taken out of
        # ``unwritten`` (the write covers it) and kept so ``write_failed`` can put
        # it back: a tail must never pass records whose write failed.
        restore = tuple(
            (cid, c.unwritten.pop(run.run_id))
            for cid in run.clients
            if (c := self.clients.get(cid)) is not None and run.run_id in c.unwritten
        )
        run.clients.clear()
        commits = tuple((cid, run.log_dir, run.suffix, upto) for cid, upto in run.upto.items())
        run.upto = {}
        return [Append(run.run_id, data, n, restore, commits)]

    def write_failed(self, act: Append, error: str, now: float) -> None:
        """The loop could not write ``act`` (it wrote nothing of it): keep its
        records pending, hold the tails behind them, retry after WRITE_RETRY,
        and tell the run's clients once per distinct error."""
        run = next((r for r in self.runs.values() if r.run_id == act.run_id), None)
        if run is None:  # closed meanwhile (shutdown): the records stay in the rings
            return
        run.pending.insert(0, act.data)
        for job in self._jobs:  # slots queued since the write moved one place on
            if job[0] is run:
                job[1] += 1
        run.oldest = min(run.oldest, now)
        run.records_written -= act.records
        run.bytes_written -= len(act.data)
        self.bytes_total -= len(act.data)
        run.retry_at = now + WRITE_RETRY
        for cid, _k0, _k1, upto in act.commits:
            run.upto[cid] = max(run.upto.get(cid, 0), upto)
        rid = run.run_id
        for cid, pos in act.restore:
            c = self.clients.get(cid)
            if c is not None:
                c.unwritten[rid] = min(c.unwritten.get(rid, pos), pos)
                run.clients.add(cid)
        if run.error != error:
            run.error = error
            told = {cid for cid, _ in run.writers} | {cid for cid, _ in act.restore}
            for cid in sorted(told):
                self._actions.append(
                    Notice(
                        cid,
                        "warning",
                        f"cannot write to {run.log_dir}: {error}; its events wait in shared "
                        f"memory and are written when that works again",
                    )
                )

    def write_succeeded(self, act: Append) -> None:
        """``act`` is in its file: record how far each client got, forget an earlier error."""
        for cid, k0, k1, upto in act.commits:
            c = self.clients.get(cid)
            if c is not None and upto > c.written.get((k0, k1), 0):
                c.written[(k0, k1)] = upto
        for run in self.runs.values():
            if run.run_id == act.run_id:
                run.error = None

    def _malformed(self, c: Client, exc: Exception) -> None:
        c.malformed += 1
        self.malformed_total += 1
        if c.notices < NOTICE_LIMIT:
            c.notices += 1
            more = " (further notices suppressed)" if c.notices == NOTICE_LIMIT else ""
            self._actions.append(
                Notice(c.cid, "warning", f"record skipped: {exc.__class__.__name__}: {exc}{more}")
            )
