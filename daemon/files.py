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
from collections.abc import Iterable

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
        self.fd = os.open(path, flags, 0o644)
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

    def sync(self) -> None:
        os.fsync(self.fd)

    def close(self) -> None:
        try:
            os.fsync(self.fd)
        finally:
            os.close(self.fd)
