"""Event files on disk: names that sort last, and appends that are whole records.

TensorBoard reads a run's files in name order and (Python loader) stops
reading a file once a later one exists, so a new file must sort after every
``tfevents`` file already in the directory.  torch names files
``events.out.tfevents.<%010d time>.<host>.<pid>.<n><suffix>``; two processes
starting in the same second can sort in either order (``.123.`` < ``.99.``).
``event_file_name`` keeps torch's pattern and, when needed, moves the time
field past the newest existing file's so the new name sorts last.
"""

from __future__ import annotations

import os
import re
import struct
from collections.abc import Callable, Iterable

from .tfrecord import FOOTER_BYTES, HEADER_BYTES, whole_records_length

_U64 = struct.Struct("<Q")

_TIME = re.compile(r"^events\.out\.tfevents\.(\d+)\.")


def event_file_name(
    existing: Iterable[str], now: float, host: str, pid: int, n: int, suffix: str
) -> str:
    """torch's file name for ``now``, moved later if needed to sort after ``existing``."""
    names = [e for e in existing if "tfevents" in e]
    t = int(now)
    last = max(names, default="")
    name = f"events.out.tfevents.{t:010d}.{host}.{pid}.{n}{suffix}"
    if name > last:
        return name
    m = _TIME.match(last)
    if m:
        name = f"events.out.tfevents.{int(m.group(1)) + 1:010d}.{host}.{pid}.{n}{suffix}"
    return name


class EventFile:
    """An append-only event file; each ``append`` is whole records in one write."""

    def __init__(self, path: str) -> None:
        self.path = path
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC | os.O_NOFOLLOW
        self.fd: int | None = os.open(path, flags, 0o644)
        self.bytes = 0  # our file alone: its size is what we wrote

    @classmethod
    def create(
        cls, log_dir: str, now: float, host: str, pid: int, n: int, suffix: str
    ) -> EventFile:
        os.makedirs(log_dir, exist_ok=True)
        for _ in range(100):  # O_EXCL: someone else may take the name between list and open
            name = event_file_name(os.listdir(log_dir), now, host, pid, n, suffix)
            try:
                return cls(os.path.join(log_dir, name))
            except FileExistsError:
                now += 1
        raise FileExistsError(f"no free event file name in {log_dir}")

    def append(self, data: bytes) -> None:
        """Write whole records, or nothing: a failed write (disk full, file
        size limit) is cut back off, so the file never ends in a partial record."""
        if self.fd is None:  # suspended: reopen our own file
            self.fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC | os.O_NOFOLLOW)
        view = memoryview(data)
        try:
            while view:
                written = os.write(self.fd, view)
                view = view[written:]
        except OSError:
            try:
                os.ftruncate(self.fd, self.bytes)
            except OSError:
                pass
            raise
        self.bytes += len(data)

    def suspend(self) -> None:
        """Close the descriptor (the daemon keeps few open); ``append`` reopens it."""
        if self.fd is not None:
            os.close(self.fd)
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
            os.close(self.fd)
            self.fd = None


def purge_file(path: str, step: int, keep: Callable[[bytes, int], bool]) -> int:
    """Rewrite ``path`` without the records ``keep(data, step)`` refuses.

    The new content goes to a temporary name without ``tfevents`` in it (so
    TensorBoard never reads a half-written file), is fsynced, then renamed
    over the original.  A torn tail is dropped too.

    Returns:
        The number of records removed (0: the file was left alone).
    """
    with open(path, "rb") as f:
        data = f.read()
    whole = whole_records_length(data)
    kept = []
    removed = 0
    o = 0
    while o < whole:
        (n,) = _U64.unpack_from(data, o)
        end = o + HEADER_BYTES + n + FOOTER_BYTES
        if keep(data[o + HEADER_BYTES : o + HEADER_BYTES + n], step):
            kept.append(data[o:end])
        else:
            removed += 1
        o = end
    if not removed and whole == len(data):
        return 0
    d = os.path.dirname(path)
    tmp = os.path.join(d, f".summaryd-purge.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC | os.O_NOFOLLOW, 0o644)
    try:
        os.write(fd, b"".join(kept))
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    dfd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)
    return removed
