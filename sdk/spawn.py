"""Finding the daemon, and starting one when none runs.

A daemon holds an exclusive ``flock`` on ``daemon.lock`` in the runtime
directory for its whole life; the lock, not a pid file, answers "is one
running?" (a pid file outlives a SIGKILLed daemon, a lock does not).

To start one, the SDK takes that lock itself and hands the locked file
description to the child (``pass_fds``): the lock never has a moment without
an owner, so sixteen ranks that start together spawn exactly one daemon and
nobody waits for the child to boot.  The child runs in its own session
(``setsid``) so a Ctrl-C or a SIGKILL to the trainer's process group leaves it
alone; it exits by itself after an idle period without clients.

A daemon run by systemd keeps ``supervised`` in the runtime directory fresh
(``daemon/heartbeat.py``).  Its unit restarts it after a crash
(``Restart=on-failure``, ``RestartSec=1``); a client that spawned a detached
daemon in that gap would only have it stopped again by the unit's
``ExecStartPre``.  So while the marker is younger than ``SUPERVISED_GRACE``
the SDK starts no daemon; after that (the unit hit its start limit, or was
disabled without a clean stop) it spawns as usual.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

from .paths import Locations, ensure_runtime_dir, try_lock

# A trainer run as a Type=notify service must not have its daemon talk to
# the trainer's unit (READY, STOPPING, MAINPID would be taken as the trainer's).
_SYSTEMD_VARS = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")


def daemon_environment() -> dict[str, str]:
    """This process's environment for a daemon it starts, without systemd's notify variables."""
    return {k: v for k, v in os.environ.items() if k not in _SYSTEMD_VARS}


SUPERVISED_NAME = "supervised"
SUPERVISED_GRACE = 10.0  # seconds: RestartSec=1 plus a slow start, with room to spare


def supervised_restart_pending(loc: Locations) -> bool:
    """True while a systemd-run daemon was alive recently: its unit restarts it."""
    try:
        mtime = os.stat(os.path.join(loc.runtime_dir, SUPERVISED_NAME)).st_mtime
    except OSError:
        return False
    return time.time() - mtime < SUPERVISED_GRACE


def spawning_allowed() -> bool:
    return os.environ.get("SUMMARYD_NO_SPAWN", "") not in ("1", "true", "yes")


def _try_lock(loc: Locations) -> int | None:
    """The locked fd of ``daemon.lock`` if no daemon holds it, else None."""
    return try_lock(loc.lock_path)


def daemon_running(loc: Locations) -> bool:
    """True if a daemon holds this user's lock."""
    fd = _try_lock(loc)
    if fd is None:
        return True
    os.close(fd)  # closing the only descriptor drops the lock
    return False


def ensure_daemon(loc: Locations) -> int | None:
    """Start a detached daemon unless one runs, spawning is off, or systemd
    is about to restart its own (``supervised_restart_pending``).

    Returns:
        The pid of the daemon started here, or None.
    """
    ensure_runtime_dir(loc.runtime_dir)
    if not spawning_allowed():
        return None
    fd = _try_lock(loc)
    if fd is None:
        return None
    if supervised_restart_pending(loc):
        os.close(fd)
        return None
    try:
        log = os.open(loc.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
        try:
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "summaryd.daemon",
                    "serve",
                    "--spawned",
                    "--lock-fd",
                    str(fd),
                ],
                pass_fds=(fd,),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
                close_fds=True,
                env=daemon_environment(),
            )
        finally:
            os.close(log)
    finally:
        os.close(fd)  # the child holds the lock now (or it died and released it)
    # Reap the child when it exits so it does not linger as a zombie.
    threading.Thread(target=proc.wait, name="summaryd-reaper", daemon=True).start()
    return proc.pid
