"""Validation and conversion in the caller for image, images, image_with_boxes, figure, video.

Each returns ``(params, arrays)`` for one array record (see ``wire.py`` and
``daemon/encode_image.py`` for the params); numpy and torch are imported here,
never by ``import summaryd``.

The trainer pays ``make_np`` and checks on shapes, never a pass over the
pixels: the array goes raw, in its own dtype and layout, and the daemon does
the layout, the scaling and the PNG/GIF.  Each check is one torch 2.13 makes
(``summary.image``, ``image_boxes``, ``video``, ``_utils.convert_to_HWC``,
``make_grid``, ``_prepare_video``; Pillow and moviepy behind them), made in
torch's order so the same bad input raises the same type of exception here.

Deliberate differences from torch, each where torch writes something broken,
does not finish in reasonable time (the message says so) or fails where
tensorboardX writes a good file:

* add_video with an empty frame (C, H or W of 0), a complex fps, a delay GIF
  cannot store (fps below ~1.5e-6 per frame) or frames wider or taller than
  65535: torch writes an undecodable GIF (moviepy's writer fails inside
  ``__del__``, the error is only printed); here they raise.  A negative fps
  raises too (torch shows a still of the last frame).
* add_image_with_boxes: labels longer than ``MAX_LABEL_CHARS`` (or
  ``MAX_LABELS_CHARS`` in all) and a rescale enlarging the image beyond
  ``MAX_RESCALED_PIXELS`` raise ``ArgumentValueError`` (torch spends ~14 s
  drawing a 1e6-character label, or allocates the rescaled image);
  a label with a lone surrogate raises ``ArgumentEncodingError`` (it cannot
  travel as UTF-8; torch draws a missing glyph); a label at a corner beyond
  a C long raises ``ArgumentValueError`` (torch: Pillow's SystemError).
* add_video with one channel (N, T, 1, H, W): torch raises (its GIF writer,
  imageio, cannot write one channel); here a grey GIF as tensorboardX 2.6.5
  writes it (each frame repeated into RGB, the same GIF bytes; the summary's
  colorspace 1).  Values are scaled as torch scales them (clipped to [0, 255];
  tensorboardX wraps values outside [0, 1]).
* Arrays of dtypes the ring does not carry (complex, object, str, datetime)
  are converted to float32 here, as torch's ``astype(np.float32)`` would.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .convert import _is_torch_tensor, _make_np, check_utf8, reraise
from .errors import (
    ArgumentAttributeError,
    ArgumentIndexError,
    ArgumentKeyError,
    ArgumentRangeError,
    ArgumentShapeError,
    ArgumentTypeError,
    ArgumentValueError,
    ArgumentZeroDivisionError,
)
from .limits import MAX_LABEL_CHARS, MAX_LABELS_CHARS, MAX_RESCALED_PIXELS, MAX_SIDE

Payload = tuple[dict[str, Any], list[np.ndarray]]

MAX_GIF_SIDE = 0xFFFF  # GIF stores sides in 16 bits
# Pillow stores a GIF frame's delay (ms, from 1/fps: see media.gif) as centiseconds in 16 bits.
MAX_GIF_DELAY_MS = 655350.0

_ORDER = {4: "NCHW", 3: "HWC", 2: "HW"}
_RING_KINDS = frozenset("biuf")


# -- shared checks ------------------------------------------------------------------


def _np(x: Any, name: str) -> Any:
    """torch's ``make_np``: ``convert._make_np``, and for a meta tensor (no data) torch's
    stand-in ``np.random.randn(1)``, whose shape then fails the layout checks as in torch."""
    if _is_torch_tensor(x) and getattr(x, "device", None) is not None and x.device.type == "meta":
        return np.random.randn(1)
    return _make_np(x, name)


def _layout(shape: tuple[int, ...], dataformats: Any) -> str:
    """torch's ``convert_to_HWC`` checks -> the canonical format (a permutation of its letters).

    torch asserts no letter repeats and one letter per dimension, upper-cases,
    then transposes by ``find`` of each of N, C, H, W: a missing letter finds
    -1, numpy's last axis, so ``CHX`` works as ``CHW`` and ``XHW`` repeats an
    axis (ValueError).  2 to 4 letters only: with any other count torch's
    conversion returns None and fails on it (AttributeError).
    """
    fmt = dataformats
    try:
        repeated = len(set(fmt)) != len(fmt)
    except Exception as exc:
        reraise(exc, "dataformats", "a str such as 'CHW'")
    if repeated:
        raise ArgumentShapeError(f"dataformats: {fmt!r} names a dimension twice")
    if len(shape) != len(fmt):
        raise ArgumentShapeError(
            f"dataformats: {fmt!r} names {len(fmt)} dimensions, the tensor has shape {shape}"
        )
    try:
        upper = fmt.upper()
    except Exception as exc:
        reraise(exc, "dataformats", "a str such as 'CHW'")
    if not isinstance(upper, str):
        raise ArgumentTypeError(f"dataformats: expected str, got {type(fmt).__name__}")
    order = _ORDER.get(len(upper))
    if order is None:
        raise ArgumentAttributeError(
            f"dataformats: expected 2 to 4 letters (HW, HWC, NCHW in any order), got {fmt!r}"
        )
    n = len(upper)
    if n != len(shape):  # upper() changed the length ('ß' -> 'SS')
        raise ArgumentValueError(f"dataformats: {fmt!r} does not name the tensor's axes")
    axes = [upper.find(ch) % n for ch in order]
    if sorted(axes) != list(range(n)):
        raise ArgumentValueError(
            f"dataformats: {fmt!r} must name each of {order} once (numpy: repeated axis in "
            "transpose)"
        )
    canonical = [""] * n
    for letter, axis in zip(order, axes, strict=True):
        canonical[axis] = letter
    return "".join(canonical)


def _numeric(arr: np.ndarray, name: str) -> np.ndarray:
    """``arr`` if the ring carries its dtype; else ``astype(float32)`` now, as torch would.

    Complex warns (ComplexWarning) and keeps the real part, strings parse,
    objects convert: torch's later ``astype(np.float32)``, moved into the
    caller because the ring carries numbers only.  The scale factor is 255
    either way (torch: not uint8).
    """
    if arr.dtype.kind in _RING_KINDS and arr.dtype.fields is None:
        return arr
    try:
        return arr.astype(np.float32)
    except Exception as exc:
        reraise(exc, name, "numbers")


def _grid_checks(shape: tuple[int, ...], fmt: str, name: str) -> None:
    """torch's ``make_grid`` assertions (a batch of 1 or 3 channels) and its division
    by the number of columns (an empty batch divides by zero)."""
    if len(fmt) != 4:
        return
    dims = dict(zip(fmt, shape, strict=True))
    if dims["C"] not in (1, 3):
        raise ArgumentShapeError(
            f"{name}: a batch of images must have 1 or 3 channels, got C={dims['C']} "
            f"(shape {shape}, dataformats {fmt})"
        )
    if dims["N"] == 0:
        raise ArgumentZeroDivisionError(f"{name}: an empty batch (N=0, shape {shape})")


def _hwc_shape(shape: tuple[int, ...], fmt: str) -> tuple[int, int, int]:
    """The (H, W, C) torch's ``convert_to_HWC`` makes of ``shape``: one channel made
    three, a batch made an 8-wide grid."""
    dims = dict(zip(fmt, shape, strict=True))
    if len(fmt) == 4:
        n = dims["N"]
        ncols = min(n, 8)
        nrows = -(-n // ncols) if ncols else 0
        return nrows * dims["H"], ncols * dims["W"], 3
    c = dims.get("C", 1)
    return dims["H"], dims["W"], 3 if c == 1 else c


def _channel_check(hwc: tuple[int, int, int], name: str) -> None:
    """Pillow's ``Image.fromarray``: 1 (made 3), 2, 3 or 4 channels (TypeError otherwise)."""
    if hwc[2] not in (2, 3, 4):
        raise ArgumentTypeError(
            f"{name}: an image must have 1, 2, 3 or 4 channels, got {hwc[2]} "
            "(Pillow cannot handle this data type)"
        )


def _size_check(hwc: tuple[int, int, int], name: str) -> None:
    """Pillow cannot write an empty image (ValueError); PNG's sides are 31-bit."""
    h, w, _ = hwc
    if h == 0 or w == 0:
        raise ArgumentValueError(f"{name}: an empty image ({h}x{w}): Pillow cannot write it")
    if h > MAX_SIDE or w > MAX_SIDE:
        raise ArgumentValueError(f"{name}: a {w}x{h} image exceeds PNG's 2**31-1 sides")


# -- add_image, add_images ------------------------------------------------------------


def image(img_tensor: Any, dataformats: Any) -> Payload:
    """add_image: torch's ``summary.image`` checks; the pixels go raw.

    Raises (torch's types): UnsupportedValueError (not an array or tensor),
    ArgumentShapeError (dataformats vs shape, a batch of 2 or 4+ channels),
    ArgumentZeroDivisionError (an empty batch), ArgumentAttributeError /
    ArgumentTypeError (dataformats not a str of 2-4 letters, 5+ channels),
    ArgumentValueError (letters naming no axis, an empty image).
    """
    arr = _np(img_tensor, "img_tensor")
    fmt = _layout(arr.shape, dataformats)
    _grid_checks(arr.shape, fmt, "img_tensor")
    arr = _numeric(arr, "img_tensor")
    hwc = _hwc_shape(arr.shape, fmt)
    _channel_check(hwc, "img_tensor")
    _size_check(hwc, "img_tensor")
    return {"dataformats": fmt}, [arr]


def images(img_tensor: Any, dataformats: Any) -> Payload:
    """add_images: torch's add_images calls the same ``summary.image`` (default NCHW)."""
    return image(img_tensor, dataformats)


# -- add_image_with_boxes ---------------------------------------------------------------


def _label_count(labels: Any, box_tensor: Any) -> Any:
    """torch's add_image_with_boxes: a str label is a list of one, and labels whose
    count differs from ``box_tensor.shape[0]`` are silently dropped."""
    if labels is None:
        return None
    if isinstance(labels, str):
        labels = [labels]
    try:
        n = len(labels)
    except Exception as exc:
        reraise(exc, "labels", "a list of str, one per box")
    try:
        boxes = box_tensor.shape[0]
    except IndexError:
        raise ArgumentIndexError("box_tensor: expected (N, 4) boxes, got a 0-d array") from None
    except Exception as exc:
        reraise(exc, "box_tensor", "an (N, 4) array or tensor of boxes")
    return labels if n == boxes else None


def _box_dtype(boxes: np.ndarray) -> np.ndarray:
    """Coordinates Pillow takes: numbers as they are; complex (Pillow takes the real
    part) and objects as float64; anything else is Pillow's "incorrect coordinate type"."""
    kind = boxes.dtype.kind
    if kind in _RING_KINDS and boxes.dtype.fields is None:
        return boxes
    try:
        if kind == "c":
            return np.ascontiguousarray(boxes.real, dtype=np.float64)
        if kind == "O":
            return boxes.astype(np.float64)
    except Exception:
        pass
    raise ArgumentValueError(f"box_tensor: incorrect coordinate type (dtype {boxes.dtype})")


def _label_text(label: Any, i: int) -> str | bytes | None:
    """What torch's ``_draw_single_box`` draws for ``label``: nothing when it is falsy,
    str or bytes as they are (Pillow's ``getbbox`` refuses anything else: TypeError)."""
    name = f"labels[{i}]"
    try:
        draw = bool(label)
    except Exception as exc:
        reraise(exc, name, "a str")
    if not draw:
        return None
    if isinstance(label, str):
        check_utf8(label, name)
        text: str | bytes = str(label)
    elif isinstance(label, bytes):
        text = bytes(label)
    else:
        raise ArgumentTypeError(f"{name}: expected str, got {type(label).__name__}")
    if len(text) > MAX_LABEL_CHARS:
        raise ArgumentValueError(
            f"{name}: {len(text)} characters; summaryd draws labels of up to {MAX_LABEL_CHARS}"
        )
    return text


_SAFE_COORD = float(1 << 53)  # a label at a box corner this far out is drawn without error
_PILLOW_LONG = float((1 << 63) - (1 << 10))  # Pillow's text position must be a C long


def _check_label_drawing(boxes: np.ndarray, texts: list[str | bytes | None]) -> None:
    """Errors torch's ``_draw_single_box`` raises drawing a label, predicted here.

    torch computes the label's rectangle and position in the boxes' numpy scalar
    type: ``left + text_width`` overflows int8/16/32 and uint8/16/32 when the width
    does not fit (OverflowError) and wraps around when it does, turning the
    rectangle upside down (Pillow's ValueError), and Pillow's ``text`` takes ``int()`` of the
    position: NaN is a ValueError, infinity an OverflowError, beyond a C long a
    SystemError (here ArgumentValueError).  Boxes of wide ints or with every
    labelled corner finite and below 2**53 cannot fail, and are not measured; the
    others are, with the default font, as torch measures them.
    """
    narrow = boxes.dtype.kind in "iu" and boxes.dtype.itemsize < 8
    labelled = [i for i, text in enumerate(texts) if text is not None]
    if not labelled:
        return
    if not narrow:
        corners = np.asarray(boxes[labelled][:, [0, 3]], dtype=np.float64)
        with np.errstate(invalid="ignore"):
            if bool((np.abs(corners) < _SAFE_COORD).all()):
                return
    from PIL import ImageFont

    font = ImageFont.load_default()
    for i in labelled:
        text = texts[i]
        left, bottom = boxes[i, 0], boxes[i, 3]
        _l, _t, _r, _b = font.getbbox(text)  # type: ignore[arg-type]
        text_width, text_height = _r - _l, _b - _t
        margin = np.ceil(0.05 * text_height)
        try:
            rect_top = bottom - text_height - 2 * margin
            rect_right = left + text_width
        except OverflowError as exc:
            raise ArgumentRangeError(
                f"labels[{i}]: its box (dtype {boxes.dtype}) cannot hold the label's "
                f"{text_width}x{text_height} px ({exc})"
            ) from None
        # the label's rectangle, wrapped around in a small int dtype, is upside down
        if float(rect_right) < float(left) or float(bottom) < float(rect_top):
            raise ArgumentValueError(
                f"labels[{i}]: the label's rectangle at box {i} wraps around in dtype "
                f"{boxes.dtype} (Pillow: x1/y1 must be greater than or equal to x0/y0)"
            )
        for pos in (left + margin, bottom - text_height - margin):
            p = float(pos)
            if math.isnan(p):
                raise ArgumentValueError(f"labels[{i}]: box {i} has a NaN corner to write it at")
            if math.isinf(p):
                raise ArgumentRangeError(f"labels[{i}]: box {i} has an infinite corner")
            if abs(p) >= _PILLOW_LONG:
                raise ArgumentValueError(
                    f"labels[{i}]: box {i}'s corner {p!r} is beyond what Pillow can draw at"
                )


def _rescaled(hwc: tuple[int, int, int], rescale: Any) -> tuple[int, int]:
    """torch's ``make_image``: ``int(height * rescale)``, ``int(width * rescale)``."""
    try:
        height = int(hwc[0] * rescale)
        width = int(hwc[1] * rescale)
    except Exception as exc:
        reraise(exc, "rescale", "a number")
    return width, height


def _rescale_check(width: int, height: int, hwc: tuple[int, int, int]) -> None:
    """Pillow's ``resize``: sizes > 0 (ValueError), C longs (OverflowError); and
    summaryd's bound on enlarging (``MAX_RESCALED_PIXELS``, or the image's own size)."""
    if width <= 0 or height <= 0:
        raise ArgumentValueError(
            f"rescale: the rescaled image would be {width}x{height}; height and width must be > 0"
        )
    if width > MAX_SIDE or height > MAX_SIDE:
        raise ArgumentRangeError(f"rescale: a {width}x{height} image is too large")
    if width * height > max(MAX_RESCALED_PIXELS, hwc[0] * hwc[1]):
        raise ArgumentValueError(
            f"rescale: a {width}x{height} image; summaryd draws up to {MAX_RESCALED_PIXELS} pixels"
        )


def image_with_boxes(
    img_tensor: Any, box_tensor: Any, rescale: Any, dataformats: Any, labels: Any
) -> Payload:
    """add_image_with_boxes: torch's writer and ``summary.image_boxes`` checks, in order.

    The pixels go raw; the boxes (N, 4: x1, y1, x2, y2) in their own dtype (a
    few bytes); the labels torch would draw, resolved here; the rescaled size.
    """
    labels = _label_count(labels, box_tensor)
    arr = _np(img_tensor, "img_tensor")
    fmt = _layout(arr.shape, dataformats)
    _grid_checks(arr.shape, fmt, "img_tensor")
    boxes = _np(box_tensor, "box_tensor")
    arr = _numeric(arr, "img_tensor")
    hwc = _hwc_shape(arr.shape, fmt)
    width, height = _rescaled(hwc, rescale)
    _channel_check(hwc, "img_tensor")
    if boxes.ndim == 0:
        raise ArgumentIndexError("box_tensor: expected (N, 4) boxes, got a 0-d array")
    n = boxes.shape[0]
    texts: list[str | bytes | None] = []
    if n:
        if boxes.ndim < 2 or boxes.shape[1] < 4:
            raise ArgumentIndexError(
                f"box_tensor: expected (N, 4) boxes (x1, y1, x2, y2), got shape {boxes.shape}"
            )
        for i in range(n):
            try:
                label = None if labels is None else labels[i]
            except IndexError:
                raise ArgumentIndexError(f"labels: no item {i}") from None
            except KeyError:
                raise ArgumentKeyError(f"labels[{i}]: the labels mapping has no key {i}") from None
            except Exception as exc:
                reraise(exc, f"labels[{i}]", "a str")
            if i == 0 and boxes.ndim > 2:
                raise ArgumentValueError(
                    f"box_tensor: incorrect coordinate type (boxes of shape {boxes.shape}, "
                    "expected (N, 4))"
                )
            if i == 0:
                boxes = _box_dtype(boxes)
            texts.append(_label_text(label, i))
        if sum(len(t) for t in texts if t is not None) > MAX_LABELS_CHARS:
            raise ArgumentValueError(
                f"labels: summaryd draws up to {MAX_LABELS_CHARS} characters of labels per image"
            )
        _check_label_drawing(boxes, texts)
        boxes = boxes[:, :4]
    else:
        boxes = np.zeros((0, 4), np.float32)
    _size_check(hwc, "img_tensor")  # an empty image: Pillow's resize or save refuses it
    _rescale_check(width, height, hwc)
    params = {
        "dataformats": fmt,
        "size": [width, height],
        "labels": texts if labels is not None and n else None,
    }
    return params, [arr, boxes]


# -- add_figure ---------------------------------------------------------------------------


def _render(figure: Any, close: Any) -> np.ndarray:
    """torch's ``figure_to_image.render_to_rgb``: draw on a new Agg canvas, keep RGB."""
    import matplotlib.backends.backend_agg as plt_backend_agg
    import matplotlib.pyplot as plt

    canvas: Any = plt_backend_agg.FigureCanvasAgg(figure)
    canvas.draw()
    data = np.frombuffer(canvas.buffer_rgba(), dtype=np.uint8)
    w, h = figure.canvas.get_width_height()
    image_hwc = data.reshape([h, w, 4])[:, :, 0:3]
    image_chw = np.moveaxis(image_hwc, source=2, destination=0)
    if close:
        plt.close(figure)
    return np.ascontiguousarray(image_chw)


def figure(figure: Any, close: Any) -> list[np.ndarray]:
    """add_figure: render in the caller (the figure lives here), one uint8 CHW array per
    figure, exactly torch's ``figure_to_image`` pixels; a single figure gives a list of one.

    Raises:
        ArgumentAttributeError / ArgumentTypeError / ArgumentValueError: matplotlib
            cannot draw it (torch: the same type).
        ArgumentValueError: an empty list, or figures of different sizes (torch's
            ``np.stack`` refuses them, after drawing and closing each).
    """
    figures = figure if isinstance(figure, list) else [figure]
    out = []
    for f in figures:
        try:
            out.append(_render(f, close))
        except Exception as exc:
            reraise(exc, "figure", "a matplotlib Figure or a list of them")
    if isinstance(figure, list):
        if not out:
            raise ArgumentValueError("figure: an empty list (torch: need at least one array)")
        if len({a.shape for a in out}) > 1:
            raise ArgumentValueError(
                f"figure: figures of different sizes {[a.shape for a in out]} cannot form "
                "one grid (torch: np.stack refuses them)"
            )
    return out


# -- add_video -------------------------------------------------------------------------------


def _fps(fps: Any) -> float:
    """fps as moviepy's ``ImageSequenceClip`` uses it: ``1.0 / fps``, checked first."""
    if fps is None:
        raise ArgumentValueError("fps: expected frames per second, got None")
    try:
        _ = 1.0 / fps
    except ZeroDivisionError:
        raise ArgumentZeroDivisionError("fps: must not be 0") from None
    except Exception as exc:
        reraise(exc, "fps", "a number of frames per second")
    try:
        f = float(fps)
    except Exception as exc:
        reraise(exc, "fps", "a real number of frames per second")
    if math.isnan(f):
        raise ArgumentValueError("fps: NaN (moviepy finds no frame for any time)")
    if math.isinf(f):
        raise ArgumentZeroDivisionError("fps: infinite (moviepy: frame time 0)")
    if f < 0:
        raise ArgumentValueError(f"fps: expected a positive number, got {f!r}")
    return f


def video(vid_tensor: Any, fps: Any) -> Payload:
    """add_video: torch's ``summary.video`` / ``_prepare_video`` / moviepy checks, in order.

    The video goes raw (N, T, C, H, W); the daemon lays out the grid, scales,
    picks moviepy's frames and writes the GIF.  C = 1 passes (torch refuses it;
    the daemon writes tensorboardX's grey GIF).
    """
    v = _np(vid_tensor, "vid_tensor")
    if v.ndim != 5:
        raise ArgumentValueError(
            f"vid_tensor: expected 5 dimensions (N, T, C, H, W), got shape {v.shape}"
        )
    b, t, c, h, w = v.shape
    if b == 0:
        raise ArgumentTypeError(
            f"vid_tensor: no videos (N=0, shape {v.shape}); torch's grid gets 0.5 rows"
        )
    v = _numeric(v, "vid_tensor")
    if fps is None:
        raise ArgumentValueError("fps: expected frames per second, got None")
    if t == 0:
        raise ArgumentIndexError(f"vid_tensor: no frames (T=0, shape {v.shape})")
    f = _fps(fps)
    if c == 0 or h == 0 or w == 0:
        raise ArgumentValueError(
            f"vid_tensor: empty frames (shape {v.shape}); torch would write an undecodable GIF"
        )
    if not (t + 1) * (1.0 / f) < MAX_GIF_DELAY_MS:
        raise ArgumentValueError(
            f"fps: {f!r} is too low: GIF cannot store the frame delay torch computes; "
            "torch would write an undecodable GIF"
        )
    n_rows = 2 ** ((b.bit_length() - 1) // 2)
    n_cols = (b if b & (b - 1) == 0 else 2 ** b.bit_length()) // n_rows
    if n_rows * h > MAX_GIF_SIDE or n_cols * w > MAX_GIF_SIDE:
        raise ArgumentValueError(
            f"vid_tensor: frames of {n_cols * w}x{n_rows * h} exceed GIF's 65535 pixels"
        )
    return {"fps": f}, [v]
