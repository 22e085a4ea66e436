"""s3:// through the real daemon: bytes sent and requests per 100,000 scalars,
and the time from add_scalar returning to the event being readable in the bucket.

Usage: ``PYTHONPATH=... python benchmarks/bench_s3_daemon.py [--scalars N] [--flushes F]``.
Starts its own weed (tests/s3server.py) and an isolated daemon (s3common.weed_and_daemon);
both stopped by PID, their dirs removed.
Figures come from the daemon's status (its store counts every request it sends).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.s3common import readable, run_status, weed_and_daemon  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scalars", type=int, default=100_000)
    ap.add_argument("--flushes", type=int, default=100)
    ap.add_argument("--probes", type=int, default=30)
    args = ap.parse_args()
    with weed_and_daemon("bench-s3d") as (s3, d, _tmp):
        os.environ.update(d.env)
        from summaryd import SummaryWriter

        url = f"s3://{s3.bucket}/scalars"
        w = SummaryWriter(url)
        every = max(1, args.scalars // args.flushes)
        cpu0 = time.process_time()
        for i in range(args.scalars):
            w.add_scalar("loss", float(i), i)
            if (i + 1) % every == 0:
                w.flush()
        cpu = time.process_time() - cpu0
        w.flush()
        s3st = run_status(d.env, url)
        w.close()
        print(
            f"{args.scalars} scalars, {args.flushes} flushes: "
            f"{s3st['bytes_sent'] / 1e6:.2f} MB sent, {s3st['requests']} requests; "
            "trainer CPU incl. flushes "
            f"{cpu / args.scalars * 1e6:.2f} us/call"
        )
        # Latency: add_scalar returns -> the object holding it lists as readable.
        c = s3.client()
        lat = []
        w2 = SummaryWriter(f"s3://{s3.bucket}/latency")
        for k in range(args.probes):
            t = time.monotonic()
            w2.add_scalar("probe", float(k), k)
            while not readable(c, s3.bucket, "latency/", k):
                time.sleep(0.05)
            lat.append(time.monotonic() - t)
        w2.close()
        lat.sort()
        print(
            f"add_scalar -> readable in the bucket ({args.probes} probes, default settings): "
            f"p50 {statistics.median(lat):.2f} s, p99 {lat[int(0.99 * (len(lat) - 1))]:.2f} s"
        )


if __name__ == "__main__":
    main()
