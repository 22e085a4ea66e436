"""A daemon no client can break: another user (as root only).

Another uid (``nobody``) cannot reach the daemon's socket, and a ring it owns
is not adopted.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import msgpack
import pytest
import zmq

from summaryd import wire
from summaryd.paths import locations, process_start_ticks
from summaryd.ring import create_ring

from ..conftest import DaemonEnv, isolated_env
from .hostile_helpers import ask_status, wait_for_scan

pytestmark = pytest.mark.integration


# -- another user ----------------------------------------------------------------------

NOBODY = 65534
# Runs as nobody with the system python (root's interpreter is not readable):
# connect to the socket and, if that works, speak just enough ZMTP 3 (NULL
# mechanism, DEALER) to send a status request.  Prints what happened.
NOBODY_CODE = r"""
import socket, struct, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(2)
try:
    s.connect(sys.argv[1])
except OSError as exc:
    print("connect-refused", exc.__class__.__name__, exc.errno)
    sys.exit(0)

def recv(n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c:
            raise EOFError
        b += c
    return b

def frame():
    flags = recv(1)[0]
    return recv(struct.unpack(">Q", recv(8))[0] if flags & 2 else recv(1)[0])

try:
    s.sendall(b"\xff" + b"\0" * 8 + b"\x7f")  # greeting: signature, then the rest
    recv(10)
    s.sendall(b"\x03\x00" + b"NULL".ljust(20, b"\0") + b"\0" * 32)
    recv(54)
    body = b"\x05READY\x0bSocket-Type" + struct.pack(">I", 6) + b"DEALER"
    s.sendall(bytes([0x04, len(body)]) + body)
    frame()  # the daemon's READY
    msg = b"\x81\xa1t\xa6status"  # msgpack {"t": "status"}
    s.sendall(bytes([0x00, len(msg)]) + msg)
    reply = frame()
    print("answered" if b"status" in reply else "other-reply")
except (OSError, EOFError) as exc:
    print("no-answer", exc.__class__.__name__)
"""


def as_nobody(*args: str) -> subprocess.CompletedProcess[str]:
    setpriv = shutil.which("setpriv")
    assert setpriv is not None
    return subprocess.run(
        [setpriv, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", *args],
        capture_output=True,
        text=True,
        timeout=30,
        env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
    )


needs_root = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("setpriv") is None or not os.path.exists("/usr/bin/python3"),
    reason="needs root (to run a process as uid 65534 and chown files to it), setpriv, "
    "and /usr/bin/python3 (root's own interpreter may not be readable by another uid)",
)


@pytest.fixture
def open_path_daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonEnv]:
    """A daemon whose runtime dir's parents are traversable by anyone (pytest's
    basetemp is 0700, which would hide the socket by itself): only the runtime
    dir's 0700 and the socket's 0600 stand between another uid and the daemon."""
    base = Path(tmp_path_factory.mktemp("open"))
    outer = Path("/tmp") / f"sdtest-open-{secrets.token_hex(4)}"
    outer.mkdir(mode=0o711)
    os.chmod(outer, 0o711)
    try:
        with pytest.MonkeyPatch.context() as mp, isolated_env(base, mp) as d:
            rt = outer / "rt"
            mp.setenv("SUMMARYD_RUNTIME_DIR", str(rt))
            d.runtime_dir = rt
            d.env["SUMMARYD_RUNTIME_DIR"] = str(rt)
            (rt.parent / "daemon.stderr").touch()
            d.start()
            yield d
    finally:
        shutil.rmtree(outer, ignore_errors=True)


@needs_root
def test_another_uid_cannot_reach_the_socket(open_path_daemon: DaemonEnv) -> None:
    d = open_path_daemon
    sock_path = locations(d.env).socket_path
    assert os.stat(d.runtime_dir).st_mode & 0o777 == 0o700
    assert os.stat(sock_path).st_mode & 0o777 == 0o600
    # The runtime dir's 0700 stops it.
    out = as_nobody("/usr/bin/python3", "-c", NOBODY_CODE, sock_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("connect-refused PermissionError"), out.stdout
    # With the dir opened for traversal, the socket's own 0600 still stops it.
    os.chmod(d.runtime_dir, 0o711)
    try:
        out = as_nobody("/usr/bin/python3", "-c", NOBODY_CODE, sock_path)
    finally:
        os.chmod(d.runtime_dir, 0o700)
    assert out.stdout.startswith("connect-refused PermissionError"), out.stdout
    # The check itself works: root's copy of the same script gets an answer.
    mine = subprocess.run(
        ["/usr/bin/python3", "-c", NOBODY_CODE, sock_path],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert mine.stdout.startswith("answered"), mine.stdout + mine.stderr
    assert d.proc is not None and d.proc.poll() is None


@needs_root
def test_ring_owned_by_another_uid_is_not_adopted(daemon: DaemonEnv, tmp_path: Path) -> None:
    loc = locations(daemon.env)
    sid = secrets.token_hex(8)
    name = loc.ring_name(os.getpid(), sid)
    path = loc.ring_path(name)
    start = process_start_ticks(os.getpid()) or 0
    ring = create_ring(path, 4096, os.getpid(), start, sid.encode())
    payload = msgpack.packb([wire.OPEN, 1, str(tmp_path / "nobody"), "", 10, 1.0, None, 1.0])
    assert ring.put(payload)
    ring.close()
    os.chown(path, NOBODY, NOBODY)
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    try:
        sock.connect(loc.endpoint)
        sock.send(
            wire.pack(
                {
                    "t": "hello",
                    "v": 1,
                    "pid": os.getpid(),
                    "start": start,
                    "sid": sid,
                    "ring": name,
                    "argv": [],
                }
            )
        )
        assert sock.poll(2000)
        reply = wire.unpack(sock.recv())
    finally:
        sock.close()
    assert reply["t"] == "notice" and "refused" in reply["msg"], reply
    wait_for_scan(loc)  # a scan of /dev/shm must not adopt it either
    st = ask_status(loc)
    assert st is not None
    assert sid not in {c["sid"] for c in st["clients"]}
    assert not (tmp_path / "nobody").exists()
    assert os.path.exists(path)  # and it is not the daemon's to remove
