"""Tests for ``summaryd.daemon.batch`` (the scalar/text runs, ``_batch.c``).

* Differential: for any list of payloads (well-formed records of every scalar
  and text shape, malformed ones, arbitrary bytes), every record the C code
  takes is encoded byte for byte as ``RECORD_ENCODERS[kind](decode_record(p))``,
  which accepts it; its run's writer and tags are the record's; the runs cover
  every payload once, in order.
* The records the SDK writes for ``add_scalar``/``add_text`` are all taken.
* Without the compiled module every batch is one declined run.
"""

from __future__ import annotations

import math
from typing import Any

import crc32c as crc32c_package
import msgpack
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from summaryd import wire
from summaryd.daemon import batch, encode
from summaryd.daemon.arrays import decode_record

pytestmark = pytest.mark.skipif(not batch.COMPILED, reason="summaryd.daemon._batch not built")

INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1

ints = st.one_of(
    st.sampled_from([0, 1, -1, 127, 128, -33, 255, 256, 65535, 65536, INT64_MIN, INT64_MAX]),
    st.integers(min_value=INT64_MIN, max_value=INT64_MAX),
    st.integers(min_value=INT64_MAX, max_value=(1 << 64) - 1),
)
floats = st.one_of(
    st.sampled_from(
        [
            0.0,
            -0.0,
            1.0,
            math.inf,
            -math.inf,
            math.nan,
            1e300,
            -1e300,
            5e-324,
            3.4028235677973366e38,
        ]
    ),
    st.floats(),
)
anything = st.one_of(
    st.none(), st.booleans(), ints, floats, st.text(max_size=8), st.binary(max_size=8)
)
numbers = st.one_of(floats, ints, st.booleans(), st.none(), st.text(max_size=3))
steps = st.one_of(st.none(), ints, st.booleans(), st.sampled_from([0.0, 1.5]))
tags = st.one_of(
    st.text(max_size=30), st.sampled_from(["", "loss", "rank0/acc", "é/ü"]), st.binary(max_size=4)
)
wids = st.one_of(st.integers(min_value=0, max_value=3), ints, st.text(max_size=2), st.none())


@st.composite
def records(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from([wire.SCALAR, wire.SCALAR_T, wire.TEXT, wire.OPEN, wire.CLOSE]))
    wid, tag, step, wall = draw(wids), draw(tags), draw(steps), draw(numbers)
    if kind == wire.TEXT:
        rec: list[Any] = [
            kind,
            wid,
            tag,
            draw(st.one_of(st.text(max_size=50), anything)),
            step,
            wall,
        ]
    elif kind == wire.SCALAR_T:
        rec = [kind, wid, tag, draw(numbers), step, wall, draw(st.one_of(st.booleans(), anything))]
    elif kind == wire.SCALAR:
        rec = [kind, wid, tag, draw(numbers), step, wall]
    else:
        rec = [kind, wid]
    if draw(st.integers(0, 9)) == 0:  # a field too many or too few
        rec = rec + [draw(anything)] if draw(st.booleans()) else rec[:-1]
    try:
        data = msgpack.packb(rec, use_bin_type=True, use_single_float=draw(st.booleans()))
    except OverflowError:  # a double beyond float32 range, packed as float32
        data = msgpack.packb(rec, use_bin_type=True)
    cut = draw(st.integers(0, 19))
    if cut == 0:
        data = data[: draw(st.integers(0, len(data)))]  # truncated
    elif cut == 1:
        data += draw(st.binary(min_size=1, max_size=3))  # trailing bytes
    return bytes(data)


payload_lists = st.lists(st.one_of(records(), st.binary(max_size=40)), max_size=30)


def expected(payload: bytes | memoryview) -> tuple[Any, Any, bytes]:
    rec = decode_record(payload)
    return rec[1], rec[2], encode.RECORD_ENCODERS[rec[0]](rec)


def check(payloads: list[Any]) -> None:
    runs = batch.encode_batch(payloads)
    covered = 0
    for wid, first, count, data, run_tags in runs:
        assert first == covered and count > 0
        covered += count
        if data is None:
            assert wid is None and run_tags is None
            continue
        assert type(wid) is int and run_tags is not None
        got = [expected(p) for p in payloads[first : first + count]]
        assert data == b"".join(g[2] for g in got)
        assert all(g[0] == wid and type(g[0]) is int for g in got)
        assert list(dict.fromkeys(run_tags)) == list(dict.fromkeys(g[1] for g in got))
        assert all(type(t) is str for t in run_tags)
    assert covered == len(payloads)


@settings(max_examples=600, deadline=None)
@given(payload_lists)
@example([msgpack.packb([wire.SCALAR, 1, "a", 1.0, 5, 1.5])] * 3)
@example([msgpack.packb([wire.SCALAR, 1, "a", 3.5e38, -1, 0.0]), b"\x96\x03"])
def test_taken_records_are_encoded_exactly_as_the_python_encoders(payloads: list[bytes]) -> None:
    check(payloads)


@settings(max_examples=150, deadline=None)
@given(payload_lists)
def test_memoryview_payloads(payloads: list[bytes]) -> None:
    check([memoryview(p) for p in payloads])


sdk_steps = st.one_of(st.none(), st.integers(min_value=INT64_MIN, max_value=INT64_MAX))
sdk_walls = st.one_of(st.floats(allow_nan=False), st.integers(0, 1 << 40))
sdk_values = st.one_of(st.floats(allow_nan=False), st.integers(INT64_MIN, INT64_MAX))


@st.composite
def sdk_records(draw: st.DrawFn) -> tuple[Any, ...]:
    kind = draw(st.sampled_from([wire.SCALAR, wire.SCALAR_T, wire.TEXT]))
    wid = draw(st.integers(0, 3))
    tag = draw(st.text(max_size=30))
    step, wall = draw(sdk_steps), draw(sdk_walls)
    if kind == wire.TEXT:
        return (kind, wid, tag, draw(st.text(max_size=300)), step, wall)
    if kind == wire.SCALAR_T:
        return (kind, wid, tag, draw(sdk_values), step, wall, draw(st.booleans()))
    return (kind, wid, tag, draw(sdk_values), step, wall)


@settings(max_examples=300, deadline=None)
@given(st.lists(sdk_records(), min_size=1, max_size=20))
def test_what_the_sdk_writes_is_all_taken(recs: list[tuple[Any, ...]]) -> None:
    pack = msgpack.Packer(use_bin_type=True).pack  # as sdk/client.py packs
    payloads = [pack(r) for r in recs]
    check(payloads)
    runs = batch.encode_batch(payloads)
    assert all(data is not None for _, _, _, data, _ in runs)
    assert sum(1 for i in range(1, len(recs)) if recs[i][1] != recs[i - 1][1]) == len(runs) - 1


def test_runs_split_at_declined_records_and_at_writer_changes() -> None:
    s = [msgpack.packb([wire.SCALAR, w, "t", 1.0, 1, 2.0]) for w in (1, 1, 2, 2)]
    bad = msgpack.packb([wire.SCALAR, 1, "t", "x", 1, 2.0])
    runs = batch.encode_batch([s[0], s[1], bad, b"", s[2], s[3], s[0]])
    assert [(r[0], r[1], r[2], r[4]) for r in runs] == [
        (1, 0, 2, ("t",)),
        (None, 2, 2, None),
        (2, 4, 2, ("t",)),
        (1, 6, 1, ("t",)),
    ]


def test_many_tags_are_listed_once_each() -> None:
    names = [f"tag{k}" for k in range(40)]
    payloads = [msgpack.packb([wire.SCALAR, 1, names[i % 40], 1.0, i, 2.0]) for i in range(400)]
    ((wid, first, count, _, run_tags),) = batch.encode_batch(payloads)
    assert (wid, first, count, run_tags) == (1, 0, 400, tuple(names))


def test_without_the_compiled_module_everything_is_declined(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(batch, "_encode_batch", None)
    assert batch.encode_batch([]) == []
    assert batch.encode_batch([b"a", b"b"]) == [(None, 0, 2, None, None)]


@given(st.binary(max_size=300))
def test_crc32c_is_the_packages(data: bytes) -> None:
    from summaryd.daemon import _batch

    assert _batch.crc32c(data) == crc32c_package.crc32c(data)
