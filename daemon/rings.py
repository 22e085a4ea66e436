"""The loop's rings: adopting them, draining them into the core, their blobs,
and whether their producers live.

A ring is adopted when its client says hello, or by a scan of the ring
directory (a trainer killed before its hello, a ring left by an earlier
daemon).  Everything here touches shared memory a client wrote, so every
touch is preceded by ``usable``: a ring its producer truncated would be
SIGBUS.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from summaryd import wire
from summaryd.paths import Locations, process_alive
from summaryd.ring import (
    NOTICE_BELL,
    Ring,
    RingBusyError,
    RingCorruptError,
    open_ring,
    ring_owner,
    runtime_id,
)

from .core import Core
from .heartbeat import Heartbeat
from .statefile import StateFile

log = logging.getLogger("summaryd")

DRAIN_BUDGET = 1 << 20  # bytes per ring per cycle: control messages wait at most ~0.1 s
MAX_ARGV = 32  # argv items kept per client (status shows them) ...
MAX_ARG_CHARS = 256  # ... and characters per item

# A blob next to a ring: ``<prefix>.<pid>.<session>.b<n>`` (``wire.py``).
_BLOB = re.compile(r"^(.+\.\d+\.[0-9a-f]{16})\.b\d+$")


def bounded_argv(argv: list[Any]) -> list[str]:
    """What a client's hello says its argv is, bounded (status shows it to everyone);
    never ``str()`` of an arbitrary value (a deeply nested one raises RecursionError)."""
    return [
        (x if isinstance(x, str) else type(x).__name__)[:MAX_ARG_CHARS] for x in argv[:MAX_ARGV]
    ]


@dataclass(eq=False)
class Attached:
    """A client's ring as the loop sees it."""

    cid: str
    ring: Ring
    path: str
    identity: bytes | None = None
    broken: bool = False


class Rings:
    """Every ring this daemon reads, by session id."""

    def __init__(
        self,
        loc: Locations,
        core: Core,
        heartbeat: Heartbeat,
        state: StateFile,
        notify: Callable[[str, dict[str, Any]], None],
        pid: int,
    ) -> None:
        self.loc = loc
        self.core = core
        self.heartbeat = heartbeat
        self.state = state
        # Sends a control message to a client (the control part's).
        self.notify = notify
        self.pid = pid
        self.attached: dict[str, Attached] = {}
        # What an earlier daemon saved per client, until its ring is adopted.
        self.saved: dict[str, Any] = {}
        # Which runtime dir rings report to (set by ``start``, once the dir exists).
        self.runtime: int | None = None
        # Scans of the ring directory completed; status shows it, so a test can
        # wait for the scan after an event instead of sleeping through a period.
        self.scans = 0
        self._rejected: set[str] = set()

    # -- adoption ------------------------------------------------------------

    def start(self, now: float) -> None:
        """The runtime dir exists (the loop holds its lock): adopt what is there."""
        self.runtime = runtime_id(self.loc.runtime_dir)
        self.scan(now)

    def attach(self, name: str, now: float, argv: list[Any] | None = None) -> bool:
        path = self.loc.ring_path(name)
        try:
            ring = open_ring(path)
        except ValueError as exc:  # e.g. a NUL byte in a name a client sent
            log.warning("not adopting ring %r: %s", path, exc)
            return False
        except RingBusyError:
            return False  # another daemon's: quietly, and look again at the next scan
        except (OSError, RingCorruptError) as exc:
            if name not in self._rejected:
                self._rejected.add(name)
                log.warning("not adopting ring %s: %s", path, exc)
            return False
        sid = ring.session.rstrip(b"\0").decode("ascii", "replace")
        if sid in self.attached:
            log.warning("not adopting ring %s: session %s is another ring's", path, sid)
            self._rejected.add(name)
            ring.close()
            return False
        if self.loc.ring_name(ring.pid, sid) != name:
            log.warning("not adopting ring %s: header names pid %d session %s", path, ring.pid, sid)
            self._rejected.add(name)
            ring.close()
            return False
        self.attached[sid] = Attached(sid, ring, path)
        ring.set_daemon(self.pid)  # its client says hello again before its next flush
        self.heartbeat.add(ring)
        saved = self.saved.pop(sid, None)
        if saved is not None and (saved["pid"], saved["start"]) != (ring.pid, ring.start_ticks):
            saved = None
        tail = ring.tail
        if saved is not None and saved["tail"] > tail:
            # Saved just before the earlier daemon could publish it.
            tail = saved["tail"]
            ring.set_tail(tail)
        ring.read_pos = tail
        self.core.hello(
            sid, ring.pid, ring.start_ticks, name, now, tail=tail, argv=bounded_argv(argv or [])
        )
        if saved is not None:
            self.core.restore(sid, saved, now)
            self.state.dirty = True
        return True

    def scan(self, now: float) -> None:
        known = {a.path for a in self.attached.values()}
        try:
            names = os.listdir(self.loc.shm_dir)
        except OSError:
            return
        present = set(names)
        for name in names:
            blob = _BLOB.match(name)
            if blob is not None:
                # A blob whose ring is gone (its client died before the record
                # that names it was committed, or a daemon died before removing it).
                if self.loc.is_ring_name(name) and blob.group(1) not in present:
                    unlink(self.loc.ring_path(name))
            elif (
                self.loc.is_ring_name(name)
                and self.loc.ring_path(name) not in known
                and name not in self._rejected
                and self._ours_to_adopt(name)
            ):
                self.attach(name, now)
        self.scans += 1

    def _ours_to_adopt(self, name: str) -> bool:
        """Whether a scan may adopt ring ``name``: its producer is dead, or it
        reports to this runtime dir (a restarted daemon's live clients).  A live
        client of another daemon sharing the ring directory is left untouched,
        not even locked: its own daemon would refuse its hello while we held it.
        A live client of ours whose ring says nothing (an older SDK) is adopted
        when it says hello."""
        path = self.loc.ring_path(name)
        try:
            pid, start, runtime = ring_owner(path)
        except FileNotFoundError:
            return False  # removed since the listing: its client or daemon is done with it
        except (OSError, ValueError, RingCorruptError) as exc:
            if name not in self._rejected:
                self._rejected.add(name)
                log.warning("not adopting ring %s: %s", path, exc)
            return False
        if runtime == self.runtime:
            return True
        try:
            return not process_alive(pid, start)
        except OSError as exc:  # e.g. EMFILE: unknown is not dead
            log.warning("cannot check pid %d: %s", pid, exc)
            return False

    # -- reading -------------------------------------------------------------

    def usable(self, a: Attached) -> bool:
        """Whether the loop may touch ``a``'s mapping.  A ring its producer
        truncated is broken for good: touching the mapping would be SIGBUS.
        (Checked just before each touch; a truncation racing the touch itself
        still kills the daemon: only a sealed memfd would rule that out.)"""
        if a.broken:
            return False
        if a.ring.intact():
            return True
        a.broken = True
        log.warning("client %s (pid %d): ring truncated; ignoring it", a.cid, a.ring.pid)
        self.notify(a.cid, wire.notice("error", "ring truncated, no longer read"))
        return False

    def _read(self, a: Attached, now: float) -> bool:
        """One batch of ``a``'s records into the core; False when none (or broken)."""
        try:
            starts, payloads = a.ring.read_batch(DRAIN_BUDGET)
        except RingCorruptError as exc:
            a.broken = True
            log.warning("client %s (pid %d): %s; ignoring its ring", a.cid, a.ring.pid, exc)
            self.notify(a.cid, wire.notice("error", f"ring corrupt, no longer read: {exc}"))
            return False
        if not payloads:
            return False
        self.core.batch(a.cid, starts, payloads, a.ring.read_pos, now)
        return True

    def drain(self, now: float) -> bool:
        """One batch from every ring; whether any had records."""
        any_records = False
        for a in list(self.attached.values()):
            if not self.usable(a):
                continue
            if self._read(a, now):
                any_records = True
            # Checked every cycle, not only when records came: a half-full ring
            # whose records wait for their encodings must be written the
            # moment those come back, not at the latency deadline.
            if a.ring.head - a.ring.tail > a.ring.capacity // 2:
                self.core.pressure(a.cid)
        return any_records

    def unread(self) -> bool:
        """Ring the bell of every ring, then look once more: whether any has records."""
        usable = [a for a in self.attached.values() if self.usable(a)]
        for a in usable:
            a.ring.set_bell()
        return any(a.ring.head != a.ring.read_pos for a in usable)

    def finish(self, cid: str, now: float) -> None:
        """The client is dead or said bye: drain its ring to the end, then close it."""
        a = self.attached.get(cid)
        if a is not None:
            while self.usable(a) and self._read(a, now):
                pass
        self.core.gone(cid, now)

    def alive(self, cid: str) -> bool:
        """Whether client ``cid``'s process runs (unknown counts as alive)."""
        a = self.attached.get(cid)
        if a is None:
            return False
        try:
            return bool(process_alive(a.ring.pid, a.ring.start_ticks))
        except OSError as exc:  # e.g. EMFILE: unknown is not dead
            log.warning("cannot check pid %d: %s", a.ring.pid, exc)
            return True

    def check_liveness(self, now: float) -> None:
        for cid in list(self.attached):
            c = self.core.clients.get(cid)
            if c is not None and not c.gone and not self.alive(cid):
                self.finish(cid, now)

    # -- actions -------------------------------------------------------------

    def set_tail(self, cid: str, pos: int) -> None:
        a = self.attached.get(cid)
        if a is not None and self.usable(a):
            a.ring.set_tail(pos)

    def ring_bell(self, cid: str) -> None:
        """A notice waits: the client's next call picks it up."""
        a = self.attached.get(cid)
        if a is not None and self.usable(a):
            a.ring.set_bell(NOTICE_BELL)

    def blob_path(self, cid: str, n: int) -> str:
        return f"{self.attached[cid].path}.b{n}"

    def remove_blobs(self, cid: str, blobs: tuple[int, ...] | None) -> None:
        """Remove the given blobs of ``cid``, or (None) every blob of its ring."""
        a = self.attached.get(cid)
        if a is None:
            return
        if blobs is not None:
            for n in blobs:
                unlink(f"{a.path}.b{n}")
            return
        base = os.path.basename(a.path) + ".b"
        try:
            names = os.listdir(self.loc.shm_dir)
        except OSError:
            return
        for name in names:
            if name.startswith(base) and name[len(base) :].isdigit():
                unlink(self.loc.ring_path(name))

    def remove(self, cid: str) -> Attached | None:
        """Forget the client's ring and remove it and its blobs."""
        self.remove_blobs(cid, None)
        a = self.attached.pop(cid, None)
        if a is not None:
            self.heartbeat.discard(a.ring)
            a.ring.close()
            unlink(a.path)
        return a

    def close(self) -> None:
        for a in self.attached.values():
            a.ring.close()

    def describe(self, c: dict[str, Any]) -> None:
        """Add the ring's own words to a client's status entry."""
        a = self.attached.get(c["sid"])
        if a is None:
            return
        # Header words the client writes: bounded, so the reply always packs.
        c["ring_capacity"] = a.ring.capacity
        ok = self.usable(a)
        c["ring_fill"] = max(0, min(a.ring.capacity, a.ring.fill())) if ok else 0
        c["dropped"] = min(a.ring.dropped, 1 << 48) if ok else 0
        c["broken"] = a.broken


def unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        log.warning("cannot remove %s: %s", path, exc)
