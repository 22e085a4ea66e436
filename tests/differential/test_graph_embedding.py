"""Differential: add_graph / add_onnx_graph / add_embedding, torch vs summaryd.

The same calls through ``torch.utils.tensorboard.SummaryWriter`` (into
``tmp_path/torch``) and ``summaryd.SummaryWriter`` with a real daemon (into
``tmp_path/ours``); both trees are read by TensorBoard:

* the event files with ``RawEventFileLoader`` (``compare.assert_trees_equal``:
  same events, graph bytes included, live wall times normalised away);
* graphs through the graphs plugin's routes (``/info``, ``/graph``,
  ``/run_metadata``) over a ``MultiplexerDataProvider``, as TensorBoard serves
  them to its frontend;
* embeddings through the projector plugin's routes (``/runs``, ``/info``,
  ``/tensor``, ``/metadata``, ``/sprite_image`` with the sprite decoded to
  pixels), and the projector files themselves (bytes; sprite pixels).
"""

from __future__ import annotations

import io
import json
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper
from PIL import Image
from torch.utils.tensorboard import SummaryWriter as TorchWriter
from werkzeug.test import Client

from summaryd import SummaryWriter as OurWriter
from summaryd.errors import ArgumentShapeError, ArgumentValueError

from ..conftest import DaemonEnv
from .compare import Clock, assert_trees_equal, events_of
from .compare import run_both as run_both_in_both_writers

pytestmark = [
    pytest.mark.differential,
    pytest.mark.integration,
    # torch 2.13's add_graph traces with the deprecated torch.jit.trace (both writers run it)
    pytest.mark.filterwarnings("ignore:`torch.jit.trace:DeprecationWarning"),
    # TensorBoard's plugins import a vendored html5lib that warns on import
    pytest.mark.filterwarnings("ignore:html5lib's sanitizer is deprecated:DeprecationWarning"),
]

Calls = Callable[[Any], None]
CONFIG = "projector_config.pbtxt"


RUNTIME = [("", RuntimeWarning)]  # torch's NaN -> uint8 sprite cast


def run_both(tmp_path: Path, calls: Calls) -> tuple[Path, Path]:
    return run_both_in_both_writers(tmp_path, calls, ignore=RUNTIME)


# -- TensorBoard's plugins ----------------------------------------------------------


def _context(root: Path) -> Any:
    from tensorboard.backend.event_processing import data_provider
    from tensorboard.backend.event_processing import plugin_event_multiplexer as pem
    from tensorboard.plugins import base_plugin

    mux = pem.EventMultiplexer()
    mux.AddRunsFromDirectory(str(root))
    mux.Reload()
    provider = data_provider.MultiplexerDataProvider(mux, str(root))
    return base_plugin.TBContext(logdir=str(root), data_provider=provider, multiplexer=mux)


def _get(app: Any, route: str, **query: str) -> tuple[int, bytes]:
    r = Client(app).get(route, query_string=query)
    return r.status_code, r.data


def graphs_view(root: Path) -> dict[str, Any]:
    """What TensorBoard's graphs plugin serves for every run and tag."""
    from tensorboard.plugins.graph.graphs_plugin import GraphsPlugin

    apps = GraphsPlugin(_context(root)).get_plugin_apps()
    status, body = _get(apps["/info"], "/info")
    assert status == 200
    info = json.loads(body)
    view: dict[str, Any] = {"info": info}
    for run, run_info in sorted(info.items()):
        if run_info["run_graph"]:
            view[f"graph {run}"] = _get(apps["/graph"], "/graph", run=run, conceptual="false")
        for tag in sorted(run_info["tags"]):
            view[f"run_metadata {run} {tag}"] = _get(
                apps["/run_metadata"], "/run_metadata", run=run, tag=tag
            )
    return view


def _pixels(png: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(png)) as im:
        return np.asarray(im.convert("RGB"))


def projector_view(root: Path) -> dict[str, Any]:
    """What TensorBoard's projector plugin serves: runs, configs, tensors, metadata, sprites."""
    from tensorboard.plugins.projector.projector_plugin import ProjectorPlugin

    apps = ProjectorPlugin(_context(root)).get_plugin_apps()
    status, body = _get(apps["/runs"], "/runs")
    assert status == 200
    view: dict[str, Any] = {"runs": json.loads(body)}
    for run in view["runs"]:
        status, body = _get(apps["/info"], "/info", run=run)
        assert status == 200, body
        config = json.loads(body)
        view[f"info {run}"] = config
        for e in config.get("embeddings", []):
            name = e["tensorName"]
            status, body = _get(apps["/tensor"], "/tensor", run=run, name=name)
            assert status == 200, body
            view[f"tensor {run} {name}"] = np.frombuffer(body, np.float32).tobytes()
            if "metadataPath" in e:
                view[f"metadata {run} {name}"] = _get(
                    apps["/metadata"], "/metadata", run=run, name=name
                )
            if "sprite" in e:
                status, body = _get(apps["/sprite_image"], "/sprite_image", run=run, name=name)
                assert status == 200, body
                view[f"sprite {run} {name}"] = _pixels(body).tobytes()
    return view


def projector_files(root: Path) -> dict[str, bytes]:
    out = {}
    for dirpath, _, names in os.walk(root):
        for name in names:
            if "tfevents" not in name:
                path = Path(dirpath) / name
                data = path.read_bytes()
                out[path.relative_to(root).as_posix()] = (
                    _pixels(data).tobytes() if name.endswith(".png") else data
                )
    return out


def compare_graphs(tmp_path: Path, calls: Calls) -> dict[str, Any]:
    clock = Clock()
    t, o = run_both(tmp_path, calls)
    assert_trees_equal(t, o, clock)
    ref, ours = graphs_view(t), graphs_view(o)
    assert ours == ref
    return ours


def compare_embeddings(tmp_path: Path, calls: Calls) -> dict[str, Any]:
    clock = Clock()
    t, o = run_both(tmp_path, calls)
    assert_trees_equal(t, o, clock)
    ref_files, our_files = projector_files(t), projector_files(o)
    assert sorted(our_files) == sorted(ref_files)
    for rel in ref_files:
        assert our_files[rel] == ref_files[rel], f"{rel} differs"
    ref, ours = projector_view(t), projector_view(o)
    assert sorted(ours) == sorted(ref)
    for key in ref:
        assert ours[key] == ref[key], key
    return ours


# -- graphs --------------------------------------------------------------------------


class Net(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU())
        self.fc = torch.nn.Linear(4 * 6 * 6, 2)

    def forward(self, x: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        return self.fc(self.conv(x).flatten(1)) * scale  # type: ignore[no-any-return]


def _net() -> tuple[Net, tuple[torch.Tensor, torch.Tensor]]:
    torch.manual_seed(0)
    return Net(), (torch.randn(2, 3, 8, 8), torch.tensor(0.5))


def test_add_graph(shared_daemon: DaemonEnv, tmp_path: Path) -> None:
    model, args = _net()
    view = compare_graphs(tmp_path, lambda w: w.add_graph(model, args))
    assert view["info"]["."]["run_graph"] and "step1" in view["info"]["."]["tags"]
    assert b'op: "aten::_convolution"' in view["graph ."][1]


def test_add_graph_between_scalars_and_twice(shared_daemon: DaemonEnv, tmp_path: Path) -> None:
    """Events keep their order; a second graph follows the first, as torch writes it."""
    model, args = _net()

    def calls(w: Any) -> None:
        w.add_scalar("loss", 1.0, 1)
        w.add_graph(model, args)
        w.add_scalar("loss", 0.5, 2)
        w.add_graph(torch.nn.Linear(3, 1), torch.zeros(1, 3), verbose=False)
        w.add_scalar("loss", 0.25, 3)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        compare_graphs(tmp_path, calls)
    kinds = [e.WhichOneof("what") for e in events_of(_tree(tmp_path / "ours"))]
    assert kinds == [
        "file_version", "summary", "graph_def", "tagged_run_metadata",
        "summary", "graph_def", "tagged_run_metadata", "summary",
    ]  # fmt: skip


def _tree(root: Path) -> Any:
    from .compare import read_tree

    return read_tree(root)


def test_add_graph_bad_model_raises_torchs_error(shared_daemon: DaemonEnv, tmp_path: Path) -> None:
    w = OurWriter(str(tmp_path / "ours"))
    with pytest.raises(RuntimeError):
        w.add_graph(torch.nn.Linear(3, 2), torch.zeros(1, 4))  # the trace fails, as torch's
    with pytest.raises(AttributeError):
        w.add_graph(None, torch.zeros(1))
    w.add_scalar("after", 1.0, 1)
    w.close()
    kinds = [e.WhichOneof("what") for e in events_of(_tree(tmp_path / "ours"))]
    assert kinds == ["file_version", "summary"]


def _onnx_file(path: Path) -> str:
    x = helper.make_tensor_value_info("X", TensorProto.FLOAT, [1, 3, 8, 8])
    w = helper.make_tensor_value_info("W", TensorProto.FLOAT, [4, 3, 3, 3])
    y = helper.make_tensor_value_info("Y", TensorProto.FLOAT, ["batch", 4, 6, 6])
    conv = helper.make_node("Conv", ["X", "W"], ["C"], kernel_shape=[3, 3], auto_pad="VALID")
    relu = helper.make_node("Relu", ["C"], ["Y"])
    model = helper.make_model(helper.make_graph([conv, relu], "net", [x, w], [y]))
    onnx.save(model, str(path))
    return str(path)


def test_add_onnx_graph(
    shared_daemon: DaemonEnv, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = _onnx_file(tmp_path / "net.onnx")
    view = compare_graphs(tmp_path, lambda w: w.add_onnx_graph(source))
    assert view["info"]["."]["run_graph"]
    assert b'op: "Conv"' in view["graph ."][1]
    out = capsys.readouterr().out
    assert out == "X\nW\nY\nC\nY\n" * 2  # torch's load_onnx_graph prints each name: both did


# -- embeddings ----------------------------------------------------------------------


def test_add_embedding_everything(shared_daemon: DaemonEnv, tmp_path: Path) -> None:
    g = torch.Generator().manual_seed(0)
    words = [f"w{i}" for i in range(12)]
    mat1 = torch.randn(12, 5, generator=g)
    img2 = torch.rand(6, 3, 5, 8, generator=g) * 1.2 - 0.1
    mat3 = torch.randn(7, 3, generator=g).bfloat16()
    img3 = torch.rand(7, 1, 4, 4, generator=g)

    def calls(w: Any) -> None:
        w.add_embedding(mat1, metadata=words, tag="words")
        w.add_embedding(
            np.arange(12, dtype=np.float64).reshape(6, 2) / 7,
            metadata=[[i, f"label {i}"] for i in range(6)],
            metadata_header=["index", "name"],
            label_img=img2,
            global_step=3,
            tag="images/rgb",
        )
        w.add_embedding(mat3, label_img=img3, global_step=12345, tag="100% gray\\")
        w.add_embedding(torch.ones(2, 2, dtype=torch.int64) * 3)

    view = compare_embeddings(tmp_path, calls)
    assert [e["tensorName"] for e in view["info ."]["embeddings"]] == [
        "words:00000",
        "images/rgb:00003",
        "100% gray\\:12345",
        "default:00000",
    ]


def test_add_embedding_large_arrays(shared_daemon: DaemonEnv, tmp_path: Path) -> None:
    """Megabytes of matrix and images (a blob next to the ring), the same files as torch's."""
    g = torch.Generator().manual_seed(1)
    mat = torch.randn(3000, 64, generator=g)
    img = torch.rand(3000, 3, 8, 8, generator=g)
    labels = [str(i % 10) for i in range(3000)]
    view = compare_embeddings(
        tmp_path, lambda w: w.add_embedding(mat, metadata=labels, label_img=img, global_step=1)
    )
    assert view["info ."]["embeddings"][0]["tensorShape"] == [3000, 64]


def test_embedding_config_merges_across_writers(shared_daemon: DaemonEnv, tmp_path: Path) -> None:
    """torch's second writer would overwrite the first's config; the daemon merges, and a
    repeated step and tag replaces its embedding instead of listing it twice."""
    root = tmp_path / "ours"
    with OurWriter(str(root)) as a:
        a.add_embedding(np.eye(3), metadata=["a", "b", "c"], tag="first")
    with OurWriter(str(root)) as b:
        b.add_embedding(np.zeros((2, 2)), tag="second", global_step=1)
        b.add_embedding(np.ones((3, 3)), tag="first")  # replaces first:00000, whole
    view = projector_view(root)
    embeddings = view["info ."]["embeddings"]
    assert [e["tensorName"] for e in embeddings] == ["first:00000", "second:00001"]
    assert "metadataPath" not in embeddings[0]
    assert view["tensor . first:00000"] == np.ones((3, 3), np.float32).tobytes()


def test_bad_embedding_raises_in_caller_and_writes_nothing(
    shared_daemon: DaemonEnv, tmp_path: Path
) -> None:
    root = tmp_path / "ours"
    with OurWriter(str(root)) as w:
        with pytest.raises(ArgumentShapeError):
            w.add_embedding(np.zeros((3, 2)), metadata=["a", "b"])
        with pytest.raises(AssertionError):
            w.add_embedding(np.zeros(3))
        with pytest.raises(ArgumentValueError):
            w.add_embedding(np.zeros((2, 2)), tag="..")
    assert projector_files(root) == {}


def test_embedding_numpy_label_img(shared_daemon: DaemonEnv, tmp_path: Path) -> None:
    """torch fails on a numpy ``label_img``; summaryd draws it as torch draws the tensor."""
    img = np.random.default_rng(2).random((5, 3, 4, 4), dtype=np.float32)
    t_root, o_root = tmp_path / "torch", tmp_path / "ours"
    with TorchWriter(str(t_root)) as tw:
        tw.add_embedding(np.zeros((5, 2)), label_img=torch.from_numpy(img))
    with OurWriter(str(o_root)) as ow:
        ow.add_embedding(np.zeros((5, 2)), label_img=img)
    assert projector_files(o_root) == projector_files(t_root)


def test_add_embedding_steps_as_torch_spells_them(shared_daemon: DaemonEnv, tmp_path: Path) -> None:
    """torch names the directory ``str(global_step).zfill(5)``, whatever the step's type."""

    def calls(w: Any) -> None:
        for step in [None, 7, 1.5, "8", np.int64(2), torch.tensor(4), 2**70]:
            w.add_embedding(np.eye(2), global_step=step, tag="t")

    view = compare_embeddings(tmp_path, calls)
    names = [e["tensorName"] for e in view["info ."]["embeddings"]]
    assert names == [
        "t:00000",
        "t:00007",
        "t:001.5",
        "t:00008",
        "t:00002",
        "t:tensor(4)",
        f"t:{2**70}",
    ]
