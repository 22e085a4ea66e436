"""Caller-side validation and conversion: histogram[_raw] and tensor (pr_curve[_raw]: convert_pr).

Each returns ``(params, arrays)`` for one array record (see ``wire.py``);
numpy is imported at the top, torch only inside the functions that meet a
tensor, never by ``import summaryd``.

Theory of operation: the caller pays for validation and ``make_np`` only.
torch's ``summary.histogram``/``pr_curve``/``tensor_proto`` run numpy and
protobuf over the arguments; every exception they would raise for a bad
argument is raised here, at the call site, as our subclass of the same type
(see each function for the list), while the arithmetic (``np.histogram``,
``compute_curve``, the protobuf value lists) runs in the daemon on the raw
arrays sent here.  Checks that would need a pass over a large array have an
O(1) proof first (``histogram`` with TensorBoard's default buckets: the first
value inside the buckets proves the histogram is not empty).

Arrays travel raw when their dtype is one the transport carries (bool,
int8..int64, uint8..uint64, float16/32/64, any byte order: ``summaryd.arrays``).
Anything else (object, str, complex, datetime, longdouble) is rare and goes
through the conversion torch itself applies (``astype(float)`` for histogram
values and PR-curve labels), so its values and its errors are torch's.
"""

from __future__ import annotations

import operator
from typing import Any

import numpy as np

from .convert import _is_torch_tensor, _make_np, reraise
from .errors import (
    ArgumentAttributeError,
    ArgumentIndexError,
    ArgumentTypeError,
    ArgumentValueError,
    ArgumentZeroDivisionError,
    UnsupportedValueError,
)
from .limits import (
    ESTIMATORS,
    MAX_BINS,
    estimator_bin_count,
    tensorflow_bins,
)

Payload = tuple[dict[str, Any], list[np.ndarray]]


# dtypes the ring carries as they are (``summaryd.arrays``: kinds b, i, u, f).
_RAW_KINDS = frozenset("biuf")


_TF_BINS = tensorflow_bins()
_TF_EDGE = _TF_BINS[-1]  # the largest edge; -_TF_EDGE is the smallest
_TF_NUM_BINS = len(_TF_BINS) - 1


def subsampled_bins(num_bins: int, max_bins: int | None) -> int:
    """How many buckets torch's ``make_histogram`` keeps after merging for ``max_bins``."""
    if max_bins is None or num_bins <= max_bins:
        return num_bins
    subsampling = num_bins // max_bins
    return -(-num_bins // subsampling)


# -- helpers ---------------------------------------------------------------------


def _raw(a: np.ndarray) -> bool:
    """Whether the ring carries ``a`` as it is (no float128, object, str, complex...)."""
    return a.dtype.kind in _RAW_KINDS and a.dtype.itemsize <= 8


def _astype_float(a: np.ndarray, name: str) -> np.ndarray:
    """torch's ``.astype(float)`` for dtypes the ring does not carry: its values, its errors."""
    try:
        return a.astype(np.float64)
    except Exception as exc:
        reraise(exc, name, "numbers")


def _tensor_np(t: Any, name: str) -> np.ndarray:
    """A tensor's values as numpy, exactly (bfloat16 as float32; make_np rounds it to float16)."""
    import torch

    t = t.detach()
    if t.dtype == torch.bfloat16:
        t = t.float()
    try:
        return t.cpu().numpy()  # type: ignore[no-any-return]
    except (TypeError, RuntimeError) as exc:
        raise UnsupportedValueError(f"{name}: a tensor numpy cannot hold ({exc})") from None


def _to_double(x: Any, name: str) -> float:
    """A value protobuf takes for a ``double`` field, as protobuf converts it.

    upb refuses numpy arrays (even 0-d) and otherwise calls ``PyFloat_AsDouble``:
    ``__float__`` or ``__index__``, never parsing a str.
    """
    if isinstance(x, (float, int)):
        try:
            return float(x)
        except OverflowError as exc:
            reraise(exc, name, "a number that fits a double")
    if isinstance(x, (str, bytes, bytearray, np.ndarray, complex)):
        raise ArgumentTypeError(f"{name}: expected a real number, got {type(x).__name__}")
    try:
        return float(x)
    except RuntimeError as exc:  # a multi-element tensor
        raise UnsupportedValueError(f"{name}: expected a real number ({exc})") from None
    except Exception as exc:
        reraise(exc, name, "a real number")


def _length(x: Any, name: str) -> int:
    try:
        return len(x)
    except Exception as exc:
        reraise(exc, name, "a sequence of numbers (torch calls len() on it)")


def _double_list(x: Any, n: int, name: str) -> np.ndarray:
    """A 1-d array of what protobuf's repeated ``double`` field would hold for ``x`` (``n`` items).

    numpy and tensor inputs of a numeric dtype travel raw (their ``tolist``
    converts as protobuf does); anything else is converted item by item with
    protobuf's rule.
    """
    if isinstance(x, np.ndarray):
        if x.ndim == 1 and _raw(x):
            return x
        if x.ndim > 1 and n:
            raise ArgumentTypeError(
                f"{name}: items must be numbers, got arrays of shape {x.shape[1:]}"
            )
    elif _is_torch_tensor(x):
        arr = _tensor_np(x, name)
        if arr.ndim == 1 and _raw(arr):
            return arr
        x = list(x)
    return np.array([_to_double(item, f"{name}[{i}]") for i, item in enumerate(x)], np.float64)


# -- histogram -------------------------------------------------------------------


def _parse_bins(bins: Any) -> tuple[Any, np.ndarray | None]:
    """``(spec, edges)``: "tensorflow", an estimator name, an int, or None with explicit edges.

    ``np.histogram``'s ``_get_bin_edges`` rules and errors, in its order.
    """
    if isinstance(bins, str):
        if bins == "tensorflow":
            return "tensorflow", None
        if bins not in ESTIMATORS:
            raise ArgumentValueError(
                f"bins: {bins!r} is not a valid estimator for `bins` "
                f"(expected 'tensorflow', one of {sorted(ESTIMATORS)}, an int or bin edges)"
            )
        return str(bins), None
    try:
        ndim = np.ndim(bins)
    except Exception as exc:
        reraise(exc, "bins", "an int, a str or an array of bin edges")
    if ndim == 0:
        try:
            n = operator.index(bins)
        except TypeError:
            raise ArgumentTypeError(
                f"bins: `bins` must be an integer, a string, or an array, got {type(bins).__name__}"
            ) from None
        if n < 1:
            raise ArgumentValueError(f"bins: `bins` must be positive, when an integer (got {n})")
        if n > MAX_BINS:
            raise ArgumentValueError(f"bins: summaryd allows at most {MAX_BINS} buckets, got {n}")
        return int(n), None
    if ndim != 1:
        raise ArgumentValueError(f"bins: `bins` must be 1d, when an array (got {ndim} dimensions)")
    try:
        edges = np.asarray(bins)
        decreasing = bool(np.any(edges[:-1] > edges[1:]))
    except Exception as exc:
        reraise(exc, "bins", "an increasing array of bin edges")
    if decreasing:
        raise ArgumentValueError("bins: `bins` must increase monotonically, when an array")
    if not _raw(edges):
        if edges.dtype.kind != "O":
            raise ArgumentTypeError(
                f"bins: bin edges must be real numbers, got dtype {edges.dtype}"
            )
        edges = _astype_float(edges, "bins")
    return None, edges


def _max_bins(max_bins: Any) -> int | float | None:
    """``max_bins`` as torch's arithmetic sees it: an int, a float-like number, or None.

    torch only compares and divides it (``num_bins > max_bins``, ``num_bins //
    max_bins``), so an int-like (``__index__``) is an int and any other real
    number a float; a str or None-like object fails the comparison (TypeError).
    """
    if max_bins is None:
        return None
    if isinstance(max_bins, (float, np.floating)):
        return float(max_bins)
    if not isinstance(max_bins, (str, bytes, bytearray)):
        try:
            return int(operator.index(max_bins))
        except TypeError:
            pass
        try:
            return float(max_bins)
        except Exception:
            pass
    raise ArgumentTypeError(f"max_bins: expected an int or None, got {type(max_bins).__name__}")


def _check_max_bins(num_bins: int, max_bins: int | float | None) -> int | None:
    """torch's merging arithmetic on ``num_bins`` buckets: its errors, or the int to send.

    ``num_bins // max_bins`` then ``np.pad``/``reshape`` by the quotient: a
    float ``max_bins`` below ``num_bins`` is a TypeError, 0 a ZeroDivisionError,
    a negative one a ValueError; a ``max_bins`` at or above ``num_bins`` (NaN
    included) changes nothing.
    """
    if max_bins is None or not num_bins > max_bins:
        return None
    if isinstance(max_bins, float):
        raise ArgumentTypeError(
            f"max_bins: {max_bins!r} is not an integer (torch reshapes by num_bins // max_bins)"
        )
    if max_bins == 0 or num_bins == 0:
        raise ArgumentZeroDivisionError("max_bins: must be positive (torch divides by it)")
    if max_bins < 0:
        raise ArgumentValueError(f"max_bins: must be positive, got {max_bins}")
    return max_bins


def _empty_error(num_bins: int, max_bins: int | None) -> None:
    """torch's "The histogram is empty": every count zero and more than one bucket kept."""
    if subsampled_bins(num_bins, max_bins) > 1:
        raise ArgumentValueError(
            "values: no value falls inside the bins (torch: The histogram is empty)"
        )


def histogram(values: Any, bins: Any, max_bins: Any) -> Payload:
    """Check ``add_histogram``'s arguments as torch's ``summary.histogram`` would use them.

    torch: ``make_np(values).astype(float)``; "The input has no element." for
    no values; ``np.histogram(values, bins)`` with ``bins='tensorflow'``
    replaced by ``default_bins`` (so an unknown estimator, a float or 2-d
    ``bins``, decreasing edges, and a non-finite range with an estimator or
    an int raise numpy's errors); ``max_bins`` merging (see
    ``_check_max_bins``); "The histogram is empty" when no value falls in the
    edges.  The emptiness check is O(1) when the first value lies inside the
    edges (the usual case), a pass over the values otherwise.

    Returns:
        params ``{"bins": "tensorflow" | estimator | int | None, "max_bins": int | None}``
        and arrays ``[values (1-d, raw dtype)]``, plus ``[edges]`` when ``bins`` is None.
    """
    arr = _make_np(values, "values")
    if not _raw(arr):
        arr = _astype_float(arr, "values")
    if arr.size == 0:
        raise ArgumentValueError(
            "values: expected at least one value (torch: The input has no element.)"
        )
    arr = arr.reshape(-1)
    spec, edges = _parse_bins(bins)
    mb = _max_bins(max_bins)
    if spec == "tensorflow":
        out_mb = _check_max_bins(_TF_NUM_BINS, mb)
        if not _inside_tensorflow_bins(arr):
            _empty_error(_TF_NUM_BINS, out_mb)
    elif edges is None:  # an estimator or a count: numpy takes the range from min and max
        if arr.dtype.kind == "f":
            lo, hi = arr.min(), arr.max()
            if not (np.isfinite(lo) and np.isfinite(hi)):
                raise ArgumentValueError(
                    f"values: autodetected range of [{float(lo)}, {float(hi)}] is not finite "
                    f"(bins={spec!r} needs finite values)"
                )
        if isinstance(spec, int):
            num_bins = spec
        elif not isinstance(mb, float):
            num_bins = MAX_BINS + 1  # the count is the daemon's: only max_bins <= 0 fails always
        elif mb < MAX_BINS:
            num_bins = estimator_bin_count(arr.astype(np.float64), spec)  # rare: a float max_bins
        else:
            num_bins = 0  # at most MAX_BINS buckets (or NaN): a float max_bins changes nothing
        out_mb = _check_max_bins(num_bins, mb)
    else:
        num_bins = max(len(edges) - 1, 0)
        out_mb = _check_max_bins(num_bins, mb)
        if len(edges) < 2:  # torch reads the last of no counts
            raise ArgumentIndexError(f"bins: expected at least two bin edges, got {len(edges)}")
        if not _inside_edges(arr, edges):
            _empty_error(num_bins, out_mb)
    params = {"bins": spec, "max_bins": out_mb}
    return params, [arr] if edges is None else [arr, edges]


def _inside_tensorflow_bins(arr: np.ndarray) -> bool:
    """Whether a value lies in TensorBoard's buckets (+-9.9e19): the first value, then all."""
    if arr.dtype.kind != "f":
        return True  # every int64/uint64 (and bool) lies inside +-9.9e19
    first = float(arr[0])
    if -_TF_EDGE <= first <= _TF_EDGE:
        return True
    # Compare in float64, as torch's astype(float) does: float16 cannot hold the edge.
    return bool(np.count_nonzero(np.abs(arr) <= np.float64(_TF_EDGE)))


def _inside_edges(arr: np.ndarray, edges: np.ndarray) -> bool:
    """Whether ``np.histogram(values, edges)`` counts any value: first value, then all."""
    e = edges.astype(np.float64)
    first = float(arr[0])
    if np.isfinite(e[0]) and np.isfinite(e[-1]) and e[0] <= first <= e[-1]:
        return True
    counts = np.histogram(arr.astype(np.float64), bins=edges)[0]
    return bool(counts.any())


# -- histogram_raw ---------------------------------------------------------------

_RAW_SCALARS = ("min", "max", "num", "sum", "sum_squares")


def histogram_raw(
    min: Any, max: Any, num: Any, sum: Any, sum_squares: Any, bucket_limits: Any, bucket_counts: Any
) -> Payload:
    """Check ``add_histogram_raw``'s arguments as torch and protobuf take them.

    torch raises ValueError when ``len(bucket_limits) != len(bucket_counts)``
    (TypeError when either has no ``len``), then builds ``HistogramProto`` from
    the arguments: each scalar and each list item must be what protobuf takes
    for a ``double`` (a number or an object with ``__float__``; not a str, not
    a numpy array), None leaves a scalar unset (0.0).

    Returns:
        params ``{"min", "max", "num", "sum", "sum_squares": float}`` and arrays
        ``[bucket_limits, bucket_counts]`` (1-d, raw numeric dtypes).
    """
    n = _length(bucket_limits, "bucket_limits")
    if n != _length(bucket_counts, "bucket_counts"):
        raise ArgumentValueError(
            f"bucket_limits and bucket_counts: expected the same length, got {n} and "
            f"{len(bucket_counts)} (torch: len(bucket_limits) != len(bucket_counts))"
        )
    params: dict[str, Any] = {}
    for name, value in zip(_RAW_SCALARS, (min, max, num, sum, sum_squares), strict=True):
        params[name] = 0.0 if value is None else _to_double(value, name)
    limits = _double_list(bucket_limits, n, "bucket_limits")
    counts = _double_list(bucket_counts, n, "bucket_counts")
    return params, [limits, counts]


# -- tensor ----------------------------------------------------------------------

# torch dtype name -> how the ring carries it; summary._TENSOR_TYPE_MAP lists what torch writes.
_TENSOR_DTYPES = frozenset(
    (
        "float16",
        "bfloat16",
        "float32",
        "float64",
        "int8",
        "uint8",
        "int16",
        "int32",
        "int64",
        "bool",
        "complex64",
        "complex128",
    )
)
_QUANTIZED = frozenset(("qint8", "quint8", "qint32", "quint4x2"))
_LIMIT_2GB = 1 << 31  # protobuf's hard limit, as torch checks it


def tensor(tensor: Any) -> Payload:
    """Check ``add_tensor``'s argument as torch 2.13's ``summary.tensor_proto`` uses it.

    torch: a ``torch.Tensor`` only (it calls ``tensor.numel()``: AttributeError
    for anything else); ValueError from 2 GiB of data up and for a dtype its
    ``_TENSOR_TYPE_MAP`` lacks (uint16/32/64, float8; complex32, whose
    ``DT_COMPLEX32`` protobuf does not know); RuntimeError where ``tolist`` or
    ``view_as_real`` fail (quantized, sparse, conjugated, nested tensors;
    NotImplementedError for meta).

    Returns:
        params ``{"dtype": torch dtype name, "shape": list}`` and one raveled array:
        the values; bfloat16 as its int16 bits, complex as (real, imag) float pairs.
    """
    if not _is_torch_tensor(tensor):
        raise ArgumentAttributeError(
            f"tensor: expected a torch.Tensor, got {type(tensor).__name__} "
            "(torch calls tensor.numel())"
        )
    import torch

    t = tensor.detach()
    if t.is_nested:
        raise UnsupportedValueError(
            "tensor: nested tensors cannot be written (torch: RuntimeError)"
        )
    if t.numel() * t.itemsize >= _LIMIT_2GB:
        raise ArgumentValueError(
            "tensor: tensor is bigger than protocol buffer's hard limit of 2GB in size"
        )
    name = str(t.dtype).removeprefix("torch.")
    if name not in _TENSOR_DTYPES and name not in _QUANTIZED:
        raise ArgumentValueError(f"tensor: unsupported tensor dtype {t.dtype}")
    if t.device.type == "meta":
        raise UnsupportedValueError(
            "tensor: a meta tensor has no data (torch: NotImplementedError)"
        )
    if name in _QUANTIZED or t.layout != torch.strided or (t.is_complex() and t.is_conj()):
        raise UnsupportedValueError(
            f"tensor: a {'quantized' if name in _QUANTIZED else str(t.layout)} "
            f"{'conjugated ' if t.is_complex() and t.is_conj() else ''}tensor cannot be "
            "written element by element (torch: RuntimeError); resolve or dequantize it first"
        )
    shape = list(t.shape)
    t = t.resolve_neg()  # numpy() refuses a negative-bit view; torch's tolist() reads through it
    if t.is_complex():
        t = torch.view_as_real(t)
    elif t.dtype == torch.bfloat16:
        t = t.view(torch.int16)  # its bits: numpy has no bfloat16, float16 would round
    arr = t.cpu().numpy().reshape(-1)
    return {"dtype": name, "shape": shape}, [arr]


__all__ = [
    "ESTIMATORS",
    "MAX_BINS",
    "ArgumentIndexError",
    "ArgumentZeroDivisionError",
    "estimator_bin_count",
    "histogram",
    "histogram_raw",
    "subsampled_bins",
    "tensor",
    "tensorflow_bins",
]
