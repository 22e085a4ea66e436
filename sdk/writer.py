"""``SummaryWriter``: torch's API, backed by the process's ring and the daemon.

Each method has the signature and meaning of
``torch.utils.tensorboard.SummaryWriter``'s (torch 2.13).  Its body validates
and converts the arguments (``convert.py``), takes the wall time, and commits
one record to the ring; the daemon builds the protobuf event and writes it.
The media methods (histograms, images, ..., embeddings) are in
``writer_media.py``, a mixin of this class.
"""

from __future__ import annotations

import os
import time
from typing import Any, cast

from . import client as _client_mod
from . import convert, remote, wire
from .client import ClientStatistics
from .errors import ArgumentAttributeError, ArgumentTypeError
from .file_writer import FileWriter
from .limits import tensorflow_bins
from .writer_media import MediaMethods

_SCALAR = wire.SCALAR
_CLOSED = object()
_INT64_MIN = convert.INT64_MIN
_INT64_MAX = convert.INT64_MAX


def _default_log_dir(comment: str) -> str:
    import socket
    from datetime import datetime

    current_time = datetime.now().strftime("%b%d_%H-%M-%S")
    return os.path.join("runs", current_time + "_" + socket.gethostname() + comment)


class SummaryWriter(MediaMethods):
    """Writes entries to event files in ``log_dir`` for TensorBoard to read.

    A drop-in replacement for ``torch.utils.tensorboard.SummaryWriter``: the
    calls are the same, the files read the same in TensorBoard.  The calls
    cost the caller only validation and a copy into shared memory; a per-user
    daemon (started on first use unless ``SUMMARYD_NO_SPAWN=1``) encodes and
    writes.  An event is in the event file within about a second, at the
    latest after ``flush_secs`` or ``max_queue`` events, and it survives the
    death of this process once the call has returned.

    Args:
        log_dir: Save directory location.  Default is
            ``runs/CURRENT_DATETIME_HOSTNAME``, which changes after each run.
        comment: Comment log_dir suffix appended to the default ``log_dir``.
            If ``log_dir`` is assigned, this argument has no effect.
        purge_step: When logging crashes at step ``T+X`` and restarts at step
            ``T``, any events whose global_step larger or equal to ``T`` will be
            purged and hidden from TensorBoard.
        max_queue: Size of the queue for pending events and summaries before
            they are written to disk.  Default is ten items.
        flush_secs: How often, in seconds, to flush the pending events and
            summaries to disk at most (summaryd writes within about a second anyway).
        filename_suffix: Suffix added to all event filenames in the log_dir directory.
    """

    def __init__(
        self,
        log_dir: str | os.PathLike[str] | None = None,
        comment: str = "",
        purge_step: int | None = None,
        max_queue: int = 10,
        flush_secs: int = 120,
        filename_suffix: str = "",
    ) -> None:
        """Create a writer and its event file (see the class docstring for the arguments).

        Raises:
            ArgumentTypeError / ArgumentValueError: an argument is unusable.
            RuntimeDirError: the runtime directory is unsafe (symlink, other owner).
        """
        if not log_dir:
            log_dir = _default_log_dir(str(comment))
        self.log_dir = log_dir
        self.purge_step = convert.to_purge_step(purge_step)
        self.max_queue = max_queue
        self.flush_secs = flush_secs
        self.filename_suffix = filename_suffix
        self._log_dir_str = convert.to_log_dir(log_dir)
        if remote.is_s3(self._log_dir_str):
            # A wrong bucket or credentials fails here, where the caller sees it.
            remote.check(self._log_dir_str)
        self._queue = convert.to_queue_size(max_queue)
        self._flush = convert.to_flush_secs(flush_secs)
        self._suffix = convert.to_suffix(filename_suffix)
        # The client this writer's runs are open in; _CLOSED after close(), so
        # the identity check on every call also catches "closed" and "forked".
        self._client: Any = _CLOSED
        self._put: Any = None
        self._wid = 0
        # The run ids of the main run and of each add_scalars sub-run, by path.
        self._wids: dict[str, int] = {}
        # torch's internals, which frameworks use (``file_writer.py``): None once closed.
        self.file_writer: FileWriter | None = None
        self.all_writers: dict[str, FileWriter] | None = None
        self.default_bins = tensorflow_bins()  # torch's attribute (its add_histogram's edges)
        self._open_main()
        _client_mod.register_exit_flush(self)

    # -- runs -----------------------------------------------------------------

    def _open_run(self, c: _client_mod.Client, path: str, purge_step: int | None) -> int:
        # torch creates the directory at once; scripts write their own files
        # into get_logdir() right after making the writer.
        if remote.is_s3(path):
            abspath = path  # the daemon spools and uploads it; nothing to create here
            c.remote_runs += 1
        else:
            abspath = os.path.abspath(path)
            os.makedirs(abspath, exist_ok=True)
        wid = c.new_wid()
        c.put(
            (
                wire.OPEN,
                wid,
                abspath,
                self._suffix,
                self._queue,
                self._flush,
                purge_step,
                time.time(),
            )
        )
        self._wids[path] = wid
        if self.all_writers is None:
            self.all_writers = {}
        if path not in self.all_writers:
            self.all_writers[path] = FileWriter._bound(self, path)
        return wid

    def _close_run(self, path: str) -> None:
        """Close one add_scalars sub-run (its ``FileWriter.close()``)."""
        wid = self._wids.pop(path, None)
        if self.all_writers is not None:
            self.all_writers.pop(path, None)
        c = self._client
        if wid is not None and c is _client_mod._client and c is not None:
            c.put((wire.CLOSE, wid))
            c.flush()

    def _open_main(self) -> _client_mod.Client:
        """(Re)open this writer's runs through the current client.

        torch re-creates its file writer when used after ``close()``, and
        writes the purge pair only the first time; after a fork the child's
        new client must learn every run this writer logs to.
        """
        c = _client_mod.get_client()
        subruns = [p for p in self._wids if p != self._log_dir_str]
        self._wids = {}
        self._client = c
        self._put = c.put
        self._wid = self._open_run(c, self._log_dir_str, self.purge_step)
        self.purge_step = None
        for path in subruns:
            self._open_run(c, path, None)
        self.file_writer = (self.all_writers or {})[self._log_dir_str]
        return c

    def _get_file_writer(self) -> FileWriter:
        """Return the writer's ``FileWriter`` (torch's internal API, used by
        Lightning and others); re-opens the writer if it was closed."""
        if self.all_writers is None or self.file_writer is None:
            self._open_main()
        return cast(FileWriter, self.file_writer)

    def _current(self) -> _client_mod.Client:
        c = _client_mod._client
        if c is not self._client:
            c = self._open_main()
        return c

    def get_logdir(self) -> str:
        """Return the directory where event files will be written."""
        return self.log_dir  # type: ignore[return-value]

    # -- scalars and text -----------------------------------------------------

    def add_scalar(
        self,
        tag: str,
        scalar_value: Any,
        global_step: int | None = None,
        walltime: float | None = None,
        new_style: bool = False,
        double_precision: bool = False,
    ) -> None:
        """Add scalar data to summary.

        Args:
            tag: Data identifier.
            scalar_value: Value to save (a number, a one-element array or tensor).
            global_step: Global step value to record.
            walltime: Optional override of the default walltime (``time.time()``),
                in seconds after the epoch.
            new_style: Whether to use new style (tensor field) or old style
                (simple_value field).  New style could lead to faster data loading.
            double_precision: With ``new_style``, store the value as a float64 tensor.
        """
        if type(tag) is not str:
            tag = convert.to_tag(tag)
        t = type(scalar_value)
        try:
            value = (
                float(scalar_value) if t is float or t is int else convert.to_scalar(scalar_value)
            )
        except OverflowError as exc:  # int beyond double range, as float() raises
            convert.reraise(exc, "scalar_value", "a real number")
        step = global_step
        if type(step) is not int or not _INT64_MIN <= step <= _INT64_MAX:
            step = convert.to_step(step)
        wt = time.time() if walltime is None else convert.to_walltime(walltime)
        if _client_mod._client is not self._client:
            self._open_main()
        try:
            if new_style:
                self._put((wire.SCALAR_T, self._wid, tag, value, step, wt, bool(double_precision)))
            else:
                self._put((_SCALAR, self._wid, tag, value, step, wt))
        except UnicodeEncodeError as exc:  # a lone surrogate in the tag; checked only here
            convert.reraise(exc, "tag", "text that UTF-8 can encode")

    def add_scalars(
        self,
        main_tag: str,
        tag_scalar_dict: dict[str, Any],
        global_step: int | None = None,
        walltime: float | None = None,
    ) -> None:
        """Add many scalar data to summary.

        As in torch, each key goes to its own run ``log_dir/<main_tag>_<key>``
        (``/`` in ``main_tag`` becomes ``_``), under the tag ``main_tag``, so
        TensorBoard draws them in one chart.

        Args:
            main_tag: The parent name for the tags.
            tag_scalar_dict: Key-value pairs storing the tag and corresponding values.
            global_step: Global step value to record.
            walltime: Optional override of the default walltime (``time.time()``).
        """
        main_tag = convert.to_main_tag(main_tag)
        if not hasattr(tag_scalar_dict, "items"):
            raise ArgumentAttributeError(
                f"tag_scalar_dict: expected a dict of tag -> value, "
                f"got {type(tag_scalar_dict).__name__}"
            )
        items = list(tag_scalar_dict.items())
        if not items:
            return  # torch converts nothing when there is nothing to log
        # Everything is checked before anything is written: a call that raises
        # logs nothing (torch writes the keys before the bad one).
        wt = convert.to_walltime(walltime)
        step = convert.to_step(global_step)
        values = []
        for tag, v in items:
            if not isinstance(tag, str):
                raise ArgumentTypeError(
                    f"tag_scalar_dict: keys must be str, got {type(tag).__name__}"
                )
            convert.check_utf8(tag, "tag_scalar_dict key")
            values.append((tag, convert.to_scalar(v, f"tag_scalar_dict[{tag!r}]")))
        c = self._current()
        base = self._log_dir_str + "/" + main_tag.replace("/", "_") + "_"
        paths = []
        for tag, _ in values:
            what = f"tag_scalar_dict key {tag!r}"
            if remote.is_s3(base):
                paths.append(
                    remote.subrun(self._log_dir_str, base[len(self._log_dir_str) + 1 :] + tag, what)
                )
            else:
                convert.check_subrun(self._log_dir_str, base + tag, what)
                paths.append(base + tag)
        for path, (_tag, value) in zip(paths, values, strict=True):
            wid = self._wids.get(path) or self._open_run(c, path, None)
            c.put((wire.SCALAR, wid, main_tag, value, step, wt))

    def add_text(
        self,
        tag: str,
        text_string: str,
        global_step: int | None = None,
        walltime: float | None = None,
    ) -> None:
        """Add text data to summary (rendered as markdown by TensorBoard).

        Args:
            tag: Data identifier (TensorBoard shows it as ``<tag>/text_summary``).
            text_string: String to save.
            global_step: Global step value to record.
            walltime: Optional override of the default walltime (``time.time()``).
        """
        tag = convert.to_str(tag, "tag")
        text = convert.to_text(text_string)
        step = convert.to_step(global_step)
        wt = convert.to_walltime(walltime)
        self._current().put((wire.TEXT, self._wid, tag, text, step, wt))

    # -- array records (the media methods are in MediaMethods) ------------------

    def _put_arrays(
        self,
        kind: int,
        tag: Any,
        global_step: Any,
        walltime: Any,
        payload: tuple[dict[str, Any], list[Any]],
        wid: int | None = None,
    ) -> None:
        """Commit one array record (``wire.py``): the common tail of the media methods."""
        tag = convert.to_tag(tag)
        step = convert.to_step(global_step)
        wt = convert.to_walltime(walltime)
        params, arrays = payload
        c = self._current()
        c.put_arrays((kind, self._wid if wid is None else wid, tag, step, wt, params), arrays)

    # -- lifecycle ------------------------------------------------------------

    def flush(self) -> None:
        """Return once every event logged so far is in its event file.

        Bounded by ``$SUMMARYD_FLUSH_TIMEOUT`` (10 s): a missing daemon never
        hangs the caller, and the events stay safe in shared memory.
        """
        c = self._client
        if c is _client_mod._client and c is not None:
            c.flush()

    def close(self) -> None:
        """Flush and close this writer's event files.

        Logging again afterwards re-opens the runs in new event files, as torch does.
        """
        c = self._client
        if c is _CLOSED:
            return
        if c is _client_mod._client and c is not None:
            for wid in self._wids.values():
                c.put((wire.CLOSE, wid))
            c.flush()
        self._client = _CLOSED
        self._put = None
        self._wids = {}
        self.file_writer = self.all_writers = None

    def statistics(self) -> ClientStatistics:
        """Ring fill, records committed and dropped for this process."""
        return self._current().statistics()

    def __enter__(self) -> SummaryWriter:
        """Use as a context manager: ``close()`` on exit."""
        return self

    def __exit__(self, exc_type: Any, exc_val: Any, exc_tb: Any) -> None:
        """Close the writer (flushing its events)."""
        self.close()

    # A writer handed to a spawn-started process re-opens its runs there.
    def __getstate__(self) -> dict[str, Any]:
        return {
            "log_dir": self.log_dir,
            "max_queue": self.max_queue,
            "flush_secs": self.flush_secs,
            "filename_suffix": self.filename_suffix,
            "subruns": [p for p in self._wids if p != self._log_dir_str],
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(  # type: ignore[misc]
            state["log_dir"],
            max_queue=state["max_queue"],
            flush_secs=state["flush_secs"],
            filename_suffix=state["filename_suffix"],
        )
        for path in state["subruns"]:
            self._open_run(self._current(), path, None)
