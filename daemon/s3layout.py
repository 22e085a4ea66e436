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
node took that number: list the names after it, take the one after the
highest, and try again. Names are identical across nodes (the node is in
the object's metadata, :data:`META_SEGMENT`), so two nodes racing for a
number collide instead of both succeeding. A node only tries ``n + 1`` once
it has seen ``n`` exist (listed it, created it, or got 412 on it), hence the
names present are always ``1..max`` with no gap, and any name a node can
still create is above every existing name, in particular above wherever a
reader stands: no event is ever hidden behind a reader. An object is never
changed once created, so a reader's byte offset stays valid.

Rejected: re-uploading a node's newest segment longer while it is the
run's newest name. "Still the newest" and the overwrite cannot be made
atomic: another node may create ``n + 1`` in between, a reader then does
its last read of ``n`` and moves on, and the overwrite lands unread (shown
by experiment). A compare-and-swap tail shared by all nodes (``If-Match``,
which SeaweedFS honours) would be correct but re-sends the whole tail per
flush; it is the way to fewer objects if listing cost ever matters more
than bytes.

Every segment starts with the ``file_version: "brain.Event:2"`` event, as
torch's ``EventFileWriter`` starts every file: TensorBoard's loaders treat
each object as a file of its own.

A node accumulates one open segment and seals it when it reaches
:attr:`SealPolicy.max_bytes`, when its oldest record is
:attr:`SealPolicy.max_age` old (events must be readable within 10 s), or on
a flush barrier. A 24-hour run that logs without pause leaves at most
``86400 / max_age`` segments per node (8,640 at the 10 s default; 17,280 at
5 s), plus one per ``max_bytes`` of data.
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

# User metadata (x-amz-meta-...) naming the node and its spool segment, so a
# daemon that died mid-upload can tell whether its segment got in.
META_SEGMENT = "summaryd-segment"

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


def segment_tag(node: str, segment: int) -> str:
    """The metadata value naming a node's spool segment (ASCII, as S3 metadata must be)."""
    if not node.isascii() or "/" in node or not node:
        raise LayoutError(f"node id {node!r}: non-empty ASCII without '/'")
    return f"{node}/{segment}"


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


# -- claiming a sequence number --------------------------------------------


class Step(Enum):
    """What the uploader must do next for a run."""

    LIST = "list"  # list keys after `start_after` (None: from the start), then on_listed
    CREATE = "create"  # PUT If-None-Match: * at `seq`, then on_created / on_conflict


@dataclass(frozen=True)
class Action:
    step: Step
    seq: int = 0  # CREATE: the number to claim
    start_after: str | None = None  # LIST: exclusive start key


# Bodies from this size on are preceded by a listing (see next_action).
PROBE_BYTES = 64 << 10


class SequenceClaimer:
    """Finds the next free sequence number of one run for one node.

    Pure: the caller performs each :class:`Action` and reports the outcome.
    ``known`` is the highest number this node has seen exist; 0 with
    ``discovered`` False means "not looked yet". A 412 is followed by one
    listing after the taken name, so a node that fell behind many others
    catches up in one request instead of one 412 per number. With several
    nodes a node is usually behind (measured: without the probe, half the
    bytes sent by three alternating nodes were refused bodies), so once a
    node has seen another's segment, bodies of ``probe_bytes`` or more are
    preceded by a listing.
    """

    def __init__(self, prefix: str, known: int = 0, probe_bytes: int = PROBE_BYTES) -> None:
        self.prefix = prefix
        self.known = known
        self.discovered = known > 0
        self.probe_bytes = probe_bytes
        self._after_conflict: int | None = None
        self._fresh = False  # listed since our last create or conflict
        self._last_created = 0
        # Seen another node's segment since we started creating: from then on
        # large bodies are preceded by a listing (a lone node never pays it).
        self.shared = False
        self.conflicts = 0

    def next_action(self, size: int = 0) -> Action:
        """The next step to place a body of ``size`` bytes."""
        if not self.discovered:
            return Action(Step.LIST, start_after=None)
        if self._after_conflict is not None:
            return Action(Step.LIST, start_after=object_key(self.prefix, self._after_conflict))
        if size >= self.probe_bytes and self.shared and not self._fresh:
            # A 412 still carries the whole body (botocore sends it before the
            # answer): for a large body, one small listing first is cheaper.
            return Action(Step.LIST, start_after=object_key(self.prefix, self.known))
        return Action(Step.CREATE, seq=self.known + 1)

    def on_listed(self, keys: Iterable[str]) -> None:
        """The keys a LIST returned (all pages)."""
        top = highest_seq(keys, self.prefix)
        if self._last_created and top > self._last_created:
            self.shared = True
        self.known = max(self.known, top)
        self.discovered = True
        self._after_conflict = None
        self._fresh = True

    def on_created(self, seq: int) -> None:
        self.known = max(self.known, seq)
        self._last_created = seq
        self._fresh = False

    def on_conflict(self, seq: int) -> None:
        """``seq`` exists already (412): someone else has it."""
        self.conflicts += 1
        self.shared = True
        self.known = max(self.known, seq)
        self._after_conflict = seq
        self._fresh = False

    def forget(self) -> None:
        """Look again before the next create (e.g. after the store was
        unreachable): list after the highest number known, or from the start."""
        if self.known > 0:
            self._after_conflict = self.known
        else:
            self.discovered = False


# -- recovery --------------------------------------------------------------


def recovered(tag: str, attempts: Iterable[int], metadata: dict[int, str | None]) -> int | None:
    """After a crash: the sequence number where the segment ``tag`` landed,
    or None if no attempted name holds it (upload again).

    ``attempts`` are the numbers the dead uploader recorded before each PUT;
    ``metadata`` maps each to the :data:`META_SEGMENT` value found there
    (None: no such object). The segment is where its own tag is.
    """
    for seq in attempts:
        if metadata.get(seq) == tag:
            return seq
    return None
