"""Encoders for images and videos (add_image, add_images, add_image_with_boxes, add_figure, add_video): scaling, PNG and GIF.

Each function: ``(tag, params, arrays) -> list of Summary or Event``; see
``encode.MEDIA_ENCODERS``.  Pure; validates every field (records come from
untrusted clients) and raises TypeError/ValueError on anything malformed.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def image(tag: str, params: dict[str, Any], arrays: list[np.ndarray]) -> list[Any]:
    raise NotImplementedError("image")


def images(tag: str, params: dict[str, Any], arrays: list[np.ndarray]) -> list[Any]:
    raise NotImplementedError("images")


def image_with_boxes(tag: str, params: dict[str, Any], arrays: list[np.ndarray]) -> list[Any]:
    raise NotImplementedError("image_with_boxes")


def video(tag: str, params: dict[str, Any], arrays: list[np.ndarray]) -> list[Any]:
    raise NotImplementedError("video")
