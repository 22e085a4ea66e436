"""Hostile records into the numeric encoders (``summaryd.daemon.encode_numeric``).

Hypothesis feeds each encoder arbitrary params and arrays: only TypeError or
ValueError may come out, and never a numpy warning; well-formed histogram
records always encode; absurd counts are refused rather than allocated; the
min/max and float64 scratch paths give ``astype(float)``'s bits.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from summaryd.daemon import encode_numeric
from summaryd.proto import summary_pb2

from .encode_numeric_helpers import TAG

# -- hostile records -------------------------------------------------------------

_DTYPES = ["?", "i1", "u1", "<i2", ">i2", "<i4", "<i8", ">u8", "<f2", "<f4", ">f4", "<f8", ">f8"]

_any_value = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.integers(min_value=-3, max_value=200),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    st.sampled_from(
        ["tensorflow", "auto", "fd", "stone", "int8", "uint64", "float16", "bfloat16", "complex64"]
    ),
    st.lists(st.integers(min_value=-2, max_value=6), max_size=4),
    st.binary(max_size=4),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)

_KEYS = {
    "histogram": ["bins", "max_bins"],
    "histogram_raw": ["min", "max", "num", "sum", "sum_squares"],
    "pr_curve": ["num_thresholds", "nt_dtype", "weights"],
    "pr_curve_raw": ["num_thresholds", "length"],
    "tensor": ["dtype", "shape"],
}


def _arrays_strategy() -> st.SearchStrategy[list[np.ndarray]]:
    one = hnp.arrays(
        st.sampled_from(_DTYPES),
        hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=6),
        elements=None,
    )
    return st.lists(one, max_size=7).map(lambda xs: [_read_only(x) for x in xs])


def _read_only(x: np.ndarray) -> np.ndarray:
    x = np.ascontiguousarray(x)
    x.flags.writeable = False
    return x


@st.composite
def _records(draw: Any, kind: str) -> tuple[Any, Any, Any]:
    keys = _KEYS[kind]
    params: Any = {k: draw(_any_value) for k in keys if draw(st.integers(0, 9))}
    if draw(st.integers(0, 20)) == 0:
        params = draw(_any_value)
    tag = draw(st.text(max_size=5)) if draw(st.integers(0, 20)) else draw(_any_value)
    return tag, params, draw(_arrays_strategy())


def _fuzz(kind: str, rec: tuple[Any, Any, Any]) -> None:
    tag, params, arrays = rec
    try:
        with np.errstate(all="raise"):  # a numpy warning escaping would be a failure too
            out = getattr(encode_numeric, kind)(tag, params, arrays)
    except (TypeError, ValueError):
        return
    assert all(isinstance(m, summary_pb2.Summary) for m in out)
    for m in out:
        m.SerializeToString()


_FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_FUZZ
@given(_records("histogram"))
def test_fuzz_histogram(rec: tuple[Any, Any, Any]) -> None:
    _fuzz("histogram", rec)


@_FUZZ
@given(_records("histogram_raw"))
def test_fuzz_histogram_raw(rec: tuple[Any, Any, Any]) -> None:
    _fuzz("histogram_raw", rec)


@_FUZZ
@given(_records("pr_curve"))
def test_fuzz_pr_curve(rec: tuple[Any, Any, Any]) -> None:
    _fuzz("pr_curve", rec)


@_FUZZ
@given(_records("pr_curve_raw"))
def test_fuzz_pr_curve_raw(rec: tuple[Any, Any, Any]) -> None:
    _fuzz("pr_curve_raw", rec)


@_FUZZ
@given(_records("tensor"))
def test_fuzz_tensor(rec: tuple[Any, Any, Any]) -> None:
    _fuzz("tensor", rec)


@_FUZZ
@given(
    st.sampled_from(["tensorflow", "auto", "fd", "doane", "scott", "stone", "sqrt", 3, None]),
    st.one_of(st.none(), st.integers(-2, 5)),
    hnp.arrays(
        st.sampled_from(["<f8", "<f4", "<f2", "<i8", ">u8", "?"]),
        st.integers(0, 30),
        elements=None,
    ),
    st.one_of(
        st.none(),
        hnp.arrays(st.sampled_from(["<f8", "<i4", "?"]), st.integers(0, 5), elements=None),
    ),
)
def test_fuzz_histogram_well_formed(
    bins: Any, max_bins: Any, values: np.ndarray, edges: np.ndarray | None
) -> None:
    """Well-formed params, arbitrary values (NaN, inf, 1e308, huge ints): numpy's depths."""
    arrays = [_read_only(values)] + ([_read_only(edges)] if edges is not None else [])
    _fuzz("histogram", (TAG, {"bins": bins, "max_bins": max_bins}, arrays))


def test_absurd_counts_refused() -> None:
    """A few bytes must not make the daemon allocate gigabytes."""
    x = _read_only(np.concatenate([np.zeros(50), np.arange(50.0), [1e15]]))
    with pytest.raises(ValueError, match="buckets"):
        encode_numeric.histogram(TAG, {"bins": "fd", "max_bins": None}, [x])
    with pytest.raises(ValueError):
        encode_numeric.histogram(TAG, {"bins": 1 << 40, "max_bins": None}, [x])
    with pytest.raises(ValueError, match="shape"):
        big = _read_only(np.zeros((1, 10_000)))
        encode_numeric.pr_curve(
            TAG,
            {"num_thresholds": 127, "nt_dtype": None, "weights": None},
            [_read_only(np.zeros((10_000, 1))), big, big],
        )
    with pytest.raises(ValueError):
        encode_numeric.tensor(
            TAG, {"dtype": "float32", "shape": [1 << 40, 1 << 40]}, [_read_only(np.zeros(1, "f4"))]
        )


@pytest.mark.parametrize("n", [10, 1 << 16, 300_000])
@pytest.mark.parametrize("case", ["zeros", "neg_zeros", "nan", "plain"])
def test_min_max_and_float64_scratch_as_astype(n: int, case: str) -> None:
    """min/max read from float32 and the reused float64 buffer give astype(float)'s bits:
    signed zeros and NaN come from the float64 array, as torch's."""
    rng = np.random.default_rng(n)
    x = np.abs(rng.standard_normal(n)).astype(np.float32)
    if case in ("zeros", "neg_zeros"):
        x[rng.integers(0, n, 5)] = np.float32(0.0)
        x[rng.integers(0, n, 5)] = np.float32(-0.0)
        if case == "neg_zeros":
            x = -x
    elif case == "nan":
        x[rng.integers(0, n, 3)] = np.float32("nan")
    ref = x.astype(float)
    for _ in range(2):  # the second call reuses the thread's buffer
        a = encode_numeric._as_float64(x)
        assert a.tobytes() == ref.tobytes()
        lo, hi = encode_numeric._min_max(x, a)
        assert np.float64(lo).tobytes() == ref.min().tobytes()
        assert np.float64(hi).tobytes() == ref.max().tobytes()
