"""Fixtures shared by the unit tests of one module split across several files.

``ring_path``, ``ring`` (one small ring per test, made in a temporary
directory) and ``ring_dir`` (a directory for rings made per Hypothesis example)
serve ``test_ring_file.py``, ``test_ring_put_read.py`` and
``test_ring_corruption.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from summaryd.ring import Ring, create_ring

from .ring_helpers import CAP, SESSION


@pytest.fixture
def ring_path(tmp_path: Path) -> Path:
    return tmp_path / "ring"


@pytest.fixture
def ring(ring_path: Path) -> Iterator[Ring]:
    r = create_ring(str(ring_path), CAP, pid=4242, start_ticks=777, session=SESSION, runtime=99)
    try:
        yield r
    finally:
        r.close()


@pytest.fixture(scope="module")
def ring_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory for rings made per Hypothesis example (function fixtures do not reset)."""
    return tmp_path_factory.mktemp("rings")
