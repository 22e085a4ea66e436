"""A hostile peer beside a well-behaved client, against a real daemon, and the checks after.

``scenario`` runs ``tests/peers/hostile_client.py`` misbehaving in one way
(``hostile_env``) while a well-behaved client (``GOOD_CODE``, ``good_env``)
logs GOOD_N scalars through ``summaryd.SummaryWriter`` in its own log dir, then
checks that the daemon is healthy (same process, answers ``status``), every
good event is in the good run as TensorBoard reads it, and every event file is
whole records. Shared by ``test_hostile_messages.py``,
``test_hostile_rings.py``, ``test_hostile_fuzz.py``,
``test_hostile_other_uid.py`` and ``test_hostile_arrays.py``.
"""

from __future__ import annotations

import contextlib
import json
import queue
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import zmq

from summaryd import wire
from summaryd.daemon.tfrecord import whole_records_length
from summaryd.paths import Locations, locations

from ..conftest import DaemonEnv, read_events

PEERS = Path(__file__).resolve().parent.parent / "peers"
HOSTILE = PEERS / "hostile_client.py"
GOOD_N = 5000
GOOD_TAG = "good/loss"
# The good client's flush/close bound: a healthy daemon acknowledges in milliseconds.
GOOD_FLUSH_TIMEOUT = "4"
STATUS_TIMEOUT = 2.0

# The well-behaved client, in two halves: "ready"; on "go" it makes its writer,
# logs half of $GOOD_N scalars, flushes and prints "half <its ring name>"; on the
# next "go" it logs the rest, closes, and prints a JSON line of what it saw.
GOOD_CODE = r"""
import json, os, sys, time, warnings
from summaryd import SummaryWriter, client
n = int(os.environ["GOOD_N"])
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    print("ready", flush=True)
    sys.stdin.readline()
    t = time.monotonic()
    w = SummaryWriter(sys.argv[1])
    for i in range(n // 2):
        w.add_scalar("good/loss", float(i), i)
    w.flush()
    print("half", client.current_client().ring_name, flush=True)
    sys.stdin.readline()
    for i in range(n // 2, n):
        w.add_scalar("good/loss", float(i), i)
    w.close()
    seconds = time.monotonic() - t
    s = client.current_client().statistics()
print(json.dumps({"flushes_timed_out": s.flushes_timed_out, "records_dropped": s.records_dropped,
                  "seconds": seconds, "warnings": [str(c.message) for c in caught]}), flush=True)
"""


# -- helpers -----------------------------------------------------------------------


def daemon_log(d: DaemonEnv) -> str:
    """The tail of the daemon's stderr (where a crash leaves its traceback)."""
    try:
        return (d.runtime_dir.parent / "daemon.stderr").read_text(errors="replace")[-3000:]
    except FileNotFoundError:
        return ""


def ask_status(loc: Locations, timeout: float = STATUS_TIMEOUT) -> dict[str, Any] | None:
    """The daemon's status reply, decoded as the CLI decodes it; None if no answer in time."""
    ctx = zmq.Context.instance()
    s = ctx.socket(zmq.DEALER)
    s.setsockopt(zmq.LINGER, 0)
    try:
        s.connect(loc.endpoint)
        s.send(wire.pack({"t": "status"}))
        if not s.poll(int(timeout * 1000)):
            return None
        return wire.unpack(s.recv())
    finally:
        s.close()


def wait_for_scan(loc: Locations, timeout: float = 20.0) -> None:
    """Return once the daemon completed a scan of the ring directory that began
    after this call (the second one that ends from now: the first may have
    started before).  The daemon's status counts scans: an event, not a period."""
    first = ask_status(loc)
    assert first is not None
    target = first["daemon"]["scans"] + 2
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        st = ask_status(loc)
        if st is not None and st["daemon"]["scans"] >= target:
            return
        time.sleep(0.05)  # polling the status, which is the event's only source
    raise AssertionError(f"no scan of the ring directory within {timeout} s")


def assert_daemon_healthy(d: DaemonEnv, pid: int) -> dict[str, Any]:
    """The daemon is still process ``pid`` and answers status within 2 s."""
    assert d.proc is not None
    code = d.proc.poll()
    assert code is None, f"the daemon exited with {code}:\n{daemon_log(d)}"
    try:
        st = ask_status(locations(d.env))
    except wire.ProtocolError as exc:
        pytest.fail(f"the daemon's status reply does not decode: {exc}")
    assert st is not None, f"the daemon did not answer status within 2 s:\n{daemon_log(d)}"
    assert st["daemon"]["pid"] == pid
    return st


def assert_whole_event_files(root: Path) -> int:
    """Every event file under ``root`` is whole TFRecords to its last byte; their count."""
    files = sorted(p for p in root.rglob("*") if "tfevents" in p.name and p.is_file())
    for f in files:
        data = f.read_bytes()
        assert whole_records_length(data) == len(data), f"{f} ends in a partial record"
    return len(files)


def good_points(log_dir: Path) -> Counter[tuple[str, int]]:
    return Counter((v.tag, e.step) for e in read_events(log_dir) for v in e.summary.value)


class Peer:
    """A child process speaking the peers' line protocol: "ready", then a JSON line."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            args, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.stderr = b""
        self.readers = [
            threading.Thread(target=self._read, daemon=True),
            threading.Thread(target=self._read_err, daemon=True),
        ]
        for t in self.readers:
            t.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            self.lines.put(raw.decode(errors="replace").rstrip("\n"))
        self.lines.put(None)

    def _read_err(self) -> None:
        assert self.proc.stderr is not None
        self.stderr = self.proc.stderr.read()

    def line(self, timeout: float) -> str:
        try:
            got = self.lines.get(timeout=timeout)
        except queue.Empty:
            got = None
        assert got is not None, f"peer gave no line in {timeout} s: {self.stderr[-2000:]!r}"
        return got

    def ready(self, timeout: float = 30.0) -> str:
        got = self.line(timeout)
        assert got.startswith("ready"), got
        return got

    def send(self, text: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(text.encode())
        self.proc.stdin.flush()

    def finish(self, timeout: float = 60.0) -> dict[str, Any]:
        """Close its stdin, wait for its JSON line and its exit."""
        assert self.proc.stdin is not None
        with contextlib.suppress(BrokenPipeError):
            self.proc.stdin.close()
        out = json.loads(self.line(timeout))
        self.proc.wait(timeout)
        return out  # type: ignore[no-any-return]

    def stop(self) -> None:
        """Stop it by PID if it still runs."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        for t in self.readers:  # they end at EOF; closing their pipes under them would raise
            t.join(10)
        for f in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if f is not None:
                with contextlib.suppress(BrokenPipeError):
                    f.close()


@contextlib.contextmanager
def peer(args: list[str], env: dict[str, str]) -> Iterator[Peer]:
    p = Peer(args, env)
    try:
        yield p
    finally:
        p.stop()


def good_env(d: DaemonEnv, n: int = GOOD_N) -> dict[str, str]:
    return d.env | {
        "GOOD_N": str(n),
        "SUMMARYD_NO_SPAWN": "1",  # a dead daemon must show, not be replaced
        "SUMMARYD_FLUSH_TIMEOUT": GOOD_FLUSH_TIMEOUT,
        "SUMMARYD_EXIT_FLUSH_TIMEOUT": "1",
    }


def hostile_env(d: DaemonEnv, tmp_path: Path, mode: str, **extra: str) -> dict[str, str]:
    return good_env(d) | {
        "HOSTILE_MODE": mode,
        "HOSTILE_SEED": "1",
        "HOSTILE_SECONDS": "40",
        "HOSTILE_LOG_DIR": str(tmp_path / "hostile"),
        **extra,
    }


def scenario(
    d: DaemonEnv, tmp_path: Path, mode: str, n: int = GOOD_N, copies: int = 1, **extra: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Run the hostile peer in ``mode`` while a good client logs ``n`` scalars.

    The hostile peer does its bad thing first and stays a live client (a
    flood goes on) while the good client makes its writer, logs, flushes and
    closes; then it finishes.  Checks what must hold whatever the mode; returns
    (the good client's report, the hostile peer's report).
    """
    assert d.proc is not None
    pid = d.proc.pid
    before = assert_daemon_healthy(d, pid)
    assert before["clients"] == []
    good_dir = tmp_path / "good"
    with contextlib.ExitStack() as stack:
        good = stack.enter_context(
            peer([sys.executable, "-c", GOOD_CODE, str(good_dir)], good_env(d, n))
        )
        bad = [
            stack.enter_context(
                peer([sys.executable, str(HOSTILE)], hostile_env(d, tmp_path, mode, **extra))
            )
            for _ in range(copies)
        ]
        good.ready()
        for b in bad:
            b.ready(45)
        assert_daemon_healthy(d, pid)  # fail fast when the bad thing killed it
        good.send("go\ngo\n")
        good.line(60)  # half
        good_report = good.finish(60)
        bad_report = [b.finish(60) for b in bad][0]
    assert_daemon_healthy(d, pid)
    # Every good event arrived, once, as TensorBoard reads the run.
    points = good_points(good_dir)
    missing = n - sum(1 for i in range(n) if points[(GOOD_TAG, i)] == 1)
    assert missing == 0 and sum(points.values()) == n, f"{missing} of {n} good events missing"
    assert good_report["flushes_timed_out"] == 0, good_report
    assert good_report["records_dropped"] == 0, good_report
    assert good_report["warnings"] == [], good_report
    assert assert_whole_event_files(tmp_path) >= 1
    return good_report, bad_report


def malformed_total(d: DaemonEnv) -> int:
    st = ask_status(locations(d.env))
    assert st is not None
    return int(st["totals"]["malformed"])
