"""Putting records into the ring and reading them out (``summaryd.ring``).

Put/read round trips, the bells, wrap-around at the end of the data area,
full rings, ``max_bytes`` batching; and, by Hypothesis, a ring behaves as a
FIFO queue of exact payloads.
"""

from __future__ import annotations

import itertools
from collections import deque
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from summaryd.ring import (
    ALIGN,
    HEADER_SIZE,
    NOTICE_BELL,
    RECORD_HEADER,
    WAKE_BELL,
    Ring,
    padded_size,
)

from .ring_helpers import CAP, _TempRing


def _drain(r: Ring, max_bytes: int = 1 << 20) -> list[bytes]:
    out: list[bytes] = []
    while True:
        recs = r.read(max_bytes)
        if not recs:
            return out
        out.extend(p for _, _, p in recs)


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
