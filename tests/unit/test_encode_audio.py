"""add_audio: ``convert_plugins.audio`` then ``encode_plugins.audio``, against torch's.

``convert_plugins`` in the trainer, a round trip through the ring's encoding
(msgpack params, raw arrays read back read-only) and ``encode_plugins`` in the
daemon must give the Summaries torch 2.13's own summary functions give, byte
for byte, with the same stdout and warnings (helpers in
``encode_plugins_helpers.py``); a golden file pins representative cases.

Covered here: numpy and torch inputs of every sample dtype and shape,
clipping, NaN and odd sample rates (WAV samples decoded and compared), bad
samples reported before a bad rate, the trainer's cost, and the fast path
shipping samples unconverted.
"""

from __future__ import annotations

import contextlib
import decimal
import fractions
import io
import time
import wave
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
from tensorboard.compat.proto import summary_pb2 as tb_summary_pb2
from torch.utils.tensorboard import summary as tb_summary

from summaryd import convert_plugins
from summaryd.daemon import encode_plugins

from ..transport import through_ring  # noqa: E402
from .encode_plugins_helpers import _run, assert_golden, assert_same_outcome

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


def test_golden_audio(request: pytest.FixtureRequest) -> None:
    x = np.sin(np.linspace(0, 4 * np.pi, 16)).astype(np.float32) * 1.2
    with contextlib.redirect_stdout(io.StringIO()):
        (s,) = encode_plugins.audio("speech", *through_ring(convert_plugins.audio(x, 8000)))
    assert_golden(request, "audio/clipped_sine_16", s)
