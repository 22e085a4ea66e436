"""Tests for event-file naming and creation (``summaryd.daemon.eventfile``).

TensorBoard reads a run's event files in name order and (Python loader) stops
reading a file once a later one exists, so a new file must sort after every
existing ``tfevents`` file, while keeping torch's name pattern
``events.out.tfevents.%010d.<host>.<pid>.<n><suffix>``.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tensorboard.backend.event_processing.event_file_loader import RawEventFileLoader

from summaryd.daemon.eventfile import EventFile, event_file_name
from summaryd.daemon.tfrecord import frame

NOW = 1700000000.75


def _pattern(host: str, pid: int, n: int, suffix: str) -> re.Pattern[str]:
    return re.compile(
        rf"^events\.out\.tfevents\.(\d{{10}})\.{re.escape(host)}\.{pid}\.{n}{re.escape(suffix)}$"
    )


def _torch_name(now: float, host: str, pid: int, n: int, suffix: str) -> str:
    """torch / tensorboard's EventFileWriter: "events.out.tfevents.%010d.%s.%s.%s%s"."""
    return "events.out.tfevents.%010d.%s.%s.%s%s" % (now, host, pid, n, suffix)  # noqa: UP031


# -- event_file_name -------------------------------------------------------------------------------


def test_empty_directory_gets_torchs_name() -> None:
    name = event_file_name([], NOW, "host", 4242, 1, "")
    assert (
        name
        == _torch_name(NOW, "host", 4242, 1, "")
        == ("events.out.tfevents.1700000000.host.4242.1")
    )
    assert event_file_name([], NOW, "h", 1, 2, ".sfx") == "events.out.tfevents.1700000000.h.1.2.sfx"


def test_other_files_are_ignored() -> None:
    existing = ["zzz.txt", "plugins", "~lock", "README"]
    assert event_file_name(existing, NOW, "host", 1, 1, "") == _torch_name(NOW, "host", 1, 1, "")


def test_same_second_bigger_pid_is_kept_when_it_sorts_last() -> None:
    existing = [_torch_name(NOW, "host", 123, 1, "")]
    name = event_file_name(existing, NOW, "host", 99, 1, "")  # ".99." > ".123."
    assert name == _torch_name(NOW, "host", 99, 1, "")
    assert name > existing[0]


def test_same_second_pid_that_sorts_first_moves_the_time() -> None:
    existing = [_torch_name(NOW, "host", 99, 1, "")]
    name = event_file_name(existing, NOW, "host", 123, 1, "")  # ".123." < ".99."
    assert name > existing[0]
    m = _pattern("host", 123, 1, "").match(name)
    assert m and int(m.group(1)) == int(NOW) + 1


def test_same_name_already_there_moves_the_time() -> None:
    existing = [_torch_name(NOW, "host", 7, 1, "")]
    name = event_file_name(existing, NOW, "host", 7, 1, "")
    assert name != existing[0] and name > existing[0]
    assert _pattern("host", 7, 1, "").match(name)


@pytest.mark.parametrize("later", [1, 60, 86400 * 365])
def test_names_with_a_larger_time_are_passed(later: int) -> None:
    existing = [
        _torch_name(NOW - 5, "a", 1, 1, ""),
        _torch_name(NOW + later, "zz-host", 1, 1, ".v2"),
        _torch_name(NOW, "m", 1, 1, ""),
    ]
    name = event_file_name(existing, NOW, "host", 5, 3, "")
    assert all(name > e for e in existing)
    m = _pattern("host", 5, 3, "").match(name)
    assert m and int(m.group(1)) == int(NOW) + later + 1


def test_tensorflow_and_tensorboardx_names_are_passed() -> None:
    existing = [
        "events.out.tfevents.1700000000.zhost",  # TensorFlow: no pid
        "events.out.tfevents.1700000000.zhost.profile-empty",
        "events.out.tfevents.1700000000.zhost.v2",
    ]
    name = event_file_name(existing, NOW, "host", 1, 1, "")
    assert all(name > e for e in existing)


def test_suffix_is_kept() -> None:
    existing = [_torch_name(NOW + 3, "host", 1, 1, ".x")]
    name = event_file_name(existing, NOW, "host", 2, 1, ".my-suffix")
    assert name.endswith(".host.2.1.my-suffix") and name > existing[0]


_hosts = st.text(alphabet="abcxyz019-", min_size=1, max_size=10).filter(lambda h: h[0] != "-")
_times = st.floats(min_value=0, max_value=4e9)  # 10 digits until the year 2286
_suffixes = st.sampled_from(["", ".v2", ".a", ".profile-empty", ".x.y", "_z"])
_torch_names = st.builds(
    _torch_name, _times, _hosts, st.integers(1, 1 << 22), st.integers(1, 200), _suffixes
)
_tf_names = st.builds(
    lambda t, h, s: f"events.out.tfevents.{int(t):010d}.{h}{s}", _times, _hosts, _suffixes
)


@settings(max_examples=150, deadline=None)
@given(
    existing=st.lists(st.one_of(_torch_names, _tf_names), max_size=6),
    now=_times,
    host=_hosts,
    pid=st.integers(1, 1 << 22),
    n=st.integers(1, 200),
    suffix=_suffixes,
)
def test_new_name_sorts_after_every_existing_name(
    existing: list[str], now: float, host: str, pid: int, n: int, suffix: str
) -> None:
    name = event_file_name(existing, now, host, pid, n, suffix)
    assert all(name > e for e in existing)
    m = _pattern(host, pid, n, suffix).match(name)
    assert m, name
    assert int(m.group(1)) >= int(now)  # never earlier than the clock
    if not existing or _torch_name(now, host, pid, n, suffix) > max(existing):
        assert name == _torch_name(now, host, pid, n, suffix)


# -- EventFile -------------------------------------------------------------------------------------


def test_create_makes_the_directories(tmp_path: Path) -> None:
    log_dir = tmp_path / "a" / "b" / "run"
    f = EventFile.create(str(log_dir), NOW, "host", 42, 1, ".sfx")
    try:
        assert os.path.dirname(f.path) == str(log_dir)
        assert os.path.basename(f.path) == _torch_name(NOW, "host", 42, 1, ".sfx")
        st_ = os.stat(f.path)
        assert stat.S_ISREG(st_.st_mode) and st_.st_size == 0
        assert st_.st_mode & 0o022 == 0 and st_.st_mode & 0o600 == 0o600
    finally:
        f.close()


def test_create_never_reuses_a_name(tmp_path: Path) -> None:
    taken = tmp_path / _torch_name(NOW, "host", 42, 1, "")
    taken.write_bytes(b"someone else's events")
    files = [EventFile.create(str(tmp_path), NOW, "host", 42, 1, "") for _ in range(3)]
    try:
        paths = [f.path for f in files]
        assert len(set(paths)) == 3 and str(taken) not in paths
        assert taken.read_bytes() == b"someone else's events"
        # Each new file sorts after everything that was there before it.
        assert sorted(os.listdir(tmp_path)) == [taken.name, *(os.path.basename(p) for p in paths)]
    finally:
        for f in files:
            f.close()


def test_create_sorts_after_an_existing_later_file(tmp_path: Path) -> None:
    later = tmp_path / _torch_name(NOW + 1000, "zzz", 1, 1, "")
    later.write_bytes(b"")
    f = EventFile.create(str(tmp_path), NOW, "host", 42, 1, "")
    try:
        assert sorted(os.listdir(tmp_path))[-1] == os.path.basename(f.path)
    finally:
        f.close()


def test_create_in_a_file_fails(tmp_path: Path) -> None:
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(OSError):
        EventFile.create(str(tmp_path / "file"), NOW, "host", 1, 1, "")


def test_append_and_read_back_with_tensorboard(tmp_path: Path) -> None:
    f = EventFile.create(str(tmp_path), NOW, "host", 42, 1, "")
    try:
        f.append(frame(b"one") + frame(b"two"))
        f.append(memoryview(frame(b"three")))
        f.sync()
        assert f.end == os.path.getsize(f.path)
    finally:
        f.close()
    assert list(RawEventFileLoader(f.path).Load()) == [b"one", b"two", b"three"]
