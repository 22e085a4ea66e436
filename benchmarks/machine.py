"""One line that says where a benchmark ran: commit, machine, load, versions.

Every benchmark prints it above its tables (these machines are noisy: the
load and the commit are part of a figure's meaning).
"""

from __future__ import annotations

import contextlib
import os
import platform
import shutil
import subprocess
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent


def describe(modules: tuple[str, ...]) -> str:
    """``commit <rev>; <arch>, <n> cores, load ...; Python ..., <module versions>``."""
    from importlib.metadata import version

    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    vers = ", ".join(f"{m} {version(m)}" for m in modules)
    rev = ""
    try:
        git = ["git", "-C", str(REPO)]
        head = subprocess.run(
            [*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            [*git, "status", "--porcelain", "--", "sdk", "daemon", "proto"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        rev = f"commit {head}{' + uncommitted changes in sdk/daemon/proto' if dirty else ''}; "
    except (OSError, subprocess.CalledProcessError):
        pass
    return (
        f"{rev}{platform.machine()}, {os.cpu_count()} cores, load {load}; "
        f"Python {platform.python_version()}, {vers}"
    )


def tree_cpu(proc: Any) -> float:
    """CPU seconds of a daemon (a ``psutil.Process``) and its live encoder
    processes (psutil counts a child's CPU in its parent's only once reaped)."""
    import psutil

    total = 0.0
    for q in [proc, *proc.children(recursive=True)]:
        try:
            t = q.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += t.user + t.system
    return total


def tree_rss(proc: Any) -> int:
    """Resident bytes of the daemon and its encoder processes."""
    import psutil

    total = 0
    for q in [proc, *proc.children(recursive=True)]:
        try:
            total += q.memory_info().rss
        except psutil.NoSuchProcess:
            continue
    return total


def remove_scratch(tmp: Path, prefix: str) -> None:
    """A benchmark's temp dir, and every ring in /dev/shm under its prefix."""
    shutil.rmtree(tmp, ignore_errors=True)
    for name in os.listdir("/dev/shm"):
        if name.startswith(prefix):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join("/dev/shm", name))
