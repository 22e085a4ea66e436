"""Peer: one call of every ``SummaryWriter`` method, the same data each time.

Run as a script, it logs through ``PEER_WRITER`` (``summaryd`` or ``torch``)
into ``PEER_LOG_DIR`` (``PEER_ONNX``: an ONNX model file, see
``write_onnx_model``), closes its writers and writes ``PEER_RESULT`` (JSON:
the methods that raised, the warnings given), then exits 0.  Imported, it
gives ``tests/integration/test_tensorboard_server.py`` the calls (``CALLS``)
and what TensorBoard serves for them (``expected``).

Every call that takes a wall time gets an explicit one far from now, so the
two writers' wall times compare exactly (one scalar, ``live``, deliberately
takes "now"); the calls without a ``walltime`` argument take "now".
"""

from __future__ import annotations

import dataclasses
import json
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.tensorboard import SummaryWriter as TorchWriter

WT = 1_500_000_000.0

_rng = np.random.RandomState(1234)
IMAGE_CHW = _rng.rand(3, 16, 24).astype(np.float32)
IMAGE_HW = (_rng.rand(8, 10) * 255).astype(np.uint8)
IMAGES_NCHW = _rng.rand(4, 3, 8, 8)
BOXES = np.array([[1, 1, 10, 8], [5, 4, 20, 14]])
HIST_VALUES = _rng.normal(size=1000)
PR_LABELS = _rng.randint(0, 2, 100)
PR_PREDS = _rng.rand(100)
EMB_MAT = _rng.rand(6, 3)
EMB_IMGS = _rng.rand(6, 3, 4, 4)
EMB2_MAT = _rng.rand(5, 2)
# A moving gradient with 768 colours per frame, more than a GIF frame's 256:
# the encoder must choose a palette (see GIF_*_TOLERANCE in the test).
_t, _y, _x = np.meshgrid(np.arange(6), np.arange(24), np.arange(32), indexing="ij")
VIDEO = np.stack([(_x * 8 + _t * 40) % 256, _y * 10, 255 - _x * 7 - _t * 5], axis=1)[None].astype(
    np.uint8
)  # (N=1, T=6, C=3, H=24, W=32)
AUDIO = (np.sin(2 * np.pi * 440 * np.linspace(0, 0.1, 800)) * 0.8)[None, :]
MESH_VERTICES = np.array([[[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]]], dtype=np.float32)
MESH_COLORS = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255], [9, 9, 9]]], dtype=np.uint8)
MESH_FACES = np.array([[[0, 1, 2], [0, 2, 3], [0, 1, 3]]], dtype=np.int32)


class Net(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(4, 3)
        self.act = torch.nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.fc(x))  # type: ignore[no-any-return]


def figure(n: int) -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(2, 1.5), dpi=40)
    fig.add_subplot().plot([0, 1, 2], [n, 2, 1 + n])
    return fig


def write_onnx_model(path: Path) -> None:
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [x], [y])
    onnx.save(helper.make_model(graph), str(path))


def add_graph(w: Any) -> None:
    torch.manual_seed(0)
    with warnings.catch_warnings():
        # torch 2.13's add_graph traces with torch.jit.trace, deprecated since 2.10.
        warnings.filterwarnings(
            "ignore", r"`torch\.jit\.trace(_method)?` is deprecated", DeprecationWarning
        )
        w.add_graph(Net(), torch.zeros(2, 4))


@dataclasses.dataclass
class Ctx:
    """What a call needs besides the main writer: sub-writers (one more run each)."""

    cls: type
    log_dir: Path
    onnx_path: Path

    def sub(self, name: str, fn: Callable[[Any], None]) -> None:
        w = self.cls(str(self.log_dir / name))
        try:
            fn(w)
        finally:
            w.close()


def _scalars(w: Any, c: Ctx) -> None:
    for s in range(5):
        w.add_scalar("loss", 1.0 / (s + 1), s, walltime=WT + s)
        w.add_scalar("cs/a", s * 0.5, s, walltime=WT + s)
        w.add_scalar("cs/lo", s * 0.5 - 0.1, s, walltime=WT + s)
        w.add_scalar("cs/hi", s * 0.5 + 0.1, s, walltime=WT + s)
    w.add_scalar("live", 3.0, 0)  # "now": compared as <live>


def _pr_curve_raw(w: Any, c: Ctx) -> None:
    w.add_pr_curve_raw(
        "pr_raw",
        [10, 8, 5, 2, 0],
        [10, 6, 3, 1, 0],
        [0, 4, 7, 9, 10],
        [0, 2, 5, 8, 10],
        [0.5, 0.57, 0.62, 0.66, 0.0],
        [1.0, 0.8, 0.5, 0.2, 0.0],
        0,
        num_thresholds=5,
        walltime=WT,
    )


# (method, call, what TensorBoard serves for it: (plugin, run relative to the
# side, tag, steps)).  Run "*" names an entry of a route that merges all runs
# ("custom_scalars/layout": a category; "hparams/experiment": a hyperparameter
# or metric); steps [] where a route has none.  The calls run in this order on
# one main writer per side; custom scalars layouts go to sub-runs of their own
# because TensorBoard shows only the last layout of a run.
Call = Callable[[Any, Ctx], object]  # what a call returns is ignored
CALLS: list[tuple[str, Call, list[tuple[str, str, str, list[int]]]]] = [
    (
        "add_scalar",
        _scalars,
        [("scalars", ".", t, [0, 1, 2, 3, 4]) for t in ("loss", "cs/a", "cs/lo", "cs/hi")]
        + [("scalars", ".", "live", [0])],
    ),
    (
        "add_scalars",
        lambda w, c: [
            w.add_scalars("pair", {"x": float(s), "y": -float(s)}, s, walltime=WT + s)
            for s in range(3)
        ],
        [("scalars", "pair_x", "pair", [0, 1, 2]), ("scalars", "pair_y", "pair", [0, 1, 2])],
    ),
    (
        "add_text",
        lambda w, c: (
            w.add_text("note", "**bold** and `code`", 0, walltime=WT),
            w.add_text("note", "two\n\n| a | b |\n|---|---|\n| 1 | 2 |", 1, walltime=WT + 1),
        ),
        [("text", ".", "note/text_summary", [0, 1])],
    ),
    (
        "add_histogram",
        lambda w, c: (
            w.add_histogram("hist", HIST_VALUES, 0, walltime=WT),
            w.add_histogram("hist", torch.tensor(HIST_VALUES * 2), 1, walltime=WT + 1),
            w.add_histogram("hist_auto", HIST_VALUES, 0, bins="auto", walltime=WT),
        ),
        [
            (p, ".", t, s)
            for p in ("histograms", "distributions")
            for t, s in (("hist", [0, 1]), ("hist_auto", [0]))
        ],
    ),
    (
        "add_histogram_raw",
        lambda w, c: w.add_histogram_raw(
            "hist_raw", -1.0, 3.0, 10, 8.0, 20.0, [0.0, 1.0, 3.0], [2, 5, 3], 0, walltime=WT
        ),
        [("histograms", ".", "hist_raw", [0]), ("distributions", ".", "hist_raw", [0])],
    ),
    (
        "add_image",
        lambda w, c: (
            w.add_image("image/chw", IMAGE_CHW, 0, walltime=WT),
            w.add_image("image/hw", IMAGE_HW, 0, walltime=WT, dataformats="HW"),
        ),
        [("images", ".", "image/chw", [0]), ("images", ".", "image/hw", [0])],
    ),
    (
        "add_images",
        lambda w, c: w.add_images("images", IMAGES_NCHW, 0, walltime=WT),
        [("images", ".", "images", [0])],
    ),
    (
        "add_image_with_boxes",
        lambda w, c: w.add_image_with_boxes(
            "boxes", IMAGE_CHW, BOXES, 0, walltime=WT, labels=["cat", "dog"]
        ),
        [("images", ".", "boxes", [0])],
    ),
    (
        "add_figure",
        lambda w, c: (
            w.add_figure("figure", figure(0), 0, walltime=WT),
            w.add_figure("figures", [figure(1), figure(2)], 0, walltime=WT),
        ),
        [("images", ".", "figure", [0]), ("images", ".", "figures", [0])],
    ),
    (
        "add_video",
        lambda w, c: w.add_video("video", VIDEO, 0, fps=4, walltime=WT),
        [("images", ".", "video", [0])],
    ),
    (
        "add_audio",
        lambda w, c: w.add_audio("audio", AUDIO, 0, sample_rate=8000, walltime=WT),
        [("audio", ".", "audio", [0])],
    ),
    (
        "add_pr_curve",
        lambda w, c: (
            w.add_pr_curve("pr", PR_LABELS, PR_PREDS, 0, walltime=WT),
            w.add_pr_curve("pr", PR_LABELS, PR_PREDS**2, 1, num_thresholds=11, walltime=WT + 1),
        ),
        [("pr_curves", ".", "pr", [0, 1])],
    ),
    ("add_pr_curve_raw", _pr_curve_raw, [("pr_curves", ".", "pr_raw", [0])]),
    (
        "add_custom_scalars",
        lambda w, c: w.add_custom_scalars(
            {
                "Group": {
                    "lines": ["Multiline", ["cs/a", "cs/lo"]],
                    "band": ["Margin", ["cs/a", "cs/lo", "cs/hi"]],
                },
                "Other": {"loss": ["Multiline", ["loss", r"pair"]]},
            }
        ),
        [("custom_scalars/layout", "*", "Group", []), ("custom_scalars/layout", "*", "Other", [])],
    ),
    (
        "add_custom_scalars_multilinechart",
        lambda w, c: c.sub(
            "cs_multi",
            lambda s: s.add_custom_scalars_multilinechart(["loss", "cs/a"], "Multi", "ml"),
        ),
        [("custom_scalars/layout", "*", "Multi", [])],
    ),
    (
        "add_custom_scalars_marginchart",
        lambda w, c: c.sub(
            "cs_margin", lambda s: s.add_custom_scalars_marginchart(["cs/a", "cs/lo", "cs/hi"])
        ),
        [("custom_scalars/layout", "*", "default", [])],
    ),
    (
        "add_mesh",
        lambda w, c: w.add_mesh(
            "mesh",
            MESH_VERTICES,
            colors=MESH_COLORS,
            faces=MESH_FACES,
            config_dict={"camera": {"cls": "PerspectiveCamera", "fov": 75}},
            global_step=0,
            walltime=WT,
        ),
        [("mesh", ".", "mesh", [0])],
    ),
    (
        "add_hparams",
        lambda w, c: w.add_hparams(
            {"lr": 0.1, "bsize": 16, "opt": "adam", "flag": True, "t": torch.tensor([0.5])},
            {"hparam/accuracy": 0.9, "hparam/loss": 0.25},
            hparam_domain_discrete={"opt": ["adam", "sgd"]},
            run_name="hp",
            global_step=2,
        ),
        [
            ("scalars", "hp", "hparam/accuracy", [2]),
            ("scalars", "hp", "hparam/loss", [2]),
            ("hparams", "hp", "session", [2]),
        ]
        + [("hparams/experiment", "*", name, []) for name in ["bsize", "flag", "lr", "opt", "t"]]
        + [("hparams/experiment", "*", tag, []) for tag in ["hparam/accuracy", "hparam/loss"]],
    ),
    (
        "add_graph",
        lambda w, c: add_graph(w),
        [("graphs", ".", "", []), ("graphs", ".", "step1", [])],
    ),
    (
        "add_onnx_graph",
        lambda w, c: c.sub("onnx", lambda s: s.add_onnx_graph(str(c.onnx_path))),
        [("graphs", "onnx", "", [])],
    ),
    (
        "add_embedding",
        lambda w, c: (
            w.add_embedding(
                EMB_MAT,
                metadata=[f"p{i}" for i in range(6)],
                label_img=torch.tensor(EMB_IMGS),
                global_step=0,
                tag="emb",
            ),
            w.add_embedding(
                torch.tensor(EMB2_MAT),
                metadata=[[f"n{i}", i % 2] for i in range(5)],
                metadata_header=["name", "parity"],
                global_step=1,
                tag="emb2",
            ),
        ),
        [("projector", ".", "emb:00000", []), ("projector", ".", "emb2:00001", [])],
    ),
    (
        "add_tensor",
        lambda w, c: w.add_tensor(
            "tensor", torch.arange(6, dtype=torch.float32).reshape(2, 3), 0, walltime=WT
        ),
        [],  # no dashboard serves the "tensor" plugin: see test_add_tensor_in_tensorboards_reader
    ),
]
Key = tuple[str, str, str]  # (plugin, run relative to the side or "*" for all runs, tag)


def expected(failed: Any = ()) -> dict[Key, list[int]]:
    """What TensorBoard serves for one side (the steps of each series) when the
    methods ``failed`` raised instead of logging."""
    return {
        (plugin, run, tag): steps
        for method, _, serves in CALLS
        if method not in failed
        for plugin, run, tag, steps in serves
    }


def log_every_kind(cls: type, log_dir: Path, onnx_path: Path) -> dict[str, Any]:
    """Every call of ``CALLS`` through writers of ``cls``, closed at the end.

    Returns ``{"errors": {method: what it raised}, "warnings": [...]}``: a
    method that raises is recorded (it fails only the plugins it feeds) and
    the next one runs; every warning is recorded (torch's writer gives none).
    """
    errors: dict[str, str] = {}
    ctx = Ctx(cls, log_dir, onnx_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        w = cls(str(log_dir))
        for method, call, _ in CALLS:
            try:
                call(w, ctx)
            except Exception as e:
                errors[method] = f"{type(e).__name__}: {e}"
        try:
            w.close()
        except Exception as e:
            errors["close"] = f"{type(e).__name__}: {e}"
    return {
        "errors": errors,
        "warnings": [
            f"{w.category.__name__}: {w.message} ({w.filename}:{w.lineno})" for w in caught
        ],
    }


if __name__ == "__main__":
    if os.environ["PEER_WRITER"] == "summaryd":
        from summaryd import SummaryWriter as writer_class
    else:
        writer_class = TorchWriter
    result = log_every_kind(
        writer_class, Path(os.environ["PEER_LOG_DIR"]), Path(os.environ["PEER_ONNX"])
    )
    Path(os.environ["PEER_RESULT"]).write_text(json.dumps(result))
