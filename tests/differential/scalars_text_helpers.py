"""Making the same writer calls through torch's SummaryWriter and summaryd's, and comparing.

``compare_calls`` runs one function of the writer through both
(``compare.run_both``) and asserts the two trees equal as TensorBoard reads
them; ``WT_*`` are explicit wall times far outside any test's time window.
Shared by ``test_writer_life.py``, ``test_add_scalar.py``,
``test_add_scalars_text.py`` and ``test_scalars_text_bad_input.py``.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .compare import Clock, RunDir, assert_trees_equal, run_both

HOST = socket.gethostname()
Calls = Callable[[Any], None]

# Explicit wall times, all far outside any test's time window (see compare.Clock).
WT_INT = 1_000_000_000
WT_FLOAT = 1_234_567_890.123456
WT_FUTURE = 4_102_444_800.5


def compare_calls(
    tmp_path: Path, calls: Calls, **kwargs: Any
) -> tuple[dict[str, RunDir], dict[str, RunDir]]:
    clock = Clock()
    t, o = run_both(tmp_path, calls, **kwargs)
    return assert_trees_equal(t, o, clock, suffix=kwargs.get("filename_suffix"))
