"""Encoders: one ring record in, one serialized ``Event`` out.

Pure functions, one per record kind, gathered in ``ENCODERS``.  Each builds
exactly the Event torch 2.13's ``SummaryWriter`` builds for the same call
(``torch/utils/tensorboard/summary.py`` and ``writer.py``), with the wall
time and step the trainer recorded.  A malformed record raises (TypeError,
ValueError, ...); the core turns that into a notice.

The scalar encoder is the hot path of the whole daemon, so it writes the
protobuf wire format directly instead of building messages (a quarter of the
cost); a unit test pins its bytes to the message-built ones.
"""

from __future__ import annotations

import itertools
import math
import struct
from collections.abc import Callable
from typing import Any

from summaryd import wire
from summaryd.proto import event_pb2, plugin_text_pb2, summary_pb2, tensor_pb2
from summaryd.wire import varint as _varint

from . import encode_graph, encode_image, encode_numeric, encode_plugins, tfrecord
from .arrays import decode_arrays
from .tfrecord import frame

FILE_VERSION = "brain.Event:2"  # TensorBoard's event-file format version string


def _check_step(step: Any) -> None:
    if step is not None and (type(step) is not int or not -(1 << 63) <= step < (1 << 63)):
        raise TypeError(f"step must be int64 or nil, got {step!r}")


# Event{wall_time=1 (double), step=2 (int64, omitted when 0), summary=5 {value=1 {tag=1,
# simple_value=2 (float, in the 'value' oneof: always present)}}}: everything between the
# step and the float depends only on the tag, so it is built once per tag.
_WALL = struct.Struct("<Bd")
_F32 = struct.Struct("<f")
_tag_parts: dict[str, bytes] = {}
_MAX_TAGS = 1 << 16


def _tag_part(tag: str) -> bytes:
    if type(tag) is not str:
        raise TypeError(f"tag must be str, got {type(tag).__name__}")
    t = tag.encode()
    value = (b"\x0a" + _varint(len(t)) + t if t else b"") + b"\x15"
    value_len = len(value) + 4
    summary = b"\x0a" + _varint(value_len)
    part: bytes = b"\x2a" + _varint(len(summary) + value_len) + summary + value
    if len(_tag_parts) >= _MAX_TAGS:
        _tag_parts.clear()
    _tag_parts[tag] = part
    return part


def scalar(rec: list[Any]) -> bytes:
    """SCALAR: ``Summary.Value(tag, simple_value)`` as torch's default ``add_scalar``."""
    _, _wid, tag, value, step, walltime = rec
    part = _tag_parts.get(tag) or _tag_part(tag)
    try:
        wall = _WALL.pack(9, walltime)
        f = _F32.pack(value)
    except OverflowError:
        # protobuf stores a float field as a C cast from double: +-inf beyond range.
        f = _F32.pack(math.copysign(math.inf, value))
    except struct.error:  # not a number; struct.error is neither TypeError nor ValueError
        raise TypeError("SCALAR: value and walltime must be numbers") from None
    if step:
        if type(step) is not int or not -(1 << 63) <= step < (1 << 63):
            raise TypeError(f"step must be int64 or nil, got {step!r}")
        return b"".join((wall, b"\x10", _varint(step), part, f))
    if step is not None and step != 0:
        raise TypeError(f"step must be int64 or nil, got {step!r}")
    return b"".join((wall, part, f))


def _check_fields(kind: str, tag: Any, walltime: Any, value: Any = 0.0) -> None:
    """The wire types: tag str, value and walltime numbers (float() would parse "1.5")."""
    if type(tag) is not str:
        raise TypeError(f"{kind}: tag must be str, got {type(tag).__name__}")
    if type(walltime) not in (int, float) or type(value) not in (int, float, bool):
        raise TypeError(f"{kind}: value and walltime must be numbers")


def _message_event(walltime: float, step: int | None, **fields: Any) -> bytes:
    ev = event_pb2.Event(wall_time=walltime, **fields)
    if step is not None:
        ev.step = step
    return ev.SerializeToString()  # type: ignore[no-any-return]


def scalar_tensor(rec: list[Any]) -> bytes:
    """SCALAR_T: a rank-0 float or double tensor tagged for the scalars plugin.

    torch's ``scalar(new_style=True)`` (no tensor_shape: rank 0 is its absence);
    a float32 tensor shows in both of
    TensorBoard's loaders, a float64 one only in the Python loader.
    """
    _, _wid, tag, value, step, walltime, double = rec
    _check_fields("SCALAR_T", tag, walltime, value)
    _check_step(step)
    if double:
        tensor = tensor_pb2.TensorProto(
            double_val=[float(value)],
            dtype=tensor_pb2.DT_DOUBLE,
        )
    else:
        tensor = tensor_pb2.TensorProto(
            float_val=[float(value)],
            dtype=tensor_pb2.DT_FLOAT,
        )
    meta = summary_pb2.SummaryMetadata(
        plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars")
    )
    summary = summary_pb2.Summary(
        value=[summary_pb2.Summary.Value(tag=tag, tensor=tensor, metadata=meta)]
    )
    return _message_event(float(walltime), step, summary=summary)


def text(rec: list[Any]) -> bytes:
    """TEXT: torch's ``summary.text``: a string tensor of shape [1] under ``<tag>/text_summary``."""
    _, _wid, tag, body, step, walltime = rec
    if type(tag) is not str or type(body) is not str:
        raise TypeError("TEXT: tag and text must be str")
    _check_fields("TEXT", tag, walltime)
    _check_step(step)
    meta = summary_pb2.SummaryMetadata(
        plugin_data=summary_pb2.SummaryMetadata.PluginData(
            plugin_name="text",
            content=plugin_text_pb2.TextPluginData(version=0).SerializeToString(),
        )
    )
    tensor = tensor_pb2.TensorProto(
        dtype=tensor_pb2.DT_STRING,
        string_val=[body.encode("utf_8")],
        tensor_shape=tensor_pb2.TensorShapeProto(dim=[tensor_pb2.TensorShapeProto.Dim(size=1)]),
    )
    summary = summary_pb2.Summary(
        value=[summary_pb2.Summary.Value(tag=tag + "/text_summary", metadata=meta, tensor=tensor)]
    )
    return _message_event(float(walltime), step, summary=summary)


# torch's EventFileWriter names itself in the first event of every file.
SOURCE_WRITER = "tensorboard.summary.writer.event_file_writer"


def file_header(walltime: float) -> bytes:
    """The ``brain.Event:2`` record every event file starts with, as torch writes it."""
    return _message_event(
        walltime,
        None,
        file_version=FILE_VERSION,
        source_metadata=event_pb2.SourceMetadata(writer=SOURCE_WRITER),
    )


def file_version(walltime: float, step: int | None) -> bytes:
    """A bare version record: the first half of torch's purge_step pair."""
    return _message_event(walltime, step, file_version=FILE_VERSION)


def session_start(walltime: float, step: int) -> bytes:
    """``SessionLog.START`` at ``step``: torch writes it after a purge_step version event."""
    return _message_event(
        walltime, step, session_log=event_pb2.SessionLog(status=event_pb2.SessionLog.START)
    )


def purge_pair_step(first: bytes, second: bytes) -> int | None:
    """``R`` if two serialized events are torch's purge_step pair at ``R``
    (``file_version`` then ``session_start``), else None."""
    try:
        a = event_pb2.Event.FromString(first)
        b = event_pb2.Event.FromString(second)
    except Exception:  # protobuf's DecodeError: not a pair, whatever the bytes are
        return None
    if (
        a.HasField("file_version")
        and not a.HasField("source_metadata")
        and b.HasField("session_log")
        and b.session_log.status == event_pb2.SessionLog.START
        and a.step == b.step
    ):
        return int(b.step)
    return None


def without_purge_pair(framed: bytes, step: int) -> bytes:
    """``framed`` records without the first purge_step pair at ``step`` (a rank
    joining a life another daemon began: its pair is written once)."""
    # Right after the writer's file header, in the run's first write.
    for (s0, e0), (s1, e1) in itertools.pairwise(itertools.islice(tfrecord.spans(framed), 4)):
        first = framed[s0 + tfrecord.HEADER_BYTES : e0 - tfrecord.FOOTER_BYTES]
        second = framed[s1 + tfrecord.HEADER_BYTES : e1 - tfrecord.FOOTER_BYTES]
        if purge_pair_step(bytes(first), bytes(second)) == step:
            return bytes(framed[:s0]) + bytes(framed[e1:])
    return framed


def raw_event(tag: str, params: dict[str, Any], arrays: list[Any]) -> list[Any]:
    """EVENT: an ``Event`` a trainer built itself (torch's ``FileWriter.add_event``).

    Parsed with our schema, so bytes that are no ``Event`` are refused (a
    notice to the client) instead of written: TensorBoard's readers stop for
    good at a record they cannot parse.  Unknown fields are kept, as protobuf
    does, and TensorBoard ignores them.
    """
    if params or len(arrays) != 1 or arrays[0].dtype.str != "|u1" or arrays[0].ndim != 1:
        raise ValueError("EVENT: expected no params and one uint8 vector")
    try:
        return [event_pb2.Event.FromString(arrays[0].tobytes())]
    except Exception as exc:  # DecodeError, or RecursionError on deep nesting
        raise ValueError(f"EVENT: the bytes are not a tensorboard Event ({exc})") from None


ENCODERS: dict[int, Callable[[list[Any]], bytes]] = {
    wire.SCALAR: scalar,
    wire.SCALAR_T: scalar_tensor,
    wire.TEXT: text,
}


# Array record kind -> encoder (tag, params, arrays) -> Summaries and Events;
# EMBEDDING writes files instead (``projector.py``, carried out by the loop).
MEDIA_ENCODERS: dict[int, Callable[[str, dict[str, Any], list[Any]], list[Any]]] = {
    wire.HISTOGRAM: encode_numeric.histogram,
    wire.HISTOGRAM_RAW: encode_numeric.histogram_raw,
    wire.IMAGE: encode_image.image,
    wire.IMAGES: encode_image.images,
    wire.IMAGE_BOXES: encode_image.image_with_boxes,
    wire.VIDEO: encode_image.video,
    wire.AUDIO: encode_plugins.audio,
    wire.PR_CURVE: encode_numeric.pr_curve,
    wire.PR_CURVE_RAW: encode_numeric.pr_curve_raw,
    wire.CUSTOM_SCALARS: encode_plugins.custom_scalars,
    wire.MESH: encode_plugins.mesh,
    wire.HPARAMS: encode_plugins.hparams,
    wire.GRAPH: encode_graph.graph,
    wire.ONNX_GRAPH: encode_graph.onnx_graph,
    wire.TENSOR: encode_numeric.tensor,
    wire.EVENT: raw_event,
}


def check_array_record(rec: list[Any]) -> None:
    """The fields every array record shares (``wire.py``), before its data is read."""
    if len(rec) != wire.ARRAY_FIELDS:
        raise ValueError(f"array record has {len(rec)} fields, not {wire.ARRAY_FIELDS}")
    _, _wid, tag, step, walltime, params, _specs, _data = rec
    _check_fields("array record", tag, walltime)
    _check_step(step)
    if type(params) is not dict:
        raise TypeError("array record: params must be a map")


def array_record(rec: list[Any], data: bytes | memoryview) -> bytes:
    """An array record (its data read, from the ring or a blob) -> framed events.

    Each Summary the kind's encoder returns becomes one Event with the
    record's wall time and step; an Event it returns (graphs) gets them set.
    """
    check_array_record(rec)
    kind, _wid, tag, step, walltime, params, specs, _ = rec
    encoder = MEDIA_ENCODERS.get(kind)
    if encoder is None:
        raise ValueError(f"record kind {kind} has no event encoder")
    arrays = decode_arrays(specs, data)
    out = []
    for msg in encoder(tag, params, arrays):
        if isinstance(msg, summary_pb2.Summary):
            ev = event_pb2.Event(wall_time=float(walltime), summary=msg)
        elif isinstance(msg, event_pb2.Event):
            ev = msg
            ev.wall_time = float(walltime)
        else:
            raise TypeError(f"encoder returned {type(msg).__name__}")
        if step is not None:
            ev.step = step
        out.append(frame(ev.SerializeToString()))
    return b"".join(out)


def _framed(encoder: Callable[[list[Any]], bytes]) -> Callable[[list[Any]], bytes]:
    def encode_and_frame(rec: list[Any]) -> bytes:
        return frame(encoder(rec))

    return encode_and_frame


# Record kind -> function returning the whole TFRecord (framed Event) for it.
RECORD_ENCODERS: dict[int, Callable[[list[Any]], bytes]] = {
    kind: _framed(fn) for kind, fn in ENCODERS.items()
}


def survives_purge(event: bytes, step: int) -> bool:
    """Whether a serialized Event stays when a resumed trainer purges from ``step``.

    As TensorBoard's purge: events at or after the step go, except the
    file-version record every file starts with.
    """
    ev = event_pb2.Event.FromString(event)
    return bool(ev.step < step or ev.HasField("file_version") and ev.step == 0)
