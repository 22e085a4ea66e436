"""Differential: add_scalar, torch vs summaryd.

Each test makes the same calls through torch's ``SummaryWriter`` and through
summaryd's with a real daemon, and compares the two trees as TensorBoard reads
them (``compare.py``, through ``scalars_text_helpers.compare_calls``).

Covered here: every kind of value (bfloat16, special values) and step,
explicit wall times, tags, and many interleaved scalars.
"""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from ..conftest import DaemonEnv
from .compare import LIVE, Clock, events_of, normalise
from .scalars_text_helpers import WT_FLOAT, WT_FUTURE, WT_INT, compare_calls

pytestmark = [pytest.mark.differential, pytest.mark.integration]


# -- add_scalar ------------------------------------------------------------------------


class _Level(enum.IntEnum):
    HIGH = 3


def _scalar_values() -> list[tuple[str, Any]]:
    g = torch.tensor(2.0, requires_grad=True)
    return [
        ("py/int", 3),
        ("py/int_negative", -17),
        ("py/int_2**70", 2**70),
        ("py/float", 0.1),
        ("py/float_third", 1 / 3),
        ("py/bool_true", True),
        ("py/bool_false", False),
        ("py/int_enum", _Level.HIGH),
        ("py/str_number", "1.5"),
        ("np/float32", np.float32(0.1)),
        ("np/float64", np.float64(0.1)),
        ("np/float16", np.float16(0.1)),
        ("np/longdouble", np.longdouble(0.1)),
        ("np/int64", np.int64(-(2**62) - 1)),
        ("np/int32", np.int32(7)),
        ("np/uint64_max", np.uint64(2**64 - 1)),
        ("np/bool", np.bool_(True)),
        ("np/0d_float64", np.array(2.5)),
        ("np/0d_float32", np.array(0.1, dtype=np.float32)),
        ("np/1_element", np.array([2.75])),
        ("np/1x1_int", np.array([[4]], dtype=np.int16)),
        ("torch/float32", torch.tensor(0.1)),
        ("torch/float64", torch.tensor(0.1, dtype=torch.float64)),
        ("torch/float16", torch.tensor(0.1, dtype=torch.float16)),
        ("torch/int64", torch.tensor(2**62 + 1)),
        ("torch/int8", torch.tensor(-5, dtype=torch.int8)),
        ("torch/bool", torch.tensor(True)),
        ("torch/1_element", torch.tensor([1.25])),
        ("torch/1x1", torch.tensor([[0.3]])),
        ("torch/requires_grad", torch.tensor(1.5, requires_grad=True)),
        ("torch/grad_result", g * 3 + 0.1),
        ("torch/view_of_larger", torch.arange(10.0)[7]),
    ]


def test_add_scalar_value_kinds(daemon: DaemonEnv, tmp_path: Path) -> None:
    values = _scalar_values()

    def calls(w: Any) -> None:
        for i, (tag, v) in enumerate(values):
            w.add_scalar(tag, v, i)

    ref, _ = compare_calls(tmp_path, calls)
    assert len(events_of(ref)) == len(values) + 1


@pytest.mark.parametrize(
    "value",
    [1.5, -2.0, 1e10, -3e38, 1e-7, 1e-30, 65504.0, 70000.0],
)
def test_add_scalar_bfloat16(shared_daemon: DaemonEnv, tmp_path: Path, value: float) -> None:
    """torch logs a bfloat16 tensor through float16 (``_prepare_pytorch``): float16's
    range and precision apply."""
    t = torch.tensor(value, dtype=torch.bfloat16)
    compare_calls(tmp_path, lambda w: w.add_scalar("bf16", t, 1))


def test_add_scalar_step_kinds(daemon: DaemonEnv, tmp_path: Path) -> None:
    steps: list[Any] = [
        None,
        0,
        1,
        -1,
        2**31,
        2**62,
        2**63 - 1,
        -(2**63),
        np.int64(5),
        np.int32(6),
        np.uint64(7),
        np.int8(-8),
        np.float64(9.9),
        torch.tensor(10),
        torch.tensor(11, dtype=torch.int32),
        torch.tensor(12.7),
        True,
        False,
        13.9,
        -14.5,
        "15",
        _Level.HIGH,
    ]

    def calls(w: Any) -> None:
        for i, s in enumerate(steps):
            w.add_scalar("by_step", float(i), s)
            w.add_text("by_step_text", str(i), s)
            w.add_scalar("by_step_new", float(i), s, new_style=True)

    compare_calls(tmp_path, calls)


def test_add_scalar_explicit_walltime(daemon: DaemonEnv, tmp_path: Path) -> None:
    walltimes: list[Any] = [
        WT_INT,
        WT_FLOAT,
        WT_FUTURE,
        0,
        0.0,
        -5.5,
        1e-3,
        True,
        np.float64(WT_FLOAT),
        np.float32(1.5e9),
        np.int64(12345),
        torch.tensor(1.25e9, dtype=torch.float64),
        float("inf"),
        float("nan"),
        None,
    ]

    def calls(w: Any) -> None:
        for i, wt in enumerate(walltimes):
            w.add_scalar("wt", float(i), i, walltime=wt)
            w.add_scalar("wt_new", float(i), i, walltime=wt, new_style=True)
            w.add_text("wt_text", "t", i, walltime=wt)

    ref, ours = compare_calls(tmp_path, calls)
    # explicit wall times are kept exactly, not replaced by "now"
    got = [normalise(e, Clock())[0]["wall_time"] for e in events_of(ours)[1::3]]
    assert got[:3] == [repr(float(WT_INT)), repr(WT_FLOAT), repr(WT_FUTURE)]
    assert got[-1] == LIVE


SPECIAL = [
    0.0,
    -0.0,
    float("nan"),
    -float("nan"),
    float("inf"),
    -float("inf"),
    1e300,
    -1e300,
    3.4028234663852886e38,
    3.4028235e38,
    3.4028235677973366e38,
    -3.5e38,
    1e-40,
    -1e-45,
    1e-50,
    -1e-50,
    0.1,
    16777217.0,
    2.0**-149,
    5e-324,
    np.float64(1e300),
    np.float32(np.nan),
    np.float32(-0.0),
    torch.tensor(1e300, dtype=torch.float64),
    torch.tensor(float("-inf")),
]


@pytest.mark.parametrize(
    "style",
    [
        dict(),
        dict(new_style=True),
        dict(new_style=True, double_precision=True),
        dict(double_precision=True),
    ],
    ids=["simple_value", "new_style", "new_style_double", "double_only"],
)
def test_add_scalar_special_values(
    daemon: DaemonEnv, tmp_path: Path, style: dict[str, Any]
) -> None:
    """NaN, inf, -0.0, values beyond float32 (-> inf), subnormals; bit-exact."""

    def calls(w: Any) -> None:
        for i, v in enumerate(SPECIAL):
            w.add_scalar("special", v, i, **style)

    compare_calls(tmp_path, calls)


def test_add_scalar_tags(daemon: DaemonEnv, tmp_path: Path) -> None:
    tags = [
        "loss",
        "损失/训练",
        "Ünïcödé ✓",
        "emoji 🎉/x",
        "with spaces and\ttab",
        "a/b/c/d",
        "",
        "/",
        "x" * 1000,
        "nul\x00inside",
        "dup",
        "dup",
    ]

    def calls(w: Any) -> None:
        for i, tag in enumerate(tags):
            w.add_scalar(tag, float(i), i)
            w.add_scalar(tag, float(i), i, new_style=True)

    compare_calls(tmp_path, calls)


def test_add_scalar_many_and_interleaved(daemon: DaemonEnv, tmp_path: Path) -> None:
    def calls(w: Any) -> None:
        for i in range(300):
            w.add_scalar("train/loss", 1.0 / (i + 1), i)
            if i % 7 == 0:
                w.add_scalar("eval/acc", i / 300, i, new_style=True, double_precision=i % 2 == 0)
            if i % 50 == 0:
                w.add_text("log", f"step **{i}**", i)

    compare_calls(tmp_path, calls)
