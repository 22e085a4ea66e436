"""Bytes and requests sent to an S3 store: torch's writer vs summaryd's segment layout.

Issue 11's figures, first half: the same events, to the same SeaweedFS server
(``tests/s3server.py`` starts one on free ports), flushed at the same points.

* torch: ``torch.utils.tensorboard.SummaryWriter("s3://bucket/torch-...")``;
  ``flush()`` at every flush point (TensorBoard's gfile has no append on S3:
  each flush PUTs the whole event file again).
* summaryd: the layout of ``daemon/s3layout.py`` through ``daemon/spool.py``
  and ``daemon/s3store.py``'s ``Uploader`` -- at every flush point the open
  segment is sealed and uploaded: appended to the run's newest object until
  it has ``max_writes`` PUTs (``TailPolicy``; ``w=1``: one object per flush,
  nothing re-sent; ``w=8``: the default, 8x fewer objects). The daemon is not wired
  to S3 yet, so our side is fed **pre-encoded event bytes**: the very Events
  torch's own ``summary.scalar`` / ``summary.image`` build (same PNGs, same
  tags and steps), framed as TFRecords. Encoding cost is therefore not part of
  this benchmark; bytes and requests are.

Workloads: 100,000 scalars with a flush every 1,000 (100 flushes; what a
10 s upload cadence gives at 100 scalars/s), and 1,000 images of 3x64x64
(random noise, so PNG does not shrink them) with a flush every 10.

Requests and request-body bytes are counted with botocore's ``before-send``
event on both sides (the default session for torch, which TensorBoard's
gfile uses; our store's own client for us).

Run: ``python benchmarks/bench_s3.py`` (about a minute). Not collected by pytest.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.s3common import Tally, WeedServer, bucket_usage  # noqa: E402


def workloads(n_scalars: int, scalar_flush: int, n_images: int, image_flush: int) -> dict[str, Any]:
    from torch.utils.tensorboard import summary

    rng = np.random.default_rng(0)
    scalars = [("loss", summary.scalar("loss", 1.0 / (i + 1)), i) for i in range(n_scalars)]
    images = [
        (
            "img",
            summary.image(
                "img", rng.integers(0, 256, (3, 64, 64), dtype=np.uint8), dataformats="CHW"
            ),
            i,
        )
        for i in range(n_images)
    ]
    return {
        f"{n_scalars:,} scalars (flush every {scalar_flush:,})": (scalars, scalar_flush),
        f"{n_images:,} images 3x64x64 (flush every {image_flush})": (images, image_flush),
    }


def run_torch(s3: WeedServer, name: str, events: list[Any], every: int) -> Tally:
    import boto3
    from torch.utils.tensorboard import SummaryWriter

    tally = Tally()
    boto3.setup_default_session()
    assert boto3.DEFAULT_SESSION is not None
    boto3.DEFAULT_SESSION.events.register("before-send.s3", tally.hook)
    w = SummaryWriter(f"s3://{s3.bucket}/torch-{name}", max_queue=10**9, flush_secs=10**6)
    fw = w._get_file_writer()
    for i, (_, summ, step) in enumerate(events, 1):
        fw.add_summary(summ, step, walltime=1.7e9 + step)
        if i % every == 0:
            w.flush()
    w.close()
    boto3.DEFAULT_SESSION.events.unregister("before-send.s3", tally.hook)
    return tally


def run_ours(
    s3: WeedServer, name: str, events: list[Any], every: int, spool_dir: Path, max_writes: int
) -> Tally:
    from tensorboard.compat.proto import event_pb2

    from summaryd.daemon.s3layout import TailPolicy
    from summaryd.daemon.s3store import S3Store, Uploader
    from summaryd.daemon.spool import Spool
    from summaryd.daemon.tfrecord import frame

    store = S3Store(f"s3://{s3.bucket}/ours-{name}")
    up = Uploader(store, Spool(spool_dir), TailPolicy(max_writes=max_writes))
    batch: list[bytes] = []
    for i, (_, summ, step) in enumerate(events, 1):
        ev = event_pb2.Event(wall_time=1.7e9 + step, step=step)
        ev.summary.ParseFromString(summ.SerializeToString())
        batch.append(frame(ev.SerializeToString()))
        if i % every == 0:
            up.spool.append(b"".join(batch), wall_time=1.7e9 + step)
            batch.clear()
            up.spool.seal()
            up.upload_ready()
    st = store.statistics()
    return Tally(st.requests, st.bytes_sent)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scalars", type=int, default=100_000)
    ap.add_argument("--scalar-flush", type=int, default=1_000)
    ap.add_argument("--images", type=int, default=1_000)
    ap.add_argument("--image-flush", type=int, default=10)
    ap.add_argument(
        "--max-writes", type=int, nargs="+", default=[1, 8], help="TailPolicy.max_writes to run"
    )
    args = ap.parse_args()
    from benchmarks.machine import describe

    print(describe(("torch", "tensorboard", "boto3", "botocore")))
    with WeedServer.started(bucket="bench-s3") as s3, tempfile.TemporaryDirectory() as tmp:
        os.environ.update(s3.env())
        loads = workloads(args.scalars, args.scalar_flush, args.images, args.image_flush)
        for k, (label, (events, every)) in enumerate(loads.items()):
            rows = []
            t0 = time.perf_counter()
            tally = run_torch(s3, f"w{k}", events, every)
            rows.append(
                (
                    "torch",
                    tally,
                    *bucket_usage(s3.client(), s3.bucket, f"torch-w{k}/"),
                    time.perf_counter() - t0,
                )
            )
            for mw in args.max_writes:
                t0 = time.perf_counter()
                tally = run_ours(s3, f"w{k}m{mw}", events, every, Path(tmp) / f"s{k}-{mw}", mw)
                usage = bucket_usage(s3.client(), s3.bucket, f"ours-w{k}m{mw}/")
                rows.append((f"summaryd w={mw}", tally, *usage, time.perf_counter() - t0))
            print(f"\n{label}, {len(events) // every} flushes")
            head = ("bytes sent", "requests", "objects", "in bucket", "time", "torch/us")
            print(
                f"  {'':14} {head[0]:>14} {head[1]:>9} {head[2]:>8} {head[3]:>12} {head[4]:>7}"
                f"  {head[5]} (bytes, requests)"
            )
            torch_t = rows[0][1]
            for who, t, objs, stored, secs in rows:
                ratio_b, ratio_r = torch_t.bytes / t.bytes, torch_t.requests / t.requests
                print(
                    f"  {who:14} {t.bytes:>14,} {t.requests:>9,} {objs:>8,} {stored:>12,} "
                    f"{secs:>6.1f}s  {ratio_b:5.1f}x {ratio_r:5.2f}x"
                )


if __name__ == "__main__":
    main()
