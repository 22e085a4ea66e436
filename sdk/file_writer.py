"""torch's ``FileWriter`` surface, for code that reaches past ``SummaryWriter``.

Frameworks build protobuf messages themselves and hand them to the writer's
internals: PyTorch Lightning's ``log_hyperparams`` calls
``writer._get_file_writer().add_summary(...)`` with summaries from
``torch.utils.tensorboard.summary.hparams``; torch's own ``add_hparams`` uses
``SummaryWriter(...).file_writer``; Composer uploads
``writer.file_writer.event_writer._file_name``.  This module gives them
torch 2.13's ``FileWriter`` and ``EventFileWriter`` methods over summaryd's
runs: a message is serialized in the caller (whatever protobuf classes built
it: torch's, TensorBoard's, tensorboardX's or ours) and travels as an EVENT
record (``wire.py``); the daemon parses it with its own schema, refuses what
does not parse, and writes it into the run's one event file.

A ``FileWriter`` is bound to a run of a ``SummaryWriter`` (the log dir, or an
``add_scalars`` sub-run); one made directly, ``FileWriter(log_dir, ...)``,
owns a writer of its own.  Like a ``SummaryWriter``, a closed one re-opens
(in a new event file) when it is used again.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from . import convert, wire
from .errors import ArgumentAttributeError, ArgumentTypeError, DaemonUnavailableError

if TYPE_CHECKING:
    from .writer import SummaryWriter

# Event's length-delimited fields (tensorboard/compat/proto/event.proto).
_GRAPH_DEF = 4
_SUMMARY = 5
_TAGGED_RUN_METADATA = 8


def _field(number: int, payload: bytes) -> bytes:
    """One length-delimited protobuf field: how an Event wraps a message or bytes."""
    return wire.varint(number << 3 | 2) + wire.varint(len(payload)) + payload


def _serialized(message: Any, name: str, expected: str) -> bytes:
    """The bytes of a protobuf ``message`` of type ``expected``, from any protobuf runtime."""
    descriptor = getattr(message, "DESCRIPTOR", None)
    serialize = getattr(message, "SerializeToString", None)
    if serialize is None or getattr(descriptor, "name", None) != expected:
        # Also AttributeError: torch fails setting ``wall_time`` on such an object.
        raise ArgumentAttributeError(
            f"{name}: expected a tensorboard {expected} protocol buffer, "
            f"got {type(message).__name__}"
        )
    data = serialize()
    if not isinstance(data, bytes):
        raise ArgumentTypeError(f"{name}: SerializeToString() returned {type(data).__name__}")
    return data


def _first_tag(summary: Any) -> str:
    """The tag the daemon's same-tag-from-two-processes check keys on."""
    try:
        values = summary.value
        tag = values[0].tag if len(values) else ""
    except Exception:  # a message of another shape: no check rather than no event
        return ""
    return tag if isinstance(tag, str) else ""


class EventFileWriter:
    """torch's ``FileWriter.event_writer``: the run's event file.

    summaryd's daemon owns the file; ``_file_name`` asks it for the path.
    """

    def __init__(self, owner: FileWriter) -> None:
        self._owner = owner

    @property
    def _logdir(self) -> str:
        return self._owner.get_logdir()

    def get_logdir(self) -> str:
        """Return the directory where the event file is written."""
        return self._owner.get_logdir()

    @property
    def _file_name(self) -> str:
        """The path of the run's current event file (Composer uploads it).

        Flushes first, so the daemon has created the file and it holds every
        event logged so far.

        Raises:
            DaemonUnavailableError: no daemon answered within the flush bound.
        """
        return self._owner._event_file_path()

    @property
    def _ev_writer(self) -> EventFileWriter:
        """tensorboardX's record writer: its scripts read ``_ev_writer._file_name``."""
        return self

    def add_event(self, event: Any) -> None:
        """Add an ``Event`` as it is (its wall time and step already set)."""
        data = _serialized(event, "event", "Event")
        # The record's wall time replaces the event's: hand the event's own.
        self._owner._put_event(data, None, convert.to_walltime(event.wall_time), event)

    def flush(self) -> None:
        """Return once every event logged so far is in the file."""
        self._owner.flush()

    def close(self) -> None:
        """Flush and close the file; using the writer again re-opens a new one."""
        self._owner.close()

    def reopen(self) -> None:
        """Re-open after ``close()`` (a new event file); nothing if open."""
        self._owner.reopen()


class FileWriter:
    """torch's ``FileWriter``: adds protobuf events and summaries to a run's file.

    Args:
        log_dir: Directory where the event file is written.
        max_queue: Size of the queue for pending events before they are
            written (as ``SummaryWriter``'s).
        flush_secs: How often, in seconds, pending events are written at most.
        filename_suffix: Suffix added to the event file's name.
        purge_step: summaryd only: resume from this step, as
            ``SummaryWriter(purge_step=)`` (what torch's writer writes as a
            ``file_version``/``SessionLog.START`` pair through ``add_event``).
    """

    def __init__(
        self,
        log_dir: str | os.PathLike[str],
        max_queue: int = 10,
        flush_secs: int = 120,
        filename_suffix: str = "",
        *,
        purge_step: int | None = None,
    ) -> None:
        from .writer import SummaryWriter

        log_dir = str(log_dir)
        self._writer = SummaryWriter(
            log_dir,
            purge_step=purge_step,
            max_queue=max_queue,
            flush_secs=flush_secs,
            filename_suffix=filename_suffix,
        )
        self._path = self._writer._log_dir_str
        self.event_writer = EventFileWriter(self)

    @classmethod
    def _bound(cls, writer: SummaryWriter, path: str) -> FileWriter:
        """The FileWriter of ``writer``'s run at ``path`` (made by the writer)."""
        fw = cls.__new__(cls)
        fw._writer = writer
        fw._path = path
        fw.event_writer = EventFileWriter(fw)
        return fw

    def _wid(self) -> int:
        w = self._writer
        c = w._current()
        wid = w._wids.get(self._path)
        if wid is None:  # this sub-run was closed: re-open it, as a used SummaryWriter does
            wid = w._open_run(c, self._path, None)
        return wid

    def _put_event(self, data: bytes, step: Any, walltime: Any, event: Any = None) -> None:
        tag = _first_tag(getattr(event, "summary", None)) if event is not None else ""
        arr = _as_uint8(data)
        self._writer._put_arrays(wire.EVENT, tag, step, walltime, ({}, [arr]), self._wid())

    def get_logdir(self) -> str:
        """Return the directory where the event file is written."""
        return self._path

    def add_event(self, event: Any, step: int | None = None, walltime: float | None = None) -> None:
        """Add an event to the event file.

        Args:
            event: An ``Event`` protocol buffer (torch's, TensorBoard's,
                tensorboardX's or any other runtime's).
            step: Optional global step value to record with the event.
            walltime: Optional walltime to override the default (current)
                walltime (from ``time.time()``), seconds after the epoch.
        """
        data = _serialized(event, "event", "Event")
        wt = convert.to_walltime(walltime)
        s = convert.to_step(step, "step")
        # torch sets these on the caller's message; the daemon sets them on its copy.
        event.wall_time = wt
        if s is not None:
            event.step = s
        self._put_event(data, s, wt, event)

    def add_summary(
        self, summary: Any, global_step: int | None = None, walltime: float | None = None
    ) -> None:
        """Add a ``Summary`` protocol buffer to the event file, wrapped in an ``Event``.

        Args:
            summary: A ``Summary`` protocol buffer (of any protobuf runtime).
            global_step: Optional global step value to record with the summary.
            walltime: Optional walltime to override the default (current)
                walltime (from ``time.time()``), seconds after the epoch.
        """
        data = _field(_SUMMARY, _serialized(summary, "summary", "Summary"))
        tag = _first_tag(summary)
        step = convert.to_step(global_step)
        self._writer._put_arrays(
            wire.EVENT, tag, step, walltime, ({}, [_as_uint8(data)]), self._wid()
        )

    def add_graph(self, graph_profile: Any, walltime: float | None = None) -> None:
        """Add a ``GraphDef`` and its ``RunMetadata`` (torch's ``(graph, stepstats)`` pair).

        Args:
            graph_profile: ``(GraphDef, RunMetadata)`` protocol buffers.
            walltime: Optional walltime to override the default (current)
                walltime (from ``time.time()``), seconds after the epoch.
        """
        try:
            graph, stepstats = graph_profile
        except (TypeError, ValueError):
            raise ArgumentTypeError(
                "graph_profile: expected a (GraphDef, RunMetadata) pair"
            ) from None
        graph_def = _serialized(graph, "graph_profile[0]", "GraphDef")
        run_metadata = _serialized(stepstats, "graph_profile[1]", "RunMetadata")
        wt = convert.to_walltime(walltime)
        self._put_event(_field(_GRAPH_DEF, graph_def), None, wt)
        # torch tags the run metadata "step1" (TaggedRunMetadata{tag=1, run_metadata=2}).
        trm = _field(1, b"step1") + _field(2, run_metadata)
        self._put_event(_field(_TAGGED_RUN_METADATA, trm), None, wt)

    def add_onnx_graph(self, graph: Any, walltime: float | None = None) -> None:
        """Add a ``GraphDef`` protocol buffer (from an ONNX model) to the event file.

        Args:
            graph: A ``GraphDef`` protocol buffer.
            walltime: Optional walltime to override the default (current)
                walltime (from ``time.time()``), seconds after the epoch.
        """
        graph_def = _serialized(graph, "graph", "GraphDef")
        self._put_event(_field(_GRAPH_DEF, graph_def), None, convert.to_walltime(walltime))

    def flush(self) -> None:
        """Return once every event logged so far is in the event file."""
        self._writer.flush()

    def close(self) -> None:
        """Flush and close the event file (the whole writer's, for its main run).

        Using the writer again re-opens the run in a new event file.
        """
        w = self._writer
        if self._path == w._log_dir_str:
            w.close()
        else:
            w._close_run(self._path)

    def reopen(self) -> None:
        """Re-open the run after ``close()`` (a new event file); nothing if it is open."""
        self._wid()

    def _event_file_path(self) -> str:
        self.flush()
        w = self._writer
        c = w._current()
        path = os.path.abspath(self._path)
        from .control import request

        reply = request(c.loc, wire.status())
        files = [
            (r["run_id"], r["file"])
            for r in reply.get("runs", ())
            if r.get("log_dir") == path and r.get("suffix") == w._suffix and r.get("file")
        ]
        if not files:
            raise DaemonUnavailableError(f"the daemon has no event file open in {path}")
        return str(max(files)[1])


def _as_uint8(data: bytes) -> Any:
    import numpy as np

    return np.frombuffer(data, dtype=np.uint8)
