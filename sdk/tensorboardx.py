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
* what summaryd's encoders (torch's events) do not produce is built here with
  summaryd's own protobuf schema (``summaryd.proto``) and shipped as raw
  events through ``_get_file_writer()``: ``add_scalar``'s ``display_name`` and
  ``summary_description``, tensorboardX's ``add_hparams`` (its own typing rules,
  ``name=`` sub-run), ``add_mesh`` (tags ``<tag>_1/2/3``), ``add_graph`` (run
  metadata tagged ``profiler``) and stereo ``add_audio``;
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
import re
import time
from collections.abc import Iterator, Mapping
from typing import Any

from . import client as _client_mod
from . import convert, wire
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

# tensorboardX's summary._INVALID_TAG_CHARACTERS.
_INVALID_TAG_CHARACTERS = re.compile(r"[^-/\w\.]")
_COMET_DISABLED = {"disabled": True}
# Record kinds whose tag tensorboardX passes through _clean_tag (torch does not).
_CLEANED_KINDS = frozenset((wire.HISTOGRAM, wire.IMAGE, wire.IMAGES, wire.VIDEO))


def clean_tag(name: str) -> str:
    """tensorboardX's ``_clean_tag``: illegal characters to ``_``, leading slashes dropped."""
    new_name = _INVALID_TAG_CHARACTERS.sub("_", name).lstrip("/")
    if new_name != name:
        logger.info("Summary name %s is illegal; using %s instead.", name, new_name)
    return new_name


def _tag(tag: Any) -> str:
    return clean_tag(convert.to_tag(tag))


def _np(x: Any, name: str) -> Any:
    """tensorboardX's ``make_np`` (numbers wrapped, tensors to numpy)."""
    return convert._make_np(x, name)


def _scalar(value: Any, name: str) -> float:
    """tensorboardX's ``scalar()`` conversion: one element after squeeze, as a float."""
    arr = _np(value, name).squeeze()
    if arr.ndim != 0:
        raise ArgumentShapeError(f"{name}: scalar should be 0D, got shape {arr.shape}")
    try:
        return float(arr)
    except (TypeError, ValueError) as exc:
        convert.reraise(exc, name, "a real number")


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


class SummaryWriter(_TorchWriter):
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

    @contextlib.contextmanager
    def use_metadata(self, *, global_step: Any = None, walltime: Any = None) -> Iterator[Any]:
        """Context manager to temporarily set default metadata for the enclosed ``add_*`` calls.

        As tensorboardX, the defaults apply to the calls that write to the
        main run with a step and wall time (``add_scalar``, ``add_histogram``,
        ``add_image``, ...), not to ``add_scalars`` or ``add_hparams``.

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
            tag = _tag(tag)
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
        """Add scalar data to summary.

        Args:
            tag: Data identifier (characters outside ``[-/\\w.]`` become ``_``).
            scalar_value: Value to be logged in tensorboard.
            global_step: Global step value to record.
            walltime: Optional override default walltime (time.time()) of event.
            display_name: The title of the plot. If empty string is passed,
                ``tag`` will be used.
            summary_description: The comprehensive text that will showed by
                clicking the information icon on TensorBoard.
        """
        step, walltime = self._meta(global_step, walltime)
        if not display_name and not summary_description:
            super().add_scalar(_tag(tag), scalar_value, step, walltime)
            return
        # tensorboardX puts them in the value's SummaryMetadata: no encoder of
        # summaryd's writes that, so the summary is built here and sent raw.
        from .proto import summary_pb2

        name = _tag(tag)
        value = _scalar(scalar_value, "scalar_value")
        md = summary_pb2.SummaryMetadata(
            display_name=convert.to_str(display_name or "", "display_name"),
            summary_description=convert.to_str(summary_description or "", "summary_description"),
        )
        summary = summary_pb2.Summary(
            value=[summary_pb2.Summary.Value(tag=name, simple_value=value, metadata=md)]
        )
        self._get_file_writer().add_summary(summary, step, walltime)

    def add_scalars(
        self,
        main_tag: str,
        tag_scalar_dict: dict[str, Any],
        global_step: int | None = None,
        walltime: float | None = None,
    ) -> None:
        """Add many scalar data to summary, each key in the run ``logdir/<main_tag>/<key>``.

        Every point is also kept in ``scalar_dict`` for ``export_scalars_to_json``
        (in memory, as tensorboardX: a long run grows it).

        Args:
            main_tag: The parent name for the tags.
            tag_scalar_dict: Key-value pair storing the tag and corresponding values.
            global_step: Global step value to record.
            walltime: Optional override default walltime (time.time()) of event.
        """
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
            points.append((path, _scalar(v, f"tag_scalar_dict[{key!r}]")))
        tag = clean_tag(main)
        c = self._current()
        for path, value in points:
            wid = self._wids.get(path)
            if wid is None:
                wid = self._open_run(c, path, None)
            c.put((wire.SCALAR, wid, tag, value, step, wt))
            self.scalar_dict.setdefault(path, []).append([wt, global_step, value])

    def export_scalars_to_json(self, path: str) -> None:
        """Write ``scalar_dict`` (``{run path: [[walltime, step, value], ...]}``) as JSON, then
        clear it.

        Args:
            path: The file to write.
        """
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
        """Add a set of hyperparameters to be compared in tensorboard.

        As tensorboardX: into the sub-run ``logdir/<name>`` (default: the
        current time), a value of None is left out, str/bool/int/float are
        typed as such, a callable logs its ``__name__``, anything else is
        listed with an unset type; each metric is logged there as a scalar.

        Args:
            hparam_dict: Each key-value pair is the name of the hyper parameter
                and its value.
            metric_dict: Each key-value pair is the name of the metric and its value.
            name: Personnalised name of the hparam session.
            global_step: Current time step.
        """
        if type(hparam_dict) is not dict or type(metric_dict) is not dict:
            raise ArgumentTypeError("hparam_dict and metric_dict should be dictionary.")
        summaries = _hparams_summaries(hparam_dict, metric_dict)
        metrics = [
            (clean_tag(convert.to_tag(k, "metric_dict key")), v) for k, v in metric_dict.items()
        ]
        values = [(k, _scalar(v, f"metric_dict[{k!r}]")) for k, v in metrics]
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
        """Add batched image data to summary; a list of CHW or HWC images is stacked first.

        Args:
            tag: Data identifier.
            img_tensor: Image data (N, C, H, W) by default, or a list of images.
            global_step: Global step value to record.
            walltime: Optional override default walltime (time.time()) of event.
            dataformats: NCHW, NHWC, ...; CHW or HWC for a list.
        """
        if isinstance(img_tensor, list):
            fmt = convert.to_str(dataformats, "dataformats").upper()
            if fmt not in ("CHW", "HWC"):  # tensorboardX prints this and writes nothing
                print("A list of image is passed, but the dataformat is neither CHW nor HWC.")
                print("Nothing is written.")
                return
            import numpy as np

            arrays = [_np(x, f"img_tensor[{i}]") for i, x in enumerate(img_tensor)]
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
        """Add image and draw bounding boxes on the image.

        Args:
            tag: Data identifier.
            img_tensor: Image data.
            box_tensor: Box data (N, 4), each ``[x1, y1, x2, y2]``.
            global_step: Global step value to record.
            walltime: Override default walltime (time.time()) of event.
            dataformats: Image data format (CHW, HWC, ...).
            labels: The strings to be shown on each bounding box (a str for one box);
                a count other than the boxes' is dropped with a warning, as tensorboardX.
            **kwargs: ``rescale`` (tensorboardX's ``image_boxes`` argument).
        """
        unknown = set(kwargs) - {"rescale"}
        if unknown:
            raise ArgumentTypeError(f"add_image_with_boxes: unexpected arguments {sorted(unknown)}")
        if labels is not None:
            if isinstance(labels, str):
                labels = [labels]
            n = len(_np(box_tensor, "box_tensor"))
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
        """Add video data to summary (an animated GIF).

        Args:
            tag: Data identifier.
            vid_tensor: Video data, (N, T, C, H, W) unless ``dataformats`` says otherwise;
                uint8 in [0, 255] or float in [0, 1].
            global_step: Global step value to record.
            fps: Frames per second.
            walltime: Optional override default walltime (time.time()) of event.
            dataformats: The order of the five dimensions, a permutation of NTCHW.
        """
        fmt = convert.to_str(dataformats, "dataformats").upper()
        if fmt != "NTCHW":
            v = _np(vid_tensor, "vid_tensor")
            if len(fmt) != 5 or set(fmt) != set("NTCHW") or v.ndim != 5:
                raise ArgumentShapeError(
                    f"dataformats: expected a permutation of NTCHW matching the tensor's "
                    f"5 dimensions, got {dataformats!r} for shape {v.shape}"
                )
            vid_tensor = v.transpose([fmt.find(ch) for ch in "NTCHW"])
        super().add_video(tag, vid_tensor, global_step, fps, walltime)

    def add_audio(
        self,
        tag: str,
        snd_tensor: Any,
        global_step: int | None = None,
        sample_rate: Any = 44100,
        walltime: float | None = None,
    ) -> None:
        """Add audio data to summary.

        Args:
            tag: Data identifier.
            snd_tensor: Sound data (L,) or (L, C) with C 1 or 2 (stereo), values in [-1, 1].
            global_step: Global step value to record.
            sample_rate: Sample rate in Hz.
            walltime: Optional override default walltime (time.time()) of event.
        """
        arr = _np(snd_tensor, "snd_tensor")
        if arr.ndim == 2 and arr.shape[1] == 2:
            # summaryd's WAV encoder is mono (torch's); two channels are encoded here.
            summary = _stereo_audio(convert.to_tag(tag), arr, sample_rate)
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
        """Add text data to summary (see ``summaryd.SummaryWriter.add_text``)."""
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
        """Add meshes or 3D point clouds to TensorBoard (tensorboardX's tags ``<tag>_1/2/3``).

        Args:
            tag: Data identifier.
            vertices: List of the 3D coordinates of vertices, (B, N, 3).
            colors: Colors for each vertex, (B, N, 3), values in [0, 255].
            faces: Indices of vertices within each triangle, (B, N, 3).
            config_dict: Dictionary with ThreeJS classes names and configuration.
            global_step: Global step value to record.
            walltime: Optional override default walltime (time.time()) of event.
        """
        summary = _mesh(convert.to_tag(tag), vertices, colors, faces, config_dict)
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
        """Add embedding projector data (see ``summaryd.SummaryWriter.add_embedding``).

        As tensorboardX, ``label_img``'s images must be square.
        """
        if label_img is not None:
            shape = _np(label_img, "label_img").shape
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
        """Add graph data to summary, traced by torch's ``add_graph`` code as tensorboardX does.

        Args:
            model: Model to draw (``torch.nn.Module``).
            input_to_model: A variable or a tuple of variables to be fed.
            verbose: Whether to print graph structure in console.
            use_strict_trace: Whether to pass keyword argument ``strict`` to ``torch.jit.trace``.
        """
        from torch.utils.tensorboard._pytorch_graph import graph

        from .proto import event_pb2

        graph_def, stepstats = graph(  # type: ignore[no-untyped-call]
            model, input_to_model, verbose, use_strict_trace
        )
        step, walltime = self._meta(None, None)
        fw = self._get_file_writer()
        fw.add_event(event_pb2.Event(graph_def=graph_def.SerializeToString()), step, walltime)
        # tensorboardX tags the run metadata 'profiler' (torch: 'step1').
        trm = event_pb2.TaggedRunMetadata(
            tag="profiler", run_metadata=stepstats.SerializeToString()
        )
        fw.add_event(event_pb2.Event(tagged_run_metadata=trm), step, walltime)

    def add_onnx_graph(self, onnx_model_file: Any) -> None:
        """Add onnx graph to TensorBoard (read with the ``onnx`` package).

        Args:
            onnx_model_file: The path to the onnx model.
        """
        super().add_onnx_graph(onnx_model_file)

    def add_openvino_graph(self, xmlname: Any) -> None:
        """Add openvino graph to TensorBoard, read by tensorboardX's own XML parser.

        Args:
            xmlname: The path to the openvino model (the xml file).

        Raises:
            UnsupportedFeatureError: tensorboardX is not installed (its parser is needed).
        """
        try:
            from tensorboardX.openvino_graph import load_openvino_graph
        except ImportError as exc:
            raise UnsupportedFeatureError(
                "add_openvino_graph: needs tensorboardX's OpenVINO XML parser "
                f"(pip install tensorboardX); summaryd has none of its own ({exc})"
            ) from None
        path = convert.to_str(os.fspath(xmlname), "xmlname")
        self._get_file_writer().add_onnx_graph(load_openvino_graph(path))


class FileWriter(_TorchFileWriter):
    """tensorboardX's ``FileWriter``: summaryd's (torch's) with tensorboardX's argument names.

    Args:
        logdir: Directory where the event file is written.
        max_queue: Size of the queue for pending events.
        flush_secs: How often, in seconds, pending events are written at most.
        filename_suffix: Suffix added to the event file's name.
    """

    def __init__(
        self,
        logdir: str | os.PathLike[str],
        max_queue: int = 10,
        flush_secs: int = 120,
        filename_suffix: str = "",
    ) -> None:
        """Create the writer and its event file (see the class docstring)."""
        super().__init__(logdir, max_queue, flush_secs, filename_suffix)

    def add_openvino_graph(self, graph: Any, walltime: float | None = None) -> None:
        """Add a ``GraphDef`` protocol buffer (from an OpenVINO model) to the event file."""
        self.add_onnx_graph(graph, walltime)


# -- summaries built here (summaryd.proto), pure functions ----------------------------


def _hparams_summaries(hparam_dict: dict[str, Any], metric_dict: dict[str, Any]) -> list[Any]:
    """tensorboardX's ``summary.hparams``: experiment, session start and end, in this order."""
    from .proto import plugin_hparams_pb2 as hp
    from .proto import summary_pb2

    hps = []
    ssi = hp.SessionStartInfo()
    for k, v in hparam_dict.items():
        k = convert.to_str(k, "hparam_dict key")
        if v is None:
            continue
        if isinstance(v, str):
            ssi.hparams[k].string_value = v
            kind = hp.DATA_TYPE_STRING
        elif isinstance(v, bool):
            ssi.hparams[k].bool_value = v
            kind = hp.DATA_TYPE_BOOL
        elif isinstance(v, (int, float)):
            ssi.hparams[k].number_value = float(v)
            kind = hp.DATA_TYPE_FLOAT64
        elif callable(v):
            ssi.hparams[k].string_value = getattr(v, "__name__", str(v))
            kind = hp.DATA_TYPE_STRING
        else:  # tensorboardX lists it, untyped, without a value
            kind = hp.DATA_TYPE_UNSET
        hps.append(hp.HParamInfo(name=k, type=kind))
    mts = [
        hp.MetricInfo(name=hp.MetricName(tag=convert.to_str(k, "metric_dict key")))
        for k in metric_dict
    ]
    sei = hp.SessionEndInfo(status=hp.STATUS_SUCCESS)
    out = []
    for tag, data in (
        (
            "_hparams_/experiment",
            hp.HParamsPluginData(
                experiment=hp.Experiment(hparam_infos=hps, metric_infos=mts), version=0
            ),
        ),
        ("_hparams_/session_start_info", hp.HParamsPluginData(session_start_info=ssi, version=0)),
        ("_hparams_/session_end_info", hp.HParamsPluginData(session_end_info=sei, version=0)),
    ):
        md = summary_pb2.SummaryMetadata(
            plugin_data=summary_pb2.SummaryMetadata.PluginData(
                plugin_name="hparams", content=data.SerializeToString()
            )
        )
        out.append(summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=tag, metadata=md)]))
    return out


def _mesh(tag: str, vertices: Any, colors: Any, faces: Any, config_dict: Any) -> Any:
    """tensorboardX's ``summary.mesh``: one value ``<tag>_<content type>`` per tensor given."""
    from .proto import plugin_mesh_pb2, summary_pb2, tensor_pb2

    try:
        json_config = json.dumps(config_dict, sort_keys=True)
    except (TypeError, ValueError) as exc:
        convert.reraise(exc, "config_dict", "a JSON-serialisable dict")
    values = []
    for name, tensor, content_type in (
        ("vertices", vertices, 1),
        ("faces", faces, 2),
        ("colors", colors, 3),
    ):
        if tensor is None:
            continue
        arr = _np(tensor, name)
        if arr.ndim != 3:
            raise ArgumentShapeError(f"{name}: expected shape (B, N, 3), got {arr.shape}")
        try:
            floats = arr.astype("float32").reshape(-1).tolist()
        except (TypeError, ValueError) as exc:
            convert.reraise(exc, name, "numbers")
        content = plugin_mesh_pb2.MeshPluginData(
            version=0,
            name=tag,
            content_type=content_type,
            json_config=json_config,
            shape=list(arr.shape),
        ).SerializeToString()
        md = summary_pb2.SummaryMetadata(
            plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="mesh", content=content)
        )
        shape = tensor_pb2.TensorShapeProto(
            dim=[tensor_pb2.TensorShapeProto.Dim(size=d) for d in arr.shape]
        )
        t = tensor_pb2.TensorProto(dtype=tensor_pb2.DT_FLOAT, float_val=floats, tensor_shape=shape)
        values.append(summary_pb2.Summary.Value(tag=f"{tag}_{content_type}", tensor=t, metadata=md))
    return summary_pb2.Summary(value=values)


def _stereo_audio(tag: str, arr: Any, sample_rate: Any) -> Any:
    """A two-channel WAV summary (16-bit PCM, torch's sample scaling), built in the trainer."""
    import io
    import wave

    import numpy as np

    from .proto import summary_pb2

    if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, float)):
        raise ArgumentTypeError(f"sample_rate: expected a number, got {type(sample_rate).__name__}")
    arr = arr.astype(np.float64)
    if np.abs(arr).max(initial=0.0) > 1:
        print("warning: audio amplitude out of range, auto clipped.")
        arr = arr.clip(-1, 1)
    pcm = (arr * np.iinfo(np.int16).max).astype("<i2")
    with io.BytesIO() as fio:
        with wave.open(fio, "wb") as wav:
            wav.setnchannels(2)
            wav.setsampwidth(2)
            wav.setframerate(int(sample_rate))
            wav.writeframes(pcm.tobytes())
        data = fio.getvalue()
    audio = summary_pb2.Summary.Audio(
        sample_rate=float(sample_rate),
        num_channels=2,
        length_frames=len(arr),
        encoded_audio_string=data,
        content_type="audio/wav",
    )
    return summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=tag, audio=audio)])
