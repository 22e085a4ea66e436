"""Validation and conversion in the caller for embedding.

Each returns ``(params, arrays)`` for one array record (see ``wire.py``);
numpy and torch are imported here, never by ``import summaryd``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

Payload = tuple[dict[str, Any], list[np.ndarray]]


def embedding(mat: Any, metadata: Any, label_img: Any, metadata_header: Any) -> Payload:
    raise NotImplementedError("embedding")
