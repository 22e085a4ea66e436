"""A daemon no client can break: hostile control messages and clients, against a real daemon.

Each scenario runs ``tests/peers/hostile_client.py`` misbehaving in one way
while a well-behaved client logs GOOD_N scalars through
``summaryd.SummaryWriter`` in its own log dir (``hostile_helpers.scenario``).
Afterwards: the daemon is the same process and answers ``status``; every good
event is in the good run, as TensorBoard reads it; the good client saw no flush
time out, dropped nothing and was told nothing; every event file under the
test's directory is whole records to its last byte; and the misbehaviour shows
where it should (malformed counters, a broken ring, a notice). A test that finds
a bug asserts the right behaviour and fails; see each docstring.

Covered here: garbage control messages, a wrong protocol version, a hello
with NUL in its session or a deeply nested argv, another client stealing a
session, floods of control messages, a huge message, leaked writers, a huge
argv in ``status``, and a good client with a long argument.
"""

from __future__ import annotations

import resource
import subprocess
import sys
from pathlib import Path

import pytest

from summaryd import wire

from ..conftest import DaemonEnv
from .hostile_helpers import (
    GOOD_CODE,
    GOOD_N,
    HOSTILE,
    assert_daemon_healthy,
    assert_whole_event_files,
    good_env,
    good_points,
    hostile_env,
    peer,
    scenario,
)

pytestmark = pytest.mark.integration


# -- scenarios: the misbehaviour the daemon already handles -------------------------


def test_garbage_control_messages(daemon: DaemonEnv, tmp_path: Path) -> None:
    _, bad = scenario(daemon, tmp_path, "garbage_messages", HOSTILE_COUNT="400")
    notices = [r for r in bad["replies"] if r["t"] == "notice"]
    assert notices, "garbage messages get error notices"
    assert all(r["level"] == "error" for r in notices)
    assert all(r["t"] in ("notice", "status", "stopping") for r in bad["replies"]), bad["replies"]


def test_wrong_protocol_version_gets_a_notice_naming_it(daemon: DaemonEnv, tmp_path: Path) -> None:
    _, bad = scenario(daemon, tmp_path, "wrong_version", HOSTILE_VERSION="2")
    reply = bad["reply"]
    assert reply is not None and reply["t"] == "notice", reply
    assert reply["level"] == "error"
    assert "protocol version 2" in reply["msg"]
    assert f"speaks {wire.PROTOCOL_VERSION}" in reply["msg"]


# -- scenarios that find bugs (each asserts the right behaviour) --------------------


def test_hello_with_nul_in_session_is_refused(daemon: DaemonEnv, tmp_path: Path) -> None:
    """Was a crash (found at 4bb94ed, fixed since by the session-id check in
    ``_hello``): ``open_ring`` raised ValueError (embedded null byte), which
    ``_attach`` did not catch, so one hello killed the daemon."""
    _, bad = scenario(daemon, tmp_path, "nul_session")
    assert bad["reply"] is not None and bad["reply"]["t"] == "notice"


def test_hello_with_deeply_nested_argv(daemon: DaemonEnv, tmp_path: Path) -> None:
    """BUG: ``str(x) for x in argv`` raises RecursionError for 1,000 nested lists
    (msgpack accepts 1,023) in ``_attach``, after the ring is in ``attached`` but
    before the core knows the client.  Uncaught, that killed the daemon; caught
    by ``_receive``'s blanket except, it leaves a half-attached ring whose first
    drained record raises KeyError in ``Core.batch``, outside any except: the
    daemon dies one cycle later."""
    _, bad = scenario(daemon, tmp_path, "deep_argv")
    assert bad["reply"] is not None


def test_another_client_cannot_steal_a_session(daemon: DaemonEnv, tmp_path: Path) -> None:
    """BUG: hello names another client's session: the daemon welcomes it (no check
    of pid or ring when the session is known) and the "bye" that follows drains,
    closes and *removes the victim's ring*; the victim's later records are lost
    and its flushes time out.  A ring of another pid under the same session is
    also adopted over the victim's (``attached`` is keyed by session alone)."""
    assert daemon.proc is not None
    pid = daemon.proc.pid
    good_dir = tmp_path / "good"
    with peer([sys.executable, "-c", GOOD_CODE, str(good_dir)], good_env(daemon)) as g:
        g.ready()
        g.send("go\n")
        victim = g.line(60).split()[1]  # half logged and flushed: the theft comes now
        env = hostile_env(daemon, tmp_path, "steal_session", HOSTILE_VICTIM=victim)
        with peer([sys.executable, str(HOSTILE)], env) as bad:
            bad.ready(45)
            report = bad.finish(30)
        g.send("go\n")
        good_report = g.finish(60)
    assert_daemon_healthy(daemon, pid)
    assert report["hello"] is not None and report["hello"]["t"] == "notice", report
    points = good_points(good_dir)
    assert sum(points.values()) == GOOD_N
    assert good_report["flushes_timed_out"] == 0, good_report
    assert_whole_event_files(tmp_path)


@pytest.mark.parametrize("kind", ["bell", "status"])
def test_flood_of_control_messages_does_not_starve_rings(
    daemon: DaemonEnv, tmp_path: Path, kind: str
) -> None:
    """BUG: ``_receive`` reads until the socket is empty; clients that send faster
    than the daemon handles keep it there, so rings are not drained and flushes
    not acknowledged (the good client's close times out).  Two flooding
    processes of two sockets each."""
    _, bad = scenario(
        daemon, tmp_path, "flood_bells", copies=2, HOSTILE_SOCKETS="2", HOSTILE_FLOOD=kind
    )
    assert bad["sent"] > 1000


def test_huge_message_costs_no_more_than_the_limit(daemon: DaemonEnv, tmp_path: Path) -> None:
    """BUG: the ROUTER has no ZMQ_MAXMSGSIZE: a 128 MiB message is received whole
    and copied (about twice its size in the daemon) before ``wire.unpack``
    refuses it for exceeding 1 MiB; a few GiB take the daemon out by OOM."""
    assert daemon.proc is not None
    status_file = Path(f"/proc/{daemon.proc.pid}/status")

    def peak_kib() -> int:
        line = next(x for x in status_file.read_text().splitlines() if x.startswith("VmHWM"))
        return int(line.split()[1])

    before = peak_kib()
    scenario(daemon, tmp_path, "huge_message", n=500, HOSTILE_BYTES=str(128 << 20))
    grew_mib = (peak_kib() - before) / 1024
    assert grew_mib < 64, f"the daemon's peak memory grew by {grew_mib:.0f} MiB"


def test_leaked_writers_do_not_break_the_daemon(daemon: DaemonEnv, tmp_path: Path) -> None:
    """BUG: a trainer that opens writers and never closes them uses one daemon fd
    each; at the fd limit (256 here, standing for the usual 1024) the daemon's
    liveness check fails to open /proc/<pid>/stat with EMFILE, which
    ``process_start_ticks`` does not catch: the daemon dies.  (Were it caught as
    "dead", live clients' rings would be removed.)  Other clients' new runs must
    also still get files."""
    assert daemon.proc is not None
    resource.prlimit(daemon.proc.pid, resource.RLIMIT_NOFILE, (256, 256))
    scenario(daemon, tmp_path, "many_writers", HOSTILE_COUNT="300")


def test_status_stays_readable_with_a_huge_argv(daemon: DaemonEnv, tmp_path: Path) -> None:
    """BUG: a client's argv is kept whole (str() of each item) and sent in every
    status reply: one hello under the 1 MiB limit makes status over 2 MiB, which
    ``summaryd status`` (wire.unpack) refuses: the CLI shows a traceback."""
    scenario(daemon, tmp_path, "big_argv")  # asserts status decodes, as the CLI does
    out = subprocess.run(
        [sys.executable, "-m", "summaryd.daemon", "status", "--json"],
        env=daemon.env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 0, out.stderr[-2000:]


def test_good_client_with_a_long_argument_gets_its_flushes(
    daemon: DaemonEnv, tmp_path: Path
) -> None:
    """BUG: the SDK sends sys.argv[:32] whole in hello; one argument over 64 KiB
    (an inline JSON config) exceeds the daemon's max_str_len, the hello is
    refused, and every flush and close of that trainer waits the full timeout."""
    args = [sys.executable, "-c", GOOD_CODE, str(tmp_path / "good"), "x" * 70_000]
    with peer(args, good_env(daemon, 1000)) as g:
        g.ready()
        g.send("go\ngo\n")
        g.line(60)
        report = g.finish(60)
    assert sum(good_points(tmp_path / "good").values()) == 1000
    assert report["flushes_timed_out"] == 0, report
    assert report["warnings"] == [], report
