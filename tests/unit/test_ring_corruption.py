"""A corrupt ring is refused (``summaryd.ring``).

Corruption (bad checksums, payload bytes, zero lengths, heads past, unaligned
or out of range) is refused with ``RingCorruptError`` and never loses the good
records before it; by Hypothesis, a garbage ring never makes ``read`` raise
anything else or stall (STYLE section 10).
"""

from __future__ import annotations

import zlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from summaryd import ring as ring_mod
from summaryd.errors import ProtocolError
from summaryd.ring import ALIGN, HEADER_SIZE, RECORD_HEADER, Ring, RingCorruptError, padded_size

from .ring_helpers import CAP, _poke, _TempRing


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
