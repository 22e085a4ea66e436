"""A daemon no client can break: hostile peers and fuzzing against a real daemon.

Three parts:

* Scenarios: ``tests/peers/hostile_client.py`` misbehaves in one way (garbage
  control messages, a wrong protocol version, garbage or torn ring records,
  rings the daemon must refuse, floods, stolen sessions...) while a
  well-behaved client logs GOOD_N scalars through ``summaryd.SummaryWriter``
  in its own log dir.  Afterwards: the daemon is the same process and answers
  ``status``; every good event is in the good run, as TensorBoard reads it;
  the good client saw no flush time out, dropped nothing and was told nothing;
  every event file under the test's directory is whole records to its last
  byte; and the misbehaviour shows where it should (malformed counters, a
  broken ring, a notice).
* Fuzzing (hypothesis) against the real daemon's socket and rings: one daemon
  for the module; after every example a ``status`` request must be answered
  within 2 s.  The number of examples run is printed and written to
  ``<pytest basetemp>/fuzz_counts.json``.
* As root: another uid cannot reach the socket, and a ring it owns is not adopted.

A test that finds a bug asserts the right behaviour and fails; see each docstring.
"""

from __future__ import annotations

import contextlib
import json
import mmap
import os
import queue
import resource
import secrets
import shutil
import struct
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zlib import crc32

import msgpack
import pytest
import zmq
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from summaryd import SummaryWriter, wire
from summaryd.daemon.tfrecord import whole_records_length
from summaryd.paths import Locations, locations, process_start_ticks
from summaryd.ring import HEADER_SIZE, create_ring

from ..conftest import DaemonEnv, isolated_env, read_events

pytestmark = pytest.mark.integration

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


def test_garbage_records_are_counted_and_skipped(daemon: DaemonEnv, tmp_path: Path) -> None:
    count = 300
    _, bad = scenario(daemon, tmp_path, "garbage_records", HOSTILE_COUNT=str(count))
    assert bad["hello"]["t"] == "welcome"
    assert bad["acked"], "the daemon acknowledges a flush past garbage records"
    assert malformed_total(daemon) == count
    warnings_ = [r for r in bad["replies"] if r["t"] == "notice" and r["level"] == "warning"]
    assert 1 <= len(warnings_) <= 20  # NOTICE_LIMIT
    # The hostile's own good records around the garbage are written.
    assert Counter(v.tag for e in read_events(tmp_path / "hostile") for v in e.summary.value) == {
        "hostile/ok": 5
    }


def test_records_for_unknown_writers_are_counted_and_skipped(
    daemon: DaemonEnv, tmp_path: Path
) -> None:
    count = 220
    _, bad = scenario(daemon, tmp_path, "unknown_writer", HOSTILE_COUNT=str(count))
    assert bad["acked"]
    assert malformed_total(daemon) == count
    # Nothing escaped the log dir, nor landed under a relative or NUL-bearing name.
    assert not (tmp_path / "escape").exists()
    assert all("tfevents" in p.name for p in (tmp_path / "hostile").iterdir())


@pytest.mark.parametrize("mode", ["torn_records", "bad_length"])
def test_corrupt_ring_is_dropped_alone(daemon: DaemonEnv, tmp_path: Path, mode: str) -> None:
    _, bad = scenario(daemon, tmp_path, mode)
    assert bad["acked_before"]
    notice = bad["notice"]
    assert notice is not None and "ring corrupt" in notice["msg"], bad
    # Records before the corrupt one are written; none after it.
    tags = Counter(
        (v.tag, e.step) for e in read_events(tmp_path / "hostile") for v in e.summary.value
    )
    assert tags == Counter({("hostile/ok", i): 1 for i in range(10)})


def test_rings_the_daemon_must_refuse(daemon: DaemonEnv, tmp_path: Path) -> None:
    _, bad = scenario(daemon, tmp_path, "bad_ring_header")
    assert set(bad["hello"].values()) == {"notice"}, bad["hello"]
    st = ask_status(locations(daemon.env))
    assert st is not None
    assert not {c["sid"] for c in st["clients"]} & set(bad["sids"].values())


def test_ring_with_mode_0644_is_refused(daemon: DaemonEnv, tmp_path: Path) -> None:
    _, bad = scenario(daemon, tmp_path, "bad_ring_mode")
    assert bad["hello"] == {"mode_0644": "notice"}
    assert not (tmp_path / "hostile").exists()  # its OPEN record was never read


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


def test_truncated_ring_does_not_kill_the_daemon(daemon: DaemonEnv, tmp_path: Path) -> None:
    """BUG: a client truncates its adopted ring; the daemon's next touch of the
    mapping (bell word, drain, status) is SIGBUS.  The peer truncates while the
    daemon sleeps: a truncation racing the very store cannot be survived by a
    process that maps the file (only a sealed memfd would rule it out)."""
    _, bad = scenario(daemon, tmp_path, "truncate_ring")
    assert bad["acked"]


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


# -- fuzzing the real daemon ---------------------------------------------------------

FUZZ_SETTINGS = dict(
    deadline=None,
    database=None,
    derandomize=True,
    # No shrinking: after a crash every example fails, and the first one is the culprit.
    phases=(Phase.explicit, Phase.reuse, Phase.generate),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
I64 = st.integers(-(2**63), 2**64 - 1)
NASTY_STR = st.sampled_from(
    [
        "",
        ".",
        "..",
        "../../../etc/passwd",
        "/etc/passwd",
        "/dev/shm",
        "/tmp/../tmp",
        "a\0b",
        "\0",
        "x" * 300,
        "ü/ü",
        " ",
        "0" * 16,
        "\n",
    ]
)
TEXT = st.one_of(NASTY_STR, st.text(max_size=40))
LEAF = st.one_of(
    st.none(),
    st.booleans(),
    I64,
    st.floats(),
    TEXT,
    st.binary(max_size=40),
)
KEY = st.one_of(
    st.sampled_from(["t", "v", "pid", "start", "sid", "ring", "argv", "tok", "pos", "level"]),
    st.text(max_size=8),
    st.binary(max_size=4),
    st.integers(-3, 3),
    st.none(),
)
MSGPACK = st.recursive(
    LEAF,
    lambda children: st.one_of(
        st.lists(children, max_size=5), st.dictionaries(KEY, children, max_size=5)
    ),
    max_leaves=12,
)


def other_pids() -> st.SearchStrategy[int]:
    return st.sampled_from([1, os.getpid(), os.getppid(), 0, -1, 2**31, 2**64 - 1])


def fuzz_messages(loc: Locations) -> st.SearchStrategy[dict[str, Any]]:
    """Messages of every type the daemon reads but ``stop`` (which stops it, by
    design).  Mostly well-typed, so they get past ``wire.unpack`` to the handlers:
    every field of the right type with hostile values (hello's version mostly
    right; pids of other processes; sessions that are hex, traversing, NUL-bearing;
    positions and tokens negative or huge), and at most one field of a wrong type
    or missing; hello's ring is often the name the daemon derives from pid and sid."""
    missing = object()
    wrong = st.one_of(
        LEAF,
        st.lists(LEAF, max_size=3),
        st.dictionaries(st.text(max_size=3), LEAF, max_size=3),
        st.just(missing),
    )
    ints = st.one_of(I64, other_pids(), st.integers(-(2**31), 2**31))
    v = wire.PROTOCOL_VERSION
    sids = [
        "a\0b",
        "\0" * 16,
        "0123456789abcde\0",
        "../../../../tmp/x",
        "x/../../y",
        "/etc/passwd",
        "",
        ".",
        "0" * 300,
    ]
    right: dict[str, st.SearchStrategy[Any]] = {
        "v": st.sampled_from([v, v, v, v, v, v, 0, v + 1, -1, 2**64 - 1]),
        "pid": st.one_of(other_pids(), st.integers(1, 2**22), I64),
        "sid": st.one_of(
            st.sampled_from(sids),
            st.sampled_from(sids),
            st.binary(min_size=8, max_size=8).map(bytes.hex),
            TEXT,
        ),
        "argv": st.lists(MSGPACK, max_size=6),
        "level": st.sampled_from(["warning", "error", ""]),
    }
    kinds = sorted(set(wire.MESSAGES) - {"stop"})

    @st.composite
    def build(draw: st.DrawFn) -> dict[str, Any]:
        t = draw(st.sampled_from(["hello", "hello", "flush", "bye", *kinds, "x", ""]))
        fields = wire.MESSAGES.get(t, {})
        broken = draw(st.sampled_from([None] * max(3, len(fields)) + list(fields)))
        msg: dict[str, Any] = {"t": t}
        for name, typ in fields.items():
            if name == broken:
                value = draw(wrong)
            elif name in right:
                value = draw(right[name])
            else:
                value = draw({int: ints, str: TEXT, list: st.lists(MSGPACK, max_size=6)}[typ])
            if value is not missing:
                msg[name] = value
        if t == "hello" and broken != "ring" and draw(st.sampled_from([True, True, False])):
            msg["ring"] = loc.ring_name(msg.get("pid", 0), msg.get("sid", ""))
        msg.update(draw(st.dictionaries(st.text(max_size=5), LEAF, max_size=2)))
        return msg

    return build()


@pytest.fixture(scope="module")
def _fuzz_daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonEnv]:
    """One real daemon for the fuzz tests (the isolation of conftest's ``daemon``)."""
    with (
        pytest.MonkeyPatch.context() as mp,
        isolated_env(tmp_path_factory.mktemp("fuzz-daemon"), mp) as d,
    ):
        d.start()
        yield d


def answers_status(d: DaemonEnv) -> bool:
    try:
        return (
            d.proc is not None
            and d.proc.poll() is None
            and ask_status(locations(d.env)) is not None
        )
    except wire.ProtocolError:
        return False


@pytest.fixture
def fuzz_daemon(_fuzz_daemon: DaemonEnv, monkeypatch: pytest.MonkeyPatch) -> DaemonEnv:
    """The module's daemon with its environment in force; restarted if an earlier
    test broke it, so each test judges only what it sent."""
    from summaryd import client

    for k in ("SUMMARYD_RUNTIME_DIR", "SUMMARYD_RING_PREFIX", "SUMMARYD_IDLE_EXIT"):
        if os.environ.get(k) != _fuzz_daemon.env[k]:
            client.shutdown_client(0.0)
            monkeypatch.setenv(k, _fuzz_daemon.env[k])
    monkeypatch.setenv("SUMMARYD_NO_SPAWN", "1")
    monkeypatch.setenv("SUMMARYD_FLUSH_TIMEOUT", "3")
    if not answers_status(_fuzz_daemon):
        _fuzz_daemon.stop(timeout=5)
        for name in _fuzz_daemon.rings():
            os.unlink(os.path.join("/dev/shm", name))
        _fuzz_daemon.start()
    return _fuzz_daemon


def record_fuzz(
    tmp_path_factory: pytest.TempPathFactory,
    capsys: pytest.CaptureFixture[str],
    name: str,
    examples: int,
    crashes: int,
) -> None:
    """Add this test's count to <basetemp>/fuzz_counts.json and print the totals."""
    path = tmp_path_factory.getbasetemp() / "fuzz_counts.json"
    counts = json.loads(path.read_text()) if path.exists() else {}
    counts[name] = {"examples": examples, "crashes_or_hangs": crashes}
    path.write_text(json.dumps(counts, indent=1))
    total = sum(c["examples"] for c in counts.values())
    bad = sum(c["crashes_or_hangs"] for c in counts.values())
    with capsys.disabled():
        print(
            f"\n[fuzz] {name}: {examples} examples against the real daemon, "
            f"{crashes} crash/hang; all fuzz so far: {total} examples, {bad} crash/hang "
            f"({path})"
        )


class FuzzSocket:
    """A DEALER to the daemon that sends an example and then asks for status."""

    def __init__(self, d: DaemonEnv) -> None:
        self.d = d
        self.loc = locations(d.env)
        self.sock = zmq.Context.instance().socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.connect(self.loc.endpoint)
        self.rings: list[str] = []
        self.attached = False
        self.examples = 0
        self.failures = 0

    def attach(self) -> None:
        """Say hello for a fresh ring of ours, so flush and bye reach the core."""
        sid = secrets.token_hex(8)
        name = self.loc.ring_name(os.getpid(), sid)
        start = process_start_ticks(os.getpid()) or 0
        create_ring(self.loc.ring_path(name), 4096, os.getpid(), start, sid.encode()).close()
        self.rings.append(self.loc.ring_path(name))
        hello = {"t": "hello", "v": 1, "pid": os.getpid(), "start": start, "sid": sid}
        self.sock.send(wire.pack(hello | {"ring": name, "argv": []}))
        self.expect({"welcome"})
        self.attached = True

    def expect(self, kinds: set[str], what: Any = None) -> dict[str, Any]:
        """Read replies (each must decode) until one of ``kinds``, within 2 s."""
        deadline = time.monotonic() + STATUS_TIMEOUT
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not self.sock.poll(int(left * 1000)):
                self.failures += 1
                code = self.d.proc.poll() if self.d.proc else None
                pytest.fail(
                    f"no {kinds} reply within {STATUS_TIMEOUT} s after {what!r:.2000} "
                    f"(daemon exit code {code}):\n{daemon_log(self.d)}"
                )
            reply = wire.unpack(self.sock.recv())
            if reply["t"] in kinds:
                return reply

    def check(self, what: Any) -> None:
        """One example sent: status must be answered, by the same daemon."""
        self.examples += 1
        self.sock.send(wire.pack({"t": "status"}))
        reply = self.expect({"status"}, what)
        assert self.d.proc is not None
        assert reply["daemon"]["pid"] == self.d.proc.pid

    def close(self) -> None:
        self.sock.close()
        for p in self.rings:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(p)


@contextlib.contextmanager
def fuzzing(
    d: DaemonEnv,
    name: str,
    tmp_path_factory: pytest.TempPathFactory,
    capsys: pytest.CaptureFixture[str],
) -> Iterator[FuzzSocket]:
    assert d.proc is not None
    pid = d.proc.pid
    f = FuzzSocket(d)
    try:
        yield f
    finally:
        crashed = f.failures > 0 or d.proc.poll() is not None or d.proc.pid != pid
        record_fuzz(tmp_path_factory, capsys, name, f.examples, int(crashed))
        f.close()


def test_fuzz_arbitrary_bytes(
    fuzz_daemon: DaemonEnv,
    tmp_path_factory: pytest.TempPathFactory,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with fuzzing(fuzz_daemon, "bytes", tmp_path_factory, capsys) as f:

        @settings(max_examples=300, **FUZZ_SETTINGS)
        @given(st.lists(st.binary(max_size=300), min_size=1, max_size=3))
        def run(frames: list[bytes]) -> None:
            f.sock.send_multipart(frames)
            f.check(frames)

        run()
        assert f.examples >= 300


def test_fuzz_arbitrary_msgpack(
    fuzz_daemon: DaemonEnv,
    tmp_path_factory: pytest.TempPathFactory,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with fuzzing(fuzz_daemon, "msgpack", tmp_path_factory, capsys) as f:

        @settings(max_examples=300, **FUZZ_SETTINGS)
        @given(st.one_of(MSGPACK, st.dictionaries(KEY, MSGPACK, max_size=8)))
        def run(value: Any) -> None:
            f.sock.send(msgpack.packb(value, use_bin_type=True))
            f.check(value)

        run()
        assert f.examples >= 300


def test_fuzz_well_typed_wrong_messages(
    fuzz_daemon: DaemonEnv,
    tmp_path_factory: pytest.TempPathFactory,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Includes hello with a NUL in the session and its derived ring name: see
    ``test_hello_with_nul_in_session_is_refused``."""
    with fuzzing(fuzz_daemon, "messages", tmp_path_factory, capsys) as f:

        @settings(max_examples=300, **FUZZ_SETTINGS)
        @given(fuzz_messages(f.loc))
        def run(msg: dict[str, Any]) -> None:
            if not f.attached:
                f.attach()
            f.sock.send(msgpack.packb(msg, use_bin_type=True))
            if msg["t"] == "bye":
                f.attached = False
            f.check(msg)

        run()
        assert f.examples >= 300


# Ring fuzz: what the hostile ring does after hello.
RING_CAP = 4096
HEAD = st.one_of(
    st.integers(0, RING_CAP).map(lambda x: x & ~7),  # aligned, within a lap
    st.integers(0, 4 * RING_CAP),  # unaligned, beyond capacity
    st.integers(0, 2**64 - 1),
    st.sampled_from([0, 8, RING_CAP - 8, RING_CAP, RING_CAP + 8, 2**63, 2**64 - 8]),
)


def ring_records(log_dir: str) -> st.SearchStrategy[list[Any]]:
    """Records of every kind with hostile fields; OPEN only ever names ``log_dir``
    or paths the daemon must refuse (a fuzzer must not create files elsewhere)."""
    dirs = st.sampled_from(
        [log_dir, log_dir + "/sub", "relative", "", log_dir + "/../x", log_dir + "/a\0b"]
    )
    wid = st.one_of(st.integers(0, 3), I64, LEAF)
    step = st.one_of(st.none(), I64, LEAF)
    wt = st.one_of(st.floats(), I64, LEAF)
    value = st.one_of(st.floats(), I64, LEAF)
    return st.one_of(
        st.tuples(
            st.just(wire.OPEN),
            wid,
            dirs,
            st.one_of(TEXT, LEAF),
            st.one_of(I64, LEAF),
            st.one_of(st.floats(), LEAF),
            st.one_of(st.none(), I64, LEAF),
            wt,
        ),
        st.tuples(st.just(wire.CLOSE), wid),
        st.tuples(st.just(wire.SCALAR), wid, st.one_of(TEXT, LEAF), value, step, wt),
        st.tuples(st.just(wire.SCALAR_T), wid, st.one_of(TEXT, LEAF), value, step, wt, LEAF),
        st.tuples(st.just(wire.TEXT), wid, st.one_of(TEXT, LEAF), st.one_of(TEXT, LEAF), step, wt),
        st.lists(LEAF, max_size=9).map(tuple),
    ).map(list)


def safe_payload(value: Any, log_dir: str) -> bytes:
    """msgpack of an arbitrary value, never an OPEN record for a dir outside ``log_dir``."""
    if (
        isinstance(value, list)
        and len(value) == 8
        and value[0] == wire.OPEN
        and isinstance(value[2], str)
        and not value[2].startswith(log_dir)
    ):
        value = [*value[:2], "relative", *value[3:]]
    return msgpack.packb(value, use_bin_type=True)  # type: ignore[no-any-return]


def ring_ops(log_dir: str) -> st.SearchStrategy[list[tuple[Any, ...]]]:
    op = st.one_of(
        # raw bytes anywhere in the data area
        st.tuples(
            st.just("raw"), st.integers(0, RING_CAP - 1), st.binary(min_size=1, max_size=300)
        ),
        # a record with the right checksum and an arbitrary or structured payload
        st.tuples(
            st.just("record"), st.one_of(ring_records(log_dir), MSGPACK, st.binary(max_size=64))
        ),
        # a record with a wrong checksum or length
        st.tuples(
            st.just("bad_record"),
            ring_records(log_dir),
            st.integers(0, 2**32 - 1),
            st.integers(0, 2**32 - 1),
        ),
        st.tuples(st.just("head"), HEAD),
        st.tuples(st.just("tail"), HEAD),
        st.tuples(st.just("bell"), st.integers(0, 2**64 - 1)),
        st.tuples(st.just("dropped"), HEAD),
    )
    return st.lists(op, min_size=1, max_size=8)


def test_fuzz_ring_contents(
    fuzz_daemon: DaemonEnv,
    tmp_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A ring the daemon adopted gets arbitrary bytes, records, head, tail and bell
    words; the daemon must answer status, and a good writer in this process must
    still have its flushes acknowledged and every event written."""
    log_dir = str(tmp_path / "hostile")
    good_dir = tmp_path / "good"
    w = SummaryWriter(good_dir)
    steps = 0
    with fuzzing(fuzz_daemon, "ring", tmp_path_factory, capsys) as f:

        @settings(max_examples=150, **FUZZ_SETTINGS)
        @given(ring_ops(log_dir), st.booleans())
        def run(ops: list[tuple[Any, ...]], commit: bool) -> None:
            nonlocal steps
            f.attach()
            path = f.rings[-1]
            fd = os.open(path, os.O_RDWR)
            mm = mmap.mmap(fd, HEADER_SIZE + RING_CAP)
            os.close(fd)
            head = 0
            try:
                for o in ops:
                    if o[0] == "raw":
                        data = o[2][: RING_CAP - o[1]]
                        mm[HEADER_SIZE + o[1] : HEADER_SIZE + o[1] + len(data)] = data
                    elif o[0] in ("record", "bad_record"):
                        payload = (
                            safe_payload(o[1], log_dir) if not isinstance(o[1], bytes) else o[1]
                        )
                        payload = payload or b"\xc0"
                        total = (8 + len(payload) + 7) & ~7
                        if head + total > RING_CAP:
                            continue
                        n, crc = len(payload), crc32(payload)
                        if o[0] == "bad_record":
                            n, crc = (o[2], crc) if o[2] % 2 else (n, o[3])
                        struct.pack_into("<II", mm, HEADER_SIZE + head, n, crc)
                        mm[HEADER_SIZE + head + 8 : HEADER_SIZE + head + 8 + len(payload)] = payload
                        head += total
                        if commit:
                            struct.pack_into("<Q", mm, 64, head)
                    elif o[0] == "head":
                        struct.pack_into("<Q", mm, 64, o[1])
                    elif o[0] == "tail":
                        struct.pack_into("<Q", mm, 128, o[1])
                    elif o[0] == "bell":
                        struct.pack_into("<Q", mm, 136, o[1])
                    else:
                        struct.pack_into("<Q", mm, 192, o[1])
            finally:
                mm.close()
            try:
                f.sock.send(wire.pack({"t": "bell"}))
                f.check(ops)
                w.add_scalar("fuzz/good", float(steps), steps)
                w.flush()
                steps += 1
                assert w.statistics().flushes_timed_out == 0
            finally:
                f.sock.send(wire.pack({"t": "bye"}))  # the daemon removes the ring

        run()
        assert f.examples >= 150
    w.close()
    assert good_points(good_dir) == Counter({("fuzz/good", i): 1 for i in range(steps)})
    assert_whole_event_files(tmp_path)


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
