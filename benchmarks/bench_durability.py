#!/usr/bin/env python
"""Durability: what reaches the event files when trainers are SIGKILLed, when many
processes log into one run, and when a writer is used in forked DataLoader workers,
for summaryd and torch.utils.tensorboard.SummaryWriter side by side, in one run.

    python benchmarks/bench_durability.py [--quick] [--trials N] [--seed S] [--json out.json]

Scenarios (see README.md, "Durability"):

i    a process logs N scalars (N = 5, 100, 1000) and SIGKILLs itself on the next line;
ii   a parent SIGKILLs a continuously logging child at a random moment; the child
     prints each step after add_scalar returned; lost = reported steps not in the files;
iii  16 processes log K scalars each into one log dir and close; lost, event files;
iv   a writer made in the main process and used in DataLoader(num_workers=4,
     multiprocessing_context="fork") workers; lost, duplicated, files, hangs.

Every trial runs in a process forked from a "zygote" interpreter per writer that has
imported torch and the writer's module (as a trainer has, long before it logs), so a
trial does not pay torch's ~4 s import.  summaryd runs against its own daemon (``serve
--foreground``) in a private runtime dir with a private ring prefix; in i and ii the
daemon is stopped gracefully (SIGTERM drains every ring, the dead trainers' too) before
the files are read.  Files are read with TensorBoard's own RawEventFileLoader, as
TensorBoard reads them.  Progress goes to stderr, the table to stdout.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import secrets
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from isolated_daemon import IsolatedDaemon  # beside this script
from machine import describe  # beside this script

HERE = Path(__file__).resolve()
WRITERS = ("summaryd", "torch")
FULL = {
    "kill_ns": (5, 100, 1000),
    "kill_trials": 5,
    "random_trials": 100,
    "random_max_target": 2000,
    "procs": 16,
    "k": 10_000,
    "dl_items": 400,
    "dl_timeout": 5.0,
}
QUICK = {
    "kill_ns": (5, 100, 1000),
    "kill_trials": 2,
    "random_trials": 15,
    "random_max_target": 500,
    "procs": 16,
    "k": 1_000,
    "dl_items": 200,
    "dl_timeout": 2.0,
}
RANDOM_CHILD_SECONDS = 30.0  # a child of scenario ii stops by itself (never orphaned for long)


# =============================================================================
# zygote side: a fresh interpreter per writer; forks one child per job
# =============================================================================


def emit(obj: Any) -> None:
    """One line on stdout in one write() (atomic in a pipe below 4 KiB)."""
    data = (obj if isinstance(obj, str) else json.dumps(obj)) + "\n"
    view = memoryview(data.encode())
    while view:
        view = view[os.write(1, view) :]


def _writer_class(kind: str) -> Any:
    if kind == "summaryd":
        from summaryd import SummaryWriter
    else:
        from torch.utils.tensorboard import SummaryWriter
    return SummaryWriter


def job_kill_after(W: Any, job: dict[str, Any]) -> None:
    w = W(job["log_dir"])
    for i in range(job["n"]):
        w.add_scalar("loss", float(i), i)
    os.kill(os.getpid(), signal.SIGKILL)


def job_log_forever(W: Any, job: dict[str, Any]) -> None:
    w = W(job["log_dir"])
    deadline = time.monotonic() + RANDOM_CHILD_SECONDS
    step = 0
    while time.monotonic() < deadline:
        w.add_scalar("loss", float(step), step)
        os.write(1, b"%d\n" % step)  # reported: add_scalar has returned
        step += 1
    w.close()


def job_many(W: Any, job: dict[str, Any]) -> None:
    """``procs`` processes each make a writer, wait at a barrier, log ``k`` scalars, close."""
    procs, k = job["procs"], job["k"]
    ready_r, ready_w = os.pipe()
    go_r, go_w = os.pipe()
    pids = []
    for r in range(procs):
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                os.close(ready_r)
                os.close(go_w)
                w = W(job["log_dir"])
                os.write(ready_w, b"r")
                os.read(go_r, 1)  # EOF when the coordinator closes go_w: all start at once
                tag = f"rank{r}/loss"
                for i in range(k):
                    w.add_scalar(tag, float(i), i)
                w.close()
                code = 0
            except BaseException:
                traceback.print_exc()
            finally:
                os._exit(code)
        pids.append(pid)
    os.close(ready_w)
    os.close(go_r)
    got = 0
    while got < procs:
        b = os.read(ready_r, procs)
        if not b:
            break
        got += len(b)
    t0 = time.monotonic()
    os.close(go_w)
    codes = [os.waitstatus_to_exitcode(os.waitpid(p, 0)[1]) for p in pids]
    emit({"elapsed": time.monotonic() - t0, "exit_codes": codes, "ready": got})


def job_dataloader(W: Any, job: dict[str, Any]) -> None:
    import torch.utils.data._utils as dl_utils
    from torch.utils.data import DataLoader, Dataset, get_worker_info

    # Joining a hung worker waits this long per worker before terminating it (5 s).
    dl_utils.MP_STATUS_CHECK_INTERVAL = 0.5

    class LoggingDataset(Dataset):  # type: ignore[type-arg]
        def __init__(self, w: Any, n: int) -> None:
            self.w = w
            self.n = n

        def __len__(self) -> int:
            return self.n

        def __getitem__(self, i: int) -> tuple[int, int, int]:
            info = get_worker_info()
            wid = -1 if info is None else info.id
            self.w.add_scalar(f"worker{wid}/item", float(i), i)
            return wid, os.getpid(), i

    w = W(job["log_dir"])
    w.add_scalar("parent/start", 1.0, 0)
    loader = DataLoader(
        LoggingDataset(w, job["n"]),
        batch_size=4,
        num_workers=4,
        multiprocessing_context="fork",
        timeout=job["dl_timeout"],
    )
    seen: list[tuple[int, int, int]] = []
    error = None
    batches = 0
    t0 = time.monotonic()
    try:
        for wids, pids, items in loader:
            seen.extend(zip(wids.tolist(), pids.tolist(), items.tolist(), strict=True))
            w.add_scalar("parent/batch", float(len(seen)), batches)
            batches += 1
    except RuntimeError as exc:  # DataLoader(timeout=...) expired: the workers hang
        error = str(exc)
    elapsed = time.monotonic() - t0
    w.add_scalar("parent/done", float(len(seen)), 0)
    w.close()
    emit({"seen": seen, "batches": batches, "error": error, "elapsed": elapsed})


JOBS = {
    "kill_after": job_kill_after,
    "log_forever": job_log_forever,
    "many": job_many,
    "dataloader": job_dataloader,
}


def zygote_main(kind: str) -> int:
    import warnings

    import torch  # noqa: F401  (a trainer has imported torch long before it logs)
    import torch.utils.data  # noqa: F401

    # 4 DataLoader workers on fewer cores draws a UserWarning on stderr: not the point.
    warnings.filterwarnings("ignore", "This DataLoader will create")
    W = _writer_class(kind)
    emit({"ready": os.getpid()})
    while True:
        line = sys.stdin.readline()
        if not line:
            return 0
        job = json.loads(line)
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                JOBS[job["kind"]](W, job)
                code = 0
            except BaseException:
                traceback.print_exc()
            finally:
                os._exit(code)
        emit({"pid": pid})
        _, status = os.waitpid(pid, 0)
        emit({"exit": os.waitstatus_to_exitcode(status)})


# =============================================================================
# orchestrator side
# =============================================================================


def progress(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


class Zygote:
    """A fresh interpreter with torch and one writer imported; runs jobs in forked children."""

    def __init__(self, kind: str, env: dict[str, str], tmp: Path) -> None:
        self.kind = kind
        self.stderr_path = tmp / f"zygote-{kind}.stderr"
        with open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, str(HERE), "--_zygote", kind],
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=err,
            )
        assert self.proc.stdout is not None
        self._fd = self.proc.stdout.fileno()
        self._buf = b""
        self.child: int | None = None

    def wait_ready(self, timeout: float = 120.0) -> None:
        msg = self.line(timeout)
        if not isinstance(msg, dict) or "ready" not in msg:
            raise RuntimeError(f"zygote {self.kind}: {msg!r}")

    def line(self, timeout: float) -> Any:
        """The next line: a dict (JSON), or an int (a step a child reported)."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._fd], [], [], left)[0]:
                raise TimeoutError(f"zygote {self.kind}: no output in {timeout:g} s{self.tail()}")
            data = os.read(self._fd, 1 << 16)
            if not data:
                raise RuntimeError(f"zygote {self.kind} exited{self.tail()}")
            self._buf += data
        raw, self._buf = self._buf.split(b"\n", 1)
        text = raw.decode()
        return json.loads(text) if text.startswith("{") else int(text)

    def tail(self) -> str:
        try:
            return "\n" + self.stderr_path.read_text()[-3000:]
        except OSError:
            return ""

    def start(self, **job: Any) -> None:
        assert self.proc.stdin is not None
        self.child = None
        self.proc.stdin.write((json.dumps(job) + "\n").encode())
        self.proc.stdin.flush()

    def finish(self, timeout: float) -> tuple[int, list[Any]]:
        """Read to the end of the job: its exit code and every other line."""
        deadline = time.monotonic() + timeout
        out: list[Any] = []
        while True:
            try:
                msg = self.line(max(0.0, deadline - time.monotonic()))
            except TimeoutError:
                self.kill_child()
                raise
            if isinstance(msg, dict) and "pid" in msg:
                self.child = msg["pid"]
            elif isinstance(msg, dict) and "exit" in msg:
                self.child = None
                return msg["exit"], out
            else:
                out.append(msg)

    def run(self, timeout: float = 300.0, **job: Any) -> tuple[int, list[Any]]:
        self.start(**job)
        return self.finish(timeout)

    def kill_child(self) -> None:
        if self.child is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.child, signal.SIGKILL)

    def close(self) -> None:
        self.kill_child()
        if self.proc.stdin is not None:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


# -- reading back -------------------------------------------------------------------


def event_files(log_dir: Path) -> list[Path]:
    if not log_dir.is_dir():
        return []
    return sorted(p for p in log_dir.iterdir() if "tfevents" in p.name)


def points(log_dir: Path) -> Counter[tuple[str, int]]:
    """(tag, step) -> times it is in the dir's files, read by TensorBoard's own loader."""
    from tensorboard.backend.event_processing.event_file_loader import RawEventFileLoader
    from tensorboard.compat.proto import event_pb2

    out: Counter[tuple[str, int]] = Counter()
    for f in event_files(log_dir):
        for raw in RawEventFileLoader(str(f)).Load():
            e = event_pb2.Event.FromString(raw)
            for v in e.summary.value:
                out[(v.tag, e.step)] += 1
    return out


def lost_dup(expected: set[tuple[str, int]], got: Counter[tuple[str, int]]) -> tuple[int, int]:
    """Expected points not in the files; extra copies of any point."""
    lost = sum(1 for k in expected if got[k] == 0)
    dup = sum(n - 1 for n in got.values() if n > 1)
    return lost, dup


def row(
    scenario: str,
    writer: str,
    trials: int,
    logged: int,
    lost: int,
    dup: int,
    files: int | str,
    notes: str = "",
) -> dict[str, Any]:
    return {
        "scenario": scenario,
        "writer": writer,
        "trials": trials,
        "logged": logged,
        "lost": lost,
        "duplicated": dup,
        "files": files,
        "notes": notes,
    }


# -- scenarios --------------------------------------------------------------------------


def drain(writer: str, daemon: IsolatedDaemon | None) -> None:
    """summaryd: a graceful stop drains every ring (dead trainers' too); then a fresh start."""
    if writer == "summaryd" and daemon is not None:
        code = daemon.stop()
        if code != 0:
            raise RuntimeError(f"daemon exited with {code} on SIGTERM")
        daemon.start()


def scenario_kill_after(
    cfg: dict[str, Any], z: Zygote, daemon: IsolatedDaemon | None, tmp: Path
) -> list[dict[str, Any]]:
    runs = []
    for n in cfg["kill_ns"]:
        for t in range(cfg["kill_trials"]):
            log_dir = tmp / z.kind / "i" / f"n{n}-t{t}"
            code, _ = z.run(kind="kill_after", log_dir=str(log_dir), n=n, timeout=120)
            if code != -signal.SIGKILL:
                raise RuntimeError(f"kill_after exited {code}{z.tail()}")
            runs.append((n, log_dir))
    drain(z.kind, daemon)
    rows = []
    for n in cfg["kill_ns"]:
        lost = dup = files = with_loss = 0
        for m, log_dir in runs:
            if m != n:
                continue
            lo, du = lost_dup({("loss", i) for i in range(n)}, points(log_dir))
            lost, dup, files = lost + lo, dup + du, files + len(event_files(log_dir))
            with_loss += lo > 0
        trials = cfg["kill_trials"]
        note = f"{with_loss}/{trials} trials lost events"
        rows.append(
            row(f"i. SIGKILL after N={n}", z.kind, trials, n * trials, lost, dup, files, note)
        )
    return rows


def scenario_random_kill(
    cfg: dict[str, Any], z: Zygote, daemon: IsolatedDaemon | None, tmp: Path, seed: int
) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    trials = []
    for t in range(cfg["random_trials"]):
        log_dir = tmp / z.kind / "ii" / f"t{t}"
        target = rng.randrange(0, cfg["random_max_target"])
        pause = rng.random() * 0.01
        z.start(kind="log_forever", log_dir=str(log_dir))
        reported = -1
        deadline = time.monotonic() + 120
        try:
            while z.child is None or reported < target:
                msg = z.line(max(0.0, deadline - time.monotonic()))
                if isinstance(msg, int):
                    reported = max(reported, msg)
                elif "pid" in msg:
                    z.child = msg["pid"]
                else:
                    raise RuntimeError(f"child ended before step {target}: {msg}{z.tail()}")
            time.sleep(pause)  # not a barrier: a random moment while it keeps logging
            z.kill_child()
            code, rest = z.finish(60)
        except BaseException:
            z.kill_child()
            raise
        if code != -signal.SIGKILL:
            raise RuntimeError(f"log_forever exited {code}{z.tail()}")
        reported = max([reported, *(x for x in rest if isinstance(x, int))])
        trials.append((log_dir, reported))
    drain(z.kind, daemon)
    lost = dup = files = 0
    losses = []
    logged = 0
    for log_dir, reported in trials:
        lo, du = lost_dup({("loss", i) for i in range(reported + 1)}, points(log_dir))
        lost, dup, files = lost + lo, dup + du, files + len(event_files(log_dir))
        logged += reported + 1
        losses.append(lo)
    with_loss = sum(1 for x in losses if x)
    note = f"{with_loss}/{len(trials)} trials lost events"
    if with_loss:
        worst = max(losses)
        med = statistics.median(x for x in losses if x)
        note += f" (median {med:g}, max {worst} per losing trial)"
    return [
        row("ii. SIGKILL at a random moment", z.kind, len(trials), logged, lost, dup, files, note)
    ]


def scenario_many(
    cfg: dict[str, Any], z: Zygote, daemon: IsolatedDaemon | None, tmp: Path
) -> list[dict[str, Any]]:
    procs, k = cfg["procs"], cfg["k"]
    log_dir = tmp / z.kind / "iii"
    code, out = z.run(kind="many", log_dir=str(log_dir), procs=procs, k=k, timeout=600)
    res = out[-1] if out and isinstance(out[-1], dict) else {}
    if code != 0 or res.get("exit_codes") != [0] * procs:
        raise RuntimeError(f"many: exit {code}, {res}{z.tail()}")
    got = points(log_dir)
    expected = {(f"rank{r}/loss", i) for r in range(procs) for i in range(k)}
    lost, dup = lost_dup(expected, got)
    note = f"{procs}×{k:,} scalars, closed normally; barrier to last close {res['elapsed']:.1f} s"
    return [
        row(
            f"iii. {procs} processes, one log dir",
            z.kind,
            1,
            procs * k,
            lost,
            dup,
            len(event_files(log_dir)),
            note,
        )
    ]


def scenario_dataloader(
    cfg: dict[str, Any], z: Zygote, daemon: IsolatedDaemon | None, tmp: Path
) -> list[dict[str, Any]]:
    log_dir = tmp / z.kind / "iv"
    code, out = z.run(
        kind="dataloader", log_dir=str(log_dir), n=cfg["dl_items"], dl_timeout=cfg["dl_timeout"]
    )
    res = out[-1] if out and isinstance(out[-1], dict) else {}
    if code != 0 or "seen" not in res:
        raise RuntimeError(f"dataloader: exit {code}, {res}{z.tail()}")
    seen = res["seen"]
    worker_pids = {pid for _, pid, _ in seen}
    if z.kind == "summaryd" and daemon is not None:
        # Workers leave with os._exit: the daemon drains a dead client's ring and removes
        # it once its records are in the files.  Wait for that (bounded), no restart.
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and any(
            int(n.rsplit(".", 2)[1]) in worker_pids for n in daemon.rings()
        ):
            time.sleep(0.05)
    # Logged = the items the parent received (their add_scalar had returned) + the parent's.
    expected = {(f"worker{wid}/item", i) for wid, _, i in seen}
    expected |= {("parent/batch", b) for b in range(res["batches"])}
    expected |= {("parent/start", 0), ("parent/done", 0)}
    got = points(log_dir)
    lost, dup = lost_dup(expected, got)
    worker_lost = sum(1 for k in expected if k[0].startswith("worker") and got[k] == 0)
    n_items = cfg["dl_items"]
    if res["error"]:
        note = (
            f"HANGS: {res['batches']}/{n_items // 4} batches, then {res['error']!r}; "
            f"{worker_lost} of {len(seen)} worker events lost"
        )
    else:
        note = f"all {res['batches']} batches in {res['elapsed']:.1f} s"
    return [
        row(
            "iv. DataLoader, 4 fork workers",
            z.kind,
            1,
            len(expected),
            lost,
            dup,
            len(event_files(log_dir)),
            note,
        )
    ]


# -- report -----------------------------------------------------------------------------


def table(rows: list[dict[str, Any]]) -> str:
    headers = [
        "scenario",
        "writer",
        "trials",
        "events logged",
        "events lost",
        "duplicated",
        "event files",
        "notes",
    ]
    cells = [
        [
            r["scenario"],
            r["writer"],
            str(r["trials"]),
            f"{r['logged']:,}",
            f"{r['lost']:,}",
            f"{r['duplicated']:,}",
            str(r["files"]),
            r["notes"],
        ]
        for r in rows
    ]
    w = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(headers)]
    left = {0, 1, 7}

    def line(cs: list[str]) -> str:
        return (
            "| "
            + " | ".join(c.ljust(w[i]) if i in left else c.rjust(w[i]) for i, c in enumerate(cs))
            + " |"
        )

    sep = (
        "|"
        + "|".join(
            ":" + "-" * (x + 1) if i in left else "-" * (x + 1) + ":" for i, x in enumerate(w)
        )
        + "|"
    )
    return "\n".join([line(headers), sep, *(line(c) for c in cells)])


def machine() -> str:
    return describe(
        (
            "summaryd",
            "torch",
            "tensorboard",
        )
    )


def main() -> int:
    if len(sys.argv) > 2 and sys.argv[1] == "--_zygote":
        return zygote_main(sys.argv[2])
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="fewer trials, smaller sizes (< 1 min)")
    p.add_argument("--trials", type=int, help="trials of scenario ii (default 100, quick 15)")
    p.add_argument("--seed", type=int, default=1234, help="random kill points (scenario ii)")
    p.add_argument("--json", metavar="PATH", help="also write the rows as JSON")
    a = p.parse_args()
    cfg = dict(QUICK if a.quick else FULL)
    if a.trials:
        cfg["random_trials"] = a.trials
    t_all = time.monotonic()
    tmp = Path(tempfile.mkdtemp(prefix="sdbench-dur-"))
    daemon = IsolatedDaemon(tmp, "sdbdur-" + secrets.token_hex(4))
    zygotes: dict[str, Zygote] = {}
    rows: list[dict[str, Any]] = []
    try:
        daemon.start()
        for kind in WRITERS:  # both import torch at once
            zygotes[kind] = Zygote(
                kind, daemon.env if kind == "summaryd" else dict(os.environ), tmp
            )
        for z in zygotes.values():
            z.wait_ready()
        steps: list[tuple[str, Callable[[Zygote], list[dict[str, Any]]]]] = [
            ("i", lambda z: scenario_kill_after(cfg, z, daemon, tmp)),
            ("ii", lambda z: scenario_random_kill(cfg, z, daemon, tmp, a.seed)),
            ("iii", lambda z: scenario_many(cfg, z, daemon, tmp)),
            ("iv", lambda z: scenario_dataloader(cfg, z, daemon, tmp)),
        ]
        for name, fn in steps:
            for kind in WRITERS:
                t = time.monotonic()
                rows.extend(fn(zygotes[kind]))
                progress(f"{name:>3} {kind:<8} {time.monotonic() - t:6.1f} s")
    finally:
        for z in zygotes.values():
            z.close()
        daemon.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)
    wall = time.monotonic() - t_all
    print(f"Machine: {machine()}")
    print(f"config: {json.dumps(cfg)}\n")
    print(table(rows))
    print(f"\n(total {wall:.0f} s)")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(
                {"machine": machine(), "config": cfg, "rows": rows, "wall_s": wall}, f, indent=2
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
