"""Differential: add_scalars and add_text, torch vs summaryd.

Each test makes the same calls through torch's ``SummaryWriter`` and through
summaryd's with a real daemon, and compares the two trees as TensorBoard reads
them (``compare.py``, through ``scalars_text_helpers.compare_calls``).

Covered here: add_scalars' sub-runs (reopened after close) and add_text's
strings, long texts and wall times.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from ..conftest import DaemonEnv
from .compare import events_of
from .scalars_text_helpers import WT_FLOAT, WT_INT, compare_calls

pytestmark = [pytest.mark.differential, pytest.mark.integration]


# -- add_scalars -----------------------------------------------------------------------


def test_add_scalars(daemon: DaemonEnv, tmp_path: Path) -> None:
    def calls(w: Any) -> None:
        w.add_scalars("loss", {"train": 1.0, "val": 2.0, "test": np.float32(3.0)}, 0)
        w.add_scalar("main", 1.0, 0)
        w.add_scalars("metrics/acc", {"top1": 0.5, "top5": torch.tensor(0.9)}, 1)
        w.add_scalars("loss", {"train": 1.5, "val": 2.5, "test": 3.5}, 1)
        w.add_scalars("loss", {"val": 2.7, "train": 1.7}, 2, walltime=WT_FLOAT)
        w.add_scalars("loss", {"new": 9.0}, 3, walltime=WT_INT)
        w.add_scalars("nested", {"a/b": 1.0, "ключ": 2.0, "": 3.0}, 4)
        w.add_scalars("a/b/c", {"x": float("nan"), "y": -0.0}, None)
        w.add_scalars("empty", {}, 6)
        w.add_scalars("loss", {"train": 1.9}, 7)
        w.add_scalar("main", 2.0, 7)

    ref, ours = compare_calls(tmp_path, calls)
    assert sorted(ref) == sorted(
        [
            ".",
            "loss_train",
            "loss_val",
            "loss_test",
            "loss_new",
            "metrics_acc_top1",
            "metrics_acc_top5",
            "nested_a/b",
            "nested_ключ",
            "nested_",
            "a_b_c_x",
            "a_b_c_y",
        ]
    )
    # One add_scalars call stamps every sub-run with the same wall time (torch takes it once).
    for tree in (ref, ours):
        first = [events_of(tree, f"loss_{k}")[1].wall_time for k in ("train", "val", "test")]
        assert len(set(first)) == 1, first


def test_add_scalars_after_close_reopens_sub_runs(daemon: DaemonEnv, tmp_path: Path) -> None:
    def calls(w: Any) -> None:
        w.add_scalars("g", {"a": 1.0, "b": 2.0}, 1)
        w.close()
        w.add_scalars("g", {"a": 3.0, "c": 4.0}, 2)  # re-opens main and sub-runs lazily

    ref, _ = compare_calls(tmp_path, calls)
    assert {k: len(v.files) for k, v in ref.items()} == {".": 2, "g_a": 2, "g_b": 1, "g_c": 1}


# -- add_text --------------------------------------------------------------------------


def _long_text() -> str:
    line = "Line {i:05d}: lorem ipsum — ünïcödé ✓ 中文 🎉 `code` **bold**\n"
    out = "".join(line.format(i=i) for i in range(1700))
    assert 95_000 < len(out.encode()) < 140_000
    return out


def test_add_text(daemon: DaemonEnv, tmp_path: Path) -> None:
    markdown = (
        "# Title\n\nSome *emphasis* and **strong**.\n\n* a\n* b\n\n"
        "| a | b |\n|---|---|\n| 1 | 2 |\n\n```python\nprint('hi')\n```\n<b>html</b> &amp;"
    )
    long = _long_text()

    def calls(w: Any) -> None:
        w.add_text("plain", "hello world", 0)
        w.add_text("unicode", "Grüße, 世界 🎉 \u200b\u202e", 1)
        w.add_text("markdown", markdown, 2)
        w.add_text("empty", "", 3)
        w.add_text("long", long, 4)
        w.add_text("control", "nul\x00 bell\x07 crlf\r\n", 5)
        w.add_text("文本/标签", "tagged", 6)
        w.add_text("", "empty tag", 7)
        w.add_text("no_step", "none")
        w.add_text("walltime", "explicit", 8, walltime=WT_FLOAT)
        w.add_text("walltime", "explicit int", 9, walltime=WT_INT)
        w.add_text("plain", "again", 10)

    ref, _ = compare_calls(tmp_path, calls)
    texts = [e.summary.value[0].tensor.string_val[0] for e in events_of(ref)[1:]]
    assert texts[4] == long.encode()
