"""The histogram, histogram_raw, pr_curve and pr_curve_raw encoders against torch's summaries.

Every case runs as the daemon would (``encode_numeric_helpers.ours``); the
Summary must serialize to exactly the bytes of the one torch 2.13's
``torch.utils.tensorboard.summary`` builds for the same call (bucket limits
and counts, float32 roundings, NaN bits, metadata). Also: the default-bucket
counting (bit-pattern table) equals ``np.histogram`` on every edge, its
neighbours and the special values; Hypothesis feeds arbitrary float arrays to
the histogram and arbitrary values to pr_curve (equal to torch's); golden files
pin a few representative histograms and PR curves. The four share one seeded
generator, drawn from in this module's order.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from torch.utils.tensorboard import SummaryWriter as TorchWriter
from torch.utils.tensorboard import summary as torch_summary
from torch.utils.tensorboard._convert_np import make_np

from summaryd import limits
from summaryd.daemon import buckets

from .encode_numeric_helpers import TAG, assert_same, golden, ours, torch_ref


@pytest.fixture(scope="module")
def default_bins(tmp_path_factory: pytest.TempPathFactory) -> list[float]:
    """torch's own ``SummaryWriter.default_bins`` (not our copy of its loop)."""
    w = TorchWriter(str(tmp_path_factory.mktemp("torch-bins")))
    try:
        return list(w.default_bins)
    finally:
        w.close()


def _builtin_type(exc: BaseException) -> type[BaseException]:
    """The builtin class of an exception (numpy raises private subclasses of TypeError)."""
    return next(c for c in type(exc).__mro__ if c.__module__ == "builtins")


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
