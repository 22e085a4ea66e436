"""Array records' arrays back from bytes: ``specs`` + ``data`` -> numpy arrays.

The inverse of ``summaryd.arrays`` (the trainer side).  Records come from
untrusted clients, so every spec is checked before numpy sees it: a known
numeric dtype, a bounded rank, non-negative dimensions, and sizes that add up
to exactly the bytes received (a small record can never make the daemon
allocate more than it sent).
"""

from __future__ import annotations

from typing import Any

import numpy as np

MAX_ARRAYS = 16
MAX_RANK = 8
_KINDS = frozenset("biuf")


def decode_arrays(specs: Any, data: bytes | memoryview) -> list[np.ndarray]:
    """Read-only arrays viewing ``data``, as ``specs`` (``[[dtype, shape], ...]``) say.

    Raises:
        TypeError / ValueError: a spec is malformed or the sizes do not add up.
    """
    if type(specs) is not list or len(specs) > MAX_ARRAYS:
        raise TypeError(f"array specs must be a list of at most {MAX_ARRAYS}")
    if not isinstance(data, (bytes, memoryview)):
        raise TypeError("array data must be bytes")
    out: list[np.ndarray] = []
    offset = 0
    for spec in specs:
        if type(spec) is not list or len(spec) != 2:
            raise TypeError("an array spec is [dtype, shape]")
        dtype_str, shape = spec
        if type(dtype_str) is not str or len(dtype_str) > 8:
            raise TypeError("an array's dtype must be a short str")
        try:
            dtype = np.dtype(dtype_str)
        except TypeError as exc:
            raise ValueError(f"unknown dtype {dtype_str!r}") from exc
        if dtype.kind not in _KINDS or dtype.fields is not None or dtype.subdtype is not None:
            raise ValueError(f"dtype {dtype_str!r} is not a plain numeric type")
        if type(shape) is not list or len(shape) > MAX_RANK:
            raise TypeError(f"an array's shape must be a list of at most {MAX_RANK} ints")
        count = 1
        for d in shape:
            if type(d) is not int or d < 0:
                raise ValueError(f"bad dimension {d!r} in shape {shape!r}")
            count *= d
        nbytes = count * dtype.itemsize
        if offset + nbytes > len(data):
            raise ValueError("array specs describe more bytes than the record holds")
        a = np.frombuffer(data, dtype=dtype, count=count, offset=offset).reshape(shape)
        out.append(a)
        offset += nbytes
    if offset != len(data):
        raise ValueError(f"array data has {len(data) - offset} bytes the specs do not describe")
    return out
