"""The core's runs: which run a writer joins, resume with purge_step, linger,
ending, and each run's list of framed records and the writes taken from it.

Part of the core (no I/O, never waits): ``Core`` owns the clients and the
records; ``Runs`` owns the runs and puts its actions on the core's outbox.
Lifecycle transitions are ``lifecycle.RUN_TABLE``'s.
"""

from __future__ import annotations

import math
from typing import Any

from . import encode
from .actions import Action, Append, CloseFile, Notice, OpenFile, PurgeFiles, ScanRings
from .lifecycle import LIVE_RUN_STATES, RunState
from .state import Client, OpenRec, Run
from .tfrecord import frame

WRITE_CHUNK = 1 << 20
WRITE_RETRY = 1.0  # seconds between attempts to write a run whose last write failed
PURGE_WAIT = 5.0  # seconds a resumed run waits for the earlier life's writers to be gone

R = RunState


class Runs:
    def __init__(
        self, clients: dict[str, Client], outbox: list[Action], max_latency: float, linger: float
    ) -> None:
        self.clients = clients  # the core's (read, and each client's ``unwritten`` kept)
        self.outbox = outbox  # the core's actions, in order
        self.max_latency = max_latency
        self.linger = linger
        # The live run of each key; retired and closing runs are ``detached``.
        self.by_key: dict[tuple[str, str], Run] = {}
        self.detached: list[Run] = []
        self._ids = 0
        # A write was held back behind one not yet done: plan again once it is.
        self.replan = False

    def all(self) -> list[Run]:
        return [*self.by_key.values(), *self.detached]

    def find(self, run_id: int) -> Run | None:
        return next((r for r in self.all() if r.run_id == run_id), None)

    # -- writers -------------------------------------------------------------

    def open_writer(
        self, c: Client, o: OpenRec, start: int, now: float, restored: bool = False
    ) -> None:
        """Writer ``o.wid`` of ``c`` opens at ring position ``start`` (``restored``:
        re-created at the client's tail by ``Core.restore``, where no OPEN record
        lies: its file's header must not count the record at the tail as written)."""
        if o.wid in c.writers:
            raise ValueError(f"OPEN: writer id {o.wid!r} already open")
        # Encode before touching any state: a record that fails leaves nothing behind.
        header = frame(encode.file_header(o.walltime))
        purge_step = o.purge_step
        if purge_step is not None and start < c.skip_below.get((o.log_dir, o.suffix), 0):
            purge_step = None  # an earlier daemon wrote this pair already
        purge = (
            [
                # torch's purge pair: a version event and SessionLog.START at purge_step.
                frame(encode.file_version(o.walltime, purge_step)),
                frame(encode.session_start(o.walltime, purge_step)),
            ]
            if purge_step is not None
            else []
        )
        key = (o.log_dir, o.suffix)
        run = self.by_key.get(key)
        if purge_step is not None:
            if run is not None and run.purge_step == purge_step:
                # Another rank resuming at the same step: the first one's pair
                # stands (a second START would make TensorBoard's Python loader
                # drop the points the first resumed rank already wrote).
                purge = []
            else:
                run = self._resume(run, key, c, start, now, o, header)
                run.purge_step = purge_step
        elif run is not None and run.state is R.PURGE_WAIT and c.start < run.resumer_start:
            # A writer of the earlier life (its process started before the resumed
            # one), found only now: its records go to the earlier life's file.
            old = run.predecessor
            if old is None or old.state not in LIVE_RUN_STATES:
                old = self._new(key, now, o, register=False)
                old.advance("retire")
                self.detached.append(old)
                self.outbox.append(OpenFile(old.run_id, o.log_dir, o.suffix))
                self.add(old, c, start, now, header)
                run.predecessor = old
            run = old
        if (
            run is not None
            and run.idle_since is not None
            and run.closed_by == c.cid
            and self._still_idle(run, now)
        ):
            # The same process re-opens what it closed: a new file, as torch.
            self.end(run, now)
            run = None
        if run is None:
            run = self._new(key, now, o)
            self.outbox.append(OpenFile(run.run_id, o.log_dir, o.suffix))
            if restored:
                # Not a record of the client: the part commits only what lies
                # before the tail, and holds nothing of the client back.
                self._add_part(run, now, header, (c.cid, start - 1, start - 1, 1))
            else:
                self.add(run, c, start, now, header)
        else:
            run.advance("joined")
            run.idle_since = run.closed_by = None
            if o.max_queue > 0:
                run.max_queue = min(run.max_queue, o.max_queue) if run.max_queue else o.max_queue
            run.latency = min(run.latency, max(0.0, o.flush_secs))
        for data in purge:
            self.add(run, c, start, now, data)
        run.writers.add((c.cid, o.wid))
        c.writers[o.wid] = run

    def close_writer(self, c: Client, wid: int, now: float) -> None:
        run = c.writers.pop(wid, None)
        if run is None:
            raise ValueError(f"CLOSE: unknown writer {wid!r}")
        run.writers.discard((c.cid, wid))
        if run.writers:
            return
        if run.state is R.RETIRED:  # replaced by a resume: nobody joins it
            self.end(run, now)
            return
        # Written now (unless its file waits for a purge), closed after the linger.
        self.outbox.extend(self.write(run, now))
        if run.state is R.OPEN:
            run.advance("last_closed")
        run.idle_since = now
        run.closed_by = c.cid

    def _new(self, key: tuple[str, str], now: float, o: OpenRec, register: bool = True) -> Run:
        self._ids += 1
        run = Run(self._ids, key[0], key[1], now, max_queue=max(0, o.max_queue))
        run.latency = min(self.max_latency, max(0.0, o.flush_secs))
        if register:
            self.by_key[key] = run
        return run

    # -- lives: resume, start, end -----------------------------------------------

    def _resume(
        self,
        old: Run | None,
        key: tuple[str, str],
        c: Client,
        start: int,
        now: float,
        o: OpenRec,
        header: bytes,
    ) -> Run:
        """A trainer resumes with purge_step: a new life in a new file, opened
        once the earlier life's writers are gone (their rings drained) and its
        files are purged of the steps the new life logs again."""
        if old is not None:
            if old.state is R.PURGE_WAIT:
                self._start(old, now)  # a resume of a resume: the first purge first
            if old.writers:
                del self.by_key[key]
                old.advance("retire")
                old.idle_since = old.closed_by = None
                self.detached.append(old)
            else:
                self.end(old, now)
        run = self._new(key, now, o)
        run.state = R.PURGE_WAIT
        run.predecessor = old
        run.purge_deadline = now + PURGE_WAIT
        run.resumer_start = c.start
        self.outbox.append(ScanRings())
        self.add(run, c, start, now, header)
        return run

    def _start(self, run: Run, now: float) -> None:
        """A resumed life begins: purge the earlier life's files, open its own."""
        old = run.predecessor
        if old is not None and old.state is R.RETIRED:
            # Its writers outlived the wait (a live process): they go on in the new life.
            for cid, wid in old.writers:
                oc = self.clients.get(cid)
                if oc is not None:
                    oc.writers[wid] = run
                run.writers.add((cid, wid))
            old.writers.clear()
            self.end(old, now)
            if run.writers:  # no longer idle: its resumer's close is not its last
                run.idle_since = run.closed_by = None
        assert run.purge_step is not None
        self.outbox.append(PurgeFiles(run.log_dir, run.purge_step))
        self.outbox.append(OpenFile(run.run_id, run.log_dir, run.suffix, run.purge_step))
        run.advance("start")
        run.predecessor = None
        if not run.writers:
            run.advance("last_closed")

    def _still_idle(self, run: Run, now: float) -> bool:
        """Whether ``run``, idle, is still without writers once a wait for its
        purge is over: starting takes on the earlier life's live writers, and
        ending it then would leave them writing to a closed run."""
        if run.state is R.PURGE_WAIT:
            self._start(run, now)
        return run.idle_since is not None

    def end(self, run: Run, now: float) -> None:
        """Write what it holds; its file closes (``settle``) once every slot is
        encoded and written, never before a write is known to have worked.  A
        run whose file waits for a purge is started first."""
        if run.state is R.PURGE_WAIT:
            self._start(run, now)
        run.advance("end")
        run.idle_since = None
        if self.by_key.get((run.log_dir, run.suffix)) is run:
            del self.by_key[(run.log_dir, run.suffix)]
        if run not in self.detached:
            self.detached.append(run)
        self.outbox.extend(self.write(run, now))

    def end_all(self, now: float) -> None:
        for run in self.all():
            run.retry_at = 0.0
            if run.state in LIVE_RUN_STATES:
                self.end(run, now)

    def advance_time(self, now: float) -> None:
        """Lingers that are over, resumed lives whose wait is over."""
        for run in list(self.by_key.values()):
            if (
                run.idle_since is not None
                and now - run.idle_since >= self.linger
                and self._still_idle(run, now)
            ):
                self.end(run, now)
            elif run.state is R.PURGE_WAIT and (self._may_start(run) or now >= run.purge_deadline):
                self._start(run, now)

    def startable(self) -> bool:
        """Whether a resumed life may start at the next plan."""
        return any(r.state is R.PURGE_WAIT and self._may_start(r) for r in self.by_key.values())

    @staticmethod
    def _may_start(run: Run) -> bool:
        """A resumed life knows its past (rings scanned) and the earlier life's
        file is closed (its last write done): the purge may rewrite it."""
        old = run.predecessor
        return run.scanned and (old is None or old.state is R.CLOSED)

    def scanned(self) -> None:
        """Every ring was adopted and drained: resumed lives know their past."""
        for run in self.by_key.values():
            if run.state is R.PURGE_WAIT:
                run.scanned = True

    # -- records and writes ----------------------------------------------------

    def add(self, run: Run, c: Client, start: int, now: float, data: bytes | None) -> None:
        """A framed record (or, None, a slot for an encoding) of ``c`` at ``start``."""
        self._add_part(run, now, data, (c.cid, start, start, 1))
        if run.run_id not in c.unwritten:
            c.unwritten[run.run_id] = start

    def plan(self, now: float, forced: set[int]) -> list[Action]:
        """The writes that are due (``forced``: runs a flush or a full ring needs now)."""
        self.replan = False
        actions: list[Action] = []
        for run in self.all():
            if not run.pending or run.retry_at > now:
                continue
            if run.state is R.CLOSING:
                actions.extend(self.write(run, now))
                continue
            urgent = run.run_id in forced or now - run.oldest >= run.latency
            if run.encoding and not urgent:
                continue  # its encodings come back first (they wake the loop)
            if (
                urgent
                or (run.max_queue and self._queued(run) >= run.max_queue)
                or sum(map(len, filter(None, run.pending))) >= WRITE_CHUNK
            ):
                actions.extend(self.write(run, now))
        return actions

    @staticmethod
    def _add_part(
        run: Run, now: float, data: bytes | None, meta: tuple[str, int, int, int]
    ) -> None:
        if not run.pending:
            run.oldest = now
        run.pending.append(data)
        run.meta.append(meta)

    @staticmethod
    def _queued(run: Run) -> int:
        """Records waiting (a part can hold a batch of them)."""
        if len(run.pending) >= run.max_queue:
            return len(run.pending)  # enough: every part holds one at least
        return sum(m[3] for m in run.meta)

    def write(self, run: Run, now: float) -> list[Action]:
        """The filled front of the run's list, as one ``Append``."""
        if run.inflight and run.pending:
            self.replan = True  # one write at a time: the next one once this is done
            return []
        if not run.pending or run.state is R.PURGE_WAIT:  # no file yet: waits for the purge
            return []
        k = run.pending.index(None) if run.encoding else len(run.pending)
        if k == 0:
            return []
        parts: list[bytes] = run.pending[:k]  # type: ignore[assignment]
        meta = run.meta[:k]
        del run.pending[:k], run.meta[:k]
        run.base += k
        if not run.pending:
            run.oldest = math.inf
        size = sum(map(len, parts))
        run.records_written += sum(m[3] for m in meta)
        run.bytes_written += size
        run.last_write = now
        # Each client's first record still waiting (or none): what its tail may
        # reach once this write is done (``write_failed`` puts the old one back).
        rid = run.run_id
        rest = {m[0]: m[1] for m in reversed(run.meta)}
        last = {m[0]: m[2] for m in meta}
        for cid in last:
            c = self.clients.get(cid)
            if c is None:
                continue
            if cid in rest:
                c.unwritten[rid] = rest[cid]
            else:
                c.unwritten.pop(rid, None)
        commits = tuple((cid, run.log_dir, run.suffix, s + 1) for cid, s in last.items())
        seq = 0
        if run.remote:
            run.appends += 1
            seq = run.appends
        run.inflight = True
        return [Append(rid, run.log_dir, run.suffix, parts, meta, commits, seq)]

    def write_failed(self, act: Append, error: str, now: float) -> None:
        run = self.find(act.run_id)
        if run is None:
            return
        run.inflight = False
        k = len(act.parts)
        run.pending[:0] = act.parts
        run.meta[:0] = act.meta
        run.base -= k
        run.oldest = min(run.oldest, now)
        run.records_written -= act.records
        run.bytes_written -= sum(map(len, act.parts))
        run.retry_at = now + WRITE_RETRY
        rid = run.run_id
        first = {m[0]: m[1] for m in reversed(act.meta)}
        for cid, pos in first.items():
            c = self.clients.get(cid)
            if c is not None:
                # Never behind the published tail: a restored writer's header
                # part sits just before it and holds nothing back.
                pos = max(pos, c.tail)
                c.unwritten[rid] = min(c.unwritten.get(rid, pos), pos)
        if run.error != error:
            run.error = error
            told = {cid for cid, _ in run.writers} | set(first)
            for cid in sorted(told):
                self.outbox.append(
                    Notice(
                        cid,
                        "warning",
                        f"cannot write to {run.log_dir}: {error}; its events wait in shared "
                        f"memory and are written when that works again",
                    )
                )

    def write_succeeded(self, act: Append) -> None:
        run = self.find(act.run_id)
        if run is not None:
            run.error = None
            run.inflight = False

    def settle(self) -> list[Action]:
        """Close the files of ended runs whose every slot is written."""
        actions: list[Action] = []
        for run in list(self.detached):
            if run.state is R.CLOSING and not run.pending:
                run.advance("closed")
                self.detached.remove(run)
                actions.append(CloseFile(run.run_id))
        return actions

    def deadlines(self) -> list[float]:
        """When each run next has work without new input.  A run whose first
        slot is still encoding has none: its result wakes the loop."""
        due = [
            max(r.oldest + r.latency, r.retry_at)
            for r in self.all()
            # A run waiting for its purge has no file to write to: its wait ends
            # at ``purge_deadline`` (or with an input), never at its latency.
            if r.pending and r.pending[0] is not None and r.state is not R.PURGE_WAIT
        ]
        due += [
            r.opened_at if self._may_start(r) else r.purge_deadline
            for r in self.by_key.values()
            if r.state is R.PURGE_WAIT
        ]
        due += [
            r.idle_since + self.linger for r in self.by_key.values() if r.idle_since is not None
        ]
        return due

    def status(self) -> list[dict[str, Any]]:
        return [
            {
                "run_id": r.run_id,
                "log_dir": r.log_dir,
                "suffix": r.suffix,
                "state": r.state.value,
                "writers": len(r.writers),
                "records": r.records_written,
                "bytes": r.bytes_written,
                "pending": len(r.pending),
                "encoding": r.encoding,
                "last_write": r.last_write,
                "opened_at": r.opened_at,
                "idle_since": r.idle_since,
                "error": r.error,
            }
            for r in self.all()
        ]
