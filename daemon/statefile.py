"""The state a restarted daemon needs: the core's snapshot and the write about
to happen, persisted in one ``pwrite`` before any tail passes a record.

A SIGKILL cannot split one write() to a regular file, so the file holds
either the old state or the new one; the length prefix ignores leftovers.
"""

from __future__ import annotations

import logging
import os
import struct
import zlib
from typing import Any

import msgpack

from .eventfile import is_live

log = logging.getLogger("summaryd")

STATE_VERSION = 1
HEAD_BYTES = 64  # of a write, kept in its intent: whose bytes are at its offset


class StateFile:
    def __init__(self, path: str) -> None:
        self.path = path
        self._fd: int | None = None
        # Set when the core's snapshot changed without a tail moving (a restore).
        self.dirty = False

    def save(self, snapshot: dict[str, Any], intent: dict[str, Any] | None) -> None:
        """Persist ``snapshot`` (and ``intent``, the write about to happen)."""
        blob = msgpack.packb(
            {"v": STATE_VERSION, "clients": snapshot, "intent": intent}, use_bin_type=True
        )
        data = struct.pack("<I", len(blob)) + blob
        try:
            if self._fd is None:
                flags = os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW
                self._fd = os.open(self.path, flags, 0o600)
            os.pwrite(self._fd, data, 0)
            self.dirty = False
        except OSError as exc:
            log.error("cannot save state to %s: %s", self.path, exc)

    def recover(self) -> dict[str, Any]:
        """Read the state an earlier daemon left and settle its last write: the
        clients' saved state, with that write counted if it happened whole, or
        its torn tail cut off the file."""
        try:
            with open(self.path, "rb") as f:
                raw = f.read()
            (n,) = struct.unpack_from("<I", raw)
            st = msgpack.unpackb(raw[4 : 4 + n], raw=False, strict_map_key=False)
            if st.get("v") != STATE_VERSION:
                return {}
            clients: dict[str, Any] = st["clients"]
        except (OSError, ValueError, struct.error, KeyError, TypeError) as exc:
            if not isinstance(exc, FileNotFoundError):
                log.warning("ignoring unreadable state %s: %s", self.path, exc)
            return {}
        intent = st.get("intent")
        if intent and _settle_intent(intent):  # the write happened: its records count
            for cid, k0, k1, upto in intent["commits"]:
                if cid in clients:
                    clients[cid]["written"].append([k0, k1, upto])
        log.info("recovered state of %d client(s)", len(clients))
        return clients

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _settle_intent(intent: dict[str, Any]) -> bool:
    """Did the last write happen whole?  If it was cut short, cut it off.

    In a file other daemons share, one of them may have appended at the
    intent's offset after this daemon died: the bytes there are ours only if
    they start with the write's first bytes, and whole only if their CRC says
    so.  A short write is cut off only in a file nobody is writing (the other
    writers of a live file move the run to a new file when they meet it).
    """
    path, offset, length = intent["path"], intent["offset"], intent["length"]
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            tail = f.read(length)
    except OSError:
        return False
    head = intent.get("head", tail[:HEAD_BYTES])  # (a state file from before sharing)
    n = min(len(head), len(tail))
    if tail[:n] != head[:n]:
        return False  # never written: another daemon's records are there
    if len(tail) == length and ("crc" not in intent or zlib.crc32(tail) == intent["crc"]):
        return True
    if len(tail) < length and not is_live(path):
        log.warning("truncating torn tail of %s at %d", path, offset)
        with open(path, "r+b") as f:
            f.truncate(offset)
    return False
