"""A full disk or an unwritable log dir: the daemon keeps going, tells the
client, writes no partial record, and catches up when the disk comes back.

Uses a small tmpfs mounted for the test (root only; CI runs as root).
"""

from __future__ import annotations

import os
import subprocess
import time
import warnings
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from summaryd import DaemonNoticeWarning, SummaryWriter
from summaryd.daemon.tfrecord import whole_records_length

from ..conftest import DaemonEnv, read_events

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs needs root"),
]


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    mnt = tmp_path / "small"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mnt)], check=True)
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=True)


def points(log_dir: Path) -> Counter[tuple[str, int]]:
    return Counter((v.tag, e.step) for e in read_events(log_dir) for v in e.summary.value)


def status(d: DaemonEnv) -> dict:  # type: ignore[type-arg]
    from summaryd.daemon.cli import request
    from summaryd.paths import locations

    return request(locations(d.env), {"t": "status"})


def wait_for(predicate, what: str, timeout: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    """Poll the daemon's observable state (there is no event to wait on for these)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def warning_on_next_calls(call, probe: SummaryWriter) -> Warning:  # type: ignore[no-untyped-def]
    """Make ``call()``, then log through ``probe`` (another run of the same
    process) until the daemon's notice became a warning, and return it: the
    notice travels on the socket and may arrive a little after the ring's bell
    word announced it, so "the next call" means one of the next few."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        call()
        deadline = time.monotonic() + 10
        i = 0
        while not any(issubclass(w.category, DaemonNoticeWarning) for w in caught):
            assert time.monotonic() < deadline, "no notice became a warning"
            probe.add_scalar("probe", 0.0, i)
            i += 1
            time.sleep(0.01)
    notices = [w for w in caught if issubclass(w.category, DaemonNoticeWarning)]
    assert len(notices) == 1
    return notices[0].message


def assert_whole_records(log_dir: Path) -> None:
    for f in log_dir.iterdir():
        if "tfevents" in f.name:
            data = f.read_bytes()
            assert whole_records_length(data) == len(data), f"{f} ends in a partial record"


def test_disk_full_then_space_returns(
    daemon: DaemonEnv, small_fs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SUMMARYD_FLUSH_TIMEOUT", "1")
    filler = small_fs / "filler"
    filler.write_bytes(b"\0" * (200 << 10))  # leaves ~56 KiB
    full = SummaryWriter(small_fs / "run")
    ok = SummaryWriter(tmp_path / "ok")
    n = 3000  # ~130 KiB of events: does not fit
    for i in range(n):
        full.add_scalar("loss", float(i), i)
        ok.add_scalar("acc", float(i), i)
    pid = daemon.pid
    # The other run is unaffected: all of it arrives.
    wait_for(lambda: sum(points(tmp_path / "ok").values()) == n, "the healthy run")
    wait_for(lambda: status(daemon)["daemon"]["file_errors"] > 0, "a failed write")
    # The client's next call warns, naming the directory and the error.
    message = str(warning_on_next_calls(lambda: full.add_scalar("loss", float(n), n), ok))
    assert str(small_fs / "run") in message and "No space left on device" in message
    assert_whole_records(small_fs / "run")
    # Space returns: everything is written, once.
    filler.unlink()
    wait_for(lambda: sum(points(small_fs / "run").values()) == n + 1, "the full run to catch up")
    assert points(small_fs / "run") == Counter({("loss", i): 1 for i in range(n + 1)})
    assert_whole_records(small_fs / "run")
    assert daemon.pid == pid and status(daemon)["daemon"]["pid"] == pid
    full.close()
    ok.close()


def test_unwritable_log_dir_then_writable_again(
    daemon: DaemonEnv, small_fs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SUMMARYD_FLUSH_TIMEOUT", "1")
    # The directory exists (the writer creates it, as torch); the file cannot be made.
    probe = SummaryWriter(tmp_path / "probe")  # another run of this process
    (small_fs / "run").mkdir()
    subprocess.run(["mount", "-o", "remount,ro", str(small_fs)], check=True)
    w = SummaryWriter(small_fs / "run")
    for i in range(100):
        w.add_scalar("x", float(i), i)
    wait_for(lambda: status(daemon)["daemon"]["file_errors"] > 0, "a failed file creation")
    message = str(warning_on_next_calls(lambda: w.add_scalar("x", 100.0, 100), probe))
    assert "Read-only file system" in message
    subprocess.run(["mount", "-o", "remount,rw", str(small_fs)], check=True)
    wait_for(lambda: sum(points(small_fs / "run").values()) == 101, "the run to be written")
    assert points(small_fs / "run") == Counter({("x", i): 1 for i in range(101)})
    w.close()
    probe.close()
