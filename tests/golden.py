"""Golden files: encoder output pinned as protobuf text under ``tests/golden/``.

``assert_golden(request, "histogram/basic", message)`` compares the message's
text format with ``tests/golden/histogram/basic.pbtxt``.  Regenerate on purpose
with ``pytest --update-golden`` (never by editing a test), then review the diff.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from google.protobuf import text_format

GOLDEN = Path(__file__).resolve().parent / "golden"


def assert_golden(request: pytest.FixtureRequest, name: str, message: Any) -> None:
    """Check (or with ``--update-golden`` rewrite) ``tests/golden/<name>.pbtxt``."""
    text = text_format.MessageToString(message, as_utf8=False)
    path = GOLDEN / f"{name}.pbtxt"
    if request.config.getoption("--update-golden"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return
    assert path.exists(), f"no golden file {path}; create it with pytest --update-golden"
    assert text == path.read_text(), f"{name}: encoder output differs from {path}"
