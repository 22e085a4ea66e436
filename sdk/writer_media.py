"""``SummaryWriter``'s media methods: every ``add_*`` that logs arrays or files.

A mixin of ``SummaryWriter`` (``writer.py``), kept apart so each module holds
one thing: the writer's runs, scalars and life there, the array methods here.
Each has torch 2.13's signature and meaning; its body calls the conversion of
its method group (``convert_numeric``, ``convert_image``, ``convert_plugins``,
``convert_graph``, ``convert_embedding``: checks that raise at the call site,
arrays passed raw) and commits one array record with ``_put_arrays``.  The
conversion modules are imported on first use (numpy, torch, PIL and
matplotlib stay out of ``import summaryd``).
"""

from __future__ import annotations

import os
import time
from typing import Any

from . import client as _client_mod
from . import convert, wire


class MediaMethods:
    """The array methods; ``SummaryWriter`` provides the state and plumbing below."""

    _log_dir_str: str
    _wids: dict[str, int]

    def _current(self) -> _client_mod.Client:
        raise NotImplementedError  # SummaryWriter's

    def _open_run(self, c: _client_mod.Client, path: str, purge_step: int | None) -> int:
        raise NotImplementedError  # SummaryWriter's

    def _put_arrays(
        self,
        kind: int,
        tag: Any,
        global_step: Any,
        walltime: Any,
        payload: tuple[dict[str, Any], list[Any]],
        wid: int | None = None,
    ) -> None:
        raise NotImplementedError  # SummaryWriter's

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
            vid_tensor: Video data, shape (N, T, C, H, W) with C = 1 (grey; torch
                cannot write it, this writes tensorboardX's grey GIF), 3 (RGB) or 4
                (RGBA; the GIF keeps RGB, as torch's); uint8 in [0, 255] or float in [0, 1].
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
        from . import convert_pr

        payload = convert_pr.pr_curve(labels, predictions, num_thresholds, weights)
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
        from . import convert_pr

        payload = convert_pr.pr_curve_raw(
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
        and merges the embedding into ``log_dir/projector_config.pbtxt``; the
        projector files are on disk once ``flush()`` or ``close()`` returns (torch
        writes them during the call).  That wait is bounded like every flush, by
        ``$SUMMARYD_FLUSH_TIMEOUT`` (10 s); a tensors.tsv of several million values
        can take longer to write.

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
