"""Encoders for audio (WAV), custom scalars, meshes and hparams.

Each function: ``(tag, params, arrays) -> list of Summary or Event``; see
``encode.MEDIA_ENCODERS``.  Pure; validates every field (records come from
untrusted clients) and raises TypeError/ValueError on anything malformed.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def audio(tag: str, params: dict[str, Any], arrays: list[np.ndarray]) -> list[Any]:
    raise NotImplementedError("audio")


def custom_scalars(tag: str, params: dict[str, Any], arrays: list[np.ndarray]) -> list[Any]:
    raise NotImplementedError("custom_scalars")


def mesh(tag: str, params: dict[str, Any], arrays: list[np.ndarray]) -> list[Any]:
    raise NotImplementedError("mesh")


def hparams(tag: str, params: dict[str, Any], arrays: list[np.ndarray]) -> list[Any]:
    raise NotImplementedError("hparams")
