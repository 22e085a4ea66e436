"""Encoders for add_graph and add_onnx_graph: the GraphDef and RunMetadata events.

Each function: ``(tag, params, arrays) -> list of Summary or Event``; see
``encode.MEDIA_ENCODERS``.  Pure; validates every field (records come from
untrusted clients) and raises TypeError/ValueError on anything malformed.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def graph(tag: str, params: dict[str, Any], arrays: list[np.ndarray]) -> list[Any]:
    raise NotImplementedError("graph")


def onnx_graph(tag: str, params: dict[str, Any], arrays: list[np.ndarray]) -> list[Any]:
    raise NotImplementedError("onnx_graph")
