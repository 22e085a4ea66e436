"""Shared fixtures: a real daemon per test, in its own runtime dir and ring prefix.

Every daemon a test starts is stopped by PID in teardown, and every ring
with the test's prefix is removed, so two test runs (or two tests) never meet.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@dataclass
class DaemonEnv:
    """Where a test's daemon lives and how to reach it."""

    runtime_dir: Path
    ring_prefix: str
    env: dict[str, str]
    proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        try:
            return int((self.runtime_dir / "daemon.pid").read_text())
        except (FileNotFoundError, ValueError):
            return None

    def rings(self) -> list[str]:
        return sorted(n for n in os.listdir("/dev/shm") if n.startswith(self.ring_prefix + "."))

    def start(self, *extra: str) -> subprocess.Popen[bytes]:
        """Start ``summaryd serve --foreground`` and wait until it answers."""
        with open(self.runtime_dir.parent / "daemon.stderr", "ab") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "summaryd.daemon", "serve", "--foreground", *extra],
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
            )
        wait_for_daemon(self)
        return self.proc

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int | None:
        """Stop the daemon by PID (ours, or one a client spawned); its exit code if ours."""
        pid = self.proc.pid if self.proc is not None else self.pid
        if pid is None:
            return None
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass
        if self.proc is not None:
            try:
                return self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                return self.proc.wait()
            finally:
                self.proc = None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.02)
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
        return None


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def wait_for_daemon(d: DaemonEnv, timeout: float = 20.0) -> None:
    """Poll the daemon's status until it answers (start-up is not an event we can await)."""
    from summaryd.daemon.cli import request
    from summaryd.errors import DaemonUnavailableError
    from summaryd.paths import locations

    loc = locations(d.env)
    deadline = time.monotonic() + timeout
    while True:
        try:
            request(loc, {"t": "status"}, timeout=1.0)
            return
        except DaemonUnavailableError:
            if d.proc is not None and d.proc.poll() is not None:
                raise RuntimeError(f"daemon exited with {d.proc.returncode}") from None
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


@contextlib.contextmanager
def isolated_env(base: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[DaemonEnv]:
    """An isolated runtime dir (under ``base``) and ring prefix, set in this
    process's environment; on exit the client is closed, the daemon stopped by
    PID and the prefix's rings removed."""
    from summaryd import client

    client.shutdown_client(0.0)
    rt = base / "rt"
    prefix = "sdtest-" + secrets.token_hex(4)
    values = {
        "SUMMARYD_RUNTIME_DIR": str(rt),
        "SUMMARYD_RING_PREFIX": prefix,
        "SUMMARYD_IDLE_EXIT": "",
    }
    for k, v in values.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("SUMMARYD_NO_SPAWN", raising=False)
    d = DaemonEnv(rt, prefix, dict(os.environ))
    try:
        yield d
    finally:
        # Each step runs even if an earlier one raises (e.g. a warning turned
        # into an error by the final flush): no daemon or ring may outlive a test.
        try:
            client.shutdown_client(5.0)
        finally:
            try:
                d.stop()
            finally:
                for name in d.rings():
                    os.unlink(os.path.join("/dev/shm", name))


@contextlib.contextmanager
def daemons(base: Path, names: tuple[str, ...], one_prefix: bool) -> Iterator[list[DaemonEnv]]:
    """Daemons (started by the test) with a runtime dir each under ``base``:
    one ring prefix for all (daemons of one machine) or one each (nodes).
    Stopped by PID after, and every ring of their prefixes removed."""
    shared = f"sdtest-{os.getpid()}-{secrets.token_hex(4)}"
    envs = []
    for name in names:
        (base / name).mkdir()
        prefix = shared if one_prefix else f"{shared}-{name}"
        env = dict(os.environ) | {
            "SUMMARYD_RUNTIME_DIR": str(base / name / "rt"),
            "SUMMARYD_RING_PREFIX": prefix,
            "SUMMARYD_IDLE_EXIT": "",
            "SUMMARYD_NO_SPAWN": "1",  # the test starts and stops every daemon
        }
        envs.append(DaemonEnv(base / name / "rt", prefix, env))
    try:
        yield envs
    finally:
        try:
            for d in envs:
                d.stop()
        finally:
            for prefix in {d.ring_prefix for d in envs}:
                for ring in os.listdir("/dev/shm"):
                    if ring.startswith(prefix + "."):
                        os.unlink(os.path.join("/dev/shm", ring))


@pytest.fixture(scope="module")
def module_daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonEnv]:
    """One real daemon per test module, with the isolation of ``daemon`` (a start
    costs ~0.5 s: modules of hundreds of small cases share one).  Tests use it
    through a fixture that calls ``use_daemon``."""
    with (
        pytest.MonkeyPatch.context() as mp,
        isolated_env(tmp_path_factory.mktemp("module-daemon"), mp) as d,
    ):
        d.start()
        yield d


def use_daemon(d: DaemonEnv, monkeypatch: pytest.MonkeyPatch) -> None:
    """Put ``d``'s environment in force for this test (a test in between with a
    daemon of its own restores ours when it ends; its client is closed first)."""
    from summaryd import client

    for k in ("SUMMARYD_RUNTIME_DIR", "SUMMARYD_RING_PREFIX", "SUMMARYD_IDLE_EXIT"):
        if os.environ.get(k) != d.env[k]:
            client.shutdown_client(0.0)
            monkeypatch.setenv(k, d.env[k])


@pytest.fixture
def daemon_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[DaemonEnv]:
    """An isolated environment (see ``isolated_env``); no daemon is started:
    use ``daemon_env.start()`` or let a client spawn one."""
    with isolated_env(tmp_path, monkeypatch) as d:
        yield d


@pytest.fixture
def daemon(daemon_env: DaemonEnv) -> DaemonEnv:
    """A running daemon (``serve --foreground``) in an isolated environment."""
    daemon_env.start()
    return daemon_env


PEERS = REPO / "tests" / "peers"


def log_together(envs: list[dict[str, str]], timeout: float = 200.0) -> None:
    """Run ``tests/peers/log_scalars.py`` once per environment, released together.

    Each peer builds its writer and says "ready"; once all have, every one
    gets "go" (a barrier, not a sleep). Each must exit 0; none outlives the call.
    """
    peers: list[subprocess.Popen[str]] = []
    try:
        for env in envs:
            peers.append(
                subprocess.Popen(
                    [sys.executable, str(PEERS / "log_scalars.py")],
                    env=env,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    text=True,
                )
            )
        for p in peers:
            assert p.stdout is not None and p.stdout.readline() == "ready\n"
        for p in peers:  # go: all at once
            assert p.stdin is not None
            p.stdin.write("go\n")
            p.stdin.close()
        for p in peers:
            assert p.wait(timeout) == 0
    finally:
        for p in peers:
            if p.poll() is None:
                p.kill()
        for p in peers:
            p.wait()
            for f in (p.stdin, p.stdout):
                if f is not None and not f.closed:
                    f.close()


def read_events(path: Path) -> list[object]:
    """Every event in every event file under ``path`` (one dir), read by TensorBoard."""
    from tensorboard.backend.event_processing.event_file_loader import RawEventFileLoader
    from tensorboard.compat.proto import event_pb2

    out = []
    for f in sorted(p for p in path.iterdir() if "tfevents" in p.name):
        for raw in RawEventFileLoader(str(f)).Load():
            out.append(event_pb2.Event.FromString(raw))
    return out


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        default=False,
        help="rewrite tests/golden/*.pbtxt from the encoders' current output",
    )
