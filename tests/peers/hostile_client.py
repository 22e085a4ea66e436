"""Peer: a misbehaving client of the daemon, for tests/integration/test_hostile_*.py.

It talks to the daemon the test's SUMMARYD_* variables name, through its own
ZeroMQ DEALER and/or its own ring (``summaryd.ring.create_ring`` at
``locations().ring_path(locations().ring_name(pid, sid))``), and does one bad
thing, chosen by HOSTILE_MODE:

garbage_messages  HOSTILE_COUNT control messages of random bytes, msgpack that is
                  not a map, maps with unknown or missing fields, multi-frame
wrong_version     hello with protocol version HOSTILE_VERSION (default 2)
garbage_records   HOSTILE_COUNT ring records whose checksum is right and whose
                  payload is not a valid record (random bytes, msgpack non-arrays)
torn_records      good records, then one whose checksum is wrong, then more good ones
bad_length        good records, then one whose length field runs past head
bad_ring_header   rings the daemon must refuse: wrong magic, version, header size,
                  capacity, file size, mode 0644, header naming another pid, and a
                  FIFO, a directory and a symlink under ring names; hello for each
bad_ring_mode     one otherwise valid ring with mode 0644, and hello for it
huge_message      one control message of HOSTILE_BYTES (default 64 MiB)
unknown_writer    HOSTILE_COUNT well-formed records the daemon must refuse: records
                  for writers never opened, unknown kinds, OPEN with a relative,
                  unnormalised or NUL-carrying log dir, OPEN of a writer twice
flood_bells       HOSTILE_SOCKETS sockets send HOSTILE_FLOOD messages ("bell",
                  default) as fast as they can until stdin closes
nul_session       hello whose session (and so ring name) holds a NUL byte
deep_argv         a valid ring with records, and hello whose argv nests 1,000 lists deep
truncate_ring     a valid ring the daemon adopted, then truncated to 0 bytes
steal_session     claims the session of the ring named HOSTILE_VICTIM (another
                  client's): hello with it from this socket, then bye; and a ring of
                  its own under that session, for the daemon's scan to find
many_writers      opens HOSTILE_COUNT writers in HOSTILE_LOG_DIR/<i> and never
                  closes them (a trainer leaking SummaryWriters)
big_argv          a valid ring, and hello whose argv is as large as a message may be
mixed             HOSTILE_COUNT cases drawn at random (HOSTILE_SEED) from the modes
                  above, one after another (``Mixed``; for benchmarks/hostile_soak.py)

Protocol with the test: after the bad thing is under way the peer prints
``ready``; it then waits until its stdin closes (so it stays a live client
while the good client logs), finishes, and prints one JSON line of what it saw
(replies, notices).  Every wait is bounded (HOSTILE_SECONDS, default 30).

Environment: HOSTILE_MODE, HOSTILE_SEED (default 0), HOSTILE_COUNT (default
200), HOSTILE_LOG_DIR (where records that open writers point; default a
directory that does not exist), plus the variables above and SUMMARYD_*.
"""

from __future__ import annotations

import json
import mmap
import os
import random
import secrets
import select
import socket
import struct
import sys
import threading
import time
from typing import Any
from zlib import crc32

import msgpack
import zmq

from summaryd import wire
from summaryd.paths import locations, process_start_ticks
from summaryd.ring import HEADER_SIZE, create_ring

MODE = os.environ["HOSTILE_MODE"]
SEED = int(os.environ.get("HOSTILE_SEED", "0"))
COUNT = int(os.environ.get("HOSTILE_COUNT", "200"))
SECONDS = float(os.environ.get("HOSTILE_SECONDS", "30"))
LOG_DIR = os.environ.get("HOSTILE_LOG_DIR", "/nonexistent/summaryd-hostile")
LOC = locations()
RNG = random.Random(SEED)
DEADLINE = time.monotonic() + SECONDS
PID = os.getpid()
START = process_start_ticks(PID) or 0

ctx = zmq.Context()
report: dict[str, Any] = {"mode": MODE, "pid": PID, "replies": []}


def dealer() -> zmq.Socket[bytes]:
    s = ctx.socket(zmq.DEALER)
    s.setsockopt(zmq.LINGER, 0)
    s.connect(LOC.endpoint)
    return s


def replies(sock: zmq.Socket[bytes], wait: float = 0.0) -> list[dict[str, Any]]:
    """Replies waiting on ``sock`` (after up to ``wait`` s for the first), decoded."""
    out = []
    timeout = int(min(wait, max(0.0, DEADLINE - time.monotonic())) * 1000)
    while sock.poll(timeout):
        timeout = 0
        try:
            out.append(wire.unpack(sock.recv()))
        except wire.ProtocolError as exc:
            out.append({"t": "undecodable", "msg": str(exc)})
    report["replies"].extend(out)
    return out


def wait_for(sock: zmq.Socket[bytes], kinds: set[str], wait: float = 5.0) -> dict[str, Any] | None:
    """The first reply of one of ``kinds`` within ``wait`` seconds."""
    end = min(time.monotonic() + wait, DEADLINE)
    while time.monotonic() < end:
        for r in replies(sock, end - time.monotonic()):
            if r.get("t") in kinds:
                return r
    return None


def wait_for_scan(timeout: float = 20.0) -> None:
    """Return once the daemon completed a scan of the ring directory that began
    after this call (the second to end from now), by its status's scan count."""
    s = dealer()
    try:

        def scans() -> int:
            s.send(wire.pack({"t": "status"}))
            if not s.poll(5000):
                raise RuntimeError("the daemon did not answer a status request")
            return int(wire.unpack(s.recv())["daemon"]["scans"])

        target = scans() + 2
        end = time.monotonic() + timeout
        while scans() < target:
            if time.monotonic() > end:
                raise RuntimeError(f"no scan of the ring directory within {timeout} s")
            time.sleep(0.05)  # polling the status, the event's only source
    finally:
        s.close()


def hello(sock: zmq.Socket[bytes], sid: str, ring: str, **over: Any) -> None:
    msg = {"t": "hello", "v": wire.PROTOCOL_VERSION, "pid": PID, "start": START}
    msg |= {"sid": sid, "ring": ring, "argv": ["hostile_client.py", MODE]} | over
    sock.send(wire.pack(msg))


class OwnRing:
    """A ring of this process, written with raw stores (no Ring.put: it must lie)."""

    def __init__(self, capacity: int = 1 << 16, sid: str | None = None, pid: int = PID) -> None:
        self.sid = sid or secrets.token_hex(8)
        self.name = LOC.ring_name(pid, self.sid)
        self.path = LOC.ring_path(self.name)
        create_ring(self.path, capacity, pid, START, self.sid.encode()).close()
        fd = os.open(self.path, os.O_RDWR)
        self.cap = os.fstat(fd).st_size - HEADER_SIZE
        self.mm = mmap.mmap(fd, HEADER_SIZE + self.cap)
        os.close(fd)
        self.head = 0

    def raw(self, length: int, crc: int, payload: bytes) -> None:
        """Append a record with the given length and checksum fields (not committed)."""
        total = (8 + len(payload) + 7) & ~7
        p = self.head % self.cap
        assert p + 8 <= self.cap and self.head + total <= self.cap, "peer writes one lap only"
        struct.pack_into("<II", self.mm, HEADER_SIZE + p, length, crc)
        self.mm[HEADER_SIZE + p + 8 : HEADER_SIZE + p + 8 + len(payload)] = payload
        self.head += total

    def record(self, payload: bytes) -> None:
        self.raw(len(payload), crc32(payload), payload)

    def commit(self, head: int | None = None) -> None:
        struct.pack_into("<Q", self.mm, 64, self.head if head is None else head)

    def flush(self, sock: zmq.Socket[bytes], tok: int) -> bool:
        """Ring the daemon and wait for the acknowledgement of everything so far."""
        sock.send(wire.pack({"t": "bell"}))
        sock.send(wire.pack({"t": "flush", "tok": tok, "pos": self.head}))
        r = wait_for(sock, {"ack"}, 10.0)
        return r is not None and r.get("tok") == tok


def random_msgpack(depth: int = 0) -> Any:
    k = RNG.randrange(9 if depth < 3 else 6)
    if k == 0:
        return None
    if k == 1:
        return RNG.random() < 0.5
    if k == 2:
        return RNG.choice([0, -1, 1 << 40, -(1 << 63), (1 << 64) - 1, RNG.randrange(-999, 999)])
    if k == 3:
        return RNG.choice([0.0, -1.5, float("inf"), float("nan"), RNG.random()])
    if k == 4:
        return "".join(chr(RNG.randrange(1, 0x2FF)) for _ in range(RNG.randrange(12)))
    if k == 5:
        return RNG.randbytes(RNG.randrange(12))
    if k in (6, 7):
        return [random_msgpack(depth + 1) for _ in range(RNG.randrange(6))]
    return {str(RNG.randrange(9)): random_msgpack(depth + 1) for _ in range(RNG.randrange(4))}


def wait_stdin_closed() -> None:
    """Stay a live client until the test closes our stdin (bounded)."""
    while time.monotonic() < DEADLINE:
        r, _, _ = select.select(
            [sys.stdin], [], [], max(0.0, min(0.5, DEADLINE - time.monotonic()))
        )
        if r and not sys.stdin.readline():
            return


def ready() -> None:
    print("ready", flush=True)


# -- modes ---------------------------------------------------------------------


def _garbage_message(s: zmq.Socket[bytes]) -> None:
    k = RNG.randrange(6)
    if k == 0:
        s.send(RNG.randbytes(RNG.randrange(64)))
    elif k == 1:
        s.send(msgpack.packb(random_msgpack()))
    elif k == 2:
        s.send(msgpack.packb({"t": RNG.choice(list(wire.MESSAGES)) + "x", "v": 1}))
    elif k == 3:
        s.send(msgpack.packb({"t": RNG.choice(list(set(wire.MESSAGES) - {"stop"}))}))
    elif k == 4:
        s.send_multipart([RNG.randbytes(8) for _ in range(RNG.randrange(2, 5))])
    else:
        s.send(b"")


def garbage_messages() -> None:
    s = dealer()
    for _ in range(COUNT):
        _garbage_message(s)
        replies(s)
    ready()
    replies(s, 1.0)
    wait_stdin_closed()
    replies(s, 0.2)
    report["sent"] = COUNT


def wrong_version() -> None:
    s = dealer()
    sid = secrets.token_hex(8)
    version = int(os.environ.get("HOSTILE_VERSION", "2"))
    hello(s, sid, LOC.ring_name(PID, sid), v=version)
    report["reply"] = wait_for(s, {"notice", "welcome"}, 5.0)
    ready()
    wait_stdin_closed()


def _attached_ring(sock: zmq.Socket[bytes]) -> OwnRing:
    ring = OwnRing()
    hello(sock, ring.sid, ring.name)
    report["hello"] = wait_for(sock, {"welcome", "notice"})
    return ring


def _open_record(wid: int, log_dir: str = LOG_DIR) -> bytes:
    return msgpack.packb([wire.OPEN, wid, log_dir, "", 10, 120.0, None, time.time()])


def _good_records(ring: OwnRing, n: int, first: int = 0) -> None:
    for i in range(first, first + n):
        ring.record(msgpack.packb([wire.SCALAR, 1, "hostile/ok", float(i), i, time.time()]))


def _garbage_record() -> bytes:
    k = RNG.randrange(3)
    if k == 0:
        return RNG.randbytes(RNG.randrange(1, 200))
    if k == 1:
        return msgpack.packb(random_msgpack())
    # an array led by a kind, with garbage after it
    return msgpack.packb([RNG.randrange(1, 6)] + [random_msgpack() for _ in range(3)])


def garbage_records() -> None:
    s = dealer()
    ring = _attached_ring(s)
    ring.record(_open_record(1))
    for _ in range(COUNT):
        ring.record(_garbage_record())
    _good_records(ring, 5)
    ring.commit()
    report["acked"] = ring.flush(s, 1)
    ready()
    wait_stdin_closed()
    s.send(wire.pack({"t": "bye"}))
    report["sent"] = COUNT


def _corrupt(bad: str) -> None:
    s = dealer()
    ring = _attached_ring(s)
    ring.record(_open_record(1))
    _good_records(ring, 10)
    ring.commit()
    report["acked_before"] = ring.flush(s, 1)
    payload = msgpack.packb([wire.SCALAR, 1, "hostile/torn", 1.0, 99, time.time()])
    if bad == "crc":
        ring.raw(len(payload), crc32(payload) ^ 0x5A5A, payload)
    else:  # a length that runs past head
        ring.raw(ring.cap // 2, crc32(payload), payload)
    _good_records(ring, 10, 100)
    ring.commit()
    s.send(wire.pack({"t": "bell"}))
    report["notice"] = wait_for(s, {"notice"}, 5.0)
    ready()
    wait_stdin_closed()


def torn_records() -> None:
    _corrupt("crc")


def bad_length() -> None:
    _corrupt("length")


def _bad_rings() -> dict[str, str]:
    """Files under ring names that are not rings the daemon may adopt: variant -> name."""
    out = {}

    def valid() -> OwnRing:
        r = OwnRing(4096)
        r.mm.close()
        return r

    for variant, offset, value in [
        ("magic", 0, b"SMDRINGX"),
        ("version", 8, struct.pack("<I", 99)),
        ("header_size", 12, struct.pack("<I", 128)),
        ("capacity", 16, struct.pack("<Q", 5000)),
    ]:
        r = valid()
        with open(r.path, "r+b") as f:
            f.seek(offset)
            f.write(value)
        out[variant] = r.name
    r = valid()
    os.truncate(r.path, HEADER_SIZE + 8192)
    out["file_size"] = r.name
    r = valid()
    os.chmod(r.path, 0o644)
    out["mode_0644"] = r.name
    # The header names another pid than the file name does.
    sid = secrets.token_hex(8)
    create_ring(LOC.ring_path(LOC.ring_name(PID, sid)), 4096, 1, START, sid.encode()).close()
    out["other_pid"] = LOC.ring_name(PID, sid)
    sid = secrets.token_hex(8)
    os.mkfifo(LOC.ring_path(LOC.ring_name(PID, sid)), 0o600)
    out["fifo"] = LOC.ring_name(PID, sid)
    sid = secrets.token_hex(8)
    os.mkdir(LOC.ring_path(LOC.ring_name(PID, sid)), 0o700)
    out["directory"] = LOC.ring_name(PID, sid)
    target = valid()
    sid = secrets.token_hex(8)
    os.symlink(target.path, LOC.ring_path(LOC.ring_name(PID, sid)))
    out["symlink"] = LOC.ring_name(PID, sid)
    sid = secrets.token_hex(8)
    u = socket.socket(socket.AF_UNIX)
    u.bind(LOC.ring_path(LOC.ring_name(PID, sid)))
    out["unix_socket"] = LOC.ring_name(PID, sid)
    return out


def _hello_each(rings: dict[str, str]) -> None:
    results = {}
    for variant, name in rings.items():
        s = dealer()
        hello(s, name.rsplit(".", 1)[1], name)
        r = wait_for(s, {"welcome", "notice"}, 5.0)
        results[variant] = r.get("t") if r else None
        s.close()
    report["hello"] = results
    report["sids"] = {v: n.rsplit(".", 1)[1] for v, n in rings.items()}


def bad_ring_header() -> None:
    rings = _bad_rings()
    _hello_each(rings)
    ready()
    wait_stdin_closed()
    _remove_rings(rings.values())


def _remove_rings(names: Any) -> None:
    """Remove what the refused-ring cases left in the ring directory (files,
    FIFOs, sockets, symlinks and directories under ring names)."""
    for name in names:
        path = LOC.ring_path(name)
        if os.path.isdir(path) and not os.path.islink(path):
            os.rmdir(path)
        elif os.path.lexists(path):
            os.unlink(path)


def bad_ring_mode() -> None:
    r = OwnRing(4096)
    r.record(_open_record(1))
    r.commit()
    os.chmod(r.path, 0o644)
    _hello_each({"mode_0644": r.name})
    ready()
    wait_stdin_closed()
    os.unlink(r.path)


def huge_message() -> None:
    s = dealer()
    s.setsockopt(zmq.SNDHWM, 1)
    size = int(os.environ.get("HOSTILE_BYTES", str(64 << 20)))
    s.send(b"\x81" + b"\x00" * (size - 1))
    report["reply"] = wait_for(s, {"notice"}, 2.0)  # none if the daemon refuses to read it
    ready()
    wait_stdin_closed()


def unknown_writer() -> None:
    s = dealer()
    ring = _attached_ring(s)
    ring.record(_open_record(1))
    bad = _unknown_records()
    for i in range(COUNT):
        ring.record(msgpack.packb(bad[i % len(bad)](i)))
    _good_records(ring, 5)
    ring.commit()
    report["acked"] = ring.flush(s, 1)
    ready()
    wait_stdin_closed()
    s.send(wire.pack({"t": "bye"}))
    report["sent"] = COUNT


def _unknown_records() -> list[Any]:
    """Makers of well-formed records the daemon must refuse (writer 1 is open)."""
    return [
        lambda i: [wire.SCALAR, 1000 + i, "x", 1.0, i, 1.0],
        lambda i: [wire.SCALAR_T, 1000 + i, "x", 1.0, i, 1.0, True],
        lambda i: [wire.TEXT, 1000 + i, "x", "text", i, 1.0],
        lambda i: [wire.CLOSE, 1000 + i],
        lambda i: [RNG.choice([0, 6, 99, -1, 1 << 40]), 1, "x"],
        lambda i: [wire.OPEN, 2000 + i, "relative/dir", "", 10, 1.0, None, 1.0],
        lambda i: [wire.OPEN, 2000 + i, LOG_DIR + "/../escape", "", 10, 1.0, None, 1.0],
        lambda i: [wire.OPEN, 2000 + i, LOG_DIR + "/a\0b", "", 10, 1.0, None, 1.0],
        lambda i: [wire.OPEN, 2000 + i, LOG_DIR, "/slash", 10, 1.0, None, 1.0],
        lambda i: [wire.OPEN, 1, LOG_DIR, "", 10, 1.0, None, 1.0],  # writer 1 is open
        lambda i: [wire.SCALAR, 1],  # too short
    ]


def flood_bells() -> None:
    kind = os.environ.get("HOSTILE_FLOOD", "bell")
    n_sockets = int(os.environ.get("HOSTILE_SOCKETS", "2"))
    stop = threading.Event()
    sent = [0] * n_sockets

    def flood(k: int) -> None:
        s = dealer()
        msg = wire.pack({"t": kind})
        while not stop.is_set() and time.monotonic() < DEADLINE:
            try:
                s.send(msg, zmq.NOBLOCK)
                sent[k] += 1
            except zmq.Again:
                time.sleep(0.0001)
            while s.poll(0):
                s.recv()
        s.close()

    threads = [threading.Thread(target=flood, args=(k,)) for k in range(n_sockets)]
    for t in threads:
        t.start()
    while sum(sent) < 1000 and time.monotonic() < DEADLINE:
        time.sleep(0.01)
    ready()
    wait_stdin_closed()
    stop.set()
    for t in threads:
        t.join()
    report["sent"] = sum(sent)


def nul_session() -> None:
    s = dealer()
    sid = "ab\0cd"
    hello(s, sid, LOC.ring_name(PID, sid))
    report["reply"] = wait_for(s, {"notice", "welcome"}, 5.0)
    ready()
    wait_stdin_closed()


def deep_argv() -> None:
    s = dealer()
    ring = OwnRing()
    ring.record(_open_record(1))  # records waiting: the daemon must drain a ring it took
    _good_records(ring, 3)
    ring.commit()
    head = msgpack.packb(
        {"t": "hello", "v": 1, "pid": PID, "start": START, "sid": ring.sid, "ring": ring.name}
    )
    # One more key in the map: argv, 1,000 one-element arrays deep (msgpack allows 1,023).
    msg = bytes([head[0] + 1]) + head[1:] + b"\xa4argv" + b"\x91" * 1000 + b"\x90"
    s.send(msg)
    report["reply"] = wait_for(s, {"notice", "welcome"}, 5.0)
    ready()
    wait_stdin_closed()


def truncate_ring() -> None:
    s = dealer()
    ring = _attached_ring(s)
    ring.record(_open_record(1))
    _good_records(ring, 10)
    ring.commit()
    report["acked"] = ring.flush(s, 1)
    # Not racing the daemon's touch of the mapping (nothing could survive that
    # but a sealed memfd): it has acknowledged, set our bell and gone to sleep.
    time.sleep(0.3)
    ring.mm.close()
    os.truncate(ring.path, 0)
    s.send(wire.pack({"t": "bell"}))
    ready()
    wait_stdin_closed()


def steal_session() -> None:
    victim = os.environ["HOSTILE_VICTIM"]  # the other client's ring name
    vsid = victim.rsplit(".", 1)[1]
    s = dealer()
    # 1. This socket claims the victim's session, then says bye for it.
    hello(s, vsid, "not-a-ring", pid=PID)
    report["hello"] = wait_for(s, {"welcome", "notice"}, 5.0)
    s.send(wire.pack({"t": "flush", "tok": 1, "pos": 1 << 62}))
    s.send(wire.pack({"t": "bye"}))
    # 2. A ring of this process under the victim's session, for the scan (every 2 s).
    ring = OwnRing(sid=vsid)
    ring.record(_open_record(1))
    _good_records(ring, 3)
    ring.commit()
    wait_for_scan()  # the scan must not hand the victim's session to this ring
    s2 = dealer()
    hello(s2, vsid, ring.name)
    report["hello_own_ring"] = wait_for(s2, {"welcome", "notice"}, 5.0)
    s2.send(wire.pack({"t": "bye"}))
    replies(s, 0.2)
    ready()
    wait_stdin_closed()
    if os.path.exists(ring.path):
        os.unlink(ring.path)


def many_writers() -> None:
    from summaryd import SummaryWriter

    writers = [SummaryWriter(os.path.join(LOG_DIR, str(i))) for i in range(COUNT)]
    for i, w in enumerate(writers):
        w.add_scalar("leak", 1.0, i)
    time.sleep(1.5)  # the daemon opens their files (it drains at least every second)
    ready()
    wait_stdin_closed()
    report["writers"] = len(writers)
    emit()
    os._exit(0)  # leaked: no close, no flush at exit


def big_argv() -> None:
    s = dealer()
    ring = OwnRing()
    # Fits the 1 MiB message limit; every small int becomes "0, " in the daemon's str().
    argv = [[0] * 4000 for _ in range(240)]
    hello(s, ring.sid, ring.name, argv=argv)
    report["hello"] = wait_for(s, {"welcome", "notice"}, 5.0)
    ready()
    wait_stdin_closed()


# -- mixed: many cases of every kind in one process (benchmarks/hostile_soak.py) ----------


class Mixed:
    """HOSTILE_COUNT cases drawn at random (HOSTILE_SEED) from the modes above, sent
    as fast as the daemon takes them; each is one bad message, one bad record, one
    broken or refused ring, one flood burst... (see ``CASES``)."""

    def __init__(self) -> None:
        self.sock = dealer()  # the current ring's: hello, bell, flush only
        self.noise = dealer()  # garbage, wrong messages, bad hellos: never the ring's session
        self.ring: OwnRing | None = None
        self.wid = 1
        self.refused: list[str] = []  # ring names the daemon must refuse: ours to remove
        self.counts: dict[str, int] = {}

    def attached(self, room: int = 512) -> OwnRing:
        """The current well-formed ring (writer 1 open), a fresh one when it is nearly full."""
        if self.ring is None or self.ring.head + room > self.ring.cap:
            if self.ring is not None:
                self.ring.commit()
            self.ring = OwnRing()
            if self.ring is not None:  # a new session on this socket: a new socket
                self.sock.close()
                self.sock = dealer()
            hello(self.sock, self.ring.sid, self.ring.name)
            self.ring.record(_open_record(1))
        return self.ring

    def new_ring(self) -> tuple[zmq.Socket[bytes], OwnRing]:
        s = dealer()
        ring = OwnRing()
        hello(s, ring.sid, ring.name)
        ring.record(_open_record(1))
        _good_records(ring, 3)
        return s, ring

    # The cases ----------------------------------------------------------------------

    def message(self) -> None:
        _garbage_message(self.noise)

    def typed_message(self) -> None:
        kinds = sorted(set(wire.MESSAGES) - {"stop"})  # stop is the owner's right, not a bug
        msg = {"t": RNG.choice(kinds)}
        for _ in range(RNG.randrange(6)):
            key = RNG.choice(["v", "pid", "start", "sid", "ring", "argv", "tok", "pos", "x"])
            msg[key] = random_msgpack(1)
        self.noise.send(msgpack.packb(msg))

    def record(self) -> None:
        ring = self.attached()
        ring.record(_garbage_record())
        if RNG.random() < 0.2:
            ring.commit()
            self.sock.send(wire.pack({"t": "bell"}))

    def unknown_record(self) -> None:
        bad = _unknown_records()
        self.attached().record(msgpack.packb(RNG.choice(bad)(RNG.randrange(1 << 20))))

    def good_records(self) -> None:
        _good_records(self.attached(), RNG.randrange(1, 5), RNG.randrange(1 << 20))

    def corrupt(self) -> None:
        s, ring = self.new_ring()
        payload = msgpack.packb([wire.SCALAR, 1, "hostile/torn", 1.0, 99, time.time()])
        if RNG.random() < 0.5:
            ring.raw(len(payload), crc32(payload) ^ 0x5A5A, payload)
        else:
            ring.raw(ring.cap // 2, crc32(payload), payload)
        _good_records(ring, 3, 100)
        ring.commit()
        s.send(wire.pack({"t": "bell"}))
        s.close()

    def refused_rings(self) -> None:
        rings = _bad_rings()
        self.refused += rings.values()
        for name in rings.values():
            s = dealer()
            hello(s, name.rsplit(".", 1)[1], name)
            s.close()

    def bad_hello(self) -> None:
        sid = RNG.choice([secrets.token_hex(8), "ab\0cd", "", "../x", "a" * 300])
        over: dict[str, Any] = RNG.choice(
            [{"v": RNG.choice([0, 2, 99, -1])}, {"pid": RNG.choice([0, -1, 1, 1 << 40])}, {}]
        )
        hello(self.noise, sid, LOC.ring_name(PID, sid), **over)

    def deep_argv(self) -> None:
        s, ring = self.new_ring()
        ring.commit()
        head = msgpack.packb(
            {"t": "hello", "v": 1, "pid": PID, "start": START, "sid": ring.sid, "ring": ring.name}
        )
        s.send(bytes([head[0] + 1]) + head[1:] + b"\xa4argv" + b"\x91" * 1000 + b"\x90")
        s.close()

    def big_message(self) -> None:
        s = dealer()
        if RNG.random() < 0.5:
            ring = OwnRing()
            hello(s, ring.sid, ring.name, argv=[[0] * 4000 for _ in range(240)])
        else:
            s.send(b"\x81" + b"\x00" * ((2 << 20) - 1))  # over the 1 MiB message limit
        s.close()

    def truncate(self) -> None:
        s, ring = self.new_ring()
        ring.commit()
        if ring.flush(s, 1):
            time.sleep(0.3)  # as truncate_ring: the daemon acknowledged and went to sleep
            ring.mm.close()
            os.truncate(ring.path, 0)
            s.send(wire.pack({"t": "bell"}))
        s.close()

    def flood(self) -> None:
        msg = wire.pack({"t": RNG.choice(["bell", "status"])})
        s = dealer()
        for _ in range(1000):
            try:
                s.send(msg, zmq.NOBLOCK)
            except zmq.Again:
                break
        s.close()

    def leak_writers(self) -> None:
        ring = self.attached(4096)
        for _ in range(RNG.randrange(1, 10)):
            self.wid += 1
            ring.record(_open_record(self.wid, os.path.join(LOG_DIR, f"{PID}-{self.wid}")))
            ring.record(msgpack.packb([wire.SCALAR, self.wid, "leak", 1.0, 0, time.time()]))
        ring.commit()
        self.sock.send(wire.pack({"t": "bell"}))

    def run(self) -> None:
        cases = {
            self.message: 30,
            self.typed_message: 15,
            self.record: 25,
            self.unknown_record: 10,
            self.good_records: 5,
            self.bad_hello: 5,
            self.corrupt: 3,
            self.leak_writers: 2,
            self.deep_argv: 1,
            self.flood: 1,
            self.refused_rings: 0.3,
            self.big_message: 0.2,
            self.truncate: 0.1,
        }
        fns, weights = list(cases), list(cases.values())
        for i in range(COUNT):
            f = RNG.choices(fns, weights)[0]
            f()
            self.counts[f.__name__] = self.counts.get(f.__name__, 0) + 1
            if i % 64 == 0:
                for s in (self.sock, self.noise):
                    while s.poll(0):  # replies and notices: read, never let them pile up
                        s.recv()
        if self.ring is not None:
            self.ring.commit()
            report["acked"] = self.ring.flush(self.sock, 1)
        report["cases"] = self.counts
        report["sent"] = COUNT
        ready()
        wait_stdin_closed()
        _remove_rings(self.refused)


def mixed() -> None:
    Mixed().run()


MODES = {
    f.__name__: f
    for f in (
        garbage_messages,
        wrong_version,
        garbage_records,
        torn_records,
        bad_length,
        bad_ring_header,
        bad_ring_mode,
        huge_message,
        unknown_writer,
        flood_bells,
        nul_session,
        deep_argv,
        truncate_ring,
        steal_session,
        many_writers,
        big_argv,
        mixed,
    )
}


def emit() -> None:
    """Print the report: one JSON line."""
    report["replies"] = [
        {k: v for k, v in r.items() if k in ("t", "level", "msg", "tok")} for r in report["replies"]
    ][:50]
    print(json.dumps(report, default=repr), flush=True)


if __name__ == "__main__":
    MODES[MODE]()
    emit()
    ctx.destroy(linger=0)
