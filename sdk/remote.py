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

This module imports nothing heavy; boto3 and ``summaryd.daemon.s3store`` are
imported only when an ``s3://`` writer is made (``import summaryd`` stays
light, as ``tests/unit/test_public_api.py`` checks).
"""

from __future__ import annotations

import re
import threading
import warnings

from .errors import S3UnavailableError, S3UrlError, SummarydWarning, UnsupportedLogDirError

SUPPORTED = "s3://bucket/prefix (or a local directory)"
_URL = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*://")
# URL -> None once its bucket answered; a process makes many writers on one run
# (every epoch, every sub-run of add_scalars), each HEAD costs a round trip.
_checked: set[str] = set()
_lock = threading.Lock()


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
    from summaryd.daemon.s3store import parse_s3_url

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
    :class:`~summaryd.errors.S3ExtraMissingError` without boto3,
    :class:`~summaryd.errors.S3UnavailableError` when the store does not answer)."""
    with _lock:
        if url in _checked:
            return
    from summaryd.daemon.s3store import RetryPolicy, S3Store

    # One quick try: a trainer must not hang in its constructor on a dead store.
    store = S3Store(url, retry=RetryPolicy(attempts=2, first_delay=0.2), timeout=5.0)
    try:
        store.check()
    except S3UnavailableError as exc:
        # Transient: the daemon spools and uploads once the store answers.
        warnings.warn(
            f"summaryd: {url}: the store does not answer ({exc}); events are kept in "
            "the daemon's spool and uploaded when it does",
            SummarydWarning,
            stacklevel=4,
        )
        return
    with _lock:
        _checked.add(url)
