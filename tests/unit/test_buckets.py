"""Tests for ``daemon/buckets.py``'s one pass over float32 values: every number equals what
torch's ``make_histogram(values.astype(float), default_bins)`` computes (``sum_squares`` to
1e-13 relative, see the module docstring), on large arrays (the pass applies from
``_LEAF`` values on) built to hit every bucket edge, its float32 neighbours, both
zeros, subnormals, infinities, NaN and the pairwise sum's uneven splits.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch.utils.tensorboard import summary as torch_summary

from summaryd import limits
from summaryd.daemon import buckets, encode_numeric

LEAF = buckets._LEAF
EDGES = np.array(limits.tensorflow_bins())
SQUARES_RTOL = 1e-13
torch_histogram: Any = torch_summary.histogram  # untyped


def _edge_values() -> np.ndarray:
    """Every default edge in float32, its float32 neighbours, and the special values."""
    e = EDGES.astype(np.float32)
    inf = np.float32(np.inf)
    special = np.array(
        [0.0, -0.0, np.nan, np.inf, -np.inf, 1e-45, -1e-45, 1e-38, 3.4e38, -3.4e38, 1e20, -1e20],
        np.float32,
    )
    bits = np.array([1, 0x80000001, 0x7F800001, 0xFF800001, 0x7FC00001], np.uint32)
    return np.concatenate(
        [e, np.nextafter(e, inf), np.nextafter(e, -inf), special, bits.view("f4")]
    )


EDGE_VALUES = _edge_values()


def _reference(x: np.ndarray) -> dict[str, Any]:
    """torch's numbers: ``np.histogram`` and the float64 statistics of ``x.astype(float)``."""
    with np.errstate(all="ignore"):  # signalling NaN casts
        a = x.astype(float)
        return {
            "counts": np.histogram(a, bins=EDGES)[0],
            "lo": a.min(),
            "hi": a.max(),
            "sum": a.sum(),
            "squares": a.dot(a),
        }


def _same_float(a: float, b: float) -> bool:
    return np.float64(a).tobytes() == np.float64(b).tobytes()


def check(x: np.ndarray) -> buckets.Float32Stats:
    with np.errstate(invalid="ignore"):  # signalling NaN casts, as in torch's astype
        got = buckets.float32_stats(x)
    assert got is not None
    ref = _reference(x)
    np.testing.assert_array_equal(got.counts, ref["counts"])
    if got.total is not None:
        assert _same_float(got.total, ref["sum"]), (got.total, ref["sum"])
    else:
        assert np.isnan(ref["sum"])
    squares = ref["squares"]
    assert (
        _same_float(got.squares, squares)
        or math.isclose(got.squares, squares, rel_tol=SQUARES_RTOL)
        or math.isnan(got.squares)
        and math.isnan(squares)  # as the differential tests compare it
    ), (got.squares, squares)
    for mine, theirs in ((got.lo, ref["lo"]), (got.hi, ref["hi"])):
        if mine is not None:
            assert _same_float(mine, theirs), (mine, theirs)
    if got.lo is None or got.hi is None:  # only where numpy's lanes decide
        neg, pos = np.any(x.view(np.uint32) == 0x80000000), np.any(x.view(np.uint32) == 0)
        assert np.isnan(x).any() or (neg and pos)
    return got


@pytest.fixture(params=["compiled", "numpy"])
def counting(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each test that takes it runs with the C counting loop (``_buckets.c``) and without."""
    if request.param == "compiled" and not buckets.COMPILED:
        pytest.skip("summaryd.daemon._buckets not built")
    if request.param == "numpy":
        monkeypatch.setattr(buckets, "COMPILED", False)
    return str(request.param)


@pytest.mark.parametrize("n", [0, 1, 3, 4, 5, 1000, 1 << 18, (1 << 18) + 3])
def test_tensorflow_counts_at_every_edge(counting: str, n: int) -> None:
    """Every edge and neighbour, both zeros, subnormals, NaN payloads, infinities, plus
    ``n`` random values (lengths around the C loop's and the numpy chunks' sizes)."""
    rng = np.random.default_rng(n)
    x = np.concatenate([EDGE_VALUES, rng.standard_normal(n, dtype=np.float32)])
    with np.errstate(invalid="ignore"):
        ref = np.histogram(x.astype(float), bins=EDGES)[0]
    np.testing.assert_array_equal(buckets.tensorflow_counts(x), ref)


@pytest.mark.parametrize("offset", [1, 2, 3])
def test_unaligned_values_as_a_ring_holds_them(counting: str, offset: int) -> None:
    """Arrays read from a ring start at any byte: counted and summed all the same."""
    rng = np.random.default_rng(offset)
    x = rng.standard_normal(3 * LEAF + 1, dtype=np.float32)
    x[rng.integers(0, x.size, EDGE_VALUES.size)] = EDGE_VALUES
    raw = bytes(offset) + x.tobytes()
    unaligned = np.frombuffer(raw, np.float32, count=x.size, offset=offset)
    assert not unaligned.flags.aligned
    with np.errstate(invalid="ignore"):
        ref = np.histogram(x.astype(float), bins=EDGES)[0]
    np.testing.assert_array_equal(buckets.tensorflow_counts(unaligned), ref)
    check(unaligned)


@pytest.mark.skipif(not buckets.COMPILED, reason="summaryd.daemon._buckets not built")
def test_compiled_count_checks_its_buffers() -> None:
    """Sizes that do not match the shift, an odd byte count, a read-only ``cells`` or an
    unaligned table are refused before any index is read."""
    from summaryd.daemon import _buckets

    _, threshold, shift, _ = buckets._table("f")
    bits = np.zeros(8, np.uint32)
    cells = np.zeros(threshold.size + 1, np.int64)
    _buckets.count(bits, threshold, cells, shift)
    assert cells.sum() == 8
    with pytest.raises(ValueError, match="shift"):
        _buckets.count(bits, threshold, cells, 40)
    with pytest.raises(ValueError, match="sizes"):
        _buckets.count(bits, threshold, cells, shift + 1)
    with pytest.raises(ValueError, match="sizes"):
        _buckets.count(bits, threshold[:-1], cells, shift)
    with pytest.raises(ValueError, match="sizes"):
        _buckets.count(bits.view(np.uint8)[:7], threshold, cells, shift)
    shifted = np.zeros(threshold.nbytes + 1, np.uint8)[1:]
    shifted[:] = threshold.view(np.uint8)
    with pytest.raises(ValueError, match="unaligned"):
        _buckets.count(bits, shifted, cells, shift)
    ro = np.zeros_like(cells)
    ro.setflags(write=False)
    with pytest.raises(TypeError):
        _buckets.count(bits, threshold, ro, shift)


def test_this_numpy_sums_as_the_pass_does() -> None:
    """Else the pass never applies and these tests prove nothing about it."""
    assert buckets.sums_as_numpy()


@pytest.mark.parametrize("n", [1, 7, 8, 128, 129, LEAF, LEAF + 1, 2 * LEAF + 7, 999_999])
def test_pairwise_sum_is_numpys(n: int) -> None:
    rng = np.random.default_rng(n)
    x = rng.standard_normal(n) * 10.0 ** rng.integers(-12, 13, n)
    assert _same_float(buckets.pairwise_sum(x), x.sum())
    lengths = buckets._leaves(n)
    assert sum(lengths) == n and max(lengths) <= LEAF


def test_small_or_other_arrays_take_the_other_path() -> None:
    assert buckets.float32_stats(np.ones(LEAF - 1, np.float32)) is None
    assert buckets.float32_stats(np.ones(LEAF, np.float64)) is None
    assert buckets.float32_stats(np.ones(2 * LEAF, np.float32)[::2]) is None


@pytest.mark.parametrize(
    "n", [LEAF, LEAF + 1, 3 * LEAF + 5, 1_000_000, 2_500_001], ids=lambda n: f"n{n}"
)
@pytest.mark.parametrize("kind", ["normal", "uniform", "wide", "relu", "edges"])
def test_float32_stats_are_torchs(counting: str, kind: str, n: int) -> None:
    rng = np.random.default_rng(n)
    if kind == "normal":
        x = rng.standard_normal(n, dtype=np.float32)
    elif kind == "uniform":
        x = rng.random(n, dtype=np.float32)
    elif kind == "wide":  # every exponent, both signs, subnormals: the whole table
        bits = rng.integers(0, 1 << 32, n, dtype=np.uint64).astype(np.uint32)
        x = bits.view(np.float32)
        x = np.where(np.isfinite(x), x, np.float32(1.5))
    elif kind == "relu":  # min exactly 0.0, no -0.0: the pass answers alone
        x = np.maximum(rng.standard_normal(n, dtype=np.float32), np.float32(0))
    else:  # every edge and neighbour, many times, at random places
        x = rng.standard_normal(n, dtype=np.float32) * np.float32(1e3)
        x[rng.integers(0, n, 20_000)] = rng.choice(EDGE_VALUES, 20_000)
    got = check(x)
    if kind != "edges":
        assert got.lo is not None and got.hi is not None


@pytest.mark.parametrize("case", ["nan", "both_zeros", "neg_zero_min", "all_zeros", "inf"])
def test_extremes_numpy_picks(case: str) -> None:
    """NaN and mixed zeros at an extreme are left to the float64 copy (None); one zero sign
    or infinities are answered from float32."""
    rng = np.random.default_rng(5)
    x = np.abs(rng.standard_normal(3 * LEAF, dtype=np.float32)) + np.float32(1)
    where = rng.integers(0, x.size, 10)
    if case == "nan":
        x[where] = np.nan
    elif case == "both_zeros":
        x[where[:5]], x[where[5:]] = np.float32(0.0), np.float32(-0.0)
    elif case == "neg_zero_min":
        x[where] = np.float32(-0.0)
    elif case == "all_zeros":
        x[:] = np.float32(0.0)
    else:
        x[where[:5]], x[where[5:]] = np.inf, -np.inf
    got = check(x)
    assert (got.lo is None) == (case in ("nan", "both_zeros"))


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    n=st.integers(LEAF, 4 * LEAF + 17),
    seed=st.integers(0, 2**32 - 1),
    scale=st.sampled_from([1e-40, 1e-12, 1.0, 1e10, 1e30]),
    planted=st.lists(st.floats(width=32, allow_nan=True, allow_infinity=True), max_size=30),
    edges=st.integers(0, 2000),
)
def test_float32_stats_any_values(
    n: int, seed: int, scale: float, planted: list[float], edges: int, counting: str
) -> None:
    """Random lengths (uneven pairwise splits), magnitudes, planted arbitrary float32 values
    and edge values at random places."""
    rng = np.random.default_rng(seed)
    with np.errstate(over="ignore"):
        x = (rng.standard_normal(n) * scale).astype(np.float32)
    if planted:
        x[rng.integers(0, n, len(planted))] = np.array(planted, np.float32)
    if edges:
        x[rng.integers(0, n, edges)] = rng.choice(EDGE_VALUES, edges)
    check(x)


@pytest.mark.parametrize("case", ["normal", "nan", "both_zeros", "edges"])
@pytest.mark.parametrize("max_bins", [None, 7])
def test_histogram_of_float32_equals_torchs(
    case: str, max_bins: int | None, monkeypatch: pytest.MonkeyPatch, counting: str
) -> None:
    """The encoder with the pass, and without it (a numpy that would sum otherwise), against
    torch's ``summary.histogram``: every field equal, ``sum_squares`` to 1e-13."""
    rng = np.random.default_rng(11)
    x = rng.standard_normal(1_000_003, dtype=np.float32)
    if case == "nan":
        x[rng.integers(0, x.size, 50)] = np.nan
    elif case == "both_zeros":
        x = np.abs(x)
        x[:3], x[-3:] = np.float32(0.0), np.float32(-0.0)
    elif case == "edges":
        x[rng.integers(0, x.size, EDGE_VALUES.size)] = EDGE_VALUES
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = torch_histogram("h", x, EDGES.tolist(), max_bins).value[0].histo
    params = {"bins": "tensorflow", "max_bins": max_bins}
    squares, ref.sum_squares = ref.sum_squares, 0.0
    for fast in (True, False):
        if not fast:
            monkeypatch.setattr(buckets, "sums_as_numpy", lambda: False)
        (summary,) = encode_numeric.histogram("h", params, [x])
        got = summary.value[0].histo
        assert math.isclose(got.sum_squares, squares, rel_tol=SQUARES_RTOL) or (
            math.isnan(got.sum_squares) and math.isnan(squares)
        )
        got.sum_squares = 0.0
        assert got.SerializeToString() == ref.SerializeToString(), fast
