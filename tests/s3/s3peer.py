"""An uploader in its own process, for the kill tests: uploads a spool's sealed segments.

Configured by environment variables (the test's S3 environment plus):

* ``PEER_SPOOL``: the spool directory; ``PEER_URL``: ``s3://bucket/prefix``;
  ``PEER_MAX_WRITES``: the tail policy's ``max_writes`` (default 8).
* ``PEER_DIE``: ``before-put:K`` (SIGKILL itself once the K-th attempt is
  recorded, before the PUT) or ``after-put:K`` (after the K-th object is in
  the store, before the spool forgets the segment); unset: run to the end.

Prints ``put <n>`` before each PUT and ``done <seq>`` after each segment, flushed,
so a test can also kill it from outside in the middle of a PUT.
"""

from __future__ import annotations

import os
import signal
import sys

from summaryd.daemon.s3layout import TailPolicy
from summaryd.daemon.s3store import S3Store, Uploader
from summaryd.daemon.spool import Segment, Spool


def main() -> None:
    spool = Spool(os.environ["PEER_SPOOL"])
    store = S3Store(os.environ["PEER_URL"])
    die_when, _, k = os.environ.get("PEER_DIE", "").partition(":")
    die_at = int(k) if k else -1
    attempts = 0
    created = 0
    record_attempt, put, done = spool.record_attempt, store.put, spool.done

    def on_attempt(seg: Segment, seq: int, offset: int) -> None:
        nonlocal attempts
        record_attempt(seg, seq, offset)
        attempts += 1
        if die_when == "before-put" and attempts == die_at:
            os.kill(os.getpid(), signal.SIGKILL)
        print(f"put {attempts}", flush=True)

    def on_put(key: str, body: bytes, writes: int, seal: bool, if_match: str = "") -> str | None:
        nonlocal created
        etag = put(key, body, writes, seal, if_match)
        created += etag is not None
        if etag is not None and die_when == "after-put" and created == die_at:
            os.kill(os.getpid(), signal.SIGKILL)
        return etag

    def on_done(seg: Segment) -> None:
        done(seg)
        print(f"done {seg.id}", flush=True)

    spool.record_attempt = on_attempt  # type: ignore[method-assign]
    store.put = on_put  # type: ignore[method-assign]
    spool.done = on_done  # type: ignore[method-assign]
    policy = TailPolicy(max_writes=int(os.environ.get("PEER_MAX_WRITES", "8")))
    Uploader(store, spool, policy).upload_ready()
    print("finished", flush=True)


if __name__ == "__main__":
    sys.exit(main())
