"""Conversion in the caller for add_graph and add_onnx_graph.

Each returns ``(params, arrays)`` for one array record (see ``wire.py``);
torch is imported here only when called, never by ``import summaryd``.

Tracing needs the caller's own objects (the model, its inputs, its Python
code), so it cannot move to the daemon: both functions run torch's own
converters here, exactly as torch's ``SummaryWriter`` does, and ship the
serialized protobuf bytes.  Whatever torch raises for a bad model, a bad
input or a bad file (``AttributeError``, ``RuntimeError`` from
``torch.jit.trace``, ``FileNotFoundError`` from ``onnx.load``, ...) propagates
unchanged, with torch's own console output (the traced graph when
``verbose``, the node names ``load_onnx_graph`` prints).  The daemon
(``encode_graph``) checks that the bytes parse and writes the events torch's
``FileWriter.add_graph`` / ``add_onnx_graph`` write.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .errors import ArgumentValueError

Payload = tuple[dict[str, Any], list[np.ndarray]]

# The largest serialized GraphDef or RunMetadata the daemon accepts
# (``encode_graph.MAX_PROTO_BYTES``): checked here too, so that an oversized
# graph fails in the caller instead of as a daemon notice.  A traced ResNet-50
# is about 100 kB; protobuf itself refuses messages of 2 GiB and more.
MAX_PROTO_BYTES = 1 << 28


def _sized(data: bytes, name: str, what: str) -> bytes:
    if len(data) > MAX_PROTO_BYTES:
        raise ArgumentValueError(
            f"{name}: the {what} is {len(data)} bytes; summaryd carries at most "
            f"{MAX_PROTO_BYTES} bytes"
        )
    return data


def graph(model: Any, input_to_model: Any, verbose: Any, use_strict_trace: Any) -> Payload:
    """Trace ``model`` with torch's own ``_pytorch_graph.graph`` and serialize the result.

    torch's ``add_graph`` passes its four arguments to that function unchanged
    and writes the returned ``GraphDef`` and ``RunMetadata`` (step stats
    naming ``/device:CPU:0``); so do we, so the graph is the one torch would
    draw, including its scope names and the model's train/eval state restored
    afterwards.

    Returns:
        ``({"graph_def": bytes, "run_metadata": bytes}, [])``.

    Raises:
        Whatever torch raises for the same arguments, unchanged.
        ArgumentValueError: the serialized graph exceeds ``MAX_PROTO_BYTES``.
    """
    from torch.utils.tensorboard._pytorch_graph import graph as torch_graph

    graph_def, run_metadata = torch_graph(  # type: ignore[no-untyped-call]
        model, input_to_model, verbose, use_strict_trace
    )
    params = {
        "graph_def": _sized(graph_def.SerializeToString(), "model", "traced GraphDef"),
        "run_metadata": _sized(run_metadata.SerializeToString(), "model", "RunMetadata"),
    }
    return params, []


def onnx_graph(prototxt: Any) -> Payload:
    """Load an ONNX model file with torch's own ``_onnx_graph.load_onnx_graph``.

    As torch's ``add_onnx_graph``: ``onnx.load(prototxt)`` (a path or a
    file-like object), graph inputs and outputs as ``Variable`` nodes, every
    operator as a node named after its first output (torch prints each name).

    Returns:
        ``({"graph_def": bytes}, [])``.

    Raises:
        Whatever torch raises for the same argument (ImportError without
        onnx, FileNotFoundError, onnx's DecodeError, ...), unchanged.
        ArgumentValueError: the serialized graph exceeds ``MAX_PROTO_BYTES``.
    """
    from torch.utils.tensorboard._onnx_graph import load_onnx_graph

    graph_def = load_onnx_graph(prototxt)  # type: ignore[no-untyped-call]
    return {"graph_def": _sized(graph_def.SerializeToString(), "prototxt", "GraphDef")}, []
