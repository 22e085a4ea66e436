"""The tensor encoder against torch's ``tensor_proto``.

Byte-equal to torch for every dtype (Hypothesis over arbitrary bits), every
float16 and bfloat16 bit pattern written as torch writes it, float32 NaN
payloads kept; golden files pin a few representative tensors.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch.utils.tensorboard import summary as torch_summary

from .encode_numeric_helpers import TAG, assert_same, golden, ours

_TORCH_DTYPES = [
    torch.float16,
    torch.bfloat16,
    torch.float32,
    torch.float64,
    torch.int8,
    torch.uint8,
    torch.int16,
    torch.int32,
    torch.int64,
    torch.bool,
    torch.complex64,
    torch.complex128,
]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    dtype=st.sampled_from(_TORCH_DTYPES),
    shape=st.lists(st.integers(0, 4), max_size=4),
    raw=st.binary(min_size=512, max_size=512),
)
def test_tensor_any_bits(dtype: torch.dtype, shape: list[int], raw: bytes) -> None:
    """Arbitrary bit patterns of every dtype torch writes (NaN payloads, subnormals, -0.0)."""
    n = int(np.prod(shape)) if shape else 1
    size = torch.empty(0, dtype=dtype).element_size()
    buf = bytearray(raw[: n * size].ljust(n * size, b"\0"))
    t = (
        torch.frombuffer(buf, dtype=torch.uint8).view(dtype).reshape(shape)
        if n
        else torch.zeros(shape, dtype=dtype)
    )
    if dtype == torch.bool:
        t = t.view(torch.uint8) % 2 == 1  # only 0 and 1 are bools
    assert_same(ours("tensor", t), torch_summary.tensor_proto(TAG, t))


# -- tensor ----------------------------------------------------------------------

TENSORS: dict[str, Any] = {
    "f32": torch.randn(3, 4),
    "f64": torch.randn(5, dtype=torch.float64),
    "0d": torch.tensor(3.5),
    "empty": torch.zeros(0, 3),
    "f16": torch.tensor([1.5, -2, math.nan, math.inf, 65504, 6e-8], dtype=torch.float16),
    "bf16": torch.tensor([1.5, -2, math.nan, 3e38, -1e-40], dtype=torch.bfloat16),
    "c64": torch.tensor([1 + 2j, -0.5j], dtype=torch.complex64),
    "c128": torch.tensor([[1 + 2j], [math.nan + 0j]], dtype=torch.complex128),
    "uint8": torch.tensor([0, 1, 255], dtype=torch.uint8),
    "int8": torch.tensor([-128, 0, 127], dtype=torch.int8),
    "int16": torch.tensor([-(2**15), 2**15 - 1], dtype=torch.int16),
    "int32": torch.tensor([-(2**31), 2**31 - 1], dtype=torch.int32),
    "int64": torch.tensor([-(2**63), 2**63 - 1]),
    "bool": torch.tensor([[True, False], [False, True]]),
    "transposed": torch.randn(4, 3).t(),
    "negative-view": -torch.randn(3),
    "requires-grad": torch.randn(2, 2, requires_grad=True),
    "rank-10": torch.ones((1,) * 9 + (3,)),
    "nan-f32": torch.tensor([math.nan, -math.nan, math.inf, -0.0]),
}


@pytest.mark.parametrize("name", sorted(TENSORS))
def test_tensor_equals_torch(name: str) -> None:
    t = TENSORS[name]
    assert_same(ours("tensor", t), torch_summary.tensor_proto(TAG, t))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_tensor_every_half_bit_pattern(dtype: torch.dtype) -> None:
    """All 65,536 bit patterns, NaN payloads included, give torch's half_val."""
    t = torch.arange(-(2**15), 2**15, dtype=torch.int32).to(torch.int16).view(dtype)
    ref = torch_summary.tensor_proto(TAG, t)
    got = ours("tensor", t)
    assert list(got.value[0].tensor.half_val) == list(ref.value[0].tensor.half_val)
    assert_same(got, ref)


def test_float32_nan_payloads_as_torch() -> None:
    bits = np.array([0x7F800001, 0xFFC00001, 0x7FBFFFFF, 0x7FC00000], np.uint32)
    t = torch.from_numpy(bits.view(np.float32).copy())
    assert_same(ours("tensor", t), torch_summary.tensor_proto(TAG, t))


def test_golden_tensors(request: pytest.FixtureRequest) -> None:
    golden(request, "tensor/float32", ours("tensor", torch.arange(6.0).reshape(2, 3)))
    golden(
        request, "tensor/float16", ours("tensor", torch.tensor([1.5, -0.0], dtype=torch.float16))
    )
    golden(request, "tensor/complex64", ours("tensor", torch.tensor([1 + 2j])))
    golden(request, "tensor/bool_0d", ours("tensor", torch.tensor(True)))
