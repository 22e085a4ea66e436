"""add_graph / add_onnx_graph in the caller (``convert_graph``): torch's errors, unchanged.

Both conversions run torch's own code, so a bad model, input or file must
raise exactly what torch's ``SummaryWriter`` raises (same type, same
message), in the caller; and a model's train/eval state is restored as
torch restores it.  The one summaryd check of its own is the size limit.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pytest
import torch
from torch.utils.tensorboard import SummaryWriter as TorchWriter

from summaryd import convert_graph
from summaryd.errors import ArgumentValueError

pytestmark = [
    pytest.mark.filterwarnings("ignore:`torch.jit.trace:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning"),
]


def _tanh3(x: torch.Tensor) -> torch.Tensor:
    return torch.tanh(x) * 3


def _scripted() -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit.script is deprecated
        return torch.jit.script(_tanh3)


class Returns(torch.nn.Module):
    def __init__(self, value: Any) -> None:
        super().__init__()
        self.value = value

    def forward(self, x: torch.Tensor) -> Any:
        return self.value


class DictOut(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"y": x * 2}


BAD_GRAPHS: dict[str, tuple[Any, Any, dict[str, Any]]] = {
    "model_none": (lambda: None, lambda: torch.zeros(1), {}),
    "model_function": (lambda: lambda x: x + 1, lambda: torch.zeros(1), {}),
    "model_scripted_function": (_scripted, lambda: torch.zeros(2), {}),
    "wrong_input_shape": (lambda: torch.nn.Linear(3, 2), lambda: torch.zeros(1, 4), {}),
    "no_input": (lambda: torch.nn.Linear(3, 2), lambda: None, {}),
    "input_not_tensor": (lambda: torch.nn.Linear(3, 2), lambda: "text", {}),
    "input_wrong_dtype": (
        lambda: torch.nn.Linear(3, 2),
        lambda: torch.zeros(1, 3, dtype=torch.int64),
        {},
    ),
    "dict_output_strict": (DictOut, lambda: torch.zeros(2), {"use_strict_trace": True}),
    "output_not_tensor": (lambda: Returns("text"), lambda: torch.zeros(2), {}),
}


def _torch_error(make_model: Any, make_args: Any, kw: dict[str, Any], tmp: Path) -> BaseException:
    with TorchWriter(str(tmp)) as w:
        try:
            w.add_graph(make_model(), make_args(), **kw)
        except Exception as exc:
            return exc
    raise AssertionError("torch accepted it")


@pytest.mark.parametrize("name", sorted(BAD_GRAPHS))
def test_bad_graph_raises_what_torch_raises(
    tmp_path: Path, name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    make_model, make_args, kw = BAD_GRAPHS[name]
    ref = _torch_error(make_model, make_args, kw, tmp_path)
    ref_out = capsys.readouterr().out
    with pytest.raises(type(ref)) as info:
        convert_graph.graph(
            make_model(), make_args(), kw.get("verbose", False), kw.get("use_strict_trace", True)
        )
    assert type(info.value) is type(ref)
    assert str(info.value) == str(ref)
    assert capsys.readouterr().out == ref_out  # torch prints the trace error: so do we


def test_training_state_restored_after_a_failed_trace() -> None:
    model = torch.nn.Linear(3, 2)
    model.train()
    with pytest.raises(RuntimeError):
        convert_graph.graph(model, torch.zeros(1, 4), False, True)
    assert model.training


def test_verbose_and_strict_are_passed_through(capsys: pytest.CaptureFixture[str]) -> None:
    params, arrays = convert_graph.graph(DictOut(), torch.zeros(2), True, False)
    assert "graph(" in capsys.readouterr().out
    assert arrays == [] and set(params) == {"graph_def", "run_metadata"}


BAD_ONNX: dict[str, Any] = {
    "missing_file": lambda tmp: str(tmp / "missing.onnx"),
    "directory": lambda tmp: str(tmp),
    "garbage_file": lambda tmp: _write(tmp / "garbage.onnx", b"\xff\xfe not protobuf"),
    "none": lambda tmp: None,
    "number": lambda tmp: 5.5,  # (an int would be opened as a file descriptor)
}


def _write(path: Path, data: bytes) -> str:
    path.write_bytes(data)
    return str(path)


@pytest.mark.parametrize("name", sorted(BAD_ONNX))
def test_bad_onnx_raises_what_torch_raises(tmp_path: Path, name: str) -> None:
    source = BAD_ONNX[name](tmp_path)
    with TorchWriter(str(tmp_path / "torch")) as w, pytest.raises(Exception) as ref:
        w.add_onnx_graph(source)
    with pytest.raises(type(ref.value)) as ours:
        convert_graph.onnx_graph(source)
    assert type(ours.value) is type(ref.value)
    assert str(ours.value) == str(ref.value)


def test_size_limit_raises_in_the_caller(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(convert_graph, "MAX_PROTO_BYTES", 10)
    with pytest.raises(ArgumentValueError, match="model: the traced GraphDef is"):
        convert_graph.graph(torch.nn.Linear(3, 2), torch.zeros(1, 3), False, True)
