"""An event file that the daemons of several nodes may write at once.

Why one file: TensorBoard's Python loader reads a run's files in name order
and stops reading a file once a later one exists, so a run needs exactly one
live file for every writer, however many daemons (nodes sharing a directory
over NFS, or two daemons on one host) log into it.  Within a daemon every
client already shares the run's file; across daemons they meet here.

Theory of operation
-------------------
Two POSIX record locks on bytes far past any end of file (``lockf``: they work
over NFS, where ``flock`` is emulated with them anyway):

* ``LIVE`` -- held *shared* by every daemon that has the file open for a run.
  A file nobody holds ``LIVE`` on is finished (a closed run, a dead daemon,
  torch's writer).  A new file is created under a temporary name (no
  ``tfevents`` in it, so no reader lists it), locked ``LIVE``, then hard-linked
  to its final name: no file of ours is ever listed unlocked.
* ``APPEND`` -- held *exclusively* around each append, and by a daemon that
  creates a run's next file while it holds the newest one's.  So "is my file
  still the newest?" and "write" happen together with respect to any creation.

Opening a run: under the newest run file's ``APPEND`` lock, join it if it is
live, else create a file that sorts after every event file in the directory.
A life resumed with ``purge_step`` joins only a live file that began the same
life (another node's rank resumed at that step first: its records after the
header are torch's purge pair), never the earlier life's file.
Appending: under ``APPEND``, follow a newer live run file if one appeared (a
creation race in an empty directory, or while our descriptor was closed);
check that what others wrote since our last append is whole records; a torn
tail (a daemon killed mid-write) would stop every reader there, so the run
moves to a new file, which every other writer then finds and joins.  Readers
never see a record half-written by a live writer: each append is one
``write()`` under the lock.

POSIX locks belong to the process and are all dropped when *any* descriptor
of the file closes in it, so a daemon never opens a file it holds live a
second time: ``is_live`` answers from ``_held`` for our own files, and purges
skip live files.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import re
import struct
import time
from collections.abc import Callable, Iterable

from . import encode
from .tfrecord import FOOTER_BYTES, HEADER_BYTES, spans, whole_records_length

LIVE = 1 << 62  # lock offsets: beyond any file's end, so they lock no data
APPEND = LIVE + 1
_SCAN_CHUNK = 8 << 20  # others' bytes checked in slices of this size
_LENGTH = struct.Struct("<Q")
_LIFE_PROBE = 64 << 10  # bytes read to find a file's first records

_CREATE = os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND | os.O_CLOEXEC | os.O_NOFOLLOW
_NO_LINKS = {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK, errno.ENOSYS}
_NO_LOCKS = {errno.ENOLCK, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS}
_warned = False
log = logging.getLogger("summaryd")

_TIME = re.compile(r"^events\.out\.tfevents\.(\d+)\.")
# (st_dev, st_ino) of the files this process holds LIVE (see the module docstring).
_held: dict[tuple[int, int], int] = {}


def event_file_name(
    existing: Iterable[str], now: float, host: str, pid: int, n: int, suffix: str
) -> str:
    """torch's file name for ``now``, moved later if needed to sort after ``existing``.

    torch names files ``events.out.tfevents.<%010d time>.<host>.<pid>.<n><suffix>``;
    two processes starting in the same second can sort in either order
    (``.123.`` < ``.99.``), so the time field may move past the newest file's.
    """
    names = [e for e in existing if "tfevents" in e]
    last = max(names, default="")
    name = f"events.out.tfevents.{int(now):010d}.{host}.{pid}.{n}{suffix}"
    if name > last:
        return name
    m = _TIME.match(last)
    if m:
        name = f"events.out.tfevents.{int(m.group(1)) + 1:010d}.{host}.{pid}.{n}{suffix}"
    return name


def run_file_pattern(suffix: str) -> re.Pattern[str]:
    """The names of a run's files: torch's pattern ending in the run's suffix."""
    return re.compile(r"^events\.out\.tfevents\.\d+\..+\.\d+\.\d+" + re.escape(suffix) + "$")


def _lock(fd: int, how: int, where: int) -> None:
    """A blocking lock (or unlock).  Where the filesystem has no locks (NFS
    mounted ``nolock``), every daemon writes a file of its own, as before."""
    global _warned
    try:
        fcntl.lockf(fd, how, 1, where, os.SEEK_SET)
    except OSError as exc:
        if exc.errno not in _NO_LOCKS:
            raise
        if not _warned:
            _warned = True
            log.warning(
                "no file locks here (%s): a directory two daemons write gets a file from each",
                exc.strerror,
            )


def _identity(fd: int) -> tuple[int, int]:
    st = os.fstat(fd)
    return st.st_dev, st.st_ino


def is_live(path: str) -> bool:
    """Does a daemon (this one or another) hold ``path`` open for a run?"""
    if _held_here(path):
        return True
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    except OSError:
        return False  # not ours to write (torch's file of another user): never joined
    try:
        return _live_fd(fd)
    finally:
        os.close(fd)


def whole_end(fd: int, start: int, stop: int) -> int:
    """The end of the whole records in ``[start, stop)`` of ``fd``.

    Records are walked by their lengths alone (0.15 us each, against 1.3 for
    checking every CRC: a daemon reads every record the others write): what a
    writer killed mid-write leaves is a prefix of its write, whose last record
    runs past the end.  The last record is checked whole (a crash can leave a
    tail of zeros, which no CRC matches).
    """
    o = start
    last = -1
    while o < stop:
        chunk = os.pread(fd, min(_SCAN_CHUNK, stop - o), o)
        walked, at = _walk(chunk)
        if walked == 0:
            if len(chunk) < HEADER_BYTES:
                break
            end = o + HEADER_BYTES + int.from_bytes(chunk[:8], "little") + FOOTER_BYTES
            if end > stop:
                break
            walked, at = end - o, 0  # one record longer than the slice
        last = o + at
        o += walked
    if last >= 0 and o == stop:
        rec = os.pread(fd, stop - last, last)
        if whole_records_length(rec) != len(rec):
            return last
    return o


def _walk(buf: bytes) -> tuple[int, int]:
    """(bytes of the complete records at the start of ``buf`` by their lengths,
    where the last of them starts)."""
    o = last = 0
    n = len(buf)
    head = _LENGTH.unpack_from
    while o + HEADER_BYTES <= n:
        end = o + HEADER_BYTES + head(buf, o)[0] + FOOTER_BYTES
        if end > n:
            break
        last = o
        o = end
    return o, last


class EventFile:
    """A run's event file, possibly shared with other daemons; appends are
    whole records in one ``write()`` under the ``APPEND`` lock."""

    def __init__(self, log_dir: str, host: str, pid: int, n: int, suffix: str) -> None:
        self.log_dir = log_dir
        self.names = (host, pid, n, suffix)
        self.pattern = run_file_pattern(suffix)
        self.path = ""
        self.fd: int | None = None
        self.end = 0  # bytes of the file known to be whole records (ours and others')
        self.joined_life: int | None = None  # a resumed life another daemon's file began
        self._dir_mtime = 0

    @classmethod
    def create(
        cls,
        log_dir: str,
        now: float,
        host: str,
        pid: int,
        n: int,
        suffix: str,
        life: int | None = None,
    ) -> EventFile:
        """Join the run's live file in ``log_dir``, or create one that sorts last.

        ``life``: the run is a life resumed at that purge step.  It joins only
        a live file that began the same life (another node's rank resumed
        too; ``joined_life`` then tells the caller to leave out its own purge
        pair), never the earlier life's file, however live.
        """
        f = cls(log_dir, host, pid, n, suffix)
        os.makedirs(log_dir, exist_ok=True)
        newest = f._newest()
        if newest is None:
            f._create(now)
        else:
            f._enter(newest, now, life)
        f._follow(now)
        return f

    # -- which file the run writes -------------------------------------------

    def _newest(self) -> str | None:
        """The run's newest file (noting the directory's mtime first: a change
        while listing is seen at the next append)."""
        self._dir_mtime = os.stat(self.log_dir).st_mtime_ns
        mine = [n for n in os.listdir(self.log_dir) if self.pattern.match(n)]
        return os.path.join(self.log_dir, max(mine)) if mine else None

    def _dir_changed(self) -> bool:
        try:
            return os.stat(self.log_dir).st_mtime_ns != self._dir_mtime
        except OSError:
            return False

    def _follow(self, now: float) -> bool:
        """Write the run's newest file from now on; True if that moved us."""
        moved = False
        for _ in range(100):
            newest = self._newest()
            if newest is None or newest == self.path or _held_here(newest):
                # Our own newer file is another life of the run (torch: a writer
                # closed and opened again makes a new file): the core closes ours.
                return moved
            self._enter(newest, now)
            moved = True
        raise OSError(f"the event files of {self.log_dir} keep changing")

    def _enter(self, path: str, now: float, life: int | None = None) -> None:
        """Under ``path``'s APPEND lock: join it if it is live and whole (and
        began ``life``, if given), else create the run's next file (a creation
        no writer of ``path`` can miss)."""
        try:
            fd: int | None = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CLOEXEC | os.O_NOFOLLOW)
        except OSError:
            self._create(now)  # gone, or not ours to write (torch's file of another user)
            return
        assert fd is not None
        try:
            _lock(fd, fcntl.LOCK_EX, APPEND)
            size = os.fstat(fd).st_size
            # Never our own (another life of the run); never past damage.
            if (
                _identity(fd) not in _held
                and _live_fd(fd)
                and whole_end(fd, 0, size) == size
                and (life is None or file_life(fd) == life)
            ):
                _lock(fd, fcntl.LOCK_SH, LIVE)
                _lock(fd, fcntl.LOCK_UN, APPEND)
                self._adopt(path, fd, size)
                self.joined_life = life
                fd = None
                return
            # Finished (a closed run, a dead daemon, torch's writer) or torn.
            self._create(now)
        finally:
            if fd is not None:
                os.close(fd)  # releases its APPEND lock, after the creation

    def _create(self, now: float) -> None:
        """A new file that sorts last, LIVE-locked before it is listed: made under
        a temporary name and hard-linked (atomic and exclusive, on NFS too)."""
        host, pid, n, _ = self.names
        names = os.listdir(self.log_dir)
        tmp = os.path.join(self.log_dir, f".summaryd-new.{host}.{pid}.{n}.tmp")
        fd = os.open(tmp, _CREATE, 0o644)
        try:
            _lock(fd, fcntl.LOCK_SH, LIVE)
            path = self._claim(names, now, lambda p: os.link(tmp, p))
        except OSError as exc:
            os.close(fd)
            if exc.errno not in _NO_LINKS:
                raise
            fd = -1
        finally:
            os.unlink(tmp)
        if fd < 0:  # no hard links here (some FUSE and SMB mounts): made in place
            made: list[int] = []
            path = self._claim(
                names, now, lambda p: made.append(os.open(p, _CREATE | os.O_EXCL, 0o644))
            )
            fd = made[0]
            _lock(fd, fcntl.LOCK_SH, LIVE)
        self._adopt(path, fd, 0)

    def _claim(self, names: list[str], now: float, make: Callable[[str], object]) -> str:
        host, pid, n, suffix = self.names
        for _ in range(100):
            path = os.path.join(self.log_dir, event_file_name(names, now, host, pid, n, suffix))
            try:
                make(path)
                return path
            except FileExistsError:
                now += 1
        raise FileExistsError(f"no free event file name in {self.log_dir}")

    def _adopt(self, path: str, fd: int, end: int) -> None:
        key = _identity(fd)
        _held[key] = _held.get(key, 0) + 1
        if self.fd is not None:
            self._release(self.fd)
        self.path, self.fd, self.end = path, fd, end

    def _release(self, fd: int) -> None:
        key = _identity(fd)
        left = _held.get(key, 0) - 1
        if left > 0:
            _held[key] = left
        else:
            _held.pop(key, None)
        os.close(fd)

    # -- appends ---------------------------------------------------------------

    def append(self, data: bytes, before: Callable[[str, int], None] | None = None) -> None:
        """Write whole records, or nothing: a failed write (disk full, file size
        limit) is cut back off, so the file never ends in a partial record.

        ``before(path, offset)`` runs under the lock just before the write (the
        daemon persists its intent there: where the records are about to go).
        """
        for _ in range(10):
            if self.fd is None:  # suspended: reopen, and follow the run if it moved on
                self._reopen()
            fd = self.fd
            assert fd is not None
            _lock(fd, fcntl.LOCK_EX, APPEND)
            try:
                if self._dir_changed() and self._follow(time.time()):
                    continue  # fd closed, its lock with it
                size = os.fstat(fd).st_size
                if size != self.end:
                    if size < self.end or whole_end(fd, self.end, size) != size:
                        # A torn tail (a writer killed mid-write) stops every reader
                        # here: the run goes on in its next file, created under this
                        # file's lock so that every other writer finds it.
                        self._create(time.time())
                        continue
                    self.end = size
                if before is not None:
                    before(self.path, self.end)
                self._write(fd, data)
                return
            finally:
                if self.fd == fd:
                    _lock(fd, fcntl.LOCK_UN, APPEND)
        raise OSError(f"the event files of {self.log_dir} keep changing")

    def _write(self, fd: int, data: bytes) -> None:
        view = memoryview(data)
        try:
            while view:
                written = os.write(fd, view)
                view = view[written:]
        except OSError:
            try:
                os.ftruncate(fd, self.end)
            except OSError:
                pass
            raise
        self.end += len(data)

    def _reopen(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CLOEXEC | os.O_NOFOLLOW)
        _lock(fd, fcntl.LOCK_SH, LIVE)
        self._adopt(self.path, fd, self.end)
        self._follow(time.time())

    def suspend(self) -> None:
        """Close the descriptor (the daemon keeps few open); ``append`` reopens it."""
        if self.fd is not None:
            self._release(self.fd)
            self.fd = None

    def sync(self) -> None:
        if self.fd is not None:
            os.fsync(self.fd)

    def close(self) -> None:
        if self.fd is None:
            return
        try:
            os.fsync(self.fd)
        finally:
            self._release(self.fd)
            self.fd = None


def file_life(fd: int) -> int | None:
    """The purge step of the life a file began (its records after the file
    header are torch's purge_step pair), or None."""
    first = os.pread(fd, _LIFE_PROBE, 0)
    records = [first[s + HEADER_BYTES : e - FOOTER_BYTES] for s, e in spans(first)][1:3]
    return encode.purge_pair_step(*records) if len(records) == 2 else None


def live_life(path: str) -> int | None:
    """The life (purge step) another daemon's live file at ``path`` began, or None."""
    if _held_here(path):
        return None  # never a second descriptor of our own file (POSIX locks)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC | os.O_NOFOLLOW)
    except OSError:
        return None
    try:
        return file_life(fd) if _live_fd(fd) else None
    finally:
        os.close(fd)


def _held_here(path: str) -> bool:
    try:
        st = os.stat(path)
    except OSError:
        return False
    return (st.st_dev, st.st_ino) in _held


def _live_fd(fd: int) -> bool:
    """Is ``fd``'s file held LIVE by another process? (``fd`` stays open.)"""
    try:
        _lock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, LIVE)
    except OSError as exc:
        return exc.errno in (errno.EAGAIN, errno.EACCES)
    _lock(fd, fcntl.LOCK_UN, LIVE)
    return False
