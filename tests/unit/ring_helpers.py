"""Rings for the tests of ``summaryd.ring``, made in a temporary directory.

``create_ring`` takes any path, so these need no daemon and no ``/dev/shm``:
``CAP`` (the smallest capacity, so wrap-around and full rings come quickly),
``_TempRing`` (a fresh ring per Hypothesis example, made in ``conftest.py``'s
``ring_dir``), and ``_poke`` (raw values written into the mapped file). Shared
by ``test_ring_file.py``, ``test_ring_put_read.py`` and
``test_ring_corruption.py``; their fixtures ``ring_path``, ``ring`` and
``ring_dir`` are in ``conftest.py``.
"""

from __future__ import annotations

import itertools
import os
import struct
from pathlib import Path

from summaryd.ring import MIN_CAPACITY, Ring, create_ring

CAP = MIN_CAPACITY  # 4096: small, so wrap-around and full rings come quickly

SESSION = b"0123456789abcdef"


_names = itertools.count()


class _TempRing:
    """A fresh ring per Hypothesis example, closed and unlinked afterwards."""

    def __init__(self, directory: Path, capacity: int = CAP) -> None:
        self.path = directory / f"r{next(_names)}"
        self.ring = create_ring(str(self.path), capacity, 1, 2, SESSION)

    def __enter__(self) -> Ring:
        return self.ring

    def __exit__(self, *exc: object) -> None:
        self.ring.close()
        os.unlink(self.path)


def _poke(r: Ring, offset: int, fmt: str, *values: int) -> None:
    """Write raw values into the mapped file (offsets from the start of the file)."""
    struct.pack_into(fmt, r._mm, offset, *values)
