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


def test_event_is_visible_within_a_second_without_flush(daemon: DaemonEnv, tmp_path: Path) -> None:
    """torch holds events up to flush_secs=120; summaryd writes within ~1 s."""
    import time

    w = SummaryWriter(tmp_path / "run")  # default flush_secs=120, max_queue=10
    t0 = time.monotonic()
    w.add_scalar("loss", 1.0, 1)
    # Measuring latency, not synchronising: poll the file as TensorBoard would.
    while True:
        events = read_events(tmp_path / "run")
        if any(e.HasField("summary") for e in events):
            break
        assert time.monotonic() - t0 < 3.0, "event not in the file after 3 s"
        time.sleep(0.02)
    latency = time.monotonic() - t0
    assert latency < 1.5  # 1 s max latency plus scheduling slack on a loaded machine
    w.close()


def test_max_queue_writes_before_the_latency(daemon: DaemonEnv, tmp_path: Path) -> None:
    import time

    w = SummaryWriter(tmp_path / "run", max_queue=5)
    t0 = time.monotonic()
    for i in range(5):
        w.add_scalar("loss", float(i), i)
    while sum(e.HasField("summary") for e in read_events(tmp_path / "run")) < 5:
        assert time.monotonic() - t0 < 3.0
        time.sleep(0.005)
    assert time.monotonic() - t0 < 0.5  # the daemon's next drain cycle, not the 1 s latency
    w.close()


def test_context_manager_and_reopen_after_close(daemon: DaemonEnv, tmp_path: Path) -> None:
    with SummaryWriter(tmp_path / "run") as w:
        w.add_scalar("a", 1.0, 0)
    w.add_scalar("a", 2.0, 1)  # torch re-opens: a second file in the same directory
    w.close()
    files = sorted(p.name for p in (tmp_path / "run").iterdir())
    assert len(files) == 2
    values = [v.simple_value for e in read_events(tmp_path / "run") for v in e.summary.value]
    assert values == [1.0, 2.0]


@pytest.mark.parametrize("key", ["a/../../b", "x/../../../escape", "a\0b"])
def test_add_scalars_keys_never_leave_the_log_dir(
    daemon: DaemonEnv, tmp_path: Path, key: str
) -> None:
    from summaryd import ArgumentValueError

    log_dir = tmp_path / "logs" / "run"
    w = SummaryWriter(log_dir)
    with pytest.raises(ArgumentValueError, match="tag_scalar_dict key"):
        w.add_scalars("main", {"ok": 1.0, key: 2.0}, 0)
    w.add_scalars("main", {"nested/ok": 3.0}, 0)  # inside the run: allowed, as torch
    w.close()
    assert sorted(p.name for p in (tmp_path / "logs").iterdir()) == ["run"]
    assert (log_dir / "main_nested" / "ok").is_dir()
    assert not (log_dir / "main_ok").exists()  # the failed call wrote nothing
