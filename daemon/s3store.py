"""The boto3 edge of ``s3://`` runs: URLs, the client, one segment's upload.

Everything that talks to the store is here; the decisions (names, sealing,
which number to claim, whether a crashed upload landed) are in
``s3layout``, the local bytes in ``spool``. Nothing here starts a thread or
keeps a socket of ours: the daemon's loop calls :meth:`Uploader.upload_ready`
when a segment is sealed or a retry is due.

boto3 is optional (``pip install summaryd[s3]``): it is imported on first
use of an ``s3://`` URL, so importing this module costs nothing without it,
and the error then names the extra.

Configuration comes from the standard places, as TensorBoard and the AWS
CLI take it: the endpoint from ``AWS_ENDPOINT_URL_S3``, ``AWS_ENDPOINT_URL``
(boto3 >= 1.28) or ``S3_ENDPOINT`` (TensorBoard's variable; it must be set
for TensorBoard to read a non-AWS store anyway), credentials and region from
boto3's own chain (environment, profiles, instance roles).

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
from typing import Any, NamedTuple

from summaryd.errors import (
    S3AccessError,
    S3Error,
    S3ExtraMissingError,
    S3UnavailableError,
    S3UrlError,
)

from . import s3layout
from .spool import Segment, Spool

EXTRA_HINT = "pip install summaryd[s3]"
# The errors live in summaryd.errors (the SDK raises them at construction too).
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
# HTTP codes and S3 error codes that a later attempt may not meet again.
_TRANSIENT_STATUS = {408, 429, 500, 502, 503, 504}
_TRANSIENT_CODES = {"SlowDown", "RequestTimeout", "InternalError", "ServiceUnavailable"}


class S3Url(NamedTuple):
    bucket: str
    prefix: str  # no leading or trailing slash; "" for the bucket's root

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"


def parse_s3_url(url: str) -> S3Url:
    """Split and check ``s3://bucket/prefix`` (bucket rules of S3: 3-63 of a-z 0-9 . -)."""
    if not isinstance(url, str) or not url.startswith("s3://"):
        raise S3UrlError(f"log_dir {url!r}: expected s3://bucket/prefix")
    rest = url[len("s3://") :]
    bucket, _, prefix = rest.partition("/")
    ok = 3 <= len(bucket) <= 63 and all(c.islower() or c.isdigit() or c in ".-" for c in bucket)
    if not ok or not bucket[0].isalnum() or not bucket[-1].isalnum():
        raise S3UrlError(
            f"log_dir {url!r}: bucket {bucket!r} is not a valid S3 bucket name "
            "(3-63 characters: lower-case letters, digits, '.', '-')",
            bucket=bucket,
        )
    prefix = prefix.strip("/")
    try:
        s3layout.run_prefix(prefix)
    except s3layout.LayoutError as e:
        raise S3UrlError(f"log_dir {url!r}: {e}", bucket=bucket) from None
    return S3Url(bucket, prefix)


def endpoint_from_env(env: Mapping[str, str] | None = None) -> str | None:
    """The endpoint URL to use, or None for AWS itself."""
    env = os.environ if env is None else env
    for name in ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "S3_ENDPOINT"):
        if env.get(name):
            return env[name]
    return None


def _boto() -> tuple[Any, Any, Any]:
    try:
        import boto3
        import botocore.config
        import botocore.exceptions
    except ImportError as e:
        raise S3ExtraMissingError(
            f"s3:// log dirs need boto3: {EXTRA_HINT} ({e})", cause="boto3 missing"
        ) from None
    return boto3, botocore.config, botocore.exceptions


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
        _, config, self._exc = _boto()
        self.retry = retry
        self._sleep = sleep
        if client is None:
            boto3 = _boto()[0]
            # Retries are ours (with the spool's attempt record in between);
            # botocore's would re-send a conditional PUT we cannot account for.
            cfg = config.Config(
                retries={"max_attempts": 1, "mode": "standard"},
                connect_timeout=min(timeout, 5.0),
                read_timeout=timeout,
            )
            client = boto3.session.Session().client(
                "s3", endpoint_url=endpoint_from_env(env), config=cfg
            )
        self.client = client
        self._requests = self._bytes = self._conflicts = self._retries = self._refused = 0
        self._last_error: str | None = None
        client.meta.events.register("before-send.s3", self._count)

    def _count(self, request: Any, **_: Any) -> None:
        self._requests += 1
        body = request.body
        if isinstance(body, bytes | bytearray):
            self._bytes += len(body)
        elif body is not None and hasattr(body, "seek"):
            pos = body.tell()
            body.seek(0, os.SEEK_END)
            self._bytes += body.tell() - pos
            body.seek(pos)

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
        b = self.url.bucket
        exc = self._exc
        if isinstance(e, exc.NoCredentialsError):
            return S3AccessError(
                f"{self.url}: no credentials found (set AWS_ACCESS_KEY_ID/"
                "AWS_SECRET_ACCESS_KEY or a profile)",
                b,
                "no credentials",
            )
        if isinstance(e, exc.ClientError):
            err = e.response.get("Error", {})
            code = str(err.get("Code", ""))
            status = int(e.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
            if status in _TRANSIENT_STATUS or code in _TRANSIENT_CODES:
                return S3UnavailableError(f"{self.url}: {status} {code}", b, code)
            if code in ("NoSuchBucket",) or (status == 404 and code in ("404", "NotFound")):
                return S3AccessError(f"bucket {b!r} does not exist ({code})", b, "no such bucket")
            if status in (401, 403) or code in (
                "InvalidAccessKeyId",
                "SignatureDoesNotMatch",
                "AccessDenied",
            ):
                return S3AccessError(
                    f"bucket {b!r}: access refused ({status} {code}): check the "
                    "credentials and their rights on this bucket",
                    b,
                    code or str(status),
                )
            return S3AccessError(f"bucket {b!r}: {status} {code} {err.get('Message', '')}", b, code)
        if isinstance(e, exc.BotoCoreError | OSError):
            return S3UnavailableError(f"{self.url}: {type(e).__name__}: {e}", b, type(e).__name__)
        raise e

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
