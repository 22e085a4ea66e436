"""Differential: add_image, add_images, add_image_with_boxes, add_figure and add_video,
torch vs summaryd.

The same calls through ``torch.utils.tensorboard.SummaryWriter`` (into
``tmp_path/torch``) and ``summaryd.SummaryWriter`` with a real daemon (into
``tmp_path/ours``); both trees are read by TensorBoard and compared:

* event by event (``compare.py``'s reading and normalisation: live wall times
  normalised, explicit ones equal to the bit), every field byte-equal after
  re-serialization except ``Summary.Image.encoded_image_string``, which is
  replaced on both sides by what it decodes to (mode, size, frames' pixels,
  per-frame durations): summaryd's PNGs are its own bytes (``media.png``);
  its GIFs are also checked byte for byte;
* as TensorBoard serves them: ``EventAccumulator``'s images (step, size,
  decoded pixels) and the data provider's ``images`` blob sequences (the
  plugin's width, height and image blobs, decoded).

Every bad-input case of ``tests/unit/convert_image_cases.py`` also goes
through both real writers: summaryd raises an instance of what torch raises
and the rejected calls leave no trace.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from PIL import Image, ImageSequence  # noqa: E402
from torch.utils.tensorboard import SummaryWriter as TorchWriter  # noqa: E402

from summaryd import SummaryWriter as OurWriter  # noqa: E402

from ..conftest import DaemonEnv  # noqa: E402
from ..unit import convert_image_cases as bad  # noqa: E402
from .compare import LIVE, Clock, accumulate, normalise, read_tree  # noqa: E402
from .compare import run_both as run_both_in_both_writers

pytestmark = [pytest.mark.differential, pytest.mark.integration]

Calls = Callable[[Any], None]

# Explicit wall times, far outside any test's time window (see compare.Clock).
WT = 1_234_567_890.25
WT2 = 1_000_000_000.5


RUNTIME = [("", RuntimeWarning)]  # numpy's casts in torch's trainer (NaN, overflow, complex)


def run_both(tmp_path: Path, calls: Calls) -> tuple[Path, Path]:
    return run_both_in_both_writers(tmp_path, calls, ignore=RUNTIME)


# -- decoding ---------------------------------------------------------------------------------


def decoded(data: bytes) -> tuple[str, tuple[int, int], int, list[Any], str]:
    """What an encoded image shows: mode, size, frame count, per-frame durations and a
    digest of every frame's pixels (GIF palettes resolved to RGBA)."""
    im = Image.open(io.BytesIO(data))
    digest = hashlib.sha256()
    durations = []
    n = 0
    for frame in ImageSequence.Iterator(im):
        px = np.asarray(frame.convert("RGBA") if frame.mode == "P" else frame)
        digest.update(repr(px.shape).encode() + px.tobytes())
        durations.append(frame.info.get("duration"))
        n += 1
    return im.mode, im.size, n, durations, digest.hexdigest()


def _pixels_normalised(ev: Any) -> tuple[Any, list[Any]]:
    """``ev`` with each image's bytes cleared, and what those bytes decoded to."""
    e = type(ev)()
    e.CopyFrom(ev)
    shown = []
    for v in e.summary.value:
        if v.HasField("image"):
            shown.append((v.tag, decoded(v.image.encoded_image_string)))
            v.image.encoded_image_string = b""
    return e, shown


def assert_image_trees_equal(torch_root: Path, ours_root: Path, clock: Clock) -> list[Any]:
    """Same runs, files and events as TensorBoard reads them, images compared decoded."""
    ref, ours = read_tree(torch_root, natural_order=True), read_tree(ours_root)
    assert sorted(ours) == sorted(ref)
    shown_all = []
    for rel in sorted(ref):
        assert len(ours[rel].files) == len(ref[rel].files)
        r_events = [e for evs in ref[rel].events for e in evs]
        o_events = [e for evs in ours[rel].events for e in evs]
        assert len(o_events) == len(r_events), (len(r_events), len(o_events))
        for i, (r, o) in enumerate(zip(r_events, o_events, strict=True)):
            r_e, r_shown = _pixels_normalised(r)
            o_e, o_shown = _pixels_normalised(o)
            assert o_shown == r_shown, f"run {rel!r} event {i}: decoded images differ"
            assert normalise(o_e, clock) == normalise(r_e, clock), f"run {rel!r} event {i}"
            shown_all += r_shown
    return shown_all


def _wt(t: float, clock: Clock) -> str:
    return LIVE if clock.is_live(t) else repr(t)


def accumulator_images(run_dir: Path, clock: Clock) -> dict[str, Any]:
    acc = accumulate(run_dir)
    return {
        tag: [
            (_wt(e.wall_time, clock), e.step, e.width, e.height, decoded(e.encoded_image_string))
            for e in acc.Images(tag)
        ]
        for tag in sorted(acc.Tags()["images"])
    }


def provider_images(run_dir: Path, clock: Clock) -> dict[Any, Any]:
    """The images plugin's blob sequences: [width, height, image...] per step."""
    from tensorboard import context as tb_context
    from tensorboard.backend.event_processing import data_provider
    from tensorboard.backend.event_processing import plugin_event_multiplexer as pem

    mux = pem.EventMultiplexer()
    mux.AddRunsFromDirectory(str(run_dir))
    mux.Reload()
    provider = data_provider.MultiplexerDataProvider(mux, str(run_dir))
    ctx = tb_context.RequestContext()
    series = provider.read_blob_sequences(
        ctx, experiment_id="", plugin_name="images", downsample=10_000, run_tag_filter=None
    )
    out: dict[Any, Any] = {}
    for run, by_tag in sorted(series.items()):
        for tag, data in sorted(by_tag.items()):
            rows = []
            for d in data:
                blobs = [provider.read_blob(ctx, blob_key=ref.blob_key) for ref in d.values]
                rows.append(
                    (_wt(d.wall_time, clock), d.step, blobs[:2], [decoded(b) for b in blobs[2:]])
                )
            out[(run, tag)] = rows
    return out


def compare(tmp_path: Path, calls: Calls) -> list[Any]:
    clock = Clock()
    tr, ours = run_both(tmp_path, calls)
    shown = assert_image_trees_equal(tr, ours, clock)
    assert accumulator_images(ours, clock) == accumulator_images(tr, clock)
    assert provider_images(ours, clock) == provider_images(tr, clock)
    return shown


# -- add_image, add_images, add_figure -------------------------------------------------------

_rng = np.random.default_rng(11)


def _photo(c: int, h: int, w: int) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.stack([0.5 + 0.4 * np.sin(x / (3 + k) + y / 7) for k in range(c)])
    return (img + _rng.normal(0, 0.05, img.shape)).astype(np.float32)  # a little out of [0, 1]


def test_images(shared_daemon: DaemonEnv, tmp_path: Path) -> None:
    f = _photo(3, 48, 64)
    f[0, 0, :3] = [np.nan, np.inf, -np.inf]
    hwc = (np.nan_to_num(f.transpose(1, 2, 0)).clip(0, 1) * 255).astype(np.uint8)
    rgba, la = _photo(4, 20, 30), _photo(2, 20, 30)
    bf16 = torch.rand(1, 20, 30, dtype=torch.bfloat16)
    batch = np.stack([_photo(3, 16, 16) for _ in range(11)])
    nhwc = _rng.integers(0, 256, (3, 16, 12, 3), dtype=np.uint8)
    grey = torch.rand(5, 1, 8, 8)

    def calls(w: Any) -> None:
        w.add_image("image/chw", f, 0)
        w.add_image("image/chw", f[::-1].copy(), 1, walltime=WT)
        w.add_image("image/torch", torch.from_numpy(f), 2)
        w.add_image("image/hwc-uint8", hwc, 3, dataformats="HWC")
        w.add_image("image/hw", f[0], 4, dataformats="HW")
        w.add_image("image/wh-lower", f[1], 4, dataformats="wh")
        w.add_image("image/rgba", rgba, 5, WT2)
        w.add_image("image/grey-alpha", la, 5)
        w.add_image("image/one-channel", bf16, 6)
        w.add_image("image/float64-ints", np.arange(600.0).reshape(1, 20, 30) % 3, 6)
        w.add_images("images/nchw", batch, 7)
        w.add_images("images/nhwc-uint8", nhwc, 8, dataformats="NHWC")
        w.add_images("images/grey", grey, 9, walltime=WT)

    shown = compare(tmp_path, calls)
    assert len(shown) == 13
    assert {mode for _, (mode, *_rest) in shown} == {"RGB", "RGBA", "LA"}


def test_a_large_image_travels_in_a_blob(shared_daemon: DaemonEnv, tmp_path: Path) -> None:
    """A 3x640x640 float32 image is 4.9 MB: beyond a quarter of the 16 MiB ring, a one-off
    blob (its float16 half goes through the ring)."""
    big = _photo(3, 640, 640)

    def calls(w: Any) -> None:
        w.add_image("big", big, 0)
        w.add_image("big", torch.from_numpy(big).half(), 1)

    compare(tmp_path, calls)


def test_figures(shared_daemon: DaemonEnv, tmp_path: Path) -> None:
    def figure(seed: int) -> Any:
        fig, ax = plt.subplots(figsize=(3, 2), dpi=60)
        ax.plot(np.random.default_rng(seed).random(30), label="loss")
        ax.legend()
        ax.set_title(f"figure {seed} ü")
        return fig

    def calls(w: Any) -> None:
        w.add_figure("figure/one", figure(0), 0)
        w.add_figure("figure/kept", figure(1), 1, close=False, walltime=WT)
        w.add_figure("figure/list", [figure(2), figure(3), figure(4)], 2)

    compare(tmp_path, calls)
    plt.close("all")


# -- add_image_with_boxes ------------------------------------------------------------------------


def test_image_with_boxes(shared_daemon: DaemonEnv, tmp_path: Path) -> None:
    img = _photo(3, 60, 80)
    boxes = np.array([[5, 6, 40, 30], [30.5, 20, 75, 55]], np.float32)
    img_t, boxes_t = torch.from_numpy(img), torch.from_numpy(boxes)
    img_u8 = (img * 255).clip(0, 255).astype(np.uint8)
    rgba = _photo(4, 30, 40).transpose(1, 2, 0)
    far = np.array([[3, np.nan, 1e30, 20]])

    def calls(w: Any) -> None:
        w.add_image_with_boxes("boxes/plain", img, boxes, 0)
        w.add_image_with_boxes("boxes/labels", img, boxes, 1, labels=["cat", "dog ünï"])
        w.add_image_with_boxes("boxes/labels", img, boxes, 2, WT, labels=["a", ""])
        w.add_image_with_boxes("boxes/one-label", img, boxes[:1], 3, labels="solo")
        w.add_image_with_boxes("boxes/dropped-labels", img, boxes, 3, labels=["only one"])
        w.add_image_with_boxes("boxes/rescale", img, boxes, 4, rescale=1.5, labels=["x", "y"])
        w.add_image_with_boxes("boxes/shrink", img_t, boxes_t, 4, rescale=0.5)
        w.add_image_with_boxes("boxes/int", img_u8, boxes.astype(np.int64), 5, labels=["i", "j"])
        w.add_image_with_boxes("boxes/hwc-rgba", rgba, boxes / 2, 6, dataformats="HWC")
        w.add_image_with_boxes("boxes/none", img, np.zeros((0, 4)), 7)
        w.add_image_with_boxes("boxes/far", img, far, 8)

    compare(tmp_path, calls)


# -- add_video -------------------------------------------------------------------------------------


def test_videos(shared_daemon: DaemonEnv, tmp_path: Path) -> None:
    def video(n: int, t: int, c: int, h: int, w: int) -> np.ndarray:
        base = np.stack([_photo(c, h, w) for _ in range(n)])
        return np.stack([np.roll(base, k, axis=-1) for k in range(t)], axis=1)

    v1, v2, v3, v5 = (
        video(1, 4, 3, 16, 16),
        video(2, 3, 3, 12, 10),
        video(1, 3, 3, 8, 8),
        video(5, 2, 3, 8, 8),
    )
    v_u8 = (video(1, 3, 3, 8, 8).clip(0, 1) * 255).astype(np.uint8)
    v_rgba, v_t = video(1, 2, 4, 8, 8), torch.from_numpy(video(3, 2, 3, 8, 8))

    def calls(w: Any) -> None:
        w.add_video("video/default", v1, 0)
        w.add_video("video/fps", v2, 1, fps=30, walltime=WT)
        w.add_video("video/slow", v3, 2, fps=0.05)
        w.add_video("video/grid", v5, 3, fps=3)
        w.add_video("video/uint8", v_u8, 4)
        w.add_video("video/rgba", v_rgba, 5)
        w.add_video("video/torch", v_t, 6, fps=np.float64(7.5))
        w.add_video("video/still", np.zeros((1, 3, 3, 8, 8), np.float32), 7)

    clock = Clock()
    tr, ours = run_both(tmp_path, calls)
    assert_image_trees_equal(tr, ours, clock)
    # GIFs are Pillow's bytes for the same frames: byte for byte
    ref_tree, our_tree = read_tree(tr, natural_order=True), read_tree(ours)
    r = [v for evs in ref_tree["."].events for e in evs for v in e.summary.value]
    o = [v for evs in our_tree["."].events for e in evs for v in e.summary.value]
    assert [v.image.encoded_image_string for v in o] == [v.image.encoded_image_string for v in r]
    assert accumulator_images(ours, clock) == accumulator_images(tr, clock)
    assert provider_images(ours, clock) == provider_images(tr, clock)


def test_grey_videos_match_tensorboardx(shared_daemon: DaemonEnv, tmp_path: Path) -> None:
    """One channel: torch cannot write it; summaryd writes what tensorboardX 2.6.5 writes
    (frames repeated into RGB, colorspace 1).  Both trees read by TensorBoard: the same
    image fields and GIF bytes, frames, frame count and durations as decoded."""
    from tensorboardX import SummaryWriter as TbxWriter

    def grey(n: int, t: int, h: int, w: int) -> np.ndarray:
        # in [0, 1]: tensorboardX does not clip (a value outside wraps in its uint8 cast)
        base = np.stack([_photo(1, h, w) for _ in range(n)]).clip(0, 1)
        return np.stack([np.roll(base, k, axis=-1) for k in range(t)], axis=1)

    g1, g2, g3, g4, g5 = (
        grey(1, 4, 16, 16),
        grey(2, 3, 12, 10),
        grey(1, 3, 8, 8),
        grey(3, 2, 8, 8),  # padded to 4 videos
        grey(1, 40, 4, 4),
    )
    g_u8 = (grey(1, 3, 8, 8) * 255).astype(np.uint8)
    g_t = torch.from_numpy(grey(2, 3, 6, 10))

    def calls(w: Any) -> None:
        w.add_video("grey/default", g1, 0)
        w.add_video("grey/fps", g2, 1, fps=30, walltime=WT)
        w.add_video("grey/slow", g3, 2, fps=0.05)
        w.add_video("grey/grid", g4, 3, fps=3)
        w.add_video("grey/uint8", g_u8, 4)
        w.add_video("grey/torch", g_t, 5, fps=7.5)
        w.add_video("grey/still", np.zeros((1, 1, 1, 8, 8), np.float32), 6)
        w.add_video("grey/long", g5, 7, fps=3)

    clock = Clock()
    tbx, ours = tmp_path / "tbx", tmp_path / "ours"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tensorboardX's and moviepy's own deprecations
        w = TbxWriter(str(tbx))
        calls(w)
        w.close()
    with OurWriter(str(ours)) as w:
        calls(w)

    def shown(root: Path) -> list[Any]:
        return [
            (
                e.step,
                _wt(e.wall_time, clock),
                v.tag,
                (v.image.height, v.image.width, v.image.colorspace),
                decoded(v.image.encoded_image_string),
                hashlib.sha256(v.image.encoded_image_string).hexdigest(),
            )
            for evs in read_tree(root)["."].events
            for e in evs
            for v in e.summary.value
        ]

    ref = shown(tbx)
    assert len(ref) == 8 and {c[3][2] for c in ref} == {1}
    assert shown(ours) == ref
    assert accumulator_images(ours, clock) == accumulator_images(tbx, clock)
    assert provider_images(ours, clock) == provider_images(tbx, clock)


# -- bad input -------------------------------------------------------------------------------------


def test_bad_input_raises_what_torch_raises_and_leaves_no_trace(
    shared_daemon: DaemonEnv, tmp_path: Path
) -> None:
    """Every bad call of the unit tests, through the real writers, then one good image."""
    failures = []
    clock = Clock()
    roots = tmp_path / "torch", tmp_path / "ours"
    writers = [TorchWriter(str(roots[0])), OurWriter(str(roots[1]))]
    for param in bad.BAD_CALLS:
        call, arg = param.values
        outcomes = []
        for w in writers:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                try:
                    call(w)
                    outcomes.append(None)
                except Exception as exc:
                    outcomes.append(exc)
        ref, ours = outcomes
        if ref is None or not isinstance(ours, bad._expected_type(ref)) or arg not in str(ours):
            failures.append((param.id, repr(ref), repr(ours)))
    for w in writers:
        w.add_image("good", np.zeros((3, 4, 4), np.float32), 1, walltime=WT)
        w.close()
    plt.close("all")
    assert not failures
    assert_image_trees_equal(*roots, clock)
