"""The model the core state machine (``test_core_machine.py``) checks the core against.

``CoreModel`` holds what the loop would hold (clients, their writers and
records, the files written, the purges, the encodings in flight) and plays the
loop: it feeds records, carries out the core's actions, checks each against
what was actually written, answers ``ScanRings`` and ``CheckAlive`` and
delivers encodings. ``test_core_machine.CoreMachine`` adds the rules that
drive it. The array encoder is a stand-in registered for ``wire.TENSOR`` (as
in ``test_core_arrays.py``): its event carries the sum of the array, the
model's sequence number, so each written event names the record it came from.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import msgpack
import numpy as np
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine

from summaryd import wire
from summaryd.daemon import encode
from summaryd.daemon.actions import (
    Ack,
    Action,
    Append,
    CheckAlive,
    CloseFile,
    Encode,
    Notice,
    OpenFile,
    PurgeFiles,
    RemoveRing,
    ScanRings,
    SetTail,
)
from summaryd.daemon.core import NOTICE_LIMIT, PURGE_WAIT, WRITE_RETRY, Core
from summaryd.daemon.lifecycle import RunState
from summaryd.proto import summary_pb2
from summaryd.ring import padded_size

from .core_helpers import LOG, LOG2, T0, events

KEYS = [(LOG, ""), (LOG, ".x"), (LOG2, "")]
# Tags two clients may share: the second logger's first record makes the core
# ask whether the first still lives.
TAGS = ["loss", "acc"]
ERRORS = ["No space left on device", "Read-only file system"]

Key = tuple[str, str]


def _value_encoder(tag: str, params: dict[str, Any], arrays: list[np.ndarray]) -> list[Any]:
    """Stand-in for the TENSOR encoder: one scalar event, the array's sum."""
    if params.get("fail"):
        raise ValueError("refused by the encoder")
    total = float(sum(a.sum() for a in arrays))
    return [summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=tag, simple_value=total)])]


@dataclass
class Rec:
    """One record in a client's ring, as the model put it."""

    start: int
    end: int
    payload: bytes
    kind: int
    key: Key | None  # None for CLOSE (it is never written)
    seq: int | None = None  # data records: their value and step
    tag: str = ""
    bad: bool = False  # an array record the encoder refuses
    purge: int | None = None  # OPEN with purge_step; or a data record of such a writer


@dataclass
class ClientModel:
    cid: str
    start: int  # process start time: later clients started later
    pos: int = 0
    ring: list[Rec] = field(default_factory=list)  # every record put
    fed: int = 0  # index in ``ring`` of the first record not fed to the core
    drained: int = 0
    writers: dict[int, tuple[Key, int | None]] = field(default_factory=dict)  # as put so far
    next_wid: int = 1
    flushes: dict[int, int] = field(default_factory=dict)  # tok -> pos
    acked: set[int] = field(default_factory=set)
    tail: int = 0
    dead: bool = False  # the process exited; the loop may not know yet
    gone: bool = False  # the core was told
    removed: bool = False
    notices: int = 0  # "record skipped" notices the current core sent

    @property
    def queue(self) -> list[Rec]:
        return self.ring[self.fed :]

    def put(self, items: list[Any], **fields: Any) -> Rec:
        payload = msgpack.packb(items, use_bin_type=True)
        start = self.pos
        self.pos += padded_size(len(payload))
        rec = Rec(start, self.pos, payload, items[0], **fields)
        self.ring.append(rec)
        return rec

    def at(self, start: int) -> Rec:
        return next(r for r in self.ring if r.start == start)


@dataclass
class FileModel:
    key: Key
    opened: int  # action counter when opened
    appends: int = 0
    closed: bool = False
    retry: bool = False  # an Append to it failed: a retry may come after its close
    last_start: dict[str, int] = field(default_factory=dict)


@dataclass
class Purge:
    """A resume the current core was fed and has not purged for yet."""

    key: Key
    fed_at: float
    earlier: tuple[int, int] | None  # the file of the life it replaces, if any
    early_ok: bool = False  # another rule of the core may start it at once


class CoreModel(RuleBasedStateMachine):
    """The loop's side of the core state machine: state, carrying out actions, checks."""

    def __init__(self) -> None:
        super().__init__()
        self._saved_encoder = encode.MEDIA_ENCODERS.get(wire.TENSOR)
        encode.MEDIA_ENCODERS[wire.TENSOR] = _value_encoder
        self.core = Core()
        self.gen = 0  # restarts so far: files are (gen, run_id)
        self.now = T0
        self.clients: dict[str, ClientModel] = {}
        self.files: dict[tuple[int, int], FileModel] = {}
        self.counter = 0  # actions seen
        self.seq = 0
        self.tok = 0
        self.purge_steps = 0
        self.failed = False
        self.pressed: set[str] = set()
        # (cid, start) of every part written; data records written; purge pairs written.
        self.passed: set[tuple[str, int]] = set()
        self.written: set[tuple[str, int]] = set()  # (cid, seq)
        self.pairs: set[tuple[str, int]] = set()
        # The current core's work in flight, and what its next plan must hold.
        self.unencoded: set[tuple[str, int]] = set()  # array records fed, no result yet
        self.jobs: dict[int, tuple[str, int]] = {}  # Encode job -> (cid, start)
        self.purges: dict[int, Purge] = {}  # purge step -> its resume
        self.purge_seq: dict[int, int] = {}  # purge step -> action counter of its PurgeFiles
        self.scans_due = 0
        self.skipped_due: dict[str, int] = {}  # cid -> "record skipped" notices due
        # (cid, log_dir): "cannot write" due in the next plan; from this step's failures.
        self.cannot_due: set[tuple[str, str]] = set()
        self.cannot_new: set[tuple[str, str]] = set()
        self.cannot_ok: dict[tuple[str, str], int] = {}  # ... allowed
        self.write_error: dict[tuple[int, int], str] = {}  # file -> its run's current error
        self.retry_until: dict[Key, float] = {}
        self.expect_open: Key | None = None  # PurgeFiles must be followed by this OpenFile
        self.tags: dict[tuple[str, str], set[str]] = {}  # (log_dir, tag) -> cids logging it
        self.restored: dict[str, int] = {}  # cid -> its tail when the current core restored it
        self.answer: list[Action] = []  # CheckAlive, ScanRings to carry out after the checks

    # -- helpers

    def _live(self) -> list[ClientModel]:
        return [c for c in self.clients.values() if not c.dead and not c.gone]

    def _with_writers(self) -> list[ClientModel]:
        return [c for c in self._live() if c.writers]

    def _pick(self, data: st.DataObject, among: list[ClientModel]) -> ClientModel:
        return self.clients[data.draw(st.sampled_from([c.cid for c in among]))]

    def _undrained(self) -> list[ClientModel]:
        return [c for c in self.clients.values() if not c.gone and c.queue]

    def _feed(self, c: ClientModel, k: int) -> None:
        """Drain the next ``k`` records of ``c``'s ring into the core (an OPEN alone:
        the model looks at the run it meets)."""
        batch: list[Rec] = []
        for rec in c.queue[:k]:
            if rec.kind == wire.OPEN:
                self._send(c, batch)
                batch = []
                self._before_open(c, rec)
                self._send(c, [rec])
                continue
            if rec.kind == wire.TENSOR and (c.cid, rec.start) not in self.passed:
                self.unencoded.add((c.cid, rec.start))
            batch.append(rec)
        self._send(c, batch)

    def _send(self, c: ClientModel, batch: list[Rec]) -> None:
        if batch:
            self.core.records(c.cid, [(r.start, r.end, r.payload) for r in batch], self.now)
            c.fed += len(batch)
            c.drained = batch[-1].end

    def _before_open(self, c: ClientModel, rec: Rec) -> None:
        """What the model expects of an OPEN, from the run it finds (``core.runs``)."""
        assert rec.key is not None
        run = self.core.runs.get(rec.key)
        if rec.purge is None or (c.cid, rec.start) in self.pairs:
            # A plain open (or a resume an earlier daemon wrote the pair of).  It
            # may start a waiting resume at once: its closer re-opens it, or a
            # writer of the earlier life turns up and gets a file of its own.
            if run is not None and run.state is RunState.PURGE_WAIT:
                assert run.purge_step is not None
                if (run.idle_since is not None and run.closed_by == c.cid) or (
                    c.start < run.resumer_start
                ):
                    self.purges[run.purge_step].early_ok = True
            return
        earlier = None
        if run is not None:
            if run.state is RunState.PURGE_WAIT:  # a resume of a resume: the first starts now
                assert run.purge_step is not None
                self.purges[run.purge_step].early_ok = True
            earlier = (self.gen, run.run_id)
        self.purges[rec.purge] = Purge(rec.key, self.now, earlier, early_ok=run is None)
        self.scans_due += 1

    def _blocked(self) -> set[Key]:
        """Keys whose records may not be written now whatever is forced: a slot
        still encoding, a write waiting to be retried, a file waiting for its purge."""
        keys = {self.clients[cid].at(start).key for cid, start in self.unencoded}
        keys |= {k for k, t in self.retry_until.items() if t > self.now}
        keys |= {p.key for p in self.purges.values()}
        return {k for k in keys if k is not None}

    def _clear_before(self, c: ClientModel, pos: int, blocked: set[Key]) -> bool:
        """Whether all of ``c`` before ``pos`` is drained and none of it waits on a blocked key."""
        return pos <= c.drained and not any(
            r.end <= pos and r.key in blocked and (c.cid, r.start) not in self.passed
            for r in c.ring
        )

    def _unwritten(self, c: ClientModel, upto: float = math.inf) -> list[int]:
        return [
            r.seq
            for r in c.ring
            if r.seq is not None
            and not r.bad
            and r.end <= upto
            and (c.cid, r.seq) not in self.written
        ]

    def _check(self, acts: list[Action], failing: str | None = None) -> None:
        try:
            for a in acts:
                self.counter += 1
                if self.expect_open is not None:
                    assert isinstance(a, OpenFile) and (a.log_dir, a.suffix) == self.expect_open, (
                        f"PurgeFiles not followed by the new life's OpenFile: {a}"
                    )
                    self.expect_open = None
                if isinstance(a, Append) and failing is not None:
                    self._append(a, ok=False)
                    self.core.write_failed(a, failing, self.now)
                    self._failed_write(a, failing)
                elif isinstance(a, Append):
                    self._append(a, ok=True)
                else:
                    self._check_one(a)
        except BaseException:
            self.failed = True
            raise

    def _plan_checked(self, acts: list[Action]) -> None:
        """What every plan must hold: the scans, notices and encodings the inputs called for."""
        try:
            scans = sum(isinstance(a, ScanRings) for a in acts)
            assert scans == self.scans_due, f"{scans} ScanRings, expected {self.scans_due}"
            self.scans_due = 0
            for cid, n in self.skipped_due.items():
                got = sum(
                    isinstance(a, Notice) and a.cid == cid and "refused by the encoder" in a.msg
                    for a in acts
                )
                assert got == n, f"{cid}: {got} notices of refused encodings, expected {n}"
            self.skipped_due.clear()
            told = {(a.cid, a.msg) for a in acts if isinstance(a, Notice)}
            for cid, log_dir in self.cannot_due:
                assert any(
                    c == cid and m.startswith(f"cannot write to {log_dir}:") for c, m in told
                ), f"{cid} not told that {log_dir} cannot be written"
            self.cannot_due, self.cannot_new = self.cannot_new, set()
            assert self.unencoded <= set(self.jobs.values()), "a slot with no Encode"
        except BaseException:
            self.failed = True
            raise

    def _append(self, a: Append, ok: bool) -> None:
        f = self.files[(self.gen, a.run_id)]
        assert (a.log_dir, a.suffix) == f.key
        if f.closed:
            assert f.retry, "append to a closed file"
        assert len(a.parts) == len(a.meta)
        for i, (part, (cid, s0, s1, n)) in enumerate(zip(a.parts, a.meta, strict=True)):
            c = self.clients[cid]
            assert f.last_start.get(cid, -1) <= s0 <= s1, "out of ring order within the client"
            if ok:
                f.last_start[cid] = s1
            evs = events(part)
            assert len(evs) == n
            if n == 0:  # a slot whose encoding was refused
                assert part == b"" and s0 == s1 and c.at(s0).bad, "an empty part that encodes"
                if ok:
                    self.passed.add((cid, s0))
                continue
            if n == 1 and (evs[0].HasField("file_version") or evs[0].HasField("session_log")):
                self._open_part(f, c, s0, evs[0], first=i == 0, ok=ok)
                continue
            # Data records: one, or a batch of one writer's consecutive scalars.
            recs = [r for r in c.ring if s0 <= r.start <= s1]
            assert len(recs) == n and recs[0].start == s0 and recs[-1].start == s1
            for rec, ev in zip(recs, evs, strict=True):
                assert rec.key == f.key, "written to another run's file"
                assert rec.seq is not None and not rec.bad
                [v] = ev.summary.value
                assert (v.tag, int(v.simple_value), ev.step) == (rec.tag, rec.seq, rec.seq)
                assert (cid, rec.seq) not in self.written, "written twice"
                if rec.purge is not None:
                    assert f.opened > self.purge_seq.get(rec.purge, math.inf), (
                        "a resumed writer's record in a file opened before its purge"
                    )
                if ok:
                    self.written.add((cid, rec.seq))
                    self.passed.add((cid, rec.start))
        if f.appends == 0:
            assert events(a.parts[0])[0].HasField("source_metadata"), "no header first"
        if ok:
            f.appends += 1
            f.closed = f.retry = False
            self.write_error.pop((self.gen, a.run_id), None)

    def _open_part(
        self, f: FileModel, c: ClientModel, start: int, ev: Any, first: bool, ok: bool
    ) -> None:
        """A part an OPEN made: the file's header, or half of a purge pair.  A
        writer a restarted core re-created from its snapshot has its header
        just before the client's tail (it commits only what lies before it)."""
        if ev.HasField("source_metadata"):
            assert f.appends == 0 and first, "a header inside the file"
            assert ev.file_version == "brain.Event:2" and ev.step == 0
            if self.restored.get(c.cid) == start + 1:
                return
        rec = c.at(start)
        assert rec.kind == wire.OPEN and rec.key == f.key, "an OPEN's part in another run's file"
        if ev.HasField("session_log"):
            assert rec.purge is not None and ev.step == rec.purge
            if ok:
                self.pairs.add((c.cid, start))
        elif not ev.HasField("source_metadata"):  # a purge pair's first half
            assert ev.file_version == "brain.Event:2"
            assert rec.purge is not None and ev.step == rec.purge
        if ok:
            self.passed.add((c.cid, start))

    def _failed_write(self, a: Append, error: str) -> None:
        fid = (self.gen, a.run_id)
        self.files[fid].retry = True
        self.retry_until[(a.log_dir, a.suffix)] = self.now + WRITE_RETRY
        if self.write_error.get(fid) != error:
            self.write_error[fid] = error
            # The run's writers are told too; the model knows only who is in the write.
            for cid in self.clients:
                self.cannot_ok[(cid, a.log_dir)] = self.cannot_ok.get((cid, a.log_dir), 0) + 1
            self.cannot_new |= {(m[0], a.log_dir) for m in a.meta}

    def _check_one(self, a: Action) -> None:
        if isinstance(a, OpenFile):
            fid = (self.gen, a.run_id)
            assert fid not in self.files
            assert (a.log_dir, a.suffix) in KEYS
            self.files[fid] = FileModel((a.log_dir, a.suffix), self.counter)
        elif isinstance(a, CloseFile):
            f = self.files[(self.gen, a.run_id)]
            assert not f.closed
            f.closed = True
        elif isinstance(a, SetTail):
            c = self.clients[a.cid]
            assert not c.removed
            assert c.tail <= a.pos <= c.drained
            c.tail = a.pos
            missing = self._unwritten(c, a.pos)
            assert not missing, f"tail {a.pos} passes unwritten records {missing}"
        elif isinstance(a, Ack):
            c = self.clients[a.cid]
            assert a.tok in c.flushes and a.tok not in c.acked
            c.acked.add(a.tok)
            pos = c.flushes[a.tok]
            assert pos <= c.tail
            missing = self._unwritten(c, pos)
            assert not missing, f"flush {a.tok} acknowledged before {missing} were written"
        elif isinstance(a, RemoveRing):
            c = self.clients[a.cid]
            assert c.gone and not c.removed
            c.removed = True
            missing = self._unwritten(c)
            assert not missing, f"ring removed before {missing} were written"
        elif isinstance(a, Encode):
            key = (a.cid, self._start_of(a))
            assert key in self.unencoded and key not in self.jobs.values(), f"unexpected {a}"
            assert a.blob is None and a.data is not None
            self.jobs[a.job] = key
        elif isinstance(a, PurgeFiles):
            p = self.purges.pop(a.step, None)
            assert p is not None, f"no resume at step {a.step}"
            assert p.key[0] == a.log_dir
            assert (
                p.early_ok
                or p.earlier is None
                or self.files[p.earlier].closed
                or self.now >= p.fed_at + PURGE_WAIT
            ), "purged while the earlier life is open"
            self.purge_seq[a.step] = self.counter
            self.expect_open = p.key
        elif isinstance(a, (CheckAlive, ScanRings)):
            # (A CheckAlive may name a client gone since it was asked: the loop
            # finds its process dead, and the core knows already.)
            self.answer.append(a)
        elif isinstance(a, Notice):
            self._notice(a)
        else:
            raise AssertionError(f"unknown action {a!r}")

    def _start_of(self, a: Encode) -> int:
        """The ring position of the record an Encode is for (its step is the record's seq)."""
        c = self.clients[a.cid]
        return next(r.start for r in c.ring if r.seq == a.rec[3] and r.kind == wire.TENSOR)

    def _notice(self, a: Notice) -> None:
        if "refused by the encoder" in a.msg:
            return  # counted by _plan_checked
        if a.msg.startswith("cannot write to "):
            log_dir = a.msg[len("cannot write to ") :].split(":")[0]
            n = self.cannot_ok.get((a.cid, log_dir), 0)
            assert n > 0, f"told twice of one error: {a}"
            self.cannot_ok[(a.cid, log_dir)] = n - 1
            return
        if "is logged by two processes" in a.msg:
            logging = {
                cid
                for (log_dir, tag), cids in self.tags.items()
                if f"tag {tag!r} in {log_dir} " in a.msg
                for cid in cids
            }
            assert a.cid in logging and len(logging) >= 2, f"false alarm: {a}"
            return
        raise AssertionError(f"notice for a well-formed record: {a}")

    def _carry_out(self, acts: list[Action]) -> None:
        """Plan, notices and answers: the checks every plan gets, then ``CheckAlive``
        and ``ScanRings`` carried out."""
        self._plan_checked(acts)
        self._answer()

    def _answer(self) -> None:
        answer, self.answer = self.answer, []
        for a in answer:
            if isinstance(a, ScanRings):
                # Every ring drained; the processes found dead are gone.
                for c in self._undrained():
                    self._feed(c, len(c.queue))
                for c in self.clients.values():
                    if c.dead and not c.gone:
                        self._bury(c)
                self.core.scanned(self.now)
            elif isinstance(a, CheckAlive):
                c = self.clients[a.cid]
                if c.gone:
                    continue
                if c.dead:
                    self._bury(c)
                else:
                    self.core.alive(c.cid, self.now)

    def _bury(self, c: ClientModel) -> None:
        self._feed(c, len(c.queue))  # the loop drains a dead client's ring to the end first
        c.dead = c.gone = True
        self.core.gone(c.cid, self.now)

    def _deliver(self, job: int) -> None:
        cid, start = self.jobs.pop(job)
        self.unencoded.discard((cid, start))
        c = self.clients[cid]
        rec = c.at(start)
        result: bytes | Exception
        try:
            result = encode.array_record(msgpack.unpackb(rec.payload), _data(rec))
        except Exception as exc:  # as the loop's pool: returned, never raised
            result = exc
        assert isinstance(result, Exception) == rec.bad
        if rec.bad and c.notices < NOTICE_LIMIT:
            c.notices += 1
            self.skipped_due[cid] = self.skipped_due.get(cid, 0) + 1
        self.core.encoded(job, result, self.now)


def _data(rec: Rec) -> bytes:
    data = msgpack.unpackb(rec.payload)[-1]
    assert isinstance(data, bytes)
    return data
