"""Tests for the numeric encoders (``summaryd.daemon.encode_numeric``) against torch's summaries.

Every case runs as the daemon would: ``summaryd.convert_numeric`` in the
"trainer", params through msgpack and arrays through the ring's byte layout
(``summaryd.arrays`` -> ``summaryd.daemon.arrays``), then the encoder.  The
Summary must serialize to exactly the bytes of the one torch 2.13's
``torch.utils.tensorboard.summary`` builds for the same call (bucket limits
and counts, float32 roundings, NaN bits, metadata); on a difference the
fields are shown side by side.

Also: the default-bucket counting (bit-pattern table) equals ``np.histogram``
on every edge, its neighbours and the special values; every float16 and
bfloat16 bit pattern is written as torch writes it; golden files pin a few
representative encodings; Hypothesis feeds each encoder arbitrary params and
arrays (only TypeError/ValueError may come out) and arbitrary float arrays to
the histogram (equal to torch's).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
from google.protobuf import text_format
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from tensorboard.compat.proto import summary_pb2 as tb_summary_pb2
from torch.utils.tensorboard import SummaryWriter as TorchWriter
from torch.utils.tensorboard import summary as torch_summary
from torch.utils.tensorboard._convert_np import make_np

from summaryd import convert_numeric, convert_pr, limits
from summaryd.daemon import buckets, encode_numeric
from summaryd.proto import summary_pb2

from .. import transport
from ..golden import assert_golden

TAG = "numeric/tag"


@pytest.fixture(scope="module")
def default_bins(tmp_path_factory: pytest.TempPathFactory) -> list[float]:
    """torch's own ``SummaryWriter.default_bins`` (not our copy of its loop)."""
    w = TorchWriter(str(tmp_path_factory.mktemp("torch-bins")))
    try:
        return list(w.default_bins)
    finally:
        w.close()


def _plain(x: Any) -> bool:
    """Only what msgpack carries as-is: no numpy scalars sneaking into params."""
    if x is None or type(x) in (bool, int, float, str, bytes):
        return True
    if type(x) is list:
        return all(_plain(v) for v in x)
    if type(x) is dict:
        return all(type(k) is str and _plain(v) for k, v in x.items())
    return False


def through_ring(payload: tuple[dict[str, Any], list[np.ndarray]]) -> tuple[dict[str, Any], list]:
    """The shared ``tests.transport.through_ring``, params checked to be plain values."""
    assert _plain(payload[0]), payload[0]
    return transport.through_ring(payload)


def ours(kind: str, *args: Any) -> Any:
    """convert_numeric.<kind> (convert_pr for PR curves) in the trainer, then
    encode_numeric.<kind> in the daemon."""
    convert = convert_pr if kind.startswith("pr_curve") else convert_numeric
    params, arrays = through_ring(getattr(convert, kind)(*args))
    out = getattr(encode_numeric, kind)(TAG, params, arrays)
    assert len(out) == 1 and isinstance(out[0], summary_pb2.Summary)
    return out[0]


def assert_same(our: Any, ref: Any) -> None:
    """Byte-equal serializations; on failure, both as TensorBoard's text format."""
    a = our.SerializeToString(deterministic=True)
    b = ref.SerializeToString(deterministic=True)
    if a != b:
        mine = tb_summary_pb2.Summary.FromString(a)
        pytest.fail(
            "summaries differ\n--- summaryd\n"
            + text_format.MessageToString(mine)[:3000]
            + "\n--- torch\n"
            + text_format.MessageToString(ref)[:3000]
        )


golden = assert_golden


def _builtin_type(exc: BaseException) -> type[BaseException]:
    """The builtin class of an exception (numpy raises private subclasses of TypeError)."""
    return next(c for c in type(exc).__mro__ if c.__module__ == "builtins")


def torch_ref(fn: Callable[[], Any]) -> Any:
    """torch's summary, its warnings (ComplexWarning, NaN casts) silenced as in training."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn()


# -- histogram -------------------------------------------------------------------

_rng = np.random.default_rng(20260101)
_normal = _rng.standard_normal(3000)

HIST_VALUES: dict[str, Any] = {
    "f32": _normal.astype(np.float32),
    "f64": _normal * 1e3,
    "f16": _normal.astype(np.float16),
    "int64": np.arange(-50, 200),
    "uint8": np.arange(256, dtype=np.uint8),
    "bool": np.array([True, False, True]),
    "2d-f32": _normal[:600].reshape(20, 30).astype(np.float32),
    "f32-transposed": _normal[:600].reshape(20, 30).astype(np.float32).T,
    "torch-f32": torch.from_numpy(_normal.astype(np.float32)),
    "torch-bf16": torch.from_numpy(_normal[:500]).to(torch.bfloat16),
    "torch-int32": torch.arange(-7, 90, dtype=torch.int32),
    "scalar": 2.5,
    "wide-f64": _normal * 10.0 ** _rng.integers(-14, 21, _normal.size),
    "nan-inf": np.array([np.nan, 1.0, -np.inf, np.inf, 3.0, -0.0, 0.0]),
    "huge": np.array([1e30, -1e30, 5.0]),
    "one": np.array([0.0]),
    "on-edges": np.array(limits.tensorflow_bins()[::7]),
}
HIST_BINS: list[Any] = [
    "tensorflow",
    "auto",
    "fd",
    "doane",
    "scott",
    "stone",
    "rice",
    "sturges",
    "sqrt",
    1,
    10,
    [-1.0, 0.0, 0.5, 2.0],
    np.array([-3, 0, 1, 1, 4]),
    np.linspace(-2, 2, 9).astype(np.float32),
]
HIST_MAX_BINS = [None, 1, 3, 7, 5000]


def _bins_id(b: Any) -> str:
    return b if isinstance(b, str) else f"{type(b).__name__}{np.asarray(b).size}"


def check_histogram(values: Any, bins: Any, max_bins: Any, default_bins: list[float]) -> None:
    """Our histogram equals torch's, or both refuse (summaryd in the caller or the daemon)."""
    torch_bins = default_bins if isinstance(bins, str) and bins == "tensorflow" else bins
    try:
        ref = torch_ref(lambda: torch_summary.histogram(TAG, values, torch_bins, max_bins))
    except MemoryError:  # an estimator's absurd bucket count: summaryd refuses it (MAX_BINS)
        with pytest.raises(ValueError, match="buckets"):
            ours("histogram", values, bins, max_bins)
        return
    except Exception as exc:  # torch refuses: so must the caller, or the daemon
        with pytest.raises(_builtin_type(exc)):
            ours("histogram", values, bins, max_bins)
        return
    assert_same(ours("histogram", values, bins, max_bins), ref)


@pytest.mark.parametrize("name", sorted(HIST_VALUES))
def test_histogram_equals_torch(name: str, default_bins: list[float]) -> None:
    """Every bins (default, each estimator, counts, edges) with every max_bins."""
    for bins in HIST_BINS:
        for max_bins in HIST_MAX_BINS:
            try:
                check_histogram(HIST_VALUES[name], bins, max_bins, default_bins)
            except BaseException as exc:
                exc.add_note(f"bins={_bins_id(bins)} max_bins={max_bins}")
                raise


def test_tensorflow_bins_are_torchs(default_bins: list[float]) -> None:
    mine = limits.tensorflow_bins()
    assert len(mine) == 1549
    assert np.array_equal(np.array(mine), np.array(default_bins))
    assert [math.copysign(1, x) for x in mine] == [math.copysign(1, x) for x in default_bins]


def _edge_probe(ftype: Any) -> np.ndarray:
    """Every default edge, its float neighbours, and the special values, in ``ftype``."""
    e = np.array(limits.tensorflow_bins()).astype(ftype)
    inf = ftype(np.inf)
    special = np.array(
        [0.0, -0.0, np.nan, -np.nan, np.inf, -np.inf, 1e-300, -1e-300, 5e-324, -5e-324, 1e-45]
    ).astype(ftype)
    sig_nan = np.array([0x7FF0000000000001, 0xFFF0000000000001], np.uint64).view(np.float64)
    with np.errstate(invalid="ignore"):  # signalling NaN
        parts = [e, np.nextafter(e, inf), np.nextafter(e, -inf), special, sig_nan.astype(ftype)]
    if ftype is np.float32:
        parts.append(np.array([0x7F800001, 0xFF800001, 1, 0x80000001], np.uint32).view(np.float32))
    return np.concatenate(parts)


@pytest.mark.parametrize("ftype", [np.float32, np.float64])
def test_tensorflow_counts_exact_at_every_edge(ftype: Any) -> None:
    """The bit-pattern table counts what np.histogram counts, at and around every edge."""
    x = _edge_probe(ftype)
    edges = np.array(limits.tensorflow_bins())
    with np.errstate(invalid="ignore"):
        ref = np.histogram(x.astype(np.float64), bins=edges)[0]
    assert np.array_equal(buckets.tensorflow_counts(x), ref)


def test_tensorflow_counts_random_magnitudes() -> None:
    rng = np.random.default_rng(7)
    x = rng.standard_normal(200_000) * 10.0 ** rng.integers(-16, 23, 200_000)
    edges = np.array(limits.tensorflow_bins())
    for arr in (x, x.astype(np.float32)):
        ref = np.histogram(arr.astype(np.float64), bins=edges)[0]
        assert np.array_equal(buckets.tensorflow_counts(arr), ref)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    values=hnp.arrays(
        st.sampled_from([np.float16, np.float32, np.float64]),
        hnp.array_shapes(min_dims=1, max_dims=2, max_side=40),
        elements=st.floats(allow_nan=True, allow_infinity=True, width=16),
    )
    | hnp.arrays(
        st.sampled_from([np.float32, np.float64]),
        st.integers(1, 60),
        elements=st.floats(allow_nan=True, allow_infinity=True, width=32),
    ),
    max_bins=st.sampled_from([None, 1, 2, 5, 100]),
)
def test_histogram_tensorflow_any_floats(
    values: np.ndarray, max_bins: int | None, default_bins: list[float]
) -> None:
    try:
        ref = torch_ref(lambda: torch_summary.histogram(TAG, values, default_bins, max_bins))
    except ValueError:
        with pytest.raises(ValueError, match="histogram is empty"):
            ours("histogram", values, "tensorflow", max_bins)
        return
    assert_same(ours("histogram", values, "tensorflow", max_bins), ref)


@pytest.mark.parametrize("order", [">", "<"])
def test_histogram_any_byte_order(order: str, default_bins: list[float]) -> None:
    values = _normal[:100].astype(order + "f4")
    ref = torch_summary.histogram(TAG, values, default_bins)
    assert_same(ours("histogram", values, "tensorflow", None), ref)


# -- histogram_raw ---------------------------------------------------------------

HIST_RAW_CASES: dict[str, tuple[Any, ...]] = {
    "lists": (0, 10, 7, 30.5, 200.25, [1.0, 2.0, 10.0], [1, 5, 1]),
    "numpy": (
        np.float32(0.1),
        np.float64(9.5),
        np.int64(3),
        1.5,
        2,
        np.array([0.5, 1.1, 9.5], np.float32),
        np.array([1, 1, 1], np.int64),
    ),
    "torch": (
        torch.tensor(0.25),
        1,
        2,
        3,
        4,
        torch.tensor([1.5, 2.5]),
        torch.tensor([3, 4]),
    ),
    "bf16-f16": (
        0,
        0,
        0,
        0,
        0,
        torch.tensor([1.1, 2.2], dtype=torch.bfloat16),
        np.array([1.1, 2.2], np.float16),
    ),
    "none-and-minus-zero": (None, -0.0, None, -0.0, None, [1.0], [2]),
    "big-ints": (2**64, -(2**70), 2**53 + 1, 0, 0, [2**63 + 1], np.array([2**64 - 1], np.uint64)),
    "bools": (True, False, True, 0, 0, [True, False], np.array([True, True])),
    "empty": (0, 0, 0, 0, 0, [], []),
    "dict-and-tuple": (0, 1, 2, 3, 4, {1.0: "a", 2.0: "b"}, (3, 4)),
    "nan-inf": (math.nan, math.inf, -math.inf, 0, 0, [math.nan], [math.inf]),
    "column-tensor": (0, 0, 0, 0, 0, torch.ones(2, 1), [1, 2]),
}


@pytest.mark.parametrize("name", sorted(HIST_RAW_CASES))
def test_histogram_raw_equals_torch(name: str) -> None:
    args = HIST_RAW_CASES[name]
    ref = torch_summary.histogram_raw(TAG, *args)
    assert_same(ours("histogram_raw", *args), ref)


# -- pr_curve --------------------------------------------------------------------

_labels = _rng.integers(0, 2, 400)
_preds = _rng.random(400)
PR_INPUTS: dict[str, tuple[Any, Any]] = {
    "f64": (_labels, _preds),
    "f32": (_labels, _preds.astype(np.float32)),
    "f16-bool": (_labels.astype(bool), _preds.astype(np.float16)),
    "uint8": (_labels, (_preds * 4).astype(np.uint8)),
    "int8": (_labels, (_preds * 4).astype(np.int8)),
    "torch": (torch.from_numpy(_labels), torch.from_numpy(_preds)),
    "torch-bf16": (torch.from_numpy(_labels), torch.from_numpy(_preds).to(torch.bfloat16)),
    "out-of-range": (_labels[:6], np.array([np.nan, np.inf, -1.0, 2.0, 0.5, 1.0])),
    "soft-labels": (_rng.random(400), _preds),
    "2d": (_labels.reshape(20, 20), _preds.reshape(20, 20)),
    "scalars": (1, 0.7),
    "empty": (np.array([]), np.array([])),
}
PR_THRESHOLDS: list[Any] = [127, 500, 200.0, 10, 1, np.int64(50), np.uint8(9), np.int32(127)]
PR_WEIGHTS: dict[str, Any] = {
    "none": None,
    "float": 0.5,
    "int": 3,
    "np-f32": np.float32(0.3),
    "scalar-array": np.array([2.0]),
}


@pytest.mark.parametrize("name", sorted(PR_INPUTS))
def test_pr_curve_equals_torch(name: str) -> None:
    """Every input with every num_thresholds and weights."""
    labels, preds = PR_INPUTS[name]
    for nt in PR_THRESHOLDS:
        for wname, weights in PR_WEIGHTS.items():
            ref = torch_ref(
                lambda nt=nt, weights=weights: torch_summary.pr_curve(
                    TAG, make_np(labels), make_np(preds), nt, weights
                )
            )
            try:
                assert_same(ours("pr_curve", labels, preds, nt, weights), ref)
            except BaseException as exc:
                exc.add_note(f"num_thresholds={nt!r} weights={wname}")
                raise


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=st.data(),
    n=st.integers(0, 40),
    pdtype=st.sampled_from([np.float16, np.float32, np.float64, np.uint8, np.int16, np.bool_]),
    nt=st.sampled_from([1, 2, 5, 127, 128, np.int64(7), np.uint16(3)]),
    weighted=st.booleans(),
)
def test_pr_curve_any_values(data: Any, n: int, pdtype: Any, nt: Any, weighted: bool) -> None:
    """Arbitrary predictions (NaN, inf, out of [0, 1], integer dtypes) and labels."""
    preds = data.draw(hnp.arrays(pdtype, n, elements=None))
    labels = data.draw(hnp.arrays(st.sampled_from([np.int64, np.float32, np.bool_]), n))
    weights = data.draw(hnp.arrays(np.float64, n)) if weighted else None
    ref = torch_ref(lambda: torch_summary.pr_curve(TAG, labels, preds, nt, weights))
    with np.errstate(all="ignore"):
        assert_same(ours("pr_curve", labels, preds, nt, weights), ref)


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


def test_pr_curve_weight_arrays_broadcast() -> None:
    labels, preds = _labels.reshape(20, 20), _preds.reshape(20, 20)
    for weights in (_rng.random((20, 20)), _rng.random(20), [1.5] * 20, np.float64(2)):
        ref = torch_summary.pr_curve(TAG, labels, preds, 127, weights)
        assert_same(ours("pr_curve", labels, preds, 127, weights), ref)
    labels1 = _labels[:20].reshape(20, 1)
    w = _rng.random((1, 20))
    ref = torch_summary.pr_curve(TAG, labels1, preds, 127, w)
    assert_same(ours("pr_curve", labels1, preds, 127, w), ref)


def test_pr_curve_rank_above_ring_limit() -> None:
    """More than 8 dimensions: flattened in the trainer, the curve is the same."""
    shape = (1,) * 8 + (400,)
    labels, preds = _labels.reshape(shape), _preds.reshape(shape)
    ref = torch_summary.pr_curve(TAG, labels, preds, 127, None)
    assert_same(ours("pr_curve", labels, preds, 127, None), ref)


# -- pr_curve_raw ----------------------------------------------------------------

_c = _rng.random(10)
PR_RAW_CASES: dict[str, list[Any]] = {
    "f64": [_c] * 6,
    "f32": [_c.astype(np.float32)] * 6,
    "ints": [list(range(5))] * 6,
    "bools": [[True, False]] * 6,
    "mixed": [_c.astype(np.float16), _c, (_c * 9).astype(np.int64), _c, _c, _c],
    "2d": [_c.reshape(2, 5)] * 6,
    "torch": [torch.from_numpy(_c)] * 6,
    "torch-grad": [torch.ones(3, requires_grad=True), torch.ones(3, dtype=torch.float64)] * 3,
    "uint64": [np.array([2**64 - 1, 3], np.uint64)] * 6,
    "object": [np.array([1.5, 2], object)] * 6,
    "empty": [[]] * 6,
    "huge": [[1e300, -1e300, np.nan]] * 6,
}


@pytest.mark.parametrize("name", sorted(PR_RAW_CASES))
def test_pr_curve_raw_equals_torch(name: str) -> None:
    args = PR_RAW_CASES[name]
    ref_args = [a.detach() if isinstance(a, torch.Tensor) else a for a in args]  # torch: no grad
    for nt in [127, 500, 3, 0, np.int64(5)]:
        ref = torch_summary.pr_curve_raw(TAG, *ref_args, num_thresholds=nt)
        assert_same(ours("pr_curve_raw", *args, nt, None), ref)


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


# -- golden files ----------------------------------------------------------------


def test_golden_histograms(request: pytest.FixtureRequest) -> None:
    x = np.linspace(-3, 5, 200, dtype=np.float32)
    golden(request, "histogram/tensorflow", ours("histogram", x, "tensorflow", None))
    golden(request, "histogram/tensorflow_max_bins_7", ours("histogram", x, "tensorflow", 7))
    golden(request, "histogram/auto", ours("histogram", x, "auto", None))
    golden(request, "histogram/edges", ours("histogram", x, [-1, 0, 1, 10], None))
    raw = ours("histogram_raw", 0, 9, 3, 12, 50, [1.0, 5.0, 10.0], [1, 0, 2])
    golden(request, "histogram_raw/basic", raw)


def test_golden_pr_curves(request: pytest.FixtureRequest) -> None:
    labels = np.array([0, 1, 1, 0, 1, 0, 1, 1])
    preds = np.array([0.1, 0.9, 0.6, 0.4, 0.75, 0.2, 0.3, 0.99])
    golden(request, "pr_curve/basic", ours("pr_curve", labels, preds, 5, None))
    weighted = ours("pr_curve", labels, preds, 127, np.arange(8.0))
    golden(request, "pr_curve/weighted_127", weighted)
    c = [np.array([3.0, 2, 1]), [1, 1, 0], [0, 0, 1], [0, 1, 2], [0.75, 0.66, 1], [1, 0.66, 0.33]]
    golden(request, "pr_curve_raw/basic", ours("pr_curve_raw", *c, 3, None))


def test_golden_tensors(request: pytest.FixtureRequest) -> None:
    golden(request, "tensor/float32", ours("tensor", torch.arange(6.0).reshape(2, 3)))
    golden(
        request, "tensor/float16", ours("tensor", torch.tensor([1.5, -0.0], dtype=torch.float16))
    )
    golden(request, "tensor/complex64", ours("tensor", torch.tensor([1 + 2j])))
    golden(request, "tensor/bool_0d", ours("tensor", torch.tensor(True)))


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
