"""The shared-memory ring: one per logging process, one producer, one consumer.

Layout (all integers little-endian; offsets in bytes)::

    0    magic      8s   b"SMDRING1"
    8    version    u32  RING_VERSION
    12   hdr_size   u32  HEADER_SIZE (data starts here)
    16   capacity   u64  data bytes, a power of two
    24   pid        u64  the producer's pid
    32   start      u64  the producer's start time (clock ticks since boot)
    40   session    16s  random per client; a new one on a known pid = restarted
    56   runtime    u64  runtime_id() of the producer's runtime dir: whose daemon it reports to
    64   head       u64  producer's write position (own cache line)
    128  tail       u64  consumer's position: every record before it is in its file
    136  bell       u64  consumer sets it (bit 0: wake me, bit 1: notice sent); producer clears
    144  beat       u64  consumer's heartbeat: wall-clock ms (time.time()), 0 = not served
    152  daemon     u64  pid of the consumer that adopted the ring last (0: none yet)
    192  dropped    u64  records the producer dropped because the ring stayed full
    256  data       capacity bytes

A daemon adopts a ring only when its producer is dead (pid and start time),
when its producer says hello to it, or when ``runtime`` names the daemon's own
runtime dir (a restarted daemon takes its live clients' rings back before they
say hello again): a live client of another daemon sharing the ring directory
is never locked, drained or sent a notice.  A ring with ``runtime`` 0 (made by
an older SDK) is adopted only by hello or once its producer is dead.

The consumer rewrites ``beat`` at least every ``BEAT_EVERY`` seconds while it
has the ring adopted, idle or busy, and sets it to 0 when it lets the ring go
on purpose (a graceful stop).  A producer that finds it older than
``BEAT_STALE`` while nonzero knows its daemon died (SIGKILL, OOM) without a
system call: it reads one word of its own mapping, a few times a second.
The consumer writes its pid to ``daemon`` when it adopts the ring: a
producer that said hello to another pid knows, again without a system call,
that a new daemon took the ring and must learn who it is (its ZeroMQ
identity) before a flush can be acknowledged.
Wall-clock rather than CLOCK_MONOTONIC: the producer compares it with the wall
time its records carry anyway, and a time namespace (containers sharing
``/dev/shm``) may shift the monotonic clock but not the wall clock; a clock
step only costs one spurious check, which the daemon lock then answers.

The bell lets a sleeping daemon be woken by one message instead of polling,
and tells the producer a notice waits on its socket (its next call reads it).
Positions only grow; ``position & (capacity - 1)`` is the offset in data.
A record is ``u32 length, u32 crc32(payload[:CHECKED]), payload`` padded to
8 bytes, so a record header never straddles the end of the data area (the
payload may: it continues at offset 0).  The checksum covers a record's first
``CHECKED`` (4 KiB) bytes: all of a scalar or text record, and the msgpack
structure (kind, writer, tag, parameters, array shapes) of an array record,
but not the megabytes of raw array data after it: a pass over those would
cost the trainer as much as the copy itself (``add_histogram`` of 1e6 values
must cost well under half a millisecond).  A record is committed when ``head`` moves past it
(an aligned 8-byte store, after the payload is in place); from then on it
survives the death of its producer.  ``tail`` moves only after the records
before it are written to their event files, so a daemon that dies between a
drain and a write loses nothing: the next one reads from ``tail`` again.
The checksum lets the consumer refuse a torn or garbage record instead of
acting on it.  The magic is written last, so a half-made ring is never adopted.

Pure code over a buffer; ``create_ring``/``open_ring``/``ring_owner`` are the
only functions that touch ``/dev/shm``.
"""

from __future__ import annotations

import fcntl
import functools
import mmap
import os
import stat
import struct
from collections.abc import Callable, Sequence
from zlib import adler32, crc32

from .errors import ProtocolError

MAGIC = b"SMDRING1"
RING_VERSION = 1
HEADER_SIZE = 256
RECORD_HEADER = 8
ALIGN = 8
MIN_CAPACITY = 1 << 12
CHECKED = 4096  # bytes of a record's payload its checksum covers
MAX_CAPACITY = 1 << 32

_FIXED = struct.Struct("<8sIIQQQ16sQ")  # magic .. runtime: offsets 0..63
_REC = struct.Struct("<II")
_LEN = struct.Struct("<I")
_VIEW_ABOVE = 1 << 16  # payloads larger than this are returned as memoryviews
# Indices into the header viewed as u64 words (offset // 8).
_HEAD, _TAIL, _BELL, _BEAT, _DAEMON, _DROPPED = 8, 16, 17, 18, 19, 24
BEAT_EVERY = 0.25  # seconds between a live consumer's heartbeats
# Seconds after which a nonzero heartbeat means the consumer died: three missed
# beats, so with a look every BEAT_EVERY a death is noticed within a second.  A
# false alarm (a daemon descheduled that long) is harmless: the daemon lock says
# it lives, nothing is started, and the client only says hello again.
BEAT_STALE = 0.75
WAKE_BELL = 1  # the consumer sleeps: send it a bell message
NOTICE_BELL = 2  # a notice waits on the producer's socket


class RingCorruptError(ProtocolError):
    """The ring holds bytes that are not a valid record where one must be."""


class RingBusyError(OSError):
    """Another consumer (a daemon of another runtime dir) holds the ring."""


def record_crc(payload: bytes | memoryview) -> int:
    """The checksum stored in a record's header: CRC-32 of its first ``CHECKED`` bytes."""
    return crc32(payload if len(payload) <= CHECKED else memoryview(payload)[:CHECKED])


def padded_size(payload_len: int) -> int:
    """Bytes a record with a payload of ``payload_len`` occupies in the ring."""
    return (RECORD_HEADER + payload_len + ALIGN - 1) & ~(ALIGN - 1)


class Ring:
    """A ring over a mapped buffer of ``HEADER_SIZE + capacity`` bytes.

    The producer side (``put``) and the consumer side (``read``/``set_tail``)
    each assume a single caller; the SDK serialises producers with a lock.
    """

    def __init__(self, buf: mmap.mmap, lock_fd: int | None = None) -> None:
        self._mm = buf
        self._lock_fd = lock_fd  # the consumer's flock on the ring file, held while mapped
        self._q = memoryview(buf)[:HEADER_SIZE].cast("Q")
        magic, version, hdr, cap, pid, start, session, runtime = _FIXED.unpack_from(buf, 0)
        self.capacity: int = cap
        self.pid: int = pid
        self.start_ticks: int = start
        self.session: bytes = session
        self.runtime: int = runtime
        self._mask = cap - 1
        self.read_pos: int = self._q[_TAIL]

    # -- header fields -------------------------------------------------------

    @property
    def head(self) -> int:
        return int(self._q[_HEAD])

    @property
    def tail(self) -> int:
        return int(self._q[_TAIL])

    @property
    def dropped(self) -> int:
        return int(self._q[_DROPPED])

    @property
    def beat(self) -> int:
        """The consumer's last heartbeat (wall-clock ms), 0 if none serves the ring."""
        return int(self._q[_BEAT])

    @property
    def daemon(self) -> int:
        """The pid of the consumer that adopted the ring last, 0 if none has."""
        return int(self._q[_DAEMON])

    def set_daemon(self, pid: int) -> None:
        """Publish that the consumer ``pid`` adopted the ring."""
        self._q[_DAEMON] = pid

    def intact(self) -> bool:
        """False once the file is shorter than the mapping (truncated by its
        producer): touching the mapping then would be SIGBUS.  Consumer side."""
        if self._lock_fd is None:
            return True
        try:
            return os.fstat(self._lock_fd).st_size >= HEADER_SIZE + self.capacity
        except OSError:
            return False

    def fill(self) -> int:
        """Bytes committed but not yet consumed (head - tail)."""
        return int(self._q[_HEAD] - self._q[_TAIL])

    def add_dropped(self, n: int = 1) -> None:
        self._q[_DROPPED] += n

    # -- producer ------------------------------------------------------------

    def make_put(self, on_bell: Callable[[int], object]) -> Callable[[bytes], bool]:
        """The producer's append function (single producer: callers hold a lock).

        ``put(payload)`` appends one record and returns True, or returns False
        (nothing written) if it does not fit now; it raises ValueError if it
        can never fit.  When the consumer has asked to be woken it clears the
        bell word and calls ``on_bell(word)``.  A closure over locals because it is
        the hot path of every logging call (about a third of the cost of
        attribute lookups through ``self``).
        """
        mm = self._mm
        q = self._q
        cap = self.capacity
        mask = self._mask
        pack_into = _REC.pack_into

        def put(payload: bytes) -> bool:
            n = len(payload)
            if not n:
                raise ValueError("an empty record cannot be told from a corrupt one")
            total = (n + 15) & ~7  # padded_size, inlined
            head = q[_HEAD]
            if head + total - q[_TAIL] > cap:
                if total > cap:
                    raise ValueError(f"record of {n} bytes exceeds ring capacity {cap}")
                return False
            p = head & mask
            off = HEADER_SIZE + p
            pack_into(mm, off, n, crc32(payload) if n <= CHECKED else record_crc(payload))
            start = off + RECORD_HEADER
            if p + RECORD_HEADER + n <= cap:
                mm[start : start + n] = payload
            else:
                first = cap - p - RECORD_HEADER
                mm[start : start + first] = payload[:first]
                mm[HEADER_SIZE : HEADER_SIZE + n - first] = payload[first:]
            q[_HEAD] = head + total  # the commit: an aligned 8-byte store after the payload
            bell = q[_BELL]
            if bell:
                q[_BELL] = 0
                on_bell(bell)
            return True

        return put

    def make_put_parts(
        self, on_bell: Callable[[int], object]
    ) -> Callable[[bytes, Sequence[memoryview]], bool]:
        """The producer's append for array records: ``put_parts(head, parts)``.

        The record's payload is ``head`` followed by each of ``parts``, copied
        straight from the caller's buffers into the ring (no joined copy in
        between: an image or a histogram's values are copied exactly once).
        Same contract as ``make_put``'s ``put``.
        """
        mm = self._mm
        q = self._q
        cap = self.capacity
        mask = self._mask
        pack_into = _REC.pack_into

        def write(p: int, data: bytes | memoryview) -> int:
            """Copy ``data`` at data offset ``p`` (wrapping); the offset after it."""
            k = len(data)
            if p + k <= cap:
                mm[HEADER_SIZE + p : HEADER_SIZE + p + k] = data
            else:
                first = cap - p
                mm[HEADER_SIZE + p : HEADER_SIZE + cap] = data[:first]
                mm[HEADER_SIZE : HEADER_SIZE + k - first] = data[first:]
            return int((p + k) & mask)

        def put_parts(head: bytes, parts: Sequence[memoryview]) -> bool:
            n = len(head) + sum(len(x) for x in parts)
            if not n:
                raise ValueError("an empty record cannot be told from a corrupt one")
            total = (n + 15) & ~7
            start = q[_HEAD]
            if start + total - q[_TAIL] > cap:
                if total > cap:
                    raise ValueError(f"record of {n} bytes exceeds ring capacity {cap}")
                return False
            crc = crc32(head[:CHECKED])
            left = CHECKED - len(head)
            for x in parts:
                if left <= 0:
                    break
                crc = crc32(x[:left], crc)
                left -= len(x)
            p = start & mask
            pack_into(mm, HEADER_SIZE + p, n, crc)
            p = write(p + RECORD_HEADER, head)
            for x in parts:
                p = write(p, x)
            q[_HEAD] = start + total  # the commit, after the payload is in place
            bell = q[_BELL]
            if bell:
                q[_BELL] = 0
                on_bell(bell)
            return True

        return put_parts

    def put(self, payload: bytes) -> bool:
        """Append one record (see ``make_put``); for callers off the hot path."""
        return self.make_put(lambda bell: None)(payload)

    def take_bell(self) -> bool:
        """True (and clear it) if the consumer asked to be woken."""
        if self._q[_BELL]:
            self._q[_BELL] = 0
            return True
        return False

    # -- consumer ------------------------------------------------------------

    def set_bell(self, bit: int = WAKE_BELL) -> None:
        self._q[_BELL] |= bit

    def set_beat(self, ms: int) -> None:
        """Publish that a consumer serves the ring (``ms``: wall-clock ms; 0: no longer)."""
        self._q[_BEAT] = ms

    def set_tail(self, pos: int) -> None:
        """Publish that every record before ``pos`` is in its event file."""
        self._q[_TAIL] = pos

    def read(self, max_bytes: int) -> list[tuple[int, int, bytes | memoryview]]:
        """Records from ``read_pos`` up to head, as ``(start, end, payload)``.

        The convenient form of ``read_batch`` (same limits, same errors).
        """
        starts, payloads = self.read_batch(max_bytes)
        ends = starts[1:] + [self.read_pos] if starts else []
        return list(zip(starts, ends, payloads, strict=True))

    def read_batch(self, max_bytes: int) -> tuple[list[int], list[bytes | memoryview]]:
        """Records from ``read_pos`` up to head (about ``max_bytes`` at most).

        Returns the start position and the payload of each record, and
        advances ``read_pos`` past them (the end of the last one).

        Raises:
            RingCorruptError: a record's length or checksum is wrong; the
                records before it are returned by the next call (read_pos
                stays before the bad record).
        """
        head = int(self._q[_HEAD])
        pos = self.read_pos
        avail = head - pos
        if avail == 0:
            return [], []
        cap = self.capacity
        if avail < 0 or avail > cap or avail % ALIGN:
            raise RingCorruptError(f"ring head {head} inconsistent with position {pos}")
        avail = min(avail, max(max_bytes, ALIGN))
        (first,) = _LEN.unpack_from(self._mm, HEADER_SIZE + (pos & self._mask))
        first_end = (RECORD_HEADER + first + 7) & ~7
        if avail < first_end and pos + first_end <= head:
            # One record larger than max_bytes (an image, a histogram): copy it
            # whole, once, and nothing after it.
            avail = first_end
        region = self._copy(pos, avail)
        size = len(region)
        starts: list[int] = []
        payloads: list[bytes | memoryview] = []
        add_start = starts.append
        add_payload = payloads.append
        o = 0
        unpack = _REC.unpack_from
        scan = _scanner()
        # The daemon's inner loop: one pass, locals only.  The C scan takes the
        # plain records; this loop decides each record it stops at (corrupt, large,
        # cut by the region's end), exactly as it decides every record without it.
        while o + RECORD_HEADER <= size:
            if scan is not None:
                o = scan(region, o, pos, head, CHECKED, _VIEW_ABOVE, starts, payloads)
                if o + RECORD_HEADER > size:
                    break
            n, crc = unpack(region, o)
            b = o + RECORD_HEADER
            e = b + n
            end = (e + 7) & ~7
            if n == 0 or pos + end > head:
                # head only moves past whole records: this length is corrupt.
                self.read_pos = pos + o
                if starts:
                    return starts, payloads  # deliver the good ones; the next call raises
                raise RingCorruptError(f"record at {pos + o} has invalid length {n}")
            if end > size:
                if o == 0:
                    # One record larger than max_bytes: read it whole.
                    region = self._copy(pos, end)
                    size = len(region)
                    continue
                break
            # A large payload is a view of the region: a slice would copy
            # megabytes of array data once more.
            payload = region[b:e] if n <= _VIEW_ABOVE else memoryview(region)[b:e]
            if (crc32(payload) if n <= CHECKED else record_crc(payload)) != crc:
                self.read_pos = pos + o
                if starts:
                    return starts, payloads
                raise RingCorruptError(f"record at {pos + o} fails its checksum")
            add_start(pos + o)
            add_payload(payload)
            o = end
        self.read_pos = pos + o
        return starts, payloads

    def _copy(self, pos: int, length: int) -> bytes:
        p = pos & self._mask
        cap = self.capacity
        if p + length <= cap:
            return self._mm[HEADER_SIZE + p : HEADER_SIZE + p + length]
        first = cap - p
        return (
            self._mm[HEADER_SIZE + p : HEADER_SIZE + cap]
            + self._mm[HEADER_SIZE : HEADER_SIZE + length - first]
        )

    def close(self) -> None:
        self._q.release()
        self._mm.close()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None


_Scan = Callable[[bytes, int, int, int, int, int, list[int], list[bytes | memoryview]], int]


@functools.cache
def _scanner() -> _Scan | None:
    """The compiled record loop (``_ringscan.c``), or None if it was not built.

    Imported on the consumer's first read, never by a trainer (the producer).
    """
    try:
        from ._ringscan import scan
    except ImportError:
        return None
    return scan


def _round_capacity(requested: int) -> int:
    cap = MIN_CAPACITY
    while cap < requested and cap < MAX_CAPACITY:
        cap <<= 1
    return cap


def runtime_id(runtime_dir: str) -> int:
    """The ``runtime`` header word for a runtime dir: which daemon a ring reports to.

    Derived from the directory's device and inode, not its path: two containers
    sharing ``/dev/shm`` may spell their runtime dirs alike.  zlib's checksums rather
    than hashlib, whose import costs every logging process ~6 ms.  Never 0.
    """
    st = os.stat(runtime_dir)
    key = struct.pack("<QQ", st.st_dev, st.st_ino)
    return (crc32(key) << 32 | adler32(key)) or 1


def create_ring(
    path: str, capacity: int, pid: int, start_ticks: int, session: bytes, runtime: int = 0
) -> Ring:
    """Create a new ring file at ``path`` (0600, must not exist) and map it."""
    cap = _round_capacity(capacity)
    flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW
    fd = os.open(path, flags, 0o600)
    try:
        os.ftruncate(fd, HEADER_SIZE + cap)
        mm = mmap.mmap(fd, HEADER_SIZE + cap)
    except BaseException:
        os.close(fd)
        os.unlink(path)
        raise
    os.close(fd)
    _FIXED.pack_into(
        mm, 0, b"\0" * 8, RING_VERSION, HEADER_SIZE, cap, pid, start_ticks, session, runtime
    )
    mm[0:8] = MAGIC  # last: the ring is valid only once everything else is in place
    return Ring(mm)


def open_ring(path: str) -> Ring:
    """Map an existing ring for consuming, after checking it is safe to adopt.

    The consumer holds an exclusive ``flock`` on the file while it has it
    mapped: two daemons (say, one per runtime directory) never drain one ring.

    Raises:
        RingBusyError: another consumer holds it.
        RingCorruptError: not a regular file of ours with mode 0600 and a valid header.
        OSError: it cannot be opened (e.g. already removed).
    """
    fd = os.open(path, os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RingBusyError(f"{path}: another daemon consumes this ring") from None
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o077:
            raise RingCorruptError(f"{path}: not a 0600 regular file owned by this user")
        if st.st_size < HEADER_SIZE:
            raise RingCorruptError(f"{path}: too small for a ring header")
        fixed = os.pread(fd, _FIXED.size, 0)
        magic, version, hdr, cap, _pid, _start, _session, _runtime = _FIXED.unpack(fixed)
        if magic != MAGIC or version != RING_VERSION or hdr != HEADER_SIZE:
            raise RingCorruptError(f"{path}: bad magic or version")
        if cap < MIN_CAPACITY or cap > MAX_CAPACITY or cap & (cap - 1):
            raise RingCorruptError(f"{path}: bad capacity {cap}")
        if st.st_size != HEADER_SIZE + cap:
            raise RingCorruptError(f"{path}: size {st.st_size} does not match capacity {cap}")
        mm = mmap.mmap(fd, HEADER_SIZE + cap)
    except BaseException:
        os.close(fd)
        raise
    return Ring(mm, fd)


def ring_owner(path: str) -> tuple[int, int, int]:
    """``(pid, start_ticks, runtime)`` from a ring's header, read without mapping
    or locking it: a daemon decides whether a ring is its to adopt before it
    takes the lock another daemon's client would find held.

    Raises:
        RingCorruptError: not a regular file of ours with a valid header.
        OSError: it cannot be opened or read (e.g. already removed).
    """
    # O_NONBLOCK: a FIFO planted under a ring's name must not hang the daemon.
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o077:
            raise RingCorruptError(f"{path}: not a 0600 regular file owned by this user")
        fixed = os.pread(fd, _FIXED.size, 0)
    finally:
        os.close(fd)
    if len(fixed) < _FIXED.size:
        raise RingCorruptError(f"{path}: too small for a ring header")
    magic, version, hdr, _cap, pid, start, _session, runtime = _FIXED.unpack(fixed)
    if magic != MAGIC or version != RING_VERSION or hdr != HEADER_SIZE:
        raise RingCorruptError(f"{path}: bad magic or version")
    return pid, start, runtime
