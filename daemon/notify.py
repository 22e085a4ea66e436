"""systemd's sd_notify protocol: one datagram to ``$NOTIFY_SOCKET``.

Written here rather than pulled from a package: it is a sendto() of
``KEY=VALUE`` lines (an abstract socket when the path starts with ``@``).
Without ``$NOTIFY_SOCKET`` (not run by systemd) every call does nothing.
"""

from __future__ import annotations

import os
import socket


def send(*lines: str) -> bool:
    """Send ``lines`` as one notification; False if not under systemd or it failed."""
    addr = os.environ.get("NOTIFY_SOCKET")
    if not addr:
        return False
    if addr.startswith("@"):
        addr = "\0" + addr[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as s:
            s.sendto("\n".join(lines).encode(), addr)
        return True
    except OSError:
        return False


def watchdog_interval() -> float | None:
    """Seconds between WATCHDOG=1 pings (half of systemd's WatchdogSec), or None."""
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    try:
        v = int(usec)
    except ValueError:
        return None
    return v / 2e6 if v > 0 else None
