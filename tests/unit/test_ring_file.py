"""The ring file (``summaryd.ring``): its layout, ``create_ring`` and ``open_ring``.

The layout stated in the module docstring is the layout the code writes
(STYLE section 4: the spec and the constants are tied by a test); capacities
are rounded to a power of two; ``open_ring`` adopts a valid ring and refuses
files it must not adopt (symlinks, loose modes, another user's file,
directories, bad headers, wrong sizes).
"""

from __future__ import annotations

import os
import re
import struct
import zlib
from pathlib import Path

import pytest

from summaryd import ring as ring_mod
from summaryd.ring import (
    ALIGN,
    HEADER_SIZE,
    MAGIC,
    RECORD_HEADER,
    RING_VERSION,
    Ring,
    RingCorruptError,
    create_ring,
    open_ring,
    padded_size,
)

from .ring_helpers import CAP, SESSION, _poke


def _u64(path: Path, offset: int) -> int:
    with open(path, "rb") as f:
        f.seek(offset)
        return int(struct.unpack("<Q", f.read(8))[0])


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
