"""Validation and conversion in the caller for add_embedding.

``embedding`` returns ``(params, arrays)`` for one array record (see
``wire.py``); ``subdir`` the embedding's directory, relative to the run.
numpy is imported at the top, torch only when an argument is a tensor.

torch's ``add_embedding`` checks its arguments while it writes the files
(``writer.py`` and ``_embedding.py``): ``make_np(mat)``, then the metadata
(``#labels should equal with #data points``, ``make_tsv``), then the label
images (``#images should equal``, ``make_sprite`` / ``make_grid``), then
``mat.ndim``.  The same checks run here in the same order, so the first bad
argument raises what torch raises for it, before anything is written.  Only
what needs the caller's objects is computed here: ``str()`` of each metadata
item, as ``make_tsv`` does.  The matrix and the images travel raw; the
daemon (``daemon/projector.py``) formats ``tensors.tsv``, draws the sprite
and merges ``projector_config.pbtxt``.  Every check on the arrays is O(1).

Deliberate differences (torch would write files TensorBoard cannot use, or
that summaryd cannot carry):

* ``label_img`` may be a numpy array (torch's ``make_sprite`` calls
  ``label_img.size(0)`` and fails with TypeError on one).
* ``mat`` and ``label_img`` must hold bool, integer or float16/32/64 values
  (torch also writes complex and string matrices).
* a sprite wider than ``MAX_SPRITE_SIDE`` pixels and a matrix of more than
  ``MAX_MAT_VALUES`` values are refused (TensorBoard's projector shows
  neither).
* a tag of ``.`` or ``..`` is refused (torch writes into ``00000/`` or the
  run directory itself).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .convert import _make_np, check_utf8, reraise
from .errors import (
    ArgumentAttributeError,
    ArgumentIndexError,
    ArgumentShapeError,
    ArgumentTypeError,
    ArgumentValueError,
    ArgumentZeroDivisionError,
    InvalidArgumentError,
)

Payload = tuple[dict[str, Any], list[np.ndarray]]

# TensorBoard's projector draws sprites of at most 8192 x 8192 pixels (a WebGL
# texture); torch's square sprite is W * ceil(sqrt(N)) pixels on a side.  The
# bound also caps what the daemon allocates for one sprite (192 MiB).
MAX_SPRITE_SIDE = 8192
# tensors.tsv holds N * D numbers, about 20 bytes each; the projector loads it
# into a browser.  Counted as N * max(D, 1): an N x 0 matrix is N lines.
MAX_MAT_VALUES = 1 << 24
# dtypes the ring carries (numpy kinds): bool, signed, unsigned, float.
_KINDS = "biuf"


# TODO(lead): move these two into errors.py (torch raises IndexError and
# ZeroDivisionError for the inputs below); they subclass ValueError as well,
# like every summaryd argument error.


def _encode_tag(tag: Any) -> str:
    """torch's ``SummaryWriter._encode``: ``%``, ``/`` and ``\\`` as ``%25``, ``%2f``, ``%5c``.

    torch calls ``tag.replace``: bytes raise TypeError, other non-str objects
    AttributeError.
    """
    if not isinstance(tag, str):
        if isinstance(tag, (bytes, bytearray)):
            raise ArgumentTypeError(f"tag: expected str, got {type(tag).__name__}")
        raise ArgumentAttributeError(f"tag: expected str, got {type(tag).__name__}")
    check_utf8(tag, "tag")
    return str(tag).replace("%", "%25").replace("/", "%2f").replace("\\", "%5c")


def check_subdir(path: str) -> None:
    """An embedding directory summaryd writes into: ``<step part>/<encoded tag>``.

    The step part is one or more normal path components (no ``.``, ``..``
    or empty ones, so the path is relative and stays inside the run); the
    encoded tag has no ``/`` and may be empty (torch's ``tag=""`` gives
    ``00000/``), but not ``.`` or ``..``.  No NUL anywhere.  The daemon
    applies the same rule (``projector.check_subdir``).

    Raises:
        ArgumentValueError: ``path`` breaks the rule.
    """
    step_part, sep, enc_tag = path.rpartition("/")
    if (
        "\0" in path
        or not sep
        or enc_tag in (".", "..")
        or any(c in ("", ".", "..") for c in step_part.split("/"))
    ):
        raise ArgumentValueError(
            f"global_step, tag: the embedding directory {path!r} is not a plain relative "
            "path inside the run (no '.', '..', empty components or NUL)"
        )


def subdir(global_step: Any, tag: Any) -> str:
    """torch's embedding directory ``f"{str(global_step).zfill(5)}/{_encode(tag)}"``.

    Pass ``global_step`` and ``tag`` as the caller gave them: torch uses
    ``str(global_step)`` (None means 0), so ``1.5`` is ``001.5``, and calls
    ``tag.replace`` (a None or int tag is an AttributeError, bytes a TypeError).

    Raises:
        ArgumentAttributeError / ArgumentTypeError: ``tag`` is not a str.
        ArgumentEncodingError: ``tag`` has a lone surrogate (torch: UnicodeEncodeError).
        ArgumentValueError: the directory would not be a plain relative path
            (a NUL, a tag of ``.`` or ``..``, a step string with ``/``).
    """
    if global_step is None:
        global_step = 0
    try:
        step = str(global_step).zfill(5)
    except Exception as exc:
        reraise(exc, "global_step", "a step")
    path = f"{step}/{_encode_tag(tag)}"
    check_subdir(path)
    return path


def _rows(mat: np.ndarray) -> int:
    """``mat.shape[0]`` as torch reads it (IndexError for a 0-d array)."""
    if mat.ndim == 0:
        raise ArgumentIndexError("mat: expected a 2-D matrix (N, D), got a 0-d array")
    return int(mat.shape[0])


def _metadata_tsv(metadata: Any, metadata_header: Any) -> str:
    """The text of torch's ``make_tsv``: one ``str(item)`` per line, or tab-joined rows.

    The same expressions as torch, so the same objects give the same text or
    the same exception type (a tuple of rows with a header cannot be added
    to a list: TypeError; an array header has no truth value: ValueError).
    """
    try:
        if not metadata_header:
            lines = [str(x) for x in metadata]
        else:
            if len(metadata_header) != len(metadata[0]):
                raise ArgumentShapeError(
                    f"metadata_header: {len(metadata_header)} names, but the metadata "
                    f"rows have {len(metadata[0])} columns"
                )
            lines = ["\t".join(str(e) for e in row) for row in [metadata_header] + metadata]
        text = "\n".join(lines) + "\n"
    except InvalidArgumentError:
        raise
    except IndexError:
        raise ArgumentIndexError(
            "metadata: metadata_header needs at least one metadata row"
        ) from None
    except Exception as exc:
        reraise(exc, "metadata", "a list of labels (of rows with metadata_header)")
    check_utf8(text, "metadata")
    return text


def _check_dtype(arr: np.ndarray, name: str) -> None:
    if arr.dtype.kind not in _KINDS:
        raise ArgumentTypeError(
            f"{name}: expected bool, integer or float values, got dtype {arr.dtype}"
        )


def _label_images(label_img: Any, rows: int) -> np.ndarray:
    """``label_img`` (N, C, H, W) after torch's checks, raw; the sprite is the daemon's."""
    try:
        shape = label_img.shape
    except AttributeError:
        raise ArgumentAttributeError(
            f"label_img: expected a tensor or array, got {type(label_img).__name__}"
        ) from None
    if len(shape) == 0:
        raise ArgumentIndexError("label_img: expected (N, C, H, W) images, got a 0-d value")
    if rows != shape[0]:
        raise ArgumentShapeError(
            f"label_img: {shape[0]} images for {rows} data points (#images should equal "
            "with #data points)"
        )
    img: np.ndarray = _make_np(label_img, "label_img")
    if img.ndim < 2:
        raise ArgumentIndexError(f"label_img: expected (N, C, H, W) images, got shape {shape}")
    if img.ndim != 4 or img.shape[1] not in (1, 3):
        raise ArgumentShapeError(
            f"label_img: expected (N, C, H, W) images with C 1 or 3, got shape {img.shape}"
        )
    n, _, h, w = img.shape
    if n == 0:
        raise ArgumentZeroDivisionError("label_img: no images (torch's make_sprite divides by N)")
    # torch's make_sprite: a grid of ceil(sqrt(N)) columns pasted into a square
    # as wide as the grid; a grid taller than wide does not fit (torch: ValueError).
    ncols = min(n, math.ceil(n**0.5))
    nrows = math.ceil(n / ncols)
    side = w * ncols
    if h * nrows > side:
        raise ArgumentValueError(
            f"label_img: a grid of {nrows} x {ncols} images {h} x {w} (H x W) is taller than "
            "wide; torch's sprite is a square as wide as the grid"
        )
    if side == 0:
        raise ArgumentValueError("label_img: empty images (the sprite would have no pixels)")
    if side > MAX_SPRITE_SIDE:
        raise ArgumentValueError(
            f"label_img: the sprite would be {side} pixels wide; TensorBoard's projector "
            f"shows at most {MAX_SPRITE_SIDE}"
        )
    _check_dtype(img, "label_img")
    return img


def embedding(mat: Any, metadata: Any, label_img: Any, metadata_header: Any) -> Payload:
    """Check add_embedding's arguments as torch does; the matrix and images travel raw.

    Returns:
        ``({"metadata": str or None}, [mat] or [mat, label_img])``: ``metadata``
        is the whole text of ``metadata.tsv``.

    Raises:
        UnsupportedValueError: ``mat`` or ``label_img`` is not an array or tensor
            (torch: NotImplementedError).
        ArgumentShapeError: torch's asserts (``mat`` not 2-D, a count that differs
            from N, header and row widths, images not (N, 1 or 3, H, W)).
        ArgumentIndexError / ArgumentZeroDivisionError: where torch fails with
            IndexError / ZeroDivisionError (0-d ``mat``, no images).
        ArgumentTypeError / ArgumentValueError / ArgumentAttributeError: what
            ``len``, ``str`` and the list expressions of ``make_tsv`` raise, a
            sprite torch cannot paste, or a limit above.
    """
    arr = _make_np(mat, "mat")
    params: dict[str, Any] = {"metadata": None}
    if metadata is not None:
        n = _rows(arr)
        try:
            m = len(metadata)
        except Exception as exc:
            reraise(exc, "metadata", "a list with one label per data point")
        if n != m:
            raise ArgumentShapeError(
                f"metadata: {m} labels for {n} data points (#labels should equal with #data points)"
            )
        params["metadata"] = _metadata_tsv(metadata, metadata_header)
    arrays = [arr]
    if label_img is not None:
        arrays.append(_label_images(label_img, _rows(arr)))
    if arr.ndim != 2:
        raise ArgumentShapeError(
            f"mat: expected a 2-D matrix (N, D), got shape {arr.shape} (mat should be 2D)"
        )
    _check_dtype(arr, "mat")
    if arr.shape[0] * max(arr.shape[1], 1) > MAX_MAT_VALUES:
        raise ArgumentValueError(
            f"mat: {arr.shape[0]} x {arr.shape[1]} values; summaryd writes at most "
            f"{MAX_MAT_VALUES} to tensors.tsv"
        )
    return params, arrays
