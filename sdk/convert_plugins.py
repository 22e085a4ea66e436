"""Validation and conversion in the caller for audio, custom_scalars, mesh.

Each returns ``(params, arrays)`` for one array record (see ``wire.py``);
numpy and torch are imported here, never by ``import summaryd``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

Payload = tuple[dict[str, Any], list[np.ndarray]]


def audio(snd_tensor: Any, sample_rate: Any) -> Payload:
    raise NotImplementedError("audio")


def custom_scalars(layout: Any) -> Payload:
    raise NotImplementedError("custom_scalars")


def mesh(vertices: Any, colors: Any, faces: Any, config_dict: Any) -> Payload:
    raise NotImplementedError("mesh")
