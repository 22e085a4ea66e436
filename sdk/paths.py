"""Where summaryd's per-user state lives, and how a process is identified.

Shared by the SDK and the daemon so both derive the same names from the same
environment.  Everything here is cheap: it runs in every logging process.

* Runtime directory: ``$SUMMARYD_RUNTIME_DIR``, else ``$XDG_RUNTIME_DIR/summaryd``,
  else ``/tmp/summaryd-<uid>``; created 0700 and refused when it is a symlink,
  not a directory, or owned by another user.  It holds the control socket
  (``ctl.sock``), the single-instance lock and pid file, the daemon's log, and
  the state a restarted daemon resumes from (``state.bin``).
* Rings live in ``$SUMMARYD_SHM_DIR`` (default ``/dev/shm``) named
  ``<prefix>.<pid>.<session>`` with prefix ``$SUMMARYD_RING_PREFIX`` (default
  ``summaryd.<uid>``); tests give each daemon its own prefix.
"""

from __future__ import annotations

import fcntl
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass

from .errors import RuntimeDirError

SOCKET_NAME = "ctl.sock"
LOCK_NAME = "daemon.lock"
PID_NAME = "daemon.pid"
LOG_NAME = "daemon.log"
STATE_NAME = "state.bin"
# Unix socket paths hold at most 107 bytes (sun_path is 108 with the NUL).
MAX_SOCKET_PATH = 107


@dataclass(frozen=True)
class Locations:
    """Every path one user's summaryd uses, derived from the environment."""

    runtime_dir: str
    shm_dir: str
    ring_prefix: str

    @property
    def socket_path(self) -> str:
        return os.path.join(self.runtime_dir, SOCKET_NAME)

    @property
    def endpoint(self) -> str:
        return "ipc://" + self.socket_path

    @property
    def lock_path(self) -> str:
        return os.path.join(self.runtime_dir, LOCK_NAME)

    @property
    def pid_path(self) -> str:
        return os.path.join(self.runtime_dir, PID_NAME)

    @property
    def state_path(self) -> str:
        return os.path.join(self.runtime_dir, STATE_NAME)

    @property
    def log_path(self) -> str:
        return os.path.join(self.runtime_dir, LOG_NAME)

    def ring_name(self, pid: int, session: str) -> str:
        return f"{self.ring_prefix}.{pid}.{session}"

    def ring_path(self, name: str) -> str:
        return os.path.join(self.shm_dir, name)

    def is_ring_name(self, name: str) -> bool:
        return name.startswith(self.ring_prefix + ".") and name.count(".") >= 2


def locations(env: Mapping[str, str] | None = None) -> Locations:
    """Derive the locations from ``env`` (default ``os.environ``)."""
    if env is None:
        env = os.environ
    uid = os.getuid()
    runtime = env.get("SUMMARYD_RUNTIME_DIR")
    if not runtime:
        xdg = env.get("XDG_RUNTIME_DIR")
        runtime = os.path.join(xdg, "summaryd") if xdg else f"/tmp/summaryd-{uid}"
    return Locations(
        runtime_dir=runtime,
        shm_dir=env.get("SUMMARYD_SHM_DIR") or "/dev/shm",
        ring_prefix=env.get("SUMMARYD_RING_PREFIX") or f"summaryd.{uid}",
    )


def ensure_runtime_dir(path: str) -> None:
    """Create ``path`` 0700 or check that an existing one is safe to use.

    Raises:
        RuntimeDirError: ``path`` is a symlink, not a directory, owned by another
            user, open to group or others, or its socket path would be too long.
    """
    if len(os.path.join(path, SOCKET_NAME)) > MAX_SOCKET_PATH:
        raise RuntimeDirError(
            f"runtime directory {path!r} is too long for a Unix socket path "
            f"(max {MAX_SOCKET_PATH} bytes); set SUMMARYD_RUNTIME_DIR to a shorter path"
        )
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    except FileNotFoundError:
        raise RuntimeDirError(
            f"the parent of runtime directory {path!r} does not exist (a stale "
            f"XDG_RUNTIME_DIR?); set SUMMARYD_RUNTIME_DIR to a directory of yours"
        ) from None
    st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode):
        raise RuntimeDirError(f"runtime directory {path!r} is a symlink; refusing to use it")
    if not stat.S_ISDIR(st.st_mode):
        raise RuntimeDirError(f"runtime directory {path!r} is not a directory")
    if st.st_uid != os.getuid():
        raise RuntimeDirError(
            f"runtime directory {path!r} belongs to uid {st.st_uid}, not to you "
            f"(uid {os.getuid()}); remove it or set SUMMARYD_RUNTIME_DIR"
        )
    if st.st_mode & 0o077:
        raise RuntimeDirError(
            f"runtime directory {path!r} has mode {stat.S_IMODE(st.st_mode):o}; expected 700"
        )


def process_start_ticks(pid: int) -> int | None:
    """Start time of ``pid`` in clock ticks since boot, or None if it does not exist.

    A pid alone does not identify a process (pids are reused); pid plus start
    time does.  Reads ``/proc/<pid>/stat`` directly: it is what psutil reads,
    costs a few microseconds and needs no import in the logging process.
    """
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name (field 2) may contain spaces and parentheses: split after the last ')'.
    rest = data[data.rfind(b")") + 2 :].split()
    # rest[0] is field 3 (state); field 22 (starttime) is rest[19].
    if rest and rest[0] == b"Z":
        return None  # a zombie has exited; it only waits to be reaped
    try:
        return int(rest[19])
    except (IndexError, ValueError):
        return None


def process_alive(pid: int, start_ticks: int) -> bool:
    """True if the process ``pid`` that started at ``start_ticks`` still runs."""
    return process_start_ticks(pid) == start_ticks


def try_lock(path: str) -> int | None:
    """An fd holding an exclusive ``flock`` on ``path`` (created 0600), or None
    if another process holds it.  Whoever holds the fd holds the lock."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd
