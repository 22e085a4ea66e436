"""The embedding projector's files (add_embedding): tensors.tsv, metadata.tsv,
sprite.png and the merged projector_config.pbtxt, as torch writes them.

Theory of operation: torch's ``add_embedding`` writes four things into the run
directory (``writer.py`` and ``_embedding.py``):

==============================  ===============================================
``<subdir>/tensors.tsv``        ``make_mat``: one line per row, each value as
                                ``str(value.item())`` (Python's repr of a float),
                                tab-separated
``<subdir>/metadata.tsv``       ``make_tsv``: the trainer sends the finished text
``<subdir>/sprite.png``         ``make_sprite``: the images in a grid of
                                ceil(sqrt(N)) columns, pasted at the top of a
                                black square as wide as the grid, each value
                                ``uint8(clip(value * 255, 0, 255))``; the same
                                pixels, encoded by ``media.png`` (fast, not
                                Pillow's bytes)
``projector_config.pbtxt``      ``text_format`` of a ``ProjectorConfig`` holding an
                                ``EmbeddingInfo`` per embedding
==============================  ===============================================

``<subdir>`` is ``<zero-filled step>/<encoded tag>`` (``sdk/convert_embedding.subdir``).
torch keeps the config in memory per writer and rewrites the file with that
writer's embeddings only; the daemon instead merges into the file as it is
(``existing_config``), so embeddings from several writers and processes
accumulate: one with the same tensor name or path is replaced in place, a
new one appended.

Pure functions: the caller reads the existing config, writes the returned
files (paths relative to the run directory, all checked to stay inside it)
and owns every file.  Records are untrusted: every field and array is
checked, and a bad one raises TypeError or ValueError.
"""

from __future__ import annotations

import io
import math
import posixpath
import re
from typing import Any

import numpy as np
from google.protobuf import text_format

from summaryd.proto import projector_config_pb2

from .media import png

CONFIG_NAME = "projector_config.pbtxt"
# Limits, as the SDK's (``convert_embedding``): a sprite of at most 8192 pixels a
# side (TensorBoard's projector shows no larger), at most 2**24 numbers in
# tensors.tsv.  They bound what one record can make the daemon allocate.
MAX_SPRITE_SIDE = 8192
MAX_MAT_VALUES = 1 << 24
MAX_CONFIG_CHARS = 1 << 24
# Values converted to float64 at a time when scaling the sprite (32 MiB).
_CHUNK = 1 << 22
_KINDS = "biuf"
_ESCAPE = re.compile("%(25|2f|5c)")
_UNESCAPE = {"25": "%", "2f": "/", "5c": "\\"}


def check_subdir(path: Any) -> str:
    """``params['subdir']``: ``<step part>/<encoded tag>``, a plain path inside the run.

    The rule of ``sdk/convert_embedding.check_subdir``: the step part is
    normal components (no ``.``, ``..``, empty), the encoded tag has no
    ``/`` and is not ``.`` or ``..`` (it may be empty), no NUL; and the tag
    is encoded as torch's ``_encode`` does (every ``%`` starts ``%25``,
    ``%2f`` or ``%5c``).
    """
    if type(path) is not str:
        raise TypeError(f"subdir must be str, got {type(path).__name__}")
    step_part, sep, enc_tag = path.rpartition("/")
    if (
        "\0" in path
        or not sep
        or enc_tag in (".", "..")
        or any(c in ("", ".", "..") for c in step_part.split("/"))
    ):
        raise ValueError(f"subdir {path!r} is not a plain relative path inside the run")
    if enc_tag.count("%") != len(_ESCAPE.findall(enc_tag)):
        raise ValueError(f"subdir {path!r}: the tag is not encoded as torch encodes it")
    return path


def tensor_name(subdir: str) -> str:
    """torch's ``EmbeddingInfo.tensor_name``, ``f"{tag}:{zero-filled step}"``.

    ``subdir`` is ``f"{step}/{_encode(tag)}"``; the encoded tag has no ``/``,
    so the last ``/`` splits the two and the tag decodes unambiguously.
    """
    step_part, _, enc_tag = subdir.rpartition("/")
    tag = _ESCAPE.sub(lambda m: _UNESCAPE[m.group(1)], enc_tag)
    return f"{tag}:{step_part}"


def _check_arrays(arrays: Any) -> tuple[np.ndarray, np.ndarray | None]:
    if type(arrays) is not list or len(arrays) not in (1, 2):
        raise ValueError("embedding: expected arrays [mat] or [mat, label_img]")
    for a in arrays:
        if not isinstance(a, np.ndarray) or a.dtype.kind not in _KINDS:
            raise TypeError("embedding: arrays must be bool, integer or float numpy arrays")
    mat = arrays[0]
    if mat.ndim != 2:
        raise ValueError(f"embedding: mat must be 2-D, got shape {mat.shape}")
    if mat.shape[0] * max(mat.shape[1], 1) > MAX_MAT_VALUES:
        raise ValueError(f"embedding: mat {mat.shape} has more than {MAX_MAT_VALUES} values")
    if len(arrays) == 1:
        return mat, None
    img = arrays[1]
    if img.ndim != 4 or img.shape[1] not in (1, 3) or img.shape[0] != mat.shape[0]:
        raise ValueError(
            f"embedding: label_img must be (N, 1 or 3, H, W) with N = {mat.shape[0]}, "
            f"got {img.shape}"
        )
    n, _, h, w = img.shape
    ncols, nrows = _grid(n)
    if not 0 < w * ncols <= MAX_SPRITE_SIDE or h * nrows > w * ncols:
        raise ValueError(
            f"embedding: label_img {img.shape} makes no sprite torch can draw "
            f"(a square of 1 to {MAX_SPRITE_SIDE} pixels a side holding the grid)"
        )
    return mat, img


def _grid(n: int) -> tuple[int, int]:
    """(columns, rows) of torch's sprite grid: ``make_grid(ncols=ceil(sqrt(N)))``."""
    if n == 0:
        raise ValueError("embedding: label_img holds no images")
    ncols = min(n, math.ceil(n**0.5))
    return ncols, math.ceil(n / ncols)


def tensors_tsv(mat: np.ndarray) -> bytes:
    """torch's ``make_mat``: ``"\\t".join(str(i.item()) for i in row) + "\\n"`` per row.

    ``tolist()`` gives the Python scalars ``item()`` gives (float16 and
    float32 widened to float, whose ``str`` is the shortest repr), in one C
    call per chunk of rows.
    """
    out = io.StringIO()
    step = max(1, _CHUNK // max(mat.shape[1], 1))
    for start in range(0, mat.shape[0], step):
        for row in mat[start : start + step].tolist():
            out.write("\t".join(map(str, row)))
            out.write("\n")
    return out.getvalue().encode("utf-8")


def sprite_pixels(label_img: np.ndarray) -> np.ndarray:
    """torch's ``make_sprite`` image as (side, side, 3) uint8 pixels.

    torch copies the images into a grid of the input's dtype, the grid into
    the top of a float64 zero square, and writes ``np.uint8((square *
    255).clip(0, 255))``.  Here each image is scaled with exactly those
    float64 operations (NaN casts as numpy casts it for torch) and pasted
    into a uint8 square, without the float64 square.
    """
    n, c, h, w = label_img.shape
    ncols, nrows = _grid(n)
    side = w * ncols
    tiles = np.zeros((nrows * ncols, 3, h, w), np.uint8)
    per = max(1, _CHUNK // max(c * h * w, 1))
    with np.errstate(invalid="ignore"):  # NaN -> uint8, as torch's np.uint8(...) does
        for start in range(0, n, per):
            chunk = label_img[start : start + per].astype(np.float64)
            tiles[start : start + len(chunk)] = (chunk * 255).clip(0, 255).astype(np.uint8)
    grid = tiles.reshape(nrows, ncols, 3, h, w).transpose(0, 3, 1, 4, 2)
    square = np.zeros((side, side, 3), np.uint8)
    square[: nrows * h] = grid.reshape(nrows * h, side, 3)
    return square


def embedding_info(subdir: str, metadata: bool, label_img: np.ndarray | None) -> Any:
    """torch's ``get_embedding_info``: names, paths and the sprite's [W, H] per image."""
    info = projector_config_pb2.EmbeddingInfo()
    info.tensor_name = tensor_name(subdir)
    info.tensor_path = posixpath.join(subdir, "tensors.tsv")
    if metadata:
        info.metadata_path = posixpath.join(subdir, "metadata.tsv")
    if label_img is not None:
        info.sprite.image_path = posixpath.join(subdir, "sprite.png")
        info.sprite.single_image_dim.extend([label_img.shape[3], label_img.shape[2]])
    return info


def merge_config(existing_config: str | None, info: Any) -> str:
    """``existing_config`` with ``info`` replacing the embedding of the same tensor
    name or path (in place; any further match removed), or appended; as torch's
    ``text_format.MessageToString``.

    Raises:
        ValueError: ``existing_config`` is not a ProjectorConfig in text format
            (the caller leaves such a file alone rather than overwrite it).
    """
    config = projector_config_pb2.ProjectorConfig()
    if existing_config is not None:
        if type(existing_config) is not str:
            raise TypeError("existing_config must be str or None")
        if len(existing_config) > MAX_CONFIG_CHARS:
            raise ValueError(f"{CONFIG_NAME} is larger than {MAX_CONFIG_CHARS} characters")
        try:
            text_format.Parse(existing_config, config)
        except text_format.ParseError as exc:
            raise ValueError(f"{CONFIG_NAME} is not a ProjectorConfig: {exc}") from None
    kept: list[Any] = []
    placed = False
    for e in config.embeddings:
        if e.tensor_name == info.tensor_name or e.tensor_path == info.tensor_path:
            if not placed:
                kept.append(info)
                placed = True
        else:
            kept.append(e)
    if not placed:
        kept.append(info)
    del config.embeddings[:]
    config.embeddings.extend(kept)
    return text_format.MessageToString(config)  # type: ignore[no-any-return]


def embedding_files(
    params: dict[str, Any], arrays: list[np.ndarray], existing_config: str | None
) -> dict[str, bytes]:
    """Files to write, by path relative to the run's log dir (config included).

    In writing order: the config comes last, so a reader never finds it naming
    files not yet written.  An empty ``tensors.tsv`` (N = 0) is not among them:
    torch's ``GFile`` creates a file at its first write, and ``make_mat``
    writes nothing then.

    Params:
        subdir: ``<zero-filled step>/<encoded tag>`` (checked by ``check_subdir``).
        metadata: the text of ``metadata.tsv``, or None for no metadata.

    Arrays:
        ``[mat]`` or ``[mat, label_img]``: mat (N, D), label_img (N, 1 or 3, H, W).

    Raises:
        TypeError / ValueError: a malformed field or array, or an existing
            config that does not parse.
    """
    if type(params) is not dict:
        raise TypeError(f"embedding: params must be a dict, got {type(params).__name__}")
    subdir = check_subdir(params.get("subdir"))
    metadata = params.get("metadata")
    if metadata is not None and type(metadata) is not str:
        raise TypeError(f"embedding: metadata must be str or None, got {type(metadata).__name__}")
    mat, label_img = _check_arrays(arrays)
    info = embedding_info(subdir, metadata is not None, label_img)
    config = merge_config(existing_config, info)
    files: dict[str, bytes] = {}
    tsv = tensors_tsv(mat)
    if tsv:
        files[info.tensor_path] = tsv
    if metadata is not None:
        files[info.metadata_path] = metadata.encode("utf-8")
    if label_img is not None:
        files[info.sprite.image_path] = png(sprite_pixels(label_img))
    files[CONFIG_NAME] = config.encode("utf-8")
    return files
