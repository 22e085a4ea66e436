"""Validation and conversion in the caller for histogram, histogram_raw, pr_curve, pr_curve_raw, tensor.

Each returns ``(params, arrays)`` for one array record (see ``wire.py``);
numpy and torch are imported here, never by ``import summaryd``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

Payload = tuple[dict[str, Any], list[np.ndarray]]


def histogram(values: Any, bins: Any, max_bins: Any) -> Payload:
    raise NotImplementedError("histogram")


def histogram_raw(
    min: Any, max: Any, num: Any, sum: Any, sum_squares: Any, bucket_limits: Any, bucket_counts: Any
) -> Payload:
    raise NotImplementedError("histogram_raw")


def pr_curve(labels: Any, predictions: Any, num_thresholds: Any, weights: Any) -> Payload:
    raise NotImplementedError("pr_curve")


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
    raise NotImplementedError("pr_curve_raw")


def tensor(tensor: Any) -> Payload:
    raise NotImplementedError("tensor")
