"""One line that says where a benchmark ran: commit, machine, load, versions.

Every benchmark prints it above its tables (these machines are noisy: the
load and the commit are part of a figure's meaning).
"""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path

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
