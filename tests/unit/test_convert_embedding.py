"""add_embedding's argument checks in the caller (``convert_embedding``) against torch's.

Each bad input goes through torch's ``SummaryWriter.add_embedding`` and through
summaryd's conversion (``embedding`` then ``subdir``, as ``SummaryWriter``
calls them); summaryd's exception must be an instance of the type torch
raises, and a summaryd argument error (a TypeError or ValueError too).  The
deliberate differences are tested on their own.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch.utils.tensorboard import SummaryWriter as TorchWriter

from summaryd import convert_embedding
from summaryd.errors import (
    ArgumentShapeError,
    ArgumentTypeError,
    ArgumentValueError,
    InvalidArgumentError,
)

Z22 = np.zeros((2, 2), np.float32)

BAD: dict[str, dict[str, Any]] = {
    "mat_list": {"mat": [[1.0, 2.0]]},
    "mat_none": {"mat": None},
    "mat_scalar": {"mat": 5.0},
    "mat_str": {"mat": "abc"},
    "mat_0d_with_metadata": {"mat": np.array(5.0), "metadata": [1]},
    "mat_0d_with_label_img": {"mat": torch.tensor(5.0), "label_img": torch.zeros(1, 3, 1, 1)},
    "mat_1d": {"mat": np.zeros(3)},
    "mat_1d_matching_metadata": {"mat": torch.zeros(3), "metadata": [1, 2, 3]},
    "mat_3d": {"mat": np.zeros((3, 2, 2))},
    "metadata_count": {"mat": np.zeros((3, 2)), "metadata": [1, 2]},
    "metadata_no_len": {"mat": Z22, "metadata": 5},
    "metadata_generator": {"mat": Z22, "metadata": (x for x in "ab")},
    "metadata_surrogate": {"mat": np.zeros((1, 2)), "metadata": ["\ud800"]},
    "metadata_rows_tuple_with_header": {
        "mat": Z22,
        "metadata": (("a", "b"), ("c", "d")),
        "metadata_header": ["x", "y"],
    },
    "metadata_numeric_array_with_header": {
        "mat": Z22,
        "metadata": np.array([[1, 2], [3, 4]]),
        "metadata_header": ["x", "y"],
    },
    "metadata_row_not_iterable": {"mat": Z22, "metadata": [["a", "b"], 3], "metadata_header": "xy"},
    "header_width": {"mat": Z22, "metadata": [["a", "b"], ["c", "d"]], "metadata_header": ["x"]},
    "header_no_rows": {"mat": np.zeros((0, 2)), "metadata": [], "metadata_header": ["x"]},
    "header_array_truth": {
        "mat": Z22,
        "metadata": [["a", "b"], ["c", "d"]],
        "metadata_header": np.array(["x", "y"]),
    },
    "header_tensor_truth": {
        "mat": Z22,
        "metadata": [[1, 2], [3, 4]],
        "metadata_header": torch.tensor([1, 2]),
    },
    "label_img_list": {"mat": Z22, "label_img": [1, 2]},
    "label_img_count": {"mat": Z22, "label_img": torch.zeros(3, 3, 4, 4)},
    "label_img_3d": {"mat": Z22, "label_img": torch.zeros(2, 3, 4)},
    "label_img_1d": {"mat": Z22, "label_img": torch.zeros(2)},
    "label_img_0d": {"mat": Z22, "label_img": torch.tensor(1.0)},
    "label_img_2_channels": {"mat": Z22, "label_img": torch.zeros(2, 2, 4, 4)},
    "label_img_gray_2d": {"mat": Z22, "label_img": torch.zeros(2, 1)},
    "label_img_5d": {"mat": Z22, "label_img": torch.zeros(2, 3, 1, 1, 1)},
    "label_img_too_tall": {"mat": np.zeros((3, 2)), "label_img": torch.zeros(3, 3, 5, 4)},
    "label_img_zero_width": {"mat": Z22, "label_img": torch.zeros(2, 3, 4, 0)},
    "label_img_empty": {"mat": np.zeros((1, 2)), "label_img": torch.zeros(1, 1, 0, 0)},
    "label_img_none_of_them": {"mat": np.zeros((0, 2)), "label_img": torch.zeros(0, 3, 4, 4)},
    "tag_int": {"mat": Z22, "tag": 5},
    "tag_none": {"mat": Z22, "tag": None},
    "tag_bytes": {"mat": Z22, "tag": b"x"},
    "tag_surrogate": {"mat": Z22, "tag": "\udcff"},
    "tag_nul": {"mat": Z22, "tag": "a\0b"},
}


def _torch_exception(tmp_path: Path, kw: dict[str, Any]) -> BaseException:
    with TorchWriter(str(tmp_path / "torch")) as w:
        try:
            w.add_embedding(**kw)
        except Exception as exc:
            return exc
    raise AssertionError(f"torch accepted {kw}")


def _ours(kw: dict[str, Any]) -> tuple[dict[str, Any], list[np.ndarray]]:
    """summaryd's checks, in the order SummaryWriter.add_embedding makes them."""
    params, arrays = convert_embedding.embedding(
        kw["mat"], kw.get("metadata"), kw.get("label_img"), kw.get("metadata_header")
    )
    step = kw.get("global_step")
    params["subdir"] = convert_embedding.subdir(
        0 if step is None else step, kw.get("tag", "default")
    )
    return params, arrays


def builtin_type(exc: BaseException) -> type[BaseException]:
    """The exception's type, or its nearest builtin base for a library's own subclass
    (numpy's ``UFuncTypeError`` is a TypeError: summaryd's error is one too)."""
    return next(t for t in type(exc).__mro__ if t.__module__ == "builtins")  # type: ignore[no-any-return]


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_input_raises_what_torch_raises(tmp_path: Path, name: str) -> None:
    ref = _torch_exception(tmp_path, BAD[name])
    with pytest.raises(Exception) as info:
        _ours(BAD[name])
    ours = info.value
    assert isinstance(ours, builtin_type(ref)), (
        f"torch raised {type(ref).__name__}: {ref}; ours {ours!r}"
    )
    if not isinstance(ref, RuntimeError):  # a tensor's own error passes through as torch's
        assert isinstance(ours, InvalidArgumentError)
        assert isinstance(ours, (TypeError, ValueError))


def test_messages_name_the_argument() -> None:
    for kw, name in [
        (BAD["metadata_count"], "metadata"),
        (BAD["label_img_count"], "label_img"),
        (BAD["mat_1d"], "mat"),
        (BAD["header_width"], "metadata_header"),
        (BAD["tag_int"], "tag"),
    ]:
        with pytest.raises(InvalidArgumentError, match=name):
            _ours(kw)


def test_arrays_travel_raw() -> None:
    mat = torch.randn(4, 3)
    img = torch.rand(4, 3, 2, 2, dtype=torch.float64)
    params, arrays = _ours({"mat": mat, "label_img": img, "metadata": list("abcd")})
    assert params == {"metadata": "a\nb\nc\nd\n", "subdir": "00000/default"}
    assert arrays[0].dtype == np.float32 and np.array_equal(arrays[0], mat.numpy())
    assert arrays[1].dtype == np.float64 and arrays[1].shape == (4, 3, 2, 2)
    bf = torch.ones(2, 2, dtype=torch.bfloat16)
    assert _ours({"mat": bf})[1][0].dtype == np.float16  # as torch's make_np
    np_mat = np.zeros((2, 2), np.int16)
    assert _ours({"mat": np_mat})[1][0] is np_mat


def test_header_metadata_text() -> None:
    params, _ = _ours({"mat": Z22, "metadata": [["a", 1], ["b", 2]], "metadata_header": ["n", "v"]})
    assert params["metadata"] == "n\tv\na\t1\nb\t2\n"


@pytest.mark.parametrize(
    ("step", "tag", "subdir"),
    [
        (0, "default", "00000/default"),
        (7, "a/b", "00007/a%2fb"),
        (123456, "100%\\", "123456/100%25%5c"),
        (-3, "", "-0003/"),
        (1.5, "t", "001.5/t"),
        (torch.tensor(5), "t", "tensor(5)/t"),
        (np.int64(3), "ünï", "00003/ünï"),
    ],
)
def test_subdir_is_torchs(step: Any, tag: str, subdir: str) -> None:
    assert convert_embedding.subdir(step, tag) == subdir
    assert f"{str(step).zfill(5)}/{TorchWriter._encode(tag)}" == subdir  # type: ignore[attr-defined]


# -- deliberate differences ------------------------------------------------------------


def test_numpy_label_img_is_accepted() -> None:
    # torch: TypeError ('int' object is not callable: label_img.size(0) on an array)
    img = np.zeros((2, 3, 2, 2), np.float32)
    assert _ours({"mat": Z22, "label_img": img})[1][1] is img


@pytest.mark.parametrize(
    "kw",
    [
        {"mat": np.zeros((1, 2), complex)},
        {"mat": np.array([["a", "b"]])},
        {"mat": np.zeros((1, 2), object)},
        {"mat": Z22, "label_img": np.zeros((2, 3, 1, 1), complex)},
        {"mat": torch.zeros(2, 2, dtype=torch.complex64)},
    ],
)
def test_values_the_ring_cannot_carry(kw: dict[str, Any]) -> None:
    with pytest.raises(ArgumentTypeError, match="dtype"):
        _ours(kw)


@pytest.mark.parametrize("tag", [".", ".."])
def test_dot_tags_are_refused(tag: str) -> None:
    # torch writes into 00000/ (".") or the run directory itself ("..")
    with pytest.raises(ArgumentValueError, match="relative path"):
        _ours({"mat": Z22, "tag": tag})


def test_step_strings_that_are_no_plain_path_are_refused() -> None:
    for step in ["a//b", "../..", "x/./y"]:
        with pytest.raises(ArgumentValueError):
            convert_embedding.subdir(step, "t")


def test_sprite_and_matrix_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    # 8193 images of 1 x 1 pixel: a square of ceil(sqrt(8193)) = 91 columns; 91 x 91 = 8281
    monkeypatch.setattr(convert_embedding, "MAX_SPRITE_SIDE", 90)
    with pytest.raises(ArgumentValueError, match="wide"):
        _ours({"mat": np.zeros((8193, 1)), "label_img": np.zeros((8193, 1, 1, 1))})
    monkeypatch.setattr(convert_embedding, "MAX_MAT_VALUES", 5)
    with pytest.raises(ArgumentValueError, match="at most"):
        _ours({"mat": np.zeros((3, 2))})
    with pytest.raises(ArgumentValueError, match="at most"):
        _ours({"mat": np.zeros((6, 0))})


def test_shape_errors_are_assertion_errors() -> None:
    for name in ["mat_1d", "metadata_count", "label_img_count", "header_width"]:
        with pytest.raises(ArgumentShapeError) as info:
            _ours(BAD[name])
        assert isinstance(info.value, AssertionError)


def test_import_stays_light() -> None:
    """The SDK module loads neither torch nor PIL until a tensor arrives."""
    code = (
        "import sys, summaryd.convert_embedding, summaryd.convert_graph;"
        "print(sorted(m for m in ('torch', 'PIL', 'tensorboard') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=os.environ
    ).stdout
    assert out.strip() == "[]"
