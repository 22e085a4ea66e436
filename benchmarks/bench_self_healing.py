"""How fast a SIGKILLed daemon is replaced while trainers log (issue 12).

Not a test (pytest does not collect it).  Two parts:

1. ``--kills N`` (default 20): 4 trainers (``tests/peers/log_steadily.py``,
   200 scalars/s each) log into one log dir; the serving daemon is SIGKILLed
   N times.  Each time: seconds from the kill until a new daemon answers
   ``status``, and until every step the trainers had logged by then is in the
   event file (read with TensorBoard's own loader).  At the end every step is
   checked to be in the files exactly once, and exactly N daemons to have been
   spawned.
2. The hot-path cost of the heartbeat check in ``Client.put``: the same put
   with and without it, in this process, no daemon (records only go to the ring).

    python benchmarks/bench_self_healing.py               # both parts
    python benchmarks/bench_self_healing.py --kills 5     # fewer kills
    python benchmarks/bench_self_healing.py --kills 0     # the hot path only
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import statistics
import sys
import tempfile
import time
import timeit
from collections import Counter
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.conftest import DaemonEnv  # noqa: E402
from tests.integration.test_self_healing import (  # noqa: E402
    Trainers,
    measure_kill,
    serving_lines,
    written,
)


def isolated(tmp: Path, spawn: bool) -> DaemonEnv:
    rt = tmp / "rt"
    env = dict(os.environ)
    env.update(
        SUMMARYD_RUNTIME_DIR=str(rt),
        SUMMARYD_RING_PREFIX="sdbench-" + secrets.token_hex(4),
        SUMMARYD_IDLE_EXIT="",
    )
    env.pop("SUMMARYD_NO_SPAWN", None)
    if not spawn:
        env["SUMMARYD_NO_SPAWN"] = "1"
    return DaemonEnv(rt, env["SUMMARYD_RING_PREFIX"], env)


def cleanup(d: DaemonEnv) -> None:
    d.stop()
    for name in d.rings():
        os.unlink(os.path.join("/dev/shm", name))


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def bench_kills(n: int, procs: int, rate: float) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="sdb-heal-", dir="/tmp"))
    d = isolated(tmp, spawn=True)
    served: list[float] = []
    in_file: list[float] = []
    trainers: Trainers | None = None
    try:
        d.start("--log-level", "warning")
        trainers = Trainers(d.env, tmp / "run", procs, rate)
        trainers.wait_started()
        for i in range(n):
            s, w = measure_kill(d, trainers)
            served.append(s)
            in_file.append(w)
            print(
                f"kill {i + 1:>2}: serves after {s:.3f} s, gap in file after {w:.3f} s",
                file=sys.stderr,
            )
        trainers.stop()
        have = written(tmp / "run")
        total = 0
        for i, rows in enumerate(trainers.logged):
            steps = [s for s, _ in rows]
            total += len(steps)
            got = Counter({s: k for (tag, s), k in have.items() if tag == f"r{i}"})
            assert got == Counter(dict.fromkeys(steps, 1)), f"r{i}: lost or duplicated steps"
        reports = [r for r in trainers.reports if r is not None]
        spawned = sum(r["daemons_spawned"] for r in reports)
        print(f"\n{n} SIGKILLs of the daemon, {procs} trainers at {rate:g} scalars/s each")
        print(f"  events logged {total}, lost 0, duplicated 0 (checked with TensorBoard's loader)")
        print(f"  daemons spawned by clients: {spawned} (daemon.log: {serving_lines(d)})")
        print(f"  new daemon serves:      p50 {pct(served, 0.5):.3f} s  max {max(served):.3f} s")
        print(f"  gap events in the file: p50 {pct(in_file, 0.5):.3f} s  max {max(in_file):.3f} s")
    finally:
        if trainers is not None:
            trainers.kill()
        cleanup(d)
        shutil.rmtree(tmp, ignore_errors=True)


def bench_hot_path(number: int = 100_000, repeat: int = 9) -> None:
    from summaryd import client as client_mod
    from summaryd.paths import locations

    tmp = Path(tempfile.mkdtemp(prefix="sdb-hot-", dir="/tmp"))
    d = isolated(tmp, spawn=False)
    os.environ.update(d.env)
    os.environ["SUMMARYD_RING_BYTES"] = str(16 << 20)  # emptied before each run: warm pages
    c = client_mod.Client(locations())
    try:
        pack = c._packer.pack
        lock = c.lock
        ring_put = c.ring.make_put(c._bell)

        def put_without_check(record: tuple[Any, ...]) -> None:
            """Client.put as it was before the heartbeat check."""
            data = pack(record)
            with lock:
                if not ring_put(data):
                    c._put_when_full(data)

        # A past walltime: no look is due (as between looks); a future one: every call looks.
        between = (3, 1, "loss", 1.0, 5, time.time() - 10.0)
        future = (3, 1, "loss", 1.0, 5, time.time() + 1e9)

        def run(f: Any, r: tuple[Any, ...]) -> float:
            best = float("inf")
            for _ in range(repeat):
                c.ring.set_tail(c.ring.head)  # as a daemon would: the ring never fills
                best = min(best, timeit.timeit(lambda: f(r), number=number))
            return best / number * 1e9

        # The check alone, as the put closure runs it, against the same closure without it.
        def make(check: bool) -> Any:
            due = time.time()

            def f(record: tuple[Any, ...]) -> None:
                nonlocal due
                if check:
                    try:
                        if record[5] > due:
                            due = time.time() + 0.25
                    except (IndexError, TypeError):
                        pass

            return f

        without, with_check = make(False), make(True)
        bare = min(timeit.repeat(lambda: without(between), number=number, repeat=repeat))
        only = min(timeit.repeat(lambda: with_check(between), number=number, repeat=repeat))

        # Interleave to share the machine's noise.
        old, new, looks = [], [], []
        for _ in range(3):
            old.append(run(put_without_check, between))
            new.append(run(c.put, between))
            looks.append(run(c.put, future))
        base, checked, every = min(old), min(new), min(looks)
        look = (
            statistics.median(timeit.repeat(c._watch, number=20_000, repeat=repeat)) / 20_000 * 1e9
        )
        print(f"\nClient.put of a scalar record, best of {repeat}x{number} (ns per call)")
        print(f"  the check alone (item 5 > due): {(only - bare) / number * 1e9:6.1f}")
        print(f"  without the heartbeat check:   {base:7.1f}")
        print(f"  with it (between looks):       {checked:7.1f}  (+{checked - base:.1f})")
        print(f"  one look (every {0.25:g} s):       {look:7.1f}")
        print(f"  a look on every call:          {every:7.1f}  (a walltime always in the future)")
    finally:
        c.close()
        os.unlink(c.ring_path)
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--kills", type=int, default=20)
    ap.add_argument("--procs", type=int, default=4)
    ap.add_argument("--rate", type=float, default=200.0, help="scalars/s per trainer")
    args = ap.parse_args()
    bench_hot_path()
    if args.kills:
        bench_kills(args.kills, args.procs, args.rate)


if __name__ == "__main__":
    main()
