"""s3:// through the real daemon: bytes sent and requests per 100,000 scalars,
and the time from add_scalar returning to the event being readable in the bucket.

Usage: ``PYTHONPATH=... python benchmarks/bench_s3_daemon.py [--scalars N] [--flushes F]``.
Starts its own weed (tests/s3server.py) and an isolated daemon; both stopped by PID.
Figures come from the daemon's status (its store counts every request it sends).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.isolated_daemon import IsolatedDaemon  # noqa: E402
from tests.s3server import WeedServer  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scalars", type=int, default=100_000)
    ap.add_argument("--flushes", type=int, default=100)
    ap.add_argument("--probes", type=int, default=30)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-s3d-"))
    with WeedServer.started(bucket="bench") as s3:
        env = s3.env(dict(os.environ))
        env["SUMMARYD_SPOOL_DIR"] = str(tmp / "spool")
        os.environ.update({k: v for k, v in env.items() if k.startswith(("AWS_", "S3_"))})
        d = IsolatedDaemon(tmp, "sdbench-" + os.urandom(3).hex(), env)
        d.start()
        os.environ.update(d.env)
        try:
            from summaryd import SummaryWriter
            from summaryd.daemon.cli import request
            from summaryd.paths import locations

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
            st = request(locations(d.env), {"t": "status"}, timeout=5)
            s3st = next(r["s3"] for r in st["runs"] if r.get("s3"))
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
                while True:
                    keys = c.list_objects_v2(Bucket=s3.bucket, Prefix="latency/").get(
                        "Contents", []
                    )
                    if _has(c, s3.bucket, keys, k):
                        break
                    time.sleep(0.05)
                lat.append(time.monotonic() - t)
            w2.close()
            lat.sort()
            print(
                f"add_scalar -> readable in the bucket ({args.probes} probes, default settings): "
                f"p50 {statistics.median(lat):.2f} s, p99 {lat[int(0.99 * (len(lat) - 1))]:.2f} s"
            )
        finally:
            d.stop()


def _has(c: object, bucket: str, keys: list[dict[str, object]], step: int) -> bool:
    import struct

    from tensorboard.compat.proto import event_pb2

    for o in keys:
        body = c.get_object(Bucket=bucket, Key=o["Key"])["Body"].read()  # type: ignore[attr-defined]
        off = 0
        while off + 12 <= len(body):
            (n,) = struct.unpack_from("<Q", body, off)
            ev = event_pb2.Event.FromString(body[off + 12 : off + 12 + n])
            if ev.step == step and ev.summary.value:
                return True
            off += 12 + n + 4
    return False


if __name__ == "__main__":
    main()
