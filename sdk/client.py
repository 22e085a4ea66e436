"""The per-process client: one ring and one control socket, shared by every writer.

Theory of operation
-------------------
``get_client()`` makes the client on first use.  It creates the process's ring
in ``/dev/shm``, connects a ZeroMQ DEALER to the daemon's ``ipc://`` socket,
starts a daemon if none runs, and says hello.  It does not wait for the
daemon: records are durable once they are in the ring, and the daemon adopts
the ring (by hello or by scanning ``/dev/shm``) whenever it comes up.

``put()`` is the hot path: pack, copy into the ring, move head.  It touches the
socket only when the daemon asked to be woken (the ring's bell word), so a
busy trainer sends no messages at all.  When the ring is full, ``put()`` rings,
waits up to ``SUMMARYD_FULL_WAIT`` seconds for space (starting a new daemon if
the old one is gone), then drops the record with a counted, rate-limited
warning: logging never raises for a slow or missing daemon and never hangs.

``flush()`` sends the current head position and waits (bounded) for the
daemon's acknowledgement that everything before it is in the event files.
If the daemon dies meanwhile, it starts another and asks that one again.

A daemon that dies (SIGKILL, OOM) is noticed on the logging path through the
heartbeat the daemon keeps in the ring (``beat``, ``ring.py``).  Looking costs
no system call and, between looks, almost nothing: ``put()`` compares the
record's wall time (item 5 of SCALAR, SCALAR_T and TEXT records, which
``add_*`` took anyway) with the wall time due for the next look, every
``BEAT_EVERY`` seconds; array records, whose copy dwarfs a clock read, use
theirs (item 4).  A look that finds the beat nonzero but older than
``BEAT_STALE`` starts a new daemon (``spawn.py``'s lock lets exactly one of
all the clients that notice together start it; none while spawning is off or
systemd restarts its own), and once a daemon beats in the ring again the
client says hello to it.

After ``fork`` the child must not touch the parent's socket, context or ring:
``os.register_at_fork`` forgets the client in the child, and writers notice
the new client on their next call and re-open their runs through it.
"""

from __future__ import annotations

import atexit
import itertools
import os
import sys
import threading
import time
import warnings
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import msgpack

from . import wire
from .arrays import array_parts, bin_header
from .arrays import as_array_record as _as_array_record
from .errors import (
    DaemonNoticeWarning,
    ProtocolError,
    RecordsDroppedWarning,
    SummarydWarning,
)
from .paths import Locations, ensure_runtime_dir, locations, process_start_ticks
from .ring import BEAT_EVERY, BEAT_STALE, NOTICE_BELL, WAKE_BELL, Ring, create_ring, runtime_id
from .spawn import daemon_running, ensure_daemon

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


def _user_stacklevel() -> int:
    """The ``warnings.warn`` stacklevel of the first frame outside summaryd, so
    a warning points at the caller's line (``skip_file_prefixes`` is 3.12+)."""
    level = 1
    frame = sys._getframe(1)
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        frame = frame.f_back  # type: ignore[assignment]
        level += 1
    return level


def _env_float(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        return default


DEFAULT_RING_BYTES = 16 << 20
_NOTICE_TRIES = 400  # calls (5 ms each at most) that look for a notice announced by the bell
# Each bound keeps a call from hanging the trainer when the daemon is gone.
FULL_WAIT = "SUMMARYD_FULL_WAIT"  # seconds put() waits for ring space (default 1)
FLUSH_TIMEOUT = "SUMMARYD_FLUSH_TIMEOUT"  # seconds flush()/close() wait (default 10)
EXIT_FLUSH_TIMEOUT = "SUMMARYD_EXIT_FLUSH_TIMEOUT"  # at interpreter exit (default 5)
_DROP_WARN_INTERVAL = 10.0
_FLUSH_RESEND = 1.0  # seconds between repeats of a waiting flush's hello and request


@dataclass(frozen=True)
class ClientStatistics:
    """A snapshot of this process's client."""

    pid: int
    ring_path: str
    ring_capacity: int
    ring_fill: int
    records_dropped: int
    flushes_timed_out: int


class Client:
    """One process's ring and control socket; thread-safe."""

    def __init__(self, loc: Locations) -> None:
        import zmq

        ensure_runtime_dir(loc.runtime_dir)
        self.loc = loc
        self.pid = os.getpid()
        self.start_ticks = process_start_ticks(self.pid) or 0
        self.session = os.urandom(8).hex()
        self.ring_name = loc.ring_name(self.pid, self.session)
        self.ring_path = loc.ring_path(self.ring_name)
        ring_bytes = int(_env_float("SUMMARYD_RING_BYTES", DEFAULT_RING_BYTES))
        self.ring: Ring = create_ring(
            self.ring_path,
            ring_bytes,
            self.pid,
            self.start_ticks,
            self.session.encode(),
            # Whose ring it is: another daemon sharing the ring directory leaves it alone.
            runtime=runtime_id(loc.runtime_dir),
        )
        self.lock = threading.Lock()  # serialises ring producers
        self.sock_lock = threading.Lock()  # the socket is not thread-safe
        self._packer = msgpack.Packer(use_bin_type=True)
        self._wids = itertools.count(1)
        self._tokens = itertools.count(1)
        self._acked = 0
        self._dropped = 0
        self._drop_warned_at = -1e9
        self._dropped_since_warning = 0
        self._gave_up_at_tail: int | None = None
        self.flushes_timed_out = 0
        self._full_wait = _env_float(FULL_WAIT, 1.0)
        self._notice_tries = 0
        # The daemon watch (module docstring): one thread looks at a time.
        self._watch_lock = threading.Lock()
        self._served = False  # the last look found a daemon beating in the ring
        self._orphaned = False  # it stopped since: hello to whichever daemon beats next
        self._hello_due = False  # that hello could not be sent yet (the socket was busy)
        # Runs opened in s3:// log dirs: the ring's tail only says their records
        # are in the daemon's spool, so flush() must ask (the daemon acknowledges
        # once they are uploaded).
        self.remote_runs = 0
        self._watch_due = 0.0  # wall time of the next look, for put_arrays
        self.daemons_spawned = 0
        self._zmq = zmq
        self.ctx = zmq.Context(io_threads=1)
        self.sock = self.ctx.socket(zmq.DEALER)
        # Unsent control messages must not keep the process alive at exit.
        self.sock.setsockopt(zmq.LINGER, 200)
        self.sock.setsockopt(zmq.SNDHWM, 1000)
        self.sock.connect(loc.endpoint)
        self._ring_put = self.ring.make_put(lambda bell: None)
        self._put_parts = self.ring.make_put_parts(self._bell)
        self._put_bell = self.ring.make_put(self._bell)
        self._blobs = itertools.count(1)
        self.blobs_written = 0
        self.put: Callable[[tuple[Any, ...]], None] = self._make_put()
        ensure_daemon(loc)
        self._hello_to = 0  # the ring's ``daemon`` word when we last said hello
        self._hello()

    # -- records --------------------------------------------------------------

    def new_wid(self) -> int:
        return next(self._wids)

    def _make_put(self) -> Callable[[tuple[Any, ...]], None]:
        pack = self._packer.pack
        lock = self.lock
        ring_put = self.ring.make_put(self._bell)
        when_full = self._put_when_full
        watch = self._watch
        due = 0.0  # wall time of the next look at the daemon's heartbeat

        def put(record: tuple[Any, ...]) -> None:
            """Commit one record to the ring (see the module docstring for full rings)."""
            nonlocal due
            data = pack(record)
            with lock:
                if not ring_put(data):
                    when_full(data)
            # The record's wall time only triggers a look (a user's future walltime
            # makes every call look; a past one, the next record with a real one).
            # try costs nothing in 3.11 unless it raises: CLOSE has no item 5.
            try:
                if record[5] > due:
                    due = watch()
            except (IndexError, TypeError):
                pass

        return put

    def _watch(self) -> float:
        """Look at the daemon's heartbeat (module docstring); the wall time of the next look."""
        now = time.time()
        if not self._watch_lock.acquire(blocking=False):
            return now + BEAT_EVERY  # another thread is looking right now
        try:
            beat = self.ring.beat
            if beat and now * 1000.0 - beat < BEAT_STALE * 1000.0:
                self._served = True
                if self._orphaned:
                    # A daemon took the ring back (by its scan): tell it who we are,
                    # so that notices and flush acknowledgements reach us.
                    self._orphaned = False
                    self._hello_due = True
            else:
                self._orphaned = self._orphaned or self._served or bool(beat)
                self._served = False
                if beat:  # nonzero yet stale: the daemon died (a graceful stop clears it)
                    self._spawn()
            if self._hello_due and self.sock_lock.acquire(blocking=False):
                # Not waiting for the lock: its holder (flush) says hello itself.
                try:
                    self._hello_due = not self._rejoin()
                finally:
                    self.sock_lock.release()
        finally:
            self._watch_lock.release()
        return now + BEAT_EVERY

    def _put_when_full(self, data: bytes) -> None:
        ring = self.ring
        if len(data) + 16 > ring.capacity:
            self._drop(f"a record of {len(data)} bytes exceeds the ring ({ring.capacity} bytes)")
            return
        put = self._ring_put
        self._wait_for_space(lambda: put(data))

    def _wait_for_space(self, try_put: Callable[[], bool]) -> None:
        """Retry ``try_put`` until it fits (bounded), then drop with a warning."""
        ring = self.ring
        if self._gave_up_at_tail is not None and ring.tail == self._gave_up_at_tail:
            # Already waited the full bound and nothing moved since: do not wait again.
            self._drop("the ring is still full")
            return
        self._bell(force=True)
        deadline = time.monotonic() + self._full_wait
        delay = 0.0002
        checked_daemon = False
        while True:
            if try_put():
                self._gave_up_at_tail = None
                return
            now = time.monotonic()
            if now >= deadline:
                self._gave_up_at_tail = ring.tail
                self._drop(f"the ring stayed full for {self._full_wait:g} s")
                return
            if not checked_daemon and now + 0.05 > deadline - self._full_wait / 2:
                # Half way through the wait: if the daemon died, start another.
                checked_daemon = True
                if not daemon_running(self.loc):
                    self._spawn()  # the next look says hello to it
            time.sleep(delay)
            delay = min(delay * 2, 0.01)

    def _spawn(self) -> None:
        """Start a daemon unless one runs (``spawn.py`` decides); never raises:
        logging goes on, and the next look tries again."""
        try:
            if ensure_daemon(self.loc) is not None:
                self.daemons_spawned += 1
                self._hello_due = True  # queued by ZeroMQ until the new daemon binds
        except OSError:
            pass  # e.g. fork failed (EAGAIN, ENOMEM) or the runtime dir is gone

    def _rejoin(self) -> bool:
        """Hello to a new daemon, and a flush nobody waits for, so the records logged
        meanwhile reach the files now (caller holds ``sock_lock``)."""
        tok = next(self._tokens)
        return self._hello() and self._send(wire.flush(tok, self.ring.head))

    def put_arrays(self, fields: tuple[Any, ...], arrays: Sequence[Any]) -> None:
        """Commit one array record (``wire.py``): ``fields`` are its first six
        items (kind .. params), ``arrays`` numpy arrays copied raw, once.

        A record larger than a quarter of the ring travels in a one-off blob
        file, so one big tensor neither waits for the whole ring to drain nor
        is refused; the daemon removes the blob once the record is written.
        """
        specs, parts, nbytes = array_parts(arrays)
        head = self._packer.pack([*fields, specs])
        wt = fields[4]
        if type(wt) is float and wt > self._watch_due:
            self._watch_due = self._watch()
        with self.lock:
            if len(head) + nbytes + 32 > self.ring.capacity // 4:
                blob = self._write_blob(parts, nbytes)
                if blob is not None:
                    data = self._packer.pack([*fields, specs, blob])
                    data = _as_array_record(data)
                    if not self._put_bell(data):
                        self._wait_for_space(lambda: self._ring_put(data))
                return
            head = _as_array_record(head) + bin_header(nbytes)
            put = self._put_parts
            if not put(head, parts):
                self._wait_for_space(lambda: put(head, parts))

    def _write_blob(self, parts: list[memoryview], nbytes: int) -> int | None:
        """Write a blob next to the ring; its number, or None (dropped, warned)."""
        n = next(self._blobs)
        path = f"{self.ring_path}.b{n}"
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        except OSError as exc:
            self._drop(f"cannot create a shared-memory blob {path}: {exc}")
            return None
        try:
            for x in parts:
                view = x
                while len(view):
                    view = view[os.write(fd, view) :]
        except OSError as exc:
            os.close(fd)
            os.unlink(path)
            self._drop(f"cannot write {nbytes} bytes to a shared-memory blob: {exc}")
            return None
        os.close(fd)
        self.blobs_written += 1
        return n

    def _drop(self, why: str) -> None:
        self._dropped += 1
        self._dropped_since_warning += 1
        self.ring.add_dropped()
        now = time.monotonic()
        if now - self._drop_warned_at >= _DROP_WARN_INTERVAL:
            n, self._dropped_since_warning = self._dropped_since_warning, 0
            self._drop_warned_at = now
            warnings.warn(
                f"summaryd dropped {n} record(s) ({self._dropped} in total): {why}; "
                f"is the daemon running? (`summaryd status`)",
                RecordsDroppedWarning,
                stacklevel=_user_stacklevel(),
            )

    # -- control socket -------------------------------------------------------

    def _hello(self) -> bool:
        """Say hello (the one place that builds it); remember to whom the ring belonged."""
        self._hello_to = self.ring.daemon
        return self._send(
            wire.hello(self.pid, self.start_ticks, self.session, self.ring_name, sys.argv)
        )

    def _send(self, message: dict[str, Any]) -> bool:
        try:
            self.sock.send(wire.pack(message), self._zmq.NOBLOCK)
            return True
        except self._zmq.ZMQError:
            return False  # queue full or socket closing: the ring still holds the data

    def _bell(self, bell: int = WAKE_BELL, force: bool = False) -> None:
        # Also the moment to pick up notices (the daemon rings for them too).
        if self.sock_lock.acquire(blocking=force):
            try:
                if bell & WAKE_BELL:
                    self._send(wire.bell())
                if bell & NOTICE_BELL:
                    # The notice was sent just before the bell word; on a busy
                    # machine it may arrive later: look again on the next calls.
                    if self.sock.poll(5):
                        self._notice_tries = 0
                    elif self._notice_tries < _NOTICE_TRIES:
                        self._notice_tries += 1
                        self.ring.set_bell(NOTICE_BELL)
                    else:
                        self._notice_tries = 0
                self._recv_nowait()
            finally:
                self.sock_lock.release()

    def _on_ack(self, msg: dict[str, Any]) -> None:
        self._acked = max(self._acked, msg["tok"])

    def _on_notice(self, msg: dict[str, Any]) -> None:
        warnings.warn(
            f"summaryd daemon: {msg['msg']}", DaemonNoticeWarning, stacklevel=_user_stacklevel()
        )

    # Messages from the daemon, by type; others (welcome, status) need no action here.
    _HANDLERS: dict[str, Callable[[Client, dict[str, Any]], None]] = {
        "ack": _on_ack,
        "notice": _on_notice,
    }

    def _handle(self, msg: dict[str, Any]) -> None:
        handler = self._HANDLERS.get(msg["t"])
        if handler is not None:
            handler(self, msg)

    def _recv_nowait(self) -> None:
        zmq = self._zmq
        while True:
            try:
                raw = self.sock.recv(zmq.NOBLOCK)
            except zmq.Again:
                return
            try:
                self._handle(wire.unpack(raw))
            except ProtocolError:
                continue

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every record committed so far is in its event file.

        If the daemon dies meanwhile, a new one is started and asked again.

        Returns:
            True when the daemon acknowledged; False when ``timeout`` (default
            ``$SUMMARYD_FLUSH_TIMEOUT``, 10 s) passed first, with a warning
            unless the timeout was 0.  The records stay in the ring either way
            and are written when a daemon runs.
        """
        if timeout is None:
            timeout = _env_float(FLUSH_TIMEOUT, 10.0)
        with self.lock:
            pos = self.ring.head
        if self.ring.tail >= pos and not self._hello_due and not self.remote_runs:
            return True  # the tail says every record before ``pos`` is in its file
        zmq = self._zmq
        start = time.monotonic()
        deadline = start + timeout
        next_check = start + BEAT_EVERY
        with self.sock_lock:
            tok = next(self._tokens)
            request = wire.flush(tok, pos)
            # hello first when the ring changed hands (its ``daemon`` word): the new
            # daemon must learn who we are to acknowledge.  Not on every flush: a
            # hello costs a round trip's worth of daemon work (Lightning flushes
            # every logged step).
            if self._hello_due or self.ring.daemon != self._hello_to:
                self._hello_due = False
                self._hello()
            self._send(request)
            sent = start
            while self._acked < tok:
                now = time.monotonic()
                if now >= deadline:
                    self.flushes_timed_out += 1
                    if timeout > 0:
                        spooled = (
                            "; events of s3:// log dirs the daemon spooled wait there "
                            "and are uploaded once the store answers"
                            if self.remote_runs
                            else ""
                        )
                        warnings.warn(
                            f"summaryd: flush() timed out after {timeout:g} s; "
                            f"{self.ring.fill()} bytes of records wait in shared memory "
                            f"and are written once a daemon runs{spooled} (`summaryd status`)",
                            SummarydWarning,
                            stacklevel=_user_stacklevel(),
                        )
                    return False
                if now >= next_check:
                    next_check = now + BEAT_EVERY
                    resend = now - sent >= _FLUSH_RESEND
                    if not daemon_running(self.loc):
                        # Dead (the lock, not the heartbeat, says so at once):
                        # start another unless spawning is off or systemd restarts
                        # its own, and ask whichever daemon comes next.
                        self._spawn()
                        resend = True
                    self._watch()
                    if resend or self._hello_due:
                        # A request the dead daemon took with it is never acknowledged;
                        # a repeat is harmless (the daemon acknowledges a token twice).
                        self._hello_due = False
                        self._hello()
                        self._send(request)
                        sent = now
                wait_ms = max(1, int(1000 * min(deadline, next_check) - 1000 * now))
                if self.sock.poll(wait_ms, zmq.POLLIN):
                    self._recv_nowait()
        return True

    def statistics(self) -> ClientStatistics:
        ring = self.ring
        return ClientStatistics(
            pid=self.pid,
            ring_path=self.ring_path,
            ring_capacity=ring.capacity,
            ring_fill=ring.fill(),
            records_dropped=self._dropped,
            flushes_timed_out=self.flushes_timed_out,
        )

    def close(self) -> None:
        """Say bye and close the socket; the daemon drains and removes the ring.

        If no daemon hears it, the ring stays in shared memory and the next
        daemon writes its records once this process has exited.
        """
        with self.sock_lock:
            self._send(wire.bye())
            self.sock.close(linger=500)
            self.ctx.term()
        self.ring.close()


_client: Client | None = None
_client_lock = threading.Lock()
# Clients inherited through fork: never used or closed in the child (their
# ZeroMQ context belongs to the parent), only kept from the garbage collector.
_inherited: list[Client] = []
# Callbacks run at interpreter exit before the final flush (writers register).
_exit_hooks: weakref.WeakSet[Any] = weakref.WeakSet()


def get_client() -> Client:
    """This process's client, created on first use."""
    c = _client
    if c is not None:
        return c
    return _make_client()


def current_client() -> Client | None:
    """This process's client if it exists, without creating one."""
    return _client


def _make_client() -> Client:
    global _client
    with _client_lock:
        if _client is None:
            _client = Client(locations())
        return _client


def _after_fork_in_child() -> None:
    global _client, _client_lock
    if _client is not None:
        _inherited.append(_client)
    _client = None
    _client_lock = threading.Lock()


def register_exit_flush(writer: Any) -> None:
    """Flush ``writer``'s client at interpreter exit while the writer is open."""
    _exit_hooks.add(writer)


def shutdown_client(timeout: float | None = None) -> None:
    """Flush (bounded) and close this process's client; the next use makes a new one."""
    global _client
    with _client_lock:
        c, _client = _client, None
    if c is None or c.pid != os.getpid():
        return
    try:
        c.flush(timeout)
    finally:
        c.close()


def _at_exit() -> None:
    c = _client
    if c is None or c.pid != os.getpid():
        return
    if any(getattr(w, "_client", None) is c for w in list(_exit_hooks)):
        shutdown_client(_env_float(EXIT_FLUSH_TIMEOUT, 5.0))
    else:
        shutdown_client(0.0)


os.register_at_fork(after_in_child=_after_fork_in_child)
atexit.register(_at_exit)

__all__ = [
    "Client",
    "ClientStatistics",
    "current_client",
    "get_client",
    "register_exit_flush",
    "shutdown_client",
]
