"""What the core asks the loop to do: one frozen dataclass per kind of action.

The core returns lists of these; the loop carries each out with the handler
its dispatch table names for the class, and feeds back what happened (a write
that failed, an encoding's result, whether a process lives) as new inputs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class OpenFile:
    """Open the run's event file.  ``purge_step``: the run is a life resumed at
    that step, which joins only a file another daemon began for the same life
    (another node's rank resuming too), never the earlier life's file."""

    run_id: int
    log_dir: str
    suffix: str
    purge_step: int | None = None


@dataclass(frozen=True)
class Append:
    """Write ``parts`` (framed records, in order) to the run's file in one write.

    ``meta`` says, per part, whose records it holds: ``(cid, first start, last
    start, records)`` (a part is one record, or a batch of one client's
    scalars).  The core derives from it how far each client's records are in
    files, and ``write_failed`` puts both back so no tail passes a record whose
    write failed.
    """

    run_id: int
    log_dir: str  # where a new file for the run goes if it has none (its
    suffix: str  # creation failed, or a write after its close failed)
    parts: list[bytes]
    meta: list[tuple[str, int, int, int]]
    # (cid, log_dir, suffix, upto): once written, each client's records of this
    # run that start before ``upto`` are in a file (what a restarted daemon skips).
    commits: tuple[tuple[str, str, str, int], ...] = ()
    # s3:// runs: this write's number in its run (1, 2, ...); ``Core.uploaded``
    # reports the highest number whose records are in the bucket.
    seq: int = 0

    @property
    def records(self) -> int:
        return sum(m[3] for m in self.meta)

    @property
    def data(self) -> bytes:
        return b"".join(self.parts)


@dataclass(frozen=True)
class CloseFile:
    run_id: int


@dataclass(frozen=True)
class SetTail:
    cid: str
    pos: int


@dataclass(frozen=True)
class Ack:
    cid: str
    tok: int


@dataclass(frozen=True)
class Notice:
    cid: str
    level: str
    msg: str


@dataclass(frozen=True)
class RemoveRing:
    cid: str


@dataclass(frozen=True)
class PurgeFiles:
    """Rewrite the run directory's closed event files without events at or after ``step``."""

    log_dir: str
    step: int


@dataclass(frozen=True)
class RemoveBlobs:
    """The client's blobs ``<ring>.b<n>`` whose records are now in their files."""

    cid: str
    blobs: tuple[int, ...]


@dataclass(frozen=True)
class Encode:
    """Encode an array record off the loop; its result comes back as
    ``Core.encoded(job, framed bytes or the exception)``.  The payload is
    ``data``, or the client's blob number ``blob`` (read by the encoder)."""

    job: int
    cid: str
    rec: list[Any]
    data: bytes | memoryview | None
    blob: int | None


@dataclass(frozen=True)
class Project:
    """Write an add_embedding record's projector files into ``log_dir``, after
    every earlier Project (each merges the log dir's config); the result comes
    back as ``Core.encoded(job, b"" or the exception)``."""

    job: int
    cid: str
    log_dir: str
    rec: list[Any]
    data: bytes | memoryview | None
    blob: int | None


@dataclass(frozen=True)
class Upload:
    """Seal and upload the ``s3://`` run's spooled records now: a client waits
    in ``flush()`` for them.  Answered by ``Core.uploaded`` (or ``upload_failed``)."""

    run_id: int


@dataclass(frozen=True)
class CheckAlive:
    """Does client ``cid``'s process still run?  Answer with ``Core.gone`` (after
    draining its ring) or ``Core.alive``."""

    cid: str


@dataclass(frozen=True)
class ScanRings:
    """Adopt and drain every ring in the ring directory now (a trainer resumes:
    the earlier life's records must be known before the new life starts);
    answer with ``Core.scanned``."""


Action = (
    OpenFile
    | Append
    | CloseFile
    | SetTail
    | Ack
    | Notice
    | RemoveRing
    | PurgeFiles
    | RemoveBlobs
    | Encode
    | Project
    | CheckAlive
    | ScanRings
    | Upload
)
