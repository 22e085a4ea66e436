"""The local spool of one ``s3://`` run: what the daemon logged but has not uploaded.

Layout of a run's spool directory (on disk, never ``/dev/shm``: it must
outlive a reboot and may be large)::

    node                        this node's id, written once (host-random)
    next                        the next segment number, advanced before each seal
    open-<wall_us>.rec          the open segment: whole TFRecords, appended
    seg-<id:012d>-<wall_us>.rec a sealed segment, waiting for upload
    seg-<id:012d>-<wall_us>.att where it was tried: "<seq> <offset>" per line

``wall_us`` is when the segment was opened; it becomes the wall time of the
segment's ``file_version`` event, so the header is the same on every retry
and never later than the segment's first event (TensorBoard takes the first
event's wall time as the run's start).

Why each step is crash-safe (SIGKILL at any instruction):

* append: records are written whole and fsynced on request; a torn tail
  left by a kill is cut back to the last whole record when the spool is
  opened again (``tfrecord.whole_records_length``), as the daemon does for
  its local files.
* seal: ``rename(open-*, seg-*)`` is atomic: the records are in exactly one
  of the two files. ``next`` is written (temp file + rename) before, so a
  kill in between only skips a number: numbers are never reused, so a
  segment's tag (node/number) names one segment forever.
* upload: the object's number and the offset the records would have in it
  are appended to ``.att`` and fsynced *before* the PUT; the next daemon
  reads those bytes back from the store (``s3layout.landed``): objects only
  grow by appends, so records that got in are still exactly there. Done =
  unlink ``.rec`` then ``.att``; a stray ``.att`` is removed on open.

Bounded: :attr:`Spool.max_bytes` counts open and sealed bytes; an append
that would pass it is dropped whole and counted in ``overflowed_records``
(the daemon turns that into a counted warning for the trainer).  The daemon's
loop appends while its uploader thread seals and forgets segments: the count
changes with the files under one lock, so the bound is checked against the
bytes the spool holds at that moment (never a segment already forgotten, nor
one not yet counted).
"""

from __future__ import annotations

import os
import re
import secrets
import socket
import struct
import threading
from dataclasses import dataclass
from pathlib import Path

from summaryd.errors import SummarydError

from .s3layout import segment_header
from .tfrecord import whole_records_length

DEFAULT_MAX_BYTES = 1 << 30
_OPEN_RE = re.compile(r"open-(\d+)\.rec\Z")
_SEG_RE = re.compile(r"seg-(\d{12})-(\d+)\.(rec|att)\Z")


class SpoolError(SummarydError):  # type: ignore[misc,unused-ignore]
    """The spool directory is unusable (not a directory, unreadable, foreign)."""


@dataclass(frozen=True)
class Segment:
    """A sealed segment waiting for upload."""

    id: int
    wall_us: int
    path: Path
    size: int  # records only, without the header
    # (sequence number, offset of the records in that object) already tried:
    # a crash or an unclear failure; check them before trying anew.
    attempts: tuple[tuple[int, int], ...]

    @property
    def attempts_path(self) -> Path:
        return self.path.with_suffix(".att")


@dataclass(frozen=True)
class SpoolStatistics:
    open_bytes: int
    sealed_segments: int
    sealed_bytes: int
    overflowed_records: int
    overflowed_bytes: int


def _count_records(data: bytes) -> int:
    n = o = 0
    while o + 12 <= len(data):
        (length,) = struct.unpack_from("<Q", data, o)
        o += 12 + length + 4
        n += 1
    return n


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class Spool:
    """One run's spool directory; one daemon at a time uses it (the daemon's
    own single-instance lock covers that)."""

    def __init__(self, directory: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.dir = Path(directory)
        self.max_bytes = max_bytes
        self.overflowed_records = 0
        self.overflowed_bytes = 0
        try:
            self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as e:
            raise SpoolError(f"spool {self.dir}: {e.strerror}") from e
        if not self.dir.is_dir():
            raise SpoolError(f"spool {self.dir}: not a directory")
        node_file = self.dir / "node"
        if not node_file.exists():
            # Host for people reading metadata, random part so two spools
            # on one host (or a host renamed) never share tags.
            host = socket.gethostname().split(".")[0].encode("ascii", "replace").decode()
            _write_atomic(node_file, f"{host}-{secrets.token_hex(6)}".replace("/", "_").encode())
        self.node = node_file.read_text().strip()
        self._open_path: Path | None = None
        self._open_size = 0
        self._sealed_bytes = 0
        # Held while the files and the counts above change together (appends on
        # the daemon's loop, seal and done on its uploader thread).
        self._lock = threading.Lock()
        self._recover()

    # -- opening ----------------------------------------------------------

    def _recover(self) -> None:
        """Cut torn tails, drop stray attempt files, adopt an open segment."""
        names = os.listdir(self.dir)
        opens = sorted(n for n in names if _OPEN_RE.match(n))
        recs = {m.group(1, 2) for n in names if (m := _SEG_RE.match(n)) and m.group(3) == "rec"}
        for n in names:
            m = _SEG_RE.match(n)
            if m and m.group(3) == "att" and m.group(1, 2) not in recs:
                os.unlink(self.dir / n)  # uploaded; the kill came between the two unlinks
            if n.endswith(".tmp"):
                os.unlink(self.dir / n)
        # Two open files only if a kill hit between creating a new one and
        # sealing the old: seal all but the newest, oldest first.
        survivors = []
        for n in opens:
            path = self.dir / n
            data = path.read_bytes()
            good = whole_records_length(data)
            if good < len(data):
                with open(path, "r+b") as f:
                    f.truncate(good)
                    os.fsync(f.fileno())
            if good == 0:
                os.unlink(path)
            else:
                survivors.append((path, good))
        for i, (path, good) in enumerate(survivors):
            self._open_path, self._open_size = path, good
            if i + 1 < len(survivors):
                self.seal()
        self._sealed_bytes = sum(s.size for s in self.sealed())

    # -- appending ----------------------------------------------------------

    @property
    def open_bytes(self) -> int:
        return self._open_size

    @property
    def open_path(self) -> str | None:
        """The open segment's file, if there is one."""
        return None if self._open_path is None else str(self._open_path)

    def append(self, records: bytes, wall_time: float, sync: bool = True) -> bool:
        """Append whole framed records to the open segment (opened at
        ``wall_time`` if there is none). False, and counted, if the spool is full."""
        if not records:
            return True
        with self._lock:
            if self._open_size + self._sealed_bytes + len(records) > self.max_bytes:
                self.overflowed_records += _count_records(records)
                self.overflowed_bytes += len(records)
                return False
            if self._open_path is None:
                self._open_path = self.dir / f"open-{int(wall_time * 1e6)}.rec"
                self._open_size = 0
            with open(self._open_path, "ab") as f:
                f.write(records)
                if sync:
                    f.flush()
                    os.fsync(f.fileno())
            self._open_size += len(records)
            return True

    def ensure_open(self, wall_time: float) -> str:
        """The open segment's file, created (empty) if there is none: the daemon
        names it in its state file before it appends."""
        with self._lock:
            if self._open_path is None:
                self._open_path = self.dir / f"open-{int(wall_time * 1e6)}.rec"
                self._open_size = 0
                self._open_path.touch()
            return str(self._open_path)

    def sync(self) -> None:
        """fsync the open segment (after appends with ``sync=False``)."""
        if self._open_path is not None:
            fd = os.open(self._open_path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    def seal(self) -> Segment | None:
        """Turn the open segment into a sealed one (None if it is empty)."""
        with self._lock:
            if self._open_path is None or self._open_size == 0:
                return None
            m = _OPEN_RE.match(self._open_path.name)
            wall_us = int(m.group(1)) if m else 0
            counter = self.dir / "next"
            seg_id = int(counter.read_text()) if counter.exists() else 1
            _write_atomic(counter, str(seg_id + 1).encode())
            dest = self.dir / f"seg-{seg_id:012d}-{wall_us}.rec"
            os.rename(self._open_path, dest)
            _fsync_dir(self.dir)
            self._sealed_bytes += self._open_size
            seg = Segment(seg_id, wall_us, dest, self._open_size, ())
            self._open_path, self._open_size = None, 0
            return seg

    # -- uploading ----------------------------------------------------------

    def sealed(self) -> list[Segment]:
        """Sealed segments in the order they were sealed (upload them in it)."""
        out = []
        for n in sorted(os.listdir(self.dir)):
            m = _SEG_RE.match(n)
            if not m or m.group(3) != "rec":
                continue
            path = self.dir / n
            att = path.with_suffix(".att")
            attempts: tuple[tuple[int, int], ...] = ()
            if att.exists():
                # A torn last line (a kill mid-write) was never followed by its PUT.
                pairs = (ln.split() for ln in att.read_text().split("\n")[:-1])
                attempts = tuple(
                    (int(p[0]), int(p[1]))
                    for p in pairs
                    if len(p) == 2 and all(map(str.isdigit, p))
                )
            out.append(
                Segment(int(m.group(1)), int(m.group(2)), path, path.stat().st_size, attempts)
            )
        return out

    def records(self, seg: Segment) -> bytes:
        """The segment's records (what an append adds to an object)."""
        return seg.path.read_bytes()

    def header(self, seg: Segment) -> bytes:
        """The file-version event that starts an object this segment creates."""
        return segment_header(seg.wall_us / 1e6)

    def record_attempt(self, seg: Segment, seq: int, offset: int) -> None:
        """Durably note, before the PUT, that ``seg``'s records are about to
        be written at ``offset`` of object ``seq``."""
        with open(seg.attempts_path, "a") as f:
            f.write(f"{seq} {offset}\n")
            f.flush()
            os.fsync(f.fileno())

    def done(self, seg: Segment) -> None:
        """``seg`` is in the store: forget it (its bytes leave the bound with its file)."""
        with self._lock:
            try:
                os.unlink(seg.path)
                self._sealed_bytes -= seg.size
            except FileNotFoundError:
                pass
        try:
            os.unlink(seg.attempts_path)
        except FileNotFoundError:
            pass

    def statistics(self) -> SpoolStatistics:
        segs = self.sealed()
        return SpoolStatistics(
            open_bytes=self.open_bytes,
            sealed_segments=len(segs),
            sealed_bytes=sum(s.size for s in segs),
            overflowed_records=self.overflowed_records,
            overflowed_bytes=self.overflowed_bytes,
        )
