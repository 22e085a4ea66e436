"""The boto3 edge of ``s3://`` runs: one bucket's calls, one segment's upload.

Everything that talks to the store is here; the decisions (names, sealing,
which number to claim, whether a crashed upload landed) are in
``s3layout``, the local bytes in ``spool``. Nothing here starts a thread or
keeps a socket of ours: the daemon's loop calls :meth:`Uploader.upload_ready`
when a segment is sealed or a retry is due.

The URL, the endpoint and credentials (the standard places), the boto3
client and what an error means are the SDK's (``summaryd.remote``), which
checks the bucket at writer construction with them: one definition each.
boto3 is optional (``pip install summaryd[s3]``): it is imported on first
use of an ``s3://`` URL, and the error then names the extra.

Errors: :class:`S3AccessError` is permanent (no such bucket, refused
credentials, no credentials at all) and names the bucket and cause;
:class:`S3UnavailableError` is transient (connection refused, timeouts, 5xx,
throttling) after the retries of one call; the segment stays in the spool
and the next call resumes.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from summaryd.errors import (
    S3AccessError,
    S3Error,
    S3ExtraMissingError,
    S3UnavailableError,
    S3UrlError,
)
from summaryd.remote import (
    EXTRA_HINT,
    S3Url,
    boto,
    classify,
    endpoint_from_env,
    parse_s3_url,
    s3_client,
)

from . import s3layout
from .spool import Segment, Spool

# The errors live in summaryd.errors, the URL and client in summaryd.remote (the SDK
# raises them and checks the bucket at construction too); re-exported for the daemon.
__all__ = [
    "EXTRA_HINT",
    "S3AccessError",
    "S3Error",
    "S3ExtraMissingError",
    "S3Store",
    "S3UnavailableError",
    "S3Url",
    "S3UrlError",
    "Uploader",
    "endpoint_from_env",
    "parse_s3_url",
]


@dataclass(frozen=True)
class StoreStatistics:
    requests: int
    bytes_sent: int  # request bodies (the segments, mostly)
    conflicts: int  # 412s: another node had the number or changed the tail
    bytes_refused: int  # bodies sent with those 412s (part of bytes_sent)
    retries: int
    last_error: str | None


@dataclass(frozen=True)
class RetryPolicy:
    """Backoff for transient failures within one call; the caller retries later."""

    attempts: int = 4
    first_delay: float = 0.2
    max_delay: float = 5.0

    def delay(self, attempt: int) -> float:
        return float(min(self.max_delay, self.first_delay * 2**attempt))


def request_body_bytes(request: Any) -> int:
    """Bytes of a botocore request's body (for a ``before-send`` hook that counts
    what is sent); a file-like body is measured without being consumed."""
    body = request.body
    if isinstance(body, bytes | bytearray):
        return len(body)
    if body is not None and hasattr(body, "seek"):
        pos = body.tell()
        body.seek(0, os.SEEK_END)
        n = int(body.tell() - pos)
        body.seek(pos)
        return n
    return 0


class S3Store:
    """One bucket and prefix, through one boto3 client."""

    def __init__(
        self,
        url: S3Url | str,
        *,
        env: Mapping[str, str] | None = None,
        client: Any = None,
        retry: RetryPolicy = RetryPolicy(),
        sleep: Callable[[float], None] = time.sleep,
        timeout: float = 30.0,
    ) -> None:
        self.url = parse_s3_url(url) if isinstance(url, str) else url
        self._exc = boto()[2]
        self.retry = retry
        self._sleep = sleep
        # Retries are ours (``retry``, with the spool's attempt record in between).
        self.client = s3_client(env, timeout, attempts=1) if client is None else client
        self._requests = self._bytes = self._conflicts = self._retries = self._refused = 0
        self._last_error: str | None = None
        self.client.meta.events.register("before-send.s3", self._count)

    def _count(self, request: Any, **_: Any) -> None:
        self._requests += 1
        self._bytes += request_body_bytes(request)

    def statistics(self) -> StoreStatistics:
        return StoreStatistics(
            self._requests,
            self._bytes,
            self._conflicts,
            self._refused,
            self._retries,
            self._last_error,
        )

    # -- errors ---------------------------------------------------------------

    def _classify(self, e: Exception) -> S3Error:
        return classify(e, self.url)

    def _call(self, fn: Callable[..., Any], passthrough: int = 0, **kw: Any) -> Any:
        """``fn(**kw)`` with backoff on transient errors; a ClientError with
        HTTP status ``passthrough`` (412 for a create, 404 for a HEAD) goes to
        the caller as it is, which knows what it means there."""
        for attempt in range(self.retry.attempts):
            try:
                return fn(**kw)
            except Exception as e:
                if (
                    passthrough
                    and isinstance(e, self._exc.ClientError)
                    and e.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == passthrough
                ):
                    raise
                err = self._classify(e)
                self._last_error = str(err)
                if isinstance(err, S3AccessError) or attempt + 1 == self.retry.attempts:
                    raise err from e
                self._retries += 1
                self._sleep(self.retry.delay(attempt))
        raise S3UnavailableError(f"{self.url}: no attempts allowed", self.url.bucket)

    # -- operations ---------------------------------------------------------

    def check(self) -> None:
        """Raise :class:`S3AccessError` if the bucket is missing or refuses us
        (call at writer construction, where the trainer can see it)."""
        self._call(self.client.head_bucket, Bucket=self.url.bucket)

    def list_after(self, start_after: str | None) -> list[str]:
        """Our segment keys after ``start_after`` (all pages), in name order."""
        prefix = s3layout.run_prefix(self.url.prefix) + s3layout.NAME_PREFIX
        keys: list[str] = []
        kw: dict[str, Any] = {"Bucket": self.url.bucket, "Prefix": prefix}
        if start_after:
            kw["StartAfter"] = start_after
        while True:
            r = self._call(self.client.list_objects_v2, **kw)
            keys.extend(o["Key"] for o in r.get("Contents", []))
            if not r.get("IsTruncated"):
                return keys
            kw["ContinuationToken"] = r["NextContinuationToken"]

    def put(self, key: str, body: bytes, writes: int, seal: bool, if_match: str = "") -> str | None:
        """PUT ``body`` at ``key``: only if nothing is there (``if_match``
        empty) or only over the version with ETag ``if_match``. The new ETag,
        or None if the condition failed (412: another node was first)."""
        meta = {s3layout.META_WRITES: str(writes), s3layout.META_SEALED: "1" if seal else "0"}
        cond = {"IfMatch": if_match} if if_match else {"IfNoneMatch": "*"}
        try:
            r = self._call(
                self.client.put_object,
                passthrough=412,
                Bucket=self.url.bucket,
                Key=key,
                Body=body,
                Metadata=meta,
                **cond,
            )
        except self._exc.ClientError:
            self._conflicts += 1
            self._refused += len(body)
            return None
        return str(r["ETag"])

    def get(self, key: str) -> tuple[bytes, str, int, bool] | None:
        """Object ``key`` whole: (body, ETag, writes, sealed); None if absent."""
        try:
            r = self._call(self.client.get_object, passthrough=404, Bucket=self.url.bucket, Key=key)
        except self._exc.ClientError:
            return None
        body = r["Body"].read()
        meta: dict[str, str] = r.get("Metadata", {})
        writes = int(meta.get(s3layout.META_WRITES, "1") or 1)
        # An object without our metadata (written by something else) is not ours to grow.
        sealed = meta.get(s3layout.META_SEALED, "1") != "0"
        return bytes(body), str(r["ETag"]), writes, sealed

    def read_range(self, key: str, offset: int, length: int) -> bytes | None:
        """``length`` bytes at ``offset`` of ``key``; None if absent or shorter."""
        if length == 0:
            return b""
        try:
            r = self._call(
                self.client.get_object,
                passthrough=404,
                Bucket=self.url.bucket,
                Key=key,
                Range=f"bytes={offset}-{offset + length - 1}",
            )
        except self._exc.ClientError:
            return None
        except S3AccessError as e:
            if e.cause == "InvalidRange":  # the object ends before offset
                return None
            raise
        data = bytes(r["Body"].read())
        return data if len(data) == length else None


class Uploader:
    """Moves one run's sealed segments from its spool into the store, in order.

    Keeps the run's newest object (as this node last wrote or read it) in
    memory, so that appending to its own tail costs one PUT and no GET.
    """

    def __init__(
        self, store: S3Store, spool: Spool, policy: s3layout.TailPolicy | None = None
    ) -> None:
        self.store = store
        self.spool = spool
        self.claimer = s3layout.TailClaimer(store.url.prefix, policy)
        self._body = b""  # the tail's content, matching claimer.tail
        self.placed: list[tuple[int, int]] = []  # (seq, offset) of each segment uploaded

    def upload_ready(self) -> int:
        """Upload every sealed segment; the number uploaded. Raises
        :class:`S3UnavailableError` (the rest stays for the next call) or
        :class:`S3AccessError`."""
        n = 0
        for seg in self.spool.sealed():
            self.upload(seg)
            n += 1
        return n

    def _key(self, seq: int) -> str:
        return s3layout.object_key(self.store.url.prefix, seq)

    def upload(self, seg: Segment) -> tuple[int, int]:
        """Put one sealed segment's records into the run: (seq, offset)."""
        records = self.spool.records(seg)
        for seq, off in seg.attempts:
            # A PUT whose outcome we never learnt (a kill, a timeout): did it land?
            if s3layout.landed(records, self.store.read_range(self._key(seq), off, len(records))):
                return self._done(seg, seq, off)
        header = self.spool.header(seg)
        c = self.claimer
        try:
            while True:
                t = c.tail
                fresh = t is None or t.seq != c.known or t.sealed
                act = c.next_action(len(records) + (len(header) if fresh else 0))
                if act.step is s3layout.Step.LIST:
                    c.on_listed(self.store.list_after(act.start_after))
                    continue
                if act.step is s3layout.Step.GET:
                    got = self.store.get(self._key(act.seq))
                    if got is None:
                        c.on_missing(act.seq)
                    else:
                        self._body = got[0]
                        c.on_got(act.seq, got[1], len(got[0]), got[2], got[3])
                    continue
                if act.step is s3layout.Step.CREATE:
                    base, etag_in = header, ""
                else:
                    base, etag_in = self._body, act.etag
                body = base + records
                self.spool.record_attempt(seg, act.seq, len(base))
                retries = self.store.statistics().retries
                etag = self.store.put(self._key(act.seq), body, act.writes, act.seal, etag_in)
                if etag is None:
                    if self.store.statistics().retries > retries and s3layout.landed(
                        records, self.store.read_range(self._key(act.seq), len(base), len(records))
                    ):
                        # Our first try got in, its answer was lost, the retry met our own
                        # write: done, but the tail's ETag is unknown now.
                        c.forget()
                        return self._done(seg, act.seq, len(base))
                    c.on_conflict(act)
                    continue
                self._body = body
                c.on_written(act, etag, len(body))
                return self._done(seg, act.seq, len(base))
        except S3UnavailableError:
            c.forget()  # the PUT may have landed: re-read before the next write
            raise

    def _done(self, seg: Segment, seq: int, offset: int) -> tuple[int, int]:
        self.spool.done(seg)
        self.placed.append((seq, offset))
        return seq, offset
