"""One-channel (grey) add_video: ``convert_image.video`` accepts it, ``encode_image.video``
writes the GIF tensorboardX 2.6.5 writes.

torch 2.13 cannot write a (N, T, 1, H, W) video (imageio refuses one channel);
tensorboardX's ``make_video`` repeats the channel into RGB before moviepy and
imageio, and keeps colorspace 1 in the summary.  For a matrix of batch sizes,
frame counts, dtypes and rates the encoder's Summary equals tensorboardX's
``summary.video`` field for field and the GIF byte for byte; the GIF decodes
(as TensorBoard's Pillow-based readers decode it) to grey frames equal to the
scaled source frames moviepy picks.  Three- and four-channel videos stay
torch's (``test_encode_image.py``).
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image, ImageSequence
from tensorboardX import summary as tbx_summary

from summaryd import convert_image
from summaryd.daemon import encode_image
from summaryd.errors import ArgumentValueError, ArgumentZeroDivisionError

from ..transport import through_ring

RNG = np.random.default_rng(11)


def quiet(fn: Callable[[], Any]) -> Any:
    """tensorboardX and moviepy warn about their own deprecations; not ours to report."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn()


def ours(v: Any, fps: Any) -> Any:
    (summary,) = encode_image.video("v", *through_ring(convert_image.video(v, fps)))
    return summary


def frames(data: bytes) -> tuple[list[np.ndarray], list[Any]]:
    """A GIF's frames as RGB arrays, and their durations."""
    im = Image.open(io.BytesIO(data))
    out, durations = [], []
    for f in ImageSequence.Iterator(im):
        out.append(np.asarray(f.convert("RGB")).copy())
        durations.append(f.info.get("duration"))
    return out, durations


GREY = [
    (1, 4, 1, 16, 16),
    (2, 3, 1, 8, 6),
    (3, 3, 1, 8, 8),  # padded to 4 videos
    (4, 5, 1, 5, 7),
    (1, 1, 1, 8, 8),  # one frame: a still GIF
    (9, 2, 1, 3, 2),
]


@pytest.mark.parametrize("fps", [4, 0.05, 30, 7.3], ids=str)
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.uint8], ids=lambda d: d.__name__)
@pytest.mark.parametrize("shape", GREY, ids=[str(s) for s in GREY])
def test_grey_video_is_tensorboardx_byte_for_byte(
    shape: tuple[int, ...], dtype: Any, fps: float
) -> None:
    # In [0, 1]: tensorboardX does not clip (values outside wrap in its uint8 cast).
    v = RNG.random(shape)
    v = (v * 255).astype(np.uint8) if dtype == np.uint8 else v.astype(dtype)
    ref = quiet(lambda: tbx_summary.video("v", v, fps=fps)).value[0]
    got = ours(v, fps).value[0]
    assert (got.tag, got.image.height, got.image.width, got.image.colorspace) == (
        ref.tag,
        ref.image.height,
        ref.image.width,
        1,
    )
    assert got.image.encoded_image_string == ref.image.encoded_image_string


def test_every_grey_level_survives() -> None:
    """All 256 levels in one frame (Pillow's palette holds them all): each decodes as itself."""
    u = np.arange(256, dtype=np.uint8).reshape(1, 1, 1, 16, 16).repeat(2, axis=1)
    u[0, 1] = u[0, 1, :, ::-1]
    data = ours(u, 4).value[0].image.encoded_image_string
    decoded, _ = frames(data)
    assert len(decoded) == 2
    for f, src in zip(decoded, u[0, :, 0], strict=True):
        np.testing.assert_array_equal(f, np.repeat(src[:, :, None], 3, axis=2))


def test_grey_frames_timing_and_grid_decode_as_the_source() -> None:
    """Frame count and durations as moviepy times them; each frame the grid of the scaled
    source frames (2 videos side by side), R = G = B."""
    v = RNG.random((2, 6, 1, 5, 4)).astype(np.float32)
    got = ours(v, 3).value[0]
    assert (got.image.height, got.image.width, got.image.colorspace) == (5, 8, 1)
    decoded, durations = frames(got.image.encoded_image_string)
    ref_frames, ref_durations = frames(
        quiet(lambda: tbx_summary.video("v", v, fps=3)).value[0].image.encoded_image_string
    )
    assert durations == ref_durations and len(decoded) == len(ref_frames)
    picked = encode_image.moviepy_frames(6, 3.0)
    scaled = encode_image.to_uint8(v)
    for f, ref, t in zip(decoded, ref_frames, picked, strict=True):
        np.testing.assert_array_equal(f, ref)
        grid = np.concatenate([scaled[0, t, 0], scaled[1, t, 0]], axis=1)
        np.testing.assert_array_equal(f, np.repeat(grid[:, :, None], 3, axis=2))


def test_grey_values_outside_0_1_are_clipped_as_torch_scales() -> None:
    """torch's scaling (clip), not tensorboardX's wrap-around: 1.5 is white, -0.5 black."""
    v = np.array([-0.5, 0.0, 0.5, 1.0, 1.5, np.inf], np.float32).reshape(1, 1, 1, 1, 6)
    (f,), _ = frames(ours(v, 4).value[0].image.encoded_image_string)
    np.testing.assert_array_equal(f[0, :, 0], [0, 0, 127, 255, 255, 255])


@pytest.mark.parametrize(
    "make",
    [
        lambda: torch.rand(2, 3, 1, 6, 6),
        lambda: torch.randint(0, 256, (1, 3, 1, 6, 6), dtype=torch.uint8),
        lambda: RNG.random((1, 2, 1, 4, 4)) > 0.5,
    ],
    ids=["torch", "torch-uint8", "bool"],
)
def test_grey_inputs_are_accepted(make: Callable[[], Any]) -> None:
    v = make()
    params, arrays = convert_image.video(v, 4)
    assert params == {"fps": 4.0} and arrays[0].shape[2] == 1
    ref = quiet(lambda: tbx_summary.video("v", v, fps=4)).value[0]
    assert ours(v, 4).value[0].image.encoded_image_string == ref.image.encoded_image_string


def test_grey_video_still_checked_as_torch_checks() -> None:
    """C = 1 changes nothing else: fps, empty frames and GIF's limits raise as for RGB."""
    with pytest.raises(ArgumentZeroDivisionError, match="fps"):
        convert_image.video(np.zeros((1, 2, 1, 4, 4)), 0)
    with pytest.raises(ArgumentValueError, match="vid_tensor"):
        convert_image.video(np.zeros((1, 2, 1, 0, 4)), 4)
    with pytest.raises(ArgumentValueError, match="vid_tensor"):
        convert_image.video(np.zeros((1, 1, 1, 1, 70000), np.uint8), 4)
    with pytest.raises(ArgumentValueError, match="fps"):
        convert_image.video(np.zeros((1, 2, 1, 4, 4)), 1e-7)
