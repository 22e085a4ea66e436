"""Purges: a finished event file rewritten without the steps a resumed run logs again.

(Live files, their names and appends are ``eventfile.py``'s.)
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable

from .tfrecord import FOOTER_BYTES, HEADER_BYTES, whole_records_length

_U64 = struct.Struct("<Q")


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
