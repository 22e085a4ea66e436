"""``tensorboardX.SummaryWriter``'s API over summaryd (tensorboardX 2.6.5).

``summaryd.tensorboardx.SummaryWriter`` subclasses ``summaryd.SummaryWriter``
(torch's API) and takes tensorboardX's signatures, so that tensorboardX
scripts run unchanged once ``tensorboardX.SummaryWriter`` is this class
(``summaryd.patch()`` does that).  Where tensorboardX's meaning equals
torch's the method delegates to the parent; where it differs it adapts:

* tags of ``add_scalar``/``add_histogram``/``add_image(s)``/``add_video`` are
  cleaned as tensorboardX's ``summary._clean_tag`` does (``[^-/\\w.]`` -> ``_``,
  leading ``/`` dropped); torch keeps them as given;
* ``add_scalars`` writes its sub-runs as ``logdir/<main_tag>/<key>`` (torch:
  ``logdir/<main_tag>_<key>``) and remembers every point in ``scalar_dict``
  for ``export_scalars_to_json``;
* what summaryd's encoders (torch's events) do not produce is built by
  ``convert_tbx.py`` with summaryd's own protobuf schema (``summaryd.proto``)
  and shipped as raw events through ``_get_file_writer()``: ``add_scalar``'s
  ``display_name`` and ``summary_description``, tensorboardX's ``add_hparams``
  (its own typing rules, ``name=`` sub-run), ``add_mesh`` (tags
  ``<tag>_1/2/3``), ``add_graph`` (run metadata tagged ``profiler``) and
  stereo ``add_audio``;
* ``use_metadata(global_step=, walltime=)`` supplies defaults to the ``add_*``
  calls that tensorboardX routes through its main file writer;
* ``write_to_disk=False`` validates every call and writes nothing (no
  directory, no daemon); an enabled ``comet_config`` raises
  ``UnsupportedFeatureError`` (summaryd does not send to Comet).

Not imported by ``import summaryd`` (it stays light); the media methods
import numpy and the protobuf modules on first use.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from collections.abc import Iterator, Mapping
from typing import Any

from . import client as _client_mod
from . import convert, wire
from .convert_tbx import (
    clean_tag,
    cleaned_tag,
    graph_events,
    hparams_summaries,
    make_np,
    mesh,
    scalar,
    scalar_summary,
    stereo_audio,
    video_to_ntchw,
)
from .errors import (
    ArgumentShapeError,
    ArgumentTypeError,
    ArgumentValueError,
    UnsupportedFeatureError,
)
from .file_writer import FileWriter as _TorchFileWriter
from .writer import SummaryWriter as _TorchWriter
from .writer import _default_log_dir

logger = logging.getLogger(__name__)

_COMET_DISABLED = {"disabled": True}
# Record kinds whose tag tensorboardX passes through _clean_tag (torch does not).
_CLEANED_KINDS = frozenset((wire.HISTOGRAM, wire.IMAGE, wire.IMAGES, wire.VIDEO))


class _NullClient:
    """Where a ``write_to_disk=False`` writer's records go: nowhere (tensorboardX's
    ``DummyFileWriter``); calls are still validated before they get here."""

    def put(self, record: Any) -> None:
        """Drop the record."""

    def put_arrays(self, fields: Any, arrays: Any) -> None:
        """Drop the record."""

    def flush(self, timeout: float | None = None) -> bool:
        """Nothing is pending."""
        return True


_NULL: Any = _NullClient()


class _MetadataDefaults:
    """tensorboardX's ``use_metadata``: default step and wall time for enclosed calls."""

    _default_metadata: dict[str, Any]

    @contextlib.contextmanager
    def use_metadata(self, *, global_step: Any = None, walltime: Any = None) -> Iterator[Any]:
        """Context manager to temporarily set default metadata for the enclosed ``add_*`` calls.

        As tensorboardX: on a ``SummaryWriter`` the defaults apply to the calls
        that write to the main run with a step and wall time (``add_scalar``,
        ``add_histogram``, ``add_image``, ...), not to ``add_scalars`` or
        ``add_hparams``; on a ``FileWriter``, to ``add_event`` and ``add_summary``.

        Args:
            global_step: Global step value to record.
            walltime: Walltime to record (defaults to ``time.time()``).

        Raises:
            ArgumentValueError: neither is given, or metadata is already set.
        """
        if self._default_metadata:
            raise ArgumentValueError("use_metadata: default metadata is already set")
        if global_step is None and walltime is None:
            raise ArgumentValueError(
                "use_metadata: at least one of `global_step` or `walltime` must be provided"
            )
        self._default_metadata = {"global_step": global_step, "walltime": walltime}
        try:
            yield self
        finally:
            self._default_metadata = {}

    def _meta(self, global_step: Any, walltime: Any) -> tuple[Any, Any]:
        """(step, walltime) with use_metadata's defaults for the ones not given."""
        d = self._default_metadata
        if not d:
            return global_step, walltime
        step = d["global_step"] if global_step is None else global_step
        # tensorboardX leaves wall_time 0 when only a step was set; "now" is what it means.
        return step, d["walltime"] if walltime is None else walltime


class SummaryWriter(_MetadataDefaults, _TorchWriter):
    """Writes entries to event files in ``logdir``: tensorboardX's ``SummaryWriter``.

    Same calls as ``tensorboardX.SummaryWriter`` (2.6.5), the same events as
    TensorBoard reads them; the writing is summaryd's (shared memory, the
    daemon, an event visible within about a second, nothing lost when the
    trainer dies).

    Args:
        logdir: Save directory location. Default is
            ``runs/CURRENT_DATETIME_HOSTNAME``, which changes after each run.
        comment: Comment logdir suffix appended to the default ``logdir``.
            If ``logdir`` is assigned, this argument has no effect.
        purge_step: When logging crashes at step ``T+X`` and restarts at step
            ``T``, any events whose global_step larger or equal to ``T`` will
            be purged and hidden from TensorBoard.
        max_queue: Size of the queue for pending events and summaries before
            one of the 'add' calls forces a flush to disk.
        flush_secs: How often, in seconds, to flush the pending events to disk
            at most (summaryd writes within about a second anyway).
        filename_suffix: Suffix added to all event filenames in the logdir.
        write_to_disk: If ``False``, the writer validates every call and
            writes nothing, not even the directory.
        log_dir: Alias of ``logdir`` (used when ``logdir`` is not given).
        comet_config: tensorboardX's Comet settings; only ``{"disabled": True}``
            (the default) is accepted: summaryd does not send to Comet.
        **kwargs: Passed on by tensorboardX to its file writer, which takes
            none: any raises ``TypeError`` unless ``write_to_disk`` is False.

    Raises:
        UnsupportedFeatureError: ``comet_config`` enables Comet.
        ArgumentTypeError: an unknown keyword argument (as tensorboardX's file writer).
    """

    def __init__(
        self,
        logdir: str | os.PathLike[str] | None = None,
        comment: str = "",
        purge_step: int | None = None,
        max_queue: int = 10,
        flush_secs: int = 120,
        filename_suffix: str = "",
        write_to_disk: bool = True,
        log_dir: str | os.PathLike[str] | None = None,
        comet_config: Mapping[str, Any] | None = _COMET_DISABLED,
        **kwargs: Any,
    ) -> None:
        """Create the writer (see the class docstring for the arguments)."""
        if comet_config is not None and not (
            isinstance(comet_config, Mapping) and comet_config.get("disabled") is True
        ):
            raise UnsupportedFeatureError(
                f"comet_config={comet_config!r}: summaryd does not send to Comet; "
                "pass comet_config={'disabled': True} (the default) and log to Comet "
                "with comet_ml directly"
            )
        if kwargs and write_to_disk:  # tensorboardX hands them to FileWriter(), which refuses
            raise ArgumentTypeError(
                f"SummaryWriter() got unexpected keyword arguments {sorted(kwargs)}"
            )
        if log_dir is not None and logdir is None:
            logdir = log_dir
        if not logdir:
            logdir = _default_log_dir(str(comment))
        self._write_to_disk = bool(write_to_disk)
        self.logdir = logdir
        self._max_queue = max_queue
        self._flush_secs = flush_secs
        self._filename_suffix = filename_suffix
        self._comet_config = comet_config
        self._comet_logger = None
        self.kwargs = kwargs
        # {sub-run path: [[walltime, step, value], ...]} of add_scalars, as tensorboardX.
        self.scalar_dict: dict[str, list[list[Any]]] = {}
        self._default_metadata: dict[str, Any] = {}
        super().__init__(logdir, comment, purge_step, max_queue, flush_secs, filename_suffix)

    # -- write_to_disk=False: runs that go nowhere ------------------------------

    def _open_run(self, c: _client_mod.Client, path: str, purge_step: int | None) -> int:
        if self._write_to_disk:
            return super()._open_run(c, path, purge_step)
        self._wids[path] = 0
        if self.all_writers is None:
            self.all_writers = {}
        self.all_writers.setdefault(path, _TorchFileWriter._bound(self, path))
        return 0

    def _open_main(self) -> _client_mod.Client:
        if self._write_to_disk:
            return super()._open_main()
        # No daemon, no directory; _current() calls this again each time (the
        # null client is never the process's), which costs a dict lookup.
        self._client = _NULL
        self._put = _NULL.put
        self._wid = self._open_run(_NULL, self._log_dir_str, None)
        self.file_writer = (self.all_writers or {})[self._log_dir_str]
        return _NULL  # type: ignore[no-any-return]

    # -- use_metadata -------------------------------------------------------------

    def _put_arrays(
        self,
        kind: int,
        tag: Any,
        global_step: Any,
        walltime: Any,
        payload: tuple[dict[str, Any], list[Any]],
        wid: int | None = None,
    ) -> None:
        # Every media record and raw event passes here: tensorboardX cleans these
        # kinds' tags, and applies use_metadata to what goes to the main run.
        if kind in _CLEANED_KINDS:
            tag = cleaned_tag(tag)
        if wid is None or wid == self._wid:
            global_step, walltime = self._meta(global_step, walltime)
        super()._put_arrays(kind, tag, global_step, walltime, payload, wid)

    # -- scalars --------------------------------------------------------------------

    def add_scalar(  # type: ignore[override]
        self,
        tag: str,
        scalar_value: Any,
        global_step: int | None = None,
        walltime: float | None = None,
        display_name: str | None = "",
        summary_description: str | None = "",
    ) -> None:
        """As tensorboardX's: the tag cleaned (``[^-/\\w.]`` -> ``_``); ``display_name``
        (the plot's title, ``tag`` if empty) and ``summary_description`` (behind the
        information icon) go in the value's metadata, sent as a raw summary."""
        step, walltime = self._meta(global_step, walltime)
        if not display_name and not summary_description:
            super().add_scalar(cleaned_tag(tag), scalar_value, step, walltime)
            return
        summary = scalar_summary(tag, scalar_value, display_name, summary_description)
        self._get_file_writer().add_summary(summary, step, walltime)

    def add_scalars(
        self,
        main_tag: str,
        tag_scalar_dict: dict[str, Any],
        global_step: int | None = None,
        walltime: float | None = None,
    ) -> None:
        """As tensorboardX's: each key in the run ``logdir/<main_tag>/<key>`` (torch:
        ``<main_tag>_<key>``), every point also kept in ``scalar_dict`` for
        ``export_scalars_to_json`` (in memory, as tensorboardX: a long run grows it)."""
        wt = time.time() if walltime is None else convert.to_walltime(walltime)
        step = convert.to_step(global_step)
        main = convert.to_main_tag(main_tag)
        if not isinstance(tag_scalar_dict, Mapping):
            raise ArgumentTypeError(
                f"tag_scalar_dict: expected a dict, got {type(tag_scalar_dict).__name__}"
            )
        # Everything is checked before anything is written: a bad value logs nothing.
        points = []
        for key, v in tag_scalar_dict.items():
            key = convert.to_str(key, "tag_scalar_dict key")
            path = os.path.join(self._log_dir_str, main, key)
            convert.check_subrun(self._log_dir_str, path, f"tag_scalar_dict key {key!r}")
            points.append((path, scalar(v, f"tag_scalar_dict[{key!r}]")))
        tag = clean_tag(main)
        c = self._current()
        for path, value in points:
            wid = self._wids.get(path)
            if wid is None:
                wid = self._open_run(c, path, None)
            c.put((wire.SCALAR, wid, tag, value, step, wt))
            self.scalar_dict.setdefault(path, []).append([wt, global_step, value])

    def export_scalars_to_json(self, path: str) -> None:
        """Write ``scalar_dict`` (``{run path: [[walltime, step, value], ...]}``) as JSON
        to the file ``path``, then clear it."""
        with open(path, "w") as f:
            json.dump(self.scalar_dict, f)
        self.scalar_dict = {}

    def add_hparams(  # type: ignore[override]
        self,
        hparam_dict: dict[str, Any],
        metric_dict: dict[str, Any],
        name: str | None = None,
        global_step: int | None = None,
    ) -> None:
        """As tensorboardX's: into the sub-run ``logdir/<name>`` (default: the current
        time), a value of None is left out, str/bool/int/float are typed as such, a
        callable logs its ``__name__``, anything else is listed with an unset type;
        each metric is logged there as a scalar at ``global_step``."""
        if type(hparam_dict) is not dict or type(metric_dict) is not dict:
            raise ArgumentTypeError("hparam_dict and metric_dict should be dictionary.")
        summaries = hparams_summaries(hparam_dict, metric_dict)
        metrics = [(cleaned_tag(k, "metric_dict key"), v) for k, v in metric_dict.items()]
        values = [(k, scalar(v, f"metric_dict[{k!r}]")) for k, v in metrics]
        step = convert.to_step(global_step)
        path = os.path.join(self._log_dir_str, convert.to_str(name or str(time.time()), "name"))
        convert.check_subrun(self._log_dir_str, path, "name")
        if not self._write_to_disk:
            return
        c = self._current()
        # tensorboardX opens (and closes) a SummaryWriter of its own on the sub-run.
        wid = self._open_run(c, path, None)
        fw = (self.all_writers or {})[path]
        for s in summaries:
            fw.add_summary(s)
        for key, value in values:
            c.put((wire.SCALAR, wid, key, value, step, time.time()))
        c.put((wire.CLOSE, wid))
        del self._wids[path]
        (self.all_writers or {}).pop(path, None)

    # -- media: tensorboardX's tags, arguments and defaults ----------------------

    def add_images(
        self,
        tag: str,
        img_tensor: Any,
        global_step: int | None = None,
        walltime: float | None = None,
        dataformats: str = "NCHW",
    ) -> None:
        """As tensorboardX's: ``img_tensor`` may be a list of images, stacked first
        (``dataformats`` then CHW or HWC, the images' own)."""
        if isinstance(img_tensor, list):
            fmt = convert.to_str(dataformats, "dataformats").upper()
            if fmt not in ("CHW", "HWC"):  # tensorboardX prints this and writes nothing
                print("A list of image is passed, but the dataformat is neither CHW nor HWC.")
                print("Nothing is written.")
                return
            import numpy as np

            arrays = [make_np(x, f"img_tensor[{i}]") for i, x in enumerate(img_tensor)]
            try:
                img_tensor = np.stack(arrays, 0)
            except ValueError as exc:
                convert.reraise(exc, "img_tensor", "images of one shape")
            dataformats = "N" + fmt
        super().add_images(tag, img_tensor, global_step, walltime, dataformats)

    def add_image_with_boxes(  # type: ignore[override]
        self,
        tag: str,
        img_tensor: Any,
        box_tensor: Any,
        global_step: int | None = None,
        walltime: float | None = None,
        dataformats: str | None = "CHW",
        labels: Any = None,
        **kwargs: Any,
    ) -> None:
        """As tensorboardX's: ``labels`` may be a str (one box), and a count other than
        the boxes' is dropped with a warning; ``**kwargs`` takes only ``rescale``."""
        unknown = set(kwargs) - {"rescale"}
        if unknown:
            raise ArgumentTypeError(f"add_image_with_boxes: unexpected arguments {sorted(unknown)}")
        if labels is not None:
            if isinstance(labels, str):
                labels = [labels]
            n = len(make_np(box_tensor, "box_tensor"))
            if len(labels) != n:
                logger.warning("Number of labels do not equal to number of box, skip the labels.")
                labels = None
        super().add_image_with_boxes(
            tag,
            img_tensor,
            box_tensor,
            global_step,
            walltime,
            rescale=kwargs.get("rescale", 1),
            dataformats=dataformats or "CHW",
            labels=labels,
        )

    def add_video(
        self,
        tag: str,
        vid_tensor: Any,
        global_step: int | None = None,
        fps: Any = 4,
        walltime: float | None = None,
        dataformats: str | None = "NTCHW",
    ) -> None:
        """As tensorboardX's: ``dataformats`` orders the five dimensions (a permutation
        of NTCHW)."""
        vid_tensor = video_to_ntchw(vid_tensor, dataformats)
        super().add_video(tag, vid_tensor, global_step, fps, walltime)

    def add_audio(
        self,
        tag: str,
        snd_tensor: Any,
        global_step: int | None = None,
        sample_rate: Any = 44100,
        walltime: float | None = None,
    ) -> None:
        """As tensorboardX's: ``snd_tensor`` is (L,) or (L, C) with C 1 or 2 (stereo)."""
        arr = make_np(snd_tensor, "snd_tensor")
        if arr.ndim == 2 and arr.shape[1] == 2:
            # summaryd's WAV encoder is mono (torch's); two channels are encoded here.
            summary = stereo_audio(convert.to_tag(tag), arr, sample_rate)
            self._get_file_writer().add_summary(summary, global_step, walltime)
            return
        if arr.ndim > 2 or (arr.ndim == 2 and arr.shape[1] != 1):
            raise ArgumentShapeError(
                f"snd_tensor: expected shape (L,) or (L, C) with C 1 or 2, got {arr.shape}"
            )
        super().add_audio(tag, arr.reshape(-1), global_step, sample_rate, walltime)

    def add_text(
        self,
        tag: str,
        text_string: str,
        global_step: int | None = None,
        walltime: float | None = None,
    ) -> None:
        """As ``summaryd.SummaryWriter.add_text``, with ``use_metadata``'s defaults."""
        step, walltime = self._meta(global_step, walltime)
        super().add_text(tag, text_string, step, walltime)

    def add_mesh(
        self,
        tag: str,
        vertices: Any,
        colors: Any = None,
        faces: Any = None,
        config_dict: Any = None,
        global_step: int | None = None,
        walltime: float | None = None,
    ) -> None:
        """As tensorboardX's: tags ``<tag>_1/2/3`` (vertices, faces, colors; torch's differ)."""
        summary = mesh(convert.to_tag(tag), vertices, colors, faces, config_dict)
        self._get_file_writer().add_summary(summary, global_step, walltime)

    def add_embedding(
        self,
        mat: Any,
        metadata: Any = None,
        label_img: Any = None,
        global_step: int | None = None,
        tag: str = "default",
        metadata_header: Any = None,
    ) -> None:
        """As ``summaryd.SummaryWriter.add_embedding``; ``label_img``'s images must be
        square, as tensorboardX's."""
        if label_img is not None:
            shape = make_np(label_img, "label_img").shape
            if len(shape) == 4 and shape[2] != shape[3]:
                raise ArgumentShapeError(
                    f"label_img: Image should be square, see tensorflow/tensorboard#670 "
                    f"(shape {shape})"
                )
        super().add_embedding(mat, metadata, label_img, global_step, tag, metadata_header)

    # -- graphs -----------------------------------------------------------------

    def add_graph(
        self,
        model: Any,
        input_to_model: Any = None,
        verbose: bool = False,
        use_strict_trace: bool = True,
    ) -> None:
        """As tensorboardX's: traced by torch's code, the run metadata tagged ``profiler``."""
        graph_event, run_metadata_event = graph_events(
            model, input_to_model, verbose, use_strict_trace
        )
        step, walltime = self._meta(None, None)
        fw = self._get_file_writer()
        fw.add_event(graph_event, step, walltime)
        fw.add_event(run_metadata_event, step, walltime)

    def add_onnx_graph(self, onnx_model_file: Any) -> None:
        """Add the onnx graph at path ``onnx_model_file`` (read with the ``onnx`` package)."""
        super().add_onnx_graph(onnx_model_file)

    def add_openvino_graph(self, xmlname: Any) -> None:
        """Add the openvino graph at path ``xmlname`` (the xml file), read by tensorboardX's
        own XML parser: without tensorboardX installed, raises ``UnsupportedFeatureError``."""
        try:
            from tensorboardX.openvino_graph import load_openvino_graph
        except ImportError as exc:
            raise UnsupportedFeatureError(
                "add_openvino_graph: needs tensorboardX's OpenVINO XML parser "
                f"(pip install tensorboardX); summaryd has none of its own ({exc})"
            ) from None
        path = convert.to_str(os.fspath(xmlname), "xmlname")
        self._get_file_writer().add_onnx_graph(load_openvino_graph(path))


class FileWriter(_MetadataDefaults, _TorchFileWriter):
    """tensorboardX's ``FileWriter``: summaryd's (torch's) with tensorboardX's argument names.

    Args:
        logdir: Directory where the event file is written.
        max_queue: Size of the queue for pending events.
        flush_secs: How often, in seconds, pending events are written at most.
        filename_suffix: Suffix added to the event file's name.
        purge_step: summaryd only: resume from this step (the daemon purges), as
            the patched ``SummaryWriter._get_file_writer`` passes its ``purge_step``.
    """

    def __init__(
        self,
        logdir: str | os.PathLike[str],
        max_queue: int = 10,
        flush_secs: int = 120,
        filename_suffix: str = "",
        *,
        purge_step: int | None = None,
    ) -> None:
        """Create the writer and its event file (see the class docstring)."""
        super().__init__(logdir, max_queue, flush_secs, filename_suffix, purge_step=purge_step)
        self._default_metadata = {}

    def add_event(self, event: Any, step: int | None = None, walltime: float | None = None) -> None:
        """As tensorboardX's: ``use_metadata``'s defaults for ``step`` and ``walltime``."""
        step, walltime = self._meta(step, walltime)
        super().add_event(event, step, walltime)

    def add_summary(
        self, summary: Any, global_step: int | None = None, walltime: float | None = None
    ) -> None:
        """As tensorboardX's: ``use_metadata``'s defaults for ``global_step`` and ``walltime``."""
        global_step, walltime = self._meta(global_step, walltime)
        super().add_summary(summary, global_step, walltime)

    def add_openvino_graph(self, graph: Any, walltime: float | None = None) -> None:
        """Add a ``GraphDef`` protocol buffer (from an OpenVINO model) to the event file."""
        self.add_onnx_graph(graph, walltime)
