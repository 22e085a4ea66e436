"""Tests for add_embedding's files: ``convert_embedding`` in the trainer,
``projector.embedding_files`` in the daemon, against the files torch writes.

* For a matrix of inputs (numpy and torch matrices of every dtype the ring
  carries, special float values, metadata of several kinds with and without
  a header, label images float/uint8/bool, 1 or 3 channels, square or not,
  out-of-range values, tags that need encoding, several steps), the SDK
  conversion, the ring's array round trip and the daemon's function give
  the files torch's ``SummaryWriter.add_embedding`` writes: tensors.tsv,
  metadata.tsv and projector_config.pbtxt byte for byte, sprite.png pixel for
  pixel (decoded with Pillow).
* The config merges into what is already on disk: several calls of one
  writer equal torch's file; a repeated embedding is replaced, not repeated;
  other writers' embeddings and fields are kept; a file that does not parse
  is left alone.
* Golden files pin a representative config.
* Hypothesis: any params, arrays and existing config give files inside the
  run or TypeError/ValueError, nothing else.
"""

from __future__ import annotations

import io
import math
import os
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from google.protobuf import text_format
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image
from torch.utils.tensorboard import SummaryWriter as TorchWriter

from summaryd import convert_embedding
from summaryd.daemon import projector
from summaryd.proto import projector_config_pb2

from .. import golden
from ..transport import through_ring  # noqa: E402

CONFIG = "projector_config.pbtxt"


assert_golden = golden.assert_golden


def ours_add_embedding(
    root: Path,
    mat: Any,
    metadata: Any = None,
    label_img: Any = None,
    global_step: Any = None,
    tag: Any = "default",
    metadata_header: Any = None,
) -> dict[str, bytes]:
    """summaryd's add_embedding, writer and daemon sides, into ``root``; the files returned."""
    params, arrays = convert_embedding.embedding(mat, metadata, label_img, metadata_header)
    params["subdir"] = convert_embedding.subdir(0 if global_step is None else global_step, tag)
    params, arrays = through_ring((params, arrays))
    config = root / CONFIG
    existing = config.read_text("utf-8") if config.exists() else None
    files = projector.embedding_files(params, arrays, existing)
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return files


def torch_add_embedding(writer: TorchWriter, **kw: Any) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # NaN -> uint8 in make_sprite
        writer.add_embedding(**kw)


def projector_files(root: Path) -> dict[str, bytes]:
    out = {}
    for dirpath, _, names in os.walk(root):
        for name in names:
            if "tfevents" not in name:
                path = Path(dirpath) / name
                out[path.relative_to(root).as_posix()] = path.read_bytes()
    return out


def pixels(png: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(png)) as im:
        assert im.format == "PNG"
        return np.asarray(im.convert("RGB"))


def assert_same_files(torch_root: Path, ours_root: Path) -> None:
    ref = projector_files(torch_root)
    ours = projector_files(ours_root)
    assert sorted(ours) == sorted(ref)
    for rel in sorted(ref):
        if rel.endswith(".png"):
            a, b = pixels(ref[rel]), pixels(ours[rel])
            assert a.shape == b.shape, rel
            assert np.array_equal(a, b), f"{rel}: sprite pixels differ"
        else:
            assert ours[rel] == ref[rel], f"{rel} differs:\n{ref[rel][:300]!r}\n{ours[rel][:300]!r}"


def compare(tmp_path: Path, calls: list[dict[str, Any]], ours_calls: Any = None) -> None:
    """The same add_embedding calls through torch's writer and ours; same files."""
    t_root, o_root = tmp_path / "torch", tmp_path / "ours"
    o_root.mkdir()
    with TorchWriter(str(t_root)) as w:
        for kw in calls:
            torch_add_embedding(w, **kw)
    for kw in ours_calls or calls:
        ours_add_embedding(o_root, **kw)
    assert_same_files(t_root, o_root)


# -- inputs ---------------------------------------------------------------------

_rng = np.random.default_rng(0)
SPECIAL = [0.0, -0.0, 1.0, -1.5, 1 / 3, 1e-7, 1e16, 1.5e300, 5e-324, math.inf, -math.inf, math.nan]


def _special(dtype: Any) -> np.ndarray:
    with np.errstate(over="ignore"):
        return np.array(SPECIAL, np.float64).astype(dtype).reshape(3, 4)


MATS: dict[str, Any] = {
    "f32": lambda: _rng.standard_normal((5, 3)).astype(np.float32),
    "f64_special": lambda: _special(np.float64),
    "f32_special": lambda: _special(np.float32),
    "f16_special": lambda: _special(np.float16),
    "torch_f32": lambda: torch.randn(6, 4, generator=torch.Generator().manual_seed(1)),
    "torch_bf16": lambda: torch.tensor([[0.1, -2.5], [3.0, 1e-3]], dtype=torch.bfloat16),
    "torch_f16_grad": lambda: torch.ones(2, 2, dtype=torch.float16, requires_grad=True),
    "int64": lambda: np.array([[0, -1], [2**62, -(2**63)]], np.int64),
    "uint64": lambda: np.array([[2**64 - 1, 0]], np.uint64),
    "int8": lambda: np.array([[-128, 127, 0]], np.int8),
    "uint8": lambda: np.arange(12, dtype=np.uint8).reshape(4, 3),
    "bool": lambda: np.array([[True, False], [False, True]]),
    "torch_int32": lambda: torch.arange(6, dtype=torch.int32).reshape(3, 2),
    "noncontiguous": lambda: np.arange(12, dtype=np.float32).reshape(3, 4).T,
    "empty_rows": lambda: np.zeros((0, 3), np.float32),
    "empty_cols": lambda: np.zeros((3, 0), np.float32),
    "big_endian": lambda: np.arange(4, dtype=">f8").reshape(2, 2) / 7,
}


@pytest.mark.parametrize("name", sorted(MATS))
def test_tensors_tsv_equal_torch(tmp_path: Path, name: str) -> None:
    compare(tmp_path, [{"mat": MATS[name]()}])


METADATA: dict[str, tuple[Any, Any]] = {
    "str": (["a", "b", "c"], None),
    "ints": ([1, 2, 3], None),
    "numpy_floats": (np.array([0.1, 2.0, np.nan], np.float32), None),
    "torch_tensor": (torch.tensor([1, 2, 3]), None),
    "mixed_objects": ([None, 1.5, ("x", 1)], None),
    "unicode_tabs_newlines": (["ünï", "a\tb", "c\nd"], None),
    "header": ([["a", 1], ["b", 2], ["c", 3]], ["name", "value"]),
    "header_tuple_rows": ([("a", 1), ("b", 2), ("c", 3)], ("name", "value")),
    "header_ragged": ([["a", 1], ["b"], ["c", 3, 4]], ["name", "value"]),
    "header_str": (["xy", "zw", "uv"], "hh"),
    "header_np_strings": (np.array([["a", "b"], ["c", "d"], ["e", "f"]]), ["x", "y"]),
    "empty_header": (["a", "b", "c"], []),
}


@pytest.mark.parametrize("name", sorted(METADATA))
def test_metadata_tsv_equal_torch(tmp_path: Path, name: str) -> None:
    metadata, header = METADATA[name]
    mat = np.zeros((3, 2), np.float32)
    compare(tmp_path, [{"mat": mat, "metadata": metadata, "metadata_header": header}])


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


LABELS: dict[str, Any] = {
    "rand_n1": lambda: torch.rand(1, 3, 4, 4, generator=_gen(0)),
    "rand_n5_wide": lambda: torch.rand(5, 3, 3, 7, generator=_gen(1)),
    "rand_n10": lambda: torch.rand(10, 3, 5, 6, generator=_gen(2)),
    "gray_n7": lambda: torch.rand(7, 1, 4, 4, generator=_gen(3)),
    "out_of_range": lambda: torch.randn(4, 3, 3, 3, generator=_gen(4)) * 2,
    "special": lambda: torch.tensor(SPECIAL[:12]).reshape(1, 3, 2, 2),
    "uint8": lambda: torch.randint(0, 256, (3, 3, 4, 5), dtype=torch.uint8, generator=_gen(5)),
    "bool": lambda: torch.rand(2, 1, 3, 3, generator=_gen(6)) > 0.5,
    "f16": lambda: torch.rand(2, 3, 2, 2, generator=_gen(7)).half(),
    "bf16": lambda: torch.rand(2, 3, 2, 2, generator=_gen(8)).bfloat16(),
    "f64": lambda: torch.rand(3, 3, 2, 4, dtype=torch.float64, generator=_gen(9)),
    "int64": lambda: torch.tensor([[[[0, 1], [-3, 2**40]]]], dtype=torch.int64),
    "zero_height": lambda: torch.rand(2, 3, 0, 4, generator=_gen(10)),
    "grid_just_fits": lambda: torch.rand(2, 3, 8, 4, generator=_gen(11)),
}


@pytest.mark.parametrize("name", sorted(LABELS))
def test_sprite_equal_torch(tmp_path: Path, name: str) -> None:
    img = LABELS[name]()
    mat = np.zeros((img.shape[0], 2), np.float32)
    compare(tmp_path, [{"mat": mat, "label_img": img, "metadata": list(range(img.shape[0]))}])


def test_numpy_label_img_as_torch_tensor(tmp_path: Path) -> None:
    # torch fails on a numpy label_img (label_img.size(0)); summaryd draws it as the tensor.
    img = np.random.default_rng(1).random((3, 3, 4, 4), dtype=np.float32)
    calls = [{"mat": np.zeros((3, 2)), "label_img": torch.from_numpy(img)}]
    compare(tmp_path, calls, [{"mat": np.zeros((3, 2)), "label_img": img}])


@pytest.mark.parametrize(
    ("step", "tag"),
    [
        (None, "default"),
        (0, "a/b"),
        (7, "100%"),
        (123456, "back\\slash/%2f"),
        (-3, ""),
        (1.5, "ünï:colon"),
        (np.int64(42), " spaced tag "),
        (torch.tensor(5), "t"),
    ],
)
def test_steps_and_tags_equal_torch(tmp_path: Path, step: Any, tag: str) -> None:
    kw = {"mat": np.eye(2), "metadata": ["x", "y"], "global_step": step, "tag": tag}
    compare(tmp_path, [{**kw, "label_img": torch.ones(2, 3, 2, 2)}])


def test_everything_at_once_and_several_calls(tmp_path: Path) -> None:
    """Several embeddings of one writer: torch's config lists them in call order."""
    calls = [
        {"mat": torch.randn(4, 3), "metadata": ["a", "b", "c", "d"], "tag": "words"},
        {"mat": np.ones((2, 2)), "label_img": torch.rand(2, 3, 2, 2), "global_step": 1},
        {
            "mat": np.arange(6).reshape(3, 2),
            "metadata": [[1, "x"], [2, "y"], [3, "z"]],
            "metadata_header": ["n", "s"],
            "label_img": torch.rand(3, 1, 5, 5),
            "global_step": 2,
            "tag": "all/of/it",
        },
    ]
    compare(tmp_path, calls)


# -- merging the config ------------------------------------------------------------


def _config(text: str) -> Any:
    return text_format.Parse(text, projector_config_pb2.ProjectorConfig())


def test_repeated_embedding_is_replaced_not_repeated(tmp_path: Path) -> None:
    # torch appends the same EmbeddingInfo twice; the projector would list it twice.
    ours_add_embedding(tmp_path, np.zeros((2, 2)), metadata=["a", "b"])
    ours_add_embedding(tmp_path, np.ones((2, 2)), global_step=3)
    files = ours_add_embedding(tmp_path, np.ones((2, 2)), label_img=torch.ones(2, 3, 1, 1))
    config = _config(files[CONFIG].decode())
    assert [e.tensor_name for e in config.embeddings] == ["default:00000", "default:00003"]
    first = config.embeddings[0]
    assert first.sprite.image_path == "00000/default/sprite.png"
    assert not first.metadata_path  # the replacement is the new call's info, whole
    assert (tmp_path / "00000/default/tensors.tsv").read_text() == "1.0\t1.0\n1.0\t1.0\n"


def test_merges_with_another_writers_config(tmp_path: Path) -> None:
    """A second torch writer would overwrite the first's config; the daemon merges."""
    with TorchWriter(str(tmp_path)) as w:
        torch_add_embedding(w, mat=np.zeros((1, 1)), tag="first", global_step=1)
    before = (tmp_path / CONFIG).read_text()
    files = ours_add_embedding(tmp_path, np.zeros((1, 1)), tag="second", global_step=1)
    merged = files[CONFIG].decode()
    assert merged.startswith(before)
    assert [e.tensor_name for e in _config(merged).embeddings] == ["first:00001", "second:00001"]


def test_keeps_other_fields_and_matches_by_name_or_path() -> None:
    existing = (
        'model_checkpoint_path: "ckpt"\n'
        'embeddings {\n  tensor_name: "default:00000"\n  bookmarks_path: "b"\n}\n'
        'embeddings {\n  tensor_name: "other"\n  tensor_path: "00000/default/tensors.tsv"\n}\n'
        'embeddings {\n  tensor_name: "keep"\n  tensor_shape: 3\n}\n'
    )
    info = projector.embedding_info("00000/default", False, None)
    config = _config(projector.merge_config(existing, info))
    assert config.model_checkpoint_path == "ckpt"
    assert [e.tensor_name for e in config.embeddings] == ["default:00000", "keep"]
    assert config.embeddings[0] == info
    assert list(config.embeddings[1].tensor_shape) == [3]


@pytest.mark.parametrize(
    "existing",
    ["not a config", "embeddings { unknown_field: 1 }", "embeddings {", 'tensor_name: "top"'],
)
def test_unparseable_config_is_refused(existing: str) -> None:
    params = {"subdir": "00000/default", "metadata": None}
    with pytest.raises(ValueError, match="not a ProjectorConfig"):
        projector.embedding_files(params, [np.zeros((1, 1))], existing)


def test_empty_config_file_is_an_empty_config() -> None:
    params = {"subdir": "00000/default", "metadata": None}
    files = projector.embedding_files(params, [np.zeros((1, 1))], "")
    assert files[CONFIG] == (
        b'embeddings {\n  tensor_name: "default:00000"\n'
        b'  tensor_path: "00000/default/tensors.tsv"\n}\n'
    )


def test_golden_config(request: pytest.FixtureRequest, tmp_path: Path) -> None:
    ours_add_embedding(tmp_path, np.zeros((2, 2)), metadata=["a", "b"], tag="words/ünï")
    files = ours_add_embedding(
        tmp_path, np.zeros((2, 2)), label_img=torch.zeros(2, 1, 3, 4), global_step=10, tag="img"
    )
    assert_golden(request, "graph_embedding/projector_config", _config(files[CONFIG].decode()))


# -- the daemon's own checks --------------------------------------------------------

GOOD_SUBDIRS = ["00000/default", "00000/", "-0003/a%2fb", "001.5/x", "tensor(5)/t", "a/b/c/%25"]
BAD_SUBDIRS = [
    "",
    "default",
    "/abs/tag",
    "00000/.",
    "00000/..",
    "../x/tag",
    "a/../tag",
    "./tag",
    "a//tag",
    "a/./tag",
    "00000/a\0b",
    "00000/%zz",
    "00000/100%",
]


@pytest.mark.parametrize("subdir", GOOD_SUBDIRS)
def test_good_subdirs(subdir: str) -> None:
    projector.check_subdir(subdir)
    convert_embedding.check_subdir(subdir)
    files = projector.embedding_files({"subdir": subdir}, [np.zeros((1, 1))], None)
    for rel in files:
        assert os.path.normpath(rel) == rel and not rel.startswith(("/", "../"))


@pytest.mark.parametrize("subdir", BAD_SUBDIRS)
def test_bad_subdirs(subdir: str) -> None:
    with pytest.raises(ValueError):
        projector.check_subdir(subdir)
    with pytest.raises(ValueError):
        projector.embedding_files({"subdir": subdir}, [np.zeros((1, 1))], None)


@given(st.text(alphabet="ab/.%25fc\0", max_size=12))
def test_sdk_and_daemon_subdir_rules_agree(path: str) -> None:
    """Whatever the SDK lets through, the daemon accepts (the tag encoding aside)."""
    try:
        convert_embedding.check_subdir(path)
    except ValueError:
        sdk_ok = False
    else:
        sdk_ok = True
    try:
        projector.check_subdir(path)
    except ValueError:
        daemon_ok = False
    else:
        daemon_ok = True
    enc_tag = path.rpartition("/")[2]
    encoded = enc_tag.count("%") == len(re.findall("%(25|2f|5c)", enc_tag))
    assert daemon_ok == (sdk_ok and encoded)


def test_tensor_name_decodes_the_tag() -> None:
    for tag in ["a/b", "100%", "%2f", "back\\slash", "", "%25%", "ünï"]:
        assert projector.tensor_name(convert_embedding.subdir(12, tag)) == f"{tag}:00012"


def test_limits_agree_with_sdk() -> None:
    assert projector.MAX_SPRITE_SIDE == convert_embedding.MAX_SPRITE_SIDE
    assert projector.MAX_MAT_VALUES == convert_embedding.MAX_MAT_VALUES


@pytest.mark.parametrize(
    ("params", "arrays", "exc"),
    [
        ([], [np.zeros((1, 1))], TypeError),
        ({}, [np.zeros((1, 1))], TypeError),
        ({"subdir": b"00000/x"}, [np.zeros((1, 1))], TypeError),
        ({"subdir": "00000/x", "metadata": b"a\n"}, [np.zeros((1, 1))], TypeError),
        ({"subdir": "00000/x", "metadata": ["a"]}, [np.zeros((1, 1))], TypeError),
        ({"subdir": "00000/x"}, [], ValueError),
        ({"subdir": "00000/x"}, (np.zeros((1, 1)),), ValueError),
        ({"subdir": "00000/x"}, [np.zeros((1, 1))] * 3, ValueError),
        ({"subdir": "00000/x"}, [[1.0]], TypeError),
        ({"subdir": "00000/x"}, [np.zeros((1, 1), complex)], TypeError),
        ({"subdir": "00000/x"}, [np.zeros(3)], ValueError),
        ({"subdir": "00000/x"}, [np.zeros((1, 1, 1))], ValueError),
        ({"subdir": "00000/x"}, [np.zeros((2, 1)), np.zeros((1, 3, 1, 1))], ValueError),
        ({"subdir": "00000/x"}, [np.zeros((1, 1)), np.zeros((1, 2, 1, 1))], ValueError),
        ({"subdir": "00000/x"}, [np.zeros((1, 1)), np.zeros((1, 3, 1))], ValueError),
        ({"subdir": "00000/x"}, [np.zeros((0, 1)), np.zeros((0, 3, 1, 1))], ValueError),
        ({"subdir": "00000/x"}, [np.zeros((1, 1)), np.zeros((1, 3, 1, 0))], ValueError),
        ({"subdir": "00000/x"}, [np.zeros((3, 1)), np.zeros((3, 3, 3, 2))], ValueError),
        ({"subdir": "00000/x"}, [np.zeros((1, 1)), np.zeros((1, 1, 1, 8193))], ValueError),
    ],
)
def test_malformed_records(params: Any, arrays: Any, exc: type[Exception]) -> None:
    with pytest.raises(exc):
        projector.embedding_files(params, arrays, None)


def test_large_zero_sized_records_stay_bounded() -> None:
    # A few bytes on the wire cannot buy more than the limits allow.
    with pytest.raises(ValueError):
        projector.embedding_files({"subdir": "0/x"}, [np.zeros((1 << 25, 0))], None)
    n = 4096
    files = projector.embedding_files(
        {"subdir": "0/x"}, [np.zeros((n, 0)), np.zeros((n, 1, 0, 2), np.uint8)], None
    )
    assert pixels(files["0/x/sprite.png"]).shape == (128, 128, 3)
    assert files["0/x/tensors.tsv"] == b"\n" * n


def test_config_size_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(projector, "MAX_CONFIG_CHARS", 10)
    with pytest.raises(ValueError, match="larger"):
        projector.embedding_files({"subdir": "0/x"}, [np.zeros((1, 1))], " " * 11)


# -- Hypothesis -----------------------------------------------------------------------

_dtypes = st.sampled_from(
    [np.bool_, np.int8, np.uint8, np.int32, np.int64, np.uint64, np.float16, np.float32, np.float64]
)
_small_arrays = hnp.arrays(
    _dtypes, hnp.array_shapes(min_dims=0, max_dims=5, min_side=0, max_side=4)
)
_mat_and_images = st.integers(0, 5).flatmap(
    lambda n: st.tuples(
        hnp.arrays(_dtypes, st.tuples(st.just(n), st.integers(0, 3))),
        hnp.arrays(
            _dtypes,
            st.tuples(st.just(n), st.sampled_from([1, 3]), st.integers(0, 4), st.integers(0, 4)),
        ),
    ).map(list)
)
_params = st.one_of(
    st.fixed_dictionaries(
        {"subdir": st.sampled_from(GOOD_SUBDIRS + BAD_SUBDIRS)},
        optional={"metadata": st.one_of(st.none(), st.text(max_size=20), st.integers())},
    ),
    st.dictionaries(st.text(max_size=8), st.one_of(st.none(), st.text(max_size=8), st.integers())),
    st.none(),
)
_existing = st.one_of(
    st.none(),
    st.text(max_size=60),
    st.sampled_from(
        [
            'embeddings { tensor_name: "default:00000" tensor_path: "x" }',
            "embeddings { sprite { single_image_dim: 4294967296 } }",
            'embeddings { tensor_name: "\\377" }',
            'model_checkpoint_path: "a" model_checkpoint_path: "b"',
            "embeddings " * 300,
        ]
    ),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    params=_params,
    arrays=st.one_of(_mat_and_images, st.lists(_small_arrays, max_size=3)),
    existing=_existing,
)
def test_fuzz_only_type_or_value_errors(params: Any, arrays: Any, existing: Any) -> None:
    try:
        files = projector.embedding_files(params, arrays, existing)
    except (TypeError, ValueError):
        return
    for rel, data in files.items():
        assert isinstance(data, bytes)
        assert os.path.normpath(rel) == rel and not os.path.isabs(rel)
        assert rel.split("/")[0] != ".."
