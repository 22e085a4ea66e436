"""The daemon's heartbeat in every ring it serves (``beat``, ``summaryd.ring``).

Clients read the word on their logging path to learn, without a system call,
that their daemon died; they then start a new one (``sdk/client.py``).

A small dedicated thread writes it, not the event loop: the loop can spend
longer than ``BEAT_STALE`` in one step (a purge rewriting a large event file,
a write of many megabytes to a slow disk, draining a dead client's full ring
in ``_finish``), and a heartbeat that lapses while the daemon works would make
every client believe it dead.  The thread only needs the GIL for a few
microseconds every ``BEAT_EVERY`` seconds, which CPython's switch interval
(5 ms) grants even while encoders run.  The price: a loop that hangs (not
dies) keeps beating; the systemd watchdog, fed by the loop, covers that.

Under systemd the thread also keeps ``supervised`` in the runtime dir fresh
(``sdk/spawn.py``): a client then leaves restarting a killed daemon to the
unit instead of spawning a second, detached one that the unit would stop.
"""

from __future__ import annotations

import os
import threading
import time

from summaryd.paths import Locations
from summaryd.ring import BEAT_EVERY, Ring
from summaryd.spawn import SUPERVISED_NAME


def now_ms() -> int:
    return int(time.time() * 1000)


class Heartbeat:
    """Beats every registered ring until stopped; thread-safe registration."""

    def __init__(self, loc: Locations, *, supervised: bool) -> None:
        self._rings: set[Ring] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._marker = os.path.join(loc.runtime_dir, SUPERVISED_NAME) if supervised else None
        self._thread = threading.Thread(target=self._run, name="heartbeat", daemon=True)

    def start(self) -> None:
        self._touch_marker()
        self._thread.start()

    def add(self, ring: Ring) -> None:
        """Serve ``ring``: beat it now (its client sees it adopted at once) and from now on."""
        with self._lock:
            self._rings.add(ring)
            ring.set_beat(now_ms())

    def discard(self, ring: Ring) -> None:
        """Stop beating ``ring``; call before unmapping it (the thread must not touch it after)."""
        with self._lock:
            self._rings.discard(ring)

    def stop(self) -> None:
        """A graceful stop: clear every ring's beat, so that its client knows the
        daemon left on purpose (``summaryd stop``) rather than died, and does not
        start another; the next daemon, or the client's next flush, takes over."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        with self._lock:
            for ring in self._rings:
                if ring.intact():
                    ring.set_beat(0)
            self._rings.clear()
        if self._marker is not None:
            try:
                os.unlink(self._marker)
            except FileNotFoundError:
                pass

    def _touch_marker(self) -> None:
        if self._marker is None:
            return
        try:
            with open(self._marker, "a"):
                pass
            os.utime(self._marker)
        except OSError:
            # Clients then spawn a daemon during a restart, which the unit's
            # ExecStartPre stops: slower, not wrong.
            pass

    def _run(self) -> None:
        n = 0
        while not self._stop.wait(BEAT_EVERY):
            ms = now_ms()
            with self._lock:
                for ring in self._rings:
                    # A ring its producer truncated would be SIGBUS to touch.
                    if ring.intact():
                        ring.set_beat(ms)
            n += 1
            if n % 4 == 0:
                self._touch_marker()
