"""``SummaryWriter``: torch's API, backed by the process's ring and the daemon.

Each method has the signature and meaning of
``torch.utils.tensorboard.SummaryWriter``'s (torch 2.13).  Its body validates
and converts the arguments (``convert.py``), takes the wall time, and commits
one record to the ring; the daemon builds the protobuf event and writes it.
"""

from __future__ import annotations

import os
import time
from typing import Any

from . import client as _client_mod
from . import convert, wire
from .client import ClientStatistics
from .errors import ArgumentAttributeError, ArgumentTypeError

_SCALAR = wire.SCALAR
_CLOSED = object()
_INT64_MIN = convert.INT64_MIN
_INT64_MAX = convert.INT64_MAX


def _default_log_dir(comment: str) -> str:
    import socket
    from datetime import datetime

    current_time = datetime.now().strftime("%b%d_%H-%M-%S")
    return os.path.join("runs", current_time + "_" + socket.gethostname() + comment)


class SummaryWriter:
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
        self._queue = convert.to_queue_size(max_queue)
        self._flush = convert.to_flush_secs(flush_secs)
        self._suffix = convert.to_suffix(filename_suffix)
        # The client this writer's runs are open in; _CLOSED after close(), so
        # the identity check on every call also catches "closed" and "forked".
        self._client: Any = _CLOSED
        self._put: Any = None
        self._wid = 0
        # torch's all_writers: the main run plus one per add_scalars sub-run, by path.
        self._wids: dict[str, int] = {}
        self._open_main()
        _client_mod.register_exit_flush(self)

    # -- runs -----------------------------------------------------------------

    def _open_run(self, c: _client_mod.Client, path: str, purge_step: int | None) -> int:
        # torch creates the directory at once; scripts write their own files
        # into get_logdir() right after making the writer.
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
        return wid

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
        return c

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
        for tag, _ in values:
            convert.check_subrun(self._log_dir_str, base + tag, f"tag_scalar_dict key {tag!r}")
        for tag, value in values:
            path = base + tag
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

    # -- array records --------------------------------------------------------

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

    def add_histogram(
        self,
        tag: str,
        values: Any,
        global_step: int | None = None,
        bins: Any = "tensorflow",
        walltime: float | None = None,
        max_bins: int | None = None,
    ) -> None:
        """Add histogram to summary.

        Args:
            tag: Data identifier.
            values: Values to build histogram (array or tensor).
            global_step: Global step value to record.
            bins: One of {'tensorflow', 'auto', 'fd', ...} or an array of bin edges;
                as ``numpy.histogram``'s ``bins`` ('tensorflow': TensorBoard's default buckets).
            walltime: Optional override of the default walltime (``time.time()``).
            max_bins: At most this many buckets (neighbours merged), as torch.
        """
        from . import convert_numeric

        payload = convert_numeric.histogram(values, bins, max_bins)
        self._put_arrays(wire.HISTOGRAM, tag, global_step, walltime, payload)

    def add_histogram_raw(
        self,
        tag: str,
        min: Any,
        max: Any,
        num: Any,
        sum: Any,
        sum_squares: Any,
        bucket_limits: Any,
        bucket_counts: Any,
        global_step: int | None = None,
        walltime: float | None = None,
    ) -> None:
        """Add histogram with raw data.

        Args:
            tag: Data identifier.
            min: Min value.
            max: Max value.
            num: Number of values.
            sum: Sum of all values.
            sum_squares: Sum of squares for all values.
            bucket_limits: Upper value per bucket.  The number of elements of
                it should be the same as ``bucket_counts``.
            bucket_counts: Number of values per bucket.
            global_step: Global step value to record.
            walltime: Optional override of the default walltime (``time.time()``).
        """
        from . import convert_numeric

        payload = convert_numeric.histogram_raw(
            min, max, num, sum, sum_squares, bucket_limits, bucket_counts
        )
        self._put_arrays(wire.HISTOGRAM_RAW, tag, global_step, walltime, payload)

    def add_image(
        self,
        tag: str,
        img_tensor: Any,
        global_step: int | None = None,
        walltime: float | None = None,
        dataformats: str = "CHW",
    ) -> None:
        """Add image data to summary.

        Args:
            tag: Data identifier.
            img_tensor: Image data (uint8 in [0, 255], or float in [0, 1]).
            global_step: Global step value to record.
            walltime: Optional override of the default walltime (``time.time()``).
            dataformats: Image data format specification of the form CHW, HWC, HW, WH, etc.
        """
        from . import convert_image

        payload = convert_image.image(img_tensor, dataformats)
        self._put_arrays(wire.IMAGE, tag, global_step, walltime, payload)

    def add_images(
        self,
        tag: str,
        img_tensor: Any,
        global_step: int | None = None,
        walltime: float | None = None,
        dataformats: str = "NCHW",
    ) -> None:
        """Add batched image data to summary (shown as one grid image).

        Args:
            tag: Data identifier.
            img_tensor: Image data.
            global_step: Global step value to record.
            walltime: Optional override of the default walltime (``time.time()``).
            dataformats: Image data format specification: NCHW, NHWC, CHW, HWC, HW, WH, etc.
        """
        from . import convert_image

        payload = convert_image.images(img_tensor, dataformats)
        self._put_arrays(wire.IMAGES, tag, global_step, walltime, payload)

    def add_image_with_boxes(
        self,
        tag: str,
        img_tensor: Any,
        box_tensor: Any,
        global_step: int | None = None,
        walltime: float | None = None,
        rescale: Any = 1,
        dataformats: str = "CHW",
        labels: Any = None,
    ) -> None:
        """Add image and draw bounding boxes on the image.

        Args:
            tag: Data identifier.
            img_tensor: Image data.
            box_tensor: Box data (for detected objects), box should be represented
                as [x1, y1, x2, y2].
            global_step: Global step value to record.
            walltime: Optional override of the default walltime (``time.time()``).
            rescale: Optional scale override.
            dataformats: Image data format specification of the form NCHW, NHWC, CHW,
                HWC, HW, WH, etc.
            labels: The label to be shown for each bounding box.
        """
        from . import convert_image

        payload = convert_image.image_with_boxes(
            img_tensor, box_tensor, rescale, dataformats, labels
        )
        self._put_arrays(wire.IMAGE_BOXES, tag, global_step, walltime, payload)

    def add_figure(
        self,
        tag: str,
        figure: Any,
        global_step: int | None = None,
        close: bool = True,
        walltime: float | None = None,
    ) -> None:
        """Render matplotlib figure into an image and add it to summary.

        The figure is rendered here (it lives in this process); the daemon
        encodes the pixels.

        Args:
            tag: Data identifier.
            figure: Figure or a list of figures.
            global_step: Global step value to record.
            close: Flag to automatically close the figure.
            walltime: Optional override of the default walltime (``time.time()``).
        """
        from . import convert_image

        pixels = convert_image.figure(figure, close)
        if isinstance(figure, list):
            import numpy as np

            self.add_image(tag, np.stack(pixels), global_step, walltime, dataformats="NCHW")
        else:
            self.add_image(tag, pixels[0], global_step, walltime, dataformats="CHW")

    def add_video(
        self,
        tag: str,
        vid_tensor: Any,
        global_step: int | None = None,
        fps: Any = 4,
        walltime: float | None = None,
    ) -> None:
        """Add video data to summary (an animated GIF; no moviepy needed).

        Args:
            tag: Data identifier.
            vid_tensor: Video data, shape (N, T, C, H, W); uint8 in [0, 255] or float in [0, 1].
            global_step: Global step value to record.
            fps: Frames per second.
            walltime: Optional override of the default walltime (``time.time()``).
        """
        from . import convert_image

        payload = convert_image.video(vid_tensor, fps)
        self._put_arrays(wire.VIDEO, tag, global_step, walltime, payload)

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
            snd_tensor: Sound data, shape (1, L), values in [-1, 1].
            global_step: Global step value to record.
            sample_rate: Sample rate in Hz.
            walltime: Optional override of the default walltime (``time.time()``).
        """
        from . import convert_plugins

        payload = convert_plugins.audio(snd_tensor, sample_rate)
        self._put_arrays(wire.AUDIO, tag, global_step, walltime, payload)

    def add_tensor(
        self,
        tag: str,
        tensor: Any,
        global_step: int | None = None,
        walltime: float | None = None,
    ) -> None:
        """Add tensor data to summary.

        Args:
            tag: Data identifier.
            tensor: Tensor to be saved.
            global_step: Global step value to record.
            walltime: Optional override of the default walltime (``time.time()``).
        """
        from . import convert_numeric

        payload = convert_numeric.tensor(tensor)
        self._put_arrays(wire.TENSOR, tag, global_step, walltime, payload)

    def add_pr_curve(
        self,
        tag: str,
        labels: Any,
        predictions: Any,
        global_step: int | None = None,
        num_thresholds: int = 127,
        weights: Any = None,
        walltime: float | None = None,
    ) -> None:
        """Add precision recall curve (computed by the daemon, as torch computes it).

        Args:
            tag: Data identifier.
            labels: Ground truth data. Binary label for each element.
            predictions: The probability that an element be classified as true.
                Value should be in [0, 1].
            global_step: Global step value to record.
            num_thresholds: Number of thresholds used to draw the curve.
            weights: Optional weights of the elements.
            walltime: Optional override of the default walltime (``time.time()``).
        """
        from . import convert_numeric

        payload = convert_numeric.pr_curve(labels, predictions, num_thresholds, weights)
        self._put_arrays(wire.PR_CURVE, tag, global_step, walltime, payload)

    def add_pr_curve_raw(
        self,
        tag: str,
        true_positive_counts: Any,
        false_positive_counts: Any,
        true_negative_counts: Any,
        false_negative_counts: Any,
        precision: Any,
        recall: Any,
        global_step: int | None = None,
        num_thresholds: int = 127,
        weights: Any = None,
        walltime: float | None = None,
    ) -> None:
        """Add precision recall curve with raw data.

        Args:
            tag: Data identifier.
            true_positive_counts: true positive counts.
            false_positive_counts: false positive counts.
            true_negative_counts: true negative counts.
            false_negative_counts: false negative counts.
            precision: precision.
            recall: recall.
            global_step: Global step value to record.
            num_thresholds: Number of thresholds used to draw the curve.
            weights: Unused, as in torch.
            walltime: Optional override of the default walltime (``time.time()``).
        """
        from . import convert_numeric

        payload = convert_numeric.pr_curve_raw(
            true_positive_counts,
            false_positive_counts,
            true_negative_counts,
            false_negative_counts,
            precision,
            recall,
            num_thresholds,
            weights,
        )
        self._put_arrays(wire.PR_CURVE_RAW, tag, global_step, walltime, payload)

    def add_custom_scalars(self, layout: Any) -> None:
        """Create special chart by collecting charts tags in 'scalars'.

        Args:
            layout: ``{categoryName: {chartName: ['Multiline'|'Margin', listOfTags]}}``;
                for 'Margin' the list holds three tags (value, lower, upper).
        """
        from . import convert_plugins

        payload = convert_plugins.custom_scalars(layout)
        self._put_arrays(wire.CUSTOM_SCALARS, "", None, None, payload)

    def add_custom_scalars_multilinechart(
        self, tags: Any, category: str = "default", title: str = "untitled"
    ) -> None:
        """Shorthand for creating multilinechart. Similar to ``add_custom_scalars()``.

        Args:
            tags: List of tags that have been used in ``add_scalar()``.
            category: The chart's category.
            title: The chart's title.
        """
        from . import convert_plugins

        self.add_custom_scalars(convert_plugins.multiline_layout(tags, category, title))

    def add_custom_scalars_marginchart(
        self, tags: Any, category: str = "default", title: str = "untitled"
    ) -> None:
        """Shorthand for creating marginchart (exactly three tags: value, lower, upper).

        Args:
            tags: List of tags that have been used in ``add_scalar()``.
            category: The chart's category.
            title: The chart's title.
        """
        from . import convert_plugins

        self.add_custom_scalars(convert_plugins.margin_layout(tags, category, title))

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
        """Add meshes or 3D point clouds to TensorBoard.

        Args:
            tag: Data identifier.
            vertices: List of the 3D coordinates of vertices, shape (B, N, 3).
            colors: Colors for each vertex, shape (B, N, 3), uint8 in [0, 255].
            faces: Indices of vertices within each triangle, shape (B, N, 3).
            config_dict: Dictionary with ThreeJS classes names and configuration.
            global_step: Global step value to record.
            walltime: Optional override of the default walltime (``time.time()``).
        """
        from . import convert_plugins

        payload = convert_plugins.mesh(vertices, colors, faces, config_dict, tag=tag)
        self._put_arrays(wire.MESH, tag, global_step, walltime, payload)

    def add_hparams(
        self,
        hparam_dict: Any,
        metric_dict: Any,
        hparam_domain_discrete: Any = None,
        run_name: Any = None,
        global_step: int | None = None,
    ) -> None:
        """Add a set of hyperparameters to be compared in TensorBoard.

        As torch, into the sub-run ``log_dir/<run_name>`` (default: the current
        time), with each metric logged there as a scalar.

        Args:
            hparam_dict: Each key-value pair is the name of the hyper parameter
                and its value (bool, str, int, float, or a one-element tensor).
            metric_dict: Each key-value pair is the name of the metric and its value.
            hparam_domain_discrete: A dictionary that contains names of the
                hyperparameters and all discrete values they can hold.
            run_name: Name of the run, to be included as part of the logdir.
                If unspecified, will use current timestamp.
            global_step: Global step value to record.
        """
        from . import convert_plugins

        params, metrics = convert_plugins.hparams(hparam_dict, metric_dict, hparam_domain_discrete)
        step = convert.to_step(global_step)
        if not run_name:
            run_name = str(time.time())
        path = os.path.join(self._log_dir_str, convert.to_str(run_name, "run_name"))
        convert.check_subrun(self._log_dir_str, path, "run_name")
        c = self._current()
        # torch opens (and closes) a SummaryWriter of its own on the sub-run.
        wid = self._open_run(c, path, None)
        del self._wids[path]
        self._put_arrays(wire.HPARAMS, "", step, None, (params, []), wid=wid)
        for key, value in metrics:
            c.put((wire.SCALAR, wid, key, value, step, time.time()))
        c.put((wire.CLOSE, wid))

    def add_graph(
        self,
        model: Any,
        input_to_model: Any = None,
        verbose: bool = False,
        use_strict_trace: bool = True,
    ) -> None:
        """Add graph data to summary (traced here with torch.jit, as torch does).

        Args:
            model: Model to draw.
            input_to_model: A variable or a tuple of variables to be fed.
            verbose: Whether to print graph structure in console.
            use_strict_trace: Whether to pass keyword argument ``strict`` to
                ``torch.jit.trace``.
        """
        from . import convert_graph

        payload = convert_graph.graph(model, input_to_model, verbose, use_strict_trace)
        self._put_arrays(wire.GRAPH, "", None, None, payload)

    def add_onnx_graph(self, prototxt: Any) -> None:
        """Add an ONNX graph (read here with the ``onnx`` package, as torch does).

        Args:
            prototxt: Path of the ONNX model file.
        """
        from . import convert_graph

        payload = convert_graph.onnx_graph(prototxt)
        self._put_arrays(wire.ONNX_GRAPH, "", None, None, payload)

    def add_embedding(
        self,
        mat: Any,
        metadata: Any = None,
        label_img: Any = None,
        global_step: int | None = None,
        tag: str = "default",
        metadata_header: Any = None,
    ) -> None:
        """Add embedding projector data to summary.

        The daemon writes the projector files under ``log_dir/<global_step>/<tag>``
        and merges the embedding into ``log_dir/projector_config.pbtxt``.

        Args:
            mat: A matrix which each row is the feature vector of the data point.
            metadata: A list of labels, each element will be converted to string.
            label_img: Images correspond to each data point (N, C, H, W).
            global_step: Global step value to record.
            tag: Name for the embedding.
            metadata_header: Metadata header, for multi-column metadata.
        """
        from . import convert_embedding

        params, arrays = convert_embedding.embedding(mat, metadata, label_img, metadata_header)
        subdir = convert_embedding.subdir(0 if global_step is None else global_step, tag)
        convert.check_subrun(
            self._log_dir_str, os.path.join(self._log_dir_str, subdir), "global_step/tag"
        )
        params["subdir"] = subdir
        self._put_arrays(wire.EMBEDDING, "", None, None, (params, arrays))  # all in subdir

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
