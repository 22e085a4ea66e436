"""Running a numeric summary call as the daemon would, and comparing it with torch's.

``ours`` runs ``summaryd.convert_numeric`` (``convert_pr`` for PR curves) in
the "trainer", carries params through msgpack and arrays through the ring's
byte layout, then runs ``summaryd.daemon.encode_numeric``; ``assert_same``
compares serializations byte for byte and shows both as text on a
difference. Shared by ``test_encode_histogram_pr_curve.py``,
``test_encode_tensor.py`` and ``test_encode_numeric_hostile.py``.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from google.protobuf import text_format
from tensorboard.compat.proto import summary_pb2 as tb_summary_pb2

from summaryd import convert_numeric, convert_pr
from summaryd.daemon import encode_numeric
from summaryd.proto import summary_pb2

from .. import transport
from ..golden import assert_golden

TAG = "numeric/tag"


def _plain(x: Any) -> bool:
    """Only what msgpack carries as-is: no numpy scalars sneaking into params."""
    if x is None or type(x) in (bool, int, float, str, bytes):
        return True
    if type(x) is list:
        return all(_plain(v) for v in x)
    if type(x) is dict:
        return all(type(k) is str and _plain(v) for k, v in x.items())
    return False


def through_ring(payload: tuple[dict[str, Any], list[np.ndarray]]) -> tuple[dict[str, Any], list]:
    """The shared ``tests.transport.through_ring``, params checked to be plain values."""
    assert _plain(payload[0]), payload[0]
    return transport.through_ring(payload)


def ours(kind: str, *args: Any) -> Any:
    """convert_numeric.<kind> (convert_pr for PR curves) in the trainer, then
    encode_numeric.<kind> in the daemon."""
    convert = convert_pr if kind.startswith("pr_curve") else convert_numeric
    params, arrays = through_ring(getattr(convert, kind)(*args))
    out = getattr(encode_numeric, kind)(TAG, params, arrays)
    assert len(out) == 1 and isinstance(out[0], summary_pb2.Summary)
    return out[0]


def assert_same(our: Any, ref: Any) -> None:
    """Byte-equal serializations; on failure, both as TensorBoard's text format."""
    a = our.SerializeToString(deterministic=True)
    b = ref.SerializeToString(deterministic=True)
    if a != b:
        mine = tb_summary_pb2.Summary.FromString(a)
        pytest.fail(
            "summaries differ\n--- summaryd\n"
            + text_format.MessageToString(mine)[:3000]
            + "\n--- torch\n"
            + text_format.MessageToString(ref)[:3000]
        )


golden = assert_golden


def torch_ref(fn: Callable[[], Any]) -> Any:
    """torch's summary, its warnings (ComplexWarning, NaN casts) silenced as in training."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn()
