"""Bad input to the image-family calls raises in the caller, as torch's does.

Each call of ``convert_image_cases.BAD_CALLS`` goes to torch 2.13's own
``SummaryWriter`` method and to the conversion summaryd's writer runs for it
(``convert_image``, as ``sdk/writer.py`` calls it); torch must raise, and
summaryd must raise an instance of torch's exception type (numpy's private
exception classes stand for the builtin they derive from), an
``InvalidArgumentError`` whose message names the argument. The deliberate
differences (``convert_image``'s docstring) are checked on their own: torch
accepts or writes a broken GIF, summaryd raises.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from torch.utils.tensorboard import SummaryWriter as TorchWriter  # noqa: E402

from summaryd.errors import (  # noqa: E402
    ArgumentEncodingError,
    ArgumentTypeError,
    ArgumentValueError,
    InvalidArgumentError,
)

from .convert_image_cases import (
    BAD_CALLS,
    BOX,
    IMG,
    VID,
    Call,
    OurConversions,
    _box,
    _expected_type,
    _outcome,
)


@pytest.fixture(scope="module")
def torch_writer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    w = TorchWriter(str(tmp_path_factory.mktemp("torch")))
    yield w
    w.close()
    plt.close("all")


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
