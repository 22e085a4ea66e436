"""What the core knows of each run and each client (plain records, no behaviour
beyond their lifecycle step and the check of an OPEN record's fields; the rules
live in ``core.py``, ``runs.py``, ``uploads.py`` and ``lifecycle.py``)."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from summaryd.remote import parse_s3_url

from .lifecycle import ClientState, RunState, next_client_state, next_run_state

DEFAULT_MAX_LATENCY = 1.0


class OpenRec(NamedTuple):
    """An OPEN ring record's fields (``wire.py``), validated by ``parse_open``."""

    wid: int
    log_dir: str
    suffix: str
    max_queue: int
    flush_secs: float
    purge_step: int | None
    walltime: float

    def record(self) -> list[Any]:
        """Back to the wire form (what a snapshot stores)."""
        from summaryd import wire

        return [wire.OPEN, *self]


def parse_open(rec: list[Any]) -> OpenRec:
    """An OPEN record's fields, checked (a client's bytes are never trusted)."""
    _, wid, log_dir, suffix, max_queue, flush_secs, purge_step, walltime = rec
    if type(wid) is not int:
        raise ValueError(f"OPEN: writer id {wid!r} invalid")
    if isinstance(log_dir, str) and log_dir.startswith("s3://"):
        # An s3 run (``remote.py``): its canonical URL, as the SDK sends it.
        if str(parse_s3_url(log_dir)) != log_dir or "\0" in log_dir:
            raise ValueError(f"OPEN: s3 log_dir must be s3://bucket/prefix, got {log_dir!r}")
    elif not (
        isinstance(log_dir, str)
        and log_dir.startswith("/")
        and "\0" not in log_dir
        and os.path.normpath(log_dir) == log_dir
    ):
        raise ValueError(f"OPEN: log_dir must be a normalised absolute path, got {log_dir!r}")
    if not isinstance(suffix, str) or "/" in suffix or "\0" in suffix:
        raise ValueError(f"OPEN: invalid filename_suffix {suffix!r}")
    if type(max_queue) is not int or not isinstance(flush_secs, (int, float)):
        raise ValueError("OPEN: max_queue must be int and flush_secs a number")
    if purge_step is not None and (
        type(purge_step) is not int or not -(1 << 63) <= purge_step < (1 << 63)
    ):
        raise ValueError("OPEN: purge_step must be an int64 or nil")
    return OpenRec(wid, log_dir, suffix, max_queue, float(flush_secs), purge_step, float(walltime))


@dataclass(eq=False)
class Run:
    run_id: int
    log_dir: str
    suffix: str
    opened_at: float
    max_queue: int = 0
    latency: float = DEFAULT_MAX_LATENCY
    state: RunState = RunState.OPEN
    writers: set[tuple[str, int]] = field(default_factory=set)
    # Framed records waiting for the file, in order, one part per record or per
    # batch of one client's scalars; None is a slot whose encoding has not come
    # back.  ``meta``: each part's (client, first start, last start, records),
    # what a write commits, or a failed one puts back.
    pending: list[bytes | None] = field(default_factory=list)
    meta: list[tuple[str, int, int, int]] = field(default_factory=list)
    base: int = 0  # how many slots were ever taken off the front: a job's slot is base-relative
    encoding: int = 0  # None slots in ``pending``
    oldest: float = math.inf
    records_written: int = 0
    bytes_written: int = 0
    last_write: float | None = None
    # Set while the run has no writers and waits ``linger`` seconds before closing.
    idle_since: float | None = None
    closed_by: str | None = None
    # After a failed write (disk full, unwritable directory): no write before
    # ``retry_at``; ``error`` is what clients were told.
    retry_at: float = 0.0
    error: str | None = None
    # An Append of this run is out and not yet reported written or failed: no
    # second one until it is (were the first to fail after the second was
    # written, the file would hold the run's records out of order).
    inflight: bool = False
    # tag -> the client that logs it; tags reported as logged by two clients
    tags: dict[Any, str] = field(default_factory=dict)
    shared_tags: set[Any] = field(default_factory=set)
    # A life begun with purge_step: its step, the earlier life it waits for
    # (PURGE_WAIT) and how long at most, and the start time of the process that
    # resumed (writers of processes started before it belong to the past).
    purge_step: int | None = None
    predecessor: Run | None = None
    purge_deadline: float = 0.0
    resumer_start: int = 0
    # PURGE_WAIT: the rings were scanned since (``ScanRings`` done): the earlier
    # life's writers, even a trainer killed before its hello, are known.
    scanned: bool = False
    # s3:// runs: Appends numbered (``Append.seq``) so uploads can be matched.
    appends: int = 0

    @property
    def remote(self) -> bool:
        return self.log_dir.startswith("s3://")

    def advance(self, event: str) -> None:
        self.state = next_run_state(self.state, event)


@dataclass(eq=False)
class Client:
    cid: str
    pid: int
    start: int
    ring: str
    connected_at: float
    argv: list[str] = field(default_factory=list)
    state: ClientState = ClientState.ACTIVE
    writers: dict[int, Run] = field(default_factory=dict)
    drained: int = 0
    tail: int = 0
    unwritten: dict[int, int] = field(default_factory=dict)  # run_id -> first unwritten start
    flushes: list[tuple[int, int]] = field(default_factory=list)  # (pos, tok)
    records: int = 0
    malformed: int = 0
    notices: int = 0
    last_activity: float = 0.0
    force: bool = False
    # For restarts: OPEN/CLOSE records after the tail, the OPEN records of the
    # writers open at the tail, and how far each run's records are in files.
    control: list[tuple[int, list[Any]]] = field(default_factory=list)
    at_tail: dict[int, list[Any]] = field(default_factory=dict)
    written: dict[tuple[str, str], int] = field(default_factory=dict)
    # Restored ``written``: records before these positions are not written again.
    skip_below: dict[tuple[str, str], int] = field(default_factory=dict)
    replay_until: int = 0
    # (start, n) of records whose data is in the blob ``<ring>.b<n>``: removed
    # once the tail passes the record.
    blobs: list[tuple[int, int]] = field(default_factory=list)
    # s3 runs: run_id -> the seq of the last Append holding records of this
    # client; its flushes are acknowledged once that write is uploaded.
    uploading: dict[int, int] = field(default_factory=dict)
    # s3 runs (log_dir, suffix) this client's records were spooled for, kept in
    # the snapshot: a restarted daemon holds its flushes until what it adopted
    # of those spools is uploaded.
    spooled: set[tuple[str, str]] = field(default_factory=set)
    # Flushes whose records are written, waiting for these uploads:
    # (tok, {run_id: seq}, {(log_dir, suffix) of adopted spools}).
    upload_waits: list[tuple[int, dict[int, int], set[tuple[str, str]]]] = field(
        default_factory=list
    )

    @property
    def gone(self) -> bool:
        return self.state is not ClientState.ACTIVE

    def advance(self, event: str) -> None:
        self.state = next_client_state(self.state, event)
