"""End to end: SummaryWriter -> ring -> real daemon -> files read by TensorBoard."""

from __future__ import annotations

from pathlib import Path

import pytest

from summaryd import SummaryWriter

from ..conftest import DaemonEnv, read_events

pytestmark = pytest.mark.integration


def test_scalars_reach_the_file_after_flush(daemon: DaemonEnv, tmp_path: Path) -> None:
    w = SummaryWriter(tmp_path / "run")
    for i in range(100):
        w.add_scalar("loss", i / 2, i)
    w.flush()
    events = read_events(tmp_path / "run")
    assert events[0].file_version == "brain.Event:2"
    got = [(e.step, e.summary.value[0].simple_value) for e in events[1:]]
    assert got == [(i, i / 2) for i in range(100)]
    w.close()
