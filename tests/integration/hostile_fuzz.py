"""Fuzzing a real daemon through its socket and rings (hypothesis), as shared pieces.

``FUZZ_SETTINGS`` and the strategies (``LEAF``, ``MSGPACK``, well-typed wrong
messages), ``FuzzSocket`` (a client socket that sends what it is given and
checks after every example that ``status`` is answered within 2 s) and
``fuzzing`` (one fuzz run, its example count printed and written to
``<pytest basetemp>/fuzz_counts.json``). The daemon is ``conftest.py``'s
``fuzz_daemon``. Used by ``test_hostile_fuzz.py`` and
``test_hostile_arrays.py``.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import time
from collections.abc import Iterator
from typing import Any

import pytest
import zmq
from hypothesis import HealthCheck, Phase
from hypothesis import strategies as st

from summaryd import wire
from summaryd.paths import Locations, locations, process_start_ticks
from summaryd.ring import create_ring

from ..conftest import DaemonEnv
from .hostile_helpers import STATUS_TIMEOUT, ask_status, daemon_log

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


def answers_status(d: DaemonEnv) -> bool:
    try:
        return (
            d.proc is not None
            and d.proc.poll() is None
            and ask_status(locations(d.env)) is not None
        )
    except wire.ProtocolError:
        return False


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
