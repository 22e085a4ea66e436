"""Encoders for images and videos: scaling, layout, PNG and GIF.

add_image, add_images, add_image_with_boxes, add_figure and add_video.

Each function: ``(tag, params, arrays) -> list of Summary or Event``; see
``encode.MEDIA_ENCODERS``.  Pure; validates every field (records come from
untrusted clients) and raises TypeError/ValueError on anything malformed.

Each builds the ``Summary`` torch 2.13's ``summary.image`` /
``summary.image_boxes`` / ``summary.video`` builds for the same call, from the
array ``summaryd.convert_image`` sent raw: the same numpy operations on the
same dtypes (``astype(float32) * 255``, clip, ``astype(uint8)``; uint8 as it
is), the same layouts (``convert_to_HWC``, ``make_grid``, ``_prepare_video``),
the same Pillow calls for boxes and GIFs.  Pixels decode identical to torch's;
PNG bytes differ (``media.png``), GIF bytes are identical.  A one-channel video,
which torch refuses, gets tensorboardX's GIF bytes (``video``).

Records (``params`` keys; the SDK has already checked what torch checks):

=============  =====================================  ==============================
kind           params                                 arrays
=============  =====================================  ==============================
IMAGE, IMAGES  dataformats                            pixels
IMAGE_BOXES    dataformats, size [w, h] (after        pixels, boxes (N, 4): x1, y1,
               ``rescale``), labels (None or N items  x2, y2 in the caller's dtype
               each None, str or bytes)
VIDEO          fps (float > 0)                        video (N, T, C, H, W)
=============  =====================================  ==============================

``dataformats`` is canonical: a permutation of ``HW``, ``HWC`` or ``NCHW``
(the SDK resolves lower case and the letters torch tolerates).  Elementwise
scaling commutes with layout, so each encoder scales the array as it came (one
contiguous pass, fewer elements than the grid) and then lays out uint8 pixels.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np

from summaryd.limits import (
    MAX_LABEL_CHARS,
    MAX_LABELS_CHARS,
    MAX_RESCALED_PIXELS,
    MAX_SIDE,
)
from summaryd.proto import summary_pb2

from . import media

_ORDER = {2: "HW", 3: "HWC", 4: "NCHW"}
FORMATS = frozenset("".join(p) for order in _ORDER.values() for p in itertools.permutations(order))

# -- record checks ---------------------------------------------------------------


def _check_tag(tag: Any) -> None:
    if type(tag) is not str:
        raise TypeError(f"tag must be str, got {type(tag).__name__}")


def _params(params: Any, keys: frozenset[str]) -> dict[str, Any]:
    if type(params) is not dict:
        raise TypeError("params must be a map")
    if params.keys() != keys:
        raise ValueError(f"params must have exactly the keys {sorted(keys)}, got {list(params)}")
    return params


def _arrays(arrays: Any, count: int) -> list[np.ndarray]:
    if type(arrays) is not list or len(arrays) != count:
        raise ValueError(f"expected {count} arrays")
    for a in arrays:
        if not isinstance(a, np.ndarray):
            raise TypeError("arrays must be numpy arrays")
        if a.dtype.kind not in "biuf" or a.dtype.itemsize > 8 or a.dtype.fields is not None:
            raise ValueError(f"expected numbers, got dtype {a.dtype}")
    return arrays


def _dataformats(params: dict[str, Any]) -> str:
    fmt = params["dataformats"]
    if type(fmt) is not str:
        raise TypeError(f"dataformats must be str, got {type(fmt).__name__}")
    if fmt not in FORMATS:
        raise ValueError(f"dataformats must be a permutation of HW, HWC or NCHW, got {fmt!r}")
    return fmt


# -- pixels ------------------------------------------------------------------------


def _scaled(a: np.ndarray) -> np.ndarray:
    """torch's ``(a.astype(float32) * 255).clip(0, 255)`` for a non-uint8 ``a``, in two passes
    instead of three: ``multiply`` with ``dtype=float32`` casts ``a`` as ``astype`` does (the
    same cast loop) and multiplies in float32, as torch's ``* 255`` (a weak Python int) does."""
    with np.errstate(over="ignore", invalid="ignore"):
        x: np.ndarray = np.multiply(a, np.float32(255), dtype=np.float32, casting="unsafe")
        np.clip(x, 0, 255, out=x)
    return x


def to_uint8(a: np.ndarray) -> np.ndarray:
    """torch's scaling: uint8 as it is, anything else ``(a.astype(float32) * 255).clip(0,
    255).astype(uint8)`` (``_calc_scale_factor``: 1 for uint8, 255 otherwise).

    The same float32 operations; NaN casts as numpy casts it for torch, and the cast's
    warnings (overflow, invalid value) are silenced: they are not the daemon's to report.
    """
    if a.dtype == np.uint8:
        return a
    x = _scaled(a)
    with np.errstate(invalid="ignore"):
        return x.astype(np.uint8)


def _interleaved(hwc: np.ndarray, channels: int | None = None) -> np.ndarray:
    """``hwc`` made contiguous one channel at a time, with ``channels`` channels (one
    repeated into three when asked): numpy's generic strided copy of a transposed CHW is
    ~7x slower than three plane-to-stride-3 copies.  (Casting float32 to uint8 in those
    copies would save a pass, but a strided cast costs 0.6 ms on 512x512x3 where the
    contiguous cast and the uint8 copies take 0.35.)"""
    c = hwc.shape[-1]
    channels = c if channels is None else channels
    if channels == c and hwc.flags.c_contiguous:
        return hwc
    out = np.empty((*hwc.shape[:-1], channels), hwc.dtype)
    for ch in range(channels):
        out[..., ch] = hwc[..., ch if c == channels else 0]
    return out


def _grid(nchw: np.ndarray) -> np.ndarray:
    """torch's ``make_grid`` (``_utils.py``) for uint8 N3HW, straight to HWC.

    Up to 8 images a row, row-major, the last row padded with black; the same
    canvas as torch's loop, built with one reshape and transpose.
    """
    n, c, h, w = nchw.shape
    ncols = min(n, 8)
    nrows = int(np.ceil(float(n) / ncols))
    if nrows * ncols > n:
        pad = np.zeros((nrows * ncols - n, c, h, w), np.uint8)
        nchw = np.concatenate([nchw, pad])
    grid = nchw.reshape(nrows, ncols, c, h, w).transpose(0, 3, 1, 4, 2)
    return _interleaved(grid).reshape(nrows * h, ncols * w, c)


def pixels_hwc(a: np.ndarray, fmt: str) -> np.ndarray:
    """``a`` laid out as ``fmt`` -> contiguous uint8 HWC, as torch's ``convert_to_HWC`` + scaling.

    HW and one channel become three equal channels, a batch becomes a grid
    (``make_grid``: one or three channels), three-dimensional images keep 2 or 4
    channels (Pillow's LA and RGBA).

    Raises:
        ValueError: the rank, a size or the channel count does not fit ``fmt``.
    """
    if a.ndim != len(fmt):
        raise ValueError(f"pixels: shape {a.shape} does not match dataformats {fmt!r}")
    if 0 in a.shape:
        raise ValueError(f"pixels: empty image, shape {a.shape}")
    dims = dict(zip(fmt, a.shape, strict=True))
    if len(fmt) == 4 and dims["C"] not in (1, 3):
        raise ValueError(f"pixels: a batch must have 1 or 3 channels, got {dims['C']}")
    if len(fmt) == 3 and dims["C"] not in (1, 2, 3, 4):
        raise ValueError(f"pixels: an image must have 1 to 4 channels, got {dims['C']}")
    if len(fmt) == 4:
        ncols = min(dims["N"], 8)
        rows = -(-dims["N"] // ncols)
        height, width = rows * dims["H"], ncols * dims["W"]
    else:
        height, width = dims["H"], dims["W"]
    if height > MAX_SIDE or width > MAX_SIDE:
        raise ValueError(f"pixels: a {width}x{height} image exceeds PNG's sides")
    x = to_uint8(a).transpose([fmt.index(ch) for ch in _ORDER[len(fmt)]])
    if len(fmt) == 4:
        if dims["C"] == 1:
            x = np.repeat(x, 3, axis=1)
        return _grid(x)
    if len(fmt) == 2:
        x = x[:, :, None]
    return _interleaved(x, 3 if x.shape[2] == 1 else None)


def _image_summary(tag: str, hwc_shape: tuple[int, ...], encoded: bytes) -> Any:
    """torch's ``make_image``/``make_video`` message: the size *before* any rescale.

    Filled in place: building an ``Image`` and then a ``Summary`` around it copies the
    encoded bytes once per message level (0.22 ms for a 770 KB PNG; 0.03 ms this way)."""
    h, w, c = hwc_shape
    summary = summary_pb2.Summary()
    image = summary.value.add(tag=tag).image
    image.height, image.width, image.colorspace = h, w, c
    image.encoded_image_string = encoded
    return summary


# -- IMAGE, IMAGES ---------------------------------------------------------------

_IMAGE_KEYS = frozenset({"dataformats"})


def image(tag: str, params: dict[str, Any], arrays: list[np.ndarray]) -> list[Any]:
    """add_image (and add_figure): torch's ``summary.image`` -> ``Summary.Value.image``, PNG."""
    _check_tag(tag)
    fmt = _dataformats(_params(params, _IMAGE_KEYS))
    (a,) = _arrays(arrays, 1)
    hwc = pixels_hwc(a, fmt)
    return [_image_summary(tag, hwc.shape, media.png(hwc))]


def images(tag: str, params: dict[str, Any], arrays: list[np.ndarray]) -> list[Any]:
    """add_images (and add_figure of a list): torch calls the same ``summary.image``."""
    return image(tag, params, arrays)


# -- IMAGE_BOXES -------------------------------------------------------------------

_BOXES_KEYS = frozenset({"dataformats", "size", "labels"})


def _size(params: dict[str, Any]) -> tuple[int, int]:
    size = params["size"]
    if type(size) is not list or len(size) != 2 or any(type(s) is not int for s in size):
        raise TypeError("size must be [width, height] ints")
    w, h = size
    if not (0 < w <= MAX_SIDE and 0 < h <= MAX_SIDE):
        raise ValueError(f"size {w}x{h} out of range")
    return w, h


def _labels(params: dict[str, Any], n: int) -> list[str | bytes | None] | None:
    labels = params["labels"]
    if labels is None:
        return None
    if type(labels) is not list or len(labels) != n:
        raise ValueError(f"labels must be None or a list of one item per box ({n})")
    total = 0
    for lab in labels:
        if lab is not None and type(lab) is not str and type(lab) is not bytes:
            raise TypeError(f"a label must be None, str or bytes, got {type(lab).__name__}")
        if lab is not None:
            if len(lab) > MAX_LABEL_CHARS:
                raise ValueError(f"a label is longer than {MAX_LABEL_CHARS}")
            total += len(lab)
    if total > MAX_LABELS_CHARS:
        raise ValueError(f"labels are longer than {MAX_LABELS_CHARS} in all")
    return labels


def _draw_single_box(
    image: Any,
    xmin: Any,
    ymin: Any,
    xmax: Any,
    ymax: Any,
    display_str: Any,
    font: Any,
    color: str = "black",
    color_text: str = "black",
    thickness: int = 2,
) -> Any:
    """torch's ``summary._draw_single_box``, call for call (same coordinates, same numpy
    scalar arithmetic), so the pixels are the same; ``font`` is loaded once per record."""
    from PIL import ImageDraw

    draw = ImageDraw.Draw(image)
    (left, right, top, bottom) = (xmin, xmax, ymin, ymax)
    draw.line(
        [(left, top), (left, bottom), (right, bottom), (right, top), (left, top)],
        width=thickness,
        fill=color,
    )
    if display_str:
        text_bottom = bottom
        # Reverse list and print from bottom to top.
        _left, _top, _right, _bottom = font.getbbox(display_str)
        text_width, text_height = _right - _left, _bottom - _top
        margin = np.ceil(0.05 * text_height)
        draw.rectangle(
            [
                (left, text_bottom - text_height - 2 * margin),
                (left + text_width, text_bottom),
            ],
            fill=color,
        )
        draw.text(
            (left + margin, text_bottom - text_height - margin),
            display_str,
            fill=color_text,
            font=font,
        )
    return image


def image_with_boxes(tag: str, params: dict[str, Any], arrays: list[np.ndarray]) -> list[Any]:
    """add_image_with_boxes: torch's ``summary.image_boxes``: red boxes (and labels) drawn
    with Pillow on the scaled image, then resized with LANCZOS to ``size`` (a no-op at
    rescale 1); the message keeps the size before the resize, as torch's does."""
    from PIL import Image, ImageFont

    _check_tag(tag)
    p = _params(params, _BOXES_KEYS)
    fmt = _dataformats(p)
    width, height = _size(p)
    img, boxes = _arrays(arrays, 2)
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f"boxes must have shape (N, 4), got {boxes.shape}")
    labels = _labels(p, len(boxes))
    hwc = pixels_hwc(img, fmt)
    if width * height > max(MAX_RESCALED_PIXELS, hwc.shape[0] * hwc.shape[1]):
        raise ValueError(f"size {width}x{height}: enlarging beyond {MAX_RESCALED_PIXELS} pixels")
    im = Image.fromarray(hwc)
    font = ImageFont.load_default() if labels is not None and any(labels) else None
    try:
        # numpy scalar arithmetic on the coordinates wraps for small int dtypes, as in torch
        with np.errstate(all="ignore"):
            for i in range(len(boxes)):
                im = _draw_single_box(
                    im,
                    boxes[i, 0],
                    boxes[i, 1],
                    boxes[i, 2],
                    boxes[i, 3],
                    display_str=None if labels is None else labels[i],
                    font=font,
                    color="Red",
                )
        im = im.resize((width, height), Image.Resampling.LANCZOS)
    except (ArithmeticError, SystemError, OSError, MemoryError) as exc:
        # torch raises these in the trainer; the SDK refuses such boxes before they come here
        raise ValueError(f"boxes could not be drawn: {exc}") from None
    return [_image_summary(tag, hwc.shape, media.png(np.asarray(im)))]


# -- VIDEO ---------------------------------------------------------------------------

_VIDEO_KEYS = frozenset({"fps"})


def _fps(params: dict[str, Any], frames: int) -> float:
    fps = params["fps"]
    if type(fps) is not float:
        raise TypeError(f"fps must be a float, got {type(fps).__name__}")
    if not (math.isfinite(fps) and fps > 0.0):
        raise ValueError(f"fps must be finite and > 0, got {fps!r}")
    if not (frames + 1) * (1.0 / fps) < media.MAX_GIF_DELAY_MS:
        raise ValueError(f"fps {fps!r} gives GIF delays beyond 16 bits")
    return fps


def _video_grid(v: np.ndarray) -> np.ndarray:
    """torch's ``_prepare_video`` layout on uint8: (N, T, C, H, W) -> (T, rows*H, cols*W, C).

    N is padded with black videos to a power of two; ``2 ** ((N.bit_length() - 1) //
    2)`` rows (from the unpadded N, as torch), the padded N divided among them.
    """
    b, t, c, h, w = v.shape
    padded = b if b & (b - 1) == 0 else 2 ** b.bit_length()
    if padded > b:
        v = np.concatenate([v, np.zeros((padded - b, t, c, h, w), np.uint8)])
    n_rows = 2 ** ((b.bit_length() - 1) // 2)
    n_cols = padded // n_rows
    v = v.reshape(n_rows, n_cols, t, c, h, w).transpose(2, 0, 4, 1, 5, 3)
    return v.reshape(t, n_rows * h, n_cols * w, c)


def moviepy_frames(n: int, fps: float) -> np.ndarray:
    """Which of ``n`` frames moviepy 1.0.3 writes, in order, for ``ImageSequenceClip(frames,
    fps).write_gif(fps=fps)`` (torch's ``make_video``).

    moviepy samples the clip at ``np.arange(0, duration, 1/fps)`` and shows at each
    time the last frame whose start (``i/fps - float32 eps``, a float32) is not after
    it: usually each frame once, sometimes the last one twice (the summed duration
    rounds up) or, for long clips, a frame skipped (float32 starts).  The same
    expressions here; the lookup is a binary search instead of moviepy's scan.
    """
    eps = np.finfo(np.float32).eps
    durations = [1.0 / fps for _ in range(n)]
    duration = sum(durations)
    if math.ceil(duration / (1.0 / fps)) > n + 1:
        raise ValueError(f"fps {fps!r}: moviepy's frame times do not fit {n} frames")
    times = np.arange(0, duration, 1.0 / fps)
    starts = np.array([1.0 * i / fps - eps for i in range(n)], dtype=np.float64)
    return np.searchsorted(starts, times, side="right") - 1


def video(tag: str, params: dict[str, Any], arrays: list[np.ndarray]) -> list[Any]:
    """add_video: torch's ``summary.video``: a grid of the N videos per frame, scaled as
    torch scales, frames chosen as moviepy chooses them, an animated GIF (``media.gif``).

    Colorspace is the tensor's channel count (torch's), though moviepy drops any
    channel after the third.  One channel (grey), which torch cannot write, is
    written as tensorboardX 2.6.5 writes it: the frames repeated into RGB, colorspace 1.
    """
    _check_tag(tag)
    p = _params(params, _VIDEO_KEYS)
    (v,) = _arrays(arrays, 1)
    if v.ndim != 5 or 0 in v.shape:
        raise ValueError(f"video must be (N, T, C, H, W), none empty, got {v.shape}")
    b, t, c, h, w = v.shape
    fps = _fps(p, t)
    n_rows = 2 ** ((b.bit_length() - 1) // 2)
    n_cols = (b if b & (b - 1) == 0 else 2 ** b.bit_length()) // n_rows
    if n_rows * h > 0xFFFF or n_cols * w > 0xFFFF:
        raise ValueError(f"video frames of {n_cols * w}x{n_rows * h} exceed GIF's 65535")
    v = v[:, :, :3]  # moviepy's make_frame returns frame[:, :, :3]
    # torch's _prepare_video divides uint8 by 255 in float32 and video() multiplies by 255
    # again: IEEE float32 gives every k back exactly (a unit test checks all 256), so
    # uint8 frames pass as they are.
    u8 = to_uint8(v)
    frames = _video_grid(u8)
    chosen = np.ascontiguousarray(frames[moviepy_frames(t, fps)])
    if c == 1:
        # torch's imageio cannot write one channel; tensorboardX's make_video repeats it
        # into RGB first (imageio > 2.27), so Pillow writes a grey palette: its bytes.
        chosen = np.repeat(chosen, 3, axis=3)
    return [_image_summary(tag, (frames.shape[1], frames.shape[2], c), media.gif(chosen, fps))]
