"""add_embedding's projector files are on disk once ``flush()`` or ``close()`` returns.

torch writes tensors.tsv, metadata.tsv, sprite.png and projector_config.pbtxt
during the ``add_embedding`` call; summaryd's daemon writes them on its
"files" thread, and the record's ring slot holds the tail back until they are
written, so the flush barrier (acknowledged once the tail passes the flush
position) is the point from which they are complete.  A large embedding makes
the daemon's writing take long enough that an acknowledgement sent before the
files would be caught here: the checks run right after ``flush()`` / ``close()``
returns, with no sleep and no polling.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from google.protobuf import text_format
from PIL import Image
from tensorboard.plugins.projector import projector_config_pb2

from summaryd import SummaryWriter, client

from ..conftest import DaemonEnv

pytestmark = pytest.mark.integration

N, D = 20000, 64


def _data() -> tuple[np.ndarray, list[str], np.ndarray]:
    rng = np.random.default_rng(7)
    mat = rng.standard_normal((N, D)).astype(np.float32)
    labels = [f"point {i}" for i in range(N)]
    thumbs = rng.random((N, 3, 4, 4)).astype(np.float32)
    return mat, labels, thumbs


def _assert_complete(run: Path, step: int, tag: str) -> None:
    """The four files, whole: read with TensorBoard's projector config and Pillow."""
    config = projector_config_pb2.ProjectorConfig()
    text_format.Parse((run / "projector_config.pbtxt").read_text(), config)
    subdir = f"{step:05d}/{tag}"
    (info,) = [e for e in config.embeddings if e.tensor_path == f"{subdir}/tensors.tsv"]
    assert info.metadata_path == f"{subdir}/metadata.tsv"
    assert info.sprite.image_path == f"{subdir}/sprite.png"
    assert list(info.sprite.single_image_dim) == [4, 4]
    lines = (run / subdir / "tensors.tsv").read_text().split("\n")
    assert lines[-1] == "" and len(lines) == N + 1
    assert all(len(line.split("\t")) == D for line in lines[:-1])
    assert (run / subdir / "metadata.tsv").read_text().split("\n")[:-1] == [
        f"point {i}" for i in range(N)
    ]
    side = 4 * int(np.ceil(np.sqrt(N)))
    with Image.open(io.BytesIO((run / subdir / "sprite.png").read_bytes())) as im:
        im.load()
        assert im.size == (side, side)


def test_files_complete_when_flush_returns(daemon: DaemonEnv, tmp_path: Path) -> None:
    mat, labels, thumbs = _data()
    w = SummaryWriter(tmp_path / "run")
    w.add_embedding(mat, metadata=labels, label_img=thumbs, global_step=3, tag="big")
    w.flush()
    # A flush that timed out returns too: it must have been acknowledged.
    assert w.statistics().flushes_timed_out == 0
    _assert_complete(tmp_path / "run", 3, "big")
    w.close()


def test_files_complete_when_close_returns(daemon: DaemonEnv, tmp_path: Path) -> None:
    mat, labels, thumbs = _data()
    w = SummaryWriter(tmp_path / "run")
    w.add_scalar("loss", 1.0, 0)
    w.add_embedding(mat, metadata=labels, label_img=thumbs, global_step=1, tag="first")
    w.add_embedding(mat[::-1], metadata=labels, label_img=thumbs, global_step=2, tag="second")
    w.close()
    c = client.current_client()
    assert c is not None and c.statistics().flushes_timed_out == 0
    _assert_complete(tmp_path / "run", 1, "first")
    _assert_complete(tmp_path / "run", 2, "second")
