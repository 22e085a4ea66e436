"""Nothing a trainer reported as logged is lost when it is SIGKILLed at a
random moment; the daemon's own shutdown drains, writes and exits in time."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from summaryd import SummaryWriter

from ..conftest import DaemonEnv, isolated_env, read_events

pytestmark = pytest.mark.integration
PEERS = Path(__file__).resolve().parent.parent / "peers"
TRIALS = 100


@pytest.fixture(scope="module")
def module_daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonEnv]:
    with (
        pytest.MonkeyPatch.context() as mp,
        isolated_env(tmp_path_factory.mktemp("kills"), mp) as d,
    ):
        d.start()
        yield d


def steps_by_tag(log_dir: Path) -> dict[str, Counter[int]]:
    out: dict[str, Counter[int]] = {}
    for e in read_events(log_dir):
        for v in e.summary.value:
            out.setdefault(v.tag, Counter())[e.step] += 1
    return out


def kill_at_random(peer: str, env: dict[str, str], rng: random.Random, last_target: int) -> int:
    """Run a peer that prints each step it logged, SIGKILL it at a random moment
    after a random step, and return the last step it reported."""
    p = subprocess.Popen(
        [sys.executable, str(PEERS / peer)], env=env, stdout=subprocess.PIPE, text=True
    )
    assert p.stdout is not None
    target = rng.randrange(0, last_target)
    last = -1
    for line in p.stdout:
        last = int(line)
        if last >= target:
            break
    # Kill at a random moment after the target step (the child keeps logging).
    time.sleep(rng.random() * 0.01)  # not a barrier: a random kill point
    p.kill()
    # Steps it reported after `last` count too: read what is left in the pipe.
    rest = p.stdout.read()
    p.stdout.close()
    p.wait()
    return max([last, *(int(x) for x in rest.split())])


def test_random_sigkill_loses_no_reported_step(module_daemon: DaemonEnv, tmp_path: Path) -> None:
    rng = random.Random(1234)
    peers = []
    for trial in range(TRIALS):
        log_dir = tmp_path / f"t{trial}"
        env = module_daemon.env | {"PEER_LOG_DIR": str(log_dir)}
        reported = kill_at_random("log_and_report.py", env, rng, 3000)
        peers.append((log_dir, reported))
    # Every dead client's ring is drained when the daemon notices the death; a
    # graceful stop makes that happen now for all of them.
    module_daemon.stop()
    module_daemon.start()
    lost = 0
    for log_dir, reported in peers:
        got = steps_by_tag(log_dir)
        for tag in ("loss", "note/text_summary"):
            steps = got.get(tag, Counter())
            assert all(n == 1 for n in steps.values()), f"{log_dir}: duplicates in {tag}"
            lost += sum(1 for s in range(reported + 1) if s not in steps)
    assert lost == 0
    assert module_daemon.rings() == []


MEDIA_TRIALS = 20
# The tags of the peer's array records as TensorBoard stores them.
MEDIA_TAGS = ("hist", "image", "images", "audio", "pr", "video")


def test_random_sigkill_loses_no_reported_media_step(
    module_daemon: DaemonEnv, tmp_path: Path
) -> None:
    """As above for every array kind, including blobs (a 1 MiB ring): each step
    the peer reported is in the files once, and no ring or blob is left."""
    rng = random.Random(4321)
    peers = []
    for trial in range(MEDIA_TRIALS):
        log_dir = tmp_path / f"m{trial}"
        env = module_daemon.env | {
            "PEER_LOG_DIR": str(log_dir),
            "SUMMARYD_RING_BYTES": str(1 << 20),
        }
        peers.append((log_dir, kill_at_random("log_media_and_report.py", env, rng, 60)))
    module_daemon.stop()
    module_daemon.start()
    lost = 0
    for log_dir, reported in peers:
        got = steps_by_tag(log_dir)
        for prefix in (*MEDIA_TAGS, "big", "mesh"):
            assert any(t.startswith(prefix) for t in got), f"{log_dir}: no {prefix} at all"
        for tag, steps in got.items():
            assert all(n == 1 for n in steps.values()), f"{log_dir}: duplicates in {tag}"
            every = 7 if tag == "big" else 1
            lost += sum(1 for s in range(0, reported + 1, every) if s not in steps)
    assert lost == 0
    assert module_daemon.rings() == []


def test_sigterm_drains_writes_and_exits_zero(daemon: DaemonEnv, tmp_path: Path) -> None:
    w = SummaryWriter(tmp_path / "run")
    for i in range(20000):
        w.add_scalar("x", float(i), i)
    assert daemon.proc is not None
    t0 = time.monotonic()
    os.kill(daemon.proc.pid, signal.SIGTERM)
    assert daemon.proc.wait(30) == 0
    assert time.monotonic() - t0 < 10
    daemon.proc = None
    steps = steps_by_tag(tmp_path / "run")["x"]
    assert steps == Counter(range(20000))


def test_second_sigint_forces_exit_and_nothing_is_lost(
    daemon_env: DaemonEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A backlog makes the drain take seconds; a second SIGINT exits at once
    (130); the next daemon writes everything, once."""
    monkeypatch.setenv("SUMMARYD_NO_SPAWN", "1")
    monkeypatch.setenv("SUMMARYD_RING_BYTES", str(64 << 20))
    n = 300_000
    w = SummaryWriter(tmp_path / "run")
    for i in range(n):
        w.add_scalar("x", float(i), i)
    proc = daemon_env.start()  # adopts the ring and starts on the backlog
    os.kill(proc.pid, signal.SIGINT)
    # Two signals sent back to back are merged into one: send the second once
    # the daemon has logged that it is draining.
    log = daemon_env.runtime_dir.parent / "daemon.stderr"
    deadline = time.monotonic() + 20
    while "stopping: draining" not in log.read_text():
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGINT)
    assert proc.wait(30) == 130
    daemon_env.proc = None
    daemon_env.start()
    w.close()
    assert steps_by_tag(tmp_path / "run")["x"] == Counter(range(n))
