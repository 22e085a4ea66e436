"""``daemon/media.py``: PNG decodes to exactly the pixels given; GIF is Pillow's bytes as
imageio's pillow plugin (torch's add_video path) writes them.

PNG is checked by decoding with Pillow (and its ``verify``, which checks every
chunk's CRC), over modes, sizes, contents and layouts; a multi-IDAT file by
shrinking the chunk limit.  GIF against imageio itself, called as moviepy
1.0.3 calls it.
"""

from __future__ import annotations

import io
import struct
import zlib
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis.extra import numpy as hnp
from PIL import Image, ImageSequence

from summaryd.daemon import media


def decode_png(data: bytes) -> tuple[str, np.ndarray]:
    Image.open(io.BytesIO(data)).verify()
    im = Image.open(io.BytesIO(data))
    return im.mode, np.asarray(im)


MODES = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}


@pytest.fixture(params=["isal", "zlib-ng"])
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each PNG test that takes it runs with ISA-L's deflate (when installed) and without."""
    if request.param == "isal" and media._isal is None:
        pytest.skip("the isal package is not installed")
    if request.param == "zlib-ng":
        monkeypatch.setattr(media, "_isal", None)
    return str(request.param)


@pytest.mark.parametrize("channels", [None, 1, 2, 3, 4])
@pytest.mark.parametrize("shape", [(1, 1), (5, 7), (64, 3), (2, 300), (129, 65)])
def test_png_decodes_to_the_pixels(
    shape: tuple[int, int], channels: int | None, backend: str
) -> None:
    rng = np.random.default_rng(sum(shape))
    full = shape if channels is None else (*shape, channels)
    for a in (
        rng.integers(0, 256, full, dtype=np.uint8),  # noise
        np.zeros(full, np.uint8),
        np.full(full, 255, np.uint8),
        (np.arange(np.prod(full)) % 251).astype(np.uint8).reshape(full),  # wraps in "Up"
    ):
        mode, px = decode_png(media.png(a))
        assert mode == MODES[channels or 1]
        np.testing.assert_array_equal(px, a.reshape(px.shape))


def test_png_takes_any_layout(backend: str) -> None:
    rng = np.random.default_rng(0)
    chw = rng.integers(0, 256, (3, 40, 50), dtype=np.uint8)
    hwc = chw.transpose(1, 2, 0)  # not contiguous
    assert not hwc.flags.c_contiguous
    np.testing.assert_array_equal(decode_png(media.png(hwc))[1], hwc)
    ro = np.frombuffer(hwc.tobytes(), np.uint8).reshape(hwc.shape)  # read-only, as the ring's
    np.testing.assert_array_equal(decode_png(media.png(ro))[1], hwc)
    np.testing.assert_array_equal(decode_png(media.png(hwc[::2, ::3]))[1], hwc[::2, ::3])


def test_png_splits_large_data_into_idat_chunks(
    monkeypatch: pytest.MonkeyPatch, backend: str
) -> None:
    monkeypatch.setattr(media, "_IDAT_MAX", 100)
    a = np.random.default_rng(1).integers(0, 256, (30, 40, 3), dtype=np.uint8)
    data = media.png(a)
    assert data.count(b"IDAT") > 10
    np.testing.assert_array_equal(decode_png(data)[1], a)


def test_png_layout_is_what_the_docstring_says() -> None:
    """Signature, IHDR (8-bit, colour type, no interlace), every row "Up"-filtered, IEND."""
    a = np.arange(24, dtype=np.uint8).reshape(2, 4, 3)
    data = media.png(a)
    assert data.startswith(media.PNG_SIGNATURE)
    length, kind = struct.unpack(">I4s", data[8:16])
    assert (length, kind) == (13, b"IHDR")
    assert struct.unpack(">IIBBBBB", data[16:29]) == (4, 2, 8, 2, 0, 0, 0)
    idat_len = struct.unpack(">I", data[33:37])[0]
    raw = zlib.decompress(data[41 : 41 + idat_len])
    rows = np.frombuffer(raw, np.uint8).reshape(2, 13)
    assert list(rows[:, 0]) == [2, 2]
    assert data.endswith(b"IEND\xaeB`\x82")


@pytest.mark.parametrize(
    ("arg", "exc"),
    [
        (np.zeros((2, 2, 3), np.float32), TypeError),
        ([[0, 1]], TypeError),
        (np.zeros((2, 2, 5), np.uint8), ValueError),
        (np.zeros((2, 2, 3, 1), np.uint8), ValueError),
        (np.zeros((4,), np.uint8), ValueError),
        (np.zeros((0, 2, 3), np.uint8), ValueError),
        (np.zeros((2, 0), np.uint8), ValueError),
    ],
)
def test_png_refuses(arg: Any, exc: type[Exception]) -> None:
    with pytest.raises(exc):
        media.png(arg)


@settings(max_examples=200, deadline=None)
@given(a=hnp.arrays(np.uint8, hnp.array_shapes(min_dims=2, max_dims=3, min_side=1, max_side=9)))
def test_png_round_trips_anything(a: np.ndarray) -> None:
    if a.ndim == 3 and a.shape[2] > 4:
        with pytest.raises(ValueError):
            media.png(a)
        return
    px = decode_png(media.png(a))[1]
    np.testing.assert_array_equal(px, a.reshape(px.shape))


# -- the deflate strategy, chosen per image ---------------------------------------------------


def _image_classes() -> dict[str, np.ndarray]:
    """One image of each kind the choice must handle; the large ones above ``_LOOK_MIN``."""
    rng = np.random.default_rng(7)
    h = w = 192
    y, x = np.mgrid[0:h, 0:w] / w
    smooth = (np.stack([x, y, (x + y) / 2], -1) * 255).astype(np.uint8)
    blurred = rng.normal(0, 1, (h, w, 3))
    for _ in range(4):  # box blur: smoothed noise, a stand-in for a photo
        blurred = (blurred + np.roll(blurred, 1, 0) + np.roll(blurred, -1, 0)) / 3
        blurred = (blurred + np.roll(blurred, 1, 1) + np.roll(blurred, -1, 1)) / 3
    natural = ((blurred - blurred.min()) / np.ptp(blurred) * 255).astype(np.uint8)
    flat = np.full((h, w, 3), 200, np.uint8)
    flat[40:90, 50:120] = (10, 50, 90)
    flat[rng.random((h, w)) < 0.01] = 0
    mask = np.kron(rng.integers(0, 8, (h // 16, w // 16)), np.ones((16, 16), int))
    return {
        "smooth": smooth,
        "natural": natural,
        "noise": rng.integers(0, 256, (h, w, 3), dtype=np.uint8),
        "gaussian_noise": np.clip(rng.normal(128, 20, (h, w, 3)), 0, 255).astype(np.uint8),
        "half_noise_half_flat": np.concatenate(
            [rng.integers(0, 256, (h // 2, w, 3), dtype=np.uint8), flat[h // 2 :]]
        ),
        "mostly_constant": flat,
        "segmentation": rng.integers(0, 256, (8, 3), dtype=np.uint8)[mask],
        "rgba_natural": np.concatenate([natural, np.full((h, w, 1), 255, np.uint8)], -1),
        "rgba_noise": rng.integers(0, 256, (h, w, 4), dtype=np.uint8),
        "grey_noise": rng.integers(0, 256, (h, 2 * w), dtype=np.uint8),
        "half_noise_half_smooth": np.concatenate([smooth[: h // 2], natural[h // 2 :]]),
        "tiny_noise": rng.integers(0, 256, (8, 8, 3), dtype=np.uint8),
        "tiny_smooth": smooth[:64:4, :64:4].copy(),
    }


IMAGE_CLASSES = _image_classes()


def _filtered(a: np.ndarray) -> np.ndarray:
    """The flat Up-filtered rows ``media.png`` deflates (read back from its own output)."""
    data = media.png(a)
    idat = b"".join(
        data[off + 8 : off + 8 + struct.unpack(">I", data[off : off + 4])[0]]
        for off in range(8, len(data))
        if data[off + 4 : off + 8] == b"IDAT"
    )
    return np.frombuffer(zlib.decompress(idat), np.uint8)


@pytest.mark.parametrize("name", sorted(IMAGE_CLASSES))
def test_png_each_image_class_decodes_to_the_pixels(name: str, backend: str) -> None:
    a = IMAGE_CLASSES[name]
    mode, px = decode_png(media.png(a))
    assert mode == MODES[1 if a.ndim == 2 else a.shape[2]]
    np.testing.assert_array_equal(px, a.reshape(px.shape))


@pytest.mark.parametrize("name", sorted(IMAGE_CLASSES))
def test_png_choice_is_deterministic(name: str, backend: str) -> None:
    a = IMAGE_CLASSES[name]
    raw = _filtered(a)
    assert media.choose_deflate(raw) == media.choose_deflate(raw.copy())
    assert media.png(a) == media.png(a.copy()) == media.png(a)


@pytest.mark.parametrize(
    ("name", "how"),
    [
        ("noise", media.DEFLATE_STORED),  # uniform: nothing to save
        ("rgba_noise", media.DEFLATE_STORED),
        ("grey_noise", media.DEFLATE_STORED),
        ("gaussian_noise", media.DEFLATE_HUFFMAN),
        ("natural", media.DEFLATE_HUFFMAN),
        ("rgba_natural", media.DEFLATE_HUFFMAN),
        ("smooth", media.DEFLATE_LZ),
        ("segmentation", media.DEFLATE_LZ),
        ("mostly_constant", media.DEFLATE_RLE),
        ("tiny_noise", media.DEFLATE_RLE),  # too small to be worth a look
        ("tiny_smooth", media.DEFLATE_RLE),
    ],
)
def test_png_choice_by_image_class(name: str, how: tuple[int, int]) -> None:
    assert media.choose_deflate(_filtered(IMAGE_CLASSES[name])) == how


@pytest.mark.parametrize("name", sorted(IMAGE_CLASSES))
def test_png_choice_is_never_much_larger_than_rle(name: str) -> None:
    """The choice trades no more than 10 % of size against ``Z_RLE`` (the one setting before)."""
    raw = _filtered(IMAGE_CLASSES[name])
    sizes = {}
    for how in (media.choose_deflate(raw), media.DEFLATE_RLE):
        z = media._deflate.compressobj(how[0], zlib.DEFLATED, 15, 9, how[1])
        sizes[how] = len(z.compress(raw.data)) + len(z.flush())
    assert sizes[media.choose_deflate(raw)] <= 1.1 * sizes[media.DEFLATE_RLE]


@pytest.mark.parametrize("name", sorted(IMAGE_CLASSES))
def test_png_is_stored_only_where_huffman_saves_under_three_percent(
    name: str, backend: str
) -> None:
    """Stored blocks cost no CPU but give up what Huffman-only would save: only on rows
    where that is under 3 % (uniform noise), and never on half-compressible images."""
    raw = _filtered(IMAGE_CLASSES[name])
    z = media._deflate.compressobj(1, zlib.DEFLATED, 15, 9, zlib.Z_HUFFMAN_ONLY)
    huffman = len(z.compress(raw.data)) + len(z.flush())
    if media.choose_deflate(raw) == media.DEFLATE_STORED:
        assert huffman > 0.97 * len(raw)
        assert len(media.png(IMAGE_CLASSES[name])) < 1.001 * len(raw) + 100
    elif len(raw) >= media._LOOK_MIN:
        assert huffman < 0.97 * len(raw)


@pytest.mark.parametrize("name", ["noise", "smooth", "mostly_constant", "tiny_noise"])
def test_png_choice_works_with_the_standard_librarys_zlib(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without the zlib-ng package ``media`` falls back to zlib, which has the same strategies."""
    monkeypatch.setattr(media, "_deflate", zlib)
    monkeypatch.setattr(media, "_isal", None)
    a = IMAGE_CLASSES[name]
    np.testing.assert_array_equal(decode_png(media.png(a))[1], a)
    if name == "noise":
        assert media.choose_deflate(_filtered(a)) == media.DEFLATE_STORED


# -- GIF -------------------------------------------------------------------------------------


def imageio_gif(frames: np.ndarray, fps: float) -> bytes:
    """What moviepy 1.0.3's ``write_gif_with_image_io`` makes imageio 2.x write."""
    import imageio

    buf = io.BytesIO()
    writer = imageio.save(
        buf, format="GIF", duration=1.0 / fps, quantizer=0, palettesize=256, loop=0
    )
    for frame in frames:
        writer.append_data(frame)
    writer.close()
    return buf.getvalue()


@pytest.mark.parametrize("fps", [4.0, 30.0, 0.05, 0.01])
@pytest.mark.parametrize(
    "shape", [(1, 8, 8, 3), (3, 8, 8, 3), (4, 16, 9, 4), (2, 6, 6, 2), (5, 33, 17, 3)]
)
def test_gif_is_imageios(shape: tuple[int, ...], fps: float) -> None:
    rng = np.random.default_rng(len(shape) + shape[0])
    frames = rng.integers(0, 256, shape, dtype=np.uint8)
    frames[1:2] = frames[0]  # an identical frame: Pillow merges it into the one before
    ours = media.gif(frames, fps)
    assert ours == imageio_gif(frames, fps)
    im = Image.open(io.BytesIO(ours))
    assert im.size == (shape[2], shape[1])
    assert im.n_frames == shape[0] - (shape[0] > 1)


def test_gif_durations_follow_torchs_unit_mixup() -> None:
    """1/fps *milliseconds*: 0 cs above 0.1 fps; 0.05 fps -> 20 ms; merged frames add up."""
    frames = np.random.default_rng(3).integers(0, 256, (3, 4, 4, 3), dtype=np.uint8)
    for fps, want in ((4.0, 0), (0.05, 20), (0.01, 100)):
        im = Image.open(io.BytesIO(media.gif(frames, fps)))
        durations = [f.info.get("duration", 0) for f in ImageSequence.Iterator(im)]
        assert durations[1:] == [want, want], (fps, durations)
    frames[1] = frames[0]
    im = Image.open(io.BytesIO(media.gif(frames, 0.05)))
    assert im.n_frames == 2


@pytest.mark.parametrize(
    ("frames", "fps", "exc"),
    [
        (np.zeros((2, 4, 4, 3), np.float32), 4.0, TypeError),
        (np.zeros((2, 4, 4, 3), np.uint8), 4, TypeError),
        (np.zeros((2, 4, 4, 1), np.uint8), 4.0, ValueError),
        (np.zeros((2, 4, 4, 5), np.uint8), 4.0, ValueError),
        (np.zeros((0, 4, 4, 3), np.uint8), 4.0, ValueError),
        (np.zeros((2, 0, 4, 3), np.uint8), 4.0, ValueError),
        (np.zeros((4, 4, 3), np.uint8), 4.0, ValueError),
        (np.zeros((1, 1, 70000, 3), np.uint8), 4.0, ValueError),
        (np.zeros((2, 4, 4, 3), np.uint8), 0.0, ValueError),
        (np.zeros((2, 4, 4, 3), np.uint8), -4.0, ValueError),
        (np.zeros((2, 4, 4, 3), np.uint8), float("nan"), ValueError),
        (np.zeros((2, 4, 4, 3), np.uint8), 1e-6, ValueError),
    ],
)
def test_gif_refuses(frames: Any, fps: Any, exc: type[Exception]) -> None:
    with pytest.raises(exc):
        media.gif(frames, fps)


def test_png_with_either_deflate(monkeypatch: pytest.MonkeyPatch) -> None:
    """The standard library's zlib and zlib-ng (when installed) write the same format."""
    monkeypatch.setattr(media, "_isal", None)
    a = np.random.default_rng(5).integers(0, 256, (33, 20, 3), dtype=np.uint8)
    modules = [zlib]
    try:
        from zlib_ng import zlib_ng

        modules.append(zlib_ng)
    except ImportError:  # pragma: no cover - depends on the installation
        pass
    for module in modules:
        monkeypatch.setattr(media, "_deflate", module)
        np.testing.assert_array_equal(decode_png(media.png(a))[1], a)
