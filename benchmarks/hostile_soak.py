#!/usr/bin/env python
"""Hostile-input soak (issue 12, part 3): ``--cases`` hostile inputs against ONE live
daemon while a good client logs alongside.

Not a test (pytest does not collect it).

    python benchmarks/hostile_soak.py --cases 100000
    python benchmarks/hostile_soak.py --cases 2000 --batch 250 --seed 3

The cases come from ``tests/peers/hostile_client.py`` in its ``mixed`` mode: one
peer process per batch of ``--batch`` cases (seed ``--seed`` + batch number), each
case drawn at random from the peer's modes (garbage and well-typed wrong control
messages, garbage and refused ring records, torn and over-long records, rings the
daemon must refuse, bad hellos, deep and huge messages, truncated rings, floods,
leaked writers).  Meanwhile ``tests/peers/log_steadily.py`` logs scalars at
``--rate`` per second through ``SummaryWriter``.

Verdict: after every batch the daemon is the same process (a crash: it exited; it
is restarted to go on) and answers ``status`` within 1 s (a hang: it did not).  At
the end the good client closes its writer; every step it reported logged must be
in its run exactly once (TensorBoard's record reader), and it must have had no
flush time out, no record dropped.  Exit 1 otherwise.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from isolated_daemon import IsolatedDaemon  # noqa: E402

from tests.integration.test_self_healing import Trainers, written  # noqa: E402

HOSTILE = REPO / "tests" / "peers" / "hostile_client.py"
STATUS_TIMEOUT = 1.0


def progress(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def answers(d: IsolatedDaemon, timeout: float = STATUS_TIMEOUT) -> int | None:
    """The pid in the daemon's status reply within ``timeout`` s, or None."""
    from summaryd.daemon.cli import request
    from summaryd.errors import DaemonUnavailableError
    from summaryd.paths import locations

    try:
        return int(request(locations(d.env), {"t": "status"}, timeout=timeout)["daemon"]["pid"])
    except DaemonUnavailableError:
        return None


def run_batch(d: IsolatedDaemon, tmp: Path, seed: int, n: int) -> tuple[int, dict[str, int], bool]:
    """One hostile peer doing ``n`` cases: its exit code, the cases it drew, and
    whether the daemon acknowledged the flush of its last well-formed ring."""
    env = d.env | {
        "HOSTILE_MODE": "mixed",
        "HOSTILE_SEED": str(seed),
        "HOSTILE_COUNT": str(n),
        "HOSTILE_SECONDS": "120",
        "HOSTILE_LOG_DIR": str(tmp / "hostile-logs"),
    }
    with open(tmp / "hostile.stderr", "ab") as err:
        p = subprocess.run(
            [sys.executable, str(HOSTILE)],
            env=env,
            stdin=subprocess.DEVNULL,  # closed at once: the peer finishes after its cases
            stdout=subprocess.PIPE,
            stderr=err,
            timeout=600,
        )
    report = {}
    for line in p.stdout.decode(errors="replace").splitlines():
        if line.startswith("{"):
            report = json.loads(line)
    return p.returncode, report.get("cases", {}), bool(report.get("acked"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cases", type=int, default=100_000)
    ap.add_argument("--batch", type=int, default=1000, help="cases per hostile peer process")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rate", type=float, default=100.0, help="good scalars/s")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="sdhostile-", dir="/tmp"))
    d = IsolatedDaemon(tmp, "sdhsoak-" + secrets.token_hex(4))
    # The good client may not spawn a daemon: a crash must show, not heal.
    good: Trainers | None = None
    crashes = hangs = peer_failures = done = unacked = 0
    drawn: Counter[str] = Counter()
    slowest = 0.0
    code = 1
    t0 = time.monotonic()
    try:
        pid = d.start()
        good = Trainers(d.env, tmp / "good", 1, args.rate)
        good.wait_started()
        batch = 0
        while done < args.cases:
            n = min(args.batch, args.cases - done)
            rc, cases, acked = run_batch(d, tmp, args.seed + batch, n)
            unacked += not acked
            batch += 1
            done += n
            drawn.update(cases)
            if rc != 0:
                peer_failures += 1
                progress(f"batch {batch}: the hostile peer exited {rc} (see hostile.stderr)")
            assert d.proc is not None
            if d.proc.poll() is not None:
                crashes += 1
                progress(
                    f"batch {batch}: CRASH, the daemon exited {d.proc.returncode}:\n" + d.stderr()
                )
                pid = d.start()
                continue
            t = time.monotonic()
            got = answers(d)
            took = time.monotonic() - t
            slowest = max(slowest, took)
            if got != pid:
                hangs += 1
                progress(f"batch {batch}: HANG, no status answer within {STATUS_TIMEOUT} s")
                if answers(d, 30.0) is None:
                    progress("  ... nor within 30 s: restarting it")
                    d.stop()
                    pid = d.start()
            if batch % 20 == 0:
                rate = done / (time.monotonic() - t0)
                progress(f"{done} cases, {crashes} crashes, {hangs} hangs ({rate:.0f} cases/s)")
        good.stop()
        have = written(tmp / "good")
        steps = [s for s, _ in good.logged[0]]
        got_good = Counter({s: k for (tag, s), k in have.items() if tag == "r0"})
        lost = sum(1 for s in steps if got_good[s] == 0)
        dup = sum(k - 1 for k in got_good.values() if k > 1)
        report = good.reports[0] or {}
        clean = report.get("flushes_timed_out") == 0 and report.get("records_dropped") == 0
        alive = d.proc is not None and d.proc.poll() is None
        minutes = (time.monotonic() - t0) / 60
        print("\n| hostile soak | |\n|---|---:|")
        for k, v in [
            ("cases", f"{done:,}"),
            ("hostile peer processes (batches)", f"{batch:,}"),
            ("minutes", f"{minutes:.1f}"),
            ("crashes", crashes),
            ("hangs (no status answer within 1 s)", hangs),
            ("slowest status answer after a batch", f"{slowest * 1000:.0f} ms"),
            ("daemon alive at the end", "yes" if alive else "NO"),
            ("batches whose last ring flush was not acknowledged", unacked),
            ("good events expected", f"{len(steps):,}"),
            ("good events written", f"{sum(1 for s in steps if got_good[s]):,}"),
            ("good events lost / duplicated", f"{lost} / {dup}"),
            (
                "good client: flush timeouts / dropped",
                f"{report.get('flushes_timed_out')} / {report.get('records_dropped')}",
            ),
        ]:
            print(f"| {k} | {v} |")
        print("\ncases drawn: " + ", ".join(f"{k} {v:,}" for k, v in sorted(drawn.items())))
        if peer_failures:
            print(f"hostile peers that exited non-zero: {peer_failures} (tmp/hostile.stderr)")
        ok = not crashes and not hangs and alive and not lost and not dup and clean
        code = 0 if ok else 1
    finally:
        if good is not None:
            good.kill()
        d.cleanup()
        leftovers = [n for n in os.listdir("/dev/shm") if n.startswith(d.prefix + ".")]
        for name in leftovers:
            with contextlib.suppress(OSError):
                os.unlink(os.path.join("/dev/shm", name))
        if code == 0:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            progress(f"kept {tmp}")
    return code


if __name__ == "__main__":
    sys.exit(main())
