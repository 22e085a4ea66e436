"""The `summaryd` command against a real daemon."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from summaryd import SummaryWriter

from ..conftest import DaemonEnv

pytestmark = pytest.mark.integration


def summaryd(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "summaryd.daemon", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_status_without_daemon_exits_3(daemon_env: DaemonEnv) -> None:
    r = summaryd(daemon_env.env, "status")
    assert r.returncode == 3
    assert "not running" in r.stdout
    r = summaryd(daemon_env.env, "status", "--json")
    assert r.returncode == 3 and json.loads(r.stdout)["running"] is False


def test_status_shows_clients_and_runs(daemon: DaemonEnv, tmp_path: Path) -> None:
    w = SummaryWriter(tmp_path / "run")
    for i in range(10):
        w.add_scalar("x", i, i)
    w.flush()
    r = summaryd(daemon.env, "status", "--json")
    assert r.returncode == 0, r.stderr
    st = json.loads(r.stdout)
    assert st["daemon"]["pid"] == daemon.pid
    (me,) = [c for c in st["clients"] if c["pid"] == __import__("os").getpid()]
    assert me["writers"] == 1 and me["records"] == 10 and me["dropped"] == 0
    (run,) = st["runs"]
    assert run["log_dir"] == str(tmp_path / "run")
    assert run["records"] == 11  # the version record and 10 scalars
    text = summaryd(daemon.env, "status").stdout
    assert str(tmp_path / "run") in text and "Clients (1)" in text
    w.close()


def test_stop_drains_and_exits(daemon: DaemonEnv, tmp_path: Path) -> None:
    assert daemon.proc is not None
    r = summaryd(daemon.env, "stop")
    assert r.returncode == 0, r.stderr
    assert daemon.proc.wait(30) == 0
    assert summaryd(daemon.env, "status").returncode == 3


def test_version_and_help(daemon_env: DaemonEnv) -> None:
    import summaryd as pkg

    assert summaryd(daemon_env.env, "--version").stdout.strip() == f"summaryd {pkg.__version__}"
    out = summaryd(daemon_env.env, "serve", "--help").stdout
    assert "--foreground" in out and "--idle-exit" in out


def test_spawned_style_daemon_exits_when_idle(daemon_env: DaemonEnv) -> None:
    proc = daemon_env.start("--idle-exit", "0.5")
    assert proc.wait(30) == 0
    daemon_env.proc = None


def test_second_daemon_refuses_to_start(daemon: DaemonEnv) -> None:
    r = summaryd(daemon.env, "serve", "--foreground")
    assert r.returncode == 1 and "already runs" in r.stderr
