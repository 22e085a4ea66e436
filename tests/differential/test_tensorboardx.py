"""Differential: tensorboardX 2.6.5's SummaryWriter vs summaryd.tensorboardx.SummaryWriter.

The same calls through ``tensorboardX.SummaryWriter`` (into ``tmp_path/torch``,
the reference side of ``compare.py``'s helpers) and through summaryd's
tensorboardX writer with a real daemon (into ``tmp_path/ours``); both trees
read with TensorBoard's readers and compared by ``compare.assert_trees_equal``.

One difference is set aside: the daemon's first event of a file carries
torch's ``source_metadata`` (``tensorboard.summary.writer.event_file_writer``),
tensorboardX's has none; TensorBoard reads both alike.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from summaryd.tensorboardx import SummaryWriter as OurWriter

from ..conftest import DaemonEnv
from .compare import Clock, RunDir, assert_trees_equal, events_of, read_tree, run_both

tbx = pytest.importorskip("tensorboardX")

pytestmark = [pytest.mark.differential, pytest.mark.integration]

WT = 1_234_567_890.25  # an explicit wall time far outside the test's window
RNG = np.random.default_rng(7)
IMG = RNG.random((3, 6, 5)).astype(np.float32)
VALUES = RNG.standard_normal(500)
VIDEO = RNG.random((1, 3, 3, 4, 4))

# tensorboardX's own code trips numpy's deprecation of float() on 1-element arrays.
_REF_WARNINGS = [("Conversion of an array with ndim > 0", DeprecationWarning)]


def _normalise(ev: Any) -> None:
    """Set aside what differs on purpose: source_metadata (above) and PNG bytes (summaryd's
    PNG writer is not PIL's: the decoded pixels are compared instead, as TensorBoard shows them)."""
    from PIL import Image

    ev.ClearField("source_metadata")
    for v in ev.summary.value:
        data = v.image.encoded_image_string
        if v.HasField("image") and data.startswith(b"\x89PNG"):
            with Image.open(io.BytesIO(data)) as im:
                v.image.encoded_image_string = im.mode.encode() + b":" + im.tobytes()


def compare(tmp_path: Path, calls: Callable[[Any], None]) -> tuple[dict[str, RunDir], ...]:
    clock = Clock()
    t, o = run_both(
        tmp_path,
        calls,
        ignore=_REF_WARNINGS,
        printed=[],  # what tensorboardX prints is not compared here
        impls=(tbx.SummaryWriter, OurWriter),
    )
    return assert_trees_equal(t, o, clock, adjust=_normalise)


CASES: dict[str, Callable[[Any], None]] = {
    "scalar": lambda w: (w.add_scalar("loss", 0.5, 1), w.add_scalar("loss", 2, 2, walltime=WT)),
    "scalar_cleaned_tag": lambda w: w.add_scalar("/a b/c$d", np.float32(1.5), 3),
    "scalar_display_name": lambda w: w.add_scalar("acc", 0.9, 4, display_name="Accuracy"),
    "scalar_description": lambda w: w.add_scalar(
        "acc", 0.8, 5, WT, display_name="Accuracy", summary_description="top-1, **val**"
    ),
    "scalar_description_only": lambda w: w.add_scalar("x", 1.0, 1, summary_description="d"),
    "scalars": lambda w: (
        w.add_scalars("grp/main", {"a": 1.0, "b": np.float64(2.0)}, 1, walltime=WT),
        w.add_scalars("grp/main", {"a": 3.0}, 2),
    ),
    "text": lambda w: (w.add_text("note", "hello **md**", 1), w.add_text("n2", "ü", 2, WT)),
    "histogram": lambda w: w.add_histogram("w/fc 1", VALUES, 3, walltime=WT),
    "histogram_auto_maxbins": lambda w: w.add_histogram("h", VALUES, 1, bins="auto", max_bins=8),
    "histogram_raw": lambda w: w.add_histogram_raw(
        "hr", 0, 4, 5, 10, 30, [1.0, 2, 3, 4], [1, 1, 1, 2], 2, WT
    ),
    "image": lambda w: w.add_image("img one", IMG, 1, walltime=WT),
    "image_hwc_u8": lambda w: w.add_image(
        "img", (IMG * 255).astype(np.uint8).transpose(1, 2, 0), 2, dataformats="HWC"
    ),
    "images_list": lambda w: w.add_images("batch", [IMG, IMG * 0.5], 1, dataformats="CHW"),
    "images_nhwc": lambda w: w.add_images(
        "b", np.stack([IMG.transpose(1, 2, 0)] * 3), 1, dataformats="NHWC"
    ),
    "video_ntchw": lambda w: w.add_video("vid$", VIDEO, 1, walltime=WT),
    "video_nthwc_u8": lambda w: w.add_video(
        "v", (VIDEO * 255).astype(np.uint8).transpose(0, 1, 3, 4, 2), 2, dataformats="NTHWC"
    ),
    "mesh": lambda w: w.add_mesh(
        "m",
        np.arange(18.0).reshape(1, 6, 3),
        colors=np.full((1, 6, 3), 200),
        config_dict={"camera": {"fov": 75}},
        global_step=2,
        walltime=WT,
    ),
    "pr_curve": lambda w: w.add_pr_curve(
        "pr", np.array([0, 1, 1, 0]), np.array([0.1, 0.8, 0.6, 0.3]), 1, 5, walltime=WT
    ),
    "custom_scalars": lambda w: w.add_custom_scalars_multilinechart(["a", "b"], title="t"),
    "use_metadata": lambda w: _with_metadata(w),
}


def _with_metadata(w: Any) -> None:
    with w.use_metadata(global_step=17, walltime=WT):
        w.add_scalar("s", 0.1)
        w.add_scalar("s", 0.2, global_step=7)
        w.add_scalar("s", 0.3, walltime=WT + 1)
        w.add_histogram("h", VALUES)
    w.add_scalar("s", 0.4)


@pytest.mark.parametrize("name", list(CASES))
def test_same_events(shared_daemon: DaemonEnv, tmp_path: Path, name: str) -> None:
    compare(tmp_path, CASES[name])


def test_scalars_layout_and_export_to_json(shared_daemon: DaemonEnv, tmp_path: Path) -> None:
    """Sub-runs ``logdir/<main_tag>/<key>``; scalar_dict and its JSON equal tensorboardX's."""
    exported = {}

    def calls(w: Any) -> None:
        w.add_scalars("run_14h", {"xsinx": 1.0, "xcosx": np.float32(0.5)}, 1, walltime=WT)
        w.add_scalars("run_14h", {"xsinx": 2.0}, 2, walltime=WT + 1)
        w.add_scalar("plain", 3.0, 1)  # not in scalar_dict (tensorboardX keeps add_scalars' only)
        root = Path(w.logdir)
        out = root.parent / f"{root.name}.json"
        w.export_scalars_to_json(str(out))
        assert w.scalar_dict == {}
        exported[root.name] = json.loads(out.read_text().replace(str(root), "<root>"))

    ref, ours = compare(tmp_path, calls)
    assert sorted(ref) == [".", "run_14h/xcosx", "run_14h/xsinx"]
    assert exported["torch"] == exported["ours"]
    assert exported["ours"]["<root>/run_14h/xsinx"] == [[WT, 1, 1.0], [WT + 1, 2, 2.0]]


@pytest.mark.parametrize("step", [None, 5])
def test_hparams_name_and_global_step(
    shared_daemon: DaemonEnv, tmp_path: Path, step: int | None
) -> None:
    def calls(w: Any) -> None:
        w.add_hparams(
            {
                "lr": 0.1,
                "bsize": 4,
                "opt": "adam",
                "bn": True,
                "skip": None,
                "act": np.tanh,
                "odd": [1, 2],
                "np": np.float64(0.5),
            },
            {"hparam/accuracy": 0.9, "hparam/loss x": np.float32(0.25)},
            name="trial1",
            global_step=step,
        )
        w.add_hparams({"lr": 0.2}, {"hparam/accuracy": 0.7}, name="trial2", global_step=step)

    ref, ours = compare(tmp_path, calls)
    assert sorted(ref) == [".", "trial1", "trial2"]
    tags = [v.tag for e in events_of(ours, "trial1") for v in e.summary.value]
    assert tags[:3] == [
        "_hparams_/experiment",
        "_hparams_/session_start_info",
        "_hparams_/session_end_info",
    ]
    assert [e.step for e in events_of(ours, "trial1") if e.summary.value][3:] == [step or 0] * 2


def test_file_writer_use_metadata(shared_daemon: DaemonEnv, tmp_path: Path) -> None:
    """tensorboardX's FileWriter.use_metadata, through its FileWriter and ours."""
    import tensorboardX
    from tensorboardX.proto.summary_pb2 import Summary

    from summaryd.tensorboardx import FileWriter as OurFileWriter

    roots = tmp_path / "ref", tmp_path / "ours"
    for impl, root in zip((tensorboardX.FileWriter, OurFileWriter), roots, strict=True):
        fw = impl(str(root))
        s = Summary(value=[Summary.Value(tag="x", simple_value=1.5)])
        with fw.use_metadata(global_step=5, walltime=1_234_567_890.5):
            fw.add_summary(s)
            fw.add_summary(s, global_step=6)  # an explicit step wins
        with fw.use_metadata(global_step=7, walltime=1_234_567_891.0):
            fw.add_summary(s, walltime=1_234_567_892.0)
        fw.add_summary(s, 8, 1_234_567_893.0)
        fw.close()
    ref, ours = (events_of(read_tree(r)) for r in roots)
    assert (
        [(e.step, e.wall_time) for e in ours if e.HasField("summary")]
        == [(e.step, e.wall_time) for e in ref if e.HasField("summary")]
        == [(5, 1_234_567_890.5), (6, 1_234_567_890.5), (7, 1_234_567_892.0), (8, 1_234_567_893.0)]
    )
