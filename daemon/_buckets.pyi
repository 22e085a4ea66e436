"""Stub for the C extension ``_buckets.c`` (built by setup.py when a compiler is there)."""

import numpy as np

def count(bits: np.ndarray, threshold: np.ndarray, cells: np.ndarray, shift: int, /) -> None: ...
