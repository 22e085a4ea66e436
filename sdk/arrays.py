"""Arrays into an array record (``wire.py``): specs, raw parts, msgpack framing.

The trainer's whole cost for a tensor is here: a spec per array and a
memoryview over its bytes, which the ring copies once.  A non-contiguous array
(a transposed or sliced tensor) is made contiguous first, the only extra copy.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any

from .errors import ArgumentTypeError

# numpy kinds a record may carry: bool, signed and unsigned ints, floats.
_KINDS = frozenset("biuf")
_FIXARRAY_7 = 0x97
_FIXARRAY_8 = 0x98


def array_parts(arrays: Sequence[Any]) -> tuple[list[list[Any]], list[memoryview], int]:
    """``(specs, parts, nbytes)`` for numpy ``arrays``: see the wire docstring."""
    import numpy as np

    specs: list[list[Any]] = []
    parts: list[memoryview] = []
    nbytes = 0
    for a in arrays:
        if a.dtype.kind not in _KINDS:
            raise ArgumentTypeError(f"cannot log an array of dtype {a.dtype}")
        if not a.flags.c_contiguous:
            a = np.ascontiguousarray(a)
        specs.append([a.dtype.str, list(a.shape)])
        if a.nbytes:
            parts.append(memoryview(a.reshape(-1).view(np.uint8)))
            nbytes += a.nbytes
    return specs, parts, nbytes


def as_array_record(packed: bytes) -> bytes:
    """A packed 7-item list (kind .. specs) made the head of the 8-item record:
    the data field (a bin written after it) is the eighth item."""
    if packed[0] == _FIXARRAY_7:
        return bytes((_FIXARRAY_8,)) + packed[1:]
    if packed[0] != _FIXARRAY_8:
        raise ValueError("not a 7- or 8-item msgpack array")
    return packed


def bin_header(n: int) -> bytes:
    """msgpack's bin header for ``n`` bytes (bin 8, 16 or 32)."""
    if n < 1 << 8:
        return struct.pack(">BB", 0xC4, n)
    if n < 1 << 16:
        return struct.pack(">BH", 0xC5, n)
    return struct.pack(">BI", 0xC6, n)
