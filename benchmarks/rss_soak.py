#!/usr/bin/env python
"""The daemon's resident memory under a steady media load (issue 10): is it bounded?

    python benchmarks/rss_soak.py --minutes 10 [--procs 4] [--rate 10]

``--procs`` trainers each log one 3x512x512 float32 image and one 1e6-float32
histogram per step at ``--rate`` steps/s into one isolated daemon for
``--minutes``; every 10 s the RSS of the daemon and its encoder processes
(summed) is sampled.  Printed: the samples, first/last/min/max, and the
growth between the first and the last third of the run (a bounded daemon shows
none beyond noise).  Not a test.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from isolated_daemon import IsolatedDaemon  # beside this script
from machine import tree_rss

TRAINER = """
import os, sys, time
import numpy as np
from summaryd import SummaryWriter
rate, end = float(sys.argv[1]), float(sys.argv[2])
rng = np.random.default_rng(int(sys.argv[3]))
img = rng.random((3, 512, 512), dtype=np.float32)
w = SummaryWriter(sys.argv[4])
step = 0
t = time.monotonic()
while time.time() < end:
    w.add_image(f"r{sys.argv[3]}/img", img, step)
    w.add_histogram(f"r{sys.argv[3]}/hist", rng.standard_normal(1_000_000, dtype=np.float32), step)
    step += 1
    t += 1.0 / rate
    time.sleep(max(0.0, t - time.monotonic()))
w.close()
print(step)
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--procs", type=int, default=4)
    ap.add_argument("--rate", type=float, default=10.0)
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="sdrss-"))
    d = IsolatedDaemon(tmp, "sdrss-" + secrets.token_hex(4))
    procs: list[subprocess.Popen[str]] = []
    try:
        import psutil

        daemon_proc = psutil.Process(d.start())
        end = time.time() + a.minutes * 60
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", TRAINER, str(a.rate), str(end), str(r), str(tmp / "run")],
                env=d.env,
                stdout=subprocess.PIPE,
                text=True,
            )
            for r in range(a.procs)
        ]
        samples: list[tuple[float, int]] = []
        t0 = time.monotonic()
        while any(p.poll() is None for p in procs):
            samples.append((time.monotonic() - t0, tree_rss(daemon_proc)))
            print(f"{samples[-1][0]:7.0f} s  {samples[-1][1] / 2**20:7.1f} MiB", flush=True)
            time.sleep(10)  # sampling period, not a barrier
        steps = [int((p.stdout.read() if p.stdout else "0").strip() or 0) for p in procs]
        mib = [r / 2**20 for _, r in samples]
        third = max(1, len(mib) // 3)
        early, late = sorted(mib[:third])[third // 2], sorted(mib[-third:])[third // 2]
        print(f"steps per trainer: {steps} (asked {a.rate * a.minutes * 60:.0f})")
        print(
            f"daemon + encoders RSS: first {mib[0]:.1f}, last {mib[-1]:.1f}, min {min(mib):.1f}, "
            f"max {max(mib):.1f} MiB; median of the first third {early:.1f}, of the last "
            f"third {late:.1f} MiB (growth {late - early:+.1f} MiB)"
        )
        return 0
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        d.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)
        os.sync()


if __name__ == "__main__":
    sys.exit(main())
