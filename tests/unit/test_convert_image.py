"""Bad input to add_image, add_images, add_image_with_boxes, add_figure and add_video raises
in the caller.

Each call goes to torch 2.13's own ``SummaryWriter`` method and to the
conversion summaryd's writer runs for it (``convert_image``, as
``sdk/writer.py`` calls it); torch must raise, and summaryd must raise an
instance of torch's exception type (numpy's private exception classes stand
for the builtin they derive from), an ``InvalidArgumentError`` whose message
names the argument.  The deliberate differences (``convert_image``'s
docstring) are checked on their own: torch accepts or writes a broken GIF,
summaryd raises.  Inputs at the edge of what torch accepts are accepted, and
the fast path hands the caller's array on untouched.
"""

from __future__ import annotations

import fractions
import subprocess
import sys
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from torch.utils.tensorboard import SummaryWriter as TorchWriter  # noqa: E402

from summaryd import convert_image  # noqa: E402
from summaryd.errors import (  # noqa: E402
    ArgumentEncodingError,
    ArgumentTypeError,
    ArgumentValueError,
    InvalidArgumentError,
)

Call = Callable[[Any], Any]


class OurConversions:
    """What summaryd's writer methods run before a record is sent (no daemon)."""

    def add_image(
        self, tag: Any, img_tensor: Any, global_step: Any = None, walltime: Any = None,
        dataformats: Any = "CHW",
    ) -> None:  # fmt: skip
        convert_image.image(img_tensor, dataformats)

    def add_images(
        self, tag: Any, img_tensor: Any, global_step: Any = None, walltime: Any = None,
        dataformats: Any = "NCHW",
    ) -> None:  # fmt: skip
        convert_image.images(img_tensor, dataformats)

    def add_image_with_boxes(
        self, tag: Any, img_tensor: Any, box_tensor: Any, global_step: Any = None,
        walltime: Any = None, rescale: Any = 1, dataformats: Any = "CHW", labels: Any = None,
    ) -> None:  # fmt: skip
        convert_image.image_with_boxes(img_tensor, box_tensor, rescale, dataformats, labels)

    def add_figure(
        self, tag: Any, figure: Any, global_step: Any = None, close: Any = True,
        walltime: Any = None,
    ) -> None:  # fmt: skip
        pixels = convert_image.figure(figure, close)  # then as sdk/writer.py's add_figure
        if isinstance(figure, list):
            self.add_image(tag, np.stack(pixels), global_step, walltime, dataformats="NCHW")
        else:
            self.add_image(tag, pixels[0], global_step, walltime, dataformats="CHW")

    def add_video(
        self, tag: Any, vid_tensor: Any, global_step: Any = None, fps: Any = 4,
        walltime: Any = None,
    ) -> None:  # fmt: skip
        convert_image.video(vid_tensor, fps)


def _bad(id_: str, arg: str, call: Call) -> Any:
    return pytest.param(call, arg, id=id_)


def _fig(w: float = 2.0, h: float = 1.5) -> Any:
    fig, ax = plt.subplots(figsize=(w, h), dpi=40)
    ax.plot([0, 1, 2], [1, 0, 2])
    return fig


IMG = np.random.default_rng(0).random((3, 20, 30)).astype(np.float32)
BOX = np.array([[1.0, 2.0, 20.0, 15.0]])
VID = np.random.default_rng(1).random((1, 2, 3, 6, 8)).astype(np.float32)


def _box(*row: Any, dtype: Any = np.float64) -> np.ndarray:
    return np.array([row], dtype=dtype)


BAD_CALLS = [
    # add_image: img_tensor
    _bad("image-list", "img_tensor", lambda w: w.add_image("i", [[[0.5]]])),
    _bad("image-None", "img_tensor", lambda w: w.add_image("i", None)),
    _bad("image-dict", "img_tensor", lambda w: w.add_image("i", {})),
    _bad(
        "image-meta", "dataformats", lambda w: w.add_image("i", torch.empty(3, 4, 4, device="meta"))
    ),
    _bad(
        "video-meta",
        "vid_tensor",
        lambda w: w.add_video("v", torch.empty(1, 2, 3, 4, 4, device="meta")),
    ),
    _bad("image-str", "dataformats", lambda w: w.add_image("i", "abc")),
    _bad("image-float", "dataformats", lambda w: w.add_image("i", 0.5)),
    _bad("image-C5", "img_tensor", lambda w: w.add_image("i", np.zeros((5, 4, 4)))),
    _bad("image-C0", "img_tensor", lambda w: w.add_image("i", np.zeros((0, 4, 4)))),
    _bad(
        "image-HWC-C6",
        "img_tensor",
        lambda w: w.add_image("i", np.zeros((4, 4, 6)), 0, None, "HWC"),
    ),
    _bad("image-torch-C5", "img_tensor", lambda w: w.add_image("i", torch.zeros(5, 4, 4))),
    _bad("image-H0", "img_tensor", lambda w: w.add_image("i", np.zeros((3, 0, 4)))),
    _bad("image-W0", "img_tensor", lambda w: w.add_image("i", np.zeros((3, 4, 0)))),
    _bad("image-HW-H0", "img_tensor", lambda w: w.add_image("i", np.zeros((0, 4)), 0, None, "HW")),
    _bad("image-str-array", "img_tensor", lambda w: w.add_image("i", np.array([[["x"]]]))),
    _bad("image-bytes-array", "img_tensor", lambda w: w.add_image("i", np.array([[[b"x"]]]))),
    # add_image: dataformats
    _bad("image-fmt-None", "dataformats", lambda w: w.add_image("i", IMG, dataformats=None)),
    _bad("image-fmt-int", "dataformats", lambda w: w.add_image("i", IMG, dataformats=3)),
    _bad("image-fmt-list", "dataformats", lambda w: w.add_image("i", IMG, dataformats=list("CHW"))),
    _bad(
        "image-fmt-tuple",
        "dataformats",
        lambda w: w.add_image("i", IMG, dataformats=("C", "H", "W")),
    ),
    _bad("image-fmt-bytes", "dataformats", lambda w: w.add_image("i", IMG, dataformats=b"CHW")),
    _bad("image-fmt-repeat", "dataformats", lambda w: w.add_image("i", IMG, dataformats="CCW")),
    _bad("image-fmt-short", "dataformats", lambda w: w.add_image("i", IMG, dataformats="HW")),
    _bad("image-fmt-long", "dataformats", lambda w: w.add_image("i", IMG, dataformats="NCHW")),
    _bad("image-fmt-XHW", "dataformats", lambda w: w.add_image("i", IMG, dataformats="XHW")),
    _bad("image-fmt-hHW", "dataformats", lambda w: w.add_image("i", IMG, dataformats="hHW")),
    _bad(
        "image-fmt-XY",
        "dataformats",
        lambda w: w.add_image("i", np.zeros((4, 4)), dataformats="XY"),
    ),
    _bad("image-fmt-1", "dataformats", lambda w: w.add_image("i", np.zeros(3), dataformats="C")),
    _bad("image-fmt-0", "dataformats", lambda w: w.add_image("i", np.zeros(()), dataformats="")),
    _bad(
        "image-fmt-5",
        "dataformats",
        lambda w: w.add_image("i", np.zeros((1, 3, 4, 4, 1)), dataformats="NCHWX"),
    ),
    _bad(
        "image-fmt-eszett",
        "dataformats",
        lambda w: w.add_image("i", np.zeros((4, 4)), dataformats="ßW"),
    ),
    # add_images
    _bad("images-N0", "img_tensor", lambda w: w.add_images("i", np.zeros((0, 3, 4, 4)))),
    _bad("images-N0-C1", "img_tensor", lambda w: w.add_images("i", np.zeros((0, 1, 4, 4)))),
    _bad("images-C4", "img_tensor", lambda w: w.add_images("i", np.zeros((2, 4, 4, 4)))),
    _bad("images-C2", "img_tensor", lambda w: w.add_images("i", np.zeros((2, 2, 4, 4)))),
    _bad("images-C0", "img_tensor", lambda w: w.add_images("i", np.zeros((2, 0, 4, 4)))),
    _bad("images-N0-C4", "img_tensor", lambda w: w.add_images("i", np.zeros((0, 4, 4, 4)))),
    _bad(
        "images-NHWC-C4",
        "img_tensor",
        lambda w: w.add_images("i", np.zeros((2, 4, 4, 4)), 0, None, "NHWC"),
    ),
    _bad("images-H0", "img_tensor", lambda w: w.add_images("i", np.zeros((2, 3, 0, 4)))),
    _bad("images-3d", "dataformats", lambda w: w.add_images("i", IMG)),
    _bad("images-list", "img_tensor", lambda w: w.add_images("i", [IMG])),
    _bad("images-str-array", "img_tensor", lambda w: w.add_images("i", np.full((1, 3, 2, 2), "x"))),
    # add_image_with_boxes: box_tensor
    _bad("boxes-list", "box_tensor", lambda w: w.add_image_with_boxes("b", IMG, [[1, 2, 3, 4]])),
    _bad("boxes-None", "box_tensor", lambda w: w.add_image_with_boxes("b", IMG, None)),
    _bad(
        "boxes-list-labels",
        "box_tensor",
        lambda w: w.add_image_with_boxes("b", IMG, [[1, 2, 3, 4]], labels=["a"]),
    ),
    _bad("boxes-0d", "box_tensor", lambda w: w.add_image_with_boxes("b", IMG, np.array(3.0))),
    _bad(
        "boxes-0d-labels",
        "box_tensor",
        lambda w: w.add_image_with_boxes("b", IMG, np.array(3.0), labels=["a"]),
    ),
    _bad("boxes-scalar", "box_tensor", lambda w: w.add_image_with_boxes("b", IMG, 3.0)),
    _bad(
        "boxes-1d",
        "box_tensor",
        lambda w: w.add_image_with_boxes("b", IMG, np.array([1.0, 2, 3, 4])),
    ),
    _bad(
        "boxes-3-cols",
        "box_tensor",
        lambda w: w.add_image_with_boxes("b", IMG, np.array([[1.0, 2, 3]])),
    ),
    _bad("boxes-3d", "box_tensor", lambda w: w.add_image_with_boxes("b", IMG, np.ones((1, 4, 2)))),
    _bad(
        "boxes-3d-last1",
        "box_tensor",
        lambda w: w.add_image_with_boxes("b", IMG, np.ones((2, 4, 1))),
    ),
    _bad(
        "boxes-3d-short",
        "box_tensor",
        lambda w: w.add_image_with_boxes("b", IMG, np.ones((1, 3, 2))),
    ),
    _bad(
        "boxes-str",
        "box_tensor",
        lambda w: w.add_image_with_boxes("b", IMG, np.array([["1", "2", "3", "4"]])),
    ),
    _bad(
        "boxes-object",
        "box_tensor",
        lambda w: w.add_image_with_boxes("b", IMG, np.array([[object(), 1, 2, 3]], dtype=object)),
    ),
    _bad(
        "boxes-datetime",
        "box_tensor",
        lambda w: w.add_image_with_boxes("b", IMG, np.array([[1, 2, 3, 4]], dtype="M8[s]")),
    ),
    _bad(
        "boxes-torch-1d",
        "box_tensor",
        lambda w: w.add_image_with_boxes("b", IMG, torch.tensor([1.0, 2, 3, 4])),
    ),
    # add_image_with_boxes: labels
    _bad("labels-int", "labels", lambda w: w.add_image_with_boxes("b", IMG, BOX, labels=5)),
    _bad(
        "labels-object", "labels", lambda w: w.add_image_with_boxes("b", IMG, BOX, labels=object())
    ),
    _bad(
        "labels-item-int", "labels[0]", lambda w: w.add_image_with_boxes("b", IMG, BOX, labels=[5])
    ),
    _bad(
        "labels-item-float",
        "labels[0]",
        lambda w: w.add_image_with_boxes("b", IMG, BOX, labels=[1.5]),
    ),
    _bad(
        "labels-item-list",
        "labels[0]",
        lambda w: w.add_image_with_boxes("b", IMG, BOX, labels=[["a"]]),
    ),
    _bad(
        "labels-item-array",
        "labels[0]",
        lambda w: w.add_image_with_boxes("b", IMG, BOX, labels=[np.array([1, 2])]),
    ),
    _bad(
        "labels-second-int",
        "labels[1]",
        lambda w: w.add_image_with_boxes("b", IMG, np.vstack([BOX, BOX]), labels=["a", 7]),
    ),
    _bad(
        "labels-dict", "labels[0]", lambda w: w.add_image_with_boxes("b", IMG, BOX, labels={"a": 1})
    ),
    _bad("labels-set", "labels[0]", lambda w: w.add_image_with_boxes("b", IMG, BOX, labels={"a"})),
    _bad(
        "labels-uint8-wide",
        "labels[0]",
        lambda w: w.add_image_with_boxes(
            "b", IMG, _box(1, 2, 20, 15, dtype=np.uint8), labels=["x" * 60]
        ),
    ),
    _bad(
        "labels-int8-wide",
        "labels[0]",
        lambda w: w.add_image_with_boxes(
            "b", IMG, _box(1, 2, 20, 15, dtype=np.int8), labels=["x" * 30]
        ),
    ),
    _bad(
        "labels-int16-wide",
        "labels[0]",
        lambda w: w.add_image_with_boxes(
            "b", IMG, _box(1, 2, 20, 15, dtype=np.int16), labels=["W" * 4000]
        ),
    ),
    _bad(
        "labels-uint8-top",
        "labels[0]",
        lambda w: w.add_image_with_boxes("b", IMG, _box(3, 1, 33, 5, dtype=np.uint8), labels=["a"]),
    ),
    _bad(
        "labels-int8-right",
        "labels[0]",
        lambda w: w.add_image_with_boxes(
            "b", IMG, _box(120, 2, 126, 20, dtype=np.int8), labels=["xxxx"]
        ),
    ),
    _bad(
        "labels-int8-low",
        "labels[0]",
        lambda w: w.add_image_with_boxes(
            "b", IMG, _box(1, -128, 20, -125, dtype=np.int8), labels=["a"]
        ),
    ),
    _bad(
        "labels-nan-left",
        "labels[0]",
        lambda w: w.add_image_with_boxes("b", IMG, _box(np.nan, 2, 20, 15), labels=["a"]),
    ),
    _bad(
        "labels-nan-bottom",
        "labels[0]",
        lambda w: w.add_image_with_boxes("b", IMG, _box(1, 2, 20, np.nan), labels=["a"]),
    ),
    _bad(
        "labels-inf-left",
        "labels[0]",
        lambda w: w.add_image_with_boxes("b", IMG, _box(np.inf, 2, 20, 15), labels=["a"]),
    ),
    _bad(
        "labels-neginf-bottom",
        "labels[0]",
        lambda w: w.add_image_with_boxes(
            "b", IMG, _box(1, 2, 20, -np.inf, dtype=np.float32), labels=["a"]
        ),
    ),
    _bad(
        "labels-f16-inf",
        "labels[0]",
        lambda w: w.add_image_with_boxes(
            "b", IMG, _box(np.inf, 2, 20, 15, dtype=np.float16), labels=["a"]
        ),
    ),
    # add_image_with_boxes: rescale
    _bad("rescale-None", "rescale", lambda w: w.add_image_with_boxes("b", IMG, BOX, rescale=None)),
    _bad(
        "rescale-nan",
        "rescale",
        lambda w: w.add_image_with_boxes("b", IMG, BOX, rescale=float("nan")),
    ),
    _bad(
        "rescale-inf",
        "rescale",
        lambda w: w.add_image_with_boxes("b", IMG, BOX, rescale=float("inf")),
    ),
    _bad("rescale-0", "rescale", lambda w: w.add_image_with_boxes("b", IMG, BOX, rescale=0)),
    _bad("rescale-small", "rescale", lambda w: w.add_image_with_boxes("b", IMG, BOX, rescale=0.01)),
    _bad(
        "rescale-negative", "rescale", lambda w: w.add_image_with_boxes("b", IMG, BOX, rescale=-1)
    ),
    _bad("rescale-complex", "rescale", lambda w: w.add_image_with_boxes("b", IMG, BOX, rescale=1j)),
    _bad("rescale-str", "rescale", lambda w: w.add_image_with_boxes("b", IMG, BOX, rescale="2")),
    _bad("rescale-list", "rescale", lambda w: w.add_image_with_boxes("b", IMG, BOX, rescale=[2])),
    # add_image_with_boxes: img_tensor and dataformats, in torch's order with bad boxes
    _bad("boxes-img-list", "img_tensor", lambda w: w.add_image_with_boxes("b", [[[1.0]]], BOX)),
    _bad(
        "boxes-img-C5",
        "img_tensor",
        lambda w: w.add_image_with_boxes("b", np.zeros((5, 4, 4)), BOX),
    ),
    _bad(
        "boxes-img-H0",
        "img_tensor",
        lambda w: w.add_image_with_boxes("b", np.zeros((3, 0, 4)), BOX),
    ),
    _bad(
        "boxes-img-batch-C4",
        "img_tensor",
        lambda w: w.add_image_with_boxes("b", np.zeros((2, 4, 4, 4)), BOX, dataformats="NCHW"),
    ),
    _bad(
        "boxes-img-batch-N0",
        "img_tensor",
        lambda w: w.add_image_with_boxes("b", np.zeros((0, 3, 4, 4)), BOX, dataformats="NCHW"),
    ),
    _bad(
        "boxes-fmt-before-boxes",
        "dataformats",
        lambda w: w.add_image_with_boxes("b", IMG, [1], dataformats="NCHWX"),
    ),
    _bad(
        "boxes-fmt-None",
        "dataformats",
        lambda w: w.add_image_with_boxes("b", IMG, BOX, dataformats=None),
    ),
    _bad(
        "boxes-list-before-channels",
        "box_tensor",
        lambda w: w.add_image_with_boxes("b", np.zeros((5, 4, 4)), [1]),
    ),
    _bad(
        "boxes-fmt-5-letters",
        "dataformats",
        lambda w: w.add_image_with_boxes("b", np.zeros((1, 3, 4, 4, 1)), BOX, dataformats="NCHWX"),
    ),
    _bad(
        "boxes-C5-before-boxes",
        "img_tensor",
        lambda w: w.add_image_with_boxes("b", np.zeros((5, 4, 4)), np.array(3.0)),
    ),
    _bad(
        "boxes-boxes-before-rescale0",
        "box_tensor",
        lambda w: w.add_image_with_boxes("b", IMG, np.array([1.0]), rescale=0),
    ),
    _bad(
        "boxes-rescale-type-first",
        "rescale",
        lambda w: w.add_image_with_boxes("b", np.zeros((5, 4, 4)), BOX, rescale=None),
    ),
    # add_figure
    _bad("figure-None", "figure", lambda w: w.add_figure("f", None)),
    _bad("figure-str", "figure", lambda w: w.add_figure("f", "abc")),
    _bad("figure-int", "figure", lambda w: w.add_figure("f", 3)),
    _bad("figure-tuple", "figure", lambda w: w.add_figure("f", (_fig(),))),
    _bad("figure-list-None", "figure", lambda w: w.add_figure("f", [None])),
    _bad("figure-list-second-bad", "figure", lambda w: w.add_figure("f", [_fig(), object()])),
    _bad("figure-empty-list", "figure", lambda w: w.add_figure("f", [])),
    _bad("figure-sizes", "figure", lambda w: w.add_figure("f", [_fig(), _fig(3.0, 1.5)])),
    # add_video: vid_tensor
    _bad("video-list", "vid_tensor", lambda w: w.add_video("v", [[[[[0.5]]]]])),
    _bad("video-None", "vid_tensor", lambda w: w.add_video("v", None)),
    _bad("video-scalar", "vid_tensor", lambda w: w.add_video("v", 0.5)),
    _bad("video-4d", "vid_tensor", lambda w: w.add_video("v", np.zeros((2, 3, 4, 4)))),
    _bad("video-6d", "vid_tensor", lambda w: w.add_video("v", np.zeros((1, 2, 3, 4, 4, 1)))),
    _bad("video-N0", "vid_tensor", lambda w: w.add_video("v", np.zeros((0, 2, 3, 4, 4)))),
    _bad("video-T0", "vid_tensor", lambda w: w.add_video("v", np.zeros((1, 0, 3, 4, 4)))),
    # one channel: torch raises, summaryd writes tensorboardX's grey GIF (test_video_grey.py)
    _bad(
        "video-str-array", "vid_tensor", lambda w: w.add_video("v", np.full((1, 1, 3, 2, 2), "x"))
    ),
    # add_video: fps, in moviepy's order
    _bad("fps-None", "fps", lambda w: w.add_video("v", VID, fps=None)),
    _bad("fps-None-T0", "fps", lambda w: w.add_video("v", np.zeros((1, 0, 3, 4, 4)), fps=None)),
    _bad("fps-0", "fps", lambda w: w.add_video("v", VID, fps=0)),
    _bad("fps-0.0", "fps", lambda w: w.add_video("v", VID, fps=0.0)),
    _bad("fps-inf", "fps", lambda w: w.add_video("v", VID, fps=float("inf"))),
    _bad("fps-nan", "fps", lambda w: w.add_video("v", VID, fps=float("nan"))),
    _bad("fps-str", "fps", lambda w: w.add_video("v", VID, fps="4")),
    _bad("fps-list", "fps", lambda w: w.add_video("v", VID, fps=[4])),
    _bad(
        "fps-decimal", "fps", lambda w: w.add_video("v", VID, fps=__import__("decimal").Decimal(4))
    ),
    _bad("fps-0-C1", "fps", lambda w: w.add_video("v", np.zeros((1, 2, 1, 4, 4)), fps=0)),
    _bad(
        "fps-str-T0", "vid_tensor", lambda w: w.add_video("v", np.zeros((1, 0, 3, 4, 4)), fps="x")
    ),
]


@pytest.fixture(scope="module")
def torch_writer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    w = TorchWriter(str(tmp_path_factory.mktemp("torch")))
    yield w
    w.close()
    plt.close("all")


def _outcome(call: Call, w: Any) -> BaseException | None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # numpy's cast and scalar-wrap warnings
        try:
            call(w)
        except Exception as exc:
            return exc
    return None


def _expected_type(exc: BaseException) -> type[BaseException]:
    for cls in type(exc).__mro__:
        if not cls.__module__.startswith("numpy"):
            return cls
    raise AssertionError(exc)  # pragma: no cover


@pytest.mark.parametrize(("call", "arg"), BAD_CALLS)
def test_bad_input_raises_what_torch_raises(torch_writer: Any, call: Call, arg: str) -> None:
    torch_exc = _outcome(call, torch_writer)
    assert torch_exc is not None, "torch accepts this call: not a bad-input case"
    ours = _outcome(call, OurConversions())
    assert ours is not None, f"torch raises {torch_exc!r}; summaryd accepts"
    assert isinstance(ours, _expected_type(torch_exc)), (
        f"torch raises {type(torch_exc).__name__} ({torch_exc}); summaryd raises "
        f"{type(ours).__name__} ({ours}) (mro {[c.__name__ for c in type(ours).__mro__]})"
    )
    assert isinstance(ours, InvalidArgumentError), repr(ours)
    assert arg in str(ours), f"message does not name {arg!r}: {ours}"


# -- deliberate differences -------------------------------------------------------------

DIFFERENCES = [
    # torch writes an undecodable GIF for these (moviepy's writer fails in __del__)
    (
        "video-C0",
        "vid_tensor",
        ArgumentValueError,
        lambda w: w.add_video("v", np.zeros((1, 2, 0, 4, 4))),
    ),
    (
        "video-H0",
        "vid_tensor",
        ArgumentValueError,
        lambda w: w.add_video("v", np.zeros((1, 2, 3, 0, 4))),
    ),
    (
        "video-W0",
        "vid_tensor",
        ArgumentValueError,
        lambda w: w.add_video("v", np.zeros((1, 2, 3, 4, 0))),
    ),
    ("fps-complex", "fps", ArgumentTypeError, lambda w: w.add_video("v", VID, fps=1j)),
    ("fps-tiny", "fps", ArgumentValueError, lambda w: w.add_video("v", VID, fps=1e-7)),
    (
        "video-wide",
        "vid_tensor",
        ArgumentValueError,
        lambda w: w.add_video("v", np.zeros((1, 1, 3, 1, 70000), np.uint8)),
    ),
    # torch shows a still of the last frame for a negative frame rate
    ("fps-negative", "fps", ArgumentValueError, lambda w: w.add_video("v", VID, fps=-4)),
    # torch draws these (slowly, or allocating the rescaled image)
    (
        "labels-long",
        "labels[0]",
        ArgumentValueError,
        lambda w: w.add_image_with_boxes("b", IMG, BOX, labels=["x" * 5000]),
    ),
    (
        "labels-long-total",
        "labels",
        ArgumentValueError,
        lambda w: w.add_image_with_boxes("b", IMG, np.repeat(BOX, 20, 0), labels=["x" * 4000] * 20),
    ),
    (
        "rescale-huge",
        "rescale",
        ArgumentValueError,
        lambda w: w.add_image_with_boxes("b", IMG, BOX, rescale=2000),
    ),
    # a lone surrogate cannot travel as UTF-8 (torch draws a missing glyph)
    (
        "labels-surrogate",
        "labels[0]",
        ArgumentEncodingError,
        lambda w: w.add_image_with_boxes("b", IMG, BOX, labels=["\ud800"]),
    ),
    # beyond a C long Pillow raises SystemError (torch); summaryd an argument error
    (
        "labels-far-left",
        "labels[0]",
        ArgumentValueError,
        lambda w: w.add_image_with_boxes("b", IMG, _box(1e30, 2, 20, 15), labels=["a"]),
    ),
    (
        "labels-far-bottom",
        "labels[0]",
        ArgumentValueError,
        lambda w: w.add_image_with_boxes("b", IMG, _box(1, 2, 20, -1e30), labels=["a"]),
    ),
]


@pytest.mark.parametrize(
    ("call", "arg", "exc_type"),
    [pytest.param(c, a, e, id=i) for i, a, e, c in DIFFERENCES],
)
def test_deliberate_differences_raise(call: Call, arg: str, exc_type: type[Exception]) -> None:
    ours = _outcome(call, OurConversions())
    assert isinstance(ours, exc_type), repr(ours)
    assert arg in str(ours), ours


_TORCH_BROKEN_GIFS = """
import io, warnings
import numpy as np
from PIL import Image
from torch.utils.tensorboard import summary
warnings.simplefilter("ignore")
v = np.random.default_rng(1).random((1, 2, 3, 6, 8)).astype(np.float32)
for vid, fps in ((np.zeros((1, 2, 3, 0, 4)), 4), (np.zeros((1, 2, 0, 4, 4)), 4), (v, 1e-7)):
    gif = summary.video("v", vid, fps=fps).value[0].image.encoded_image_string
    try:
        Image.open(io.BytesIO(gif)).load()
        print("decodes")
    except Exception:
        print("undecodable")
"""


def test_torch_writes_an_undecodable_gif_where_summaryd_raises() -> None:
    """Why the empty-frame and tiny-fps video differences: torch returns a Summary whose
    GIF does not decode (moviepy's writer fails in ``__del__``; run apart, its errors
    surface at garbage collection)."""
    out = subprocess.run(
        [sys.executable, "-c", _TORCH_BROKEN_GIFS], capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == ["undecodable"] * 3, out.stdout + out.stderr


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
