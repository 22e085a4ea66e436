"""How an ``s3://`` run is laid out in the bucket: names, bodies and decisions (no I/O).

Theory of operation
===================

TensorBoard reads ``s3://`` only with its Python loader, whose
``DirectoryWatcher`` lists the run, reads the current object from its byte
offset, and moves to ``min(name > current)`` once a later name exists --
never back (tensorboard#1011). Measured against SeaweedFS (TensorBoard 2.21):
an object created below the reader's position is never shown, and the
current object re-uploaded longer *is* picked up from the old offset, but
only until a later name appears. S3 has no append.

So every run is a single global sequence of immutable **segments**::

    <prefix>/events.out.tfevents.<seq:012d>.summaryd

Each is created once, by a conditional create (``PUT`` with
``If-None-Match: *``), under the next free sequence number; on 412 another
node took that number: list the names after it, and go on from the
highest. Names are identical across nodes, so two nodes racing for a
number collide instead of both succeeding. A node only tries ``n + 1`` once
it has seen ``n`` exist, hence the names present are always ``1..max`` with
no gap, and any name a node can still create is above every existing name,
in particular above wherever a reader stands.

The newest object may grow, bounded (:class:`TailPolicy`): an upload
re-PUTs it with the new records appended, as a compare-and-swap
(``If-Match`` on its ETag), until it is sealed; only then may anyone create
the next number (the proof is on :class:`TailClaimer`). Rejected: a node
growing *its own* newest object while "it is still the run's newest name".
That check and the overwrite cannot be made atomic: another node creates
``n + 1`` in between, a reader does its last read of ``n`` and moves on,
and the overwrite lands unread (shown by experiment against SeaweedFS: the
live reader kept steps 40-41 of 40-44, a fresh one saw all). The
compare-and-swap makes the tail shared instead: whoever appends next, the
sealing write is the last.

Every segment starts with the ``file_version: "brain.Event:2"`` event, as
torch's ``EventFileWriter`` starts every file: TensorBoard's loaders treat
each object as a file of its own.

A node's spool seals a chunk (:class:`SealPolicy`) when it reaches
``max_bytes``, when its oldest record is ``max_age`` old (events must be
readable within 10 s), or on a flush barrier; each chunk is one upload. A
24-hour run with uploads every 5 s from each of N nodes leaves about
``17,280 * N / max_writes`` objects (2,160 per node at the default 8), plus
one per ``max_bytes`` of data.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum

from .tfrecord import frame

# TensorBoard's IsTensorFlowEventsFile wants "tfevents" in the base name;
# the width keeps name order equal to number order for 10**12 segments.
SEQ_WIDTH = 12
NAME_PREFIX = "events.out.tfevents."
NAME_SUFFIX = ".summaryd"
_NAME_RE = re.compile(r"events\.out\.tfevents\.(\d{12})\.summaryd\Z")
FIRST_SEQ = 1
MAX_SEQ = 10**SEQ_WIDTH - 1

FILE_VERSION = "brain.Event:2"


class LayoutError(ValueError):
    """A prefix, name or sequence number outside the layout."""


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def file_version_event(wall_time: float) -> bytes:
    """The serialized ``Event(wall_time, file_version="brain.Event:2")``.

    Written by hand (field 1 double, field 3 string) so this module needs no
    protobuf; ``tests/unit/test_s3layout.py`` checks it against TensorBoard's
    own ``Event``.
    """
    v = FILE_VERSION.encode()
    return b"\x09" + struct.pack("<d", wall_time) + b"\x1a" + _varint(len(v)) + v


def segment_header(wall_time: float) -> bytes:
    """The first record of every segment: the file-version event, framed."""
    return frame(file_version_event(wall_time))


def object_key(prefix: str, seq: int) -> str:
    """The key of segment ``seq`` of the run at ``prefix`` ("" = bucket root)."""
    if not FIRST_SEQ <= seq <= MAX_SEQ:
        raise LayoutError(f"sequence number {seq} outside {FIRST_SEQ}..{MAX_SEQ}")
    name = f"{NAME_PREFIX}{seq:0{SEQ_WIDTH}d}{NAME_SUFFIX}"
    return f"{run_prefix(prefix)}{name}"


def run_prefix(prefix: str) -> str:
    """``prefix`` as a key prefix: no leading slash, one trailing slash ("" stays "")."""
    p = prefix.strip("/")
    if "//" in p:
        raise LayoutError(f"run prefix {prefix!r}: empty path component")
    return f"{p}/" if p else ""


def parse_seq(key: str, prefix: str) -> int | None:
    """The sequence number of ``key`` if it is one of our segments directly
    under ``prefix``, else None (other files in the run, sub-runs)."""
    rp = run_prefix(prefix)
    if not key.startswith(rp):
        return None
    m = _NAME_RE.match(key, len(rp))
    return int(m.group(1)) if m else None


def highest_seq(keys: Iterable[str], prefix: str) -> int:
    """The highest sequence number among ``keys`` (0 when there is none)."""
    return max((s for k in keys if (s := parse_seq(k, prefix)) is not None), default=0)


# -- sealing ---------------------------------------------------------------


@dataclass(frozen=True)
class SealPolicy:
    """When the open segment becomes an object.

    ``max_age`` bounds the time from an event reaching the spool to its
    upload starting; the default 5 s leaves half of the 10 s promise for
    the upload. ``max_bytes`` bounds one PUT (S3 takes 5 GB per PUT, but a
    retry re-sends it all).
    """

    max_age: float = 5.0
    max_bytes: int = 8 << 20

    def __post_init__(self) -> None:
        if self.max_age <= 0 or self.max_bytes <= 0:
            raise LayoutError(f"seal policy needs positive limits: {self}")

    def should_seal(self, open_bytes: int, oldest: float | None, now: float) -> bool:
        """Whether an open segment holding ``open_bytes`` of records, the
        oldest appended at ``oldest`` (None: empty), must be sealed at ``now``."""
        if oldest is None or open_bytes == 0:
            return False
        return open_bytes >= self.max_bytes or now - oldest >= self.max_age

    def deadline(self, oldest: float | None) -> float | None:
        """When :meth:`should_seal` turns true by age (for the loop's sleep)."""
        return None if oldest is None else oldest + self.max_age


def split_records(records: bytes, max_bytes: int) -> list[bytes]:
    """Cut a run of whole TFRecords into pieces of at most ``max_bytes``
    (a record larger than that is a piece of its own): a record is never
    split across two objects, since each object must be a valid stream."""
    pieces: list[bytes] = []
    start = o = 0
    n = len(records)
    while o < n:
        if o + 12 > n:
            raise LayoutError("records end in a torn header")
        (length,) = struct.unpack_from("<Q", records, o)
        end = o + 12 + length + 4
        if end > n:
            raise LayoutError("records end in a torn record")
        if end - start > max_bytes and o > start:
            pieces.append(records[start:o])
            start = o
        o = end
    if start < n:
        pieces.append(records[start:])
    return pieces


# -- the tail: claiming numbers, growing the newest object ----------------

# User metadata on each object: how many PUTs made it, and whether the last
# one sealed it. The seal is explicit, not recomputed from the counts, so
# nodes with different policies on one run still agree on it.
META_WRITES = "summaryd-writes"
META_SEALED = "summaryd-sealed"


@dataclass(frozen=True)
class TailPolicy:
    """When the run's newest object stops growing.

    Each upload either appends to the newest object (re-PUT with
    ``If-Match`` on its ETag: compare-and-swap) or, once that object is
    *sealed*, creates the next number (``If-None-Match: *``). An object is
    sealed after ``max_writes`` PUTs or once it holds ``max_bytes`` (a soft
    bound: the sealing append may pass it). ``max_writes=1``: every upload
    is a new object and nothing is ever re-sent.

    Trade-off, measured (see ``benchmarks/bench_s3.py``): bytes sent per
    object are at most ``max_writes`` times its size (about
    ``(max_writes + 1) / 2`` times for even flushes), objects are
    ``max_writes`` times fewer, and TensorBoard's S3 reader spends about 7
    requests (0.6 s against SeaweedFS) per object it has not read yet.
    """

    max_writes: int = 8
    max_bytes: int = 4 << 20

    def __post_init__(self) -> None:
        if self.max_writes < 1 or self.max_bytes < 1:
            raise LayoutError(f"tail policy needs positive limits: {self}")

    def seals(self, writes: int, size: int) -> bool:
        """Whether the write that makes an object of ``writes`` PUTs and
        ``size`` bytes seals it."""
        return writes >= self.max_writes or size >= self.max_bytes


class Step(Enum):
    """What the uploader must do next for a run."""

    LIST = "list"  # list keys after `start_after` (None: from the start) -> on_listed
    GET = "get"  # read object `seq` whole (body, ETag, writes) -> on_got
    CREATE = "create"  # PUT If-None-Match: * at `seq` -> on_written / on_conflict
    APPEND = "append"  # PUT tail body + chunk at `seq`, If-Match `etag` -> same


@dataclass(frozen=True)
class Action:
    step: Step
    seq: int = 0
    start_after: str | None = None
    etag: str = ""  # APPEND: the version we extend
    writes: int = 0  # CREATE/APPEND: the writes count to store with it
    seal: bool = False  # CREATE/APPEND: this write seals the object


@dataclass(frozen=True)
class TailState:
    """The newest object as this node last saw it."""

    seq: int
    etag: str
    size: int
    writes: int
    sealed: bool


class TailClaimer:
    """Decides, for one node and one run, where the next chunk goes. Pure:
    the caller performs each :class:`Action` and reports the outcome.

    Why no event is ever hidden from TensorBoard's reader: (1) a node tries
    number ``n + 1`` only after seeing ``n`` exist, so names have no gaps and
    a created name is above every existing one; (2) a node creates ``n + 1``
    only after seeing ``n`` sealed (its own sealing write, or a GET showing
    :data:`META_SEALED`); (3) sealing is final: whoever saw ``n`` sealed
    never writes it, and every other write to it carries an older ETag and
    fails (each write appends, so each version's ETag differs). So once
    ``n + 1`` exists, ``n`` never changes again, and the reader's last read
    of ``n`` before moving on (DirectoryWatcher re-reads the current file
    once more after it lists a later one) sees all of it. Appends keep every
    earlier byte in place, so the reader's byte offset stays valid.

    A conflict (412) on a create is followed by one listing after the taken
    name, so a node that fell behind catches up in one request, then a GET
    of the newest object.
    """

    def __init__(self, prefix: str, policy: TailPolicy | None = None) -> None:
        self.prefix = prefix
        self.policy = policy or TailPolicy()
        self.known = 0  # highest number seen to exist
        self.tail: TailState | None = None
        self._must_list = True
        self.conflicts = 0

    def next_action(self, size: int) -> Action:
        """Where a chunk of ``size`` bytes goes next (``size`` counts the
        header too when the chunk would start an object)."""
        if self._must_list:
            after = object_key(self.prefix, self.known) if self.known else None
            return Action(Step.LIST, start_after=after)
        if self.known == 0:
            return self._create(FIRST_SEQ, size)
        t = self.tail
        if t is None or t.seq != self.known:
            return Action(Step.GET, seq=self.known)
        if t.sealed:
            return self._create(t.seq + 1, size)
        seal = self.policy.seals(t.writes + 1, t.size + size)
        return Action(Step.APPEND, seq=t.seq, etag=t.etag, writes=t.writes + 1, seal=seal)

    def _create(self, seq: int, size: int) -> Action:
        return Action(Step.CREATE, seq=seq, writes=1, seal=self.policy.seals(1, size))

    def on_listed(self, keys: Iterable[str]) -> None:
        """The keys a LIST returned (all pages)."""
        self.known = max(self.known, highest_seq(keys, self.prefix))
        self._must_list = False

    def on_got(self, seq: int, etag: str, size: int, writes: int, sealed: bool) -> None:
        """Object ``seq`` as a GET returned it (``size`` bytes)."""
        self.known = max(self.known, seq)
        self.tail = TailState(seq, etag, size, writes, sealed)

    def on_missing(self, seq: int) -> None:
        """A GET found no object at ``seq`` (deleted by someone): look again."""
        self.tail = None
        self._must_list = True
        self.known = min(self.known, seq - 1)

    def on_written(self, action: Action, etag: str, size: int) -> None:
        """``action`` (CREATE or APPEND) succeeded; the object now has ``size`` bytes."""
        self.known = max(self.known, action.seq)
        self.tail = TailState(action.seq, etag, size, action.writes, action.seal)

    def on_conflict(self, action: Action) -> None:
        """``action`` got 412: the number is taken, or the tail changed under us."""
        self.conflicts += 1
        self.tail = None
        self.known = max(self.known, action.seq)
        if action.step is Step.CREATE:
            self._must_list = True

    def forget(self) -> None:
        """Look again before the next write (after an unclear failure)."""
        self.tail = None
        self._must_list = True


# -- recovery --------------------------------------------------------------


def landed(chunk: bytes, found: bytes | None) -> bool:
    """Whether a write whose outcome we never learnt (a kill, a timeout)
    got in: ``found`` is what the object holds at the offset where the
    chunk would be (None: no object, or too short). Objects only grow by
    appends, so if the chunk got in, it is still exactly there."""
    return found is not None and found == chunk
