"""The daemon's lifecycle and event loop: the thin shell around ``Core``.

The parts own their state and do the I/O: ``Control`` (the ROUTER socket),
``Rings`` (rings and blobs), ``Output`` (event files), ``StateFile`` (what a
restarted daemon needs), ``EncoderPool`` (encodings and projector files off
the loop).  This module starts them, runs the cycle — receive, drain, feed
encodings back, plan and carry out the core's actions — handles signals and
the watchdog, and shuts down.

Sleeping: after a cycle that drained records the loop polls again after
``ACTIVE_POLL`` seconds, so a busy trainer never has to ring.  After a quiet
cycle it sets every ring's bell word, looks once more, and sleeps until the
next deadline (a write the core has due, a liveness check, a ring scan, idle
exit) or until an encoding finishes; a trainer that commits a record then sees
the bell and sends one message.  Liveness checks bound the sleep while clients
exist, which also covers a bell missed to store reordering between processes.
"""

from __future__ import annotations

import collections
import ctypes
import logging
import os
import signal
import socket as pysocket
import time
from collections.abc import Callable
from typing import Any, ClassVar

import threadpoolctl
import zmq

from summaryd import __version__, wire
from summaryd.paths import Locations, ensure_runtime_dir, try_lock

from . import notify
from .actions import (
    Ack,
    Action,
    Append,
    CheckAlive,
    CloseFile,
    Encode,
    Notice,
    OpenFile,
    Project,
    PurgeFiles,
    RemoveBlobs,
    RemoveRing,
    ScanRings,
    SetTail,
    Upload,
)
from .control import Control
from .core import DEFAULT_MAX_LATENCY, Core
from .heartbeat import Heartbeat
from .jobs import EncoderPool
from .output import Output
from .remote import Remote
from .rings import Rings
from .statefile import StateFile
from .waker import Waker

log = logging.getLogger("summaryd")

ACTIVE_POLL = 0.02  # seconds between drains while records flow
LIVENESS_EVERY = 0.5  # seconds between checks that clients' processes live
SCAN_EVERY = 2.0  # seconds between scans of the shm directory for orphaned rings
SHUTDOWN_LIMIT = 30.0  # seconds a graceful shutdown may take
RATE_WINDOW = 5.0  # seconds over which `status` reports records/s
ENCODE_BACKLOG = 32  # array records encoding at most before the rings wait
TICK_ROUNDS = 4  # plan/settle rounds per cycle while carrying out actions queues more


def _keep_freed_memory() -> None:
    """Let glibc keep freed blocks of up to 64 MiB instead of unmapping them.

    Every image or histogram record is a few MB copied out of a ring, encoded
    and freed; by default glibc serves such blocks with mmap and gives them
    back at once, so the next record page-faults (and zeroes) them again:
    10-17 % of the daemon's CPU under a media load.  Freed memory above 256 MiB
    is still returned to the system.  No effect off glibc.
    """
    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return
    m_trim_threshold, m_mmap_threshold = -1, -3  # glibc's <malloc.h>
    mallopt(m_mmap_threshold, 64 << 20)
    mallopt(m_trim_threshold, 256 << 20)


class AlreadyRunning(Exception):
    """Another daemon holds this user's lock."""


class Daemon:
    # A core action's class -> the method that carries it out (filled in below the class).
    _ACTIONS: ClassVar[dict[type, Callable[[Daemon, Any, float], None]]]
    _REMOTE_EVENTS: ClassVar[dict[str, Callable[[Core, int, Any, float], None]]]

    def __init__(
        self,
        loc: Locations,
        *,
        idle_exit: float | None = None,
        max_latency: float = DEFAULT_MAX_LATENCY,
        lock_fd: int | None = None,
        encoders: int | None = None,
    ) -> None:
        self.loc = loc
        self.encoders = encoders  # worker processes (None: the pool's default)
        self.idle_exit = idle_exit
        self.lock_fd = lock_fd
        self.host = pysocket.gethostname()
        self.pid = os.getpid()
        self.started = time.time()
        self.stopping = False
        self._signals = 0
        self.core = Core(max_latency=max_latency)
        self.state = StateFile(loc.state_path)
        # Under systemd (NOTIFY_SOCKET): clients leave restarting us to the unit.
        self.heartbeat = Heartbeat(loc, supervised=bool(os.environ.get("NOTIFY_SOCKET")))
        self.rings = Rings(loc, self.core, self.heartbeat, self.state, self._notify, self.pid)
        self.control = Control(loc, self.core, self.rings, self.status, self._stop, self.pid)
        # s3:// runs: spools and the uploader thread; it wakes the loop with results.
        self.remote = Remote(self._wake)
        self.output = Output(self.core, self.host, self.pid, self._save_state, self.remote)
        # (monotonic time, records written so far), for the rate in `status`
        self._samples: collections.deque[tuple[float, int]] = collections.deque(maxlen=20)
        self._samples.append((time.monotonic(), 0))

    # -- life ----------------------------------------------------------------

    def _lock(self) -> None:
        ensure_runtime_dir(self.loc.runtime_dir)
        if self.lock_fd is None:
            fd = try_lock(self.loc.lock_path)
            if fd is None:
                raise AlreadyRunning(self.loc.runtime_dir)
            self.lock_fd = fd
        else:
            os.set_inheritable(self.lock_fd, False)
        tmp = self.loc.pid_path + ".tmp"
        with open(tmp, "w") as f:
            f.write(f"{self.pid}\n")
        os.replace(tmp, self.loc.pid_path)

    def serve(self) -> int:
        """Run until stopped; returns the exit code."""
        self._lock()
        # One BLAS/OpenMP thread per encoder: the encoders already run in a pool,
        # and BLAS threads spinning on a busy machine tripled a histogram's CPU
        # (20 ms -> 7 ms for 1e6 values with one thread).
        threadpoolctl.threadpool_limits(1)
        _keep_freed_memory()
        self.ctx = zmq.Context(io_threads=1)
        self.rings.saved = self.state.recover()
        sock = self.control.bind(self.ctx)
        self._waker = Waker()
        self.pool = EncoderPool(self.encoders, wake=self._wake)
        old_fd = signal.set_wakeup_fd(self._waker.w)
        old = {s: signal.signal(s, self._on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
        # A file-size limit must fail the write (EFBIG), not kill the daemon.
        old[signal.SIGXFSZ] = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        self.poller = zmq.Poller()
        self.poller.register(sock, zmq.POLLIN)
        self.poller.register(self._waker.r, zmq.POLLIN)
        try:
            self.heartbeat.start()
            # Spools an earlier daemon left (SIGKILL): uploaded from now on.
            if self.remote.adopt():
                log.info("adopted %d spool(s) with events to upload", len(self.remote.by_key))
            self.remote.start()
            self.rings.start(time.monotonic())
            log.info(
                "summaryd %s serving on %s (pid %d, %d ring(s) adopted)",
                __version__,
                self.loc.endpoint,
                self.pid,
                len(self.rings.attached),
            )
            notify.send("READY=1", f"STATUS=serving on {self.loc.endpoint}", f"MAINPID={self.pid}")
            self._run()
            log.info("stopping: draining %d ring(s)", len(self.rings.attached))
            notify.send("STOPPING=1")
            self._shutdown()
        finally:
            for s, h in old.items():
                signal.signal(s, h)
            signal.set_wakeup_fd(old_fd)
            # No encoder may write to the wake pipe once its descriptor is reused.
            self.pool.close()
            self._waker.close()
            sock.close(linger=0)
            self.ctx.term()
            for path in (self.loc.socket_path, self.loc.pid_path):
                try:
                    os.unlink(path)
                except FileNotFoundError:
                    pass
        log.info("stopped")
        return 0

    def _on_signal(self, signum: int, frame: Any) -> None:
        self._signals += 1
        if self._signals > 1 and signum == signal.SIGINT:
            log.warning("second SIGINT: exiting without draining")
            os._exit(130)
        self.stopping = True

    def _stop(self) -> None:
        self.stopping = True

    def _wake(self) -> None:
        self._waker.wake()

    def _run(self) -> None:
        now = time.monotonic()
        next_live = now + LIVENESS_EVERY
        next_scan = now + SCAN_EVERY
        idle_since: float | None = None
        watchdog = notify.watchdog_interval()
        next_dog = now
        timeout = 0.0
        while not self.stopping:
            events = dict(self.poller.poll(int(timeout * 1000)))
            now = time.monotonic()
            if self._waker.r in events:
                self._waker.clear()
            if self.control.sock in events:
                self.control.receive(now)
            # Encodings far behind: leave the records in the rings (their
            # producers wait for space, bounded) rather than hold copies of
            # them in the heap; a finished encoding wakes the loop.
            backlogged = self.core.jobs_outstanding >= ENCODE_BACKLOG
            drained = False if backlogged else self.rings.drain(now)
            if now >= next_live:
                next_live = now + LIVENESS_EVERY
                self.rings.check_liveness(now)
                self.output.retry_purges()
                self._samples.append((now, self.core.records_total))
            if now >= next_scan:
                next_scan = now + SCAN_EVERY
                self.rings.scan(now)
            self._tick(now)
            if watchdog and now >= next_dog:
                notify.send("WATCHDOG=1")
                next_dog = now + watchdog
            if self.core.clients or self.core.runs or self.core.jobs_outstanding:
                idle_since = None
            elif idle_since is None:
                idle_since = now
            elif self.idle_exit is not None and now - idle_since >= self.idle_exit:
                log.info("idle for %.0f s with no clients: exiting", now - idle_since)
                return
            if drained:
                timeout = ACTIVE_POLL
                continue
            if self.core.queued:  # its own actions made more work due
                timeout = 0.0
                continue
            if not backlogged and self.rings.unread():
                timeout = 0.0
                continue
            deadlines = [next_scan]
            if self.core.clients:
                deadlines.append(next_live)
            due = self.core.next_deadline()
            if due is not None:
                deadlines.append(due)
            if watchdog:
                deadlines.append(next_dog)
            if idle_since is not None and self.idle_exit is not None:
                deadlines.append(idle_since + self.idle_exit)
            timeout = max(0.0, min(deadlines) - time.monotonic())

    def _shutdown(self) -> None:
        # Rings nobody announced yet (a trainer killed before its hello) count too.
        self.rings.scan(time.monotonic())
        deadline = time.monotonic() + SHUTDOWN_LIMIT
        while time.monotonic() < deadline and self.rings.drain(time.monotonic()):
            pass
        now = time.monotonic()
        self.control.receive(now)  # last flush requests, so their acknowledgements go out
        self.rings.check_liveness(now)  # dead clients: written, closed, rings removed
        self._tick(now)
        self.core.end_all(now)
        self._tick(now)
        # Runs close once their encodings are back and written.
        while self.core.jobs_outstanding and time.monotonic() < deadline:
            self.pool.wait(max(0.0, deadline - time.monotonic()))
            self._tick(time.monotonic())
        self._tick(time.monotonic())  # the closes that the last writes allow
        self.output.close()
        # The last uploads (bounded); what is left waits in the spools for the next daemon.
        self.remote.close()
        self.heartbeat.stop()  # before unmapping: it clears each ring's beat
        self.rings.close()
        self.pool.close()
        self._save_state(None)
        self.state.close()

    # -- actions -------------------------------------------------------------

    def _tick(self, now: float) -> None:
        """Encodings back in; writes first; tails and acknowledgements only once
        the writes are done, and only once the state a restarted daemon needs is
        saved.  Carrying out actions can feed the core (a dead client found by
        ``CheckAlive``, a scan's records): their actions go out in this cycle too."""
        for job, result in self.pool.results():
            self.core.encoded(job, result, now)
        for kind, run_id, value in self.remote.results():
            self._REMOTE_EVENTS[kind](self.core, run_id, value, now)
        for _ in range(TICK_ROUNDS):
            self._execute(self.core.plan_writes(now), now)
            settled = self.core.settle(now)
            if self.state.dirty or any(isinstance(a, SetTail) for a in settled):
                self._save_state(None)
            self._execute(settled, now)
            if not self.core.queued:
                break

    def _save_state(self, intent: dict[str, Any] | None) -> None:
        self.state.save(self.core.snapshot(), intent)

    def _execute(self, actions: list[Action], now: float) -> None:
        debug = log.isEnabledFor(logging.DEBUG)
        for act in actions:
            if debug and not isinstance(act, (SetTail, Append)):
                log.debug("action %r", act)
            self._ACTIONS[type(act)](self, act, now)

    def _notify(self, cid: str, msg: dict[str, Any]) -> None:
        self.control.notify(cid, msg)

    def _append(self, act: Append, now: float) -> None:
        self.output.append(act, now)

    def _set_tail(self, act: SetTail, now: float) -> None:
        self.rings.set_tail(act.cid, act.pos)

    def _ack(self, act: Ack, now: float) -> None:
        self.control.notify(act.cid, wire.ack(act.tok))

    def _notice(self, act: Notice, now: float) -> None:
        self.control.notify(act.cid, wire.notice(act.level, act.msg))

    def _open_file(self, act: OpenFile, now: float) -> None:
        self.output.open_file(act)

    def _purge_files(self, act: PurgeFiles, now: float) -> None:
        self.output.purge(act)

    def _close_file(self, act: CloseFile, now: float) -> None:
        self.output.close_file(act)

    def _remove_blobs(self, act: RemoveBlobs, now: float) -> None:
        self.rings.remove_blobs(act.cid, act.blobs)

    def _remove_ring(self, act: RemoveRing, now: float) -> None:
        a = self.rings.remove(act.cid)
        if a is not None:
            self.control.forget(a.identity)

    def _blob(self, cid: str, n: int | None) -> str | None:
        return None if n is None else self.rings.blob_path(cid, n)

    def _encode(self, act: Encode, now: float) -> None:
        self.pool.encode(act.job, act.rec, act.data, self._blob(act.cid, act.blob))

    def _project(self, act: Project, now: float) -> None:
        rec = act.rec
        blob = self._blob(act.cid, act.blob)
        self.pool.project(act.job, act.log_dir, rec[5], rec[6], act.data, blob)

    def _check_alive(self, act: CheckAlive, now: float) -> None:
        if self.rings.alive(act.cid):
            self.core.alive(act.cid, now)
        else:
            self.rings.finish(act.cid, now)

    def _upload(self, act: Upload, now: float) -> None:
        self.remote.upload(act.run_id)

    def _scan_rings(self, act: ScanRings, now: float) -> None:
        # A trainer resumes: the earlier life's rings (a trainer killed before
        # its hello arrived) must be adopted and drained first.
        self.rings.scan(now)
        self.rings.drain(now)
        self.rings.check_liveness(now)
        self.core.scanned(now)

    # -- status --------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        st = self.core.status()
        for c in st["clients"]:
            self.rings.describe(c)
        for r in st["runs"]:
            r["file"] = self.output.path_of(r["run_id"])
            s3 = self.remote.status_of(r["run_id"])
            if s3 is not None:
                r["s3"] = s3
        now = time.monotonic()
        window = [(t, n) for t, n in self._samples if now - t <= RATE_WINDOW] or [self._samples[-1]]
        rate = 0.0
        if window and now - window[0][0] > 0:
            rate = (self.core.records_total - window[0][1]) / (now - window[0][0])
        reply: dict[str, Any] = wire.status_reply(
            daemon={
                "pid": self.pid,
                "version": __version__,
                "uptime": time.time() - self.started,
                "socket": self.loc.socket_path,
                "runtime_dir": self.loc.runtime_dir,
                "ring_prefix": self.loc.ring_prefix,
                "idle_exit": self.idle_exit,
                "file_errors": self.output.file_errors,
                "bad_messages": self.control.bad_messages,
                "scans": self.rings.scans,
                "encoding": st["encoding"],
                "encoders": self.pool.worker_pids(),
                # Every spool, also those of runs that ended (their backlog).
                "spools": self.remote.status(),
            },
            clients=st["clients"],
            runs=st["runs"],
            totals={
                "records": st["records"],
                "bytes": st["bytes"],
                "malformed": st["malformed"],
                "dropped": sum(c.get("dropped", 0) for c in st["clients"]),
                "records_per_second": rate,
                "rate_window": RATE_WINDOW,
            },
        )
        return reply


Daemon._ACTIONS = {
    Append: Daemon._append,
    SetTail: Daemon._set_tail,
    Ack: Daemon._ack,
    Notice: Daemon._notice,
    OpenFile: Daemon._open_file,
    PurgeFiles: Daemon._purge_files,
    CloseFile: Daemon._close_file,
    RemoveBlobs: Daemon._remove_blobs,
    RemoveRing: Daemon._remove_ring,
    Encode: Daemon._encode,
    Project: Daemon._project,
    CheckAlive: Daemon._check_alive,
    ScanRings: Daemon._scan_rings,
    Upload: Daemon._upload,
}
# What the uploader thread reports (``remote.py``) -> the core's input for it.
Daemon._REMOTE_EVENTS = {
    "uploaded": Core.uploaded,
    "error": Core.upload_failed,
    "backlog": Core.backlog,
}
