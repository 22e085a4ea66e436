"""Real processes against a real daemon: kills, many writers, fork, spawn on demand."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from summaryd import SummaryWriter

from ..conftest import DaemonEnv, log_together, read_events, wait_for_daemon

pytestmark = pytest.mark.integration
PEERS = Path(__file__).resolve().parent.parent / "peers"


def scalar_points(log_dir: Path) -> Counter[tuple[str, int]]:
    """(tag, step) -> how many times it is in the run, as TensorBoard reads it."""
    return Counter((v.tag, e.step) for e in read_events(log_dir) for v in e.summary.value)


def run_code(code: str, env: dict[str, str], log_dir: Path, timeout: float) -> Any:
    """Run ``code`` in a fresh interpreter with ``log_dir`` as argv[1]; its stdout."""
    return subprocess.run(
        [sys.executable, "-c", code, str(log_dir)],
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def event_files(log_dir: Path) -> list[Path]:
    return sorted(p for p in log_dir.iterdir() if "tfevents" in p.name)


@pytest.mark.parametrize("n", [1, 5, 100, 5000])
def test_sigkill_right_after_logging_loses_nothing(
    daemon: DaemonEnv, tmp_path: Path, n: int
) -> None:
    log_dir = tmp_path / "run"
    env = daemon.env | {"PEER_LOG_DIR": str(log_dir), "PEER_N": str(n)}
    proc = subprocess.run([sys.executable, str(PEERS / "kill_after_logging.py")], env=env)
    assert proc.returncode == -9
    daemon.stop()  # drains every ring (the dead client's too) before exiting
    points = scalar_points(log_dir)
    assert points == Counter({("loss", i): 1 for i in range(n)})
    assert daemon.rings() == []  # the dead client's ring was removed


def test_sigkill_with_no_daemon_then_daemon_adopts_ring(
    daemon_env: DaemonEnv, tmp_path: Path
) -> None:
    log_dir = tmp_path / "run"
    env = daemon_env.env | {"PEER_LOG_DIR": str(log_dir), "PEER_N": "300", "SUMMARYD_NO_SPAWN": "1"}
    proc = subprocess.run([sys.executable, str(PEERS / "kill_after_logging.py")], env=env)
    assert proc.returncode == -9
    assert len(daemon_env.rings()) == 1  # the records wait in shared memory
    daemon_env.start()
    daemon_env.stop()
    assert scalar_points(log_dir) == Counter({("loss", i): 1 for i in range(300)})
    assert daemon_env.rings() == []


def test_sixteen_processes_into_one_log_dir(daemon: DaemonEnv, tmp_path: Path) -> None:
    log_dir = tmp_path / "run"
    n, procs = 10_000, 16
    log_together(
        [
            daemon.env
            | {"PEER_LOG_DIR": str(log_dir), "PEER_N": str(n), "PEER_TAG": f"rank{r}/loss"}
            for r in range(procs)
        ],
        timeout=120,
    )
    # Each peer's close() returned only once its events were in the file.
    points = scalar_points(log_dir)
    assert sum(points.values()) == n * procs
    assert points == Counter({(f"rank{r}/loss", i): 1 for r in range(procs) for i in range(n)})
    assert len(event_files(log_dir)) == 1


def _forked_worker(log_dir: str, w: SummaryWriter, k: int) -> None:
    for i in range(200):
        w.add_scalar(f"worker{k}", float(i), i)
    w.flush()


def test_writer_used_in_forked_children(daemon: DaemonEnv, tmp_path: Path) -> None:
    log_dir = tmp_path / "run"
    w = SummaryWriter(log_dir)
    w.add_scalar("parent", 1.0, 0)
    ctx = multiprocessing.get_context("fork")
    children = [ctx.Process(target=_forked_worker, args=(str(log_dir), w, k)) for k in range(4)]
    for c in children:
        c.start()
    for c in children:
        c.join(60)
        assert c.exitcode == 0
    w.add_scalar("parent", 2.0, 1)
    w.close()
    points = scalar_points(log_dir)
    expected = Counter({(f"worker{k}", i): 1 for k in range(4) for i in range(200)})
    expected.update({("parent", 0): 1, ("parent", 1): 1})
    assert points == expected
    assert len(event_files(log_dir)) == 1


def test_first_writer_spawns_a_detached_daemon(daemon_env: DaemonEnv, tmp_path: Path) -> None:
    log_dir = tmp_path / "run"
    code = (
        "import os, sys\n"
        "from summaryd import SummaryWriter\n"
        "w = SummaryWriter(sys.argv[1])\n"
        "for i in range(50): w.add_scalar('x', i, i)\n"
        "w.close()\n"
        "print(os.getsid(0))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(log_dir)],
        env=daemon_env.env,
        check=True,
        capture_output=True,
        text=True,
    )
    wait_for_daemon(daemon_env)
    pid = daemon_env.pid
    assert pid is not None
    # Its own session: a signal to the trainer's process group does not reach it.
    assert os.getsid(pid) != int(out.stdout.strip())
    assert os.getsid(pid) == pid
    assert scalar_points(log_dir) == Counter({("x", i): 1 for i in range(50)})


def test_no_spawn_and_no_daemon_never_hangs_or_raises(
    daemon_env: DaemonEnv, tmp_path: Path
) -> None:
    code = (
        "import sys, time, warnings\n"
        "from summaryd import SummaryWriter\n"
        "w = SummaryWriter(sys.argv[1])\n"
        "for i in range(100): w.add_scalar('x', i, i)\n"
        "t = time.monotonic(); w.flush(); print(round(time.monotonic() - t, 1))\n"
    )
    env = daemon_env.env | {
        "SUMMARYD_NO_SPAWN": "1",
        "SUMMARYD_FLUSH_TIMEOUT": "0.5",
        "SUMMARYD_EXIT_FLUSH_TIMEOUT": "0.2",
    }
    out = run_code(code, env, tmp_path / "run", timeout=30)
    assert float(out.stdout.strip()) <= 1.0
    assert daemon_env.pid is None
    # The 101 records wait in the ring for the next daemon.
    daemon_env.start()
    daemon_env.stop()
    assert sum(scalar_points(tmp_path / "run").values()) == 100


def _spawned_worker(w: SummaryWriter, k: int) -> None:
    for i in range(100):
        w.add_scalar(f"spawned{k}", float(i), i)
    w.add_scalars("grp", {"a": 1.0}, 0)
    w.close()


def test_writer_pickles_into_spawned_processes(daemon: DaemonEnv, tmp_path: Path) -> None:
    log_dir = tmp_path / "run"
    w = SummaryWriter(log_dir)
    ctx = multiprocessing.get_context("spawn")
    children = [ctx.Process(target=_spawned_worker, args=(w, k)) for k in range(2)]
    for c in children:
        c.start()
    for c in children:
        c.join(120)
        assert c.exitcode == 0
    w.close()
    points = scalar_points(log_dir)
    assert points == Counter({(f"spawned{k}", i): 1 for k in range(2) for i in range(100)})
    assert scalar_points(log_dir / "grp_a") == Counter({("grp", 0): 2})
    assert len(event_files(log_dir)) == 1


def test_full_ring_drops_with_one_warning_and_does_not_hang(
    daemon_env: DaemonEnv, tmp_path: Path
) -> None:
    code = (
        "import sys, time, warnings\n"
        "from summaryd import SummaryWriter, RecordsDroppedWarning\n"
        "w = SummaryWriter(sys.argv[1])\n"
        "t = time.monotonic()\n"
        "with warnings.catch_warnings(record=True) as caught:\n"
        "    warnings.simplefilter('always')\n"
        "    for i in range(2000): w.add_scalar('x', i, i)\n"
        "dropped = [c for c in caught if issubclass(c.category, RecordsDroppedWarning)]\n"
        "print(len(dropped), w.statistics().records_dropped, round(time.monotonic() - t, 2))\n"
    )
    env = daemon_env.env | {
        "SUMMARYD_NO_SPAWN": "1",
        "SUMMARYD_RING_BYTES": "4096",
        "SUMMARYD_FULL_WAIT": "0.2",
        "SUMMARYD_FLUSH_TIMEOUT": "0.1",
        "SUMMARYD_EXIT_FLUSH_TIMEOUT": "0.1",
    }
    out = run_code(code, env, tmp_path / "run", timeout=60)
    warnings_seen, dropped, seconds = out.stdout.split()
    assert int(warnings_seen) == 1  # rate-limited
    assert 1800 < int(dropped) < 2000  # a 4 KiB ring holds about 125 records
    assert float(seconds) < 2.0  # waited once (0.2 s), then dropped without waiting
    # What fit in the ring is written by the next daemon.
    daemon_env.start()
    daemon_env.stop()
    assert sum(scalar_points(tmp_path / "run").values()) == 2000 - int(dropped)
