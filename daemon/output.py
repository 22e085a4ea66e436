"""The loop's files: event files per run, their descriptors, appends that
persist their intent first, and purges of a resumed run's earlier files."""

from __future__ import annotations

import collections
import logging
import os
import resource
import time
import zlib
from collections.abc import Callable
from typing import Any

from . import encode
from .actions import Append, CloseFile, OpenFile, PurgeFiles
from .core import Core
from .eventfile import EventFile, is_live, live_life
from .files import purge_file
from .remote import Remote, is_remote
from .spool import SpoolError
from .statefile import HEAD_BYTES

log = logging.getLogger("summaryd")

PURGE_DEFER_LIMIT = 600.0  # seconds a purge waits for another daemon to finish a file


class Output:
    def __init__(
        self,
        core: Core,
        host: str,
        pid: int,
        save_state: Callable[[dict[str, Any] | None], None],
        remote: Remote,
    ) -> None:
        self.core = core
        self.host = host
        self.pid = pid
        # Persists the core's snapshot with the write about to happen.
        self.save_state = save_state
        self.remote = remote  # s3:// runs: spooled and uploaded (``remote.py``)
        self.files: dict[int, EventFile] = {}
        # Runs whose event file has an open descriptor, least recently written first.
        self._open_fds: collections.OrderedDict[int, None] = collections.OrderedDict()
        self.file_errors = 0
        # Runs whose file, when tried again, starts a life resumed at this step.
        self._lives: dict[int, int] = {}
        # Runs that joined a life another daemon began at this step: their own
        # purge pair is left out of their first write (one START per life).
        self._drop_pair: dict[int, int] = {}
        # Earlier lives' files another daemon still wrote at the purge: path ->
        # (purge step, monotonic time to give up).
        self._deferred: dict[str, tuple[int, float]] = {}
        self._file_n = 0

    def open_file(self, act: OpenFile) -> None:
        try:
            if is_remote(act.log_dir):
                self.remote.open_run(act.run_id, act.log_dir, act.suffix)
                return
            self.files[act.run_id] = self._create(
                act.run_id, act.log_dir, act.suffix, act.purge_step
            )
        except (OSError, SpoolError) as exc:
            if act.purge_step is not None:
                self._lives[act.run_id] = act.purge_step  # for the retry
            # Retried at the run's next write, which reports the failure.
            log.error("cannot create an event file in %s: %s", act.log_dir, exc)

    def append(self, act: Append, now: float) -> None:
        if is_remote(act.log_dir):
            self._append_remote(act, now)
            return
        f = self.files.get(act.run_id)
        data = act.data
        try:
            if f is None:
                # The file could not be created earlier (unwritable directory,
                # disk full), or this retries a write after the run closed.
                life = self._lives.pop(act.run_id, None)
                f = self._create(act.run_id, act.log_dir, act.suffix, life)
                self.files[act.run_id] = f
            elif f.fd is None:
                self._make_room()
            if act.run_id in self._drop_pair:
                data = encode.without_purge_pair(data, self._drop_pair[act.run_id])
            f.append(data, self._intent(act, data))
            self._drop_pair.pop(act.run_id, None)
            self._open_fds[act.run_id] = None
            self._open_fds.move_to_end(act.run_id)
        except OSError as exc:
            self.file_errors += 1
            where = f.path if f is not None else act.log_dir
            log.error("writing %s failed: %s", where, exc)
            self.core.write_failed(act, f"{exc.strerror or exc}", now)
            return
        self.core.write_succeeded(act)

    def _intent(self, act: Append, data: bytes) -> Callable[[str, int], None]:
        """Persists, just before ``act`` is written at ``path``/``offset`` (under
        the file's append lock), where its records go and their CRC: a restarted
        daemon counts them as written only if those bytes are there (other
        daemons may have appended at that offset after this one died)."""

        def intent(path: str, offset: int) -> None:
            commits = [list(c) for c in act.commits]
            self.save_state(
                {
                    "path": path,
                    "offset": offset,
                    "length": len(data),
                    "crc": zlib.crc32(data),
                    "head": bytes(data[:HEAD_BYTES]),
                    "commits": commits,
                }
            )

        return intent

    def _append_remote(self, act: Append, now: float) -> None:
        data = act.data
        try:
            self.remote.append(
                act.run_id, act.log_dir, act.suffix, act.seq, data, self._intent(act, data)
            )
        except (OSError, SpoolError) as exc:
            self.file_errors += 1
            log.error("spooling %s failed: %s", act.log_dir, exc)
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            self.core.write_failed(act, f"spool: {why}", now)
            return
        # A full spool dropped the records (counted, told): they are done either way.
        self.core.write_succeeded(act)

    def close_file(self, act: CloseFile) -> None:
        if self.remote.owns(act.run_id):
            self.remote.close_run(act.run_id)
            return
        self._open_fds.pop(act.run_id, None)
        self._lives.pop(act.run_id, None)
        self._drop_pair.pop(act.run_id, None)
        f = self.files.pop(act.run_id, None)
        if f is not None:
            try:
                f.close()
            except OSError as exc:
                log.error("closing %s failed: %s", f.path, exc)

    def purge(self, act: PurgeFiles) -> None:
        """Remove the purged steps from the run's closed files (never from an open one)."""
        if is_remote(act.log_dir):
            # Objects are never rewritten: the new life's SessionLog.START, in an
            # object that sorts after every earlier one, makes TensorBoard's Python
            # loader (the only one that reads s3://) drop the purged steps.
            return
        open_paths = {f.path for f in self.files.values()}
        try:
            names = sorted(n for n in os.listdir(act.log_dir) if "tfevents" in n)
        except OSError as exc:
            log.warning("purge of %s: %s", act.log_dir, exc)
            return
        # Another node's rank resumed this life first: its file and the later
        # ones are the new life's, not to be purged.
        for i in range(len(names) - 1, -1, -1):
            if live_life(os.path.join(act.log_dir, names[i])) == act.step:
                names = names[:i]
                break
        for name in names:
            path = os.path.join(act.log_dir, name)
            if path in open_paths:
                continue
            if is_live(path):
                # Another daemon still writes the earlier life here (a node of
                # the run sharing the directory): purged once it lets go.
                self._deferred[path] = (act.step, time.monotonic() + PURGE_DEFER_LIMIT)
                continue
            self._purge_one(path, act.step)

    def retry_purges(self) -> None:
        """Purge the deferred files nobody writes any more (called every half second)."""
        for path, (step, give_up) in list(self._deferred.items()):
            if not is_live(path):
                del self._deferred[path]
                self._purge_one(path, step)
            elif time.monotonic() > give_up:
                del self._deferred[path]
                log.warning(
                    "%s is still written by another daemon after %.0f s: steps >= %d "
                    "stay in it (TensorBoard's Python loader drops them, the Rust one not)",
                    path,
                    PURGE_DEFER_LIMIT,
                    step,
                )

    def _purge_one(self, path: str, step: int) -> None:
        try:
            removed = purge_file(path, step, encode.survives_purge)
        except OSError as exc:
            log.error("purging %s failed: %s", path, exc)
            return
        if removed:
            log.info("purged %d event(s) at step >= %d from %s", removed, step, path)

    def path_of(self, run_id: int) -> str | None:
        f = self.files.get(run_id)
        return f.path if f is not None else None

    def close(self) -> None:
        for f in self.files.values():
            f.close()
        self.files.clear()

    def _create(self, run_id: int, log_dir: str, suffix: str, life: int | None = None) -> EventFile:
        self._file_n += 1
        self._make_room()
        f = EventFile.create(log_dir, time.time(), self.host, self.pid, self._file_n, suffix, life)
        if f.joined_life is not None:
            self._drop_pair[run_id] = f.joined_life
        self._open_fds[run_id] = None
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
