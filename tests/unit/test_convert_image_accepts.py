"""What the image-family conversions accept, as torch does.

Inputs at the edge of what torch accepts are accepted; box labels are resolved
and dataformats made canonical as torch draws them; the fast path hands the
caller's array on untouched; a figure's pixels are torch's; and importing
``convert_image`` stays light.
"""

from __future__ import annotations

import fractions
import subprocess
import sys
import warnings

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from summaryd import convert_image  # noqa: E402

from .convert_image_cases import BOX, IMG, VID, OurConversions, _box, _fig

# -- accepted --------------------------------------------------------------------------------


def test_edge_inputs_torch_accepts_are_accepted() -> None:
    ours = OurConversions()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ComplexWarning, as torch
        ours.add_image("i", IMG, dataformats="chw")
        ours.add_image("i", IMG, dataformats="CHX")
        ours.add_image("i", IMG, dataformats=np.str_("CHW"))
        ours.add_image("i", np.zeros((4, 5, 2)), dataformats="HWC")
        ours.add_image("i", np.zeros((4, 5, 4)), dataformats="HWC")
        ours.add_image("i", np.ones((3, 2, 2), np.complex64))
        ours.add_image("i", np.ones((3, 2, 2), dtype=object))
        ours.add_image("i", np.full((3, 2, 2), "0.5"))
        ours.add_image("i", np.ones((3, 2, 2), "M8[s]"))
        ours.add_image("i", torch.ones(3, 2, 2, dtype=torch.bfloat16))
        ours.add_image("i", torch.ones(2, 3, 4).transpose(0, 1))
        ours.add_images("i", np.zeros((9, 1, 2, 2)))
        ours.add_images("i", np.zeros((9, 2, 2, 3)), dataformats="nhwc")
        ours.add_image_with_boxes("b", IMG, np.zeros((0, 3)), labels=["a"])
        ours.add_image_with_boxes("b", IMG, np.zeros((0, 4, 2)))
        ours.add_image_with_boxes("b", IMG, np.array([["1", "2", "3", "4"]])[:0])
        ours.add_image_with_boxes("b", IMG, BOX, labels=["a", "b"])  # count differs: dropped
        ours.add_image_with_boxes("b", IMG, BOX, labels="single")
        ours.add_image_with_boxes("b", IMG, BOX, labels=(b"bytes",))
        ours.add_image_with_boxes("b", IMG, BOX, labels=np.array(["np"]))
        ours.add_image_with_boxes("b", IMG, BOX, labels=[None])
        ours.add_image_with_boxes("b", IMG, BOX, labels=[0])
        ours.add_image_with_boxes("b", IMG, BOX, labels={0: "dict"})
        ours.add_image_with_boxes("b", IMG, _box(1e30, np.nan, np.inf, 15))
        ours.add_image_with_boxes("b", IMG, _box(1, 2, 3, 4, dtype=np.complex128), labels=["c"])
        ours.add_image_with_boxes("b", IMG, _box(1, 2, 3, 4, dtype=object))
        ours.add_image_with_boxes("b", IMG, _box(2**62, 2, 3, 2**62, dtype=np.int64), labels=["c"])
        ours.add_image_with_boxes("b", IMG, _box(1, 2, 20, 15, dtype=np.uint8), labels=["ok"])
        ours.add_image_with_boxes("b", IMG, BOX, rescale=True)
        ours.add_image_with_boxes("b", IMG, BOX, rescale=np.float32(1.5))
        ours.add_image_with_boxes("b", IMG, BOX, rescale=torch.tensor(0.5))
        ours.add_image_with_boxes("b", np.zeros((1, 1, 1)), BOX, rescale="1")
        ours.add_image_with_boxes(
            "b", torch.zeros(2, 3, 4, 4), torch.ones(1, 4), dataformats="NCHW"
        )
        ours.add_video("v", VID, fps=fractions.Fraction(5, 2))
        ours.add_video("v", VID, fps=torch.tensor(4.0))
        ours.add_video("v", VID, fps=np.float32(3))
        ours.add_video("v", VID, fps=True)
        ours.add_video("v", VID, fps=1e300)
        ours.add_video("v", np.zeros((3, 2, 5, 4, 4), np.uint8))
        ours.add_video("v", np.zeros((1, 1, 2, 4, 4), bool))
        ours.add_figure("f", [_fig(), _fig()], close=False)
        ours.add_figure("f", _fig(), close=0)
    plt.close("all")


def test_labels_resolved_as_torch_draws_them() -> None:
    boxes = np.repeat(BOX, 5, 0)
    params, _ = convert_image.image_with_boxes(
        IMG, boxes, 1, "CHW", ["a", "", None, b"b", np.str_("c")]
    )
    assert params["labels"] == ["a", None, None, b"b", "c"]
    assert [type(x) for x in params["labels"]] == [str, type(None), type(None), bytes, str]
    params, _ = convert_image.image_with_boxes(IMG, boxes, 1, "CHW", ["a"])
    assert params["labels"] is None  # torch drops labels whose count differs


def test_canonical_dataformats() -> None:
    cases = {
        ("CHW", 3): "CHW",
        ("chw", 3): "CHW",
        ("CHX", 3): "CHW",
        ("hwc", 3): "HWC",
        ("WHc", 3): "WHC",
        ("nhwc", 4): "NHWC",
        ("NCHX", 4): "NCHW",
        ("wh", 2): "WH",
        ("HX", 2): "HW",
    }
    for (fmt, ndim), want in cases.items():
        params, _ = convert_image.image(np.zeros((3,) * ndim), fmt)
        assert params == {"dataformats": want}, fmt


# -- the fast path -------------------------------------------------------------------------


def test_fast_path_hands_the_array_on_untouched() -> None:
    """No copy, no dtype change, no layout change: the ring copies the caller's bytes."""
    a = np.random.default_rng(0).random((3, 512, 512)).astype(np.float32)
    params, arrays = convert_image.image(a, "CHW")
    assert arrays[0] is a and params == {"dataformats": "CHW"}
    t = torch.from_numpy(a)
    _, arrays = convert_image.image(t, "CHW")
    assert np.shares_memory(arrays[0], a)
    v = np.zeros((2, 3, 3, 8, 8), np.uint8)
    assert convert_image.video(v, 4)[1][0] is v
    _, arrays = convert_image.image_with_boxes(a, BOX, 1, "CHW", None)
    assert arrays[0] is a


def test_figure_pixels_are_torchs() -> None:
    from torch.utils.tensorboard._utils import figure_to_image

    for close in (True, False):
        fig = _fig()
        (ours,) = convert_image.figure(fig, close)
        ref = figure_to_image(fig, close)
        assert ours.dtype == np.uint8 and ours.flags.c_contiguous
        np.testing.assert_array_equal(ours, ref)
        assert plt.fignum_exists(fig.number) is not close
        figs = [_fig(), _fig()]
        ours_list = convert_image.figure(figs, close)
        np.testing.assert_array_equal(np.stack(ours_list), figure_to_image(figs, close))
    plt.close("all")


def test_import_stays_light() -> None:
    """convert_image imports numpy only; PIL, matplotlib and torch when a call needs them."""
    code = (
        "import sys, summaryd.convert_image as c, numpy as np\n"
        "c.image(np.zeros((3, 4, 4)), 'CHW'); c.video(np.zeros((1, 2, 3, 4, 4)), 4)\n"
        "c.image_with_boxes(np.zeros((3, 4, 4)), np.ones((1, 4)), 1, 'CHW', ['a'])\n"
        "print(sorted(m for m in ('PIL', 'matplotlib', 'torch') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout
