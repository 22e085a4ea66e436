"""TensorBoard's default histogram buckets counted without sorting, and one pass over float32.

torch's ``add_histogram(bins="tensorflow")`` is ``make_histogram(values.astype(float),
default_bins)``: ``np.histogram`` over 1,548 exponential edges (``limits.tensorflow_bins``),
which sorts the values (~25 ms for 1e6), then ``min``, ``max``, ``sum`` and
``dot`` of the float64 values.  This module computes the same numbers faster.

Buckets (``tensorflow_counts``).  Each value's bucket comes from its bit pattern
instead of a sort: a table over sign, exponent and 4 mantissa bits (each cell holds
at most one bucket edge, since 1 + 1/16 < 1.1) plus one exact integer comparison
with the edge's bit pattern, then ``bincount`` (~3 ms for 1e6).  It counts exactly
what ``np.histogram(values.astype(float), bins=default_bins)`` counts: ``[e_i,
e_i+1)`` buckets, the last one closed, -0.0 with 0.0, NaN and values beyond
+-9.9e19 in none; a unit test checks every edge, its neighbours and the special
values against ``np.histogram``.

Float32 values (``float32_stats``, the common input: torch tensors and numpy
arrays of float32).  torch's statistics read the float64 copy, 8 MB for 1e6
values, written and then read three times from memory; here the values go once
through the cache in slices, each slice bucketed, cast to float64 in a small
buffer and summed there.  The results equal torch's:

* ``sum``: numpy sums a contiguous float64 array pairwise (``pairwise_sum`` in
  numpy's ``loops_utils.h``): halves of ``n // 2`` rounded down to a multiple of 8,
  down to blocks of 128.  The slices here are that tree's subtrees (of at most
  ``_LEAF`` values), each summed by numpy itself, and the subtree sums are added in
  the tree's order: the same additions in the same order, so the same bits.  Not
  for a NaN sum: which of two NaNs an addition returns depends on the operand
  order the C compiler chose, so that sum comes from the float64 copy.  The first
  use checks the tree against ``np.add.reduce`` on arrays whose sum depends on the
  order; with a numpy that sums otherwise the histogram is computed torch's way.
* ``min``/``max``: the float64 cast is exact and monotonic, so they are float32's,
  cast; except where the choice depends on numpy's SIMD lanes (a NaN, whose bits
  are the one numpy meets; -0.0 and 0.0 both present at an extreme), which come
  from the float64 copy as torch's do.
* ``sum_squares`` (``values.dot(values)``, BLAS ``ddot``): the sum of the slices'
  ``dot``; like ddot's own result it depends on how the sum is split (torch's
  trainer splits it over its BLAS threads), so it is equal to torch's to about 1e-15
  relative, not bit for bit (the differential tests allow 1e-12).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any, NamedTuple

import numpy as np

from summaryd.limits import tensorflow_bins

try:
    from ._buckets import count as _compiled_count
except ImportError:  # not compiled (an install without a compiler): numpy does the same
    _compiled_count = None  # type: ignore[assignment]

# The C loop (``_buckets.c``) counts into int64 cells.
COMPILED = _compiled_count is not None and np.dtype(np.intp).itemsize == 8

TF_EDGES = np.array(tensorflow_bins())
TF_BUCKETS = len(TF_EDGES) - 1
# Bucket indices in the tables: 0 below the first edge, 1..TF_BUCKETS the buckets,
# TF_BUCKETS + 1 above the last edge or NaN.  0 and TF_BUCKETS + 1 are not counted.
_MANTISSA_BITS = 4
_CHUNK = 1 << 18  # values per pass: the temporaries stay in cache and are reused


def _bucket_of(x: np.ndarray) -> np.ndarray:
    """Each float64 value's bucket index as ``np.histogram`` counts it (see above)."""
    j = np.searchsorted(TF_EDGES, x, side="right")  # NaN sorts last: TF_BUCKETS + 1
    j[x == TF_EDGES[-1]] = TF_BUCKETS  # the last bucket is closed
    return j


@functools.cache
def _table(char: str) -> tuple[np.ndarray, np.ndarray, int, type]:
    """``(index -> bucket, cell -> threshold, shift, uint type)`` for float32 ("f") or float64.

    A cell is the floats sharing sign, exponent and the top mantissa bits: a
    run of consecutive bit patterns, over which the value moves away from 0,
    so the bucket changes at most once inside it (one edge at most: the cell
    spans a ratio of 17/16 at most, the edges 1.1).  A value with bits ``b``
    in cell ``k`` counts at index ``k + (b >= threshold[k])``: ``threshold``
    is the first bit pattern of the cell's second bucket (all ones when the
    cell has one bucket), found by bisection against ``_bucket_of``.  The
    second bucket of cell ``k`` is the first bucket of cell ``k + 1`` (the
    next bit patterns), so one index serves both; the build checks it.
    """
    ftype: Any = np.float32 if char == "f" else np.float64
    itype: Any = np.uint32 if char == "f" else np.uint64
    bits = np.dtype(ftype).itemsize * 8
    exp_bits = 8 if char == "f" else 11
    key_bits = 1 + exp_bits + _MANTISSA_BITS
    shift = bits - key_bits
    k: np.ndarray = np.arange(1 << key_bits, dtype=itype)
    lo = k << itype(shift)
    hi = lo | itype((1 << shift) - 1)

    def bucket(b: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore"):  # NaN bit patterns
            return _bucket_of(b.view(ftype).astype(np.float64))

    first, last = bucket(lo), bucket(hi)
    # +-inf and NaN share cells; none of them is counted, so the cell needs no split.
    special = ((k >> itype(_MANTISSA_BITS)) & itype((1 << exp_bits) - 1)) == (1 << exp_bits) - 1
    first[special] = 0
    split = (first != last) & ~special
    if np.any(np.abs(first[split] - last[split]) != 1):  # pragma: no cover - by construction
        raise AssertionError("a cell holds more than one bucket edge")
    a, b = lo[split], hi[split]  # bucket(a) == first, bucket(b) != first
    want = first[split]
    while np.any(b - a > 1):
        mid = a + (b - a) // itype(2)
        same = bucket(mid) == want
        a = np.where(same, mid, a)
        b = np.where(same, b, mid)
    threshold = np.full(len(k), np.iinfo(itype).max, itype)
    threshold[split] = b
    at = np.append(first, 0).astype(np.intp)
    if np.any(last[split] != at[1:][split]):  # pragma: no cover - by construction
        raise AssertionError("a cell's second bucket is not the next cell's first")
    return at, threshold, shift, itype


def _count_cells(bits: np.ndarray, cells: np.ndarray, k: np.ndarray | None) -> None:
    """Add the table indices of contiguous ``bits`` (one slice) to ``cells``; ``k`` is
    scratch of its size, None to count with the C loop (float32 bits, ``COMPILED``)."""
    at, threshold, shift, itype = _table("f" if bits.dtype == np.uint32 else "d")
    if k is None:
        # One pass in C, ~0.8 ms for 1e6 values where the numpy steps below take ~3.
        _compiled_count(bits, threshold, cells, shift)
        return
    if itype is np.uint64:
        np.right_shift(bits, np.uint64(shift), out=k.view(np.uint64))
    else:
        np.right_shift(bits, shift, out=k, casting="unsafe")
    k += bits >= threshold.take(k, mode="clip")
    cells += np.bincount(k, minlength=len(at))


def _buckets(cells: np.ndarray, char: str) -> np.ndarray:
    """Table index counts -> the TF_BUCKETS bucket counts."""
    counts = np.bincount(_table(char)[0], weights=cells, minlength=TF_BUCKETS + 2)
    return counts[1 : TF_BUCKETS + 1].astype(np.intp)


def tensorflow_counts(x: np.ndarray) -> np.ndarray:
    """``np.histogram(x.astype(float), bins=default_bins)[0]`` for a contiguous float32/64 ``x``."""
    at, _, _, itype = _table(x.dtype.char)
    bits: np.ndarray = x.view(itype)
    cells = np.zeros(len(at), np.intp)
    if COMPILED and itype is np.uint32:
        _count_cells(bits, cells, None)
        return _buckets(cells, x.dtype.char)
    buf = np.empty(min(_CHUNK, len(bits)), np.intp)
    for i in range(0, len(bits), _CHUNK):
        b = bits[i : i + _CHUNK]
        _count_cells(b, cells, buf[: len(b)])
    return _buckets(cells, x.dtype.char)


# -- one pass over float32 values ----------------------------------------------------

# Subtrees of numpy's pairwise sum summed by numpy: 2**16 values (256 KB of float32,
# 512 KB as float64 and as indices): fewer numpy calls per value than smaller
# slices, more of the slice in cache than larger ones (measured: 2**15 and 2**18 slower).
_LEAF = 1 << 16
_MIN_VALUES = _LEAF  # fewer values: one slice, nothing to gain over torch's way
_NEG_ZERO = np.uint32(0x80000000)


def _leaves(n: int) -> list[int]:
    """The lengths of the subtrees of at most ``_LEAF`` values of numpy's pairwise sum of
    ``n`` values, left to right (its split: ``n // 2`` rounded down to a multiple of 8)."""
    if n <= _LEAF:
        return [n]
    half = n // 2 - (n // 2) % 8
    return _leaves(half) + _leaves(n - half)


def _tree(n: int, sums: Iterator[float]) -> float:
    """The subtree sums (in ``_leaves(n)`` order) added as numpy's pairwise sum adds them."""
    if n <= _LEAF:
        return next(sums)
    half = n // 2 - (n // 2) % 8
    left = _tree(half, sums)
    return left + _tree(n - half, sums)


def pairwise_sum(x: np.ndarray) -> float:
    """``x.sum()`` for contiguous float64 ``x``, subtree by subtree (as ``float32_stats``)."""
    sums, start = [], 0
    for length in _leaves(len(x)):
        sums.append(float(np.add.reduce(x[start : start + length])))
        start += length
    return 0.0 + _tree(len(x), iter(sums))  # numpy starts the reduction from add's identity


@functools.cache
def sums_as_numpy() -> bool:
    """Whether ``pairwise_sum`` equals this numpy's ``sum`` bit for bit, on values whose sum
    depends on the order of the additions (magnitudes 1e-8..1e8, both signs), at lengths
    that make the tree split unevenly."""
    rng = np.random.default_rng(20261204)
    for n in (_LEAF + 1, 2 * _LEAF + 7, 5 * _LEAF + 13, 1_000_000):
        x = rng.standard_normal(n) * 10.0 ** rng.integers(-8, 9, n)
        if pairwise_sum(x) != float(np.add.reduce(x)):
            return False
    return True


class Float32Stats(NamedTuple):
    """torch's histogram numbers for float32 values; ``lo``, ``hi`` and ``total`` None where
    they must come from the float64 copy (a NaN, or both zeros at an extreme)."""

    counts: np.ndarray
    lo: float | None
    hi: float | None
    total: float | None
    squares: float


def _zero(bits: np.ndarray) -> float | None:
    """The zero numpy's float64 min/max returns when an extreme is zero: the one sign
    present, or None with both present (then the SIMD lanes decide)."""
    negative = bool(np.any(bits == _NEG_ZERO))
    if negative and bool(np.any(bits == 0)):
        return None
    return -0.0 if negative else 0.0


def float32_stats(flat: np.ndarray) -> Float32Stats | None:
    """Buckets, min, max, sum and sum of squares of contiguous float32 ``flat`` as torch
    computes them from ``flat.astype(float)`` (see the module docstring), in one pass; None
    when this path does not apply (another dtype, few values, a numpy that sums otherwise)."""
    n = flat.size
    if flat.dtype != np.float32 or not flat.flags.c_contiguous or n < _MIN_VALUES:
        return None
    if not sums_as_numpy():
        return None
    bits = flat.view(np.uint32)
    lengths = _leaves(n)
    size = max(lengths)
    k = None if COMPILED else np.empty(size, np.intp)
    f64 = np.empty(size, np.float64)
    cells = np.zeros(len(_table("f")[0]), np.intp)
    sums, squares, lows, highs, start = [], 0.0, [], [], 0
    nan = False
    with np.errstate(all="ignore"):
        for length in lengths:
            stop = start + length
            _count_cells(bits[start:stop], cells, None if k is None else k[:length])
            if not nan:  # after a NaN, only the buckets are still needed
                x, c = flat[start:stop], f64[:length]
                lows.append(x.min())
                highs.append(x.max())
                nan = lows[-1] != lows[-1]  # min and max are NaN when a NaN is among them
                np.copyto(c, x, casting="unsafe")  # astype(float)'s cast
                sums.append(float(np.add.reduce(c)))
                squares += float(c.dot(c))
            start = stop
    if nan:  # NaN's bits in min, max and sum are the ones numpy meets: the float64 copy's
        return Float32Stats(_buckets(cells, "f"), None, None, None, float("nan"))
    total: float | None = 0.0 + _tree(n, iter(sums))
    if total != total:  # +inf and -inf: a NaN made by the addition, its bits again numpy's
        total = None
    lo: float | None = float(np.min(lows))
    hi: float | None = float(np.max(highs))
    if lo == 0 or hi == 0:
        zero = _zero(bits)
        lo = zero if lo == 0 else lo
        hi = zero if hi == 0 else hi
    return Float32Stats(_buckets(cells, "f"), lo, hi, total, squares)
