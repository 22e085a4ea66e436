"""Caller-side validation and conversion of add_pr_curve and add_pr_curve_raw.

Each returns ``(params, arrays)`` for one array record (see ``wire.py``), as
``convert_numeric`` does for histograms and tensors (its module docstring
holds the theory: torch's exceptions at the call site, the arithmetic
(``compute_curve``) in the daemon on the raw arrays).
"""

from __future__ import annotations

import operator
from typing import Any

import numpy as np

from .convert import _is_torch_tensor, _make_np, reraise
from .convert_numeric import (
    Payload,
    _astype_float,
    _raw,
    _tensor_np,
    _to_double,
)
from .errors import (
    ArgumentIndexError,
    ArgumentTypeError,
    ArgumentValueError,
)
from .limits import MAX_THRESHOLDS

# -- pr_curve --------------------------------------------------------------------


def _thresholds(num_thresholds: Any) -> Any:
    """``min(num_thresholds, 127)`` as torch's ``summary.pr_curve`` (TypeError if incomparable)."""
    if _is_torch_tensor(num_thresholds):
        raise ArgumentTypeError(
            "num_thresholds: expected an int, got a tensor (torch multiplies a numpy array by it)"
        )
    try:
        return min(num_thresholds, MAX_THRESHOLDS)
    except TypeError as exc:
        reraise(exc, "num_thresholds", "an int")


def _weights(weights: Any, labels_shape: tuple[int, ...], pred_shape: tuple[int, ...]) -> Any:
    """The weights torch multiplies the float labels by: a float, an array, or None (1.0).

    torch computes ``labels.astype(float64) * weights`` (numpy broadcasting; a
    tensor is a TypeError) and ``np.histogram`` then needs that product to have
    the predictions' shape (ValueError otherwise).
    """
    if weights is None:
        shape = labels_shape
        out: Any = None
    elif _is_torch_tensor(weights):
        raise ArgumentTypeError(
            "weights: expected a number or numpy array, got a tensor "
            "(torch multiplies a numpy array by it: TypeError)"
        )
    elif isinstance(weights, (bool, int, float, np.bool_, np.integer, np.floating)):
        out = _to_double(weights, "weights")
        shape = labels_shape
    else:
        try:
            w = np.asarray(weights)
        except Exception as exc:
            reraise(exc, "weights", "a number or an array of numbers")
        if not _raw(w):
            if w.dtype.kind != "O":
                raise ArgumentTypeError(f"weights: expected real numbers, got dtype {w.dtype}")
            w = _astype_float(w, "weights")
        try:
            shape = np.broadcast_shapes(labels_shape, w.shape)
        except ValueError as exc:
            raise ArgumentValueError(f"weights: cannot broadcast with labels ({exc})") from None
        out = w
    if shape != pred_shape:
        raise ArgumentValueError(
            f"labels: shape {labels_shape} (times weights: {shape}) must equal the predictions' "
            f"shape {pred_shape} (torch: weights should have the same shape as a.)"
        )
    return out


def pr_curve(labels: Any, predictions: Any, num_thresholds: Any, weights: Any) -> Payload:
    """Check ``add_pr_curve``'s arguments as torch's ``summary.pr_curve`` uses them.

    torch: ``make_np`` both arrays; ``num_thresholds = min(num_thresholds,
    127)``; ``floor(predictions * (num_thresholds - 1))`` (TypeError for
    predictions that are not real numbers; OverflowError when ``num_thresholds
    - 1`` does not fit an integer dtype); ``labels.astype(float64)``; the
    weights product and ``np.histogram(bins=num_thresholds)`` (an integer >= 1);
    ``PrCurvePluginData(num_thresholds=...)`` (not a bool).

    A numpy integer ``num_thresholds`` is sent with its dtype: numpy promotes
    ``predictions * np.int64(126)`` differently from ``predictions * 126``
    (float32 predictions become float64), and the buckets depend on it.

    Returns:
        params ``{"num_thresholds": int, "nt_dtype": str | None, "weights": float | None}``,
        arrays ``[labels, predictions]`` plus ``[weights]`` when weights is an array.
    """
    labels_np = _make_np(labels, "labels")
    pred = _make_np(predictions, "predictions")
    nt = _thresholds(num_thresholds)
    if not _raw(pred):
        if pred.dtype.kind == "O" or (pred.dtype.kind == "f" and pred.dtype.itemsize > 8):
            pred = _astype_float(pred, "predictions")
        else:
            raise ArgumentTypeError(f"predictions: expected real numbers, got dtype {pred.dtype}")
    try:  # floor(predictions * (nt - 1)) on no elements: numpy's type errors, NEP 50's overflow
        with np.errstate(all="ignore"):
            np.floor(np.empty(0, pred.dtype) * (nt - 1))
    except Exception as exc:
        reraise(exc, "num_thresholds", "an int that fits the predictions' dtype")
    if not _raw(labels_np):
        labels_np = _astype_float(labels_np, "labels")
    w = _weights(weights, labels_np.shape, pred.shape)
    try:  # np.histogram(bins=num_thresholds)
        n = operator.index(nt)
    except TypeError:
        raise ArgumentTypeError(
            f"num_thresholds: expected an int, got {type(nt).__name__}"
        ) from None
    if n < 1:
        raise ArgumentValueError(f"num_thresholds: must be positive, got {n}")
    if isinstance(nt, bool):  # PrCurvePluginData's uint32 field refuses a bool
        raise ArgumentTypeError("num_thresholds: expected an int, got a boolean")
    nt_dtype = None if type(nt) is int else np.dtype(type(nt)).name
    params = {
        "num_thresholds": int(n),
        "nt_dtype": nt_dtype,
        "weights": w if isinstance(w, float) else None,
    }
    arrays = [labels_np, pred]
    if isinstance(w, np.ndarray):
        arrays.append(w)
    if any(a.ndim > _MAX_RANK for a in arrays):
        # The ring carries at most 8 dimensions; only the broadcast product's order matters.
        arrays = [np.broadcast_to(a, pred.shape).reshape(-1) for a in arrays]
    return params, arrays


_MAX_RANK = 8  # daemon/arrays.py's MAX_RANK


# -- pr_curve_raw ----------------------------------------------------------------

_COUNT_NAMES = (
    "true_positive_counts",
    "false_positive_counts",
    "true_negative_counts",
    "false_negative_counts",
    "precision",
    "recall",
)


def _as_array(x: Any, name: str) -> np.ndarray:
    """What ``np.stack`` makes of one input (``np.asanyarray``), tensors exactly."""
    if _is_torch_tensor(x):
        return _tensor_np(x, name)
    try:
        return np.asarray(x)
    except Exception as exc:
        reraise(exc, name, "an array of numbers")


def pr_curve_raw(
    true_positive_counts: Any,
    false_positive_counts: Any,
    true_negative_counts: Any,
    false_negative_counts: Any,
    precision: Any,
    recall: Any,
    num_thresholds: Any,
    weights: Any,
) -> Payload:
    """Check ``add_pr_curve_raw``'s arguments as torch's ``summary.pr_curve_raw`` uses them.

    torch, in this order: ``num_thresholds > 127`` (TypeError if incomparable)
    caps it at 127; ``np.stack`` of the six (ValueError unless the shapes are
    equal); protobuf takes ``num_thresholds`` for a ``uint32`` (TypeError for a
    float or bool, ValueError when negative); the stack's ``shape[1]`` is read
    (IndexError for scalars); protobuf takes the stacked items for a ``float``
    field (TypeError for str, complex, None...).  ``weights`` is unused, as in
    torch.

    Returns:
        params ``{"num_thresholds": int, "length": shape[0]}`` and the six arrays
        raveled (the tensor torch writes is their concatenation, ``[6, length]``).
    """
    del weights  # torch ignores it too
    try:
        capped = num_thresholds > MAX_THRESHOLDS
    except TypeError as exc:
        reraise(exc, "num_thresholds", "an int")
    arrays = [
        _as_array(x, name)
        for x, name in zip(
            (
                true_positive_counts,
                false_positive_counts,
                true_negative_counts,
                false_negative_counts,
                precision,
                recall,
            ),
            _COUNT_NAMES,
            strict=True,
        )
    ]
    shape = arrays[0].shape
    for a, name in zip(arrays, _COUNT_NAMES, strict=True):
        if a.shape != shape:
            raise ArgumentValueError(
                f"{name}: all six arrays must have the same shape, got {a.shape} and {shape}"
            )
    nt = MAX_THRESHOLDS if capped else num_thresholds
    if isinstance(nt, (bool, np.bool_)):
        raise ArgumentTypeError("num_thresholds: expected an int, got a boolean")
    try:
        nt = operator.index(nt)
    except TypeError:
        raise ArgumentTypeError(
            f"num_thresholds: expected an int, got {type(num_thresholds).__name__}"
        ) from None
    if nt < 0:
        raise ArgumentValueError(f"num_thresholds: must not be negative, got {nt}")
    if not shape:
        raise ArgumentIndexError(
            f"{_COUNT_NAMES[0]}: expected arrays of at least one dimension, got scalars"
        )
    for i, (a, name) in enumerate(zip(arrays, _COUNT_NAMES, strict=True)):
        if not _raw(a):
            if a.dtype.kind not in "Of":
                raise ArgumentTypeError(f"{name}: expected real numbers, got dtype {a.dtype}")
            flat = a.reshape(-1)
            arrays[i] = np.array([_to_double(v, name) for v in flat], np.float64)
    params = {"num_thresholds": int(nt), "length": int(shape[0])}
    return params, [a.reshape(-1) for a in arrays]
