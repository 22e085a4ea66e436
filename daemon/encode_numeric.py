"""Encoders for add_histogram[_raw], add_pr_curve[_raw] and add_tensor.

Each function: ``(tag, params, arrays) -> list of Summary or Event``; see
``encode.MEDIA_ENCODERS``.  Pure; validates every field (records come from
untrusted clients) and raises TypeError/ValueError on anything malformed.

Each builds the ``Summary`` torch 2.13's ``torch/utils/tensorboard/summary.py``
builds for the same call (``histogram``/``make_histogram``, ``histogram_raw``,
``pr_curve``/``compute_curve``, ``pr_curve_raw``, ``tensor_proto``), from the
arrays ``summaryd.convert_numeric`` sent raw: the same numpy operations on the
same dtypes, so the same buckets, float32 roundings and NaN bits.

One computation differs in method, not in result: with TensorBoard's default
buckets (``bins="tensorflow"``) the buckets and the statistics come from
``buckets.py`` (bit-pattern buckets instead of ``np.histogram``'s sort; float32
values in one pass through the cache), which computes what torch computes.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from summaryd.limits import (
    ESTIMATORS,
    MAX_BINS,
    MAX_THRESHOLDS,
    estimator_bin_count,
)
from summaryd.proto import plugin_pr_curve_pb2, summary_pb2, tensor_pb2

from . import buckets

# -- record checks ---------------------------------------------------------------

_MISSING = object()


def _check_tag(tag: Any) -> None:
    if type(tag) is not str:
        raise TypeError(f"tag must be str, got {type(tag).__name__}")


def _param(params: Any, key: str, *types: type) -> Any:
    """``params[key]``, which must be of exactly one of ``types`` (bool is not an int here)."""
    if type(params) is not dict:
        raise TypeError("params must be a map")
    value = params.get(key, _MISSING)
    if value is _MISSING:
        raise ValueError(f"params lack {key!r}")
    if type(value) not in types:
        names = "/".join("None" if t is type(None) else t.__name__ for t in types)
        raise TypeError(f"params[{key!r}] must be {names}, got {type(value).__name__}")
    return value


def _arrays(arrays: Any, counts: tuple[int, ...]) -> list[np.ndarray]:
    if type(arrays) is not list or len(arrays) not in counts:
        raise ValueError(f"expected {' or '.join(map(str, counts))} arrays")
    for a in arrays:
        if not isinstance(a, np.ndarray):
            raise TypeError("arrays must be numpy arrays")
    return arrays


def _numeric(a: np.ndarray, name: str) -> np.ndarray:
    """``a`` if it holds plain numbers (bool, int, float up to 64 bits), in native byte order."""
    if a.dtype.kind not in "biuf" or a.dtype.itemsize > 8 or a.dtype.fields is not None:
        raise ValueError(f"{name}: expected numbers, got dtype {a.dtype}")
    if not a.dtype.isnative:
        a = a.astype(a.dtype.newbyteorder("="))
    return a


def _one_d(a: np.ndarray, name: str) -> np.ndarray:
    a = _numeric(a, name)
    if a.ndim != 1:
        raise ValueError(f"{name}: expected a 1-d array, got shape {a.shape}")
    return a


# -- histogram -------------------------------------------------------------------

# float32 holds these dtypes exactly, so their buckets come from float32 bits.
_FLOAT32_EXACT = frozenset("?bBhHe")


def _counts_and_limits(
    bins: Any, flat: np.ndarray, a: np.ndarray, arrays: list[np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    if bins == "tensorflow":
        if len(arrays) != 1:
            raise ValueError("histogram: bins='tensorflow' takes one array")
        if flat.dtype.char == "f":
            counts = buckets.tensorflow_counts(flat)
        elif flat.dtype.char in _FLOAT32_EXACT:
            counts = buckets.tensorflow_counts(flat.astype(np.float32))
        else:
            counts = buckets.tensorflow_counts(a)
        return counts, buckets.TF_EDGES
    if bins is None:
        if len(arrays) != 2:
            raise ValueError("histogram: explicit bin edges take a second array")
        edges = _one_d(arrays[1], "bin edges")
        if len(edges) < 2:
            raise ValueError("histogram: expected at least two bin edges")
        return _np_histogram(a, edges)
    if len(arrays) != 1:
        raise ValueError("histogram: an estimator or bin count takes one array")
    if type(bins) is str:
        if bins not in ESTIMATORS:
            raise ValueError(f"histogram: unknown estimator {bins!r}")
        return _np_histogram(a, estimator_bin_count(a, bins))
    if type(bins) is not int or not 1 <= bins <= MAX_BINS:
        raise ValueError(f"histogram: bins must be 1..{MAX_BINS}, got {bins!r}")
    return _np_histogram(a, bins)


def _np_histogram(a: np.ndarray, bins: Any) -> tuple[np.ndarray, np.ndarray]:
    """``np.histogram`` as torch calls it; its rare internal failures as ValueError."""
    try:
        with np.errstate(all="ignore"):
            counts, limits = np.histogram(a, bins=bins)
    except (IndexError, ArithmeticError) as exc:  # e.g. a range that overflows float64
        raise ValueError(f"histogram: numpy cannot bucket these values ({exc})") from None
    return counts, limits


def _merge(counts: np.ndarray, limits: np.ndarray, max_bins: int | None) -> tuple[Any, Any]:
    """torch's ``make_histogram`` merging of neighbour buckets down to ``max_bins`` (verbatim)."""
    num_bins = len(counts)
    if max_bins is not None and num_bins > max_bins:
        subsampling = num_bins // max_bins
        subsampling_remainder = num_bins % subsampling
        if subsampling_remainder != 0:
            counts = np.pad(
                counts,
                pad_width=[[0, subsampling - subsampling_remainder]],
                mode="constant",
                constant_values=0,
            )
        counts = counts.reshape(-1, subsampling).sum(axis=-1)
        new_limits = np.empty((counts.size + 1,), limits.dtype)
        new_limits[:-1] = limits[:-1:subsampling]
        new_limits[-1] = limits[-1]
        limits = new_limits
    return counts, limits


def _trim(counts: np.ndarray, limits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """torch's ``make_histogram``: keep the support plus one empty bucket on the left (verbatim)."""
    if len(counts) == 0:
        raise ValueError("histogram: no buckets")
    cum_counts = np.cumsum(np.greater(counts, 0))
    start, end = np.searchsorted(cum_counts, [0, cum_counts[-1] - 1], side="right")
    start = int(start)
    end = int(end) + 1
    counts = counts[start - 1 : end] if start > 0 else np.concatenate([[0], counts[:end]])
    limits = limits[start : end + 1]
    if counts.size == 0 or limits.size == 0:
        raise ValueError("The histogram is empty, please file a bug report.")
    return counts, limits


# float64 values an encoder thread keeps for reuse (16 MiB): see _as_float64.
_SCRATCH_MIN, _SCRATCH_MAX = 1 << 16, 1 << 21
_scratch = threading.local()


def _as_float64(flat: np.ndarray) -> np.ndarray:
    """``flat.astype(float)`` (``flat`` itself when it is float64 already), for mid-sized
    arrays into a buffer this thread reuses: in the daemon's pool a fresh 8 MB array
    for each 1e6-value histogram tends to come on fresh pages (glibc hands large
    freed blocks back to the kernel), whose faults cost more than the cast.  Valid
    until this thread's next histogram; only scalars and new arrays come out of it."""
    with np.errstate(invalid="ignore"):  # a signalling NaN's cast: not the daemon's to report
        if flat.dtype == np.float64 or not _SCRATCH_MIN <= flat.size <= _SCRATCH_MAX:
            return flat.astype(np.float64, copy=False)
        buf: np.ndarray | None = getattr(_scratch, "f64", None)
        if buf is None or buf.size < flat.size:
            buf = _scratch.f64 = np.empty(flat.size, np.float64)
        a = buf[: flat.size]
        np.copyto(a, flat, casting="unsafe")  # the same cast as astype
    return a


def _min_max(flat: np.ndarray, a: np.ndarray) -> tuple[float, float]:
    """``a.min(), a.max()`` for ``a = flat.astype(float)``, read from float32 ``flat`` when
    it is float32: the cast to float64 is exact and monotonic, so the extremes are the
    casts of float32's (half the bytes to read).  Two cases come from ``a`` itself, as
    torch's do: a NaN (both are NaN; its bits are the ones numpy picks there) and a zero
    (which of -0.0 and 0.0 wins depends on the SIMD lanes, 8 for float32, 4 for float64)."""
    if flat.dtype == np.float32:
        lo, hi = flat.min(), flat.max()
        if lo == lo and hi == hi and lo != 0 and hi != 0:
            return float(lo), float(hi)
    return float(a.min()), float(a.max())


def histogram(tag: str, params: dict[str, Any], arrays: list[np.ndarray]) -> list[Any]:
    """HISTOGRAM: torch's ``summary.histogram`` (``make_histogram``) as ``Summary.Value.histo``.

    params: ``bins`` ("tensorflow", an estimator name, an int, or None with the
    edges as a second array), ``max_bins`` (int >= 1 or None); arrays:
    ``[values]`` (any numeric dtype; torch's ``astype(float)`` is done here).
    ``sum_squares`` is ``values.dot(values)`` as torch computes it (BLAS
    ``ddot``): bit-equal to torch's when the daemon's BLAS splits the sum as the
    trainer's does (same library and thread count); for float32 values with the
    default buckets, summed in slices (``buckets.float32_stats``), equal to ~1e-15.
    """
    _check_tag(tag)
    bins = _param(params, "bins", str, int, type(None))
    max_bins = _param(params, "max_bins", int, type(None))
    if max_bins is not None and max_bins < 1:
        raise ValueError(f"histogram: max_bins must be >= 1, got {max_bins}")
    arrays = _arrays(arrays, (1, 2))
    values = _numeric(arrays[0], "values")
    if values.size == 0:
        raise ValueError("The input has no element.")
    flat = values.reshape(-1)
    fast = buckets.float32_stats(flat) if bins == "tensorflow" and len(arrays) == 1 else None
    if fast is None:
        a = _as_float64(flat)  # torch: values.astype(float)
        counts, limits = _counts_and_limits(bins, flat, a, arrays)
    else:  # float32 values: the same numbers in one pass (buckets.py)
        counts, limits = fast.counts, buckets.TF_EDGES
    counts, limits = _trim(*_merge(counts, limits, max_bins))
    with np.errstate(all="ignore"):
        if fast is None:
            lo, hi = _min_max(flat, a)
            total, squares = a.sum(), a.dot(a)
        else:
            squares = fast.squares
            if fast.lo is None or fast.hi is None or fast.total is None:
                a = flat.astype(np.float64)  # a NaN, or both zeros at an extreme: torch's way
                lo, hi = _min_max(flat, a)
                total = a.sum() if fast.total is None else fast.total
            else:
                lo, hi, total = fast.lo, fast.hi, fast.total
        hist = summary_pb2.HistogramProto(
            min=lo,
            max=hi,
            num=flat.size,
            sum=total,
            sum_squares=squares,
            bucket_limit=limits.tolist(),
            bucket=counts.tolist(),
        )
    return [summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=tag, histo=hist)])]


def histogram_raw(tag: str, params: dict[str, Any], arrays: list[np.ndarray]) -> list[Any]:
    """HISTOGRAM_RAW: torch's ``summary.histogram_raw``: the caller's numbers in a HistogramProto.

    params: ``min``, ``max``, ``num``, ``sum``, ``sum_squares`` (floats);
    arrays: ``[bucket_limits, bucket_counts]``, 1-d, of one length.
    """
    _check_tag(tag)
    fields = {k: _param(params, k, float) for k in ("min", "max", "num", "sum", "sum_squares")}
    limits_a, counts_a = _arrays(arrays, (2,))
    limits, counts = _one_d(limits_a, "bucket_limits"), _one_d(counts_a, "bucket_counts")
    if len(limits) != len(counts):
        raise ValueError("histogram_raw: len(bucket_limits) != len(bucket_counts)")
    hist = summary_pb2.HistogramProto(
        **fields, bucket_limit=limits.tolist(), bucket=counts.tolist()
    )
    return [summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=tag, histo=hist)])]


# -- PR curves -------------------------------------------------------------------

_NT_DTYPES = frozenset(("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"))


def _pr_summary(tag: str, data: np.ndarray, shape: tuple[int, int], num_thresholds: int) -> Any:
    """The pr_curves plugin's ``[6, n]`` DT_FLOAT tensor, as torch's ``pr_curve[_raw]``."""
    content = plugin_pr_curve_pb2.PrCurvePluginData(
        version=0, num_thresholds=num_thresholds
    ).SerializeToString()
    meta = summary_pb2.SummaryMetadata(
        plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="pr_curves", content=content)
    )
    tensor = tensor_pb2.TensorProto(
        dtype=tensor_pb2.DT_FLOAT,
        float_val=data.reshape(-1).tolist(),
        tensor_shape=tensor_pb2.TensorShapeProto(
            dim=[tensor_pb2.TensorShapeProto.Dim(size=d) for d in shape]
        ),
    )
    return summary_pb2.Summary(
        value=[summary_pb2.Summary.Value(tag=tag, metadata=meta, tensor=tensor)]
    )


def _compute_curve(
    labels: np.ndarray, predictions: np.ndarray, num_thresholds: Any, weights: Any
) -> np.ndarray:
    """torch's ``summary.compute_curve`` (from TensorBoard's pr_curve plugin), verbatim."""
    _MINIMUM_COUNT = 1e-7

    if weights is None:
        weights = 1.0

    bucket_indices = np.int32(np.floor(predictions * (num_thresholds - 1)))
    float_labels = labels.astype(np.float64)
    histogram_range = (0, num_thresholds - 1)
    tp_buckets, _ = np.histogram(
        bucket_indices,
        bins=num_thresholds,
        range=histogram_range,
        weights=float_labels * weights,
    )
    fp_buckets, _ = np.histogram(
        bucket_indices,
        bins=num_thresholds,
        range=histogram_range,
        weights=(1.0 - float_labels) * weights,
    )

    tp = np.cumsum(tp_buckets[::-1])[::-1]
    fp = np.cumsum(fp_buckets[::-1])[::-1]
    tn = fp[0] - fp
    fn = tp[0] - tp
    precision = tp / np.maximum(_MINIMUM_COUNT, tp + fp)
    recall = tp / np.maximum(_MINIMUM_COUNT, tp + fn)
    return np.stack((tp, fp, tn, fn, precision, recall))


def pr_curve(tag: str, params: dict[str, Any], arrays: list[np.ndarray]) -> list[Any]:
    """PR_CURVE: torch's ``summary.pr_curve`` (``compute_curve``), a ``[6, num_thresholds]`` tensor.

    params: ``num_thresholds`` (1..127), ``nt_dtype`` (the numpy integer type
    the caller passed it as, None for a Python int: numpy promotes the two
    differently), ``weights`` (a float or None); arrays: ``[labels,
    predictions]`` plus ``[weights]`` when weights is an array.  The labels
    times the weights must have the predictions' shape (checked before any
    broadcasting allocates).
    """
    _check_tag(tag)
    nt = _param(params, "num_thresholds", int)
    nt_dtype = _param(params, "nt_dtype", str, type(None))
    w_param = _param(params, "weights", float, type(None))
    if not 1 <= nt <= MAX_THRESHOLDS:
        raise ValueError(f"pr_curve: num_thresholds must be 1..{MAX_THRESHOLDS}, got {nt}")
    if nt_dtype is not None and nt_dtype not in _NT_DTYPES:
        raise ValueError(f"pr_curve: nt_dtype must be an integer dtype name, got {nt_dtype!r}")
    arrays = _arrays(arrays, (2,) if w_param is not None else (2, 3))
    labels = _numeric(arrays[0], "labels")
    predictions = _numeric(arrays[1], "predictions")
    weights: Any = w_param
    if len(arrays) == 3:
        weights = _numeric(arrays[2], "weights")
    try:
        shape = np.broadcast_shapes(labels.shape, np.shape(weights))
    except ValueError:
        raise ValueError("pr_curve: labels and weights do not broadcast") from None
    if shape != predictions.shape:
        raise ValueError("pr_curve: labels times weights must have the predictions' shape")
    num_thresholds = nt if nt_dtype is None else np.dtype(nt_dtype).type(nt)
    with np.errstate(all="ignore"):
        data = _compute_curve(labels, predictions, num_thresholds, weights)
    return [_pr_summary(tag, data, (6, nt), nt)]


def pr_curve_raw(tag: str, params: dict[str, Any], arrays: list[np.ndarray]) -> list[Any]:
    """PR_CURVE_RAW: torch's ``summary.pr_curve_raw``: the six arrays stacked, ``[6, length]``.

    params: ``num_thresholds`` (0..127, metadata only), ``length`` (the first
    dimension of the caller's arrays, which torch writes as the tensor's
    second); arrays: the six, raveled, of one size (a multiple of ``length``).
    """
    _check_tag(tag)
    nt = _param(params, "num_thresholds", int)
    length = _param(params, "length", int)
    if not 0 <= nt <= MAX_THRESHOLDS:
        raise ValueError(f"pr_curve_raw: num_thresholds must be 0..{MAX_THRESHOLDS}, got {nt}")
    parts = [_one_d(a, "counts") for a in _arrays(arrays, (6,))]
    size = parts[0].size
    if any(p.size != size for p in parts):
        raise ValueError("pr_curve_raw: the six arrays must have one size")
    if length < 0 or (size % length if length else size):
        raise ValueError(f"pr_curve_raw: length {length} does not divide the size {size}")
    return [_pr_summary(tag, np.stack(parts), (6, length), nt)]


# -- tensor ----------------------------------------------------------------------


def _float32_bits(x: np.ndarray) -> Any:
    """torch's ``half_to_int``: ``struct.pack("f", float(x))`` read back as int32.

    Through float64 as torch goes (a Python float), so a NaN comes out quiet as
    the C double->float conversion makes it.
    """
    with np.errstate(invalid="ignore"):  # signalling NaNs
        return x.astype(np.float32).astype(np.float64).astype(np.float32).view(np.int32).tolist()


def _bfloat16_bits(x: np.ndarray) -> Any:
    f32 = (x.view(np.uint16).astype(np.uint32) << np.uint32(16)).view(np.float32)
    return _float32_bits(f32)


def _tolist(x: np.ndarray) -> Any:
    return x.tolist()


# torch dtype name -> (DataType, TensorProto field, dtype carried, numbers per element,
# torch's itemsize, conversion); torch's summary._TENSOR_TYPE_MAP (uint8 -> uint32_val:
# the map lists torch.uint8 twice and the second entry wins).
_TENSOR_SPECS: dict[str, tuple[int, str, str, int, int, Any]] = {
    "float16": (tensor_pb2.DT_HALF, "half_val", "f2", 1, 2, _float32_bits),
    "bfloat16": (tensor_pb2.DT_BFLOAT16, "half_val", "i2", 1, 2, _bfloat16_bits),
    "float32": (tensor_pb2.DT_FLOAT, "float_val", "f4", 1, 4, _tolist),
    "float64": (tensor_pb2.DT_DOUBLE, "double_val", "f8", 1, 8, _tolist),
    "int8": (tensor_pb2.DT_INT8, "int_val", "i1", 1, 1, _tolist),
    "uint8": (tensor_pb2.DT_UINT8, "uint32_val", "u1", 1, 1, _tolist),
    "int16": (tensor_pb2.DT_INT16, "int_val", "i2", 1, 2, _tolist),
    "int32": (tensor_pb2.DT_INT32, "int_val", "i4", 1, 4, _tolist),
    "int64": (tensor_pb2.DT_INT64, "int64_val", "i8", 1, 8, _tolist),
    "bool": (tensor_pb2.DT_BOOL, "bool_val", "b1", 1, 1, _tolist),
    "complex64": (tensor_pb2.DT_COMPLEX64, "scomplex_val", "f4", 2, 8, _tolist),
    "complex128": (tensor_pb2.DT_COMPLEX128, "dcomplex_val", "f8", 2, 16, _tolist),
}
_MAX_TENSOR_RANK = 64


def tensor(tag: str, params: dict[str, Any], arrays: list[np.ndarray]) -> list[Any]:
    """TENSOR: torch 2.13's ``summary.tensor_proto``: the values in the dtype's TensorProto field.

    params: ``dtype`` (torch's name), ``shape``; arrays: the raveled values
    (bfloat16 as int16 bits, complex as real/imaginary pairs).  half_val holds
    float32 bit patterns, as torch's ``half_to_int`` writes them.
    """
    _check_tag(tag)
    name = _param(params, "dtype", str)
    shape = _param(params, "shape", list)
    spec = _TENSOR_SPECS.get(name)
    if spec is None:
        raise ValueError(f"tensor: unsupported dtype {name!r}")
    enum, field, carried, per, itemsize, convert = spec
    if len(shape) > _MAX_TENSOR_RANK or any(type(d) is not int or d < 0 for d in shape):
        raise ValueError(f"tensor: bad shape {shape!r}")
    (values,) = _arrays(arrays, (1,))
    values = _numeric(values, "tensor")
    if values.dtype != np.dtype(carried):
        raise ValueError(f"tensor: a {name} tensor travels as {carried}, got {values.dtype}")
    numel = int(np.prod(shape, dtype=object)) if shape else 1
    if values.size != numel * per:
        raise ValueError(f"tensor: {values.size} numbers do not fill shape {shape}")
    if numel * itemsize >= 1 << 31:
        raise ValueError("tensor is bigger than protocol buffer's hard limit of 2GB in size")
    proto = tensor_pb2.TensorProto(
        dtype=enum,
        tensor_shape=tensor_pb2.TensorShapeProto(
            dim=[tensor_pb2.TensorShapeProto.Dim(size=d) for d in shape]
        ),
        **{field: convert(values.reshape(-1))},
    )
    meta = summary_pb2.SummaryMetadata(
        plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="tensor")
    )
    return [
        summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=tag, metadata=meta, tensor=proto)])
    ]
