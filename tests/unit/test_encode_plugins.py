"""Tests for add_audio, add_custom_scalars*, add_mesh and add_hparams: ``convert_plugins``
in the trainer, ``encode_plugins`` in the daemon, against torch 2.13's own summary functions.

* For a matrix of inputs (numpy and torch, every sample dtype, shapes, clipping,
  NaN, odd sample rates; layouts of every shape torch accepts; meshes of every
  dtype and part combination; hparams of every value kind and domain), the SDK
  conversion, a round trip through the ring's encoding (msgpack params, raw
  arrays read back read-only) and the encoder give the Summaries torch's
  ``summary.audio`` / ``custom_scalars`` / ``mesh`` / ``hparams`` give, byte
  for byte (hparams' session-start map compared as parsed: its order is a
  per-process hash order in torch), with the same stdout and warnings.  WAV
  samples, layouts, mesh plugin data and tensors are also decoded and compared.
* Golden files pin representative cases.
* Hypothesis: any params and arrays make the encoders return Summaries or raise
  TypeError/ValueError, nothing else.
"""

from __future__ import annotations

import contextlib
import decimal
import fractions
import io
import time
import warnings
import wave
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from tensorboard.compat.proto import summary_pb2 as tb_summary_pb2
from tensorboard.plugins.custom_scalar import layout_pb2
from tensorboard.plugins.hparams import plugin_data_pb2 as hp_data_pb2
from tensorboard.plugins.mesh import plugin_data_pb2 as mesh_data_pb2
from torch.utils.tensorboard import summary as tb_summary

from summaryd import convert_plugins
from summaryd.daemon import encode_plugins
from summaryd.proto import summary_pb2

from .. import golden
from ..transport import through_ring  # noqa: E402

Payload = tuple[dict[str, Any], list[np.ndarray]]


@contextlib.contextmanager
def _observed() -> Any:
    """Capture stdout and every warning inside the block."""
    out = io.StringIO()
    with warnings.catch_warnings(record=True) as caught, contextlib.redirect_stdout(out):
        warnings.simplefilter("always")
        seen: dict[str, Any] = {}
        yield seen
    seen["stdout"] = out.getvalue()
    seen["warnings"] = [(w.category, str(w.message)) for w in caught]


def _run(fn: Callable[[], list[bytes]]) -> dict[str, Any]:
    with _observed() as seen:
        try:
            seen["result"], seen["exc"] = fn(), None
        except Exception as exc:
            seen["result"], seen["exc"] = None, exc
    return seen


def expected_type(exc: BaseException) -> type[BaseException]:
    """The type ours must be an instance of: torch's, or for numpy's private exception
    classes (``_UFuncNoLoopError``) the builtin they derive from."""
    for cls in type(exc).__mro__:
        if not cls.__module__.startswith("numpy"):
            return cls
    raise AssertionError(exc)  # pragma: no cover


def assert_same_outcome(ref: dict[str, Any], ours: dict[str, Any]) -> None:
    """Same stdout, warnings and result; where torch raises, ours raises an instance of it."""
    if ref["exc"] is not None:
        assert ours["exc"] is not None, f"torch raises {ref['exc']!r}, summaryd accepts"
        assert isinstance(ours["exc"], expected_type(ref["exc"])), (ref["exc"], ours["exc"])
    else:
        assert ours["exc"] is None, f"torch accepts, summaryd raises {ours['exc']!r}"
        assert ours["result"] == ref["result"]
    assert ours["stdout"] == ref["stdout"]
    assert ours["warnings"] == ref["warnings"]


# -- audio ---------------------------------------------------------------------------------

L = 64
RAMP = np.linspace(-0.93, 0.97, L)
LOUD = np.linspace(-3.0, 2.5, L)


def _wav_samples(wav: bytes) -> tuple[int, np.ndarray]:
    with wave.open(io.BytesIO(wav), "rb") as r:
        assert (r.getnchannels(), r.getsampwidth()) == (1, 2)
        return r.getframerate(), np.frombuffer(r.readframes(r.getnframes()), "<i2")


def _nan_loud() -> np.ndarray:
    a = LOUD.astype(np.float32)
    a[5] = np.nan
    return a


def _meta_tensor(n: int) -> torch.Tensor:
    """A meta tensor; torch's make_np substitutes ``np.random.randn(1)`` for it (so do we),
    and prints the clipping notice when that exceeds 1: the global RNG is seeded so both
    sides draw the same number."""
    np.random.seed(n)
    return torch.zeros(n, device="meta")


def _complex(scale: float) -> np.ndarray:
    return (RAMP * scale + 0.5j * RAMP[::-1]).astype(np.complex64)


AUDIO_INPUTS: dict[str, Callable[[], Any]] = {
    "np-f32": lambda: RAMP.astype(np.float32),
    "np-f64-1xL": lambda: RAMP[None, :],
    "np-f32-Lx1": lambda: RAMP.astype(np.float32)[:, None],
    "np-f32-1x1xL": lambda: RAMP.astype(np.float32)[None, None, :],
    "np-f16": lambda: RAMP.astype(np.float16),
    "np-f16-full-scale": lambda: np.array([1.0, -1.0, 0.5, 0.0], np.float16),
    "np-f32-loud": lambda: LOUD.astype(np.float32),
    "np-f64-loud-2d": lambda: LOUD.reshape(8, 8),
    "np-f32-nan": _nan_loud,
    "np-f64-inf": lambda: np.array([0.1, np.inf, -np.inf, 0.2]),
    "np-i16": lambda: np.array([-2, -1, 0, 1, 3], np.int16),
    "np-i16-unit": lambda: np.array([-1, 0, 1, 1], np.int16),
    "np-i32": lambda: np.arange(-5, 5, dtype=np.int32),
    "np-i64-min": lambda: np.array([np.iinfo(np.int64).min, 0, 1], np.int64),
    "np-u16": lambda: np.array([0, 1, 2, 3], np.uint16),
    "np-u32": lambda: np.array([0, 1, 7], np.uint32),
    "np-u64": lambda: np.array([0, 1, 2**63], np.uint64),
    "np-bool": lambda: np.array([True, False, True]),
    "np-i8": lambda: np.array([-1, 0, 1], np.int8),
    "np-u8": lambda: np.array([0, 1, 255], np.uint8),
    "np-i8-min": lambda: np.array([-128, 0], np.int8),
    "np-c64-loud": lambda: _complex(2.0),
    "np-c128": lambda: _complex(0.5).astype(np.complex128),
    "np-object": lambda: np.array([0.5, -0.25, 0.75], dtype=object),
    "np-longdouble": lambda: RAMP.astype(np.longdouble),
    "np-f32-big-endian": lambda: RAMP.astype(">f4"),
    "np-f32-strided": lambda: RAMP.astype(np.float32)[::3],
    "np-f32-reversed": lambda: RAMP.astype(np.float32)[::-1],
    "np-empty": lambda: np.zeros((1, 0)),
    "np-one": lambda: np.array([0.5]),
    "np-str": lambda: np.array(["a", "b"]),
    "np-object-None": lambda: np.array([None, 0.5], dtype=object),
    "torch-f32": lambda: torch.tensor(RAMP, dtype=torch.float32),
    "torch-f32-1xL-grad": lambda: torch.tensor(RAMP[None, :], requires_grad=True),
    "torch-f32-transposed": lambda: torch.tensor(LOUD.reshape(8, 8)).t()[:1],
    "torch-bf16": lambda: torch.tensor(RAMP, dtype=torch.bfloat16),
    "torch-bf16-loud": lambda: torch.tensor(LOUD * 1e5, dtype=torch.bfloat16),
    "torch-f16": lambda: torch.tensor(LOUD, dtype=torch.float16),
    "torch-i64": lambda: torch.tensor([3, 2**40, -7]),
    "torch-bool": lambda: torch.tensor([True, False]),
    "torch-u16": lambda: torch.tensor([0, 1, 5], dtype=torch.uint16),
    "torch-c64": lambda: torch.tensor(_complex(0.3)),
    "torch-meta": lambda: _meta_tensor(4),
    "torch-f8": lambda: torch.tensor(RAMP).to(torch.float8_e4m3fn),
    "py-float": lambda: 0.5,
    "py-list": lambda: [0.1, 0.2],
}

RATES: dict[str, Any] = {
    "44100": 44100,
    "8000.5": 8000.5,
    "8001.5": 8001.5,
    "np-f64": np.float64(22050.7),
    "np-i64": np.int64(16000),
    "decimal": decimal.Decimal("16000.5000001"),
    "fraction": fractions.Fraction(16001, 2),
    "true": True,
    "0.6": 0.6,
    "0.4": 0.4,
    "zero": 0,
    "negative": -8000,
    "nan": float("nan"),
    "inf": float("inf"),
    "str": "44100",
    "none": None,
    "tensor": torch.tensor(8000),
    "2**31-1": 2**31 - 1,
    "2**31": 2**31,
    "1e40": 1e40,
}


def torch_audio(x: Any, sr: Any) -> list[bytes]:
    return [tb_summary.audio("snd", x, sample_rate=sr).SerializeToString()]


def our_audio(x: Any, sr: Any) -> list[bytes]:
    params, arrays = through_ring(convert_plugins.audio(x, sr))
    return [s.SerializeToString() for s in encode_plugins.audio("snd", params, arrays)]


@pytest.mark.parametrize("name", sorted(AUDIO_INPUTS))
def test_audio_inputs_equal_torch(name: str) -> None:
    make = AUDIO_INPUTS[name]
    ref = _run(lambda: torch_audio(make(), 44100))
    ours = _run(lambda: our_audio(make(), 44100))
    assert_same_outcome(ref, ours)
    if ref["result"] is not None:
        a = tb_summary_pb2.Summary.FromString(ref["result"][0]).value[0].audio
        b = tb_summary_pb2.Summary.FromString(ours["result"][0]).value[0].audio
        rate_a, samples_a = _wav_samples(a.encoded_audio_string)
        rate_b, samples_b = _wav_samples(b.encoded_audio_string)
        assert rate_a == rate_b == 44100
        np.testing.assert_array_equal(samples_a, samples_b)
        assert (b.sample_rate, b.num_channels, b.length_frames, b.content_type) == (
            a.sample_rate,
            1,
            len(samples_a),
            "audio/wav",
        )


@pytest.mark.parametrize("name", sorted(RATES))
def test_audio_sample_rates_equal_torch(name: str) -> None:
    sr = RATES[name]
    ref = _run(lambda: torch_audio(RAMP, sr))
    ours = _run(lambda: our_audio(RAMP, sr))
    assert_same_outcome(ref, ours)
    if ref["result"] is not None:
        a = tb_summary_pb2.Summary.FromString(ours["result"][0]).value[0].audio
        assert _wav_samples(a.encoded_audio_string)[0] == int(round(sr))


def test_audio_bad_samples_before_bad_rate() -> None:
    """torch checks the samples first: a 2-D sound with a bad rate is an AssertionError."""
    with pytest.raises(AssertionError):
        convert_plugins.audio(np.zeros((2, 3)), -1)
    with pytest.raises(AssertionError):
        tb_summary.audio("x", np.zeros((2, 3)), sample_rate=-1)


def test_audio_trainer_cost() -> None:
    """1 s at 44.1 kHz: two reductions in the trainer (target ~0.05 ms; bound loose for CI)."""
    x = torch.rand(1, 44100) * 2 - 1
    convert_plugins.audio(x, 44100)
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(100):
            convert_plugins.audio(x, 44100)
        best = min(best, (time.perf_counter() - t0) / 100)
    assert best < 0.5e-3, f"{best * 1e3:.3f} ms per call"


def test_audio_fast_path_ships_samples_unconverted() -> None:
    x = RAMP.astype(np.float32)
    params, arrays = convert_plugins.audio(x[None, :], 8000.5)
    assert params == {"rate": 8000, "sample_rate": 8000.5, "clip": False, "pcm": False}
    assert arrays[0].dtype == np.float32 and np.shares_memory(arrays[0], x)


# -- custom scalars ------------------------------------------------------------------------


def _gen(items: list[Any]) -> Any:
    return (i for i in items)


LAYOUTS: dict[str, Callable[[], Any]] = {
    "doc-example": lambda: {
        "Taiwan": {"twse": ["Multiline", ["twse/0050", "twse/2330"]]},
        "USA": {
            "dow": ["Margin", ["dow/aaa", "dow/bbb", "dow/ccc"]],
            "nasdaq": ["Margin", ["nasdaq/aaa", "nasdaq/bbb", "nasdaq/ccc"]],
        },
    },
    "empty": lambda: {},
    "empty-category": lambda: {"A": {}},
    "ordered": lambda: OrderedDict(b={"t": ["Multiline", ["x"]]}, a={"u": ["Multiline", []]}),
    "bytes-names": lambda: {b"A": {b"t": ["Margin", [b"a", "b", np.bytes_(b"c")]]}},
    "none-names": lambda: {None: {None: ["Margin", [None, "b", None]]}},
    "unicode": lambda: {"ü/日本": {"τ": ["Multiline", ["loss/ü", "a\0b"]]}},
    "spec-str": lambda: {"A": {"t": "Margin"}},
    "spec-tuple": lambda: {"A": {"t": ("Multiline", ("a", "b"))}},
    "spec-dict": lambda: {"A": {"t": {0: "Margin", 1: ["a", "b", "c"]}}},
    "kind-other": lambda: {"A": {"t": ["foo", ["a"]]}},
    "kind-int": lambda: {"A": {"t": [5, ["a"]]}},
    "kind-np-str": lambda: {"A": {"t": [np.str_("Margin"), ["a", "b", "c"]]}},
    "margin-str": lambda: {"A": {"t": ["Margin", "abc"]}},
    "margin-dict": lambda: {"A": {"t": ["Margin", {0: "a", 1: "b", 2: "c"}]}},
    "multiline-str": lambda: {"A": {"t": ["Multiline", "abc"]}},
    "multiline-None": lambda: {"A": {"t": ["Multiline", None]}},
    "multiline-generator": lambda: {"A": {"t": ["Multiline", _gen(["a", "b"])]}},
    "multiline-dict": lambda: {"A": {"t": ["Multiline", {"a": 1, "b": 2}]}},
    "multiline-np": lambda: {"A": {"t": ["Multiline", np.array(["a", "b"])]}},
    "multiline-empty": lambda: {"A": {"t": ["Multiline", []]}},
    # rejected
    "list": lambda: [("A", {})],
    "None": lambda: None,
    "category-int": lambda: {5: {"t": ["Multiline", ["a"]]}},
    "category-bad-utf8": lambda: {b"\xff": {"t": ["Multiline", ["a"]]}},
    "category-surrogate": lambda: {"\ud800": {"t": ["Multiline", ["a"]]}},
    "charts-list": lambda: {"A": [["Multiline", ["a"]]]},
    "title-int": lambda: {"A": {5: ["Multiline", ["a"]]}},
    "spec-short": lambda: {"A": {"t": ["Multiline"]}},
    "spec-int": lambda: {"A": {"t": 5}},
    "spec-dict-missing": lambda: {"A": {"t": {0: "Margin"}}},
    "margin-2": lambda: {"A": {"t": ["Margin", ["a", "b"]]}},
    "margin-int-tags": lambda: {"A": {"t": ["Margin", [1, 2, 3]]}},
    "margin-None": lambda: {"A": {"t": ["Margin", None]}},
    "margin-generator": lambda: {"A": {"t": ["Margin", _gen("abc")]}},
    "multiline-int": lambda: {"A": {"t": ["Multiline", 5]}},
    "multiline-int-tags": lambda: {"A": {"t": ["Multiline", [1]]}},
    "multiline-bytes": lambda: {"A": {"t": ["Multiline", b"ab"]}},
    "multiline-None-tag": lambda: {"A": {"t": ["Multiline", [None]]}},
    "multiline-bad-utf8": lambda: {"A": {"t": ["Multiline", [b"\xff"]]}},
    "multiline-tensor": lambda: {"A": {"t": ["Multiline", torch.zeros(2)]}},
    "items-not-pairs": lambda: {"A": {"t": ["Multiline", ["a"]]}}.values(),
}


def torch_custom_scalars(layout: Any) -> list[bytes]:
    return [tb_summary.custom_scalars(layout).SerializeToString()]


def our_custom_scalars(layout: Any) -> list[bytes]:
    params, arrays = through_ring(convert_plugins.custom_scalars(layout))
    return [s.SerializeToString() for s in encode_plugins.custom_scalars("", params, arrays)]


@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_custom_scalars_equal_torch(name: str) -> None:
    make = LAYOUTS[name]
    ref = _run(lambda: torch_custom_scalars(make()))
    ours = _run(lambda: our_custom_scalars(make()))
    assert_same_outcome(ref, ours)
    if ref["result"] is not None:
        value = tb_summary_pb2.Summary.FromString(ours["result"][0]).value[0]
        assert value.tag == "custom_scalars__config__"
        assert value.metadata.plugin_data.plugin_name == "custom_scalars"
        assert value.tensor.HasField("tensor_shape") and not value.tensor.tensor_shape.dim
        ref_value = tb_summary_pb2.Summary.FromString(ref["result"][0]).value[0]
        assert layout_pb2.Layout.FromString(value.tensor.string_val[0]) == (
            layout_pb2.Layout.FromString(ref_value.tensor.string_val[0])
        )


CHART_HELPERS = [
    (["a", "b"], "default", "untitled"),
    (["a", "b", "c"], "cat", "title"),
    (("a", "b", "c"), b"cat", None),
    ([], 5, "t"),
    ("abc", "c", "t"),
    (None, "c", "t"),
    (5, "c", "t"),
    (["a", "b", "c"], ["unhashable"], "t"),
    (["a", "b", "c"], "c", {}),
    (["a", "b", "c", "d"], "c", "t"),
]


@pytest.mark.parametrize(("tags", "category", "title"), CHART_HELPERS)
@pytest.mark.parametrize("margin", [False, True], ids=["multiline", "margin"])
def test_chart_helpers_equal_torch(tags: Any, category: Any, title: Any, margin: bool) -> None:
    """torch's add_custom_scalars_{multiline,margin}chart: layout dict, then custom_scalars."""
    kind = "Margin" if margin else "Multiline"

    def torch_side() -> list[bytes]:
        if margin and len(tags) != 3:
            raise AssertionError(f"Expected 3 tags, got {len(tags)}.")
        return torch_custom_scalars({category: {title: [kind, tags]}})

    helper = convert_plugins.margin_layout if margin else convert_plugins.multiline_layout
    ref = _run(torch_side)
    ours = _run(lambda: our_custom_scalars(helper(tags, category, title)))
    assert_same_outcome(ref, ours)


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


# -- hparams -------------------------------------------------------------------------------

M = {"accuracy": 0.5}

HPARAMS: dict[str, Callable[[], tuple[Any, Any, Any]]] = {
    "doc-example": lambda: (
        {"lr": 0.1, "bsize": 4},
        {"hparam/accuracy": 10, "hparam/loss": 1},
        None,
    ),
    "kinds": lambda: (
        {"lr": 0.1, "bs": 32, "opt": "adam", "flag": True, "off": False, "none": None},
        M,
        None,
    ),
    "domains": lambda: (
        {"lr": 0.1, "bs": 32, "opt": "adam", "flag": True},
        M,
        {"lr": [0.1, 0.2], "bs": [32, 64, True], "opt": ["adam", "sgd"], "flag": [True, False]},
    ),
    "domain-empty": lambda: ({"lr": 0.1}, M, {"lr": []}),
    "domain-nan": lambda: ({"lr": 0.1}, M, {"lr": [float("nan"), float("inf")]}),
    "domain-falsy-list": lambda: ({"lr": 0.1}, M, []),
    "domain-falsy-zero": lambda: ({"lr": 0.1}, M, 0),
    "domain-None-value": lambda: ({"lr": None}, M, {"lr": [None]}),
    "domain-np-float": lambda: ({"lr": 0.1}, M, {"lr": [np.float64(0.3)]}),
    "domain-tensor": lambda: ({"lr": torch.tensor([0.5])}, M, {"lr": [torch.tensor([1.0])]}),
    "tensor-1d": lambda: ({"lr": torch.tensor([0.5, 0.7])}, M, None),
    "tensor-int": lambda: ({"lr": torch.tensor([3])}, M, None),
    "tensor-bool": lambda: ({"lr": torch.tensor([True])}, M, None),
    "tensor-bf16": lambda: ({"lr": torch.tensor([0.1], dtype=torch.bfloat16)}, M, None),
    "tensor-complex": lambda: ({"lr": torch.tensor([0.1 + 1j])}, M, None),
    "np-float64": lambda: ({"lr": np.float64(0.1)}, M, None),
    "int-2**63": lambda: ({"lr": 2**63 + 1}, M, None),
    "inf": lambda: ({"lr": float("inf"), "n": float("nan")}, M, None),
    "bytes-keys": lambda: ({b"lr": 0.1}, {b"m": 1.0}, None),
    "duplicate-names": lambda: ({"lr": 0.1, b"lr": "x"}, M, None),
    "str-subclass": lambda: ({"s": np.str_("x")}, M, {"s": [np.str_("y")]}),
    "unicode": lambda: ({"ü": "日本", "z\0": ""}, {"τ/acc": 1}, None),
    "metric-None-key": lambda: ({"a": 1}, {None: 2.0}, None),
    "metric-tensor": lambda: ({"a": 1}, {"m": torch.tensor(2.5)}, None),
    "metric-np": lambda: ({"a": 1}, {"m": np.float32(2.5)}, None),
    "empty": lambda: ({}, {}, None),
    "many": lambda: ({f"h{i}": i * 0.5 for i in range(40)}, {f"m{i}": i for i in range(5)}, None),
    # rejected
    "not-dicts": lambda: ([("lr", 0.1)], M, None),
    "ordered-dict": lambda: (OrderedDict(lr=0.1), M, None),
    "metric-not-dict": lambda: ({"lr": 0.1}, None, None),
    "domain-list": lambda: ({"lr": 0.1}, M, [1]),
    "domain-float-int": lambda: ({"lr": 0.1}, M, {"lr": [1]}),
    "domain-missing": lambda: ({"lr": 0.1}, M, {"x": [1.0]}),
    "domain-tuple": lambda: ({"lr": 0.1}, M, {"lr": (0.1,)}),
    "domain-bool-int": lambda: ({"f": True}, M, {"f": [1]}),
    "domain-surrogate": lambda: ({"s": "a"}, M, {"s": ["\ud800"]}),
    "domain-huge-int": lambda: ({"n": 1}, M, {"n": [10**400]}),
    "domain-np-array": lambda: ({"lr": 0.1}, M, np.array([1, 2])),
    "tensor-0d": lambda: ({"lr": torch.tensor(0.5)}, M, None),
    "tensor-empty": lambda: ({"lr": torch.zeros(0)}, M, None),
    "tensor-2d": lambda: ({"lr": torch.tensor([[0.5, 0.7]])}, M, None),
    "np-float32": lambda: ({"lr": np.float32(0.1)}, M, None),
    "np-int": lambda: ({"lr": np.int64(3)}, M, None),
    "np-array": lambda: ({"lr": np.array([0.1])}, M, None),
    "list": lambda: ({"lr": [1]}, M, None),
    "decimal": lambda: ({"lr": decimal.Decimal("0.1")}, M, None),
    "bytes-value": lambda: ({"s": b"abc"}, M, None),
    "huge-int": lambda: ({"lr": 10**400}, M, None),
    "key-int": lambda: ({5: 0.1}, M, None),
    "key-None": lambda: ({None: 0.1}, M, None),
    "key-tuple": lambda: ({(1,): 0.1}, M, None),
    "key-bad-utf8": lambda: ({b"\xff": 0.1}, M, None),
    "key-surrogate": lambda: ({"\ud800": 0.1}, M, None),
    "str-surrogate": lambda: ({"s": "\ud800"}, M, None),
    "metric-key-int": lambda: ({"lr": 0.1}, {5: 1.0}, None),
    "metric-key-bad-utf8": lambda: ({"lr": 0.1}, {b"\xff": 1.0}, None),
}

_HP_TAGS = ["_hparams_/experiment", "_hparams_/session_start_info", "_hparams_/session_end_info"]


def _canonical_hparams(summaries: list[Any]) -> list[bytes]:
    """Serialized Summaries, their plugin content re-serialized deterministically (map order)."""
    out = []
    for s in summaries:
        s = tb_summary_pb2.Summary.FromString(s.SerializeToString())
        meta = s.value[0].metadata.plugin_data
        meta.content = hp_data_pb2.HParamsPluginData.FromString(meta.content).SerializeToString(
            deterministic=True
        )
        out.append(s.SerializeToString())
    return out


def torch_hparams(h: Any, m: Any, d: Any) -> list[bytes]:
    if type(h) is not dict or type(m) is not dict:  # torch's SummaryWriter.add_hparams
        raise TypeError("hparam_dict and metric_dict should be dictionary.")
    summaries = _canonical_hparams(list(tb_summary.hparams(h, m, d)))
    # then torch's writer logs each metric with add_scalar
    scalars = [tb_summary.scalar(k, v).SerializeToString() for k, v in m.items()]
    return summaries + scalars


def our_hparams(h: Any, m: Any, d: Any) -> list[bytes]:
    params, metrics = convert_plugins.hparams(h, m, d)
    params, arrays = through_ring((params, []))
    summaries = encode_plugins.hparams("", params, arrays)
    # the writer sends each metric as a SCALAR record: Summary.Value(tag, simple_value)
    scalars = [
        summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=k, simple_value=v)])
        for k, v in metrics
    ]
    return _canonical_hparams(summaries) + [s.SerializeToString() for s in scalars]


@pytest.mark.parametrize("name", sorted(HPARAMS))
def test_hparams_equal_torch(name: str) -> None:
    make = HPARAMS[name]
    ref = _run(lambda: torch_hparams(*make()))
    ours = _run(lambda: our_hparams(*make()))
    ref["warnings"] = [w for w in ref["warnings"] if "nothing logged" not in w[1]]
    assert_same_outcome(ref, ours)
    if ref["result"] is not None:
        summaries = [tb_summary_pb2.Summary.FromString(b) for b in ours["result"][:3]]
        assert [s.value[0].tag for s in summaries] == _HP_TAGS
        assert all(s.value[0].metadata.plugin_data.plugin_name == "hparams" for s in summaries)


def test_hparams_session_start_is_deterministic() -> None:
    """torch's map order is a per-process hash order; ours is sorted, the same every time."""
    h = {k: 1.0 for k in ("zeta", "alpha", "mid", "beta")}
    params, _ = convert_plugins.hparams(h, {}, None)
    first = encode_plugins.hparams("", params, [])[1].SerializeToString()
    again = encode_plugins.hparams("", params, [])[1].SerializeToString()
    assert first == again
    content = summary_pb2.Summary.FromString(first).value[0].metadata.plugin_data.content
    keys = list(hp_data_pb2.HParamsPluginData.FromString(content).session_start_info.hparams)
    assert content == (
        hp_data_pb2.HParamsPluginData.FromString(content).SerializeToString(deterministic=True)
    )
    assert sorted(keys) == sorted(h)


def test_hparams_metric_values_checked_before_anything_is_written() -> None:
    """torch writes the three summaries before add_scalar fails on a bad metric; we raise first."""
    with pytest.raises(ValueError, match="metric_dict"):
        convert_plugins.hparams({"lr": 0.1}, {"m": np.zeros(3)}, None)


# -- golden --------------------------------------------------------------------------------


assert_golden = golden.assert_golden


def test_golden_audio(request: pytest.FixtureRequest) -> None:
    x = np.sin(np.linspace(0, 4 * np.pi, 16)).astype(np.float32) * 1.2
    with contextlib.redirect_stdout(io.StringIO()):
        (s,) = encode_plugins.audio("speech", *through_ring(convert_plugins.audio(x, 8000)))
    assert_golden(request, "audio/clipped_sine_16", s)


def test_golden_custom_scalars(request: pytest.FixtureRequest) -> None:
    payload = convert_plugins.custom_scalars(LAYOUTS["doc-example"]())
    (s,) = encode_plugins.custom_scalars("", *through_ring(payload))
    assert_golden(request, "custom_scalars/doc_example", s)
    layout = layout_pb2.Layout.FromString(s.value[0].tensor.string_val[0])
    assert_golden(request, "custom_scalars/doc_example_layout", layout)


def test_golden_mesh(request: pytest.FixtureRequest) -> None:
    (s,) = encode_plugins.mesh("cube", *through_ring(convert_plugins.mesh(V, C, F, CONFIG)))
    assert_golden(request, "mesh/vertices_colors_faces", s)
    plugin = mesh_data_pb2.MeshPluginData.FromString(s.value[2].metadata.plugin_data.content)
    assert_golden(request, "mesh/vertices_colors_faces_color_plugin_data", plugin)


def test_golden_hparams(request: pytest.FixtureRequest) -> None:
    params, _ = convert_plugins.hparams(
        {"lr": 0.01, "bs": 32, "opt": "adam", "flag": True, "skip": None},
        {"hparam/accuracy": 0.9},
        {"opt": ["adam", "sgd"], "bs": [32, 64]},
    )
    for tag, s in zip(
        _HP_TAGS, encode_plugins.hparams("", *through_ring((params, []))), strict=True
    ):
        name = tag.split("/")[1]
        assert_golden(request, f"hparams/basic_{name}", s)
        data = hp_data_pb2.HParamsPluginData.FromString(s.value[0].metadata.plugin_data.content)
        assert_golden(request, f"hparams/basic_{name}_plugin_data", data)


# -- hostile records -----------------------------------------------------------------------

_DTYPES = ["?", "i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8", "f2", "f4", "f8", ">f4", ">i2"]

leaves = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**64), max_value=2**64)
    | st.floats(allow_nan=True)
    | st.text(max_size=8)
    | st.binary(max_size=8)
)
anything = st.recursive(
    leaves,
    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=6), c, max_size=4),
    max_leaves=16,
)


@st.composite
def arrays_st(draw: st.DrawFn, max_n: int = 3) -> list[np.ndarray]:
    out = []
    for _ in range(draw(st.integers(0, max_n))):
        a = draw(
            hnp.arrays(
                dtype=st.sampled_from(_DTYPES).map(np.dtype),
                shape=hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=5),
            )
        )
        a.flags.writeable = False
        out.append(a)
    return out


def _near(
    fields: dict[str, st.SearchStrategy[Any]],
    optional: dict[str, st.SearchStrategy[Any]] | None = None,
) -> st.SearchStrategy[Any]:
    """Params with the right keys and mostly plausible values, sometimes anything."""
    return (
        st.fixed_dictionaries(
            {k: v | anything for k, v in fields.items()},
            optional={k: v | anything for k, v in (optional or {}).items()},
        )
        | anything
    )


NEAR_PARAMS: dict[str, st.SearchStrategy[Any]] = {
    "audio": _near(
        {
            "rate": st.integers(-2, 2**33),
            "sample_rate": st.floats() | st.integers(-2, 2**33),
            "clip": st.booleans(),
            "pcm": st.booleans(),
        }
    ),
    "custom_scalars": _near(
        {
            "layout": st.lists(
                st.tuples(
                    st.text(max_size=4),
                    st.lists(
                        st.tuples(
                            st.text(max_size=4), st.booleans(), st.lists(st.text(max_size=3))
                        ).map(list)
                        | anything,
                        max_size=3,
                    ),
                ).map(list)
                | anything,
                max_size=3,
            )
        }
    ),
    "mesh": _near(
        {
            "json_config": st.text(max_size=10),
            "parts": st.lists(st.integers(-1, 5), max_size=4),
        },
        {"name": st.text(max_size=4), "prefix": st.text(max_size=4)},
    ),
    "hparams": _near(
        {
            "hparams": st.lists(
                st.tuples(
                    st.text(max_size=4) | anything,
                    st.sampled_from(["number", "string", "other"]),
                    st.floats() | st.text(max_size=4) | anything,
                    st.none() | st.lists(st.floats() | st.text(max_size=3)) | anything,
                ).map(list)
                | anything,
                max_size=4,
            ),
            "metrics": st.lists(st.text(max_size=4)) | anything,
        }
    ),
}


@pytest.mark.parametrize("kind", sorted(NEAR_PARAMS))
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_hostile_records_raise_only_type_or_value_errors(kind: str, data: st.DataObject) -> None:
    fn = getattr(encode_plugins, kind)
    tag = data.draw(st.text(max_size=6) | anything, label="tag")
    params = data.draw(NEAR_PARAMS[kind], label="params")
    arrays = data.draw(arrays_st() | anything, label="arrays")
    try:
        out = fn(tag, params, arrays)
    except (TypeError, ValueError):
        return
    for s in out:
        assert isinstance(s, summary_pb2.Summary)
        s.SerializeToString()


@pytest.mark.parametrize(
    ("kind", "params", "arrays"),
    [
        ("audio", {"rate": 8000, "sample_rate": 8000.0, "clip": False, "pcm": True}, "f4"),
        ("audio", {"rate": 8000, "sample_rate": 8000.0, "clip": True, "pcm": False}, "i1"),
        ("audio", {"rate": 0, "sample_rate": 8000.0, "clip": False, "pcm": False}, "f4"),
        ("audio", {"rate": 8000, "sample_rate": float("nan"), "clip": False, "pcm": False}, "f4"),
        ("audio", {"rate": True, "sample_rate": 8000.0, "clip": False, "pcm": False}, "f4"),
        ("audio", {"rate": 8000, "sample_rate": 8000.0, "clip": False, "pcm": False}, ">f4"),
        ("mesh", {"json_config": "{}", "parts": [3, 1]}, "f4"),
        ("mesh", {"json_config": "{}", "parts": [1, 1]}, "f4"),
        ("mesh", {"json_config": "{}", "parts": [4]}, "f4"),
        ("mesh", {"json_config": "{}", "parts": [True]}, "f4"),
        ("mesh", {"json_config": "{}", "parts": [1]}, None),
        ("custom_scalars", {"layout": [["c", [["t", True, ["a", "b"]]]]]}, None),
        ("custom_scalars", {"layout": [["c", [["t", 1, ["a"]]]]]}, None),
        ("hparams", {"hparams": [["a", "number", 1, None]], "metrics": []}, None),
        ("hparams", {"hparams": [["a", "string", 1.0, None]], "metrics": []}, None),
        ("hparams", {"hparams": [["a", "number", 1.0, ["x"]]], "metrics": []}, None),
        ("hparams", {"hparams": [], "metrics": [b"m"]}, None),
        ("hparams", {"hparams": [["\ud800", "number", 1.0, None]], "metrics": []}, None),
    ],
)
def test_malformed_records(kind: str, params: Any, arrays: str | None) -> None:
    arrs = [] if arrays is None else [np.zeros(4 if kind == "audio" else (1, 2, 3), arrays)]
    with pytest.raises((TypeError, ValueError)):
        getattr(encode_plugins, kind)("t", params, arrs)


def test_output_size_is_bounded_by_the_record() -> None:
    """The largest amplification: uint8 mesh colors become float32 (4x), bool audio int16 (2x)."""
    c = np.zeros((1, 100_000, 3), np.uint8)
    (s,) = encode_plugins.mesh("m", {"json_config": "{}", "parts": [3]}, [c])
    assert len(s.SerializeToString()) < 4 * c.nbytes + 1000
    a = np.zeros(100_000, bool)
    params = {"rate": 8000, "sample_rate": 8000.0, "clip": False, "pcm": False}
    (s,) = encode_plugins.audio("a", params, [a])
    assert len(s.SerializeToString()) < 2 * a.nbytes + 1000
