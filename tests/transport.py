"""Encoder tests' view of the transport: what a daemon encoder receives.

``through_ring(payload)`` frames ``(params, arrays)`` from an SDK conversion
exactly as ``Client.put_arrays`` does (``summaryd.arrays``) and decodes it as
the daemon does (``daemon.arrays.unpack_record`` + ``decode_arrays``), so an
encoder test runs on msgpack'd params and read-only views of raw bytes.
"""

from __future__ import annotations

from typing import Any

import msgpack

from summaryd import wire
from summaryd.arrays import array_parts, as_array_record, bin_header
from summaryd.daemon.arrays import decode_arrays, unpack_record

Payload = tuple[dict[str, Any], list[Any]]


def through_ring(payload: Payload) -> Payload:
    """``(params, arrays)`` as the daemon's encoder for the record gets them."""
    params, arrays = payload
    specs, parts, nbytes = array_parts(arrays)
    fields = [wire.TENSOR, 1, "tag", None, 0.0, params, specs]
    head = as_array_record(msgpack.packb(fields, use_bin_type=True)) + bin_header(nbytes)
    rec = unpack_record(head + b"".join(bytes(p) for p in parts))
    out = decode_arrays(rec[6], rec[7])
    assert all(not a.flags.writeable for a in out)  # encoders must copy before writing
    return rec[5], out
