"""Validation and conversion in the caller for graph, onnx_graph.

Each returns ``(params, arrays)`` for one array record (see ``wire.py``);
numpy and torch are imported here, never by ``import summaryd``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

Payload = tuple[dict[str, Any], list[np.ndarray]]


def graph(model: Any, input_to_model: Any, verbose: Any, use_strict_trace: Any) -> Payload:
    raise NotImplementedError("graph")


def onnx_graph(prototxt: Any) -> Payload:
    raise NotImplementedError("onnx_graph")
