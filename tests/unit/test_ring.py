"""Tests for the shared-memory ring (``summaryd.ring``).

Pure tests over rings created in a temporary directory (``create_ring`` takes
any path); no daemon, no ``/dev/shm``.  They check:

* the layout stated in the module docstring is the layout the code writes
  (STYLE section 4: the spec and the constants are tied by a test);
* put/read round trips, wrap-around at the end of the data area, full rings,
  ``max_bytes`` batching;
* corruption is refused with ``RingCorruptError`` and never loses the good
  records before it, and a garbage ring never makes ``read`` raise anything
  else or stall (STYLE section 10);
* ``open_ring`` refuses files it must not adopt.
"""

from __future__ import annotations

import itertools
import os
import re
import struct
import zlib
from collections import deque
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from summaryd import ring as ring_mod
from summaryd.errors import ProtocolError
from summaryd.ring import (
    ALIGN,
    HEADER_SIZE,
    MAGIC,
    MIN_CAPACITY,
    NOTICE_BELL,
    RECORD_HEADER,
    RING_VERSION,
    WAKE_BELL,
    Ring,
    RingCorruptError,
    create_ring,
    open_ring,
    padded_size,
)

CAP = MIN_CAPACITY  # 4096: small, so wrap-around and full rings come quickly
SESSION = b"0123456789abcdef"


@pytest.fixture
def ring_path(tmp_path: Path) -> Path:
    return tmp_path / "ring"


@pytest.fixture
def ring(ring_path: Path) -> Iterator[Ring]:
    r = create_ring(str(ring_path), CAP, pid=4242, start_ticks=777, session=SESSION, runtime=99)
    try:
        yield r
    finally:
        r.close()


@pytest.fixture(scope="module")
def ring_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory for rings made per Hypothesis example (function fixtures do not reset)."""
    return tmp_path_factory.mktemp("rings")


_names = itertools.count()


class _TempRing:
    """A fresh ring per Hypothesis example, closed and unlinked afterwards."""

    def __init__(self, directory: Path, capacity: int = CAP) -> None:
        self.path = directory / f"r{next(_names)}"
        self.ring = create_ring(str(self.path), capacity, 1, 2, SESSION)

    def __enter__(self) -> Ring:
        return self.ring

    def __exit__(self, *exc: object) -> None:
        self.ring.close()
        os.unlink(self.path)


def _u64(path: Path, offset: int) -> int:
    with open(path, "rb") as f:
        f.seek(offset)
        return int(struct.unpack("<Q", f.read(8))[0])


def _poke(r: Ring, offset: int, fmt: str, *values: int) -> None:
    """Write raw values into the mapped file (offsets from the start of the file)."""
    struct.pack_into(fmt, r._mm, offset, *values)


def _drain(r: Ring, max_bytes: int = 1 << 20) -> list[bytes]:
    out: list[bytes] = []
    while True:
        recs = r.read(max_bytes)
        if not recs:
            return out
        out.extend(p for _, _, p in recs)


def _read_until_error(r: Ring, max_bytes: int = 1 << 20) -> tuple[list[bytes], bool]:
    """Read until nothing is left or the ring is refused; (payloads delivered, refused)."""
    got: list[bytes] = []
    for _ in range(CAP):  # each successful non-empty read advances; bounded anyway
        try:
            recs = r.read(max_bytes)
        except RingCorruptError:
            return got, True
        if not recs:
            return got, False
        got.extend(p for _, _, p in recs)
    raise AssertionError("read() never stopped returning records")


# -- the layout in the docstring is the layout in the file ----------------------------

_LAYOUT_ROW = re.compile(r"^\s{4}(\d+)\s+(\w+)\s+(\S+)\s+(.*)$")


def _doc_layout() -> dict[str, tuple[int, str, str]]:
    doc = ring_mod.__doc__ or ""
    block = doc.split("Layout", 1)[1].split("::", 1)[1].split("\n\n", 2)[1]
    rows: dict[str, tuple[int, str, str]] = {}
    for line in block.splitlines():
        m = _LAYOUT_ROW.match(line)
        assert m, f"unparsable layout line {line!r}"
        rows[m.group(2)] = (int(m.group(1)), m.group(3), m.group(4))
    return rows


def test_docstring_layout_parses() -> None:
    rows = _doc_layout()
    assert list(rows) == [
        "magic",
        "version",
        "hdr_size",
        "capacity",
        "pid",
        "start",
        "session",
        "runtime",
        "head",
        "tail",
        "bell",
        "beat",
        "daemon",
        "dropped",
        "data",
    ]


def test_docstring_layout_matches_constants() -> None:
    rows = _doc_layout()
    assert rows["data"][0] == HEADER_SIZE
    assert rows["head"][0] == ring_mod._HEAD * 8
    assert rows["tail"][0] == ring_mod._TAIL * 8
    assert rows["bell"][0] == ring_mod._BELL * 8
    assert rows["beat"][0] == ring_mod._BEAT * 8
    assert rows["daemon"][0] == ring_mod._DAEMON * 8
    assert rows["dropped"][0] == ring_mod._DROPPED * 8
    assert rows["version"][2].startswith("RING_VERSION")
    assert rows["hdr_size"][2].startswith("HEADER_SIZE")
    assert eval(rows["magic"][2]) == MAGIC  # the literal b"SMDRING1"
    # The fixed fields, in order, are the struct the code packs.
    fixed = ["magic", "version", "hdr_size", "capacity", "pid", "start", "session", "runtime"]
    fmt = "<" + "".join(rows[name][1].replace("u32", "I").replace("u64", "Q") for name in fixed)
    assert struct.calcsize(fmt) == ring_mod._FIXED.size
    assert fmt == ring_mod._FIXED.format
    offset = 0
    for name in fixed:
        assert rows[name][0] == offset, name
        offset += struct.calcsize("<" + rows[name][1].replace("u32", "I").replace("u64", "Q"))
    # head has its own cache line; the consumer's words share another.
    assert rows["head"][0] // 64 != rows["tail"][0] // 64
    assert RECORD_HEADER == 8 and ALIGN == 8  # "u32 length, u32 crc32, ... padded to 8"


def test_header_bytes_follow_the_docstring(ring: Ring, ring_path: Path) -> None:
    rows = _doc_layout()
    with open(ring_path, "rb") as f:
        raw = f.read()
    assert len(raw) == HEADER_SIZE + CAP
    assert raw[0:8] == MAGIC
    assert struct.unpack_from("<I", raw, rows["version"][0])[0] == RING_VERSION
    assert struct.unpack_from("<I", raw, rows["hdr_size"][0])[0] == HEADER_SIZE
    assert struct.unpack_from("<Q", raw, rows["capacity"][0])[0] == CAP
    assert struct.unpack_from("<Q", raw, rows["pid"][0])[0] == 4242
    assert struct.unpack_from("<Q", raw, rows["start"][0])[0] == 777
    assert raw[rows["session"][0] : rows["session"][0] + 16] == SESSION
    assert struct.unpack_from("<Q", raw, rows["runtime"][0])[0] == 99 == ring.runtime
    assert ring_mod.ring_owner(str(ring_path)) == (4242, 777, 99)

    assert ring.put(b"hello")
    assert ring.put(b"world!")
    assert _u64(ring_path, rows["head"][0]) == ring.head == 2 * padded_size(5)
    ring.read(1 << 20)
    ring.set_tail(padded_size(5))
    assert _u64(ring_path, rows["tail"][0]) == ring.tail == padded_size(5)
    ring.set_bell()
    assert _u64(ring_path, rows["bell"][0]) == 1
    assert ring.take_bell() and not ring.take_bell()
    assert _u64(ring_path, rows["bell"][0]) == 0
    ring.add_dropped(3)
    assert _u64(ring_path, rows["dropped"][0]) == ring.dropped == 3
    assert ring.beat == 0  # a new ring: no daemon serves it yet
    ring.set_beat(1_700_000_000_123)
    assert _u64(ring_path, rows["beat"][0]) == ring.beat == 1_700_000_000_123
    assert ring.daemon == 0  # no daemon adopted it yet
    ring.set_daemon(4321)
    assert _u64(ring_path, rows["daemon"][0]) == ring.daemon == 4321

    # A record: u32 length, u32 crc32(payload), payload, padded to 8 (docstring).
    with open(ring_path, "rb") as f:
        raw = f.read()
    data = raw[HEADER_SIZE:]
    assert struct.unpack_from("<II", data, 0) == (5, zlib.crc32(b"hello"))
    assert data[8:13] == b"hello"
    assert struct.unpack_from("<II", data, 16) == (6, zlib.crc32(b"world!"))
    assert data[24:30] == b"world!"


def test_create_ring(ring: Ring, ring_path: Path) -> None:
    st_ = os.stat(ring_path)
    assert st_.st_mode & 0o777 == 0o600
    assert (ring.capacity, ring.pid, ring.start_ticks, ring.session) == (CAP, 4242, 777, SESSION)
    assert (ring.head, ring.tail, ring.read_pos, ring.fill()) == (0, 0, 0, 0)
    assert ring.read(1 << 20) == []
    with pytest.raises(FileExistsError):
        create_ring(str(ring_path), CAP, 1, 1, SESSION)


@pytest.mark.parametrize(("requested", "expected"), [(1, CAP), (CAP, CAP), (CAP + 1, 2 * CAP)])
def test_capacity_is_rounded_to_a_power_of_two(
    tmp_path: Path, requested: int, expected: int
) -> None:
    r = create_ring(str(tmp_path / "r"), requested, 1, 1, SESSION)
    try:
        assert r.capacity == expected
        assert os.path.getsize(tmp_path / "r") == HEADER_SIZE + expected
    finally:
        r.close()


# -- round trips -------------------------------------------------------------------------


def test_make_put_rings_the_bell_once(ring: Ring) -> None:
    rung: list[int] = []
    put = ring.make_put(rung.append)
    assert put(b"quiet")
    assert rung == []
    ring.set_bell()
    assert put(b"wake up")
    assert rung == [WAKE_BELL]
    assert not ring.take_bell()  # the producer cleared the bell word
    assert put(b"again")
    assert rung == [WAKE_BELL]
    ring.set_bell(NOTICE_BELL)
    ring.set_bell(WAKE_BELL)
    assert put(b"both")
    assert rung == [WAKE_BELL, WAKE_BELL | NOTICE_BELL]
    assert [p for _, _, p in ring.read(1 << 20)] == [b"quiet", b"wake up", b"again", b"both"]


def test_full_put_does_not_ring(ring: Ring) -> None:
    rung: list[int] = []
    put = ring.make_put(rung.append)
    assert put(b"x" * (CAP - RECORD_HEADER))
    ring.set_bell()
    assert put(b"y") is False
    assert rung == []
    assert ring.take_bell()  # still set: nothing was committed


def test_padded_size() -> None:
    assert [padded_size(n) for n in (1, 7, 8, 9, 16, 17)] == [16, 16, 16, 24, 24, 32]
    for n in range(200):
        total = padded_size(n)
        assert total % ALIGN == 0 and RECORD_HEADER + n <= total < RECORD_HEADER + n + ALIGN


def test_round_trip_positions(ring: Ring) -> None:
    payloads = [b"a", b"bb" * 10, bytes(range(256))]
    for p in payloads:
        assert ring.put(p)
    recs = ring.read(1 << 20)
    assert [p for _, _, p in recs] == payloads
    pos = 0
    for start, end, p in recs:
        assert (start, end) == (pos, pos + padded_size(len(p)))
        pos = end
    assert ring.read_pos == ring.head == pos
    assert ring.fill() == pos  # nothing published as consumed yet
    ring.set_tail(pos)
    assert ring.fill() == 0


def test_records_of_many_sizes(ring: Ring) -> None:
    sent: list[bytes] = []
    got: list[bytes] = []
    for n in itertools.chain(range(1, 300), [1000, 2047, 2048, 4000, CAP - RECORD_HEADER]):
        payload = bytes((n + i) & 0xFF for i in range(n))
        sent.append(payload)
        while not ring.put(payload):
            recs = ring.read(1 << 20)
            assert recs, "a full ring with nothing to read"
            got.extend(p for _, _, p in recs)
            ring.set_tail(ring.read_pos)
    got.extend(_drain(ring))
    assert got == sent


@pytest.mark.parametrize("header_gap", [8, 16, 24, 64])
def test_payload_straddles_the_end(ring: Ring, ring_path: Path, header_gap: int) -> None:
    """A record whose header sits ``header_gap`` bytes before the end wraps its payload."""
    filler = CAP - header_gap - RECORD_HEADER  # one record ending header_gap before the end
    assert ring.put(b"f" * filler)
    assert ring.read(1 << 20)[0][2] == b"f" * filler
    ring.set_tail(ring.read_pos)
    assert ring.head & (CAP - 1) == CAP - header_gap
    payload = bytes(range(200))
    assert ring.put(payload)
    [(start, end, got)] = ring.read(1 << 20)
    assert got == payload
    assert (start, end) == (CAP - header_gap, CAP - header_gap + padded_size(200))
    # It really wrapped: the tail of the payload is at offset 0 of the data area.
    with open(ring_path, "rb") as f:
        raw = f.read()
    first = header_gap - RECORD_HEADER
    assert raw[HEADER_SIZE + CAP - first : HEADER_SIZE + CAP] == payload[:first]
    assert raw[HEADER_SIZE : HEADER_SIZE + 200 - first] == payload[first:]
    ring.set_tail(ring.read_pos)
    # And the ring goes on working after the wrap.
    for i in range(50):
        assert ring.put(b"%d" % i * 9)
        assert [p for _, _, p in ring.read(1 << 20)] == [b"%d" % i * 9]
        ring.set_tail(ring.read_pos)


def test_full_ring_refuses_then_accepts_after_set_tail(ring: Ring) -> None:
    payload = b"x" * 120  # 128 bytes a record: 32 fill the ring exactly
    for _ in range(CAP // 128):
        assert ring.put(payload)
    assert ring.fill() == CAP
    assert ring.put(payload) is False
    assert ring.put(b"y") is False
    recs = ring.read(1 << 20)
    assert len(recs) == CAP // 128
    assert ring.put(b"y") is False  # read is not consumed: only set_tail frees space
    ring.set_tail(recs[0][1])  # one record's worth (128 bytes) is free again
    assert ring.put(b"y" * 121) is False  # 136 bytes
    assert ring.put(b"y" * 112)  # exactly 128
    assert ring.put(b"y") is False
    ring.set_tail(ring.read_pos)
    assert [p for _, _, p in ring.read(1 << 20)] == [b"y" * 112]


def test_a_record_that_can_never_fit_raises(ring: Ring) -> None:
    assert ring.put(b"z" * (CAP - RECORD_HEADER))  # exactly the capacity fits
    ring.read(1 << 20)
    ring.set_tail(ring.read_pos)
    with pytest.raises(ValueError):
        ring.put(b"z" * (CAP - RECORD_HEADER + 1))
    assert ring.head == CAP


def test_empty_payload_is_refused_or_round_trips(ring: Ring) -> None:
    """put() must not commit a record that its own reader calls corrupt (length 0)."""
    try:
        ok = ring.put(b"")
    except ValueError:
        return
    assert ok
    assert ring.read(1 << 20) == [(0, padded_size(0), b"")]


def test_read_max_bytes_prefix_then_rest(ring: Ring) -> None:
    payloads = [bytes([i]) * 100 for i in range(10)]  # 112 bytes each
    for p in payloads:
        assert ring.put(p)
    first = ring.read(300)
    assert [p for _, _, p in first] == payloads[:2]
    assert ring.read_pos == 224
    second = ring.read(1)  # smaller than one record: still one record
    assert [p for _, _, p in second] == payloads[2:3]
    rest = ring.read(1 << 20)
    assert [p for _, _, p in rest] == payloads[3:]
    assert ring.read(1 << 20) == []


@pytest.mark.parametrize("max_bytes", [0, 1, 8, 16, 100])
def test_record_larger_than_max_bytes_is_returned_whole(ring: Ring, max_bytes: int) -> None:
    big = bytes(range(256)) * 8
    assert ring.put(big)
    assert ring.put(b"small")
    [(start, end, payload)] = ring.read(max_bytes)
    assert (start, end, payload) == (0, padded_size(len(big)), big)
    assert [p for _, _, p in ring.read(1 << 20)] == [b"small"]


def test_any_max_bytes_keeps_positions_aligned(ring: Ring) -> None:
    """read_pos only ever rests on a record boundary, whatever max_bytes is."""
    payloads = [b"abcde", b"fghij", b"k" * 17, b"l"]
    for max_bytes in range(0, 41):
        for p in payloads:
            assert ring.put(p)
        got: list[bytes] = []
        while ring.read_pos != ring.head:
            recs = ring.read(max_bytes)
            assert recs, max_bytes
            assert ring.read_pos % ALIGN == 0, f"max_bytes={max_bytes}: read_pos {ring.read_pos}"
            for start, end, p in recs:
                assert end == start + padded_size(len(p)), max_bytes
            got.extend(p for _, _, p in recs)
        assert got == payloads
        ring.set_tail(ring.read_pos)


def test_read_batch_is_read(ring: Ring) -> None:
    for p in (b"one", b"two" * 50, b"three"):
        assert ring.put(p)
    starts, payloads = ring.read_batch(1 << 20)
    assert payloads == [b"one", b"two" * 50, b"three"]
    assert starts == [0, padded_size(3), padded_size(3) + padded_size(150)]
    assert ring.read_pos == ring.head
    assert ring.read_batch(1 << 20) == ([], [])


def test_large_record_wrapping_and_larger_than_max_bytes(ring: Ring) -> None:
    assert ring.put(b"f" * (CAP - 40 - RECORD_HEADER))
    ring.read(1 << 20)
    ring.set_tail(ring.read_pos)
    big = bytes(range(256)) * 10
    assert ring.put(big)
    assert [p for _, _, p in ring.read(64)] == [big]


# -- corruption ------------------------------------------------------------------------------


def _three_records(r: Ring) -> list[tuple[int, bytes]]:
    """Three 24-byte records; (offset in the data area, payload) each."""
    out = []
    for p in (b"first-rec!", b"second-rec", b"third-rec!"):
        out.append((r.head, p))
        assert r.put(p)
    return out


def test_ring_corrupt_error_is_a_protocol_error() -> None:
    assert issubclass(RingCorruptError, ProtocolError)
    assert issubclass(RingCorruptError, ValueError)


@pytest.mark.parametrize("bad", [0, 1, 2])
def test_bad_checksum_is_refused_after_the_good_records(ring: Ring, bad: int) -> None:
    recs = _three_records(ring)
    off = HEADER_SIZE + recs[bad][0]
    _poke(ring, off + 4, "<I", zlib.crc32(recs[bad][1]) ^ 1)
    got, refused = _read_until_error(ring)
    assert refused
    assert got == [p for _, p in recs[:bad]]
    assert ring.read_pos == recs[bad][0]  # never moves past the bad record


@pytest.mark.parametrize("bad", [0, 2])
def test_corrupt_payload_byte_is_refused_after_the_good_records(ring: Ring, bad: int) -> None:
    recs = _three_records(ring)
    off = HEADER_SIZE + recs[bad][0] + RECORD_HEADER + 3
    ring._mm[off] ^= 0xFF
    got, refused = _read_until_error(ring)
    assert refused
    assert got == [p for _, p in recs[:bad]]


@pytest.mark.parametrize("bad", [0, 1, 2])
def test_zero_length_is_refused_after_the_good_records(ring: Ring, bad: int) -> None:
    recs = _three_records(ring)
    _poke(ring, HEADER_SIZE + recs[bad][0], "<I", 0)
    got, refused = _read_until_error(ring)
    assert refused
    assert got == [p for _, p in recs[:bad]]


@pytest.mark.parametrize("length", [1000, CAP, 0xFFFFFFFF])
@pytest.mark.parametrize("bad", [0, 2])
def test_length_past_head_is_refused(ring: Ring, bad: int, length: int) -> None:
    """A committed record cannot extend past head: such a length is corruption.

    Returning [] with read_pos != head would leave the consumer polling a ring
    that never makes progress.
    """
    recs = _three_records(ring)
    _poke(ring, HEADER_SIZE + recs[bad][0], "<I", length)
    got, refused = _read_until_error(ring)
    assert got == [p for _, p in recs[:bad]]
    assert refused, f"read() returned [] with read_pos {ring.read_pos} != head {ring.head}"


@pytest.mark.parametrize("delta", [1, 4, 7])
def test_head_not_aligned_is_refused(ring: Ring, delta: int) -> None:
    assert ring.put(b"delivered")
    assert [p for _, _, p in ring.read(1 << 20)] == [b"delivered"]
    assert ring.put(b"next")
    _poke(ring, ring_mod._HEAD * 8, "<Q", ring.head + delta)
    with pytest.raises(RingCorruptError):
        ring.read(1 << 20)


@pytest.mark.parametrize("head", [-8, CAP + 8, 1 << 63])
def test_head_out_of_range_is_refused(ring: Ring, head: int) -> None:
    assert ring.put(b"abc")
    assert ring.read(1 << 20)
    _poke(ring, ring_mod._HEAD * 8, "<Q", (ring.read_pos + head) % (1 << 64))
    with pytest.raises(RingCorruptError):
        ring.read(1 << 20)


# -- open_ring ---------------------------------------------------------------------------


def test_open_ring_adopts_a_valid_ring(ring: Ring, ring_path: Path) -> None:
    assert ring.put(b"one")
    assert ring.put(b"two")
    ring.set_tail(padded_size(3))
    consumer = open_ring(str(ring_path))
    try:
        assert (consumer.capacity, consumer.pid, consumer.start_ticks) == (CAP, 4242, 777)
        assert consumer.session == SESSION
        assert consumer.read_pos == padded_size(3)  # resumes from the published tail
        assert [p for _, _, p in consumer.read(1 << 20)] == [b"two"]
        assert ring.put(b"three")  # the producer's writes are seen through the mapping
        assert [p for _, _, p in consumer.read(1 << 20)] == [b"three"]
    finally:
        consumer.close()


def test_open_ring_refuses_a_symlink(ring: Ring, ring_path: Path, tmp_path: Path) -> None:
    link = tmp_path / "link"
    link.symlink_to(ring_path)
    with pytest.raises((OSError, RingCorruptError)):
        open_ring(str(link))


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o666])
def test_open_ring_refuses_a_loose_mode(ring: Ring, ring_path: Path, mode: int) -> None:
    os.chmod(ring_path, mode)
    with pytest.raises(RingCorruptError):
        open_ring(str(ring_path))


@pytest.mark.skipif(os.getuid() != 0, reason="only root can give a file to another user")
def test_open_ring_refuses_another_users_file(ring: Ring, ring_path: Path) -> None:
    os.chown(ring_path, 54321, -1)
    with pytest.raises(RingCorruptError):
        open_ring(str(ring_path))


def test_open_ring_refuses_a_directory(tmp_path: Path) -> None:
    d = tmp_path / "d"
    d.mkdir(mode=0o700)
    with pytest.raises((OSError, RingCorruptError)):
        open_ring(str(d))


def test_open_ring_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        open_ring(str(tmp_path / "nope"))


@pytest.mark.parametrize(
    ("offset", "fmt", "value"),
    [
        (0, "<8s", b"SMDRING2"),  # magic
        (0, "<8s", b"\0" * 8),  # a half-made ring: magic not yet written
        (8, "<I", RING_VERSION + 1),  # version
        (12, "<I", HEADER_SIZE + 8),  # header size
        (16, "<Q", CAP * 2),  # capacity disagrees with the file size
        (16, "<Q", CAP + 8),  # not a power of two
        (16, "<Q", 0),
    ],
    ids=["magic", "no-magic", "version", "hdr_size", "capacity", "not-pow2", "zero-cap"],
)
def test_open_ring_refuses_a_bad_header(
    ring: Ring, ring_path: Path, offset: int, fmt: str, value: object
) -> None:
    _poke(ring, offset, fmt, value)  # type: ignore[arg-type]
    with pytest.raises(RingCorruptError):
        open_ring(str(ring_path))


@pytest.mark.parametrize(
    "size",
    [
        0,
        HEADER_SIZE - 1,
        HEADER_SIZE,
        HEADER_SIZE + CAP - 8,
        HEADER_SIZE + CAP + 8,
        HEADER_SIZE + 2 * CAP,
    ],
)
def test_open_ring_refuses_a_wrong_size(ring: Ring, ring_path: Path, size: int) -> None:
    os.truncate(ring_path, size)
    with pytest.raises(RingCorruptError):
        open_ring(str(ring_path))


# -- property: a ring is a FIFO queue of exact payloads --------------------------------------

_op = st.one_of(
    st.tuples(st.just("put"), st.binary(min_size=1, max_size=1500)),
    st.tuples(
        st.just("read"),
        st.one_of(
            st.integers(min_value=0, max_value=64), st.integers(min_value=0, max_value=2 * CAP)
        ),
    ),
    st.tuples(st.just("tail"), st.integers(min_value=0, max_value=1 << 16)),
)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=st.lists(_op, max_size=60))
@example(ops=[("put", b"abcde"), ("put", b"fghij"), ("read", 13), ("read", 100)])
def test_ring_behaves_as_a_fifo(ring_dir: Path, ops: list[tuple[str, object]]) -> None:
    with _TempRing(ring_dir) as r:
        head = 0
        tail = 0
        unread: deque[tuple[int, int, bytes]] = deque()  # committed, not yet read
        read_ends: list[int] = []  # ends of read records not yet published as tail
        for kind, arg in ops:
            if kind == "put":
                assert isinstance(arg, bytes)
                total = padded_size(len(arg))
                fits = head + total - tail <= CAP
                assert r.put(arg) is fits
                if fits:
                    unread.append((head, head + total, arg))
                    head += total
                assert r.head == head
            elif kind == "read":
                assert isinstance(arg, int)
                recs = r.read(arg)
                if unread:
                    assert recs, "read() returned nothing with records waiting"
                expected = [unread.popleft() for _ in range(len(recs))]
                assert recs == expected
                # Batching honours max_bytes except for a lone oversized record.
                if len(recs) > 1:
                    assert recs[-1][1] - recs[0][0] <= max(arg, ALIGN)
                read_ends.extend(end for _, end, _ in recs)
            else:
                assert isinstance(arg, int)
                if read_ends:
                    i = arg % len(read_ends)
                    tail = read_ends[i]
                    del read_ends[: i + 1]
                    r.set_tail(tail)
            assert r.fill() == head - tail
            assert r.read_pos == (unread[0][0] if unread else head)
        rest = r.read(CAP)
        assert rest == list(unread)


# -- property: garbage never escapes as anything but RingCorruptError ------------------------


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    payloads=st.lists(st.binary(min_size=1, max_size=600), max_size=8),
    garbage=st.lists(
        st.tuples(st.integers(min_value=0, max_value=CAP - 1), st.binary(min_size=1, max_size=64)),
        max_size=6,
    ),
    head=st.one_of(
        st.none(),
        st.integers(min_value=0, max_value=2 * CAP).map(lambda h: h & ~7),
        st.integers(min_value=0, max_value=(1 << 64) - 1),
    ),
    read_pos=st.one_of(st.none(), st.integers(min_value=0, max_value=(1 << 64) - 1)),
    lengths=st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=7),
            st.one_of(
                st.integers(min_value=0, max_value=2 * CAP),
                st.integers(min_value=0, max_value=(1 << 32) - 1),
            ),
        ),
        max_size=2,
    ),
    max_bytes=st.integers(min_value=0, max_value=2 * CAP),
)
@example(
    payloads=[b"\x00"], garbage=[(0, b"\t")], head=None, read_pos=None, lengths=[], max_bytes=0
)
def test_garbage_ring_only_raises_ring_corrupt_error(
    ring_dir: Path,
    payloads: list[bytes],
    garbage: list[tuple[int, bytes]],
    head: int | None,
    read_pos: int | None,
    lengths: list[tuple[int, int]],
    max_bytes: int,
) -> None:
    with _TempRing(ring_dir) as r:
        starts = []
        for p in payloads:
            starts.append(r.head)
            if not r.put(p):
                starts.pop()
                break
        for i, length in lengths:  # a wrong length field in a committed record
            if i < len(starts):
                _poke(r, HEADER_SIZE + (starts[i] & (CAP - 1)), "<I", length)
        for off, data in garbage:
            data = data[: CAP - off]
            r._mm[HEADER_SIZE + off : HEADER_SIZE + off + len(data)] = data
        if head is not None:
            _poke(r, ring_mod._HEAD * 8, "<Q", head)
        if read_pos is not None:
            r.read_pos = read_pos
        # Each call either refuses the ring, returns valid records and moves on, or
        # reports that it reached head: it never stalls with records still ahead.
        for _ in range(CAP // ALIGN + 2):
            before = r.read_pos
            try:
                recs = r.read(max_bytes)
            except RingCorruptError:
                return
            if not recs:
                assert r.read_pos == r.head, "read() stalls: [] while read_pos != head"
                return
            pos = before
            for start, end, payload in recs:
                assert start == pos and end == start + padded_size(len(payload)) and payload
                assert end <= r.head
                pos = end
            assert r.read_pos == pos > before
        raise AssertionError("read() kept returning records past the ring's capacity")
