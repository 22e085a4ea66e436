"""The encoder runtime: array records encoded in worker processes, beyond the GIL.

Theory of operation.  The loop hands each array record to ``EncoderPool.encode``
with a job id and gets ``(job, framed bytes | exception)`` back from ``results``;
it never waits.  The core fills its slots by job id, so results may come back
in any order.

* **Why processes, not threads.**  ``encode.array_record`` holds the GIL for
  46 % of a 3x512x512 image and 24 % of a 1e6-value histogram (py-spy
  ``--gil``: protobuf copies of the PNG, framing, numpy's small steps), and the
  loop thread holds it for the whole drain, so two encoder threads can never
  exceed 1/(0.46 + 0.54/2) = 1.37x for images on two cores; processes share
  nothing but the hand-over (``benchmarks/bench_encoders.py`` measures both).
* **Workers** are ``python -c`` interpreters started with ``subprocess`` (an
  exec, so nothing of the daemon's ZeroMQ context, threads or locks crosses a
  fork; no ``multiprocessing`` resource tracker or ``__main__`` re-import).
  Each has a *feeder* thread here that owns it: takes the next job from the
  shared queue, hands it over, waits for its result, posts it and calls
  ``wake``.  One job per worker at a time, so a worker that dies takes exactly
  one job with it.
* **Transfer.**  Per worker an *arena*, a ``memfd`` both sides map: the feeder
  copies the payload into it (one ``memcpy``: 0.1 ms for a 3 MB image, where
  ``pwrite`` took 0.3), the worker decodes the arrays straight from its
  mapping and ``pwrite``s the framed events back at offset 0, which the feeder
  slices out (one copy).  The socket between them
  carries only small headers.  A blob is not copied at all: the worker reads
  the file itself (``read_blob``, the checks the loop did).
* **Deaths.**  A worker that dies with a job in hand (a segfault, the OOM
  killer, a SIGKILL) makes that job's result ``WorkerDiedError``; a job that
  had not reached the worker is retried on its replacement.  Workers die with
  the daemon: ``PR_SET_PDEATHSIG`` (SIGKILL when the feeder thread that spawned
  them ends, which is only at ``close`` or the daemon's death) and, for the
  window before it is set, an end-of-file on their socket.  They ignore SIGINT
  and SIGTERM: a Ctrl-C or ``systemctl stop`` reaches the whole process group,
  and the daemon still needs its encoders to drain the rings.
* **Embeddings** (``project``) write projector files on one thread of this
  process, in submission order (each merges the log dir's config).  They are
  rare, and their file I/O needs no second core.
"""

from __future__ import annotations

import collections
import ctypes
import logging
import mmap
import os
import pickle
import queue
import signal
import socket
import stat
import struct
import subprocess
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import msgpack

log = logging.getLogger("summaryd")

MAX_BLOB = 1 << 32  # bytes: a 4 GiB tensor is more than anyone logs
MAX_WORKERS = 4  # encoder processes at most, whatever the core count
ARENA_KEEP = 64 << 20  # bytes an idle arena may keep resident; larger ones are truncated
START_TIMEOUT = 60.0  # seconds a new worker may take to import the encoders
STOP_GRACE = 2.0  # seconds a worker has to exit after its socket closes, then SIGKILL
# Seconds one record may take: a 4 GiB tensor encodes in about a minute, so a job
# past this is a hang (a crafted input, a stuck library) and its worker is killed.
JOB_TIMEOUT = 600.0

_JOB = struct.Struct("<IQ")  # feeder -> worker: msgpack header length, payload bytes in the arena
_RESULT = struct.Struct("<BQ")  # worker -> feeder: status, result bytes in the arena
_OK, _ERROR = 0, 1
_READY = b"R"  # worker -> feeder once the encoders are imported
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
# The worker's environment: one BLAS/OpenMP thread (as the loop's threadpoolctl limit;
# BLAS threads spinning on a busy machine tripled a histogram's CPU), and glibc keeping
# freed blocks of a record's size instead of unmapping and faulting them in again.
_WORKER_ENV = {
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "MALLOC_MMAP_THRESHOLD_": str(64 << 20),
    "MALLOC_TRIM_THRESHOLD_": str(256 << 20),
}

Result = tuple[int, "bytes | Exception"]


class WorkerDiedError(RuntimeError):
    """The worker process encoding this record died (the record is skipped)."""


# -- blobs ----------------------------------------------------------------------


def read_blob(path: str) -> memoryview:
    """The bytes of the blob file at ``path`` (read-only), checked before read.

    Raises:
        OSError: missing, not a regular file of this user, larger than
            ``MAX_BLOB``, sparse, or shrinking while read.
    """
    name = os.path.basename(path)
    # O_NONBLOCK: a FIFO planted under a blob's name must not hang the reader.
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
    fd = os.open(path, flags)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_uid != os.getuid():
            raise OSError(f"blob {name} is not a regular file of this user")
        if st.st_size > MAX_BLOB:
            raise OSError(f"blob {name} of {st.st_size} bytes exceeds {MAX_BLOB}")
        if st.st_blocks * 512 < st.st_size:
            # The SDK writes every byte; a sparse file would make the daemon
            # allocate memory its client never spent.
            raise OSError(f"blob {name} is sparse")
        buf = bytearray(st.st_size)
        view = memoryview(buf)
        got = 0
        while got < st.st_size:
            k = os.readv(fd, [view[got:]])
            if not k:
                raise OSError(f"blob {name} shrank while being read")
            got += k
    finally:
        os.close(fd)
    return view.toreadonly()


def _payload(rec: list[Any], data: bytes | memoryview | None, blob: str | None) -> Any:
    """The record's data: ``data``, or the blob's bytes.

    Raises:
        ValueError: the blob is unreadable (the message names it).
    """
    if blob is None:
        return data
    try:
        return read_blob(blob)
    except OSError as exc:
        name = rec[-1] if type(rec[-1]) is int else os.path.basename(blob)
        raise ValueError(f"blob {name} unreadable: {exc}") from None


# -- embeddings (one thread of the daemon) --------------------------------------


def project_files(log_dir: str, params: dict[str, Any], arrays: list[Any]) -> None:
    """add_embedding: the projector files, each written whole (temp, rename).

    Called one record at a time in record order: each reads, merges and writes
    back the log dir's config.

    Raises:
        ValueError: nothing or not everything was written (the message says why).
    """
    from . import projector

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


# -- the pool (daemon side) -----------------------------------------------------


class EncoderPool:
    """Array records encoded by worker processes; see the module docstring.

    ``encode``, ``project``, ``results`` and ``outstanding`` are called by the
    loop thread; ``wake`` is called from the pool's threads whenever results
    become available.
    """

    def __init__(self, workers: int | None = None, wake: Callable[[], None] | None = None) -> None:
        if workers is None:
            # On one CPU a worker only adds the hand-over (+0.7 ms of CPU per image):
            # 0 = encode on one thread of this process.
            cpus = len(os.sched_getaffinity(0))
            workers = 0 if cpus == 1 else min(MAX_WORKERS, cpus)
        self._wake = wake or (lambda: None)
        self._jobs: queue.SimpleQueue[tuple[int, list[Any], Any, str | None] | None] = (
            queue.SimpleQueue()
        )
        self._done: collections.deque[Result] = collections.deque()
        self._lock = threading.Condition()
        self._outstanding = 0
        self._closed = False
        self._serial = ThreadPoolExecutor(max_workers=1, thread_name_prefix="projector")
        self._feeders = [_Feeder(self, i, workers == 0) for i in range(max(1, workers))]
        for f in self._feeders:
            f.thread.start()

    # -- the loop's side --

    def encode(
        self,
        job: int,
        rec: list[Any],
        data: bytes | memoryview | None,
        blob: str | None = None,
    ) -> None:
        """Queue ``encode.array_record(rec, data or the blob's bytes)`` as ``job``.

        ``data`` must stay unchanged until the job's result is out (it is copied
        to a worker when one is free).
        """
        self._started()
        self._jobs.put((job, rec, data, blob))

    def project(
        self,
        job: int,
        log_dir: str,
        params: dict[str, Any],
        rec_arrays: Any,
        data: bytes | memoryview | None,
        blob: str | None = None,
    ) -> None:
        """Queue an add_embedding record's projector files as ``job`` (result ``b""``)."""
        self._started()
        self._serial.submit(self._project, job, log_dir, params, rec_arrays, data, blob)

    def results(self) -> list[Result]:
        """Jobs finished since the last call, as ``(job, bytes | exception)``; never blocks."""
        # popleft per item, never a copy then clear(): feeders append concurrently.
        return [self._done.popleft() for _ in range(len(self._done))]

    def outstanding(self) -> int:
        """Jobs queued or running (finished ones count as soon as ``results`` can return them)."""
        return self._outstanding

    def wait(self, timeout: float) -> bool:
        """Block until no job is outstanding or ``timeout`` seconds passed (shutdown only)."""
        with self._lock:
            return self._lock.wait_for(lambda: self._outstanding == 0, timeout)

    def worker_pids(self) -> list[int]:
        """The pids of the live worker processes (for status and tests)."""
        return [p for p in (f.pid() for f in self._feeders) if p is not None]

    def close(self) -> None:
        """Stop the workers and wait for every process; ``wake`` is never called after.

        Jobs not finished by then end as ``RuntimeError`` or ``WorkerDiedError``
        results (the loop calls ``wait`` first to drain).
        """
        if self._closed:
            return
        self._closed = True
        for _ in self._feeders:
            self._jobs.put(None)
        for f in self._feeders:
            f.stop()
        for f in self._feeders:
            f.thread.join()
        self._serial.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> EncoderPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the pool's threads --

    def _started(self) -> None:
        if self._closed:
            raise RuntimeError("EncoderPool is closed")
        with self._lock:
            self._outstanding += 1

    def _finish(self, job: int, res: bytes | Exception) -> None:
        self._done.append((job, res))
        with self._lock:
            self._outstanding -= 1
            self._lock.notify_all()
        self._wake()

    def _project(
        self,
        job: int,
        log_dir: str,
        params: dict[str, Any],
        specs: Any,
        data: bytes | memoryview | None,
        blob: str | None,
    ) -> None:
        from .arrays import decode_arrays

        try:
            payload = _payload([None], data, blob)
            project_files(log_dir, params, decode_arrays(specs, payload))
            res: bytes | Exception = b""
        except Exception as exc:  # any failure is this record's, reported as its result
            res = exc
        self._finish(job, res)


class _Feeder:
    """One worker process and the thread that feeds it, one job at a time."""

    def __init__(self, pool: EncoderPool, index: int, in_process: bool) -> None:
        self.pool = pool
        self.arena = os.memfd_create(f"summaryd-encode-{index}", os.MFD_CLOEXEC)
        self.arena_size = 0  # the largest payload or result since the last truncation
        self.map: mmap.mmap | None = None  # the arena, mapped here
        self.proc: subprocess.Popen[bytes] | None = None
        self.sock: socket.socket | None = None
        self.stopping = False
        self.sock_timeout = JOB_TIMEOUT
        # Encode in this process: asked for, or no worker could start (logged once).
        self.in_process = in_process
        self.thread = threading.Thread(target=self._run, name=f"encode-{index}", daemon=True)

    def pid(self) -> int | None:
        proc = self.proc
        return proc.pid if proc is not None and proc.returncode is None else None

    def _run(self) -> None:
        # The worker is spawned from this thread: PR_SET_PDEATHSIG fires when the
        # spawning *thread* ends, and this one lives exactly as long as its worker.
        try:
            if not self.in_process:
                self._spawn()  # now, not at the first record: a worker takes ~0.3 s to start
            while True:
                item = self.pool._jobs.get()
                if item is None:
                    return
                job, rec, data, blob = item
                self.pool._finish(job, self._one(rec, data, blob))
        finally:
            self._reap()
            if self.map is not None:
                self.map.close()
            os.close(self.arena)

    def _one(self, rec: list[Any], data: bytes | memoryview | None, blob: str | None) -> Any:
        """The job's result; retried once on a new worker if it never reached the old one."""
        for _attempt in range(2):
            if self.stopping:
                return RuntimeError("the encoder pool was closed before this record was encoded")
            if self.sock is None and not self.in_process:
                self._spawn()
            if self.in_process or self.sock is None:
                return _encode_here(rec, data, blob)
            try:
                # The record as the core has it, but for the data (a blob number stays).
                head = msgpack.packb([[*rec[:7], rec[7] if type(rec[7]) is int else None], blob])
                size = 0 if blob is not None or data is None else memoryview(data).nbytes
                if size:
                    self._mapped(size)[:size] = memoryview(data).cast("B")  # type: ignore[arg-type]
                self.arena_size = max(self.arena_size, size)
                self.sock.sendall(_JOB.pack(len(head), size) + head)
            except (TypeError, ValueError, OverflowError, IndexError) as exc:  # not packable
                return exc
            except OSError:
                self._reap()  # died before the job reached it: the job is not to blame
                continue
            return self._result()
        return WorkerDiedError("encoder workers keep dying before they take a job")

    def _result(self) -> bytes | Exception:
        assert self.sock is not None
        try:
            status, n = _RESULT.unpack(_recv_exact(self.sock, _RESULT.size))
            self.arena_size = max(self.arena_size, n)
            body = self._mapped(n)[:n]
        except (OSError, EOFError) as exc:
            pid = self.proc.pid if self.proc else 0
            hung = isinstance(exc, TimeoutError) and self.proc is not None
            if hung:
                self.proc.kill()  # type: ignore[union-attr]
            code = self._reap()
            how = f"signal {-code}" if code is not None and code < 0 else f"exit {code}"
            if hung:
                how = f"killed after {self.sock_timeout:g} s"
            if not self.stopping:
                log.warning("encoder worker %d died (%s) while encoding a record", pid, how)
            return WorkerDiedError(f"the encoder worker died ({how}) while encoding this record")
        finally:
            if self.arena_size > ARENA_KEEP:
                if self.map is not None:
                    self.map.close()  # no view of it ever leaves this class
                    self.map = None
                os.ftruncate(self.arena, 0)  # a huge record's memory goes back now
                self.arena_size = 0
        if status == _OK:
            return body
        return _load_exception(body)

    def _mapped(self, n: int) -> mmap.mmap:
        """The arena mapped here, ``n`` bytes long at least (the file grown to match)."""
        if self.map is None or len(self.map) < n:
            n = -(-n // (1 << 20)) << 20  # whole MiB: a few sizes, a few remaps
            if os.fstat(self.arena).st_size < n:
                os.ftruncate(self.arena, n)
            if self.map is not None:
                self.map.close()
            self.map = mmap.mmap(self.arena, n)
        return self.map

    def _spawn(self) -> None:
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        env = {**os.environ, **_WORKER_ENV}
        # -P (3.11+): the daemon's working directory is not a place to import from.
        flags = ["-P"] if sys.version_info >= (3, 11) else []
        code = "from summaryd.daemon.jobs import worker_main; worker_main()"
        argv = [sys.executable, *flags, "-c", code, str(os.getpid()), str(child.fileno())]
        argv.append(str(self.arena))
        try:
            proc = subprocess.Popen(
                argv, pass_fds=(child.fileno(), self.arena), env=env, stdin=subprocess.DEVNULL
            )
        except OSError as exc:
            parent.close()
            child.close()
            log.error("cannot start an encoder worker (%s): encoding in the daemon", exc)
            self.in_process = True
            return
        child.close()
        self.proc, self.sock = proc, parent
        parent.settimeout(START_TIMEOUT)
        try:
            ready = _recv_exact(parent, 1) == _READY
        except (OSError, EOFError):
            ready = False
        self.sock_timeout = JOB_TIMEOUT
        parent.settimeout(JOB_TIMEOUT)
        if not ready and self.stopping:
            proc.kill()  # closed while it was importing: nothing of ours to finish
            self._reap()
        elif not ready:
            status = self._reap()
            log.error("encoder worker failed to start (exit %s): encoding in the daemon", status)
            self.in_process = True

    def stop(self) -> None:
        """Make a busy worker's job end now (close is not a drain)."""
        self.stopping = True
        sock = self.sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)  # the worker sees EOF, the feeder too
            except OSError:
                pass

    def _reap(self) -> int | None:
        """Close the socket, end the worker (grace, then SIGKILL); its exit code."""
        sock, proc = self.sock, self.proc
        self.sock = self.proc = None
        if sock is not None:
            sock.close()
        if proc is None:
            return None
        try:
            return proc.wait(STOP_GRACE)
        except subprocess.TimeoutExpired:
            proc.kill()
            return proc.wait()


def _encode_here(rec: list[Any], data: bytes | memoryview | None, blob: str | None) -> Any:
    """One job in this process (no worker could start)."""
    from . import encode

    try:
        return encode.array_record(rec, _payload(rec, data, blob))
    except Exception as exc:  # the record's failure is its result
        return exc


def _pwrite_all(fd: int, data: bytes | memoryview, offset: int) -> None:
    view = memoryview(data).cast("B")
    while view:
        n = os.pwrite(fd, view, offset)  # releases the GIL for the copy
        view, offset = view[n:], offset + n


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        k = sock.recv_into(view[got:])
        if not k:
            raise EOFError("peer closed")
        got += k
    return bytes(buf)


def _dump_exception(exc: BaseException) -> bytes:
    """The exception as the daemon will see it: its class if it pickles, else a ValueError."""
    exc.__traceback__ = None  # its frames hold views of the arena
    try:
        data = pickle.dumps(exc)
        pickle.loads(data)  # some classes pickle but cannot be rebuilt
        return data
    except Exception:  # noqa: BLE001 - any pickling failure falls back to the text
        return pickle.dumps(ValueError(f"{exc.__class__.__name__}: {exc}"))


def _load_exception(body: bytes) -> Exception:
    # Our own worker's bytes: as trusted as the daemon itself.
    try:
        exc = pickle.loads(body)
    except Exception as err:  # noqa: BLE001 - a class that cannot be rebuilt here
        return ValueError(f"encoder error not readable: {err}")
    return exc if isinstance(exc, Exception) else ValueError(repr(exc))


# -- the worker process ------------------------------------------------------------


def worker_main() -> None:
    """A worker's life: ``python -c ... <parent pid> <socket fd> <arena fd>``."""
    ppid, sock_fd, arena = (int(x) for x in sys.argv[1:4])
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass  # not Linux: the socket's end-of-file still ends the worker
    if os.getppid() != ppid:
        return  # the daemon died before the death signal was armed
    for s in (signal.SIGINT, signal.SIGTERM):
        signal.signal(s, signal.SIG_IGN)
    sock = socket.socket(fileno=sock_fd)

    import threadpoolctl

    from . import encode

    threadpoolctl.threadpool_limits(1)
    try:
        sock.sendall(_READY)
    except OSError:
        return  # closed while we started
    mapped: mmap.mmap | None = None
    while True:
        try:
            hlen, size = _JOB.unpack(_recv_exact(sock, _JOB.size))
            rec, blob = msgpack.unpackb(_recv_exact(sock, hlen), strict_map_key=False)
        except (EOFError, OSError):
            return  # the daemon closed us, or died
        try:
            if blob is None and size == 0:
                data: Any = b""
            elif blob is None:
                if mapped is None or len(mapped) < size:
                    # The old map goes when the last view of it does (never close()
                    # it here: a view still alive would raise BufferError).
                    mapped = mmap.mmap(arena, os.fstat(arena).st_size, prot=mmap.PROT_READ)
                data = memoryview(mapped)[:size]
            else:
                data = None
            out = encode.array_record(rec, _payload(rec, data, blob))
            del data
            status = _OK
        except Exception as exc:  # the record's failure is its result, never the worker's
            out = _dump_exception(exc)
            del exc
            status = _ERROR
        _pwrite_all(arena, out, 0)
        try:
            sock.sendall(_RESULT.pack(status, len(out)))
        except OSError:
            return
