"""add_mesh: ``convert_plugins.mesh`` then ``encode_plugins.mesh``, against torch's.

``convert_plugins`` in the trainer, a round trip through the ring's encoding
(msgpack params, raw arrays read back read-only) and ``encode_plugins`` in the
daemon must give the Summaries torch 2.13's own summary functions give, byte
for byte, with the same stdout and warnings (helpers in
``encode_plugins_helpers.py``); a golden file pins representative cases.

Covered here: meshes of every dtype and part combination (mesh plugin data and
tensors decoded and compared), tags as torch makes them, and read-only arrays.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
from tensorboard.compat.proto import summary_pb2 as tb_summary_pb2
from tensorboard.plugins.mesh import plugin_data_pb2 as mesh_data_pb2
from torch.utils.tensorboard import summary as tb_summary

from summaryd import convert_plugins
from summaryd.daemon import encode_plugins

from ..transport import through_ring  # noqa: E402
from .encode_plugins_helpers import _run, assert_golden, assert_same_outcome

# -- mesh ----------------------------------------------------------------------------------

V = np.array([[[1, 1, 1], [-1, -1, 1], [1, -1, -1], [-1, 1, -1]]], np.float32)

C = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 0, 255]]], np.uint8)

F = np.array([[[0, 2, 3], [0, 3, 1], [0, 1, 2], [1, 3, 2]]], np.int32)

CONFIG = {
    "camera": {"cls": "PerspectiveCamera", "fov": 75},
    "lights": [{"cls": "AmbientLight", "color": "#ffffff", "intensity": 0.75}],
    "material": {"cls": "PointsMaterial", "size": 0.1},
}


def _circular() -> dict[str, Any]:
    d: dict[str, Any] = {}
    d["self"] = d
    return d


def _readonly(a: np.ndarray) -> np.ndarray:
    a = a.copy()
    a.flags.writeable = False
    return a


MESHES: dict[str, Callable[[], tuple[Any, Any, Any, Any]]] = {
    "vertices": lambda: (V, None, None, None),
    "vertices-colors": lambda: (V, C, None, None),
    "vertices-faces": lambda: (V, None, F, None),
    "all-config": lambda: (V, C, F, CONFIG),
    "torch-doc-example": lambda: (
        torch.as_tensor(V),
        torch.as_tensor(C.astype(np.int32)),
        torch.as_tensor(F),
        None,
    ),
    "colors-only": lambda: (None, C, None, None),
    "nothing": lambda: (None, None, None, None),
    "float-colors": lambda: (V, C / 255.0, F, {"a": float("nan")}),
    "lists": lambda: (V.tolist(), C.tolist(), [[[0, 1, 2]]], None),
    "list-floats": lambda: ([[[0.1, 0.2, 0.3]]], None, None, None),
    "batch-2": lambda: (np.stack([V[0], -V[0]]), None, None, [1, 2]),
    "last-dim-4": lambda: (np.zeros((1, 2, 4)), None, None, None),
    "empty": lambda: (np.zeros((1, 0, 3)), None, None, None),
    "f64-huge": lambda: (np.array([[[0.1, 1e300, -1e300]]]), None, None, None),
    "f64-nan": lambda: (np.full((1, 1, 3), np.nan), None, None, None),
    "i64-rounding": lambda: (np.array([[[2**62 + 1, 2**53 + 1, 16777217]]]), None, None, None),
    "u64-max": lambda: (np.array([[[2**64 - 1, 2**64 - 1025, 3]]], np.uint64), None, None, None),
    "bool": lambda: (np.ones((1, 1, 3), bool), None, None, None),
    "i8": lambda: (np.full((1, 1, 3), -5, np.int8), None, None, None),
    "u16": lambda: (np.full((1, 1, 3), 65535, np.uint16), None, None, None),
    "f16": lambda: (np.full((1, 1, 3), 0.1, np.float16), None, None, None),
    "bf16-large": lambda: (torch.full((1, 1, 3), 1e5, dtype=torch.bfloat16), None, None, None),
    "f8": lambda: (torch.full((1, 1, 3), 0.3).to(torch.float8_e5m2), None, None, None),
    "non-contiguous": lambda: (np.zeros((3, 2, 1)).transpose(2, 1, 0), None, None, None),
    "torch-grad": lambda: (torch.ones(1, 2, 3, requires_grad=True), None, None, None),
    "config-sorted-keys": lambda: (V, None, None, {"b": 1, "a": {"d": 2, "c": 3}}),
    "config-int-keys": lambda: (V, None, None, {2: 1, 1: 2}),
    "config-str": lambda: (V, None, None, "abc"),
    "config-False": lambda: (V, None, None, False),
    # rejected
    "vertices-2d": lambda: (V[0], None, None, None),
    "vertices-4d": lambda: (V[None], None, None, None),
    "scalar": lambda: (5.0, None, None, None),
    "str": lambda: ("abc", None, None, None),
    "object": lambda: (object(), None, None, None),
    "ragged": lambda: ([[[1, 2, 3]], [[1, 2]]], None, None, None),
    "complex": lambda: (np.ones((1, 1, 3), np.complex64), None, None, None),
    "complex-2d": lambda: (np.ones((1, 3), np.complex64), None, None, None),
    "torch-complex": lambda: (torch.ones((1, 1, 3), dtype=torch.complex64), None, None, None),
    "np-str": lambda: (np.array([[["a", "b", "c"]]]), None, None, None),
    "np-object": lambda: (np.array([[[None, 1, 2]]], dtype=object), None, None, None),
    "longdouble": lambda: (np.ones((1, 1, 3), np.longdouble), None, None, None),
    "negative-stride": lambda: (V[:, ::-1], None, None, None),
    "big-endian": lambda: (V.astype(">f4"), None, None, None),
    "meta": lambda: (torch.ones((1, 1, 3), device="meta"), None, None, None),
    "meta-2d": lambda: (torch.ones((1, 3), device="meta"), None, None, None),
    "bad-colors-after-good": lambda: (V, np.zeros((2, 3)), None, None),
    "bad-faces-before-colors": lambda: (V, np.zeros((2, 3)), "x", None),
    "config-np": lambda: (V, None, None, {"a": np.float32(1)}),
    "config-mixed-keys": lambda: (V, None, None, {"a": 1, 2: 3}),
    "config-circular": lambda: (V, None, None, _circular()),
    "config-tuple-key": lambda: (V, None, None, {(1,): 1}),
    "config-bad-before-vertices": lambda: (V[0], None, None, {"a": object()}),
}


def torch_mesh(v: Any, c: Any, f: Any, cfg: Any) -> list[bytes]:
    return [tb_summary.mesh("m", v, c, f, cfg).SerializeToString()]


def our_mesh(v: Any, c: Any, f: Any, cfg: Any) -> list[bytes]:
    params, arrays = through_ring(convert_plugins.mesh(v, c, f, cfg))
    return [s.SerializeToString() for s in encode_plugins.mesh("m", params, arrays)]


@pytest.mark.parametrize("name", sorted(MESHES))
def test_mesh_equal_torch(name: str) -> None:
    make = MESHES[name]
    ref = _run(lambda: torch_mesh(*make()))
    ours = _run(lambda: our_mesh(*make()))
    # torch warns once per process about a non-writable numpy array; no case here has one
    assert_same_outcome(ref, ours)
    if ref["result"] is None:
        return
    ours_s = tb_summary_pb2.Summary.FromString(ours["result"][0])
    ref_s = tb_summary_pb2.Summary.FromString(ref["result"][0])
    assert [v.tag for v in ours_s.value] == [v.tag for v in ref_s.value]
    for a, b in zip(ours_s.value, ref_s.value, strict=True):
        pa = mesh_data_pb2.MeshPluginData.FromString(a.metadata.plugin_data.content)
        pb = mesh_data_pb2.MeshPluginData.FromString(b.metadata.plugin_data.content)
        assert pa == pb
        assert a.tensor.dtype == b.tensor.dtype == 1  # DT_FLOAT
        assert a.tensor.tensor_shape == b.tensor.tensor_shape
        np.testing.assert_array_equal(np.array(a.tensor.float_val), np.array(b.tensor.float_val))


MESH_TAGS = ["m", "ü/日本", None, b"m", b"\xff", 5, "\ud800", ""]


@pytest.mark.parametrize("tag", MESH_TAGS, ids=repr)
def test_mesh_tags_equal_torch(tag: Any) -> None:
    """torch names the values ``"%s_VERTEX" % tag`` and the plugin data ``tag`` (protobuf)."""

    def ours() -> list[bytes]:
        params, arrays = through_ring(convert_plugins.mesh(V, C, None, None, tag=tag))
        return [s.SerializeToString() for s in encode_plugins.mesh("record", params, arrays)]

    ref = _run(lambda: [tb_summary.mesh(tag, V, C, None, None).SerializeToString()])
    assert_same_outcome(ref, _run(ours))


def test_mesh_readonly_array() -> None:
    """A read-only numpy array (torch warns once per process, then converts it)."""
    v = _readonly(V)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        assert our_mesh(v, None, None, None) == torch_mesh(v, None, None, None)


def test_golden_mesh(request: pytest.FixtureRequest) -> None:
    (s,) = encode_plugins.mesh("cube", *through_ring(convert_plugins.mesh(V, C, F, CONFIG)))
    assert_golden(request, "mesh/vertices_colors_faces", s)
    plugin = mesh_data_pb2.MeshPluginData.FromString(s.value[2].metadata.plugin_data.content)
    assert_golden(request, "mesh/vertices_colors_faces_color_plugin_data", plugin)
