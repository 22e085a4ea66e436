"""Differential tests for the compiled ring record loop (``summaryd._ringscan``).

``Ring.read_batch`` with the C scan must return exactly what its Python loop
returns (starts, payloads, ``read_pos``, errors and their messages) for any
ring: valid records of every size (below and above the checksummed prefix
and the view threshold), wrap-around, corrupt lengths, checksums and heads,
any ``max_bytes``.  And ``_ringscan.crc32`` is zlib's.
"""

from __future__ import annotations

import itertools
import os
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from summaryd import ring as ring_mod
from summaryd.ring import HEADER_SIZE, Ring, RingCorruptError, create_ring

pytestmark = pytest.mark.skipif(ring_mod._scanner() is None, reason="_ringscan not built")

SESSION = b"0123456789abcdef"
_names = itertools.count()


def _outcome(r: Ring, max_bytes: int) -> tuple[Any, ...]:
    try:
        starts, payloads = r.read_batch(max_bytes)
    except RingCorruptError as exc:
        return ("error", str(exc), r.read_pos)
    return (starts, [(type(p), bytes(p)) for p in payloads], r.read_pos)


def _run(
    ring: Ring, max_bytes: int, scanner: Callable[[], Any], monkeypatch: pytest.MonkeyPatch
) -> list[tuple[Any, ...]]:
    monkeypatch.setattr(ring_mod, "_scanner", scanner)
    out = []
    for _ in range(64):
        got = _outcome(ring, max_bytes)
        out.append(got)
        if got[0] == "error" or not got[1]:
            break
    return out


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    capacity=st.sampled_from([1 << 12, 1 << 18]),
    sizes=st.lists(
        st.one_of(st.integers(1, 200), st.integers(4000, 4200), st.integers(65530, 65560)),
        max_size=12,
    ),
    consumed=st.integers(0, 6),
    garbage=st.lists(st.tuples(st.integers(0, (1 << 18) - 1), st.binary(min_size=1, max_size=8))),
    head_delta=st.one_of(st.none(), st.integers(-24, 24)),
    max_bytes=st.sampled_from([0, 8, 100, 4096, 1 << 20]),
    seed=st.integers(0, 255),
)
def test_read_batch_with_and_without_the_c_scan(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capacity: int,
    sizes: list[int],
    consumed: int,
    garbage: list[tuple[int, bytes]],
    head_delta: int | None,
    max_bytes: int,
    seed: int,
) -> None:
    native = ring_mod._scanner
    paths = [tmp_path / f"r{next(_names)}" for _ in range(2)]
    rings = [create_ring(str(p), capacity, 1, 2, SESSION) for p in paths]
    try:
        a, b = rings
        # Move the positions forward first, so that later records wrap around.
        for _ in range(consumed):
            if a.put(bytes([seed]) * 300):
                a.set_tail(a.head)
        a.read_pos = a.tail
        for k, n in enumerate(sizes):
            if n + 16 > capacity or not a.put(bytes((seed + k + j) & 0xFF for j in range(n))):
                break
        for off, data in garbage:
            off %= capacity
            data = data[: capacity - off]
            a._mm[HEADER_SIZE + off : HEADER_SIZE + off + len(data)] = data
        if head_delta is not None:
            a._q[ring_mod._HEAD] = max(0, a.head + head_delta)
        b._mm[:] = a._mm[:]
        b.read_pos = a.read_pos
        with_c = _run(a, max_bytes, native, monkeypatch)
        without = _run(b, max_bytes, lambda: None, monkeypatch)
        assert with_c == without
    finally:
        for r, p in zip(rings, paths, strict=True):
            r.close()
            os.unlink(p)


@given(st.binary(max_size=300))
def test_crc32_is_zlibs(data: bytes) -> None:
    from summaryd import _ringscan

    assert _ringscan.crc32(data) == zlib.crc32(data)
