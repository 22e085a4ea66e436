"""Interim EncoderPool (threads); replaced by the process-based one on main."""

from __future__ import annotations

import logging
import os
import stat
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from . import encode, projector
from .arrays import decode_arrays

log = logging.getLogger("summaryd")

MAX_BLOB = 1 << 32


def read_blob(path: str) -> memoryview:
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
    fd = os.open(path, flags)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_uid != os.getuid():
            raise OSError("not a regular file of this user")
        if st.st_size > MAX_BLOB:
            raise OSError(f"{st.st_size} bytes exceeds {MAX_BLOB}")
        if st.st_blocks * 512 < st.st_size:
            raise OSError("sparse")
        buf = bytearray(st.st_size)
        view = memoryview(buf)
        got = 0
        while got < st.st_size:
            k = os.readv(fd, [view[got:]])
            if not k:
                raise OSError("shrank while being read")
            got += k
    finally:
        os.close(fd)
    return view.toreadonly()


def _payload(data: bytes | memoryview | None, blob: str | None) -> bytes | memoryview:
    if blob is None:
        assert data is not None
        return data
    try:
        return read_blob(blob)
    except OSError as exc:
        raise ValueError(f"blob {blob.rsplit('.b', 1)[-1]} unreadable: {exc}") from None


def write_projector(log_dir: str, params: dict[str, Any], arrays: list[Any]) -> None:
    root = os.path.realpath(log_dir)
    config = os.path.join(root, "projector_config.pbtxt")
    try:
        try:
            with open(config, encoding="utf-8") as f:
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


def _encode(rec: list[Any], data: bytes | memoryview | None, blob: str | None) -> bytes:
    return encode.array_record(rec, _payload(data, blob))


def _project(
    log_dir: str, params: Any, specs: Any, data: bytes | memoryview | None, blob: str | None
) -> bytes:
    write_projector(log_dir, params, decode_arrays(specs, _payload(data, blob)))
    return b""


class EncoderPool:
    def __init__(self, workers: int | None = None, wake: Callable[[], None] | None = None) -> None:
        self._wake = wake
        self._pool = ThreadPoolExecutor(
            max_workers=workers or min(4, max(2, os.cpu_count() or 2)),
            thread_name_prefix="encode",
        )
        self._serial = ThreadPoolExecutor(max_workers=1, thread_name_prefix="files")
        self._lock = threading.Lock()
        self._done: list[tuple[int, bytes | Exception]] = []
        self._outstanding = 0
        self._idle = threading.Condition(self._lock)

    def _submit(
        self, ex: ThreadPoolExecutor, job: int, fn: Callable[..., bytes], *args: Any
    ) -> None:
        with self._lock:
            self._outstanding += 1

        def run() -> None:
            try:
                res: bytes | Exception = fn(*args)
            except Exception as exc:
                res = exc
            with self._lock:
                self._done.append((job, res))
                self._outstanding -= 1
                self._idle.notify_all()
            if self._wake is not None:
                self._wake()

        ex.submit(run)

    def encode(
        self, job: int, rec: list[Any], data: bytes | memoryview | None, blob: str | None = None
    ) -> None:
        self._submit(self._pool, job, _encode, rec, data, blob)

    def project(
        self,
        job: int,
        log_dir: str,
        params: dict[str, Any],
        rec_arrays: Any,
        data: bytes | memoryview | None,
        blob: str | None = None,
    ) -> None:
        self._submit(self._serial, job, _project, log_dir, params, rec_arrays, data, blob)

    def results(self) -> list[tuple[int, bytes | Exception]]:
        with self._lock:
            done, self._done = self._done, []
        return done

    def outstanding(self) -> int:
        with self._lock:
            return self._outstanding

    def wait(self, timeout: float) -> bool:
        with self._idle:
            return self._idle.wait_for(lambda: self._outstanding == 0, timeout)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._serial.shutdown(wait=True, cancel_futures=True)
