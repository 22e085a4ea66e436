"""paths.py: the runtime directory's safety checks, process identity, ring names."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from summaryd.errors import RuntimeDirError
from summaryd.paths import (
    MAX_SOCKET_PATH,
    SOCKET_NAME,
    Locations,
    ensure_runtime_dir,
    locations,
    process_alive,
    process_start_ticks,
)

# -- ensure_runtime_dir ------------------------------------------------------------


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o000, 0o077])
def test_creates_the_directory_0700_whatever_the_umask(tmp_path: Path, umask: int) -> None:
    path = tmp_path / "rt"
    old = os.umask(umask)
    try:
        ensure_runtime_dir(str(path))
    finally:
        os.umask(old)
    st_ = os.lstat(path)
    assert stat.S_ISDIR(st_.st_mode)
    assert stat.S_IMODE(st_.st_mode) == 0o700
    assert st_.st_uid == os.getuid()


def test_accepts_an_existing_private_directory_again(tmp_path: Path) -> None:
    path = tmp_path / "rt"
    ensure_runtime_dir(str(path))
    (path / "keep").write_text("x")
    ensure_runtime_dir(str(path))
    assert (path / "keep").read_text() == "x"


def test_refuses_a_symlink_even_to_a_good_directory(tmp_path: Path) -> None:
    real = tmp_path / "real"
    ensure_runtime_dir(str(real))
    link = tmp_path / "rt"
    link.symlink_to(real)
    with pytest.raises(RuntimeDirError, match="symlink"):
        ensure_runtime_dir(str(link))


def test_refuses_a_dangling_symlink_and_creates_nothing_through_it(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    link = tmp_path / "rt"
    link.symlink_to(target)
    with pytest.raises(RuntimeDirError, match="symlink"):
        ensure_runtime_dir(str(link))
    assert not target.exists()


def test_refuses_a_file(tmp_path: Path) -> None:
    path = tmp_path / "rt"
    path.write_text("")
    os.chmod(path, 0o700)
    with pytest.raises(RuntimeDirError, match="not a directory"):
        ensure_runtime_dir(str(path))


@pytest.mark.parametrize("mode", [0o755, 0o750, 0o701, 0o770, 0o1777])
def test_refuses_a_directory_open_to_others(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "rt"
    path.mkdir()
    os.chmod(path, mode)
    with pytest.raises(RuntimeDirError, match="mode"):
        ensure_runtime_dir(str(path))
    assert stat.S_IMODE(os.lstat(path).st_mode) == mode  # refused, not "fixed"


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to chown a directory to another uid")
def test_refuses_a_directory_owned_by_another_uid(tmp_path: Path) -> None:
    path = tmp_path / "rt"
    path.mkdir(mode=0o700)
    os.chown(path, 65534, 65534)
    with pytest.raises(RuntimeDirError, match="belongs to uid 65534"):
        ensure_runtime_dir(str(path))


def test_refuses_a_path_too_long_for_a_socket_and_creates_nothing(tmp_path: Path) -> None:
    room = MAX_SOCKET_PATH - len(str(tmp_path)) - len(SOCKET_NAME) - 2
    fits = tmp_path / ("d" * room)
    assert len(os.path.join(str(fits), SOCKET_NAME)) == MAX_SOCKET_PATH
    ensure_runtime_dir(str(fits))
    too_long = tmp_path / ("e" * (room + 1))
    with pytest.raises(RuntimeDirError, match="too long"):
        ensure_runtime_dir(str(too_long))
    assert not too_long.exists()


def test_refuses_a_directory_whose_parent_is_missing_with_advice(tmp_path: Path) -> None:
    """BUG: $XDG_RUNTIME_DIR inherited into a session where it does not exist
    (``sudo -u``, some containers) makes ``os.mkdir`` raise FileNotFoundError,
    outside the documented RuntimeDirError, and ``SummaryWriter()`` raises it
    where torch's would work.  At least: a RuntimeDirError that says what to set."""
    path = tmp_path / "missing" / "summaryd"
    with pytest.raises(RuntimeDirError, match="SUMMARYD_RUNTIME_DIR"):
        ensure_runtime_dir(str(path))
    assert not path.parent.exists()


def test_runtime_dir_error_is_a_permission_error(tmp_path: Path) -> None:
    path = tmp_path / "rt"
    path.write_text("")
    with pytest.raises(PermissionError):
        ensure_runtime_dir(str(path))


# -- process identity ----------------------------------------------------------------


def _ticks_from_stat(pid: int) -> int:
    data = Path(f"/proc/{pid}/stat").read_bytes()
    return int(data[data.rfind(b")") + 2 :].split()[19])


def test_start_ticks_of_this_process() -> None:
    ticks = process_start_ticks(os.getpid())
    assert isinstance(ticks, int) and ticks > 0
    assert ticks == _ticks_from_stat(os.getpid())
    assert process_start_ticks(os.getpid()) == ticks  # stable
    assert process_alive(os.getpid(), ticks)
    assert not process_alive(os.getpid(), ticks + 1)  # same pid, another start: another process


def test_start_ticks_of_a_process_that_does_not_exist() -> None:
    pid_max = int(Path("/proc/sys/kernel/pid_max").read_text())
    assert process_start_ticks(pid_max + 1) is None
    assert process_start_ticks(-1) is None
    assert not process_alive(pid_max + 1, 0)


def test_start_ticks_of_a_zombie_is_none() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        deadline = time.monotonic() + 20
        while True:  # exited but not reaped (Popen reaps only in wait/poll)
            stat_ = Path(f"/proc/{child.pid}/stat").read_bytes()
            if stat_[stat_.rfind(b")") + 2 :].split()[0] == b"Z":
                break
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert process_start_ticks(child.pid) is None
    finally:
        child.wait()


def test_start_ticks_survive_a_command_name_with_spaces_and_parentheses() -> None:
    # A process may rename only itself: the child reads its start time, renames
    # itself so that /proc/<pid>/stat reads "pid () Z (x y) S ...", and waits.
    code = (
        "import sys, time\n"
        "d = open('/proc/self/stat', 'rb').read()\n"
        "print(int(d[d.rfind(b')') + 2:].split()[19]))\n"
        "open('/proc/self/comm', 'w').write(') Z (x y')\n"
        "print('renamed', flush=True)\n"
        "time.sleep(30)\n"
    )
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        before = int(child.stdout.readline())
        assert child.stdout.readline() == "renamed\n"
        assert Path(f"/proc/{child.pid}/stat").read_bytes().count(b")") == 2
        assert process_start_ticks(child.pid) == before
        assert process_alive(child.pid, before)
    finally:
        child.kill()
        child.wait()
        if child.stdout is not None:
            child.stdout.close()


# -- locations and ring names -----------------------------------------------------


def test_locations_from_the_environment() -> None:
    uid = os.getuid()
    assert locations({}) == Locations(f"/tmp/summaryd-{uid}", "/dev/shm", f"summaryd.{uid}")
    assert locations({"XDG_RUNTIME_DIR": "/run/user/7"}).runtime_dir == "/run/user/7/summaryd"
    loc = locations(
        {
            "XDG_RUNTIME_DIR": "/run/user/7",
            "SUMMARYD_RUNTIME_DIR": "/x/rt",
            "SUMMARYD_SHM_DIR": "/x/shm",
            "SUMMARYD_RING_PREFIX": "pfx",
        }
    )
    assert loc == Locations("/x/rt", "/x/shm", "pfx")
    assert loc.socket_path == "/x/rt/ctl.sock"
    assert loc.endpoint == "ipc:///x/rt/ctl.sock"
    assert loc.lock_path == "/x/rt/daemon.lock"
    assert loc.pid_path == "/x/rt/daemon.pid"
    assert loc.log_path == "/x/rt/daemon.log"
    # Empty values count as unset.
    assert locations({"SUMMARYD_RUNTIME_DIR": "", "SUMMARYD_RING_PREFIX": ""}) == locations({})


def test_ring_name_and_path() -> None:
    loc = Locations("/rt", "/dev/shm", "summaryd.1000")
    name = loc.ring_name(4242, "0123456789abcdef")
    assert name == "summaryd.1000.4242.0123456789abcdef"
    assert loc.ring_path(name) == "/dev/shm/summaryd.1000.4242.0123456789abcdef"
    assert loc.is_ring_name(name)


@given(
    prefix=st.sampled_from(["summaryd.0", "summaryd.1000", "sdtest-0a1b2c3d", "p"]),
    pid=st.integers(1, 2**22),
    session=st.binary(min_size=8, max_size=8).map(bytes.hex),
)
def test_every_ring_name_is_recognised_by_its_own_prefix_only(
    prefix: str, pid: int, session: str
) -> None:
    loc = Locations("/rt", "/dev/shm", prefix)
    name = loc.ring_name(pid, session)
    assert loc.is_ring_name(name)
    for other in (prefix + "x", prefix[:-1] or "q", "x" + prefix):
        assert not Locations("/rt", "/dev/shm", other).is_ring_name(name)


@pytest.mark.parametrize(
    "name",
    [
        "summaryd.1000",  # the prefix alone
        "summaryd.10000.1.abc",  # another uid's prefix that extends ours
        "summaryd.100.1.abc",  # a shorter uid's
        "xsummaryd.1000.1.abc",
        "",
        "ctl.sock",
    ],
)
def test_names_that_are_not_our_rings(name: str) -> None:
    assert not Locations("/rt", "/dev/shm", "summaryd.1000").is_ring_name(name)
