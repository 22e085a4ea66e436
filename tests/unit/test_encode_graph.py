"""Tests for add_graph / add_onnx_graph: ``convert_graph`` in the trainer, ``encode_graph``
in the daemon, against the events torch's ``FileWriter`` builds.

* For a matrix of models (modules, nested scopes, several inputs, dict
  outputs without strict tracing, an LSTM) and ONNX files, the
  SDK conversion, a msgpack round trip (the ring) and the encoder give the
  events torch's ``FileWriter.add_graph`` / ``add_onnx_graph`` hand to
  ``add_event``, byte for byte (read back with TensorBoard's classes).
* Golden files pin the parsed GraphDef and RunMetadata of representative cases.
* Hypothesis: any params and arrays make the encoders return or raise
  TypeError/ValueError, nothing else.
"""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper
from tensorboard.compat.proto import event_pb2 as tb_event_pb2
from torch.utils.tensorboard.writer import FileWriter

from summaryd import convert_graph
from summaryd.daemon import encode_graph
from summaryd.proto import event_pb2, graph_pb2, step_stats_pb2

from .. import golden
from ..transport import through_ring  # noqa: E402

# torch 2.13's add_graph traces with torch.jit.trace (and trace_method), which warn that they are
# deprecated, and the tracer warns about Python control flow on tensors (LSTM); summaryd runs
# the same code, so the same warnings come out.
pytestmark = [
    pytest.mark.filterwarnings("ignore:`torch.jit.trace:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning"),
]


assert_golden = golden.assert_golden


class _Capture:
    """Stands in for a FileWriter: keeps the events torch's add_graph methods build."""

    def __init__(self) -> None:
        self.events: list[Any] = []

    def add_event(self, event: Any, step: Any = None, walltime: Any = None) -> None:
        assert step is None and walltime is None
        self.events.append(event)


def torch_graph_events(model: Any, args: Any, **kw: Any) -> list[bytes]:
    """What torch's ``SummaryWriter.add_graph`` passes to its file writer, serialized."""
    from torch.utils.tensorboard._pytorch_graph import graph

    cap = _Capture()
    FileWriter.add_graph(cap, graph(model, args, **kw))  # type: ignore[arg-type]
    return [e.SerializeToString() for e in cap.events]


def torch_onnx_events(source: Any) -> list[bytes]:
    from torch.utils.tensorboard._onnx_graph import load_onnx_graph

    cap = _Capture()
    FileWriter.add_onnx_graph(cap, load_onnx_graph(source))  # type: ignore[arg-type]
    return [e.SerializeToString() for e in cap.events]


def our_graph_events(
    model: Any, args: Any, verbose: bool = False, strict: bool = True
) -> list[Any]:
    params, arrays = through_ring(convert_graph.graph(model, args, verbose, strict))
    return encode_graph.graph("", params, arrays)


def our_onnx_events(source: Any) -> list[Any]:
    params, arrays = through_ring(convert_graph.onnx_graph(source))
    return encode_graph.onnx_graph("", params, arrays)


# -- models -------------------------------------------------------------------


class Nested(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = torch.nn.Sequential(
            torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.ReLU()
        )
        self.head = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4 * 6 * 6, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))  # type: ignore[no-any-return]


class TwoInputs(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = torch.nn.Linear(3, 2)
        self.b = torch.nn.Linear(5, 2)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.a(x) + self.b(y), x.sum()


class DictOut(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"out": self.lin(x), "skip": x * 2}


class Unused(torch.nn.Module):
    """An input the graph never uses (omitted as a useless node) and a constant output."""

    def forward(self, x: torch.Tensor, unused: torch.Tensor) -> torch.Tensor:
        return x.relu() + torch.ones(1)


def _seeded(make: Any) -> Any:
    torch.manual_seed(0)
    return make()


MODELS: dict[str, tuple[Any, Any, dict[str, Any]]] = {
    "linear": (lambda: torch.nn.Linear(3, 2), lambda: torch.randn(1, 3), {}),
    "nested": (Nested, lambda: torch.randn(2, 3, 8, 8), {}),
    "two_inputs": (TwoInputs, lambda: (torch.randn(1, 3), torch.randn(1, 5)), {}),
    "list_input": (TwoInputs, lambda: [torch.randn(1, 3), torch.randn(1, 5)], {}),
    "dict_out_nonstrict": (DictOut, lambda: torch.randn(2, 4), {"use_strict_trace": False}),
    "unused_input": (Unused, lambda: (torch.randn(3), torch.randn(3)), {}),
    "lstm": (lambda: torch.nn.LSTM(4, 3, batch_first=True), lambda: torch.randn(1, 5, 4), {}),
}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_graph_events_equal_torch(name: str) -> None:
    make_model, make_args, kw = MODELS[name]
    model = _seeded(make_model)
    args = _seeded(make_args)
    ref = torch_graph_events(model, args, **kw)
    ours = our_graph_events(model, args, strict=kw.get("use_strict_trace", True))
    assert len(ours) == len(ref) == 2
    assert all(isinstance(e, event_pb2.Event) for e in ours)
    assert [e.SerializeToString() for e in ours] == ref
    # and TensorBoard's classes read ours as torch's
    first, second = (tb_event_pb2.Event.FromString(e.SerializeToString()) for e in ours)
    assert first.WhichOneof("what") == "graph_def"
    assert second.tagged_run_metadata.tag == "step1"
    assert first.step == second.step == 0  # no step: the caller sets the record's (None)


def test_graph_restores_training_mode() -> None:
    model = torch.nn.Dropout(0.5)
    model.train()
    our_graph_events(model, torch.randn(4))
    assert model.training
    model.eval()
    our_graph_events(model, torch.randn(4))
    assert not model.training


def unmangle(text: str) -> str:
    return re.sub(r"__torch_mangle_\d+", "__torch_mangle_N", text)


def test_graph_verbose_prints_as_torch(capsys: pytest.CaptureFixture[str]) -> None:
    model = _seeded(lambda: torch.nn.Linear(3, 2))
    x = torch.randn(1, 3)
    from torch.utils.tensorboard._pytorch_graph import graph

    graph(model, x, True)
    ref = capsys.readouterr().out
    our_graph_events(model, x, verbose=True)
    # torch.jit numbers the class of each traced module ("__torch_mangle_<n>") per trace
    assert unmangle(capsys.readouterr().out) == unmangle(ref)
    assert "aten::linear" in ref


# -- ONNX -----------------------------------------------------------------------


def onnx_models() -> dict[str, onnx.ModelProto]:
    x = helper.make_tensor_value_info("X", TensorProto.FLOAT, [1, 3, 8, 8])
    w = helper.make_tensor_value_info("W", TensorProto.FLOAT, [4, 3, 3, 3])
    y = helper.make_tensor_value_info("Y", TensorProto.FLOAT, [1, 4, 6, 6])
    conv = helper.make_node(
        "Conv", ["X", "W"], ["C"], kernel_shape=[3, 3], strides=[1, 1], auto_pad="VALID"
    )
    relu = helper.make_node("Relu", ["C"], ["Y"])
    convnet = helper.make_model(helper.make_graph([conv, relu], "convnet", [x, w], [y]))

    a = helper.make_tensor_value_info("a", TensorProto.INT64, ["batch", 2])
    b = helper.make_tensor_value_info("b", TensorProto.INT64, [2])
    s = helper.make_tensor_value_info("sum", TensorProto.INT64, ["batch", 2])
    add = helper.make_node("Add", ["a", "b"], ["sum"], name="adder")
    symbolic = helper.make_model(helper.make_graph([add], "symbolic", [a, b], [s]))

    u = helper.make_tensor_value_info("ünï", TensorProto.DOUBLE, [])
    v = helper.make_tensor_value_info("out", TensorProto.DOUBLE, [])
    neg = helper.make_node("Neg", ["ünï"], ["out"], alpha=0.5, note="ütf")
    unicode = helper.make_model(helper.make_graph([neg], "unicode", [u], [v]))
    return {"convnet": convnet, "symbolic": symbolic, "unicode": unicode}


@pytest.fixture
def onnx_files(tmp_path: Path) -> dict[str, Path]:
    out = {}
    for name, model in onnx_models().items():
        out[name] = tmp_path / f"{name}.onnx"
        onnx.save(model, str(out[name]))
    return out


@pytest.mark.parametrize("name", ["convnet", "symbolic", "unicode"])
def test_onnx_events_equal_torch(
    name: str, onnx_files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    ref = torch_onnx_events(str(onnx_files[name]))
    ref_out = capsys.readouterr().out
    ours = our_onnx_events(str(onnx_files[name]))
    assert capsys.readouterr().out == ref_out  # torch prints every node name
    assert [e.SerializeToString() for e in ours] == ref
    assert len(ours) == 1 and ours[0].WhichOneof("what") == "graph_def"


def test_onnx_from_file_object(onnx_files: dict[str, Path]) -> None:
    data = onnx_files["convnet"].read_bytes()
    ref = torch_onnx_events(io.BytesIO(data))
    assert [e.SerializeToString() for e in our_onnx_events(io.BytesIO(data))] == ref


# -- golden ---------------------------------------------------------------------


def test_golden_linear(request: pytest.FixtureRequest) -> None:
    model = _seeded(lambda: torch.nn.Linear(3, 2))
    events = our_graph_events(model, torch.zeros(1, 3))
    assert_golden(
        request, "graph/linear_graph_def", graph_pb2.GraphDef.FromString(events[0].graph_def)
    )
    run_metadata = step_stats_pb2.RunMetadata.FromString(events[1].tagged_run_metadata.run_metadata)
    assert_golden(request, "graph/linear_run_metadata", run_metadata)


def test_golden_nested(request: pytest.FixtureRequest) -> None:
    events = our_graph_events(_seeded(Nested), torch.zeros(1, 3, 8, 8))
    assert_golden(
        request, "graph/nested_graph_def", graph_pb2.GraphDef.FromString(events[0].graph_def)
    )


def test_golden_onnx(request: pytest.FixtureRequest, onnx_files: dict[str, Path]) -> None:
    (event,) = our_onnx_events(str(onnx_files["convnet"]))
    assert_golden(
        request, "graph/onnx_convnet_graph_def", graph_pb2.GraphDef.FromString(event.graph_def)
    )


# -- the encoders' own checks -----------------------------------------------------


def _valid_params() -> dict[str, Any]:
    return {
        "graph_def": graph_pb2.GraphDef(
            node=[graph_pb2.NodeDef(name="a", op="b")]
        ).SerializeToString(),
        "run_metadata": step_stats_pb2.RunMetadata().SerializeToString(),
    }


def test_bytes_pass_through_unchanged() -> None:
    # Fields the schema does not know (a newer torch) stay in the bytes written.
    gd = _valid_params()["graph_def"] + b"\xa2\x06\x03abc"  # field 100, length-delimited
    events = encode_graph.graph("", {"graph_def": gd, "run_metadata": b""}, [])
    assert events[0].graph_def == gd
    assert events[1].tagged_run_metadata.run_metadata == b""
    assert encode_graph.onnx_graph("", {"graph_def": gd}, [])[0].graph_def == gd


@pytest.mark.parametrize(
    ("params", "arrays", "exc"),
    [
        ("graph", [], TypeError),
        ({}, [], TypeError),
        ({"graph_def": b""}, [], TypeError),  # no run_metadata
        ({"graph_def": "text", "run_metadata": b""}, [], TypeError),
        ({"graph_def": bytearray(b""), "run_metadata": b""}, [], TypeError),
        ({"graph_def": b"\xff\xff", "run_metadata": b""}, [], ValueError),
        ({"graph_def": b"", "run_metadata": b"\x0a\x05"}, [], ValueError),  # truncated
        ({"graph_def": b"\x0a\x03\x0a\x01\xff", "run_metadata": b""}, [], ValueError),  # bad UTF-8
        ({"graph_def": b"", "run_metadata": b""}, [np.zeros(1)], ValueError),
        ({"graph_def": b"", "run_metadata": b""}, (), ValueError),
    ],
)
def test_malformed_graph_records(params: Any, arrays: Any, exc: type[Exception]) -> None:
    with pytest.raises(exc):
        encode_graph.graph("", params, arrays)


def _ld(field: int, body: bytes) -> bytes:
    """A length-delimited protobuf field."""
    return _varint(field << 3 | 2) + _varint(len(body)) + body


def test_deeply_nested_bytes_are_refused() -> None:
    # AttrValue.func -> NameAttrList.attr -> entry.value -> AttrValue ... 150 levels deep:
    # beyond protobuf's recursion limit, a DecodeError that must come out as ValueError.
    av = b""
    for _ in range(150):
        av = _ld(10, _ld(2, _ld(2, av)))
    graph_def = _ld(1, _ld(5, _ld(1, b"k") + _ld(2, av)))
    with pytest.raises(ValueError):
        encode_graph.onnx_graph("", {"graph_def": graph_def}, [])
    with pytest.raises(ValueError):
        encode_graph.graph("", {"graph_def": b"", "run_metadata": _ld(3, graph_def)}, [])


def _varint(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def test_size_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    params = _valid_params()
    monkeypatch.setattr(encode_graph, "MAX_PROTO_BYTES", len(params["graph_def"]) - 1)
    with pytest.raises(ValueError, match="more than"):
        encode_graph.graph("", params, [])
    with pytest.raises(ValueError, match="more than"):
        encode_graph.onnx_graph("", params, [])


def test_sdk_and_daemon_limits_agree() -> None:
    assert convert_graph.MAX_PROTO_BYTES == encode_graph.MAX_PROTO_BYTES


# -- Hypothesis -------------------------------------------------------------------

_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(max_size=8),
    st.binary(max_size=64),
)
_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=4), inner, max_size=4)
    ),
    max_leaves=8,
)
_keys = st.sampled_from(["graph_def", "run_metadata", "other", ""])
_params = st.one_of(
    st.dictionaries(_keys, _values, max_size=3),
    st.fixed_dictionaries(
        {"graph_def": st.binary(max_size=200), "run_metadata": st.binary(max_size=200)}
    ),
    _values,
)
_arrays = st.one_of(
    st.just([]),
    st.lists(st.builds(lambda n: np.zeros(n, np.float32), st.integers(0, 3)), max_size=2),
    _values,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(params=_params, arrays=_arrays, tag=st.text(max_size=4))
def test_fuzz_only_type_or_value_errors(params: Any, arrays: Any, tag: str) -> None:
    for encoder in (encode_graph.graph, encode_graph.onnx_graph):
        try:
            out = encoder(tag, params, arrays)
        except (TypeError, ValueError):
            continue
        assert all(isinstance(e, event_pb2.Event) for e in out)
