"""Two nodes, one directory: every event of both, in both TensorBoard loaders.

Each simulated node is a daemon with its own runtime dir and ring prefix, and
a trainer of its own; both log into one run directory (a shared filesystem
seen from two machines).  TensorBoard's Python loader reads a run's files in
name order and never goes back to a file once a later one exists, so two
daemons writing a file each would lose points; the daemons write one file
(``daemon/eventfile.py``).  Checked with readers that load *while* the nodes
log (TensorBoard's ``EventAccumulator`` reloaded between rounds, and real
``tensorboard`` servers with each loader, reloading every second) and once
more from scratch at the end.
"""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from ..conftest import DaemonEnv, daemons, read_events
from ..driven import Trainer
from .test_tensorboard_server import Server

pytestmark = pytest.mark.integration


@pytest.fixture
def node_envs(tmp_path: Path) -> Iterator[tuple[DaemonEnv, DaemonEnv]]:
    """Daemons of two nodes: own runtime dirs and ring prefixes; stopped by PID after."""
    with daemons(tmp_path, ("node_a", "node_b"), one_prefix=False) as (a, b):
        yield a, b


Start = Callable[[dict[str, str]], Trainer]


@pytest.fixture
def trainers() -> Iterator[Callable[[dict[str, str]], Trainer]]:
    """Starts a trainer (``tests/peers/line_trainer.py``); all stopped by PID after."""
    made: list[Trainer] = []

    def start(env: dict[str, str]) -> Trainer:
        made.append(Trainer(env))
        return made[-1]

    try:
        yield start
    finally:
        for t in made:
            t.end()


def both_logging(
    a: DaemonEnv, b: DaemonEnv, trainers: Start, run: Path, upto: int
) -> tuple[Trainer, Trainer]:
    """Both nodes' daemons started, each with a trainer that logged steps
    0..upto-1 of its own tag into ``run`` and flushed."""
    a.start()
    b.start()
    ta, tb = trainers(a.env), trainers(b.env)
    for t, tag in ((ta, "node_a"), (tb, "node_b")):
        t("log", run, tag, 0, upto)
        t("flush", run)
    return ta, tb


def steps(acc: EventAccumulator, tag: str) -> list[int]:
    return [e.step for e in acc.Scalars(tag)]


def served_steps(server: Server, run: str, tag: str) -> list[int]:
    try:
        data = server.json("/data/plugin/scalars/scalars", {"run": run, "tag": tag})
    except AssertionError:
        return []  # not loaded yet (400: unknown run or tag)
    return sorted(int(point[1]) for point in data)


def wait_served(server: Server, run: str, want: dict[str, list[int]]) -> None:
    """Poll (bounded) until the server shows every step of every tag; the
    failure says what is missing."""
    deadline = time.monotonic() + 90
    got: dict[str, list[int]] = {}
    while time.monotonic() < deadline:
        got = {tag: served_steps(server, run, tag) for tag in want}
        if got == want:
            return
        time.sleep(0.5)
    missing = {t: sorted(set(want[t]) - set(got.get(t, []))) for t in want}
    raise AssertionError(f"{server.name}: steps not served: {missing}\n{server.stderr_tail()}")


def test_two_nodes_one_directory_every_event_in_both_loaders(
    node_envs: tuple[DaemonEnv, DaemonEnv],
    trainers: Start,
    tmp_path: Path,
) -> None:
    a, b = node_envs
    root = tmp_path / "logs"
    run = root / "shared"
    a.start()
    b.start()
    ta, tb = trainers(a.env), trainers(b.env)
    ta("log", run, "node_a", 0, 25)
    ta("flush", run)
    servers = [
        Server(f"load_fast={fast}", root, fast, tmp_path / f"tb-{fast}.log")
        for fast in (True, False)
    ]
    try:
        for s in servers:
            s.wait_answering(time.monotonic() + 60)
        live = EventAccumulator(str(run))
        live.Reload()
        for r in range(8):
            if r:
                ta("log", run, "node_a", 25 * r, 25 * r + 25)
            tb("log", run, "node_b", 25 * r, 25 * r + 25)
            ta("flush", run)
            tb("flush", run)
            live.Reload()  # a reader part-way through, as TensorBoard between reloads
        ta("quit")
        tb("quit")
        want = {"node_a": list(range(200)), "node_b": list(range(200))}
        live.Reload()
        assert {t: steps(live, t) for t in want} == want
        fresh = EventAccumulator(str(run))
        fresh.Reload()
        assert {t: steps(fresh, t) for t in want} == want
        for s in servers:
            wait_served(s, "shared", want)
    finally:
        for s in servers:
            s.terminate()
        for s in servers:
            s.reap()
    # One file for the run, whichever node's daemon made it.
    assert len([n for n in os.listdir(run) if "tfevents" in n]) == 1


def test_a_node_killed_and_restarted_mid_run_loses_and_repeats_nothing(
    node_envs: tuple[DaemonEnv, DaemonEnv],
    trainers: Start,
    tmp_path: Path,
) -> None:
    a, b = node_envs
    run = tmp_path / "logs" / "shared"
    ta, tb = both_logging(a, b, trainers, run, 50)
    live = EventAccumulator(str(run))
    live.Reload()
    a.stop(signal.SIGKILL)  # node a's daemon dies; its trainer goes on into its ring
    ta("log", run, "node_a", 50, 100)
    tb("log", run, "node_b", 50, 100)
    tb("flush", run)
    live.Reload()
    a.start()  # adopts the ring, joins the file node b is writing
    ta("flush", run)
    live.Reload()
    for t, tag in ((ta, "node_a"), (tb, "node_b")):
        t("log", run, tag, 100, 150)
        t("flush", run)
        live.Reload()
    ta("quit")
    tb("quit")
    live.Reload()
    want = {"node_a": list(range(150)), "node_b": list(range(150))}
    assert {t: steps(live, t) for t in want} == want
    counts = Counter((v.tag, e.step) for e in read_events(run) for v in e.summary.value)
    assert counts == Counter({(t, i): 1 for t in want for i in range(150)})


def values(acc: EventAccumulator, tag: str) -> list[tuple[int, float]]:
    return [(e.step, e.value) for e in acc.Scalars(tag)]


def assert_shown(
    live: EventAccumulator, root: Path, tmp_path: Path, want: dict[str, list[tuple[int, float]]]
) -> None:
    """``want`` (tag -> (step, value)) is what TensorBoard shows of run
    ``shared``: the reader that loaded while the nodes logged, a fresh one, and
    a real server with the Rust loader (which ignores SessionLog.START: it
    shows a purge only if the earlier files lost the purged steps)."""
    live.Reload()
    assert {t: values(live, t) for t in want} == want
    fresh = EventAccumulator(str(root / "shared"))
    fresh.Reload()
    assert {t: values(fresh, t) for t in want} == want
    server = Server("load_fast=True", root, True, tmp_path / "tb-fast.log")
    try:
        server.wait_answering(time.monotonic() + 60)
        wait_served(server, "shared", {t: [s for s, _ in v] for t, v in want.items()})
        for t, v in want.items():
            data = server.json("/data/plugin/scalars/scalars", {"run": "shared", "tag": t})
            assert sorted((int(p[1]), p[2]) for p in data) == v
    finally:
        server.terminate()
        server.reap()


def test_a_resumed_life_starts_a_new_file_and_purges_the_shared_one_once_it_is_finished(
    node_envs: tuple[DaemonEnv, DaemonEnv],
    trainers: Start,
    tmp_path: Path,
) -> None:
    """Rank 0 on node a resumes with purge_step=50 while node b's daemon still
    writes the first life's file: the new life must not join that file (the
    Rust loader would show the first life's steps >= 50 next to the new ones);
    the file is purged once node b is done with it."""
    a, b = node_envs
    root = tmp_path / "logs"
    run = root / "shared"
    ta, tb = both_logging(a, b, trainers, run, 100)
    live = EventAccumulator(str(run))
    live.Reload()
    ta("quit")  # rank 0's first life ends (node b's trainer still holds the file)
    ta2 = trainers(a.env)
    ta2("resume", run, 50)
    ta2("log", run, "node_a", 50, 80, 1000)
    ta2("flush", run)
    first_life = sorted(n for n in os.listdir(run) if "tfevents" in n)
    assert len(first_life) == 2  # the new life's file sorts after the shared one
    tb("quit")  # node b's first life ends; its daemon lets go of the file
    tb2 = trainers(b.env)
    tb2("log", run, "node_b", 50, 80, 1000)
    tb2("flush", run)
    live.Reload()
    ta2("quit")
    tb2("quit")
    want = {
        t: [(i, float(i)) for i in range(50)] + [(i, i + 1000.0) for i in range(50, 80)]
        for t in ("node_a", "node_b")
    }
    assert_shown(live, root, tmp_path, want)


def test_ranks_of_two_nodes_resuming_at_one_step_purge_once(
    node_envs: tuple[DaemonEnv, DaemonEnv],
    trainers: Start,
    tmp_path: Path,
) -> None:
    """Both nodes' ranks resume with purge_step=50.  Each daemon would write
    torch's purge pair; a second SessionLog.START read after the first node's
    new points makes TensorBoard's Python loader drop them.  The second node
    joins the life the first began and leaves its pair out."""
    a, b = node_envs
    root = tmp_path / "logs"
    run = root / "shared"
    ta, tb = both_logging(a, b, trainers, run, 100)
    ta("quit")
    tb("quit")
    live = EventAccumulator(str(run))
    live.Reload()
    ta2 = trainers(a.env)
    ta2("resume", run, 50)
    ta2("log", run, "node_a", 50, 80, 1000)
    ta2("flush", run)
    live.Reload()
    tb2 = trainers(b.env)
    tb2("resume", run, 50)
    tb2("log", run, "node_b", 50, 80, 1000)
    tb2("flush", run)
    ta2("log", run, "node_a", 80, 90, 1000)
    ta2("flush", run)
    live.Reload()
    ta2("quit")
    tb2("quit")
    want = {
        "node_a": [(i, float(i)) for i in range(50)] + [(i, i + 1000.0) for i in range(50, 90)],
        "node_b": [(i, float(i)) for i in range(50)] + [(i, i + 1000.0) for i in range(50, 80)],
    }
    assert_shown(live, root, tmp_path, want)
    starts = [e.step for e in read_events(run) if e.HasField("session_log")]
    assert starts == [50]  # one pair for the resumed life
