"""Pure byte encoders for the daemon's media: PNG (images, figures, sprites) and GIF (videos).

Both take uint8 pixel arrays and return the file's bytes; no I/O, no clocks.

PNG is written here, from numpy and zlib, and not by Pillow.  torch saves
with Pillow, whose PNG writer picks a filter for every row by trying all five
(libpng's heuristic) before deflating; on a 3x512x512 photo-like image that
search alone costs more than the whole of this encoder (measured on the
target machine: Pillow ~28 ms at ``compress_level=1``, this ~10 ms).  The
daemon has to keep up with ~80 images a second on two cores, so every row
gets the "Up" filter (the difference with the row above, one numpy pass;
smooth images compress well with it) and deflate runs with a strategy chosen per
image from a 4 KB sample of the filtered rows (``choose_deflate``): stored blocks
for rows nothing shrinks (uniform noise), Huffman-only for noise-like rows
(photos), LZ for long repeats (gradients, masks, drawings), ``Z_RLE`` otherwise
(with the ``zlib-ng`` package installed, its deflate: ~2.4x faster than zlib's,
the same format).  With the ``isal`` package installed, ISA-L's deflate at level 1
replaces all but the stored case: faster than any of these on every kind of image
measured (``_ISAL_LEVEL``).  torch does not pin PNG bytes, only what they decode
to, and TensorBoard decodes them: the pixels are exactly the ones given (a unit
test decodes with Pillow).

GIF is written by Pillow, called exactly as torch's ``add_video`` ends up
calling it (``summary.make_video`` -> moviepy 1.0.3 ``write_gif`` -> imageio
2.x's pillow plugin -> ``Image.save(format="GIF", save_all=True,
append_images=..., duration=1/fps, loop=0)``), so the bytes are identical to
torch's for the same frames, palette included.
"""

from __future__ import annotations

import importlib
import io
import struct
import types
import zlib
from typing import Any

import numpy as np


def _deflate_module() -> types.ModuleType:
    """zlib-ng's deflate when the ``zlib-ng`` package is installed (the same format, about
    2.4x faster here), else the standard library's zlib."""
    try:
        return importlib.import_module("zlib_ng.zlib_ng")
    except ImportError:  # pragma: no cover - depends on the installation
        return zlib


_deflate = _deflate_module()


def _isal_module() -> types.ModuleType | None:
    """ISA-L's deflate (the ``isal`` package) when installed: at level 1 it deflates the
    filtered rows of photos and noisy images about 1.8x faster than zlib-ng's
    Huffman-only at the same size, and the rest faster too (see ``png``)."""
    try:
        return importlib.import_module("isal.isal_zlib")
    except ImportError:  # pragma: no cover - depends on the installation
        return None


_isal = _isal_module()

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# PNG colour type by channel count: grey, grey+alpha, RGB, RGBA.
_COLOUR_TYPE = {1: 0, 2: 4, 3: 2, 4: 6}
MAX_SIDE = (1 << 31) - 1  # PNG stores width and height as 31-bit unsigned ints
_IDAT_MAX = 1 << 30  # a chunk's length must stay below 2**31
_FILTER_UP = 2

# GIF: Pillow stores a frame's delay as int(duration_ms / 10) in 16 bits.
MAX_GIF_DELAY_MS = 655350.0


def _chunk(kind: bytes, *parts: bytes | memoryview) -> list[bytes | memoryview]:
    """A chunk as pieces to join once: length, type, data, CRC-32 of type + data (PNG spec
    section 5.3); the data may come in parts (the deflate output), never concatenated here."""
    crc = _deflate.crc32(kind)
    for part in parts:
        crc = _deflate.crc32(part, crc)
    size = sum(len(part) for part in parts)
    return [struct.pack(">I", size), kind, *parts, struct.pack(">I", crc)]


# How to deflate the filtered rows, chosen per image by ``choose_deflate``: (level, strategy).
# Measured with zlib-ng on 512x512x3 images (process time, medians, a loaded 2-core box):
#   RLE (level 1, Z_RLE, the one setting before): noise 7.7 ms, photo-like 7.0 ms, a smooth
#     gradient 4.5 ms (100 KB: its Up-filtered rows repeat with period 3, which runs miss),
#     sparse dots on a flat ground 3.8 ms (the best there: Huffman-only 7.1 ms, LZ 7.1 ms);
#   HUFFMAN (Z_HUFFMAN_ONLY; the level does not matter): noise 5.4 ms, photo-like 6.4 ms, the
#     same size as RLE within 0.2 %: runs and matches are rare in such rows;
#   LZ (level 2, zlib-ng's deflate_fast; level 1 is deflate_quick, whose static codes cost
#     +73 % on a mostly-constant image): smooth gradient 0.66 ms and 12.5 KB, segmentation
#     mask 0.47 ms (RLE 0.59 ms, 7x larger), but 21 ms on noise: it searches every byte.
#   STORED (level 0: stored blocks, the bytes copied): 0.23 ms on noise, 5 bytes per 64 KB
#     block larger than the data, where Huffman-only takes 5 ms to save nothing (uniform
#     noise, torch.rand's images, has no byte more frequent than another).
DEFLATE_RLE = (1, zlib.Z_RLE)
DEFLATE_HUFFMAN = (1, zlib.Z_HUFFMAN_ONLY)
DEFLATE_LZ = (2, zlib.Z_DEFAULT_STRATEGY)
DEFLATE_STORED = (0, zlib.Z_DEFAULT_STRATEGY)

# The look: _SAMPLES stretches of _SAMPLE_LEN bytes, evenly spaced over the filtered data
# (top, bottom and between, so a half-noise, half-flat image is seen as both), deflated
# two or three ways: ~0.05 ms per way on 512x512x3 photo-like rows (~1 % of their deflate).
# Below _LOOK_MIN bytes (64x64x3 images and smaller, ~0.15 ms to deflate) the look would
# cost about what it could save, so they keep RLE.
_SAMPLES = 8
_SAMPLE_LEN = 512
_LOOK_MIN = 16 * _SAMPLES * _SAMPLE_LEN
# LZ costs ~27 ns per byte it cannot match and RLE/Huffman ~8 ns per byte (noise: 21 vs
# 7.7 ms for 786 KB), so LZ is the faster only when under ~30 % of the bytes stay literal:
# taken when the sample deflates to under a quarter (a posterized photo deflates to 24 % by
# its few byte values alone, where LZ took 8.3 ms against Huffman-only's 6.1 and +24 %),
# to under 70 % of Huffman-only's size (a gradient 192 px wide: 50 %, LZ 0.11 ms against
# 0.92; half noise, half gradient: 78 %, LZ 10.8 ms against 4.2), and to under 90 % of
# RLE's (else RLE is as small and as fast: 0.72 vs 0.83 ms on a mostly flat image).
_LZ_MAX_RATIO = 0.25
_LZ_MAX_VS_HUFFMAN = 0.7
_LZ_MAX_VS_RLE = 0.9
# Huffman-only is faster than RLE on rows without runs, but slower where runs abound
# (3.8 vs 0.5 ms on sparse dots, where RLE's sample is 6x smaller; 0.55 vs 0.30 ms half
# noise, half flat: 1.2x): taken when LZ's matches (runs among them) save under 2 % of
# the sample, or when runs save RLE under 5 %: a photo (grace_hopper.jpg at 512x512, its
# sample 3.8 % larger with Huffman-only) deflates in 4.9 ms instead of 5.6, 6 % larger.
_NO_REPEATS_VS_HUFFMAN = 0.98
_HUFFMAN_MAX_VS_RLE = 1.05
# Stored when Huffman-only saves under 2 % of the sample (its code table, ~100 bytes of the
# 4 KB, is counted: the whole image saves a little more, under 3 %).  Gaussian noise of
# sigma 20 deflates to 87 %, a photo to 55-65 %: they keep Huffman-only.
_STORED_MIN_RATIO = 0.98


def _deflated_size(parts: list[np.ndarray], how: tuple[int, int]) -> int:
    # An 8 KB window and memLevel 6: the sample is 4 KB, and a smaller state is cheaper to set up.
    z = _deflate.compressobj(how[0], zlib.DEFLATED, 13, 6, how[1])
    return sum(len(z.compress(p.data)) for p in parts) + len(z.flush())


def _stored(filtered: np.ndarray) -> bool:
    """Whether Huffman-only saves under 2 % of ``filtered``'s sample (``choose_deflate``)."""
    parts = _sample(filtered)
    return _deflated_size(parts, DEFLATE_HUFFMAN) >= _STORED_MIN_RATIO * _SAMPLES * _SAMPLE_LEN


def _sample(filtered: np.ndarray) -> list[np.ndarray]:
    n = len(filtered)
    step = (n - _SAMPLE_LEN) // (_SAMPLES - 1)
    return [filtered[i * step : i * step + _SAMPLE_LEN] for i in range(_SAMPLES)]


def choose_deflate(filtered: np.ndarray) -> tuple[int, int]:
    """(level, strategy) for deflating ``filtered``, the flat Up-filtered rows of a PNG.

    A cheap look at the data (see the constants above for the measurements): deflate a
    4 KB sample with Huffman-only and LZ, and RLE when that is not yet decided; store
    data Huffman-only cannot shrink (uniform noise), pick LZ for data with long repeats
    (smooth gradients, masks, tiled textures), Huffman-only for rows without repeats
    (photos, noise of a narrower spread), RLE for flat images and runs among noise.
    Deterministic: the sample depends only on the data's length.
    """
    if len(filtered) < _LOOK_MIN:
        return DEFLATE_RLE
    parts = _sample(filtered)
    huffman = _deflated_size(parts, DEFLATE_HUFFMAN)
    if huffman >= _STORED_MIN_RATIO * _SAMPLES * _SAMPLE_LEN:
        return DEFLATE_STORED
    lz = _deflated_size(parts, DEFLATE_LZ)
    if lz >= _NO_REPEATS_VS_HUFFMAN * huffman:
        return DEFLATE_HUFFMAN
    rle = _deflated_size(parts, DEFLATE_RLE)
    if (
        lz < _LZ_MAX_RATIO * _SAMPLES * _SAMPLE_LEN
        and lz < _LZ_MAX_VS_HUFFMAN * huffman
        and lz < _LZ_MAX_VS_RLE * rle
    ):
        return DEFLATE_LZ
    return DEFLATE_HUFFMAN if huffman <= _HUFFMAN_MAX_VS_RLE * rle else DEFLATE_RLE


# ISA-L at level 1 against zlib-ng's choice, 512x512x3 (process time; size):
#   photo (grace_hopper.jpg) 2.6 ms 426 KB vs Huffman-only 4.9 ms 482 KB; gradient plus
#   noise of 5 grey levels (bench_media's image) 2.3 ms 494 KB vs 4.1 ms 489 KB; smooth
#   gradient 0.16 ms 10 KB vs LZ 0.7 ms 11 KB; segmentation mask 0.11 ms 10 KB vs 0.36 ms
#   6 KB; sparse dots 0.23 ms 19 KB vs RLE 0.42 ms 15 KB; posterized 2.3 ms 325 KB vs
#   4.1 ms 271 KB.  Uniform noise is stored either way (0.23 ms; ISA-L takes 1.3 ms).
_ISAL_LEVEL = 1


def _compress(filtered: np.ndarray) -> list[bytes]:
    """``filtered`` deflated in zlib format, as pieces: stored when nothing shrinks it,
    else with ISA-L when installed, else with zlib-ng (or zlib) as ``choose_deflate``
    picks."""
    if _isal is not None:
        if len(filtered) < _LOOK_MIN or not _stored(filtered):
            z = _isal.compressobj(_ISAL_LEVEL, zlib.DEFLATED, 15)
            return [z.compress(filtered.data), z.flush()]
        level, strategy = DEFLATE_STORED
    else:
        level, strategy = choose_deflate(filtered)
    z = _deflate.compressobj(level, zlib.DEFLATED, 15, 9, strategy)
    return [z.compress(filtered.data), z.flush()]


def png(hwc_uint8: np.ndarray) -> bytes:
    """A PNG of ``hwc_uint8``: (H, W) grey or (H, W, C) with C = 1, 2, 3 or 4.

    8 bits per sample, not interlaced, every row "Up"-filtered, deflated by ISA-L
    when installed, else as ``choose_deflate`` picks (see the module docstring for
    why not Pillow).

    Raises:
        TypeError: not a uint8 numpy array.
        ValueError: the wrong rank, channel count or an empty or oversized side.
    """
    a = hwc_uint8
    if not isinstance(a, np.ndarray) or a.dtype != np.uint8:
        raise TypeError(f"png: expected a uint8 numpy array, got {type(a).__name__}")
    if a.ndim == 2:
        a = a[:, :, None]
    if a.ndim != 3 or a.shape[2] not in _COLOUR_TYPE:
        raise ValueError(f"png: expected (H, W) or (H, W, 1..4), got shape {a.shape}")
    h, w, c = a.shape
    if not (0 < h <= MAX_SIDE and 0 < w <= MAX_SIDE):
        raise ValueError(f"png: width and height must be 1 to 2**31-1, got {w}x{h}")
    rows = a.reshape(h, w * c)
    # Each filtered row: its filter byte, then the row minus the row above (mod 256);
    # the row above the first is zeros (PNG spec 9.2), so the first row is itself.
    raw = np.empty((h, w * c + 1), np.uint8)
    raw[:, 0] = _FILTER_UP
    raw[0, 1:] = rows[0]
    np.subtract(rows[1:], rows[:-1], out=raw[1:, 1:])
    deflated = _compress(raw.reshape(-1))
    header = struct.pack(">IIBBBBB", w, h, 8, _COLOUR_TYPE[c], 0, 0, 0)
    parts = [PNG_SIGNATURE, *_chunk(b"IHDR", header)]
    if sum(len(d) for d in deflated) <= _IDAT_MAX:
        # The usual case: one IDAT straight from deflate's pieces; the PNG is the one copy.
        parts += _chunk(b"IDAT", *deflated)
    else:
        view = memoryview(b"".join(deflated))
        for off in range(0, len(view), _IDAT_MAX):
            parts += _chunk(b"IDAT", view[off : off + _IDAT_MAX])
    parts += _chunk(b"IEND")
    return b"".join(parts)


def gif(frames_thwc_uint8: np.ndarray, fps: float) -> bytes:
    """An animated GIF of ``frames_thwc_uint8`` (T, H, W, C) as torch's add_video writes it.

    Pillow quantizes each frame to an adaptive palette, drops frames identical
    to the one before (adding their durations) and loops forever.  Each frame
    lasts ``1/fps`` *milliseconds*: moviepy passes imageio a duration in
    seconds, which imageio's pillow plugin hands to Pillow, whose unit is the
    millisecond.  GIF stores delays in hundredths of a second, so for any
    fps above 0.1 the delay written is 0 and viewers play the GIF at their
    default speed: that is what torch 2.13 writes, and what this writes.

    C is 3 (RGB) or 4 (RGBA), or 2 (grey + alpha, written as grey), each
    frame passed to ``Image.fromarray`` as imageio does.

    Raises:
        TypeError: not a uint8 numpy array, or fps not a float.
        ValueError: the wrong shape, an empty frame, or a delay GIF cannot store.
    """
    from PIL import Image

    v = frames_thwc_uint8
    if not isinstance(v, np.ndarray) or v.dtype != np.uint8:
        raise TypeError(f"gif: expected a uint8 numpy array, got {type(v).__name__}")
    if v.ndim != 4 or v.shape[3] not in (2, 3, 4) or 0 in v.shape:
        raise ValueError(f"gif: expected (T, H, W, 2..4) frames, none empty, got {v.shape}")
    if v.shape[1] > 0xFFFF or v.shape[2] > 0xFFFF:
        raise ValueError(f"gif: frames of {v.shape[2]}x{v.shape[1]} exceed GIF's 65535")
    if type(fps) is not float:
        raise TypeError(f"gif: fps must be a float, got {type(fps).__name__}")
    duration = 1.0 / fps if fps == fps and fps > 0.0 else -1.0
    if not 0.0 <= duration * len(v) < MAX_GIF_DELAY_MS:
        raise ValueError(f"gif: fps {fps!r} gives frame delays GIF cannot store")
    images = [Image.fromarray(frame) for frame in v]
    out = io.BytesIO()
    kwargs: dict[str, Any] = {"format": "GIF", "duration": duration, "loop": 0}
    if len(images) > 1:  # imageio sets save_all only when there is more than one frame
        kwargs.update(save_all=True, append_images=images[1:])
    images[0].save(out, **kwargs)
    return out.getvalue()
