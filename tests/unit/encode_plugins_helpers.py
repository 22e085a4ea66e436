"""Running a plugin summary call in torch and in summaryd, and comparing the outcomes.

``_run`` runs a call capturing its result or exception, its stdout and every
warning; ``assert_same_outcome`` checks that summaryd's outcome is torch's
(where torch raises, summaryd raises an instance of it; numpy's private
exception classes stand for the builtin they derive from). Shared by
``test_encode_audio.py``, ``test_encode_custom_scalars.py``,
``test_encode_mesh.py`` and ``test_encode_hparams.py``.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from .. import golden

Payload = tuple[dict[str, Any], list[np.ndarray]]


@contextlib.contextmanager
def _observed() -> Any:
    """Capture stdout and every warning inside the block."""
    out = io.StringIO()
    with warnings.catch_warnings(record=True) as caught, contextlib.redirect_stdout(out):
        warnings.simplefilter("always")
        seen: dict[str, Any] = {}
        yield seen
    seen["stdout"] = out.getvalue()
    seen["warnings"] = [(w.category, str(w.message)) for w in caught]


def _run(fn: Callable[[], list[bytes]]) -> dict[str, Any]:
    with _observed() as seen:
        try:
            seen["result"], seen["exc"] = fn(), None
        except Exception as exc:
            seen["result"], seen["exc"] = None, exc
    return seen


def expected_type(exc: BaseException) -> type[BaseException]:
    """The type ours must be an instance of: torch's, or for numpy's private exception
    classes (``_UFuncNoLoopError``) the builtin they derive from."""
    for cls in type(exc).__mro__:
        if not cls.__module__.startswith("numpy"):
            return cls
    raise AssertionError(exc)  # pragma: no cover


def assert_same_outcome(ref: dict[str, Any], ours: dict[str, Any]) -> None:
    """Same stdout, warnings and result; where torch raises, ours raises an instance of it."""
    if ref["exc"] is not None:
        assert ours["exc"] is not None, f"torch raises {ref['exc']!r}, summaryd accepts"
        assert isinstance(ours["exc"], expected_type(ref["exc"])), (ref["exc"], ours["exc"])
    else:
        assert ours["exc"] is None, f"torch accepts, summaryd raises {ours['exc']!r}"
        assert ours["result"] == ref["result"]
    assert ours["stdout"] == ref["stdout"]
    assert ours["warnings"] == ref["warnings"]


assert_golden = golden.assert_golden
