"""A trainer killed at step K and resumed with purge_step=R <= K: TensorBoard
shows, for every tag (also tags the new life never logs), exactly the first
life's steps < R and the second life's steps >= R, with both of its loaders."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from ..conftest import DaemonEnv

pytestmark = pytest.mark.integration
PEERS = Path(__file__).resolve().parent.parent / "peers"
R = 60


def life(
    d: DaemonEnv,
    log_dir: Path,
    tags: str,
    first: int,
    last: int,
    offset: float,
    purge: int | None = None,
    kill: bool = False,
) -> None:
    env = d.env | {
        "PEER_LOG_DIR": str(log_dir),
        "PEER_TAGS": tags,
        "PEER_FROM": str(first),
        "PEER_TO": str(last),
        "PEER_OFFSET": str(offset),
        "PEER_KILL": "1" if kill else "0",
        "PEER_PURGE": "" if purge is None else str(purge),
    }
    proc = subprocess.run([sys.executable, str(PEERS / "resume_life.py")], env=env, timeout=60)
    assert proc.returncode == (-9 if kill else 0)


def python_loader(log_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """TensorBoard's Python loader (what --load_fast=false runs), with its purge logic."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(log_dir))
    acc.Reload()
    return {tag: [(s.step, s.value) for s in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def expected_two_lives() -> dict[str, list[tuple[int, float]]]:
    return {
        "a": [(s, float(s)) for s in range(R)] + [(s, 1000.0 + s) for s in range(R, 110)],
        "b": [(s, float(s)) for s in range(R)],
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def served_scalars(log_dir: Path, load_fast: bool, tags: list[str]) -> dict[str, list]:
    """Start a real `tensorboard` on loopback and read its scalars plugin's HTTP data."""
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tensorboard.main",
            "--logdir",
            str(log_dir),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            f"--load_fast={str(load_fast).lower()}",
            "--reload_interval",
            "1",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        out: dict[str, list] = {}
        deadline = time.monotonic() + 90
        while set(out) != set(tags):
            assert proc.poll() is None, "tensorboard exited"
            assert time.monotonic() < deadline, f"tensorboard served only {sorted(out)}"
            for tag in tags:
                url = f"http://127.0.0.1:{port}/data/plugin/scalars/scalars?run=.&tag={tag}"
                try:
                    with urllib.request.urlopen(url, timeout=5) as r:
                        out[tag] = [(int(step), float(v)) for _, step, v in json.load(r)]
                except OSError:
                    pass  # not listening or not loaded yet: poll again
            if set(out) != set(tags):
                time.sleep(0.25)
        return out
    finally:
        proc.terminate()
        proc.wait(30)


def test_resume_shows_each_life_where_it_belongs_in_both_loaders(
    daemon: DaemonEnv, tmp_path: Path
) -> None:
    log_dir = tmp_path / "run"
    life(daemon, log_dir, "a,b", 0, 100, 0.0, kill=True)  # killed at step 99
    life(daemon, log_dir, "a", R, 110, 1000.0, purge=R)  # resumed at R
    daemon.stop()  # drains every ring, closes every file
    want = expected_two_lives()
    assert python_loader(log_dir) == want
    for load_fast in (True, False):
        got = served_scalars(log_dir, load_fast, ["a", "b"])
        assert {t: [(s, v) for s, v in pts] for t, pts in got.items()} == want, load_fast


def test_two_ranks_resuming_at_the_same_step_keep_each_others_points(
    daemon: DaemonEnv, tmp_path: Path
) -> None:
    log_dir = tmp_path / "run"
    life(daemon, log_dir, "rank0/a,rank1/a", 0, 100, 0.0, kill=True)
    life(daemon, log_dir, "rank0/a", R, 110, 1000.0, purge=R)
    life(daemon, log_dir, "rank1/a", R, 110, 2000.0, purge=R)
    daemon.stop()
    got = python_loader(log_dir)
    assert got["rank0/a"] == [(s, float(s)) for s in range(R)] + [
        (s, 1000.0 + s) for s in range(R, 110)
    ]
    assert got["rank1/a"] == [(s, float(s)) for s in range(R)] + [
        (s, 2000.0 + s) for s in range(R, 110)
    ]
