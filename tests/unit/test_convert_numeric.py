"""Tests for the caller-side checks of the numeric group (``summaryd.convert_numeric``).

Each bad input goes to torch 2.13's own ``SummaryWriter`` method and to our
conversion: ours must raise, in the caller, an instance of the builtin type
torch raises (numpy's private ``_UFuncNoLoopError`` counts as its TypeError),
as one of summaryd's argument errors whose message names the argument.

Also: what the trainer sends (raw arrays, no copies on the fast path, plain
params), and that the default-bucket histogram's check costs microseconds
for 1e6 values (one first-value test, the full pass only when it fails).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
import torch
from torch.utils.tensorboard import SummaryWriter as TorchWriter

from summaryd import convert_numeric, convert_pr
from summaryd.errors import InvalidArgumentError


@pytest.fixture(scope="module")
def tw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TorchWriter]:
    w = TorchWriter(str(tmp_path_factory.mktemp("torch-bad-inputs")))
    yield w
    w.close()


def _builtin(exc: BaseException) -> type[BaseException]:
    return next(c for c in type(exc).__mro__ if c.__module__ == "builtins")


def assert_like_torch(torch_call: Callable[[], Any], our_call: Callable[[], Any], arg: str) -> None:
    """torch raises; ours raises an InvalidArgumentError that is an instance of torch's type."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(Exception) as ref:
            torch_call()
        expected = _builtin(ref.value)
        with pytest.raises(expected) as got:
            our_call()
    assert isinstance(got.value, InvalidArgumentError), got.value
    assert arg in str(got.value), (arg, str(got.value))


def _quiet(make: Callable[[], Any]) -> Callable[[], Any]:
    """Inputs whose construction warns (quantized, complex32, nested tensors)."""

    def build() -> Any:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return make()

    return build


# -- histogram -------------------------------------------------------------------

_x = np.arange(10.0)
BAD_HISTOGRAMS: dict[str, tuple[Any, Any, Any, str]] = {
    # name: (values, bins, max_bins, argument named in the message)
    "no values": (np.array([]), "tensorflow", None, "values"),
    "no values, torch": (torch.zeros(0), "auto", None, "values"),
    "no values before bad bins": (np.array([]), "bogus", None, "values"),
    "list values": ([1.0, 2.0], "tensorflow", None, "values"),
    "None values": (None, "tensorflow", None, "values"),
    "str values": ("abc", "tensorflow", None, "values"),
    "object values": (np.array([object()]), "tensorflow", None, "values"),
    "unknown estimator": (_x, "bogus", None, "bins"),
    "bytes bins": (_x, b"auto", None, "bins"),
    "float bins": (_x, 3.0, None, "bins"),
    "None bins": (_x, None, None, "bins"),
    "zero bins": (_x, 0, None, "bins"),
    "negative bins": (_x, -2, None, "bins"),
    "2-d edges": (_x, [[0.0, 1.0]], None, "bins"),
    "ragged edges": (_x, [[0.0, 1.0], [1.0]], None, "bins"),
    "decreasing edges": (_x, [3.0, 2.0], None, "bins"),
    "decreasing int64 edges": (_x, np.array([2**53 + 1, 2**53]), None, "bins"),
    "one edge": (_x, [5.0], None, "bins"),
    "no edges": (_x, [], None, "bins"),
    "one edge, max_bins -1": (_x, [5.0], -1, "max_bins"),
    "one edge, max_bins 0": (_x, [5.0], 0, "bins"),
    "bf16 tensor edges": (_x, torch.tensor([0.0, 1.0], dtype=torch.bfloat16), None, "bins"),
    "NaN with auto": (np.array([1.0, np.nan]), "auto", None, "values"),
    "inf with a count": (np.array([1.0, np.inf]), 10, None, "values"),
    "NaN float16 with fd": (np.array([np.nan], np.float16), "fd", None, "values"),
    "all NaN, default bins": (np.array([np.nan, np.nan]), "tensorflow", None, "values"),
    "all beyond the default bins": (np.array([1e30, -1e21]), "tensorflow", None, "values"),
    "float16 inf, default bins": (np.array([np.inf], np.float16), "tensorflow", None, "values"),
    "all beyond explicit edges": (_x, [100.0, 200.0, 300.0], None, "values"),
    "NaN first, beyond edges": (np.array([np.nan, 50.0]), [0.0, 1.0, 2.0], None, "values"),
    "max_bins 0": (_x, "tensorflow", 0, "max_bins"),
    "max_bins 0, estimator": (_x, "auto", 0, "max_bins"),
    "max_bins negative": (_x, 10, -3, "max_bins"),
    "max_bins -1, edges": (_x, [0.0, 1.0, 2.0], -1, "max_bins"),
    "max_bins float below the count": (_x, 10, 2.5, "max_bins"),
    "max_bins integral float": (_x, "tensorflow", 5.0, "max_bins"),
    "max_bins float, estimator": (_x, "sqrt", 1.5, "max_bins"),
    "max_bins str": (_x, 10, "3", "max_bins"),
    "max_bins 0 before empty": (np.array([np.nan]), "tensorflow", 0, "max_bins"),
}


@pytest.mark.parametrize("name", sorted(BAD_HISTOGRAMS))
def test_histogram_bad_input_like_torch(name: str, tw: TorchWriter) -> None:
    values, bins, max_bins, arg = BAD_HISTOGRAMS[name]
    assert_like_torch(
        lambda: tw.add_histogram("t", values, bins=bins, max_bins=max_bins),
        lambda: convert_numeric.histogram(values, bins, max_bins),
        arg,
    )


GOOD_HISTOGRAMS: dict[str, tuple[Any, Any, Any]] = {
    "NaN first, default bins": (np.array([np.nan, 1.0]), "tensorflow", None),
    "one bucket kept of nothing": (np.array([np.nan]), "tensorflow", 1),
    "one empty bucket": (_x, [100.0, 200.0], None),
    "max_bins float above the count": (_x, 10, 20.0),
    "max_bins NaN": (_x, 10, float("nan")),
    "max_bins True": (_x, 10, True),
    "max_bins int tensor": (_x, 10, torch.tensor(3)),
    "bins True": (_x, True, None),
    "bins numpy int": (_x, np.int64(4), None),
    "numeric str value": ("1.5", "tensorflow", None),
    "datetime values": (np.array(["2020-01-01"], "datetime64[D]"), "tensorflow", None),
    "object edges": (_x, np.array([0, 1.0], object), None),
    "bool edges": (_x, np.array([False, True]), None),
    "tensor edges": (_x, torch.tensor([0.0, 5.0]), None),
    "edges with NaN": (_x, [0.0, np.nan, 5.0], None),
    "uint64 values": (np.array([2**64 - 1], np.uint64), "tensorflow", None),
}


@pytest.mark.parametrize("name", sorted(GOOD_HISTOGRAMS))
def test_histogram_accepts_what_torch_accepts(name: str, tw: TorchWriter) -> None:
    values, bins, max_bins = GOOD_HISTOGRAMS[name]
    tw.add_histogram("t", values, bins=bins, max_bins=max_bins)  # torch takes it
    params, arrays = convert_numeric.histogram(values, bins, max_bins)
    assert all(a.dtype.kind in "biuf" for a in arrays)


def test_histogram_sends_the_values_raw() -> None:
    x = np.random.default_rng(0).standard_normal(1000).astype(np.float32)
    params, arrays = convert_numeric.histogram(x, "tensorflow", None)
    assert params == {"bins": "tensorflow", "max_bins": None}
    assert len(arrays) == 1 and arrays[0].dtype == np.float32
    assert np.shares_memory(arrays[0], x)
    t = torch.from_numpy(x.reshape(10, 100))
    _, arrays = convert_numeric.histogram(t, "auto", 12)
    assert np.shares_memory(arrays[0], x) and arrays[0].shape == (1000,)
    params, arrays = convert_numeric.histogram(x, [0, 1, 2], np.int64(1))
    assert params == {"bins": None, "max_bins": 1} and type(params["max_bins"]) is int
    assert arrays[1].tolist() == [0, 1, 2]


def _best_of(fn: Callable[[], Any], n: int = 300) -> float:
    best = float("inf")
    for _ in range(n):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def test_histogram_default_bins_check_is_o1() -> None:
    """1e6 float32 values: far below the 0.2 ms the ring copy costs (a first-value proof)."""
    x = np.random.default_rng(1).standard_normal(1_000_000).astype(np.float32)
    t = torch.from_numpy(x)
    assert _best_of(lambda: convert_numeric.histogram(x, "tensorflow", None)) < 50e-6
    assert _best_of(lambda: convert_numeric.histogram(t, "tensorflow", None)) < 50e-6
    y = x.copy()
    y[0] = np.nan  # the proof fails: a full pass decides, and the values still count
    convert_numeric.histogram(y, "tensorflow", None)
    y[:] = np.inf
    with pytest.raises(ValueError, match="histogram is empty"):
        convert_numeric.histogram(y, "tensorflow", None)


# -- histogram_raw ---------------------------------------------------------------

_ok = (0.0, 1.0, 2.0, 3.0, 4.0, [1.0, 2.0], [3, 4])


def _raw_with(**kw: Any) -> tuple[Any, ...]:
    names = ["min", "max", "num", "sum", "sum_squares", "bucket_limits", "bucket_counts"]
    return tuple(kw.get(n, v) for n, v in zip(names, _ok, strict=True))


BAD_HISTOGRAM_RAW: dict[str, tuple[tuple[Any, ...], str]] = {
    "lengths differ": (_raw_with(bucket_counts=[1]), "bucket_limits"),
    "generator limits": (_raw_with(bucket_limits=(x for x in [1.0, 2.0])), "bucket_limits"),
    "0-d tensor counts": (_raw_with(bucket_counts=torch.tensor(2.0)), "bucket_counts"),
    "int counts": (_raw_with(bucket_counts=2), "bucket_counts"),
    "str min": (_raw_with(min="1"), "min"),
    "bytes max": (_raw_with(max=b"1"), "max"),
    "0-d array num": (_raw_with(num=np.array(1.0)), "num"),
    "1-d array sum": (_raw_with(sum=np.array([1.0])), "sum"),
    "complex sum_squares": (_raw_with(sum_squares=1j), "sum_squares"),
    "huge int": (_raw_with(max=10**400), "max"),
    "huge int limit": (_raw_with(bucket_limits=[1.0, 10**400]), "bucket_limits"),
    "str limit": (_raw_with(bucket_limits=["1", 2.0]), "bucket_limits"),
    "None count": (_raw_with(bucket_counts=[None, 1]), "bucket_counts"),
    "complex limit": (_raw_with(bucket_limits=[1j, 2.0]), "bucket_limits"),
    "nested limits": (_raw_with(bucket_limits=[[1.0], [2.0]]), "bucket_limits"),
    "2-d array limits": (_raw_with(bucket_limits=np.ones((2, 2))), "bucket_limits"),
    "str array counts": (_raw_with(bucket_counts=np.array(["1", "2"])), "bucket_counts"),
    "str limits": (_raw_with(bucket_limits="ab"), "bucket_limits"),
    "wide tensor rows": (_raw_with(bucket_limits=torch.ones(2, 2)), "bucket_limits"),
}


@pytest.mark.parametrize("name", sorted(BAD_HISTOGRAM_RAW))
def test_histogram_raw_bad_input_like_torch(name: str, tw: TorchWriter) -> None:
    args, arg = BAD_HISTOGRAM_RAW[name]
    assert_like_torch(
        lambda: tw.add_histogram_raw("t", *args),
        lambda: convert_numeric.histogram_raw(*args),
        arg,
    )


def test_histogram_raw_params_are_floats() -> None:
    params, arrays = convert_numeric.histogram_raw(
        None, np.float32(1.5), 3, torch.tensor(2.0), True, np.arange(3.0), [1, 2, 3]
    )
    assert params == {"min": 0.0, "max": 1.5, "num": 3.0, "sum": 2.0, "sum_squares": 1.0}
    assert all(type(v) is float for v in params.values())
    assert arrays[0].dtype == np.float64 and arrays[1].dtype == np.float64


# -- pr_curve --------------------------------------------------------------------

_L = np.array([0, 1, 1, 0])
_P = np.array([0.1, 0.9, 0.5, 0.3])
BAD_PR_CURVES: dict[str, tuple[Any, Any, Any, Any, str]] = {
    # name: (labels, predictions, num_thresholds, weights, argument)
    "list labels": ([0, 1], _P, 127, None, "labels"),
    "None predictions": (_L, None, 127, None, "predictions"),
    "shapes differ": (_L[:3], _P, 127, None, "labels"),
    "weights shape": (_L, _P, 127, np.ones(3), "weights"),
    "weights broadcast to a new shape": (_L, _P, 127, np.ones((2, 1)), "labels"),
    "weights tensor": (_L, _P, 127, torch.ones(4), "weights"),
    "weights str": (_L, _P, 127, "a", "weights"),
    "weights complex": (_L, _P, 127, 1j, "weights"),
    "str thresholds": (_L, _P, "5", None, "num_thresholds"),
    "None thresholds": (_L, _P, None, None, "num_thresholds"),
    "zero thresholds": (_L, _P, 0, None, "num_thresholds"),
    "negative thresholds": (_L, _P, -1, None, "num_thresholds"),
    "zero thresholds, uint8": (_L, _P.astype(np.uint8), 0, None, "num_thresholds"),
    "-1000 thresholds, int8": (_L, _P.astype(np.int8), -1000, None, "num_thresholds"),
    "float thresholds": (_L, _P, 1.5, None, "num_thresholds"),
    "integral float thresholds": (_L, _P, 127.0, None, "num_thresholds"),
    "numpy float thresholds": (_L, _P, np.float64(5), None, "num_thresholds"),
    "bool thresholds": (_L, _P, True, None, "num_thresholds"),
    "numpy bool thresholds": (_L, _P, np.True_, None, "num_thresholds"),
    "tensor thresholds": (_L, _P, torch.tensor(5), None, "num_thresholds"),
    "str predictions": (_L, np.array(["1", "0", "1", "1"]), 127, None, "predictions"),
    "complex predictions": (_L, _P + 0j, 127, None, "predictions"),
    "datetime predictions": (_L, np.arange(4).astype("datetime64[D]"), 127, None, "predictions"),
    "bad str labels": (np.array(["a", "0", "1", "1"]), _P, 127, None, "labels"),
}


@pytest.mark.parametrize("name", sorted(BAD_PR_CURVES))
def test_pr_curve_bad_input_like_torch(name: str, tw: TorchWriter) -> None:
    labels, preds, nt, weights, arg = BAD_PR_CURVES[name]
    assert_like_torch(
        lambda: tw.add_pr_curve("t", labels, preds, num_thresholds=nt, weights=weights),
        lambda: convert_pr.pr_curve(labels, preds, nt, weights),
        arg,
    )


def test_pr_curve_params() -> None:
    params, arrays = convert_pr.pr_curve(_L, _P.astype(np.float32), 500, 2)
    assert params == {"num_thresholds": 127, "nt_dtype": None, "weights": 2.0}
    assert len(arrays) == 2 and np.shares_memory(arrays[1], arrays[1])
    params, arrays = convert_pr.pr_curve(_L, _P, np.int32(9), np.ones(4))
    assert params == {"num_thresholds": 9, "nt_dtype": "int32", "weights": None}
    assert len(arrays) == 3
    params, _ = convert_pr.pr_curve(
        np.array(["1", "0", "1", "1"]), np.array([0.5, 1, 2, 3], object), 200.0, None
    )
    assert params["num_thresholds"] == 127 and params["nt_dtype"] is None


# -- pr_curve_raw ----------------------------------------------------------------

_c = np.arange(3.0)


def _six(x: Any, last: Any = None) -> list[Any]:
    return [x] * 5 + [x if last is None else last]


BAD_PR_CURVE_RAW: dict[str, tuple[list[Any], Any, str]] = {
    "str thresholds": (_six(_c), "1", "num_thresholds"),
    "None thresholds": (_six(_c), None, "num_thresholds"),
    "negative thresholds": (_six(_c), -1, "num_thresholds"),
    "float thresholds": (_six(_c), 1.5, "num_thresholds"),
    "numpy float thresholds": (_six(_c), np.float64(3), "num_thresholds"),
    "bool thresholds": (_six(_c), True, "num_thresholds"),
    "shapes differ": (_six(_c, _c[:2]), 127, "recall"),
    "ragged lists": (_six([[1.0], [1.0, 2.0]]), 127, "true_positive_counts"),
    "scalars": (_six(1.0), 127, "true_positive_counts"),
    "None counts": (_six(None), 127, "true_positive_counts"),
    "scalars, negative thresholds": (_six(1.0), -1, "num_thresholds"),
    "str counts": (_six(["1"]), 127, "true_positive_counts"),
    "str counts, negative thresholds": (_six(["1"]), -1, "num_thresholds"),
    "complex counts": (_six([1j]), 127, "true_positive_counts"),
    "object None counts": (_six(np.array([1.5, None], object)), 127, "true_positive_counts"),
}


@pytest.mark.parametrize("name", sorted(BAD_PR_CURVE_RAW))
def test_pr_curve_raw_bad_input_like_torch(name: str, tw: TorchWriter) -> None:
    counts, nt, arg = BAD_PR_CURVE_RAW[name]
    assert_like_torch(
        lambda: tw.add_pr_curve_raw("t", *counts, num_thresholds=nt),
        lambda: convert_pr.pr_curve_raw(*counts, nt, None),
        arg,
    )


def test_pr_curve_raw_params() -> None:
    params, arrays = convert_pr.pr_curve_raw(*_six(np.ones((2, 3))), 10**9, "ignored")
    assert params == {"num_thresholds": 127, "length": 2}
    assert [a.shape for a in arrays] == [(6,)] * 6


# -- tensor ----------------------------------------------------------------------

BAD_TENSORS: dict[str, Callable[[], Any]] = {
    "numpy": lambda: np.ones(3),
    "float": lambda: 1.5,
    "list": lambda: [1.0],
    "None": lambda: None,
    "uint16": lambda: torch.ones(2, dtype=torch.uint16),
    "uint32": lambda: torch.ones(2, dtype=torch.uint32),
    "uint64": lambda: torch.ones(2, dtype=torch.uint64),
    "float8": lambda: torch.ones(2, dtype=torch.float8_e4m3fn),
    "complex32": _quiet(lambda: torch.ones(2, dtype=torch.complex32)),
    "quantized": _quiet(
        lambda: torch.quantize_per_tensor(torch.tensor([1.0, 2.5]), 0.1, 0, torch.qint8)
    ),
    "sparse": lambda: torch.ones(3).to_sparse(),
    "conjugated": lambda: torch.tensor([1 + 2j]).conj(),
    "meta": lambda: torch.ones(2, device="meta"),
    "nested": _quiet(lambda: torch.nested.nested_tensor([torch.ones(2), torch.ones(3)])),
    "2 GiB": lambda: torch.zeros(1).expand(1 << 29),
    "2 GiB of int8": lambda: torch.zeros(1, dtype=torch.int8).expand(1 << 31),
}


@pytest.mark.parametrize("name", sorted(BAD_TENSORS))
def test_tensor_bad_input_like_torch(name: str, tw: TorchWriter) -> None:
    t = BAD_TENSORS[name]()
    assert_like_torch(
        lambda: tw.add_tensor("t", t),
        lambda: convert_numeric.tensor(t),
        "tensor",
    )


def test_tensor_sends_bits_and_pairs() -> None:
    bf = torch.tensor([1.5, -2.0], dtype=torch.bfloat16)
    params, (arr,) = convert_numeric.tensor(bf)
    assert params == {"dtype": "bfloat16", "shape": [2]} and arr.dtype == np.int16
    params, (arr,) = convert_numeric.tensor(torch.tensor([[1 + 2j]], dtype=torch.complex128))
    assert params == {"dtype": "complex128", "shape": [1, 1]}
    assert arr.tolist() == [1.0, 2.0]
    x = torch.randn(100, 100)
    _, (arr,) = convert_numeric.tensor(x)
    assert np.shares_memory(arr, x.numpy())
