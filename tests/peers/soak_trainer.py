"""Peer: one life of a soak trainer (``benchmarks/soak.py``), killed or stopped
at any moment and resumed from its last checkpoint with ``purge_step``.

Each step it logs scalars and text; every ``MEDIA_EVERY`` steps one of each
array kind (histogram, image, images, audio, PR curve, mesh, video); every
``BLOB_EVERY`` steps a histogram larger than a quarter of the ring (a blob);
every ``FORK_EVERY`` steps two forked workers log with the inherited writer,
and every ``SPAWN_EVERY`` steps a ``spawn``ed child logs with the pickled one.

Every event is reported, only after its ``add_*`` returned, as one line
``<life> <step> <kind> <tag>`` appended to PEER_DIR/journal with one ``os.write``
(O_APPEND: whole lines from every process) and fsync'd.  Before logging, a life
appends ``L <life> <purge>``.  After every step whose events are all reported it
may checkpoint:
PEER_DIR/ckpt holds the last such step (temp file + rename).  A new life
resumes at ``ckpt + 1`` with ``purge_step=ckpt + 1``, as a real resumed job
does; without a checkpoint it starts at 0 without ``purge_step``.

"stop" on stdin: finish the step, close the writer, exit 0.

Environment: PEER_LOG_DIR, PEER_DIR (journal, checkpoint), PEER_LIFE, PEER_RATE
(steps/s), plus the SUMMARYD_* variables.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from typing import Any

import numpy as np
from peer_common import log_media, stop_on_stdin  # beside this script

MEDIA_EVERY = 10
BLOB_EVERY = 25
CKPT_EVERY = 20
FORK_EVERY = 100
SPAWN_EVERY = 250
FORK_STEPS = 5
BIG = 300_000  # float32 values: 1.2 MB, more than a quarter of a 1 MiB ring
MEDIA = ("hist", "image", "images", "audio", "pr", "mesh", "video")


def report(journal: str, lines: list[str]) -> None:
    fd = os.open(journal, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, "".join(lines).encode())
        os.fsync(fd)  # a SIGKILL keeps the page cache anyway; this is against the machine
    finally:
        os.close(fd)


def worker(w: Any, journal: str, life: int, kind: str, k: int, first: int) -> None:
    """A forked or spawned helper: FORK_STEPS scalars under its own tag."""
    tag = f"{kind}{k}/x"
    for step in range(first, first + FORK_STEPS):
        w.add_scalar(tag, float(step), step)
        report(journal, [f"{life} {step} scalar {tag}\n"])
    w.flush()


def fork_workers(w: Any, journal: str, life: int, step: int) -> None:
    pids = []
    for k in range(2):
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                worker(w, journal, life, "fork", k, step)
                code = 0
            finally:
                os._exit(code)  # a worker's end: no interpreter teardown
        pids.append(pid)
    for pid in pids:
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0, "a forked worker failed"


def main() -> None:
    from summaryd import SummaryWriter

    log_dir, pdir = os.environ["PEER_LOG_DIR"], os.environ["PEER_DIR"]
    life = int(os.environ["PEER_LIFE"])
    period = 1.0 / float(os.environ.get("PEER_RATE", "10"))
    journal = os.path.join(pdir, "journal")
    ckpt = os.path.join(pdir, "ckpt")
    try:
        with open(ckpt) as f:
            first: int = int(f.read()) + 1
        purge: int | None = first
    except FileNotFoundError:
        first, purge = 0, None
    report(journal, [f"L {life} {purge if purge is not None else -1}\n"])
    stop = stop_on_stdin()
    w = SummaryWriter(log_dir, purge_step=purge)
    rng = np.random.default_rng(life)
    big = np.linspace(-1, 1, BIG, dtype=np.float32)
    spawn_ctx = multiprocessing.get_context("spawn")
    print(f"started {first}", flush=True)
    step = first
    next_at = time.monotonic()
    while not stop.is_set():
        lines = []
        w.add_scalar("s/a", float(step), step)
        w.add_scalar("s/b", float(life), step)
        w.add_text("text", f"life {life} step {step}", step)
        lines += [f"{life} {step} scalar {t}\n" for t in ("s/a", "s/b")]
        lines.append(f"{life} {step} text text\n")
        if step % MEDIA_EVERY == 0:
            log_media(w, step, rng)
            lines += [f"{life} {step} {k} {k}\n" for k in MEDIA]
        if step % BLOB_EVERY == 0:
            w.add_histogram("big", big + step, step)
            lines.append(f"{life} {step} hist big\n")
        report(journal, lines)
        if step % FORK_EVERY == 0:
            fork_workers(w, journal, life, step)
        if step % SPAWN_EVERY == 0:
            p = spawn_ctx.Process(target=worker, args=(w, journal, life, "spawn", 0, step))
            p.start()
            p.join()
            assert p.exitcode == 0, "the spawned child failed"
        if step % CKPT_EVERY == 0:
            with open(ckpt + ".tmp", "w") as f:
                f.write(str(step))
            os.replace(ckpt + ".tmp", ckpt)
        step += 1
        next_at += period
        # Pacing, not synchronisation: a steady rate like a training loop's.
        time.sleep(max(0.0, next_at - time.monotonic()))
    w.close()
    print(f"stopped {step}", flush=True)


if __name__ == "__main__":
    main()
