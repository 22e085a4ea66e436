"""The daemon run exactly as the systemd user unit says.

The daemon is started with the unit's ExecStart, working directory and
Environment=, with a real AF_UNIX datagram socket standing in for
``$NOTIFY_SOCKET`` (READY=1, watchdog pings, STOPPING=1), never idle-exits,
lives in ``$XDG_RUNTIME_DIR`` and displaces a spawned daemon through
ExecStartPre. One opt-in test (``SUMMARYD_TEST_SYSTEMD_USER=1``) runs the
unit under the caller's real user manager.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from summaryd.daemon.cli import request
from summaryd.daemon.service import render_unit
from summaryd.errors import DaemonUnavailableError
from summaryd.paths import locations

from ..conftest import DaemonEnv, wait_for_daemon
from .service_helpers import command, setting, unit_environment

pytestmark = pytest.mark.integration


# -- running the daemon as the unit does ---------------------------------------


class NotifySocket:
    """A bound AF_UNIX datagram socket in place of systemd's; ``address`` is what
    goes into ``$NOTIFY_SOCKET`` ("@name" for the abstract namespace)."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind("\0" + address[1:] if address.startswith("@") else address)

    def recv(self, timeout: float) -> tuple[float, dict[str, str]]:
        """The next notification (arrival time, fields); fails after ``timeout`` s."""
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(4096)
        except TimeoutError:
            pytest.fail(f"no notification within {timeout} s")
        t = time.monotonic()
        return t, dict(line.split("=", 1) for line in data.decode().splitlines())

    def close(self) -> None:
        self.sock.close()


@contextlib.contextmanager
def notify_socket(address: str) -> Iterator[NotifySocket]:
    ns = NotifySocket(address)
    try:
        yield ns
    finally:
        ns.close()


def service_env(base: dict[str, str], text: str, **extra: str) -> dict[str, str]:
    """``base`` (the manager's environment) with the unit's Environment= on top, as
    systemd builds it; no notify or watchdog variables unless given in ``extra``."""
    env = {k: v for k, v in base.items() if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC")}
    env.pop("WATCHDOG_PID", None)
    return env | unit_environment(text) | extra


@contextlib.contextmanager
def run_exec_start(
    text: str, env: dict[str, str], stderr_path: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """Start the unit's ExecStart in its WorkingDirectory; stopped by PID at the end."""
    prefix, argv = command(setting(text, "Service", "ExecStart"))
    assert prefix == ""
    with open(stderr_path, "ab") as err:
        proc = subprocess.Popen(
            argv,
            env=env,
            cwd=setting(text, "Service", "WorkingDirectory"),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()


def status_json(env: dict[str, str]) -> dict[str, Any]:
    r = subprocess.run(
        [sys.executable, "-m", "summaryd.daemon", "status", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    st: dict[str, Any] = json.loads(r.stdout)
    return st


# -- the daemon as the unit runs it ------------------------------------------------


def test_notify_ready_watchdog_stopping(daemon_env: DaemonEnv, tmp_path: Path) -> None:
    text = render_unit(sys.executable, {})
    with notify_socket(str(tmp_path / "notify")) as ns:
        env = service_env(daemon_env.env, text, NOTIFY_SOCKET=ns.address, WATCHDOG_USEC="400000")
        with run_exec_start(text, env, tmp_path / "daemon.stderr") as proc:
            _, first = ns.recv(30)
            assert first.get("READY") == "1", first
            assert first.get("MAINPID") == str(proc.pid)
            # READY=1 means the control socket answers now: one request, no retry.
            st = request(locations(env), {"t": "status"}, timeout=5)
            assert st["daemon"]["pid"] == proc.pid

            pings: list[float] = []
            while len(pings) < 6:
                t, msg = ns.recv(5)
                assert msg == {"WATCHDOG": "1"}
                pings.append(t)
            gaps = [b - a for a, b in zip(pings, pings[1:], strict=False)]
            assert all(0.1 <= g <= 0.35 for g in gaps), gaps  # half of 0.4 s

            os.kill(proc.pid, signal.SIGTERM)
            while True:
                _, msg = ns.recv(30)
                if msg != {"WATCHDOG": "1"}:
                    break
            assert msg.get("STOPPING") == "1", msg
            assert proc.wait(30) == 0


def test_notify_abstract_socket(daemon_env: DaemonEnv, tmp_path: Path) -> None:
    text = render_unit(sys.executable, {})
    with notify_socket("@summaryd-test-" + secrets.token_hex(6)) as ns:
        env = service_env(daemon_env.env, text, NOTIFY_SOCKET=ns.address)
        with run_exec_start(text, env, tmp_path / "daemon.stderr") as proc:
            _, msg = ns.recv(30)
            assert msg.get("READY") == "1", msg
            request(locations(env), {"t": "status"}, timeout=5)
            os.kill(proc.pid, signal.SIGTERM)
            _, msg = ns.recv(30)  # no watchdog: STOPPING=1 is next
            assert msg == {"STOPPING": "1"}
            assert proc.wait(30) == 0


def test_no_watchdog_pings_for_another_process(daemon_env: DaemonEnv, tmp_path: Path) -> None:
    """WATCHDOG_PID names someone else (inherited, say): the daemon must not ping for it."""
    text = render_unit(sys.executable, {})
    with notify_socket(str(tmp_path / "notify")) as ns:
        env = service_env(
            daemon_env.env,
            text,
            NOTIFY_SOCKET=ns.address,
            WATCHDOG_USEC="200000",
            WATCHDOG_PID=str(os.getpid()),
        )
        with run_exec_start(text, env, tmp_path / "daemon.stderr") as proc:
            _, msg = ns.recv(30)
            assert msg.get("READY") == "1", msg
            time.sleep(0.6)  # six ping intervals
            os.kill(proc.pid, signal.SIGTERM)
            _, msg = ns.recv(30)
            assert msg == {"STOPPING": "1"}
            assert proc.wait(30) == 0


def test_unit_daemon_never_idle_exits_and_serves_clients(
    daemon_env: DaemonEnv, tmp_path: Path
) -> None:
    from summaryd import SummaryWriter

    text = render_unit(sys.executable, {})
    # Even if the manager's environment asks spawned daemons to idle-exit quickly.
    env = service_env(daemon_env.env | {"SUMMARYD_IDLE_EXIT": "0.3"}, text)
    with run_exec_start(text, env, tmp_path / "daemon.stderr") as proc:
        daemon_env.proc = proc
        wait_for_daemon(daemon_env)
        daemon_env.proc = None  # stopped by run_exec_start
        st = status_json(env)
        assert st["daemon"]["idle_exit"] is None
        time.sleep(1.0)  # > the 0.3 s idle period asked for
        assert proc.poll() is None

        # A client in this process (the test's environment) finds it: no daemon of its own.
        w = SummaryWriter(tmp_path / "run")
        w.add_scalar("x", 1.0, 0)
        w.flush()
        st = status_json(daemon_env.env)
        assert st["daemon"]["pid"] == proc.pid == daemon_env.pid
        assert os.getpid() in [c["pid"] for c in st["clients"]]
        w.close()


def test_unit_daemon_lives_in_xdg_runtime_dir(daemon_env: DaemonEnv, tmp_path: Path) -> None:
    """Under a user manager only XDG_RUNTIME_DIR is set: the daemon goes where a
    client with that environment looks."""
    xdg = tmp_path / "xdg"
    xdg.mkdir(mode=0o700)
    text = render_unit(sys.executable, {})
    manager_env = {k: v for k, v in daemon_env.env.items() if k != "SUMMARYD_RUNTIME_DIR"}
    manager_env["XDG_RUNTIME_DIR"] = str(xdg)
    env = service_env(manager_env, text)
    with run_exec_start(text, env, tmp_path / "daemon.stderr") as proc:
        deadline = time.monotonic() + 20
        while True:
            try:
                st = request(locations(manager_env), {"t": "status"}, timeout=1)
                break
            except DaemonUnavailableError:
                assert proc.poll() is None and time.monotonic() < deadline
                time.sleep(0.05)
        assert st["daemon"]["pid"] == proc.pid
        assert st["daemon"]["runtime_dir"] == str(xdg / "summaryd")
        assert status_json(manager_env)["daemon"]["pid"] == proc.pid


def test_exec_start_pre_displaces_a_spawned_daemon(daemon_env: DaemonEnv, tmp_path: Path) -> None:
    text = render_unit(sys.executable, {})
    env = service_env(daemon_env.env, text)
    prefix, pre = command(setting(text, "Service", "ExecStartPre"))
    assert "-" in prefix  # its failure is ignored ...
    cwd = setting(text, "Service", "WorkingDirectory")
    r = subprocess.run(pre, env=env, cwd=cwd, capture_output=True, timeout=120)
    assert r.returncode == 3  # ... which is what "nothing runs" is

    old = daemon_env.start("--idle-exit", "60")  # as a trainer would have spawned it
    r = subprocess.run(pre, env=env, cwd=cwd, capture_output=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert old.wait(30) == 0  # it drained and exited
    daemon_env.proc = None
    with run_exec_start(text, env, tmp_path / "daemon.stderr") as proc:
        st = None
        deadline = time.monotonic() + 20
        while st is None:
            try:
                st = request(locations(env), {"t": "status"}, timeout=1)
            except DaemonUnavailableError:
                assert proc.poll() is None and time.monotonic() < deadline
                time.sleep(0.05)
        assert st["daemon"]["pid"] == proc.pid != old.pid


# -- under a real user manager (opt-in) -----------------------------------------------


@pytest.mark.skipif(
    os.environ.get("SUMMARYD_TEST_SYSTEMD_USER") != "1",
    reason="set SUMMARYD_TEST_SYSTEMD_USER=1 to run a unit under your systemd user manager",
)
def test_under_real_user_manager(daemon_env: DaemonEnv, tmp_path: Path) -> None:
    """The rendered unit (hardening included) under the real manager, as a runtime
    unit with a unique name and this test's runtime dir and ring prefix."""
    from summaryd import SummaryWriter

    if subprocess.run(["systemctl", "--user", "show-environment"], capture_output=True).returncode:
        pytest.skip("no systemd user manager answers")
    name = f"summaryd-test-{secrets.token_hex(4)}.service"
    runtime_units = Path(os.environ["XDG_RUNTIME_DIR"]) / "systemd" / "user"
    runtime_units.mkdir(parents=True, exist_ok=True)
    unit = runtime_units / name
    isolated = {k: daemon_env.env[k] for k in ("SUMMARYD_RUNTIME_DIR", "SUMMARYD_RING_PREFIX")}
    unit.write_text(render_unit(sys.executable, isolated))

    def systemctl(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["systemctl", "--user", *args], capture_output=True, text=True, timeout=120
        )

    try:
        assert systemctl("daemon-reload").returncode == 0
        r = systemctl("start", name)  # returns once READY=1 arrived
        assert r.returncode == 0, r.stderr
        pid = int(systemctl("show", "-p", "MainPID", "--value", name).stdout)
        st = request(locations(daemon_env.env), {"t": "status"}, timeout=5)
        assert st["daemon"]["pid"] == pid and st["daemon"]["idle_exit"] is None
        w = SummaryWriter(tmp_path / "run")
        w.add_scalar("x", 1.0, 0)
        w.close()
        assert any("tfevents" in p.name for p in (tmp_path / "run").iterdir())
        assert systemctl("stop", name).returncode == 0
        assert systemctl("show", "-p", "Result", "--value", name).stdout.strip() == "success"
    finally:
        systemctl("stop", name)
        unit.unlink()
        systemctl("daemon-reload")
        systemctl("reset-failed", name)
