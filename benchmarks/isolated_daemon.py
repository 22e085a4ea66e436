"""One isolated ``summaryd serve --foreground`` for the benchmarks.

Its own runtime dir and ring prefix, ``SUMMARYD_NO_SPAWN=1`` for its clients (a
client can never start an untracked daemon), stopped by PID, rings and runtime
dir removed by ``cleanup``.  Shared by every script in this directory.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path


class IsolatedDaemon:
    def __init__(
        self, tmp: Path, prefix: str, env: dict[str, str] | None = None, name: str = "daemon"
    ) -> None:
        self.runtime = Path(tempfile.mkdtemp(prefix="sdb-rt-", dir="/tmp"))
        self.prefix = prefix
        self.stderr_path = tmp / f"{name}.stderr"
        self.env = dict(os.environ if env is None else env)
        self.env.update(
            SUMMARYD_RUNTIME_DIR=str(self.runtime),
            SUMMARYD_RING_PREFIX=self.prefix,
            SUMMARYD_IDLE_EXIT="",
            SUMMARYD_NO_SPAWN="1",
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> int:
        """Start it and wait until it answers; its pid."""
        from summaryd.daemon.cli import request
        from summaryd.errors import DaemonUnavailableError
        from summaryd.paths import locations

        cmd = [sys.executable, "-m", "summaryd.daemon", "serve", "--foreground"]
        with open(self.stderr_path, "ab") as err:
            self.proc = subprocess.Popen(
                [*cmd, "--log-level", "warning"],
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
            )
        loc = locations(self.env)
        deadline = time.monotonic() + 30
        while True:
            try:
                request(loc, {"t": "status"}, timeout=1.0)
                return self.proc.pid
            except DaemonUnavailableError:
                if self.proc.poll() is not None:
                    raise RuntimeError(
                        f"daemon exited with {self.proc.returncode}: {self.stderr()}"
                    ) from None
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)  # start-up has no event to wait on

    def stderr(self) -> str:
        try:
            return self.stderr_path.read_text()[-2000:]
        except OSError:
            return ""

    def cpu_s(self) -> float:
        import psutil

        assert self.proc is not None
        t = psutil.Process(self.proc.pid).cpu_times()
        return float(t.user + t.system)

    def rings(self) -> list[str]:
        return [n for n in os.listdir("/dev/shm") if n.startswith(self.prefix + ".")]

    def stop(self) -> int | None:
        """SIGTERM by PID: it drains every ring, writes, closes and exits; its exit code."""
        if self.proc is None:
            return None
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()
        finally:
            self.proc = None

    def cleanup(self) -> None:
        """Stop it and remove its rings and runtime dir."""
        self.stop()
        for name in self.rings():
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join("/dev/shm", name))
        shutil.rmtree(self.runtime, ignore_errors=True)
