"""Tests for the protocol module (``summaryd.wire``).

* The module docstring is the protocol spec (STYLE section 4): its tables of
  messages and record kinds and its version history must equal the code.
* ``pack``/``unpack`` round-trip every control message.
* Adversarial input (STYLE section 10): arbitrary bytes and well-typed but
  wrong messages give a valid result or ``ProtocolError``, nothing else.
"""

from __future__ import annotations

import re
from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from summaryd import wire
from summaryd.daemon.arrays import decode_record
from summaryd.errors import ProtocolError, SummarydError
from summaryd.wire import MAX_MESSAGE_BYTES, MESSAGES, PROTOCOL_VERSION, pack, unpack

DOC = wire.__doc__ or ""


# -- the docstring is the spec -------------------------------------------------------------


def _section(title: str) -> str:
    """The text of the docstring section whose heading starts with ``title``."""
    lines = DOC.splitlines()
    for i, line in enumerate(lines):
        if line.startswith(title) and i + 1 < len(lines) and set(lines[i + 1]) == {"-"}:
            body: list[str] = []
            for nxt, after in zip(lines[i + 2 :], [*lines[i + 3 :], ""], strict=True):
                if after and set(after) == {"-"}:
                    break
                body.append(nxt)
            return "\n".join(body)
    raise AssertionError(f"no section {title!r} in the wire docstring")


def _table(text: str) -> list[list[str]]:
    """Rows of the reST simple table in ``text``; continuation lines are joined."""
    lines = text.splitlines()
    rules = [i for i, line in enumerate(lines) if line and set(line) <= {"=", " "}]
    assert len(rules) >= 3, "expected a simple table with a header"
    cols = [(m.start(), m.end()) for m in re.finditer(r"=+", lines[rules[0]])]
    bounds = [(a, cols[k + 1][0] if k + 1 < len(cols) else None) for k, (a, _) in enumerate(cols)]
    rows: list[list[str]] = []
    for line in lines[rules[1] + 1 : rules[2]]:
        cells = [line[a:b].strip() for a, b in bounds]
        if cells[0]:
            rows.append(cells)
        else:
            assert rows, f"continuation line before any row: {line!r}"
            rows[-1] = [f"{a} {b}".strip() for a, b in zip(rows[-1], cells, strict=True)]
    return rows


def _fields(cell: str) -> set[str]:
    if cell.startswith("(none)"):
        return set()
    cell = re.sub(r"\([^)]*\)", "", cell)
    names = {part.strip() for part in cell.split(",")}
    assert all(re.fullmatch(r"[a-z_]+", n) for n in names), names
    return names


def test_docstring_version_history_matches_protocol_version() -> None:
    history = _section("Version history")
    versions = [int(m.group(1)) for m in re.finditer(r"^(\d+)\.\s", history, re.M)]
    assert versions, "the version history lists no versions"
    assert versions == list(range(1, len(versions) + 1))
    assert versions[-1] == PROTOCOL_VERSION


def test_docstring_message_table_lists_exactly_the_messages() -> None:
    rows = _table(_section("Control messages"))
    documented: dict[str, list[set[str]]] = {}
    for t, direction, fields in rows:
        assert re.fullmatch(r"(c|d|any) -> (c|d|any)", direction), direction
        documented.setdefault(t, []).append(_fields(fields))
    assert set(documented) == set(MESSAGES)
    for t, required in MESSAGES.items():
        # The validated fields are those of one documented row (status: the request).
        assert set(required) in documented[t], (t, set(required), documented[t])


def test_docstring_record_table_matches_the_kind_constants() -> None:
    rows = _table(_section("Ring records"))
    kinds = {kind: int(code) for kind, code, _ in rows}
    assert kinds == {"OPEN": 1, "CLOSE": 2, "SCALAR": 3, "SCALAR_T": 4, "TEXT": 5}
    section = _section("Ring records")
    array_rows = _table(section[section.index("Array records carry") :])
    array_kinds = {kind: int(code) for kind, code, _, _ in array_rows}
    assert list(array_kinds.values()) == list(wire.ARRAY_KINDS)
    assert not set(array_kinds) & set(kinds)
    kinds |= array_kinds
    for kind, code in kinds.items():
        assert getattr(wire, kind) == code
    assert len(set(kinds.values())) == len(kinds)


# -- round trips ------------------------------------------------------------------------------

_SAMPLE: dict[type, Any] = {int: 7, str: "x", list: ["argv0", "--flag", 3]}


def _sample(t: str) -> dict[str, Any]:
    msg: dict[str, Any] = {"t": t}
    for name, typ in MESSAGES[t].items():
        msg[name] = _SAMPLE[typ]
    return msg


@pytest.mark.parametrize("t", sorted(MESSAGES))
def test_round_trip_every_message(t: str) -> None:
    msg = _sample(t)
    data = pack(msg)
    assert isinstance(data, bytes)
    assert unpack(data) == msg


def test_round_trip_hello_as_the_client_sends_it() -> None:
    msg = {
        "t": "hello",
        "v": PROTOCOL_VERSION,
        "pid": 12345,
        "start": 987654321,
        "sid": "0123456789abcdef0123456789abcdef",
        "ring": "summaryd.12345.0123",
        "argv": [],
    }
    assert unpack(pack(msg)) == msg


def test_extra_fields_are_kept_and_ignored() -> None:
    msg = {"t": "flush", "tok": 1, "pos": 2, "future": {"x": [1, 2.5, None]}}
    assert unpack(pack(msg)) == msg


@pytest.mark.parametrize("value", [0, -1, (1 << 63) - 1, -(1 << 63), (1 << 64) - 1])
def test_int_fields_accept_the_msgpack_range(value: int) -> None:
    assert unpack(pack({"t": "flush", "tok": value, "pos": value}))["pos"] == value


# -- wrong messages -------------------------------------------------------------------------------


def _bad(msg: Any) -> bytes:
    return msgpack.packb(msg, use_bin_type=True)  # type: ignore[no-any-return]


_WRONG: dict[str, Any] = {
    "not-a-map": ["t", "status"],
    "int": 5,
    "nil": None,
    "no-t": {"tok": 1},
    "t-not-str": {"t": 1},
    "t-bytes": {"t": b"status"},
    "unknown-t": {"t": "bogus"},
    "t-case": {"t": "Status"},
    "missing-field": {"t": "flush", "tok": 1},
    "missing-all": {"t": "hello"},
    "str-for-int": {"t": "flush", "tok": "1", "pos": 2},
    "float-for-int": {"t": "flush", "tok": 1.0, "pos": 2},
    "bool-for-int": {"t": "flush", "tok": True, "pos": 2},
    "bool-false-for-int": {"t": "ack", "tok": False},
    "nil-for-int": {"t": "ack", "tok": None},
    "bytes-for-str": {"t": "notice", "level": b"warning", "msg": "m"},
    "int-for-str": {"t": "notice", "level": "warning", "msg": 3},
    "map-for-list": {**_sample("hello"), "argv": {"a": 1}},
    "str-for-list": {**_sample("hello"), "argv": "python train.py"},
    "int-key": {1: "status", "t": "status"},
}


@pytest.mark.parametrize("name", sorted(_WRONG))
def test_wrong_messages_raise_protocol_error(name: str) -> None:
    with pytest.raises(ProtocolError):
        unpack(_bad(_WRONG[name]))


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\xc1",
        b"\x81",
        _bad({"t": "status"}) + b"\x00",
        b"\xd4\x01\x00",
        _bad({"t": "status", "x": msgpack.ExtType(1, b"abc")}),
    ],
    ids=["empty", "never-used-byte", "truncated-map", "extra-data", "ext", "ext-in-map"],
)
def test_undecodable_messages_raise_protocol_error(data: bytes) -> None:
    with pytest.raises(ProtocolError):
        unpack(data)


def test_oversize_message_raises_protocol_error() -> None:
    # A well-formed hello just over the limit (each element within the unpack limits).
    msg = {**_sample("hello"), "argv": ["a" * 255] * 4096}
    data = pack(msg)
    assert len(data) > MAX_MESSAGE_BYTES
    with pytest.raises(ProtocolError, match="exceeds"):
        unpack(data)


@pytest.mark.parametrize(
    "msg",
    [
        {"t": "status", "pad": "x" * (1 << 17)},
        {"t": "status", "pad": b"x" * (1 << 17)},
        {"t": "status", "pad": list(range(1 << 13))},
        {"t": "status", **{f"k{i}": i for i in range(300)}},
    ],
    ids=["long-str", "long-bin", "long-array", "big-map"],
)
def test_unpack_limits(msg: dict[str, Any]) -> None:
    with pytest.raises(ProtocolError):
        unpack(pack(msg))


def test_protocol_error_is_a_summaryd_value_error() -> None:
    assert issubclass(ProtocolError, SummarydError)
    assert issubclass(ProtocolError, ValueError)


# -- records ---------------------------------------------------------------------------------------


def test_decode_record_round_trip() -> None:
    rec = (wire.SCALAR, 1, "loss", 0.5, 10, 1700000000.25)
    assert decode_record(_bad(rec)) == list(rec)
    assert decode_record(memoryview(_bad(rec))) == list(rec)
    nested = [wire.OPEN, 1, "/tmp/x", "", 10, 120.0, None, 1.0, (1, (2,))]
    assert decode_record(_bad(nested))[-1] == [1, [2]]


@pytest.mark.parametrize(
    "obj",
    [[], {"a": 1}, 3, "SCALAR", None, [True, 1], [1.0, 1], ["OPEN"], [None], [[1], 2]],
    ids=[
        "empty",
        "map",
        "int",
        "str",
        "nil",
        "bool-kind",
        "float-kind",
        "str-kind",
        "nil-kind",
        "list-kind",
    ],
)
def test_decode_record_refuses_non_records(obj: Any) -> None:
    with pytest.raises(ProtocolError):
        decode_record(_bad(obj))


@pytest.mark.parametrize("data", [b"", b"\xc1", b"\x93\x01", _bad([1]) + b"\x01"])
def test_decode_record_refuses_garbage(data: bytes) -> None:
    with pytest.raises(ProtocolError):
        decode_record(data)


# -- properties ------------------------------------------------------------------------------------

_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(1 << 63), max_value=(1 << 64) - 1),
    st.floats(allow_nan=False),
    st.text(max_size=20),
    st.binary(max_size=20),
)
_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=6,
)
_field_names = st.sampled_from(sorted({n for f in MESSAGES.values() for n in f} | {"t", "zz"}))
_messages = st.one_of(
    _values,
    st.builds(
        lambda t, fields: {**fields, "t": t},
        st.one_of(st.sampled_from(sorted(MESSAGES)), _scalars),
        st.dictionaries(_field_names, _values, max_size=8),
    ),
)


def _check_valid(msg: Any) -> None:
    assert isinstance(msg, dict)
    t = msg["t"]
    assert isinstance(t, str) and t in MESSAGES
    for name, typ in MESSAGES[t].items():
        assert isinstance(msg[name], typ) and not isinstance(msg[name], bool), (t, name)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_unpack_arbitrary_bytes(data: bytes) -> None:
    try:
        msg = unpack(data)
    except ProtocolError:
        return
    _check_valid(msg)


@settings(max_examples=100, deadline=None)
@given(_messages)
def test_unpack_arbitrary_msgpack(obj: Any) -> None:
    try:
        msg = unpack(_bad(obj))
    except ProtocolError:
        return
    _check_valid(msg)
    assert msg == obj


@settings(max_examples=60, deadline=None)
@given(_messages, st.data())
def test_unpack_truncated_or_mutated(obj: Any, data: st.DataObject) -> None:
    raw = bytearray(_bad(obj))
    cut = data.draw(st.integers(min_value=0, max_value=len(raw)))
    raw = raw[:cut]
    if raw:
        i = data.draw(st.integers(min_value=0, max_value=len(raw) - 1))
        raw[i] = data.draw(st.integers(min_value=0, max_value=255))
    try:
        msg = unpack(bytes(raw))
    except ProtocolError:
        return
    _check_valid(msg)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_decode_record_arbitrary_bytes(data: bytes) -> None:
    try:
        rec = decode_record(data)
    except ProtocolError:
        return
    assert type(rec) is list and rec and type(rec[0]) is int


@settings(max_examples=100, deadline=None)
@given(st.one_of(_values, st.lists(_values, max_size=6)))
def test_decode_record_arbitrary_msgpack(obj: Any) -> None:
    try:
        rec = decode_record(_bad(obj))
    except ProtocolError:
        assert not (type(obj) is list and obj and type(obj[0]) is int)
        return
    assert type(rec) is list and rec and type(rec[0]) is int
    assert rec == obj


@settings(max_examples=50, deadline=None)
@given(st.binary(min_size=1, max_size=64), st.integers(min_value=1 << 16, max_value=1 << 18))
def test_decode_record_large_records_and_their_tails(noise: bytes, size: int) -> None:
    """Past 64 KiB the daemon keeps an array record's data as a view: the same
    record, and damage anywhere (here: the tail) is a ProtocolError, never more."""
    data = bytes(size)
    rec = [wire.HISTOGRAM, 1, "t", 0, 1.0, {}, [["|u1", [size]]], data]
    payload = _bad(rec)
    out = decode_record(payload)
    assert out[:-1] == rec[:-1] and bytes(out[-1]) == data
    try:
        damaged = decode_record(payload + noise)
    except ProtocolError:
        return
    assert type(damaged) is list and type(damaged[0]) is int


BUILT = {
    "hello": lambda: wire.hello(123, 456, "0123456789abcdef", "summaryd.0.123.x", ["a" * 300] * 40),
    "welcome": lambda: wire.welcome(7),
    "bell": wire.bell,
    "flush": lambda: wire.flush(3, 4096),
    "ack": lambda: wire.ack(3),
    "status": lambda: wire.status_reply({"pid": 1}, [], [], {"records": 0}),
    "stop": wire.stop,
    "bye": wire.bye,
    "stopping": wire.stopping,
    "notice": lambda: wire.notice("warning", "hi"),
}


def test_every_message_has_one_builder_whose_output_decodes() -> None:
    assert set(BUILT) == set(MESSAGES)
    for t, build in BUILT.items():
        msg = build()
        assert msg["t"] == t
        assert unpack(pack(msg)) == msg
    assert unpack(pack(wire.status())) == {"t": "status"}
    hello = wire.hello(1, 2, "0123456789abcdef", "r", ["x" * 300] * 40)
    assert hello["v"] == PROTOCOL_VERSION and len(hello["argv"]) == 32
    assert {len(a) for a in hello["argv"]} == {256}  # bounded: the daemon's limits
