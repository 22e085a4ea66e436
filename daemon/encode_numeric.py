"""Encoders for histograms, PR curves and raw tensors (add_histogram[_raw], add_pr_curve[_raw], add_tensor).

Each function: ``(tag, params, arrays) -> list of Summary or Event``; see
``encode.MEDIA_ENCODERS``.  Pure; validates every field (records come from
untrusted clients) and raises TypeError/ValueError on anything malformed.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def histogram(tag: str, params: dict[str, Any], arrays: list[np.ndarray]) -> list[Any]:
    raise NotImplementedError("histogram")


def histogram_raw(tag: str, params: dict[str, Any], arrays: list[np.ndarray]) -> list[Any]:
    raise NotImplementedError("histogram_raw")


def pr_curve(tag: str, params: dict[str, Any], arrays: list[np.ndarray]) -> list[Any]:
    raise NotImplementedError("pr_curve")


def pr_curve_raw(tag: str, params: dict[str, Any], arrays: list[np.ndarray]) -> list[Any]:
    raise NotImplementedError("pr_curve_raw")


def tensor(tag: str, params: dict[str, Any], arrays: list[np.ndarray]) -> list[Any]:
    raise NotImplementedError("tensor")
