"""Array records end to end without a daemon: trainer side (``summaryd.arrays``,
``Ring.make_put_parts``) -> ring -> daemon side (``decode_arrays``)."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path

import msgpack
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from summaryd import wire
from summaryd.arrays import array_parts, as_array_record, bin_header
from summaryd.daemon.arrays import MAX_ARRAYS, decode_arrays
from summaryd.errors import ArgumentTypeError
from summaryd.ring import CHECKED, HEADER_SIZE, RECORD_HEADER, Ring, RingCorruptError, create_ring

CAP = 1 << 16


@pytest.fixture
def ring(tmp_path: Path) -> Iterator[Ring]:
    r = create_ring(str(tmp_path / "ring"), CAP, pid=1, start_ticks=2, session=b"s" * 16)
    yield r
    r.close()


def _commit(ring: Ring, fields: tuple[object, ...], arrays: list[np.ndarray]) -> None:
    """What ``Client.put_arrays`` does for a record that fits the ring."""
    specs, parts, nbytes = array_parts(arrays)
    head = as_array_record(msgpack.packb([*fields, specs])) + bin_header(nbytes)
    assert ring.make_put_parts(lambda bell: None)(head, parts)


def _read_back(ring: Ring) -> tuple[list[object], list[np.ndarray]]:
    ((_, end, payload),) = ring.read(1 << 30)
    ring.set_tail(end)
    rec = msgpack.unpackb(payload)
    assert len(rec) == wire.ARRAY_FIELDS
    return rec, decode_arrays(rec[6], rec[7])


DTYPES = ["?", "i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8", "f2", "f4", "f8", ">f4", ">i8"]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(), (0,), (5,), (3, 4), (2, 0, 3), (2, 3, 4, 5)])
def test_arrays_arrive_with_dtype_shape_and_values(
    ring: Ring, dtype: str, shape: tuple[int, ...]
) -> None:
    rng = np.random.default_rng(0)
    a = (rng.standard_normal(shape) * 100).astype(dtype)
    b = np.arange(7, dtype="f8")
    fields = (wire.HISTOGRAM, 1, "tag", 3, 1.5, {"bins": "auto"})
    _commit(ring, fields, [a, b])
    rec, (a2, b2) = _read_back(ring)
    assert rec[:6] == list(fields)
    assert a2.dtype == a.dtype and a2.shape == a.shape
    np.testing.assert_array_equal(a2, a)
    np.testing.assert_array_equal(b2, b)
    assert not a2.flags.writeable  # encoders must copy before changing anything


def test_non_contiguous_arrays_are_sent_in_c_order(ring: Ring) -> None:
    a = np.arange(24, dtype="f4").reshape(2, 3, 4)
    views = [a.transpose(2, 0, 1), a[:, ::2, 1:], a[..., ::-1]]
    _commit(ring, (wire.IMAGES, 1, "t", None, 1.0, {}), views)
    _, got = _read_back(ring)
    for v, g in zip(views, got, strict=True):
        np.testing.assert_array_equal(g, v)


def test_records_wrap_around_the_end_of_the_ring(ring: Ring) -> None:
    """Every offset of the wrap point: head, parts and record header each straddle it."""
    for i in range(60):
        a = np.arange(1000 + 97 * i, dtype="u1")
        _commit(ring, (wire.TENSOR, 1, "t" * (i % 7), i, 0.0, {}), [a, a[:i]])
        rec, (a2, b2) = _read_back(ring)
        assert rec[3] == i
        np.testing.assert_array_equal(a2, a)
        np.testing.assert_array_equal(b2, a[:i])


def test_checksum_covers_the_first_4_kib(ring: Ring) -> None:
    """A damaged byte inside the first CHECKED bytes fails the record; array data
    beyond them is not checksummed (one pass over megabytes would double the
    trainer's cost); the ring docstring says so."""
    assert CHECKED == 4096 and "first\n``CHECKED`` (4 KiB) bytes" in (
        __import__("summaryd.ring", fromlist=["x"]).__doc__ or ""
    )
    a = np.zeros(3 * CHECKED, dtype="u1")
    _commit(ring, (wire.TENSOR, 1, "t", 0, 0.0, {}), [a])
    data = HEADER_SIZE + RECORD_HEADER
    ring._mm[data + 2 * CHECKED] = 7  # beyond the checked prefix: read as sent
    _, (got,) = _read_back(ring)
    assert got.sum() == 7

    _commit(ring, (wire.TENSOR, 1, "t", 0, 0.0, {}), [a])
    start = ring.read_pos & (CAP - 1)
    ring._mm[HEADER_SIZE + start + RECORD_HEADER + CHECKED - 1] ^= 0xFF
    with pytest.raises(RingCorruptError, match="checksum"):
        ring.read(1 << 30)


@pytest.mark.parametrize("n", [0, 1, 255, 256, 65535, 65536, 1 << 20])
def test_bin_header_is_msgpacks(n: int) -> None:
    assert bin_header(n) + b"\0" * n == msgpack.packb(b"\0" * n, use_bin_type=True)


def test_as_array_record_makes_the_head_of_an_eight_item_array() -> None:
    head = msgpack.packb([1, 2, "t", None, 1.0, {}, []])
    rec = msgpack.unpackb(as_array_record(head) + bin_header(3) + b"abc")
    assert rec == [1, 2, "t", None, 1.0, {}, [], b"abc"]
    whole = msgpack.packb([1, 2, "t", None, 1.0, {}, [], 5])
    assert as_array_record(whole) == whole
    with pytest.raises(ValueError):
        as_array_record(msgpack.packb([1, 2]))


@pytest.mark.parametrize("value", [np.array(["a"]), np.array([object()]), np.array([1j])])
def test_arrays_of_other_kinds_are_refused_in_the_caller(value: np.ndarray) -> None:
    with pytest.raises(ArgumentTypeError, match="dtype"):
        array_parts([value])


# -- the daemon side: specs from untrusted clients ------------------------------------------


@pytest.mark.parametrize(
    ("specs", "data", "error"),
    [
        ("x", b"", TypeError),
        ([["<f4", [2]]], b"\0" * 7, ValueError),  # fewer bytes than described
        ([["<f4", [2]]], b"\0" * 9, ValueError),  # bytes nobody described
        ([["O", [1]]], b"\0" * 8, ValueError),
        ([["<c8", [1]]], b"\0" * 8, ValueError),
        ([["V8", [1]]], b"\0" * 8, ValueError),
        ([["nope", [1]]], b"", ValueError),
        ([["<f4", [-1]]], b"", ValueError),
        ([["<f4", [1 << 62, 1 << 62]]], b"", ValueError),  # never allocated
        ([["<f4", [1] * 9]], b"\0" * 4, TypeError),
        ([["<f4", [True]]], b"\0" * 4, ValueError),
        ([["<f4"]], b"", TypeError),
        ([[4, [1]]], b"", TypeError),
        ([["<f4", [0]]] * (MAX_ARRAYS + 1), b"", TypeError),
    ],
)
def test_malformed_specs_are_refused(specs: object, data: bytes, error: type) -> None:
    with pytest.raises(error):
        decode_arrays(specs, data)


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=400, deadline=None)
@given(specs=_json, data=st.binary(max_size=64))
def test_decode_arrays_only_accepts_or_refuses(specs: object, data: bytes) -> None:
    try:
        arrays = decode_arrays(specs, data)
    except (TypeError, ValueError):
        return
    assert sum(a.nbytes for a in arrays) == len(data)


@settings(max_examples=200, deadline=None)
@given(
    dims=st.lists(st.lists(st.integers(0, 5), max_size=4), min_size=1, max_size=4),
    dtype=st.sampled_from(DTYPES),
)
def test_decode_arrays_inverts_array_parts(dims: list[list[int]], dtype: str) -> None:
    arrays = [(np.arange(int(np.prod(d))) % 3).astype(dtype).reshape(d) for d in dims]
    specs, parts, nbytes = array_parts(arrays)
    data = b"".join(bytes(p) for p in parts)
    assert len(data) == nbytes
    for a, b in zip(
        arrays, decode_arrays(msgpack.unpackb(msgpack.packb(specs)), data), strict=True
    ):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(a, b)


def test_record_header_layout_is_unchanged() -> None:
    assert struct.calcsize("<II") == RECORD_HEADER
