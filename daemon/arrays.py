"""Array records' arrays back from bytes: ``specs`` + ``data`` -> numpy arrays.

The inverse of ``summaryd.arrays`` (the trainer side).  Records come from
untrusted clients, so every spec is checked before numpy sees it: a known
numeric dtype, a bounded rank, non-negative dimensions, and sizes that add up
to exactly the bytes received (a small record can never make the daemon
allocate more than it sent).
"""

from __future__ import annotations

from typing import Any

import msgpack
import numpy as np

from summaryd.errors import ProtocolError

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


_HEAD_MAX = 1 << 16  # bytes of a large record searched for its fields before the data
_BIN = {0xC4: (1, 2), 0xC5: (2, 3), 0xC6: (4, 5)}  # bin 8/16/32: length bytes, header size


def decode_record(payload: bytes | memoryview) -> list[Any]:
    """The daemon's one decoder of a ring record: one msgpack array led by an int kind.

    Small records decode with ``msgpack.unpackb``; a large array record keeps
    its data as a view (``unpack_record``).  Fields are checked by the handler
    or encoder of the kind.

    Raises:
        ProtocolError: not one msgpack array led by an int kind (also a ValueError).
    """
    try:
        rec = msgpack.unpackb(payload) if len(payload) <= _HEAD_MAX else unpack_record(payload)
    except Exception as exc:  # msgpack raises several unrelated types
        raise ProtocolError(f"undecodable record: {exc.__class__.__name__}: {exc}") from None
    if type(rec) is not list or not rec or type(rec[0]) is not int:
        raise ProtocolError("record is not an array led by its kind")
    return rec


def unpack_record(payload: bytes | memoryview) -> Any:
    """msgpack-decode a ring record, leaving a large array record's data uncopied.

    For an 8-item array whose last item is a bin, that item is returned as a
    view of ``payload`` (``msgpack.unpackb`` would copy megabytes into a new
    bytes object); everything else decodes as ``unpackb`` would.

    Raises:
        Whatever ``msgpack.unpackb`` raises for bytes that are not one msgpack object.
    """
    if len(payload) <= _HEAD_MAX:
        return msgpack.unpackb(payload)
    up = msgpack.Unpacker(raw=False, max_buffer_size=_HEAD_MAX)
    up.feed(payload[:_HEAD_MAX])
    try:
        if up.read_array_header() != 8:
            return msgpack.unpackb(payload)
        items = [up.unpack() for _ in range(7)]
    except (msgpack.OutOfData, ValueError, TypeError):
        return msgpack.unpackb(payload)  # a head larger than _HEAD_MAX, or not an array
    off = up.tell()
    kind = _BIN.get(payload[off])
    if kind is None:
        return msgpack.unpackb(payload)  # a blob number, or not array data
    width, header = kind
    n = int.from_bytes(payload[off + 1 : off + 1 + width], "big")
    if off + header + n != len(payload):
        raise ValueError("record has bytes after its last item")
    items.append(memoryview(payload)[off + header :])
    return items
