"""Log dirs that are URLs: ``s3://`` is written by the daemon, any other scheme is refused.

torch hands any ``scheme://`` string to TensorBoard's file layer; summaryd used
to treat it as a relative path (``s3://b/run`` became the local directory
``s3:/b/run``, silently).  Now a log dir matching ``^[a-z][a-z0-9+.-]*://`` is
a URL: ``s3://bucket/prefix`` goes to the daemon as it is (it spools and
uploads, ``daemon/remote.py``), anything else raises
:class:`~summaryd.errors.UnsupportedLogDirError` at construction.

The bucket and credentials are checked here, at construction, where the
trainer sees the error with its own stack (a HEAD on the bucket with this
process's environment, once per URL per process).  The daemon uses *its*
environment; a spawned daemon inherits the first trainer's.

What both sides need of an s3 URL lives here, once: :func:`parse_s3_url`,
the endpoint (:func:`endpoint_from_env`), the boto3 client
(:func:`s3_client`) and what a failed call means (:func:`classify`).  The
daemon's ``s3store`` builds on them; the SDK never imports the daemon.

Configuration comes from the standard places, as TensorBoard and the AWS CLI
take it: the endpoint from ``AWS_ENDPOINT_URL_S3``, ``AWS_ENDPOINT_URL``
(boto3 >= 1.28) or ``S3_ENDPOINT`` (TensorBoard's variable; it must be set
for TensorBoard to read a non-AWS store anyway), credentials and region from
boto3's own chain (environment, profiles, instance roles).

This module imports nothing heavy: boto3 is imported only when an ``s3://``
writer is made (``import summaryd`` stays light, as
``tests/unit/test_public_api.py`` checks), and without it the error names
the extra (``pip install summaryd[s3]``).
"""

from __future__ import annotations

import os
import re
import threading
import warnings
from collections.abc import Mapping
from typing import Any, NamedTuple

from .errors import (
    S3AccessError,
    S3Error,
    S3ExtraMissingError,
    S3UnavailableError,
    S3UrlError,
    SummarydWarning,
    UnsupportedLogDirError,
)

SUPPORTED = "s3://bucket/prefix (or a local directory)"
EXTRA_HINT = "pip install summaryd[s3]"
# HTTP codes and S3 error codes that a later attempt may not meet again.
_TRANSIENT_STATUS = {408, 429, 500, 502, 503, 504}
_TRANSIENT_CODES = {"SlowDown", "RequestTimeout", "InternalError", "ServiceUnavailable"}
_URL = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*://")
# URL -> None once its bucket answered; a process makes many writers on one run
# (every epoch, every sub-run of add_scalars), each HEAD costs a round trip.
_checked: set[str] = set()
_lock = threading.Lock()


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
    if "//" in prefix:
        raise S3UrlError(
            f"log_dir {url!r}: run prefix {prefix!r}: empty path component", bucket=bucket
        )
    return S3Url(bucket, prefix)


def endpoint_from_env(env: Mapping[str, str] | None = None) -> str | None:
    """The endpoint URL to use, or None for AWS itself."""
    env = os.environ if env is None else env
    for name in ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "S3_ENDPOINT"):
        if env.get(name):
            return env[name]
    return None


def boto() -> tuple[Any, Any, Any]:
    """``(boto3, botocore.config, botocore.exceptions)``, or
    :class:`~summaryd.errors.S3ExtraMissingError` naming the extra."""
    try:
        import boto3
        import botocore.config
        import botocore.exceptions
    except ImportError as e:
        raise S3ExtraMissingError(
            f"s3:// log dirs need boto3: {EXTRA_HINT} ({e})", cause="boto3 missing"
        ) from None
    return boto3, botocore.config, botocore.exceptions


def s3_client(env: Mapping[str, str] | None, timeout: float, attempts: int = 1) -> Any:
    """A boto3 S3 client on the endpoint of ``env`` (the boto3 credential chain).

    ``attempts``: botocore's own tries per call.  The daemon's uploader keeps
    1 (its retries come with the spool's attempt record in between; botocore's
    would re-send a conditional PUT it cannot account for)."""
    boto3, config, _ = boto()
    cfg = config.Config(
        retries={"max_attempts": attempts, "mode": "standard"},
        connect_timeout=min(timeout, 5.0),
        read_timeout=timeout,
    )
    return boto3.session.Session().client("s3", endpoint_url=endpoint_from_env(env), config=cfg)


def classify(e: Exception, url: S3Url) -> S3Error:
    """What a failed boto3 call on ``url`` means: :class:`S3AccessError` for
    good (no such bucket, refused or missing credentials), naming the bucket and
    cause, or :class:`S3UnavailableError` (retry later).  Anything else re-raises."""
    exc = boto()[2]
    b = url.bucket
    if isinstance(e, exc.NoCredentialsError):
        return S3AccessError(
            f"{url}: no credentials found (set AWS_ACCESS_KEY_ID/"
            "AWS_SECRET_ACCESS_KEY or a profile)",
            b,
            "no credentials",
        )
    if isinstance(e, exc.ClientError):
        err = e.response.get("Error", {})
        code = str(err.get("Code", ""))
        status = int(e.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
        if status in _TRANSIENT_STATUS or code in _TRANSIENT_CODES:
            return S3UnavailableError(f"{url}: {status} {code}", b, code)
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
        return S3UnavailableError(f"{url}: {type(e).__name__}: {e}", b, type(e).__name__)
    raise e


def is_url(log_dir: str) -> bool:
    """Whether ``log_dir`` names a URL (``scheme://...``) rather than a path."""
    return _URL.match(log_dir) is not None


def is_s3(log_dir: str) -> bool:
    return log_dir.startswith("s3://")


def to_url(log_dir: str) -> str:
    """The canonical form of a URL log dir (``s3://bucket/prefix``, no trailing
    slash), or :class:`UnsupportedLogDirError` for a scheme we do not write."""
    if not log_dir.startswith("s3://"):
        scheme = log_dir.split("://", 1)[0]
        raise UnsupportedLogDirError(
            f"log_dir {log_dir!r}: the {scheme}:// scheme is not supported; "
            f"summaryd writes {SUPPORTED}"
        )
    url = parse_s3_url(log_dir)
    if any(part in (".", "..") for part in url.prefix.split("/")):
        raise S3UrlError(f"log_dir {log_dir!r}: '.' and '..' are not allowed in the prefix")
    return str(url)


def subrun(base: str, name: str, what: str) -> str:
    """The sub-run ``base/name`` of an s3 log dir (add_scalars' ``<tag>_<key>``),
    checked: it must stay one level inside ``base``."""
    if "\0" in name or any(p in (".", "..", "") for p in name.split("/")):
        raise UnsupportedLogDirError(f"{what}: {name!r} cannot name a run inside {base!r}")
    return to_url(f"{base}/{name}")


def check(url: str) -> None:
    """Raise unless the bucket of ``url`` exists and takes our credentials
    (:class:`~summaryd.errors.S3AccessError` naming the bucket and the cause,
    :class:`~summaryd.errors.S3ExtraMissingError` without boto3); a store that
    does not answer is only a warning (the daemon's spool keeps the events)."""
    with _lock:
        if url in _checked:
            return
    parsed = parse_s3_url(url)
    # Two quick tries: a trainer must not hang in its constructor on a dead store.
    client = s3_client(None, timeout=5.0, attempts=2)
    try:
        client.head_bucket(Bucket=parsed.bucket)
    except Exception as e:
        err = classify(e, parsed)
        if not isinstance(err, S3UnavailableError):
            raise err from e
        # Transient: the daemon spools and uploads once the store answers.
        warnings.warn(
            f"summaryd: {url}: the store does not answer ({err}); events are kept in "
            "the daemon's spool and uploaded when it does",
            SummarydWarning,
            stacklevel=4,
        )
        return
    with _lock:
        _checked.add(url)
