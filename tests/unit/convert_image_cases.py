"""Bad calls of add_image, add_images, add_image_with_boxes, add_figure and add_video.

``BAD_CALLS`` (one ``pytest.param(call, arg)`` per case, ``arg`` the argument
the message must name), ``OurConversions`` (what summaryd's writer methods run
before a record is sent, no daemon), the shared inputs (``IMG``, ``BOX``,
``VID``), and ``_outcome``/``_expected_type`` (the exception a call raises, and
the builtin class numpy's private exception classes stand for). Used by
``test_convert_image_bad_input.py``, ``test_convert_image_accepts.py`` and
``tests/differential/test_images.py``.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from summaryd import convert_image  # noqa: E402

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
