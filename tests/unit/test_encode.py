"""Tests for the record encoders (``summaryd.daemon.encode``).

* The hand-written scalar encoder gives the Event the message-built path gives,
  for any tag, value, step and wall time (the encode docstring promises a test
  pins it).
* The SCALAR_T and TEXT encoders give what torch's own
  ``torch.utils.tensorboard.summary`` builds: golden comparisons, read back
  with TensorBoard's protobuf classes.
* A bad record raises TypeError or ValueError and nothing else.
"""

from __future__ import annotations

import math
import re
import struct
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from tensorboard.compat.proto import event_pb2 as tb_event_pb2
from tensorboard.compat.proto import summary_pb2 as tb_summary_pb2
from torch.utils.tensorboard import summary as torch_summary

from summaryd import wire
from summaryd.daemon import encode
from summaryd.daemon.tfrecord import frame
from summaryd.proto import event_pb2, summary_pb2

INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1

# Tags and text as a trainer may send them: any unicode msgpack can carry (no surrogates).
tags = st.text(max_size=40)
steps = st.one_of(
    st.none(),
    st.sampled_from([0, 1, -1, 127, 128, 16383, 16384, 2097151, 2097152, INT64_MIN, INT64_MAX]),
    st.integers(min_value=INT64_MIN, max_value=INT64_MAX),
)
walltimes = st.one_of(
    st.sampled_from([0.0, -0.0, 1.7e9, 1700000000.123456]),
    st.floats(allow_nan=True, allow_infinity=True),
)
values = st.one_of(
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
            3.4028234663852886e38,
            3.4028235677973366e38,
            1e-46,
        ]
    ),
    st.floats(),
)


def _canon(ev_bytes: bytes) -> bytes:
    """Parse with TensorBoard's Event and re-serialize: field presence and bits compared."""
    ev = tb_event_pb2.Event.FromString(ev_bytes)
    return ev.SerializeToString(deterministic=True)  # type: ignore[no-any-return]


def _message_scalar(tag: str, value: float, step: int | None, walltime: float) -> bytes:
    ev = event_pb2.Event(
        wall_time=walltime,
        summary=summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=tag, simple_value=value)]),
    )
    if step is not None:
        ev.step = step
    return ev.SerializeToString()  # type: ignore[no-any-return]


def _f32_bits(x: float) -> int:
    """The bits protobuf stores for a float field set from a double (a C cast)."""
    try:
        return int(struct.unpack("<I", struct.pack("<f", x))[0])
    except OverflowError:
        return int(struct.unpack("<I", struct.pack("<f", math.copysign(math.inf, x)))[0])


# -- SCALAR: hand-written bytes == message-built Event ---------------------------------------------


@settings(max_examples=200, deadline=None)
@given(tag=tags, value=values, step=steps, walltime=walltimes)
@example(tag="loss", value=0.5, step=None, walltime=0.0)
@example(tag="", value=0.0, step=0, walltime=1.0)
@example(tag="überlänge/損失/🙂", value=1e300, step=INT64_MIN, walltime=-0.0)
@example(tag="x" * 200, value=math.nan, step=INT64_MAX, walltime=math.inf)
def test_scalar_is_the_message_built_event(
    tag: str, value: float, step: int | None, walltime: float
) -> None:
    ours = encode.scalar([wire.SCALAR, 1, tag, value, step, walltime])
    again = encode.scalar([wire.SCALAR, 2, tag, value, step, walltime])  # the per-tag cache
    assert again == ours
    reference = _message_scalar(tag, value, step, walltime)
    assert _canon(ours) == _canon(reference)
    if struct.pack("<d", walltime) != bytes(8):
        # protobuf omits wall_time == +0.0 (proto3 default); otherwise the bytes are equal.
        assert ours == reference
    ev = tb_event_pb2.Event.FromString(ours)
    assert ev.step == (step or 0)
    assert struct.pack("<d", ev.wall_time) == struct.pack("<d", walltime)
    [v] = ev.summary.value
    assert v.tag == tag
    assert v.WhichOneof("value") == "simple_value"
    assert _f32_bits(v.simple_value) == _f32_bits(value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [(1e300, math.inf), (-1e300, -math.inf), (3.5e38, math.inf), (1e-50, 0.0)],
)
def test_scalar_out_of_float32_range(value: float, expected: float) -> None:
    ev = tb_event_pb2.Event.FromString(encode.scalar([wire.SCALAR, 1, "t", value, 1, 2.0]))
    assert ev.summary.value[0].simple_value == expected


@pytest.mark.parametrize("value", [0, 1, -7, 1 << 40, (1 << 64) - 1, INT64_MIN, True])
def test_scalar_int_values_as_msgpack_delivers_them(value: int) -> None:
    ours = encode.scalar([wire.SCALAR, 1, "t", value, 3, 2.5])
    assert ours == _message_scalar("t", float(value), 3, 2.5)


def test_scalar_tag_cache_does_not_mix_tags() -> None:
    seen = {}
    for i in range(300):
        tag = f"tag/{i % 37}"
        seen[tag] = encode.scalar([wire.SCALAR, 1, tag, float(i), i, 1.0])
        assert tb_event_pb2.Event.FromString(seen[tag]).summary.value[0].tag == tag


# -- SCALAR_T and TEXT: what torch builds ----------------------------------------------------------


def _torch_event(summary: Any, step: int | None, walltime: float) -> bytes:
    """torch's FileWriter.add_summary: Event(summary), wall_time, step if given."""
    ev = tb_event_pb2.Event(summary=tb_summary_pb2.Summary.FromString(summary.SerializeToString()))
    ev.wall_time = walltime
    if step is not None:
        ev.step = step
    return ev.SerializeToString(deterministic=True)  # type: ignore[no-any-return]


@pytest.mark.parametrize("double", [False, True])
def test_scalar_tensor_is_torchs_new_style_scalar(double: bool) -> None:
    ours = encode.scalar_tensor([wire.SCALAR_T, 1, "loss", 0.25, 7, 1700000000.5, double])
    theirs = torch_summary.scalar(  # type: ignore[no-untyped-call]
        "loss", 0.25, new_style=True, double_precision=double
    )
    assert _canon(ours) == _torch_event(theirs, 7, 1700000000.5)


@settings(max_examples=100, deadline=None)
@given(tag=tags, value=values, step=steps, walltime=walltimes, double=st.booleans())
def test_scalar_tensor_matches_torch(
    tag: str, value: float, step: int | None, walltime: float, double: bool
) -> None:
    ours = encode.scalar_tensor([wire.SCALAR_T, 1, tag, value, step, walltime, double])
    theirs = torch_summary.scalar(  # type: ignore[no-untyped-call]
        tag, value, new_style=True, double_precision=double
    )
    assert _canon(ours) == _torch_event(theirs, step, walltime)


def test_text_is_torchs_text() -> None:
    ours = encode.text([wire.TEXT, 1, "notes", "**hello** wörld", 3, 1700000000.5])
    theirs = torch_summary.text("notes", "**hello** wörld")  # type: ignore[no-untyped-call]
    assert _canon(ours) == _torch_event(theirs, 3, 1700000000.5)


@settings(max_examples=100, deadline=None)
@given(tag=tags, body=st.text(max_size=200), step=steps, walltime=walltimes)
def test_text_matches_torch(tag: str, body: str, step: int | None, walltime: float) -> None:
    ours = encode.text([wire.TEXT, 1, tag, body, step, walltime])
    theirs = torch_summary.text(tag, body)  # type: ignore[no-untyped-call]
    assert _canon(ours) == _torch_event(theirs, step, walltime)


# -- the version and purge events ------------------------------------------------------------------


def test_file_header_is_torchs_first_event() -> None:
    """tensorboard.summary.writer.event_file_writer.EventFileWriter's initial event."""
    ours = encode.file_header(1700000000.25)
    theirs = tb_event_pb2.Event(
        wall_time=1700000000.25,
        file_version="brain.Event:2",
        source_metadata=tb_event_pb2.SourceMetadata(
            writer="tensorboard.summary.writer.event_file_writer"
        ),
    )
    assert _canon(ours) == theirs.SerializeToString(deterministic=True)


def test_file_version_event() -> None:
    ev = tb_event_pb2.Event.FromString(encode.file_version(1700000000.25, None))
    assert ev.file_version == "brain.Event:2" == encode.FILE_VERSION
    assert ev.wall_time == 1700000000.25
    assert not ev.HasField("summary") and ev.step == 0
    ev = tb_event_pb2.Event.FromString(encode.file_version(1.0, 42))
    assert (ev.file_version, ev.step) == ("brain.Event:2", 42)


def test_session_start_event() -> None:
    ev = tb_event_pb2.Event.FromString(encode.session_start(5.5, 42))
    assert ev.WhichOneof("what") == "session_log"
    assert ev.session_log.status == tb_event_pb2.SessionLog.START
    assert (ev.step, ev.wall_time) == (42, 5.5)


# -- the tables ------------------------------------------------------------------------------------


def _documented_fields() -> dict[int, list[str]]:
    """Record kind -> field names after the kind, from the wire docstring's table."""
    doc = wire.__doc__ or ""
    block = doc.split("Ring records", 1)[1].split("Control messages", 1)[0]
    out: dict[int, list[str]] = {}
    kind = None
    text = ""
    for line in block.splitlines():
        m = re.match(r"^([A-Z_]+)\s+(\d+)\s+(.*)$", line)
        if m:
            if kind is not None:
                out[kind] = _names(text)
            kind, text = int(m.group(2)), m.group(3)
        elif kind is not None and line.startswith(" ") and line.strip():
            text += " " + line.strip()
        elif line.startswith("="):
            if kind is not None:
                out[kind] = _names(text)
            kind = None
    return out


def _names(text: str) -> list[str]:
    text = text.split("->", 1)[0]
    text = re.sub(r"\([^)]*\)", "", text)
    return [part.strip() for part in text.split(",") if part.strip()]


_FIELD_VALUES = {
    "wid": 1,
    "tag": "tag",
    "value": 0.5,
    "step": 3,
    "walltime": 1.5,
    "double": True,
    "text": "body",
}


def test_encoder_table() -> None:
    assert set(encode.ENCODERS) == {wire.SCALAR, wire.SCALAR_T, wire.TEXT}
    assert set(encode.RECORD_ENCODERS) == set(encode.ENCODERS)
    for kind, fn in encode.ENCODERS.items():
        rec = [kind, *(_FIELD_VALUES[n] for n in _documented_fields()[kind])]
        assert encode.RECORD_ENCODERS[kind](rec) == frame(fn(rec))


@pytest.mark.parametrize("kind", sorted(encode.ENCODERS))
def test_documented_arity_is_accepted_and_others_refused(kind: int) -> None:
    names = _documented_fields()[kind]
    rec = [kind, *(_FIELD_VALUES[n] for n in names)]
    ev = tb_event_pb2.Event.FromString(encode.ENCODERS[kind](rec))
    assert (ev.step, ev.wall_time) == (3, 1.5)
    for bad in (rec[:-1], [*rec, 0], [kind], []):
        with pytest.raises(ValueError):
            encode.ENCODERS[kind](bad)


# -- bad records -----------------------------------------------------------------------------------

# Field index -> wrong values, per kind (the record is otherwise valid).
_GOOD = {
    wire.SCALAR: [wire.SCALAR, 1, "tag", 0.5, 3, 1.5],
    wire.SCALAR_T: [wire.SCALAR_T, 1, "tag", 0.5, 3, 1.5, False],
    wire.TEXT: [wire.TEXT, 1, "tag", "body", 3, 1.5],
}
_BAD_FIELDS: list[tuple[str, int, Any]] = [
    ("tag-int", 2, 5),
    ("tag-list", 2, ["a"]),
    ("tag-map", 2, {"a": 1}),
    ("tag-surrogate", 2, "\ud800"),
    ("step-float", 4, 1.5),
    ("step-str", 4, "3"),
    ("step-bool", 4, True),
    ("step-list", 4, [3]),
    ("step-too-big", 4, 1 << 63),
    ("step-too-small", 4, INT64_MIN - 1),
    ("walltime-nil", 5, None),
    ("walltime-list", 5, [1.0]),
    ("walltime-word", 5, "yesterday"),
]
_BAD_VALUES: list[tuple[str, Any]] = [
    ("nil", None),
    ("list", [1.0]),
    ("map", {"v": 1.0}),
    ("word", "abc"),
    ("bin", b"\x00"),
]


def _bad_cases() -> list[Any]:
    cases = []
    for kind, good in _GOOD.items():
        for name, index, bad in _BAD_FIELDS:
            rec = list(good)
            rec[index] = bad
            cases.append(pytest.param(kind, rec, id=f"{kind}-{name}"))
        for name, bad in _BAD_VALUES:
            if kind == wire.TEXT and isinstance(bad, str):
                continue  # a TEXT record's field 3 is the text itself
            rec = list(good)
            rec[3] = bad
            cases.append(pytest.param(kind, rec, id=f"{kind}-value-{name}"))
    return cases


@pytest.mark.parametrize(("kind", "rec"), _bad_cases())
def test_bad_records_raise_type_or_value_error(kind: int, rec: list[Any]) -> None:
    with pytest.raises((TypeError, ValueError)):
        encode.ENCODERS[kind](rec)


_LAX = {
    wire.SCALAR: [
        ("value-str", 3, "1.5"),
        ("value-bin", 3, b"1.5"),
        ("walltime-str", 5, "1.5"),
        ("tag-bin", 2, b"tag"),
        ("tag-nil", 2, None),
    ],
    wire.SCALAR_T: [
        ("value-str", 3, "1.5"),
        ("value-bin", 3, b"1.5"),
        ("walltime-str", 5, "1.5"),
        ("tag-bin", 2, b"tag"),
        ("tag-nil", 2, None),
    ],
    wire.TEXT: [
        ("walltime-str", 5, "1.5"),
        ("text-bin", 3, b"body"),
        ("tag-bin", 2, b"tag"),
        ("tag-nil", 2, None),
    ],
}


@pytest.mark.parametrize(
    ("kind", "index", "bad"),
    [
        pytest.param(kind, index, bad, id=f"{kind}-{name}")
        for kind, cases in _LAX.items()
        for name, index, bad in cases
    ],
)
def test_fields_must_have_the_documented_type(kind: int, index: int, bad: Any) -> None:
    """The wire spec types tag and text as str and value and walltime as float: a
    string that float() happens to parse, bytes or nil for a str, is a malformed
    record (the SDK never sends one; it converts torch's None/bytes tags itself),
    not something to write.  All three encoders should agree."""
    rec = list(_GOOD[kind])
    rec[index] = bad
    with pytest.raises((TypeError, ValueError)):
        encode.ENCODERS[kind](rec)


_anything = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=INT64_MIN, max_value=(1 << 64) - 1),
        st.floats(),
        st.text(max_size=10),
        st.binary(max_size=10),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=4,
)


@settings(max_examples=100, deadline=None)
@given(kind=st.sampled_from(sorted(encode.ENCODERS)), data=st.data())
def test_arbitrary_records_raise_only_type_or_value_error(kind: int, data: st.DataObject) -> None:
    good = _GOOD[kind]
    if data.draw(st.booleans()):
        # A valid record with some fields replaced.
        rec = list(good)
        for i in data.draw(st.sets(st.integers(min_value=1, max_value=len(good) - 1), min_size=1)):
            rec[i] = data.draw(_anything)
    else:
        rec = [kind, *data.draw(st.lists(_anything, max_size=len(good) + 1))]
    try:
        out = encode.ENCODERS[kind](rec)
    except (TypeError, ValueError):
        return
    assert isinstance(out, bytes)
    tb_event_pb2.Event.FromString(out)
