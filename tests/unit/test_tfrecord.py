"""Tests for TFRecord framing (``summaryd.daemon.tfrecord``).

The format is checked against published CRC32C vectors, against TensorBoard's
own pure-Python CRC and mask, and against TensorBoard's own event-file reader;
the module docstring's statement of the format is tied to the constants.
"""

from __future__ import annotations

import re
import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tensorboard.backend.event_processing.event_file_loader import RawEventFileLoader
from tensorboard.compat.tensorflow_stub import pywrap_tensorflow as tb_stub

from summaryd.daemon import tfrecord
from summaryd.daemon.tfrecord import (
    FOOTER_BYTES,
    HEADER_BYTES,
    MASK_DELTA,
    crc32c,
    frame,
    masked_crc32c,
    whole_records_length,
)

# -- CRC32C ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "crc"),
    [
        (b"123456789", 0xE3069283),  # the CRC catalogue's check value for CRC-32C
        (bytes(32), 0x8A9136AA),  # RFC 3720 (iSCSI) B.4 test vectors
        (b"\xff" * 32, 0x62A8AB43),
        (bytes(range(32)), 0x46DD794E),
        (bytes(range(31, -1, -1)), 0x113FDB5C),
        (b"", 0),
    ],
    ids=["check", "zeros", "ones", "ascending", "descending", "empty"],
)
def test_crc32c_vectors(data: bytes, crc: int) -> None:
    assert crc32c(data) == crc
    assert tb_stub.crc32c(data) == crc  # the oracle used below agrees


def _tf_mask(crc: int) -> int:
    """TensorFlow's crc32c::Mask (core/lib/hash/crc32c.h), in uint32 arithmetic."""
    rot = ((crc >> 15) | (crc << 17)) & 0xFFFFFFFF
    return (rot + 0xA282EAD8) & 0xFFFFFFFF


@pytest.mark.parametrize("data", [b"", b"a", b"123456789", bytes(range(256)), b"\xff" * 1000])
def test_masked_crc_matches_tensorflow(data: bytes) -> None:
    assert masked_crc32c(data) == _tf_mask(crc32c(data)) == tb_stub.masked_crc32c(data)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_masked_crc_matches_tensorboard_stub(data: bytes) -> None:
    assert masked_crc32c(data) == tb_stub.masked_crc32c(data)


# -- the docstring states the format -----------------------------------------------------------

_SIZES = {"uint64": 8, "uint32": 4}


def _doc_fields() -> list[tuple[str, str]]:
    doc = tfrecord.__doc__ or ""
    block = doc.split("A record is::", 1)[1].split("\n\n", 2)[1]
    fields = []
    for line in block.splitlines():
        m = re.match(r"^\s+(uint64|uint32|byte)\s+(\S+)", line)
        assert m, f"unparsable format line {line!r}"
        fields.append((m.group(1), m.group(2)))
    return fields


def test_docstring_format_matches_constants() -> None:
    fields = _doc_fields()
    kinds = [k for k, _ in fields]
    assert kinds == ["uint64", "uint32", "byte", "uint32"]
    data_at = kinds.index("byte")
    assert sum(_SIZES[k] for k in kinds[:data_at]) == HEADER_BYTES
    assert sum(_SIZES[k] for k in kinds[data_at + 1 :]) == FOOTER_BYTES
    assert "little-endian" in (tfrecord.__doc__ or "")


def test_docstring_mask_formula_is_the_code() -> None:
    doc = tfrecord.__doc__ or ""
    m = re.search(r"masked\(crc\) = (.+?) \(mod 2\*\*32\)", doc)
    assert m, "the docstring states no mask formula"
    expr = m.group(1).replace("``", "")
    delta = re.search(r"0x[0-9a-fA-F]+", expr)
    assert delta and int(delta.group(0), 16) == MASK_DELTA == 0xA282EAD8
    for data in (b"", b"x", b"123456789", bytes(range(100))):
        crc = crc32c(data)
        assert eval(expr, {"crc": crc}) % (1 << 32) == masked_crc32c(data)


def test_frame_layout() -> None:
    data = b"an event"
    out = frame(data)
    assert len(out) == HEADER_BYTES + len(data) + FOOTER_BYTES
    assert out[:8] == struct.pack("<Q", len(data))  # little-endian length
    assert struct.unpack("<I", out[8:12])[0] == masked_crc32c(out[:8])
    assert out[12:-4] == data
    assert struct.unpack("<I", out[-4:])[0] == masked_crc32c(data)


@pytest.mark.parametrize("n", [0, 1, 127, 128, 4095, 4096, 70000])
def test_frame_header_for_every_size(n: int) -> None:
    """The cached headers (small sizes) and the computed ones are both right."""
    data = bytes(range(256)) * (n // 256) + bytes(n % 256)
    for _ in range(2):  # the second call may come from the cache
        out = frame(data)
        assert out[:8] == struct.pack("<Q", n)
        assert struct.unpack("<I", out[8:12])[0] == tb_stub.masked_crc32c(out[:8])
        assert out[12 : 12 + n] == data
        assert struct.unpack("<I", out[12 + n :])[0] == tb_stub.masked_crc32c(data)


# -- TensorBoard's reader reads what frame() writes ----------------------------------------------


def _tb_read(path: Path) -> list[bytes]:
    return list(RawEventFileLoader(str(path)).Load())


def test_tensorboard_reads_framed_records(tmp_path: Path) -> None:
    records = [b"", b"x", b"event bytes" * 100, bytes(range(256)) * 40]
    path = tmp_path / "events.out.tfevents.1.host"
    path.write_bytes(b"".join(frame(r) for r in records))
    assert _tb_read(path) == records


@settings(max_examples=40, deadline=None)
@given(st.lists(st.binary(max_size=300), max_size=8))
def test_tensorboard_reads_arbitrary_framed_records(
    tmp_path_factory: pytest.TempPathFactory, records: list[bytes]
) -> None:
    path = tmp_path_factory.mktemp("tb") / "events.out.tfevents.1.host"
    path.write_bytes(b"".join(frame(r) for r in records))
    assert _tb_read(path) == records


def test_tensorboard_stops_where_whole_records_length_stops(tmp_path: Path) -> None:
    records = [b"first", b"second", b"third"]
    buf = bytearray(b"".join(frame(r) for r in records))
    second_at = len(frame(b"first"))
    buf[second_at + HEADER_BYTES + 2] ^= 0x55  # damage the second record's data
    path = tmp_path / "events.out.tfevents.1.host"
    path.write_bytes(bytes(buf))
    assert _tb_read(path) == [b"first"]
    assert whole_records_length(bytes(buf)) == second_at


# -- whole_records_length -------------------------------------------------------------------------


def _frames(records: list[bytes]) -> tuple[bytes, list[int]]:
    """The framed records and the offsets where each ends (with 0)."""
    out = b""
    ends = [0]
    for r in records:
        out += frame(r)
        ends.append(len(out))
    return out, ends


def test_whole_records_length_of_whole_records() -> None:
    buf, ends = _frames([b"a", b"", b"ccc" * 50])
    assert whole_records_length(buf) == len(buf) == ends[-1]
    assert whole_records_length(b"") == 0


def test_whole_records_length_at_every_cut() -> None:
    buf, ends = _frames([b"alpha", b"", b"gamma" * 20, b"d"])
    for cut in range(len(buf) + 1):
        expected = max(e for e in ends if e <= cut)
        assert whole_records_length(buf[:cut]) == expected, cut


def test_whole_records_length_at_every_damaged_byte() -> None:
    buf, ends = _frames([b"alpha", b"beta!", b"gamma" * 3])
    for i in range(len(buf)):
        damaged = bytearray(buf)
        damaged[i] ^= 0x01
        record = max(k for k, e in enumerate(ends) if e <= i)  # the record holding byte i
        assert whole_records_length(bytes(damaged)) == ends[record], i


def test_whole_records_length_huge_length_field() -> None:
    header = struct.pack("<Q", 1 << 60)
    buf = header + struct.pack("<I", masked_crc32c(header)) + b"x" * 100
    good, _ = _frames([b"ok"])
    assert whole_records_length(buf) == 0
    assert whole_records_length(good + buf) == len(good)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=60), max_size=5), st.binary(max_size=80))
def test_whole_records_length_with_garbage_tail(records: list[bytes], tail: bytes) -> None:
    buf, ends = _frames(records)
    n = whole_records_length(buf + tail)
    assert len(buf) <= n <= len(buf) + len(tail)
    # The prefix it keeps is whole records again, and TensorBoard's CRC agrees.
    assert whole_records_length((buf + tail)[:n]) == n


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_whole_records_length_arbitrary_bytes(buf: bytes) -> None:
    n = whole_records_length(buf)
    assert 0 <= n <= len(buf)
    assert whole_records_length(buf[:n]) == n
