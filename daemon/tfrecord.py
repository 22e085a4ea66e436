"""TFRecord framing, the on-disk format of TensorBoard event files.

A record is::

    uint64  length          little-endian, of data
    uint32  masked_crc32c(length bytes)
    byte    data[length]    a serialized Event
    uint32  masked_crc32c(data)

with ``masked(crc) = ((crc >> 15) | (crc << 17)) + 0xa282ead8`` (mod 2**32),
the mask TensorFlow's ``crc32c::Mask`` applies so that a CRC of data that
itself contains CRCs stays well distributed.  TensorBoard's readers check
both CRCs and stop reading a file at the first record that fails.

CRC32C comes from the ``crc32c`` package, a C extension (hardware CRC where the
CPU has it); a pure-Python CRC would cost more than everything else per event.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

from crc32c import crc32c

MASK_DELTA = 0xA282EAD8
HEADER_BYTES = 12  # length + its CRC
FOOTER_BYTES = 4

_len = struct.Struct("<Q")
_u32 = struct.Struct("<I")
_head = struct.Struct("<QI")


def masked_crc32c(data: bytes) -> int:
    """CRC32C of ``data`` with TensorFlow's mask applied."""
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + MASK_DELTA) & 0xFFFFFFFF


_headers: dict[int, bytes] = {}


def _header(n: int) -> bytes:
    h = _head.pack(n, masked_crc32c(_len.pack(n)))
    if n < 4096:  # event lengths repeat (same tag, same shape): keep the small ones
        _headers[n] = h
    return h


def frame(data: bytes) -> bytes:
    """One TFRecord holding ``data``."""
    c = crc32c(data)
    return b"".join(
        (
            _headers.get(len(data)) or _header(len(data)),
            data,
            _u32.pack((((c >> 15) | (c << 17)) + MASK_DELTA) & 0xFFFFFFFF),
        )
    )


def whole_records_length(buf: bytes) -> int:
    """Bytes at the start of ``buf`` that form whole, valid records.

    A daemon that was killed mid-write leaves a torn tail; the next one cuts
    the file back to this length (TensorBoard never reads past damage).
    """
    o = 0
    n = len(buf)
    while o + HEADER_BYTES <= n:
        (length,) = _len.unpack_from(buf, o)
        (lcrc,) = _u32.unpack_from(buf, o + 8)
        if masked_crc32c(buf[o : o + 8]) != lcrc:
            break
        end = o + HEADER_BYTES + length + FOOTER_BYTES
        if end > n:
            break
        (dcrc,) = _u32.unpack_from(buf, end - 4)
        if masked_crc32c(buf[o + HEADER_BYTES : end - 4]) != dcrc:
            break
        o = end
    return o


def spans(buf: bytes) -> Iterator[tuple[int, int]]:
    """``(start, end)`` of each whole record at the start of ``buf``, by their
    lengths alone (for framing this daemon made or already checked)."""
    o = 0
    n = len(buf)
    while o + HEADER_BYTES <= n:
        (length,) = _len.unpack_from(buf, o)
        end = o + HEADER_BYTES + length + FOOTER_BYTES
        if end > n:
            return
        yield o, end
        o = end
