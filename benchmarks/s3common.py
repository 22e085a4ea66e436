"""Helpers shared by the s3:// benchmarks (``bench_s3*.py``), in one place.

* :class:`Tally` counts requests and request-body bytes with botocore's
  ``before-send`` event, the way the daemon's store counts its own
  (``s3store.request_body_bytes``), so both writers are counted alike;
  :func:`count_requests` hooks it into every botocore client the process
  makes from then on (TensorBoard's gfile makes its own, the SDK too).
* :func:`weed_and_daemon`: a SeaweedFS server (``tests/s3server.py``) and an
  isolated daemon (``isolated_daemon.py``) whose spool is in the temp dir;
  both stopped by PID, rings and dirs removed.
* :func:`run_status`: the daemon's s3 figures for one run (``summaryd status``).
* :func:`make_images`: the benchmarks' 3x256x256 images.
* :func:`bucket_usage`, :func:`events_in`, :func:`readable`: what is in the
  bucket, read back as TFRecords of ``Event`` protos.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import struct
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks.isolated_daemon import IsolatedDaemon  # noqa: E402
from tests.s3server import REGION, WeedServer  # noqa: E402


@dataclass
class Tally:
    requests: int = 0
    bytes: int = 0
    puts: int = 0  # PUTs with a body

    def hook(self, request: Any, **_: Any) -> None:
        from summaryd.daemon.s3store import request_body_bytes

        body = request_body_bytes(request)
        self.requests += 1
        self.bytes += body
        self.puts += request.method == "PUT" and body > 0  # a body: not a "dir/" marker


def count_requests() -> Tally:
    """A :class:`Tally` hooked into every botocore client made after this call
    (whatever session it comes from: TensorBoard's default one, the SDK's own)."""
    import botocore.session

    tally = Tally()
    make = botocore.session.Session.create_client

    def create_client(self: Any, *args: Any, **kwargs: Any) -> Any:
        client = make(self, *args, **kwargs)
        client.meta.events.register("before-send.s3", tally.hook)
        return client

    botocore.session.Session.create_client = create_client  # type: ignore[method-assign]
    return tally


def make_images(distinct: int = 100, size: int = 256, sigma: float = 8.0) -> list[Any]:
    """``distinct`` 3 x size x size uint8 CHW arrays: a colour gradient plus
    Gaussian noise (PNG keeps about 70 % of the raw bytes, like a photo)."""
    import numpy as np

    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:size, 0:size].astype(float) * (256 / size)
    out = []
    for k in range(distinct):
        base = np.stack([(x + y + 3 * k) / 2 % 256, (x + k) % 256, (255 - y + k) % 256])
        noisy = base + rng.normal(0, sigma, base.shape)
        out.append(np.clip(noisy, 0, 255).astype(np.uint8))
    return out


def private_client(env: dict[str, str]) -> Any:
    """A boto3 client of its own session (not the default one torch's writer
    uses, so a hook on that one never counts our reads)."""
    import boto3

    return boto3.session.Session().client(
        "s3",
        endpoint_url=env["S3_ENDPOINT"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        region_name=REGION,
    )


@contextlib.contextmanager
def weed_and_daemon(
    prefix: str, daemon_env: dict[str, str] | None = None
) -> Iterator[tuple[WeedServer, IsolatedDaemon, Path]]:
    """A weed server with bucket ``bench`` and an isolated daemon talking to it
    (``daemon_env`` added to its environment, e.g. ``SUMMARYD_S3_SEAL_SECS``).
    The daemon's environment (``d.env``) is what a trainer needs: the store's
    endpoint and keys, the runtime dir and ring prefix, ``SUMMARYD_NO_SPAWN``."""
    tmp = Path(tempfile.mkdtemp(prefix=f"{prefix}-"))
    try:
        with WeedServer.started(bucket="bench") as s3:
            env = s3.env(dict(os.environ))
            env["SUMMARYD_SPOOL_DIR"] = str(tmp / "spool")
            env.update(daemon_env or {})
            d = IsolatedDaemon(tmp, "sdbench-" + os.urandom(3).hex(), env)
            try:
                d.start()
                yield s3, d, tmp
            finally:
                d.cleanup()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run_status(env: dict[str, str], url: str) -> dict[str, Any]:
    """The daemon's s3 figures for the run at ``url`` (requests, bytes_sent,
    uploaded_segments, backlog...); the run must still be open."""
    from summaryd.daemon.cli import request
    from summaryd.paths import locations

    st = request(locations(env), {"t": "status"}, timeout=10)
    for r in st["runs"]:
        s3 = r.get("s3")
        if s3 and s3["url"].rstrip("/") == url.rstrip("/"):
            return dict(s3)
    raise LookupError(f"no s3 run {url} in the daemon's status: {st['runs']}")


def tfevents_keys(client: Any, bucket: str, prefix: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        out.extend(o for o in page.get("Contents", []) if "tfevents" in o["Key"])
    return out


def bucket_usage(client: Any, bucket: str, prefix: str) -> tuple[int, int]:
    """(event objects, their bytes) under ``prefix``."""
    keys = tfevents_keys(client, bucket, prefix)
    return len(keys), sum(int(o["Size"]) for o in keys)


def events_in(body: bytes) -> Iterator[Any]:
    """The ``Event`` protos of one object (TFRecords: u64 length, CRC, data, CRC)."""
    from tensorboard.compat.proto import event_pb2

    off = 0
    while off + 12 <= len(body):
        (n,) = struct.unpack_from("<Q", body, off)
        yield event_pb2.Event.FromString(body[off + 12 : off + 12 + n])
        off += 12 + n + 4


def readable(client: Any, bucket: str, prefix: str, step: int) -> bool:
    """Whether an event with a summary value at ``step`` is in the bucket under
    ``prefix`` (objects read newest name first: a new event is in the tail)."""
    keys = sorted((o["Key"] for o in tfevents_keys(client, bucket, prefix)), reverse=True)
    for key in keys:
        body = client.get_object(Bucket=bucket, Key=key)["Body"].read()
        if any(ev.step == step and ev.summary.value for ev in events_in(body)):
            return True
    return False
