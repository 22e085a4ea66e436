"""Many processes, one daemon, one file per run.

A writer made in the main process and used by forked DataLoader workers or
pickled into spawn-started pool workers; a 4-rank torch.distributed (gloo) job;
64 processes into 8 log dirs at once; two processes that log the same tag.
Every event must be read back exactly once, from exactly one event file per
log dir.

torch is imported inside the tests, not here: spawn-started children import
this module to find their target, and should not pay for torch unless they use it.
"""

from __future__ import annotations

import contextlib
import json
import os
import struct
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from summaryd import SummaryWriter

from ..conftest import DaemonEnv, log_together, read_events

pytestmark = pytest.mark.integration
PEERS = Path(__file__).resolve().parent.parent / "peers"


def scalar_points(log_dir: Path) -> Counter[tuple[str, int]]:
    """(tag, step) -> how many times it is in the run, as TensorBoard reads it."""
    return Counter((v.tag, e.step) for e in read_events(log_dir) for v in e.summary.value)


def event_files(log_dir: Path) -> list[Path]:
    return sorted(p for p in log_dir.iterdir() if "tfevents" in p.name)


def _masked_crc32c(data: bytes | memoryview) -> int:
    from crc32c import crc32c

    c = crc32c(data)
    return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def scalar_points_fast(log_dir: Path) -> Counter[tuple[str, int]]:
    """``scalar_points`` for large runs: TensorBoard's reader computes CRC32C in
    pure Python (~20 µs an event); this walks the TFRecord framing itself, checks
    both masked CRCs with the C crc32c, and requires every byte of every file to
    be whole records (TensorBoard would stop at the first damaged one)."""
    from tensorboard.compat.proto import event_pb2

    out: Counter[tuple[str, int]] = Counter()
    for f in event_files(log_dir):
        buf = memoryview(f.read_bytes())
        o = 0
        while o < len(buf):
            assert o + 12 <= len(buf), f"{f}: torn record header at {o}"
            length, lcrc = struct.unpack_from("<QI", buf, o)
            assert _masked_crc32c(buf[o : o + 8]) == lcrc, f"{f}: bad length CRC at {o}"
            end = o + 12 + length
            assert end + 4 <= len(buf), f"{f}: torn record at {o}"
            assert _masked_crc32c(buf[o + 12 : end]) == struct.unpack_from("<I", buf, end)[0], (
                f"{f}: bad data CRC at {o}"
            )
            e = event_pb2.Event.FromString(buf[o + 12 : end])
            for v in e.summary.value:
                out[(v.tag, e.step)] += 1
            o = end + 4
    return out


def ring_pid(name: str) -> int:
    return int(name.rsplit(".", 2)[1])


def wait_rings_removed(d: DaemonEnv, pids: set[int], timeout: float = 20.0) -> None:
    """Wait until the daemon removed the rings of the (exited) processes ``pids``.

    It removes a dead client's ring only once every record in it is in its
    event file, so this is the moment a reader must see all their events.
    """
    deadline = time.monotonic() + timeout
    while True:
        left = [n for n in d.rings() if ring_pid(n) in pids]
        if not left:
            return
        assert time.monotonic() < deadline, f"rings of exited processes not removed: {left}"
        time.sleep(0.05)


@contextlib.contextmanager
def stopped_at_exit(procs: list[subprocess.Popen[str]]) -> Iterator[None]:
    """Whatever happens in the block, no process of ``procs`` outlives it."""
    try:
        yield
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
        for p in procs:
            p.wait()
            for f in (p.stdin, p.stdout, p.stderr):
                if f is not None:
                    with contextlib.suppress(OSError):
                        f.close()


# -- a. one writer, forked DataLoader workers ------------------------------------


# torch suggests at most os.cpu_count() workers; this machine may have fewer than 4 cores.
@pytest.mark.filterwarnings("ignore:This DataLoader will create 4 worker processes:UserWarning")
def test_writer_in_forked_dataloader_workers(daemon: DaemonEnv, tmp_path: Path) -> None:
    from torch.utils.data import DataLoader, Dataset, get_worker_info

    class LoggingDataset(Dataset[tuple[int, int, int]]):
        """Items log through the writer the dataset was given (made in the parent)."""

        def __init__(self, w: SummaryWriter, n: int) -> None:
            self.w = w
            self.n = n

        def __len__(self) -> int:
            return self.n

        def __getitem__(self, i: int) -> tuple[int, int, int]:
            info = get_worker_info()
            worker_id = -1 if info is None else info.id
            self.w.add_scalar(f"worker{worker_id}/item", float(i), i)
            return worker_id, os.getpid(), i

    log_dir = tmp_path / "run"
    n = 400
    w = SummaryWriter(log_dir)
    w.add_scalar("parent/start", 1.0, 0)  # the parent's client exists before the fork
    loader: DataLoader[tuple[int, int, int]] = DataLoader(
        LoggingDataset(w, n),
        batch_size=4,
        num_workers=4,
        multiprocessing_context="fork",
    )
    seen: list[tuple[int, int, int]] = []
    for b, (worker_ids, pids, items) in enumerate(loader):
        seen.extend(zip(worker_ids.tolist(), pids.tolist(), items.tolist(), strict=True))
        w.add_scalar("parent/batch", float(len(seen)), b)
    w.add_scalar("parent/done", float(len(seen)), 0)
    w.close()

    assert sorted(i for _, _, i in seen) == list(range(n))
    worker_pids = {pid for _, pid, _ in seen}
    assert len(worker_pids) == 4 and os.getpid() not in worker_pids
    assert {wid for wid, _, _ in seen} == {0, 1, 2, 3}
    # The workers exited without flushing (os._exit): their records are in their rings.
    wait_rings_removed(daemon, worker_pids)

    expected = Counter({(f"worker{wid}/item", i): 1 for wid, _, i in seen})
    expected.update({("parent/batch", b): 1 for b in range(n // 4)})
    expected.update({("parent/start", 0): 1, ("parent/done", 0): 1})
    assert scalar_points(log_dir) == expected
    assert len(event_files(log_dir)) == 1


# -- b. one writer, pickled into spawn-started pool workers ------------------------


def _pool_task(w: SummaryWriter, k: int) -> int:
    for i in range(300):
        w.add_scalar(f"task{k}/x", float(i), i)
    if k % 2:
        w.flush()  # and the even tasks leave their records to the daemon
    return os.getpid()


def test_writer_pickled_into_spawn_pool(daemon: DaemonEnv, tmp_path: Path) -> None:
    import torch.multiprocessing as tmp

    log_dir = tmp_path / "run"
    tasks = 6
    w = SummaryWriter(log_dir)
    w.add_scalar("parent/x", 0.0, 0)
    pool = tmp.get_context("spawn").Pool(2)
    try:
        result = pool.starmap_async(_pool_task, [(w, k) for k in range(tasks)])
        pids = set(result.get(120))
        pool.close()
        pool.join()
    finally:
        pool.terminate()  # a no-op once joined
    w.add_scalar("parent/x", 1.0, 1)
    w.close()

    assert os.getpid() not in pids and 1 <= len(pids) <= 2
    wait_rings_removed(daemon, pids)
    expected = Counter({(f"task{k}/x", i): 1 for k in range(tasks) for i in range(300)})
    expected.update({("parent/x", 0): 1, ("parent/x", 1): 1})
    assert scalar_points(log_dir) == expected
    assert len(event_files(log_dir)) == 1


# -- c. a 4-rank torch.distributed job (gloo, CPU) ----------------------------------


def _rank_main(rank: int, world: int, init_method: str, log_dir: str, steps: int) -> None:
    import torch
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=init_method, rank=rank, world_size=world)
    try:
        w = SummaryWriter(log_dir)
        t = torch.zeros(1)
        for step in range(steps):
            loss = 1000.0 * rank + step
            w.add_scalar(f"rank{rank}/loss", loss, step)
            t.fill_(loss)
            dist.all_reduce(t)  # the ranks really run in lockstep
            if rank == 0:
                w.add_scalar("mean/loss", t.item() / world, step)
        w.close()
        dist.barrier()
    finally:
        dist.destroy_process_group()


def test_four_rank_gloo_job_into_one_log_dir(
    daemon: DaemonEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from torch.multiprocessing.spawn import start_processes

    log_dir = tmp_path / "run"
    world, steps = 4, 2000
    monkeypatch.setenv("GLOO_SOCKET_IFNAME", "lo")  # the ranks inherit it
    ctx = start_processes(  # type: ignore[no-untyped-call]
        _rank_main,
        args=(world, f"file://{tmp_path}/rendezvous", str(log_dir), steps),
        nprocs=world,
        join=False,
        start_method="spawn",
    )
    deadline = time.monotonic() + 180
    try:
        while not ctx.join(timeout=1.0):
            assert time.monotonic() < deadline, "ranks did not finish in 180 s"
    finally:
        for p in ctx.processes:
            if p.is_alive():
                p.kill()
            p.join()

    events = read_events(log_dir)
    points = Counter((v.tag, e.step) for e in events for v in e.summary.value)
    expected = Counter({(f"rank{r}/loss", s): 1 for r in range(world) for s in range(steps)})
    expected.update({("mean/loss", s): 1 for s in range(steps)})
    assert points == expected
    values = {(v.tag, e.step): v.simple_value for e in events for v in e.summary.value}
    # all_reduce(sum) of 1000 r + step over 4 ranks, over 4: 1500 + step.
    assert all(values[("mean/loss", s)] == 1500.0 + s for s in range(steps))
    assert all(values[("rank3/loss", s)] == 3000.0 + s for s in range(steps))
    assert len(event_files(log_dir)) == 1


# -- d. 64 processes into 8 log dirs ----------------------------------------------


def test_sixty_four_processes_into_eight_log_dirs(daemon: DaemonEnv, tmp_path: Path) -> None:
    procs, dirs, n = 64, 8, 10_000
    log_together(
        [
            daemon.env
            | {
                "PEER_LOG_DIR": str(tmp_path / f"run{r % dirs}"),
                "PEER_N": str(n),
                "PEER_TAG": f"proc{r}/loss",
            }
            for r in range(procs)
        ]
    )
    # Each peer's close() returned only once its events were in the file.
    total = 0
    for k in range(dirs):
        log_dir = tmp_path / f"run{k}"
        points = scalar_points_fast(log_dir)
        if k == 0:  # TensorBoard's own reader agrees (it takes ~2 s per 80,000 events)
            assert scalar_points(log_dir) == points
        total += sum(points.values())
        assert points == Counter(
            {(f"proc{r}/loss", i): 1 for r in range(k, procs, dirs) for i in range(n)}
        ), log_dir
        assert len(event_files(log_dir)) == 1, log_dir
    assert total == procs * n


# -- e. two processes log the same tag ----------------------------------------------


def test_same_tag_from_two_processes_warns_each_once(daemon: DaemonEnv, tmp_path: Path) -> None:
    log_dir = tmp_path / "run"
    n = 1000
    peers: list[subprocess.Popen[str]] = []
    with stopped_at_exit(peers):
        for first in (0, n // 2):  # steps overlap in [500, 1000)
            env = daemon.env | {
                "PEER_LOG_DIR": str(log_dir),
                "PEER_N": str(n),
                "PEER_FIRST": str(first),
                "PEER_TAG": "loss",
            }
            peers.append(
                subprocess.Popen(
                    [sys.executable, str(PEERS / "mp_same_tag.py")],
                    env=env,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
            )

        def step(expect: str) -> None:
            for p in peers:
                assert p.stdout is not None and p.stdout.readline() == expect + "\n"
            for p in peers:
                assert p.stdin is not None
                p.stdin.write("go\n")
                p.stdin.flush()

        step("ready")
        step("logged")  # both are live clients that have logged the tag: now close
        reports: list[dict[str, Any]] = []
        for p in peers:
            out, err = p.communicate(timeout=60)
            assert p.returncode == 0, err
            assert "Warning" not in err  # no notice left over for exit time either
            reports.append(json.loads(out))
    pids = [r["pid"] for r in reports]
    for r in reports:
        assert r["other"] == []
        assert len(r["notices"]) == 1, r["notices"]
        msg = r["notices"][0]
        assert "'loss'" in msg and "rank<N>/loss" in msg and str(log_dir) in msg
        assert all(str(pid) in msg for pid in pids)
    # The daemon writes every point; which ones TensorBoard keeps is its business.
    expected = Counter({("loss", i): 1 for i in range(n + n // 2)})
    expected.update({("loss", i): 1 for i in range(n // 2, n)})
    assert scalar_points(log_dir) == expected
    assert len(event_files(log_dir)) == 1
