"""The daemon's event loop: the thin shell around ``Core``.

It owns the ROUTER socket, the mapped rings and the open files, and does
only I/O: receive control messages, drain rings, check that clients' processes
live, carry out the core's actions, and sleep until something is due.

Sleeping: after a cycle that drained records the loop polls again after
``ACTIVE_POLL`` seconds, so a busy trainer never has to ring.  After a quiet
cycle it sets every ring's bell word, looks once more, and sleeps until the
next deadline (a write the core has due, a liveness check, a ring scan, idle
exit); a trainer that commits a record then sees the bell and sends one
message.  Liveness checks bound the sleep while clients exist, which also
covers a bell missed to store reordering between the two processes.
"""

from __future__ import annotations

import collections
import ctypes
import fcntl
import logging
import os
import re
import resource
import signal
import socket as pysocket
import stat
import struct
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, ClassVar

import msgpack
import threadpoolctl
import zmq

from summaryd import __version__, wire
from summaryd.paths import Locations, ensure_runtime_dir, process_alive
from summaryd.ring import (
    NOTICE_BELL,
    Ring,
    RingBusyError,
    RingCorruptError,
    open_ring,
    ring_owner,
    runtime_id,
)

from . import encode, notify, projector
from .core import (
    DEFAULT_MAX_LATENCY,
    Ack,
    Action,
    Append,
    CloseFile,
    Core,
    Notice,
    OpenFile,
    PurgeFiles,
    RemoveBlobs,
    RemoveRing,
    SetTail,
)
from .files import EventFile, purge_file
from .heartbeat import Heartbeat

log = logging.getLogger("summaryd")

ACTIVE_POLL = 0.02  # seconds between drains while records flow
LIVENESS_EVERY = 0.5  # seconds between checks that clients' processes live
SCAN_EVERY = 2.0  # seconds between scans of the shm directory for orphaned rings
DRAIN_BUDGET = 1 << 20  # bytes per ring per cycle: control messages wait at most ~0.1 s
SHUTDOWN_LIMIT = 30.0  # seconds a graceful shutdown may take
RATE_WINDOW = 5.0  # seconds over which `status` reports records/s
RECEIVE_BUDGET = 256  # control messages per cycle, so a flood of them cannot starve the rings
MAX_ARGV = 32  # argv items kept per client (status shows them) ...
MAX_ARG_CHARS = 256  # ... and characters per item
_SID = re.compile(r"[0-9a-f]{16}")  # a client's session id: 8 random bytes in hex
STATE_VERSION = 1


# A blob next to a ring: ``<prefix>.<pid>.<session>.b<n>`` (``wire.py``).
_BLOB = re.compile(r"^(.+\.\d+\.[0-9a-f]{16})\.b\d+$")
MAX_BLOB = 1 << 32  # bytes: a 4 GiB tensor is more than anyone logs


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


def _argv(argv: list[Any]) -> list[str]:
    """What a client's hello says its argv is, bounded (status shows it to everyone);
    never ``str()`` of an arbitrary value (a deeply nested one raises RecursionError)."""
    return [
        (x if isinstance(x, str) else type(x).__name__)[:MAX_ARG_CHARS] for x in argv[:MAX_ARGV]
    ]


class AlreadyRunning(Exception):
    """Another daemon holds this user's lock."""


@dataclass(eq=False)
class Attached:
    """A client's ring as the loop sees it."""

    cid: str
    ring: Ring
    path: str
    identity: bytes | None = None
    broken: bool = False
    history: list[tuple[float, int]] = field(default_factory=list)


class Daemon:
    # Dispatch by table (filled in below the class): a control message's type ->
    # its handler ("bell" has none: it only wakes the loop; unknown types are
    # ignored), and a core action's class -> the method that carries it out.
    _MESSAGES: ClassVar[dict[str, Callable[[Daemon, bytes, dict[str, Any], float], None]]]
    _ACTIONS: ClassVar[dict[type, Callable[[Daemon, Any, float], None]]]

    def __init__(
        self,
        loc: Locations,
        *,
        idle_exit: float | None = None,
        max_latency: float = DEFAULT_MAX_LATENCY,
        lock_fd: int | None = None,
    ) -> None:
        self.loc = loc
        self.idle_exit = idle_exit
        # Encoding threads for images, histograms, ... (numpy, zlib and Pillow
        # release the GIL): the daemon keeps up with media on every core.
        self._serial = ThreadPoolExecutor(max_workers=1, thread_name_prefix="files")
        self._pool = ThreadPoolExecutor(
            max_workers=min(4, max(2, os.cpu_count() or 2)), thread_name_prefix="encode"
        )
        self.core = Core(
            max_latency=max_latency,
            alive=process_alive,
            read_blob=self._read_blob,
            submit=self._submit,
            project=self._project,
            submit_in_order=self._submit_in_order,
        )
        self.lock_fd = lock_fd
        # Under systemd (NOTIFY_SOCKET): clients leave restarting us to the unit.
        self._heartbeat = Heartbeat(loc, supervised=bool(os.environ.get("NOTIFY_SOCKET")))
        self.attached: dict[str, Attached] = {}
        self.by_identity: dict[bytes, str] = {}
        self.files: dict[int, EventFile | None] = {}
        self.pending_opens: dict[int, OpenFile] = {}
        # Runs whose event file has an open descriptor, least recently written first.
        self._open_fds: collections.OrderedDict[int, None] = collections.OrderedDict()
        self._state_fd: int | None = None
        self._dirty = False
        self._saved: dict[str, Any] = {}
        self.file_errors = 0
        self.bad_messages = 0
        # Scans of the ring directory completed; status shows it, so a test can
        # wait for the scan after an event instead of sleeping through a period.
        self.scans = 0
        self.host = pysocket.gethostname()
        self.pid = os.getpid()
        self.started = time.time()
        self.stopping = False
        self._file_n = 0
        self._signals = 0
        self._rejected: set[str] = set()
        # (monotonic time, records written so far), for the rate in `status`
        self._samples: collections.deque[tuple[float, int]] = collections.deque(maxlen=20)
        self._samples.append((time.monotonic(), 0))

    # -- life ----------------------------------------------------------------

    def _lock(self) -> None:
        ensure_runtime_dir(self.loc.runtime_dir)
        if self.lock_fd is None:
            fd = os.open(self.loc.lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise AlreadyRunning(self.loc.runtime_dir) from None
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
        self.sock = self.ctx.socket(zmq.ROUTER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.ROUTER_MANDATORY, 0)
        # A larger message is refused by libzmq (the peer is disconnected) before it
        # is buffered: wire.unpack would refuse it anyway, after holding it twice.
        self.sock.setsockopt(zmq.MAXMSGSIZE, wire.MAX_MESSAGE_BYTES)
        try:
            os.unlink(self.loc.socket_path)  # stale: we hold the lock, so no daemon owns it
        except FileNotFoundError:
            pass
        self._saved = self._recover()
        self.runtime = runtime_id(self.loc.runtime_dir)
        self.sock.bind(self.loc.endpoint)
        os.chmod(self.loc.socket_path, 0o600)
        rfd, wfd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._wake_r = rfd
        self._wake_w = wfd
        self._woken = False
        old_fd = signal.set_wakeup_fd(wfd)
        old = {s: signal.signal(s, self._on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
        # A file-size limit must fail the write (EFBIG), not kill the daemon.
        old[signal.SIGXFSZ] = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        self.poller = zmq.Poller()
        self.poller.register(self.sock, zmq.POLLIN)
        self.poller.register(rfd, zmq.POLLIN)
        try:
            self._heartbeat.start()
            self._scan(time.monotonic())
            log.info(
                "summaryd %s serving on %s (pid %d, %d ring(s) adopted)",
                __version__,
                self.loc.endpoint,
                self.pid,
                len(self.attached),
            )
            notify.send("READY=1", f"STATUS=serving on {self.loc.endpoint}", f"MAINPID={self.pid}")
            self._run()
            log.info("stopping: draining %d ring(s)", len(self.attached))
            notify.send("STOPPING=1")
            self._shutdown()
        finally:
            for s, h in old.items():
                signal.signal(s, h)
            signal.set_wakeup_fd(old_fd)
            # No encoder may write to the wake pipe once its descriptor is reused.
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._serial.shutdown(wait=True, cancel_futures=True)
            os.close(rfd)
            os.close(wfd)
            self.sock.close(linger=0)
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
            if self._wake_r in events:
                self._woken = False
                try:
                    while os.read(self._wake_r, 512):
                        pass
                except BlockingIOError:
                    pass
            if self.sock in events:
                self._receive(now)
            drained = self._drain(now)
            if self.core.scan_requested:
                # A trainer resumes: the earlier life's rings (a trainer killed
                # before its hello arrived) must be adopted and drained first.
                self.core.scan_requested = False
                self._scan(now)
                self._drain(now)
                self._check_liveness(now)
            if now >= next_live:
                next_live = now + LIVENESS_EVERY
                self._check_liveness(now)
                self._samples.append((now, self.core.records_total))
            if now >= next_scan:
                next_scan = now + SCAN_EVERY
                self._scan(now)
            self._tick(now)
            if watchdog and now >= next_dog:
                notify.send("WATCHDOG=1")
                next_dog = now + watchdog
            if self.core.clients or self.core.runs:
                idle_since = None
            elif idle_since is None:
                idle_since = now
            elif self.idle_exit is not None and now - idle_since >= self.idle_exit:
                log.info("idle for %.0f s with no clients: exiting", now - idle_since)
                return
            if drained:
                timeout = ACTIVE_POLL
                continue
            for a in self.attached.values():
                if self._usable(a):
                    a.ring.set_bell()
            if any(
                a.ring.head != a.ring.read_pos for a in self.attached.values() if self._usable(a)
            ):
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
        self._scan(time.monotonic())
        deadline = time.monotonic() + SHUTDOWN_LIMIT
        while time.monotonic() < deadline and self._drain(time.monotonic()):
            pass
        now = time.monotonic()
        self._receive(now)  # last flush requests, so their acknowledgements go out
        self._check_liveness(now)  # dead clients: written, closed, rings removed
        self._tick(now)
        self._execute(self.core.close_all(now), now)
        for f in self.files.values():
            if f is not None:
                f.close()
        self.files.clear()
        self._heartbeat.stop()  # before unmapping: it clears each ring's beat
        for a in self.attached.values():
            a.ring.close()
        self._pool.shutdown(wait=True)
        self._serial.shutdown(wait=True)
        self._save_state(None)
        if self._state_fd is not None:
            os.close(self._state_fd)

    # -- control messages ----------------------------------------------------

    def _receive(self, now: float) -> None:
        # At most RECEIVE_BUDGET per cycle: the poll is level-triggered, so the
        # rest are read next cycle, after the rings are drained and acks sent.
        for _ in range(RECEIVE_BUDGET):
            try:
                frames = self.sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            if len(frames) != 2:
                continue
            identity, raw = frames
            try:
                msg = wire.unpack(raw)
            except wire.ProtocolError as exc:
                self._reply(identity, wire.notice("error", str(exc)))
                continue
            try:
                self._dispatch(identity, msg, now)
            except Exception:  # a message must never take the daemon down
                self.bad_messages += 1
                log.exception("message %r from %r failed", msg.get("t"), identity)

    def _dispatch(self, identity: bytes, msg: dict[str, Any], now: float) -> None:
        handler = self._MESSAGES.get(msg["t"])
        if handler is not None:
            handler(self, identity, msg, now)

    def _on_flush(self, identity: bytes, msg: dict[str, Any], now: float) -> None:
        cid = self.by_identity.get(identity)
        if cid is not None:  # an unknown sender says hello first (the client's rule)
            self.core.flush(cid, msg["tok"], msg["pos"])

    def _on_status(self, identity: bytes, msg: dict[str, Any], now: float) -> None:
        self._reply(identity, self.status())

    def _on_bye(self, identity: bytes, msg: dict[str, Any], now: float) -> None:
        cid = self.by_identity.get(identity)
        if cid is not None:
            self._finish(cid, now)

    def _on_stop(self, identity: bytes, msg: dict[str, Any], now: float) -> None:
        self._reply(identity, wire.stopping())
        self.stopping = True

    def _reply(self, identity: bytes, msg: dict[str, Any]) -> None:
        try:
            self.sock.send_multipart([identity, wire.pack(msg)], zmq.NOBLOCK)
        except zmq.ZMQError:
            pass  # a peer that does not read its socket loses its replies, nothing else

    def _hello(self, identity: bytes, msg: dict[str, Any], now: float) -> None:
        if msg["v"] != wire.PROTOCOL_VERSION:
            self._reply(
                identity,
                wire.notice(
                    "error",
                    f"protocol version {msg['v']} is not supported; this daemon speaks "
                    f"{wire.PROTOCOL_VERSION} (summaryd {__version__}); restart it",
                ),
            )
            return
        sid = msg["sid"]
        if not _SID.fullmatch(sid) or not 0 < msg["pid"] < 1 << 32:
            self._reply(identity, wire.notice("error", "malformed hello"))
            return
        known = self.attached.get(sid)
        if known is not None and (
            msg["pid"] != known.ring.pid or msg["ring"] != os.path.basename(known.path)
        ):
            # Another process naming a session it does not own: never rebind it.
            self._reply(identity, wire.notice("error", f"session {sid} belongs to another ring"))
            return
        if sid not in self.attached:
            name = self.loc.ring_name(msg["pid"], sid)
            if msg["ring"] != name or not self._attach(name, now, argv=msg["argv"]):
                self._reply(identity, wire.notice("error", f"ring {msg['ring']!r} refused"))
                return
        a = self.attached[sid]
        self.core.hello(sid, msg["pid"], msg["start"], msg["ring"], now, argv=_argv(msg["argv"]))
        if a.identity is not None and a.identity != identity:
            self.by_identity.pop(a.identity, None)
        a.identity = identity
        self.by_identity[identity] = sid
        self._reply(identity, wire.welcome(self.pid))

    # -- rings ---------------------------------------------------------------

    def _attach(self, name: str, now: float, argv: list[Any] | None = None) -> bool:
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
        self._heartbeat.add(ring)
        saved = self._saved.pop(sid, None)
        if saved is not None and (saved["pid"], saved["start"]) != (ring.pid, ring.start_ticks):
            saved = None
        tail = ring.tail
        if saved is not None and saved["tail"] > tail:
            # Saved just before the earlier daemon could publish it.
            tail = saved["tail"]
            ring.set_tail(tail)
        ring.read_pos = tail
        self.core.hello(
            sid,
            ring.pid,
            ring.start_ticks,
            name,
            now,
            tail=tail,
            argv=_argv(argv or []),
        )
        if saved is not None:
            self.core.restore(sid, saved, now)
            self._dirty = True
        return True

    def _scan(self, now: float) -> None:
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
                    self._unlink(self.loc.ring_path(name))
            elif (
                self.loc.is_ring_name(name)
                and self.loc.ring_path(name) not in known
                and name not in self._rejected
                and self._ours_to_adopt(name)
            ):
                self._attach(name, now)
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

    def _submit(self, fn: Callable[[Any], Any], arg: Any) -> Future[Any]:
        """Start an encoding job; its end wakes the loop to write the result."""
        fut = self._pool.submit(fn, arg)
        fut.add_done_callback(self._wake)
        return fut

    def _submit_in_order(self, fn: Callable[[Any], Any], arg: Any) -> Future[Any]:
        """As ``_submit``, on one thread: jobs run one at a time, in submission order."""
        fut = self._serial.submit(fn, arg)
        fut.add_done_callback(self._wake)
        return fut

    def _wake(self, _fut: Future[Any]) -> None:
        # One byte per wake-up, not per finished job: the loop clears the flag
        # when it reads the pipe (a race only costs one extra byte).
        if self._woken:
            return
        self._woken = True
        try:
            os.write(self._wake_w, b"\0")
        except (BlockingIOError, OSError):
            pass  # the pipe is full (the loop wakes anyway) or closed at exit

    @staticmethod
    def _unlink(path: str) -> None:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        except OSError as exc:
            log.warning("cannot remove %s: %s", path, exc)

    def _read_blob(self, cid: str, n: int) -> memoryview:
        """The bytes of client ``cid``'s blob ``n`` (read-only), for the core."""
        a = self.attached[cid]
        # O_NONBLOCK: a FIFO planted under a blob's name must not hang the loop.
        flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
        fd = os.open(f"{a.path}.b{n}", flags)
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode) or st.st_uid != os.getuid():
                raise OSError(f"blob {n} is not a regular file of this user")
            if st.st_size > MAX_BLOB:
                raise OSError(f"blob {n} of {st.st_size} bytes exceeds {MAX_BLOB}")
            if st.st_blocks * 512 < st.st_size:
                # The SDK writes every byte; a sparse file would make the daemon
                # allocate memory its client never spent.
                raise OSError(f"blob {n} is sparse")
            buf = bytearray(st.st_size)
            view = memoryview(buf)
            got = 0
            while got < st.st_size:
                k = os.readv(fd, [view[got:]])
                if not k:
                    raise OSError(f"blob {n} shrank while being read")
                got += k
        finally:
            os.close(fd)
        return view.toreadonly()

    def _remove_blobs(self, cid: str, blobs: tuple[int, ...] | None) -> None:
        """Remove the given blobs of ``cid``, or (None) every blob of its ring."""
        a = self.attached.get(cid)
        if a is None:
            return
        if blobs is not None:
            for n in blobs:
                self._unlink(f"{a.path}.b{n}")
            return
        base = os.path.basename(a.path) + ".b"
        try:
            names = os.listdir(self.loc.shm_dir)
        except OSError:
            return
        for name in names:
            if name.startswith(base) and name[len(base) :].isdigit():
                self._unlink(self.loc.ring_path(name))

    def _project(self, log_dir: str, params: dict[str, Any], arrays: list[Any]) -> None:
        """add_embedding: the projector files, each written whole (temp, rename).

        Runs on the daemon's one "files" thread (tensors.tsv of a large matrix
        takes seconds, which the loop must not spend), one record at a time in
        record order: each reads, merges and writes back the log dir's config.

        Raises:
            ValueError: nothing or not everything was written (the message says why).
        """
        root = os.path.realpath(log_dir)
        config = os.path.join(root, "projector_config.pbtxt")
        try:
            try:
                with open(config, encoding="utf-8") as f:
                    # One character over the limit is enough for the merge to refuse it.
                    existing: str | None = f.read(projector.MAX_CONFIG_CHARS + 1)
            except FileNotFoundError:
                existing = None
            files = projector.embedding_files(params, arrays, existing)
            for rel, data in files.items():
                if (
                    not isinstance(rel, str)
                    or "\0" in rel
                    or os.path.isabs(rel)
                    or os.path.normpath(rel) != rel
                    or rel.split(os.sep)[0] == ".."
                ):
                    raise ValueError(f"projector file path {rel!r} is not inside the log dir")
                path = os.path.join(root, rel)
                os.makedirs(os.path.dirname(path), exist_ok=True)
                tmp = f"{path}.summaryd-tmp"
                with open(tmp, "wb") as f:
                    f.write(data)
                os.replace(tmp, path)
        except Exception as exc:
            log.warning("embedding for %s not written: %s", log_dir, exc)
            raise ValueError(
                f"add_embedding into {log_dir} not written: {exc.__class__.__name__}: {exc}"
            ) from None

    def _drain(self, now: float) -> bool:
        any_records = False
        for a in list(self.attached.values()):
            if not self._usable(a):
                continue
            try:
                starts, payloads = a.ring.read_batch(DRAIN_BUDGET)
            except RingCorruptError as exc:
                a.broken = True
                log.warning("client %s (pid %d): %s; ignoring its ring", a.cid, a.ring.pid, exc)
                self._execute([Notice(a.cid, "error", f"ring corrupt, no longer read: {exc}")], now)
                continue
            if payloads:
                any_records = True
                self.core.batch(a.cid, starts, payloads, a.ring.read_pos, now)
                if a.ring.head - a.ring.tail > a.ring.capacity // 2:
                    self.core.pressure(a.cid)
        return any_records

    def _usable(self, a: Attached) -> bool:
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
        self._notify(a.cid, wire.notice("error", "ring truncated, no longer read"))
        return False

    def _check_liveness(self, now: float) -> None:
        for cid, a in list(self.attached.items()):
            c = self.core.clients.get(cid)
            if c is None or c.gone:
                continue
            try:
                if process_alive(a.ring.pid, a.ring.start_ticks):
                    continue
            except OSError as exc:  # e.g. EMFILE: unknown is not dead
                log.warning("cannot check pid %d: %s", a.ring.pid, exc)
                continue
            self._finish(cid, now)

    def _finish(self, cid: str, now: float) -> None:
        """The client is dead or said bye: drain its ring to the end, then close it."""
        a = self.attached.get(cid)
        if a is not None:
            while self._usable(a):
                try:
                    starts, payloads = a.ring.read_batch(DRAIN_BUDGET)
                except RingCorruptError as exc:
                    log.warning("client %s: %s", cid, exc)
                    break
                if not payloads:
                    break
                self.core.batch(cid, starts, payloads, a.ring.read_pos, now)
        self.core.gone(cid, now)

    # -- actions -------------------------------------------------------------

    def _tick(self, now: float) -> None:
        """Writes first; tails and acknowledgements only once the writes are done,
        and only once the state a restarted daemon needs is saved."""
        self._execute(self.core.plan_writes(now), now)
        settled = self.core.settle(now)
        if self._dirty or any(isinstance(a, SetTail) for a in settled):
            self._save_state(None)
        self._execute(settled, now)

    # -- state for a restarted daemon -------------------------------------------

    def _save_state(self, intent: dict[str, Any] | None) -> None:
        """Persist the core's snapshot (and the write about to happen) in one pwrite.

        A SIGKILL cannot split one write() to a regular file, so the file holds
        either the old state or the new one; the length prefix ignores leftovers.
        """
        blob = msgpack.packb(
            {"v": STATE_VERSION, "clients": self.core.snapshot(), "intent": intent},
            use_bin_type=True,
        )
        data = struct.pack("<I", len(blob)) + blob
        try:
            if self._state_fd is None:
                flags = os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW
                self._state_fd = os.open(self.loc.state_path, flags, 0o600)
            os.pwrite(self._state_fd, data, 0)
            self._dirty = False
        except OSError as exc:
            log.error("cannot save state to %s: %s", self.loc.state_path, exc)

    def _recover(self) -> dict[str, Any]:
        """Read the state an earlier daemon left; settle its last write."""
        try:
            with open(self.loc.state_path, "rb") as f:
                raw = f.read()
            (n,) = struct.unpack_from("<I", raw)
            st = msgpack.unpackb(raw[4 : 4 + n], raw=False, strict_map_key=False)
            if st.get("v") != STATE_VERSION:
                return {}
            clients: dict[str, Any] = st["clients"]
        except (OSError, ValueError, struct.error, KeyError, TypeError) as exc:
            if not isinstance(exc, FileNotFoundError):
                log.warning("ignoring unreadable state %s: %s", self.loc.state_path, exc)
            return {}
        intent = st.get("intent")
        if intent:
            path, offset, length = intent["path"], intent["offset"], intent["length"]
            try:
                size = os.path.getsize(path)
            except OSError:
                size = offset
            if size >= offset + length:  # the write happened: its records count as written
                for cid, k0, k1, upto in intent["commits"]:
                    if cid in clients:
                        clients[cid]["written"].append([k0, k1, upto])
            elif size > offset:  # torn: cut back to the last whole record
                log.warning("truncating torn tail of %s at %d", path, offset)
                with open(path, "r+b") as f:
                    f.truncate(offset)
        log.info("recovered state of %d client(s)", len(clients))
        return clients

    def _append(self, act: Append, now: float) -> None:
        f = self.files.get(act.run_id)
        try:
            if f is None:
                # The file could not be created earlier (unwritable directory,
                # disk full): try again now.
                f = self.files[act.run_id] = self._create(self.pending_opens[act.run_id])
            elif f.fd is None:
                self._make_room()
            self._save_state(
                {
                    "path": f.path,
                    "offset": f.bytes,
                    "length": len(act.data),
                    "commits": [list(c) for c in act.commits],
                }
            )
            f.append(act.data)
            self._open_fds[act.run_id] = None
            self._open_fds.move_to_end(act.run_id)
        except OSError as exc:
            self.file_errors += 1
            where = f.path if f is not None else self.pending_opens[act.run_id].log_dir
            log.error("writing %s failed: %s", where, exc)
            self.core.write_failed(act, f"{exc.strerror or exc}", now)
            return
        self.pending_opens.pop(act.run_id, None)
        self.core.write_succeeded(act)

    def _purge(self, act: PurgeFiles) -> None:
        """Remove the purged steps from the run's closed files (never from an open one)."""
        open_paths = {f.path for f in self.files.values() if f is not None}
        try:
            names = sorted(n for n in os.listdir(act.log_dir) if "tfevents" in n)
        except OSError as exc:
            log.warning("purge of %s: %s", act.log_dir, exc)
            return
        for name in names:
            path = os.path.join(act.log_dir, name)
            if path in open_paths:
                continue
            try:
                removed = purge_file(path, act.step, encode.survives_purge)
            except OSError as exc:
                log.error("purging %s failed: %s", path, exc)
                continue
            if removed:
                log.info("purged %d event(s) at step >= %d from %s", removed, act.step, path)

    def _create(self, act: OpenFile) -> EventFile:
        self._file_n += 1
        self._make_room()
        f = EventFile.create(
            act.log_dir, time.time(), self.host, self.pid, self._file_n, act.suffix
        )
        self._open_fds[act.run_id] = None
        return f

    def _make_room(self) -> None:
        """Keep event-file descriptors to a quarter of the fd limit: a client that
        leaks writers must not take the descriptors every other client needs."""
        limit = max(8, resource.getrlimit(resource.RLIMIT_NOFILE)[0] // 4)
        while len(self._open_fds) >= limit:
            rid, _ = self._open_fds.popitem(last=False)
            f = self.files.get(rid)
            if f is not None:
                f.suspend()

    def _notify(self, cid: str, msg: dict[str, Any]) -> None:
        a = self.attached.get(cid)
        if a is not None and a.identity is not None:
            self._reply(a.identity, msg)
            if msg["t"] == "notice" and self._usable(a):
                a.ring.set_bell(NOTICE_BELL)  # the client's next call picks it up

    def _execute(self, actions: list[Action], now: float) -> None:
        debug = log.isEnabledFor(logging.DEBUG)
        for act in actions:
            if debug and not isinstance(act, (SetTail, Append)):
                log.debug("action %r", act)
            self._ACTIONS[type(act)](self, act, now)

    def _set_tail(self, act: SetTail, now: float) -> None:
        a = self.attached.get(act.cid)
        if a is not None and self._usable(a):
            a.ring.set_tail(act.pos)

    def _ack(self, act: Ack, now: float) -> None:
        self._notify(act.cid, wire.ack(act.tok))

    def _notice(self, act: Notice, now: float) -> None:
        self._notify(act.cid, wire.notice(act.level, act.msg))

    def _open_file(self, act: OpenFile, now: float) -> None:
        try:
            self.files[act.run_id] = self._create(act)
        except OSError as exc:
            # Retried at the run's next write, which reports the failure.
            self.files[act.run_id] = None
            self.pending_opens[act.run_id] = act
            log.error("cannot create an event file in %s: %s", act.log_dir, exc)

    def _purge_files(self, act: PurgeFiles, now: float) -> None:
        self._purge(act)

    def _close_file(self, act: CloseFile, now: float) -> None:
        self.pending_opens.pop(act.run_id, None)
        self._open_fds.pop(act.run_id, None)
        f = self.files.pop(act.run_id, None)
        if f is not None:
            try:
                f.close()
            except OSError as exc:
                log.error("closing %s failed: %s", f.path, exc)

    def _remove_blobs_of(self, act: RemoveBlobs, now: float) -> None:
        self._remove_blobs(act.cid, act.blobs)

    def _remove_ring(self, act: RemoveRing, now: float) -> None:
        self._remove_blobs(act.cid, None)
        a = self.attached.pop(act.cid, None)
        if a is not None:
            if a.identity is not None:
                self.by_identity.pop(a.identity, None)
            self._heartbeat.discard(a.ring)
            a.ring.close()
            try:
                os.unlink(a.path)
            except FileNotFoundError:
                pass

    # -- status --------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        st = self.core.status()
        for c in st["clients"]:
            a = self.attached.get(c["sid"])
            if a is not None:
                # Header words the client writes: bounded, so the reply always packs.
                c["ring_capacity"] = a.ring.capacity
                ok = self._usable(a)
                c["ring_fill"] = max(0, min(a.ring.capacity, a.ring.fill())) if ok else 0
                c["dropped"] = min(a.ring.dropped, 1 << 48) if ok else 0
                c["broken"] = a.broken
        for r in st["runs"]:
            f = self.files.get(r["run_id"])
            r["file"] = f.path if f is not None else None
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
                "file_errors": self.file_errors,
                "bad_messages": self.bad_messages,
                "scans": self.scans,
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


Daemon._MESSAGES = {
    "hello": Daemon._hello,
    "flush": Daemon._on_flush,
    "status": Daemon._on_status,
    "bye": Daemon._on_bye,
    "stop": Daemon._on_stop,
}
Daemon._ACTIONS = {
    Append: Daemon._append,
    SetTail: Daemon._set_tail,
    Ack: Daemon._ack,
    Notice: Daemon._notice,
    OpenFile: Daemon._open_file,
    PurgeFiles: Daemon._purge_files,
    CloseFile: Daemon._close_file,
    RemoveBlobs: Daemon._remove_blobs_of,
    RemoveRing: Daemon._remove_ring,
}
