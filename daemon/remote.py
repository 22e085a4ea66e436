"""The output of ``s3://`` runs: a spool on local disk per run, uploaded by one thread.

Theory of operation
-------------------
The core treats an ``s3://`` run like any other: ``OpenFile``, ``Append``,
``CloseFile``.  ``Output`` hands those of URL log dirs to :class:`Remote`,
which appends the records to the run's :class:`~.spool.Spool` (a local,
fsynced write: the ring's tail may pass them, as for an event file) and
returns.  The loop never talks to the store.

One uploader thread seals each spool's open segment when
:class:`~.s3layout.SealPolicy` says so (its oldest record is ``seal_secs``
old, default 5 s, or it holds ``max_bytes``) or when asked (``Upload``: a
client waits in ``flush()``; ``CloseFile``), and moves sealed segments into
the bucket with ``s3store.Uploader`` (the layout, conditional creates and the
crash records are theirs).  What it learnt comes back to the loop as events
(:meth:`Remote.results`, then the loop's wake pipe): ``("uploaded", run_id,
seq)`` -- every ``Append`` of that run up to ``seq`` is in the bucket, which
releases held flush acknowledgements -- ``("error", run_id, message)``
for the trainers' warning, and ``("backlog", bytes, (url, suffix))`` when a
spool is taken with records an earlier daemon left (``bytes`` of them), then
with 0 once they are all uploaded: flushes of that run wait for it.

Why a thread and not the encoder pool: uploads wait on the network, not the
CPU, and one connection per store suffices for a node's logging rates; one
thread keeps each run's uploads in order without locking the tail state.

Failures: a transient error (connection refused, 5xx) leaves the segments in
the spool and retries with exponential backoff (1 s doubling to 30 s); a
refusal (no bucket, bad credentials) is retried every 30 s, told once to the
trainers.  The spool is bounded (``SUMMARYD_SPOOL_MAX_BYTES``); records that
do not fit are dropped, counted, and told; a dropped write's number is reported
``uploaded`` with the writes spooled before it (a flush never waits for it).

Spool directories: ``$SUMMARYD_SPOOL_DIR``, else
``$XDG_CACHE_HOME/summaryd/spool``, else ``~/.cache/summaryd/spool`` (local
disk: never ``/dev/shm``, a backlog may be large and must outlive a reboot).
One subdirectory per ``(url, suffix)``, named by a hash of both, holding a
``url`` file and a ``lock`` (``flock``: one daemon per spool).  A starting
daemon adopts every spool it can lock and uploads what an earlier daemon left
(SIGKILL): each record is in the bucket once, since the spool notes each
attempt before its PUT and the state file says which ring records are spooled.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import queue
import shutil
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from summaryd.errors import S3AccessError, S3Error, S3UnavailableError
from summaryd.paths import try_lock

from .s3layout import SealPolicy, TailPolicy
from .spool import DEFAULT_MAX_BYTES, Spool, SpoolError

log = logging.getLogger("summaryd")

BACKOFF_FIRST = 1.0  # seconds before the first retry after a transient failure
BACKOFF_MAX = 30.0
REFUSED_RETRY = 30.0  # seconds between attempts while the store refuses us
CLOSE_LIMIT = 10.0  # seconds a daemon's shutdown waits for the last uploads
_MAX_SIBLINGS = 8  # spools of one key when others' are locked (two daemons, one host)

Event = tuple[str, int, Any]


def is_remote(log_dir: str) -> bool:
    return log_dir.startswith("s3://")


def spool_root(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    if env.get("SUMMARYD_SPOOL_DIR"):
        return Path(env["SUMMARYD_SPOOL_DIR"])
    cache = env.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(cache) / "summaryd" / "spool"


def _env_float(env: Mapping[str, str], name: str, default: float) -> float:
    v = env.get(name)
    return float(v) if v else default


@dataclass(frozen=True)
class RemoteSettings:
    """Read from the daemon's environment (documented in the README)."""

    seal: SealPolicy = SealPolicy()
    tail: TailPolicy = TailPolicy()
    spool_max_bytes: int = DEFAULT_MAX_BYTES

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> RemoteSettings:
        env = os.environ if env is None else env
        return cls(
            seal=SealPolicy(max_age=_env_float(env, "SUMMARYD_S3_SEAL_SECS", 5.0)),
            tail=TailPolicy(max_writes=int(_env_float(env, "SUMMARYD_S3_MAX_WRITES", 8))),
            spool_max_bytes=int(_env_float(env, "SUMMARYD_SPOOL_MAX_BYTES", DEFAULT_MAX_BYTES)),
        )


@dataclass(eq=False)
class RemoteRun:
    """One spool (one ``(url, suffix)``) and its upload state.  Fields under
    ``lock`` are shared by the loop (appends) and the uploader thread."""

    url: str
    suffix: str
    spool: Spool
    lock_fd: int
    lock: threading.Lock = field(default_factory=threading.Lock)
    run_ids: set[int] = field(default_factory=set)
    open_since: float | None = None  # monotonic time of the open segment's first append
    appended: dict[int, int] = field(default_factory=dict)  # run_id -> last Append seq
    sealed: dict[int, int] = field(default_factory=dict)  # marks of sealed, not uploaded
    force: bool = False
    closed: bool = False  # no live run: remove the spool once it is empty
    uploader: Any = None  # s3store.Uploader, made on the thread (boto3 is slow to load)
    retry_at: float = 0.0
    backoff: float = 0.0
    last_error: str | None = None
    uploaded_segments: int = 0
    overflowing: bool = False
    adopted: bool = False  # holds records an earlier daemon left, not all uploaded

    @property
    def dir(self) -> Path:
        return self.spool.dir


class Remote:
    def __init__(
        self,
        wake: Callable[[], None],
        root: Path | None = None,
        settings: RemoteSettings | None = None,
    ) -> None:
        self.root = spool_root() if root is None else root
        self.settings = settings or RemoteSettings.from_env()
        self._wake = wake
        self.by_key: dict[tuple[str, str], RemoteRun] = {}
        self.by_run: dict[int, RemoteRun] = {}
        self._events: queue.SimpleQueue[Event] = queue.SimpleQueue()
        self._cond = threading.Condition()
        self._stopping = False
        self._thread: threading.Thread | None = None

    # -- spools ----------------------------------------------------------------

    def _lock_dir(self, d: Path) -> int | None:
        fd: int | None = try_lock(str(d / "lock"))
        return fd

    def _take(self, url: str, suffix: str) -> RemoteRun:
        """The spool of ``(url, suffix)``: ours already, or one we can lock."""
        rr = self.by_key.get((url, suffix))
        if rr is not None:
            return rr
        name = hashlib.sha256(f"{url}\0{suffix}".encode()).hexdigest()[:20]
        for i in range(_MAX_SIBLINGS):
            d = self.root / (name if i == 0 else f"{name}-{i}")
            d.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = self._lock_dir(d)
            if fd is None:
                continue  # another daemon's (two simulated nodes on one host)
            (d / "url").write_text(json.dumps({"url": url, "suffix": suffix}))
            rr = RemoteRun(url, suffix, Spool(d, self.settings.spool_max_bytes), fd)
            self._adopted(rr)
            return rr
        raise SpoolError(f"every spool of {url} under {self.root} is locked by another daemon")

    def _adopted(self, rr: RemoteRun) -> None:
        waiting = self._backlog(rr)
        if waiting:  # a barrier for the run's flushes until it is uploaded
            rr.adopted = True
            self._events.put(("backlog", waiting, (rr.url, rr.suffix)))
            self._wake()
        with self._cond:
            self.by_key[(rr.url, rr.suffix)] = rr
            if rr.spool.open_bytes:  # left by an earlier daemon: upload it now
                rr.force = True
                rr.open_since = time.monotonic()
            self._cond.notify()

    def adopt(self) -> int:
        """Take every spool an earlier daemon left behind; how many."""
        n = 0
        try:
            names = sorted(os.listdir(self.root))
        except FileNotFoundError:
            return 0
        for name in names:
            d = self.root / name
            try:
                meta = json.loads((d / "url").read_text())
                if (meta["url"], meta["suffix"]) in self.by_key:
                    continue
                fd = self._lock_dir(d)
                if fd is None:
                    continue
                rr = RemoteRun(
                    meta["url"], meta["suffix"], Spool(d, self.settings.spool_max_bytes), fd
                )
            except (OSError, ValueError, KeyError, SpoolError) as exc:
                log.warning("spool %s not adopted: %s", d, exc)
                continue
            rr.closed = True  # no run of ours yet: removed once uploaded
            self._adopted(rr)
            n += 1
            log.info("adopted spool %s of %s (%d bytes waiting)", d, rr.url, self._backlog(rr))
        return n

    @staticmethod
    def _backlog(rr: RemoteRun) -> int:
        st = rr.spool.statistics()
        return st.open_bytes + st.sealed_bytes

    # -- the loop's side (never waits on the store) --------------------------------

    def open_run(self, run_id: int, url: str, suffix: str) -> None:
        with self._cond:  # the uploader may be removing this key's idle spool
            rr = self._take(url, suffix)
            rr.run_ids.add(run_id)
            rr.closed = False
            self.by_run[run_id] = rr

    def append(
        self,
        run_id: int,
        url: str,
        suffix: str,
        seq: int,
        data: bytes,
        save_intent: Callable[[str, int], None],
    ) -> bool:
        """Spool ``data`` (whole framed records), fsynced; False if the spool is
        full (the records are dropped and counted).  ``save_intent(path,
        offset)`` persists the write about to happen (under the spool's lock, so
        a seal cannot rename the file in between).  Raises OSError."""
        rr = self.by_run.get(run_id)
        if rr is None:
            self.open_run(run_id, url, suffix)
            rr = self.by_run[run_id]
        with rr.lock:
            now = time.time()
            save_intent(rr.spool.ensure_open(now), rr.spool.open_bytes)
            ok = rr.spool.append(data, now)
            if ok and rr.open_since is None:
                rr.open_since = time.monotonic()
            # A dropped write too (dropped, counted and told): reported with the
            # writes spooled before it, once those are in the bucket, so a flush
            # held on it never waits for an upload that cannot come.
            rr.appended[run_id] = seq
        if not ok and not rr.overflowing:
            self._events.put(
                (
                    "error",
                    run_id,
                    f"the spool of {url} is full ({rr.spool.max_bytes} bytes, "
                    f"SUMMARYD_SPOOL_MAX_BYTES): {rr.spool.overflowed_records} record(s) "
                    "dropped so far; the store is unreachable or too slow",
                )
            )
            self._wake()
        rr.overflowing = not ok
        with self._cond:
            self._cond.notify()
        return ok

    def upload(self, run_id: int) -> None:
        """Seal and upload this run's records now (a flush waits for them)."""
        rr = self.by_run.get(run_id)
        if rr is not None:
            with self._cond:
                rr.force = True
                self._cond.notify()

    def close_run(self, run_id: int) -> None:
        rr = self.by_run.pop(run_id, None)
        if rr is not None:
            with self._cond:
                rr.run_ids.discard(run_id)
                rr.force = True
                rr.closed = not rr.run_ids
                self._cond.notify()

    def owns(self, run_id: int) -> bool:
        return run_id in self.by_run

    def results(self) -> list[Event]:
        out = []
        while True:
            try:
                out.append(self._events.get_nowait())
            except queue.Empty:
                return out

    def status_of(self, run_id: int) -> dict[str, Any] | None:
        rr = self.by_run.get(run_id)
        return None if rr is None else self._describe(rr)

    def _describe(self, rr: RemoteRun) -> dict[str, Any]:
        st = rr.spool.statistics()
        up = rr.uploader
        store = up.store.statistics() if up is not None else None
        return {
            "url": rr.url,
            "spool": str(rr.dir),
            "backlog_bytes": st.open_bytes + st.sealed_bytes,
            "backlog_segments": st.sealed_segments + (1 if st.open_bytes else 0),
            "uploaded_segments": rr.uploaded_segments,
            "overflowed_records": st.overflowed_records,
            "requests": store.requests if store else 0,
            "bytes_sent": store.bytes_sent if store else 0,
            "last_error": rr.last_error,
        }

    def status(self) -> list[dict[str, Any]]:
        return [self._describe(rr) for rr in list(self.by_key.values())]

    # -- the uploader thread -----------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._serve, name="summaryd-upload", daemon=True)
        self._thread.start()

    def close(self, limit: float = CLOSE_LIMIT) -> None:
        """Upload what is spooled (for at most ``limit`` s), stop the thread,
        unlock the spools (what is left is the next daemon's)."""
        deadline = time.monotonic() + limit
        with self._cond:
            for rr in self.by_key.values():
                rr.force = True
                rr.retry_at = 0.0
            self._cond.notify()
        while time.monotonic() < deadline and self._thread is not None:
            if all(self._backlog(rr) == 0 or rr.last_error for rr in list(self.by_key.values())):
                break
            time.sleep(0.05)
        with self._cond:
            self._stopping = True
            self._cond.notify()
        if self._thread is not None:
            self._thread.join(max(1.0, deadline - time.monotonic()))
        for rr in self.by_key.values():
            os.close(rr.lock_fd)
        self.by_key.clear()

    def _serve(self) -> None:
        while True:
            with self._cond:
                if self._stopping:
                    return
                now = time.monotonic()
                work = [rr for rr in self.by_key.values() if self._due(rr, now)]
                if not work:
                    self._cond.wait(self._sleep(now))
                    continue
            for rr in work:
                self._upload(rr)

    def _due(self, rr: RemoteRun, now: float) -> bool:
        if now < rr.retry_at:
            return False
        if rr.spool.sealed():
            return True
        if rr.closed and self._backlog(rr) == 0:
            return True  # remove it
        if rr.spool.open_bytes == 0:
            rr.force = False
            return bool(rr.appended)  # dropped writes only (a full spool): report them
        return rr.force or self.settings.seal.should_seal(rr.spool.open_bytes, rr.open_since, now)

    def _sleep(self, now: float) -> float:
        due = [60.0]
        for rr in self.by_key.values():
            if rr.retry_at > now:
                due.append(rr.retry_at - now)
            elif rr.open_since is not None:
                due.append(max(0.0, rr.open_since + self.settings.seal.max_age - now))
        return max(0.01, min(due))

    def _upload(self, rr: RemoteRun) -> None:
        with rr.lock:
            if rr.spool.open_bytes:
                rr.spool.seal()
                rr.open_since = None
            # Every write appended so far is sealed now, or was dropped; so is
            # every record an earlier daemon left.
            rr.sealed.update(rr.appended)
            rr.appended.clear()
            rr.force = False
            adopted = rr.adopted
        try:
            if rr.uploader is None:
                from .s3store import S3Store, Uploader

                rr.uploader = Uploader(S3Store(rr.url), rr.spool, self.settings.tail)
            rr.uploaded_segments += rr.uploader.upload_ready()
        except S3Error as exc:
            self._failed(rr, exc)
            return
        except Exception as exc:  # a bug or a local I/O error must not end the thread
            log.exception("upload of %s failed", rr.url)
            self._failed(rr, exc)
            return
        if rr.last_error is not None:
            log.info("uploads to %s resumed", rr.url)
        rr.last_error = None
        rr.backoff = 0.0
        if adopted:
            rr.adopted = False
            self._events.put(("backlog", 0, (rr.url, rr.suffix)))
        for run_id, seq in rr.sealed.items():
            self._events.put(("uploaded", run_id, seq))
        rr.sealed.clear()
        if rr.closed and self._backlog(rr) == 0:
            self._remove(rr)
        self._wake()

    def _failed(self, rr: RemoteRun, exc: Exception) -> None:
        msg = f"uploading to {rr.url} failed: {exc}"
        if isinstance(exc, S3UnavailableError):
            rr.backoff = min(BACKOFF_MAX, rr.backoff * 2 or BACKOFF_FIRST)
        else:
            rr.backoff = REFUSED_RETRY if isinstance(exc, S3AccessError) else BACKOFF_MAX
        rr.retry_at = time.monotonic() + rr.backoff
        if rr.last_error != msg:
            log.warning("%s; retrying in %.0f s (events wait in %s)", msg, rr.backoff, rr.dir)
        rr.last_error = msg
        for run_id in set(rr.run_ids) | set(rr.sealed):
            self._events.put(("error", run_id, f"{msg}; events wait in the spool {rr.dir}"))
        self._wake()

    def _remove(self, rr: RemoteRun) -> None:
        """A closed run's spool with nothing left to upload goes."""
        with self._cond:
            if rr.run_ids or self.by_key.get((rr.url, rr.suffix)) is not rr:
                return
            del self.by_key[(rr.url, rr.suffix)]
        shutil.rmtree(rr.dir, ignore_errors=True)
        os.close(rr.lock_fd)
