"""The embedding projector's files (add_embedding): tensors.tsv, metadata.tsv,
sprite.png and the merged projector_config.pbtxt, as torch writes them.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def embedding_files(
    params: dict[str, Any], arrays: list[np.ndarray], existing_config: str | None
) -> dict[str, bytes]:
    """Files to write, by path relative to the run's log dir (config included)."""
    raise NotImplementedError("embedding_files")
