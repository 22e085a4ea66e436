"""Tests for ``summaryd.daemon.notify``: sd_notify datagrams and the watchdog interval.

A real AF_UNIX datagram socket stands in for systemd's ``$NOTIFY_SOCKET``,
bound to a path or in the abstract namespace ("@name").
"""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from summaryd.daemon import notify


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    """A datagram socket bound to a path, and that path."""
    path = str(tmp_path / "notify")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.bind(path)
        s.settimeout(5)
        yield s, path


def test_send_without_notify_socket_does_nothing(clean_env: pytest.MonkeyPatch) -> None:
    assert notify.send("READY=1") is False
    clean_env.setenv("NOTIFY_SOCKET", "")
    assert notify.send("READY=1") is False


def test_send_to_a_path_socket(
    clean_env: pytest.MonkeyPatch, listener: tuple[socket.socket, str]
) -> None:
    sock, path = listener
    clean_env.setenv("NOTIFY_SOCKET", path)
    assert notify.send("READY=1", "STATUS=serving", f"MAINPID={os.getpid()}") is True
    assert sock.recv(4096) == f"READY=1\nSTATUS=serving\nMAINPID={os.getpid()}".encode()
    assert notify.send("WATCHDOG=1") is True
    assert sock.recv(4096) == b"WATCHDOG=1"


def test_send_to_an_abstract_socket(clean_env: pytest.MonkeyPatch) -> None:
    name = "summaryd-test-" + secrets.token_hex(6)
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.bind("\0" + name)
        s.settimeout(5)
        clean_env.setenv("NOTIFY_SOCKET", "@" + name)
        assert notify.send("STOPPING=1") is True
        assert s.recv(4096) == b"STOPPING=1"


def test_send_to_a_missing_socket_fails_quietly(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    clean_env.setenv("NOTIFY_SOCKET", str(tmp_path / "nobody-listens"))
    assert notify.send("READY=1") is False
    clean_env.setenv("NOTIFY_SOCKET", "@summaryd-test-nobody-" + secrets.token_hex(6))
    assert notify.send("READY=1") is False


def test_watchdog_interval_is_half_of_watchdog_usec(clean_env: pytest.MonkeyPatch) -> None:
    assert notify.watchdog_interval() is None
    clean_env.setenv("WATCHDOG_USEC", "30000000")
    assert notify.watchdog_interval() == 15.0
    clean_env.setenv("WATCHDOG_USEC", "400000")
    assert notify.watchdog_interval() == pytest.approx(0.2)


def test_watchdog_interval_checks_watchdog_pid(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("WATCHDOG_USEC", "400000")
    clean_env.setenv("WATCHDOG_PID", str(os.getpid()))
    assert notify.watchdog_interval() == pytest.approx(0.2)
    # Inherited from a parent that systemd watches: the pings are not ours to send.
    clean_env.setenv("WATCHDOG_PID", str(os.getppid()))
    assert notify.watchdog_interval() is None
    clean_env.setenv("WATCHDOG_PID", "")
    assert notify.watchdog_interval() == pytest.approx(0.2)


@pytest.mark.parametrize("value", ["", "soon", "1.5e6"])
def test_watchdog_interval_ignores_unusable_values(
    clean_env: pytest.MonkeyPatch, value: str
) -> None:
    clean_env.setenv("WATCHDOG_USEC", value)
    assert notify.watchdog_interval() is None
