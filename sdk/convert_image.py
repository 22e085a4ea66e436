"""Validation and conversion in the caller for image, images, image_with_boxes, video.

Each returns ``(params, arrays)`` for one array record (see ``wire.py``);
numpy and torch are imported here, never by ``import summaryd``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

Payload = tuple[dict[str, Any], list[np.ndarray]]


def image(img_tensor: Any, dataformats: Any) -> Payload:
    raise NotImplementedError("image")


def images(img_tensor: Any, dataformats: Any) -> Payload:
    raise NotImplementedError("images")


def image_with_boxes(
    img_tensor: Any, box_tensor: Any, rescale: Any, dataformats: Any, labels: Any
) -> Payload:
    raise NotImplementedError("image_with_boxes")


def video(vid_tensor: Any, fps: Any) -> Payload:
    raise NotImplementedError("video")
