"""The systemd user unit: its text, the daemon run as it says, install and uninstall.

There is no systemd user manager in CI, so the unit's contract is checked
piece by piece: ``systemd-analyze verify`` parses the rendered unit; the
daemon is started with exactly the unit's ExecStart, working directory and
Environment=, with a real AF_UNIX datagram socket standing in for
``$NOTIFY_SOCKET``; ``install-service``/``uninstall-service`` run against a
fake ``systemctl`` that records its arguments. One opt-in test
(``SUMMARYD_TEST_SYSTEMD_USER=1``) runs the unit under the caller's real user
manager.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shlex
import shutil
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
from summaryd.daemon.loop import SHUTDOWN_LIMIT
from summaryd.daemon.service import PLACEHOLDER_PYTHON, UNIT_NAME, render_unit
from summaryd.errors import DaemonUnavailableError
from summaryd.paths import locations

from ..conftest import REPO, DaemonEnv, wait_for_daemon

pytestmark = pytest.mark.integration

EXIT_NO_MANAGER = 4
LOCATION_VARIABLES = {
    "SUMMARYD_RUNTIME_DIR",
    "XDG_RUNTIME_DIR",
    "SUMMARYD_RING_PREFIX",
    "SUMMARYD_SHM_DIR",
}


# -- reading a unit, as systemd does for what this unit uses -------------------


def settings(text: str) -> list[tuple[str, str, str]]:
    """(section, key, value) for every setting, in order."""
    out = []
    section = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        out.append((section, key.strip(), value.strip()))
    return out


def setting(text: str, section: str, key: str) -> str:
    (value,) = [v for s, k, v in settings(text) if s == section and k == key]
    return value


def command(value: str) -> tuple[str, list[str]]:
    """An Exec*= value: its prefix characters ("-", ":", ...) and argv."""
    i = 0
    while value[i] in "-@:+!":
        i += 1
    argv = [w.replace("%%", "%") for w in shlex.split(value[i:])]
    return value[:i], argv


def unit_environment(text: str) -> dict[str, str]:
    env = {}
    for _, _, value in (s for s in settings(text) if s[:2] == ("Service", "Environment")):
        for word in shlex.split(value):
            k, _, v = word.partition("=")
            env[k] = v.replace("%%", "%")
    return env


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


# -- the unit's text -------------------------------------------------------------


def test_checked_in_unit_is_the_rendered_one() -> None:
    checked_in = (REPO / "systemd" / UNIT_NAME).read_text()
    assert checked_in == render_unit(PLACEHOLDER_PYTHON, {}), (
        "systemd/summaryd.service differs from daemon/service.py; regenerate it with\n"
        "  python -c 'from summaryd.daemon.service import render_unit as r; "
        'print(r("/usr/bin/python3"), end="")\' > systemd/summaryd.service'
    )


def test_unit_settings() -> None:
    text = render_unit(sys.executable, {})
    assert setting(text, "Service", "Type") == "notify"
    assert setting(text, "Service", "NotifyAccess") == "main"
    assert setting(text, "Service", "WatchdogSec") == "30"
    assert setting(text, "Service", "Restart") == "on-failure"
    assert setting(text, "Service", "KillMode") == "mixed"
    assert setting(text, "Service", "PrivateTmp") == "no"
    assert setting(text, "Service", "RestrictAddressFamilies") == "AF_UNIX"
    assert setting(text, "Install", "WantedBy") == "default.target"
    # SIGKILL must not cut the daemon's drain (capped at SHUTDOWN_LIMIT) nor the fsyncs after.
    assert float(setting(text, "Service", "TimeoutStopSec")) >= SHUTDOWN_LIMIT + 15
    assert int(setting(text, "Unit", "StartLimitBurst")) > 1
    prefix, argv = command(setting(text, "Service", "ExecStart"))
    assert (prefix, argv) == (
        "",
        [sys.executable, "-m", "summaryd.daemon", "serve", "--foreground"],
    )
    env = unit_environment(text)
    assert env["SUMMARYD_IDLE_EXIT"] == "0" and env["PYTHONUNBUFFERED"] == "1"
    # Clients find the daemon through their own environment: the unit moves nothing.
    assert not LOCATION_VARIABLES & set(env)


def test_render_unit_quotes_what_systemd_would_expand() -> None:
    python = "/opt/my envs/a$HOME/py%n"
    extra = {"FOO": 'a b%c$d"e\\f', "SUMMARYD_MAX_LATENCY": "0.5"}
    text = render_unit(python, extra)
    for key in ("ExecStartPre", "ExecStart"):
        prefix, argv = command(setting(text, "Service", key))
        assert argv[0] == python
        assert ":" in prefix  # "$" in the path: no variable expansion on this line
    assert unit_environment(text) | extra == unit_environment(text)
    with pytest.raises(ValueError, match="absolute"):
        render_unit("python3", {})
    for bad in ('/opt/a"b/python', "/opt/a\\b/python", "/opt/a'b/python", "/opt/a\tb/python"):
        with pytest.raises(ValueError, match="quote, a backslash or a control"):
            render_unit(bad, {})
    with pytest.raises(ValueError, match="control character"):
        render_unit(sys.executable, {"A": "x\ny"})
    with pytest.raises(ValueError, match="not a valid"):
        render_unit(sys.executable, {"A B": "x"})


def systemd_analyze() -> str:
    exe = shutil.which("systemd-analyze")
    if exe is None:
        msg = (
            "systemd-analyze is not installed: apt-get install --no-install-recommends systemd "
            "(.ci/run does)"
        )
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    return exe


def verify(unit: Path, tmp_path: Path) -> list[str]:
    """``systemd-analyze --user verify``: its complaints about ``unit``."""
    xdg = tmp_path / "xdg"
    xdg.mkdir(mode=0o700, exist_ok=True)
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    env = {"PATH": os.environ.get("PATH", os.defpath), "XDG_RUNTIME_DIR": str(xdg)}
    r = subprocess.run(
        [systemd_analyze(), "--user", "verify", str(unit)],
        env=env | {"HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    complaints = [line for line in (r.stdout + r.stderr).splitlines() if UNIT_NAME in line]
    if r.returncode != 0 and not complaints:
        complaints = [f"exit status {r.returncode}: {r.stdout}{r.stderr}"]
    return complaints


def test_systemd_analyze_verify(tmp_path: Path) -> None:
    unit = tmp_path / UNIT_NAME
    unit.write_text(render_unit(sys.executable, {"SUMMARYD_LOG_LEVEL": "debug"}))
    assert verify(unit, tmp_path) == []

    # Quoting: systemd finds an interpreter whose path holds a space, "%" and "$".
    odd = tmp_path / "my envs$X" / "py%1"
    odd.parent.mkdir()
    odd.symlink_to(sys.executable)
    unit.write_text(render_unit(str(odd), {"A": 'x y%z$"\\'}))
    assert verify(unit, tmp_path) == []

    # ... and it does complain, about a bad setting or a missing interpreter.
    text = render_unit(str(tmp_path / "no-such-python"), {})
    unit.write_text(text.replace("WatchdogSec=30", "WatchdogSec=soon"))
    complaints = "\n".join(verify(unit, tmp_path))
    assert "no-such-python" in complaints and "soon" in complaints


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


# -- install-service / uninstall-service ------------------------------------------

FAKE_SYSTEMCTL = """\
#!/bin/sh
# Stands in for `systemctl --user`: records each call and whether the unit file
# existed at that moment.
if [ -e "$FAKE_UNIT" ]; then state=present; else state=absent; fi
printf '%s|%s\\n' "$*" "$state" >> "$FAKE_LOG"
case "$*" in
  "--user show-environment")
    if [ -n "$FAKE_NO_MANAGER" ]; then
      echo "Failed to connect to bus: No medium found" >&2
      exit 1
    fi
    echo "HOME=$HOME"
    echo "XDG_RUNTIME_DIR=$FAKE_MANAGER_XDG_RUNTIME_DIR"
    if [ -n "$XDG_CONFIG_HOME" ]; then echo "XDG_CONFIG_HOME=$XDG_CONFIG_HOME"; fi
    ;;
  "--user enable"*)
    if [ -n "$FAKE_FAIL_ENABLE" ]; then
      echo "Failed to enable unit: something" >&2
      exit 1
    fi
    ;;
esac
exit 0
"""


class Home:
    """A home directory, config directory and PATH for install-service to use."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.bin = root / "bin"
        self.bin.mkdir()
        self.log = root / "systemctl.log"
        self.config = root / "cfg"
        self.unit = self.config / "systemd" / "user" / UNIT_NAME
        xdg = str(root / "xdg")
        self.env = {
            "HOME": str(root / "home"),
            "XDG_CONFIG_HOME": str(self.config),
            "XDG_RUNTIME_DIR": xdg,
            "PATH": str(self.bin),
            "FAKE_LOG": str(self.log),
            "FAKE_UNIT": str(self.unit),
            "FAKE_MANAGER_XDG_RUNTIME_DIR": xdg,
        }

    def fake_systemctl(self) -> None:
        exe = self.bin / "systemctl"
        exe.write_text(FAKE_SYSTEMCTL)
        exe.chmod(0o755)

    def calls(self) -> list[str]:
        return self.log.read_text().splitlines() if self.log.exists() else []

    def summaryd(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "summaryd.daemon", *args],
            env=self.env | env,
            capture_output=True,
            text=True,
            timeout=120,
        )


@pytest.fixture
def home(tmp_path: Path) -> Home:
    return Home(tmp_path)


def test_install_now_reloads_then_enables(home: Home) -> None:
    home.fake_systemctl()
    r = home.summaryd("install-service", "--now")
    assert r.returncode == 0, r.stdout + r.stderr
    assert home.unit.read_text() == render_unit(sys.executable, {})
    assert home.calls() == [
        "--user show-environment|present",
        "--user daemon-reload|present",
        f"--user enable --now {UNIT_NAME}|present",
    ]
    assert "enabled and running" in r.stdout
    assert "warning" not in r.stderr

    r = home.summaryd("install-service", "--now")  # again: same file, same steps
    assert r.returncode == 0 and "unchanged" in r.stdout


def test_install_without_now_and_without_xdg_config_home(home: Home) -> None:
    home.fake_systemctl()
    del home.env["XDG_CONFIG_HOME"]
    home.env["FAKE_UNIT"] = str(Path(home.env["HOME"]) / ".config/systemd/user" / UNIT_NAME)
    r = home.summaryd("install-service", XDG_CONFIG_HOME="relative/is/ignored")
    assert r.returncode == 0, r.stdout + r.stderr
    unit = Path(home.env["FAKE_UNIT"])
    assert unit.read_text() == render_unit(sys.executable, {})
    assert not home.unit.exists()
    assert home.calls()[-1] == f"--user enable {UNIT_NAME}|present"
    assert "systemctl --user start summaryd" in r.stdout


def test_install_without_systemctl_prints_the_steps(home: Home) -> None:
    r = home.summaryd("install-service", "--now")
    assert r.returncode == EXIT_NO_MANAGER, r.stdout + r.stderr
    assert home.unit.read_text() == render_unit(sys.executable, {})
    assert "systemctl is not on PATH" in r.stderr
    assert "systemctl --user daemon-reload" in r.stdout
    assert f"systemctl --user enable --now {UNIT_NAME}" in r.stdout


def test_install_without_user_manager_prints_the_steps(home: Home) -> None:
    home.fake_systemctl()
    r = home.summaryd("install-service", "--now", FAKE_NO_MANAGER="1")
    assert r.returncode == EXIT_NO_MANAGER, r.stdout + r.stderr
    assert home.unit.exists()
    assert home.calls() == ["--user show-environment|present"]
    assert "No medium found" in r.stderr
    assert f"systemctl --user enable --now {UNIT_NAME}" in r.stdout


def test_install_reports_a_failed_enable(home: Home) -> None:
    home.fake_systemctl()
    r = home.summaryd("install-service", "--now", FAKE_FAIL_ENABLE="1")
    assert r.returncode == 1
    assert "Failed to enable unit" in r.stderr and "journalctl --user -u summaryd" in r.stderr


def test_install_warns_when_clients_would_look_elsewhere(home: Home, tmp_path: Path) -> None:
    home.fake_systemctl()
    other = str(tmp_path / "elsewhere")
    r = home.summaryd("install-service", SUMMARYD_RUNTIME_DIR=other)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "warning" in r.stderr and other in r.stderr
    assert str(tmp_path / "xdg" / "summaryd") in r.stderr


def test_install_env_option(home: Home) -> None:
    home.fake_systemctl()
    r = home.summaryd("install-service", "--env", "SUMMARYD_MAX_LATENCY=0.5")
    assert r.returncode == 0, r.stdout + r.stderr
    text = home.unit.read_text()
    assert text == render_unit(sys.executable, {"SUMMARYD_MAX_LATENCY": "0.5"})
    assert unit_environment(text)["SUMMARYD_MAX_LATENCY"] == "0.5"
    home.unit.unlink()
    for bad in ("SUMMARYD_RUNTIME_DIR=/x", "SUMMARYD_RING_PREFIX=p", "SUMMARYD_IDLE_EXIT=5", "X"):
        r = home.summaryd("install-service", "--env", bad)
        assert r.returncode == 2, bad
        assert r.stderr.startswith("summaryd: --env"), r.stderr
    assert not home.unit.exists()


def test_install_print_writes_nothing(home: Home) -> None:
    r = home.summaryd("install-service", "--print")
    assert r.returncode == 0
    assert r.stdout == render_unit(sys.executable, {})
    assert not home.unit.exists() and home.calls() == []


def test_uninstall_disables_then_removes(home: Home) -> None:
    home.fake_systemctl()
    assert home.summaryd("install-service", "--now").returncode == 0
    home.log.unlink()
    r = home.summaryd("uninstall-service")
    assert r.returncode == 0, r.stdout + r.stderr
    assert not home.unit.exists()
    assert home.calls() == [
        "--user show-environment|present",
        f"--user disable --now {UNIT_NAME}|present",
        "--user daemon-reload|absent",
        f"--user reset-failed {UNIT_NAME}|absent",
    ]

    r = home.summaryd("uninstall-service")
    assert r.returncode == 0 and "not installed" in r.stdout


def test_uninstall_without_user_manager_removes_file_and_link(home: Home) -> None:
    assert home.summaryd("install-service").returncode == EXIT_NO_MANAGER
    wants = home.unit.parent / "default.target.wants" / UNIT_NAME
    wants.parent.mkdir()
    wants.symlink_to(home.unit)  # enabled earlier, when a manager ran
    r = home.summaryd("uninstall-service")
    assert r.returncode == 0, r.stdout + r.stderr
    assert not home.unit.exists() and not wants.is_symlink()
    assert "nothing was stopped" in r.stdout


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
