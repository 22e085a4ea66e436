"""Encoders for add_graph and add_onnx_graph: the GraphDef and RunMetadata events.

Each function: ``(tag, params, arrays) -> list of Summary or Event``; see
``encode.MEDIA_ENCODERS``.  Pure; validates every field (records come from
untrusted clients) and raises TypeError/ValueError on anything malformed.

The trainer traced the model with torch's own code and sent the serialized
messages (``sdk/convert_graph.py``); these encoders check that the bytes are
what they claim to be and wrap them in the events torch's ``FileWriter``
writes.  The bytes themselves are written unchanged, so the file holds
exactly what torch's would.  The tag is unused: torch's graph events carry
none (the run metadata's tag is always ``step1``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from google.protobuf.message import DecodeError, Message

from summaryd.proto import event_pb2, graph_pb2, step_stats_pb2

# The largest serialized message accepted (as ``sdk/convert_graph.py``): bounds
# what a parse may allocate (a few times the input size).
MAX_PROTO_BYTES = 1 << 28

# torch's FileWriter.add_graph tags the step stats "step1", whatever the step;
# TensorBoard's graphs plugin lists run metadata by this tag.
RUN_METADATA_TAG = "step1"


def _message_bytes(params: Any, key: str, message: type[Message]) -> bytes:
    """``params[key]``: serialized bytes that parse as ``message`` (returned unchanged)."""
    data = params.get(key)
    if type(data) is not bytes:
        raise TypeError(f"{key} must be bytes, got {type(data).__name__}")
    if len(data) > MAX_PROTO_BYTES:
        raise ValueError(f"{key} is {len(data)} bytes, more than {MAX_PROTO_BYTES}")
    try:
        message.FromString(data)
    except DecodeError as exc:  # protobuf's own error type is neither ValueError nor TypeError
        raise ValueError(f"{key} is not a serialized {message.__name__}: {exc}") from None
    return data


def _check_record(kind: str, params: Any, arrays: Any) -> None:
    if type(params) is not dict:
        raise TypeError(f"{kind}: params must be a dict, got {type(params).__name__}")
    if type(arrays) is not list or arrays:
        raise ValueError(f"{kind}: takes no arrays")


def graph(tag: str, params: dict[str, Any], arrays: list[np.ndarray]) -> list[Any]:
    """add_graph: ``Event(graph_def)`` then ``Event(tagged_run_metadata)``.

    As torch's ``FileWriter.add_graph``: two events, no step, the second a
    ``TaggedRunMetadata`` tagged ``step1`` holding the step stats.

    Params:
        graph_def: a serialized ``GraphDef``; run_metadata: a serialized ``RunMetadata``.

    Raises:
        TypeError / ValueError: a field is missing, not bytes, too large or
            does not parse.
    """
    _check_record("graph", params, arrays)
    graph_def = _message_bytes(params, "graph_def", graph_pb2.GraphDef)
    run_metadata = _message_bytes(params, "run_metadata", step_stats_pb2.RunMetadata)
    return [
        event_pb2.Event(graph_def=graph_def),
        event_pb2.Event(
            tagged_run_metadata=event_pb2.TaggedRunMetadata(
                tag=RUN_METADATA_TAG, run_metadata=run_metadata
            )
        ),
    ]


def onnx_graph(tag: str, params: dict[str, Any], arrays: list[np.ndarray]) -> list[Any]:
    """add_onnx_graph: one ``Event(graph_def)``, as torch's ``FileWriter.add_onnx_graph``.

    Params:
        graph_def: a serialized ``GraphDef``.

    Raises:
        TypeError / ValueError: the field is missing, not bytes, too large or
            does not parse.
    """
    _check_record("onnx_graph", params, arrays)
    return [event_pb2.Event(graph_def=_message_bytes(params, "graph_def", graph_pb2.GraphDef))]
