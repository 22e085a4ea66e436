"""The README's main job: ``python examples/quickstart.py`` logs through a daemon
it starts itself, and TensorBoard's reader finds every kind it logged."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ..conftest import REPO, DaemonEnv

pytestmark = pytest.mark.integration


def test_quickstart_logs_through_an_auto_started_daemon(
    daemon_env: DaemonEnv, tmp_path: Path
) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    proc = subprocess.run(
        [sys.executable, str(REPO / "examples" / "quickstart.py")],
        cwd=tmp_path,
        env=daemon_env.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert daemon_env.pid is not None  # the example started it
    acc = EventAccumulator(
        str(tmp_path / "runs" / "quickstart"), size_guidance={"scalars": 0, "images": 0}
    )
    acc.Reload()
    tags = acc.Tags()
    assert set(tags["scalars"]) == {"train/loss", "train/lr"}
    assert len(acc.Scalars("train/loss")) == 1000
    assert tags["histograms"] == ["weights/fc1"] and tags["images"] == ["sample"]
    assert tags["audio"] == ["tone"] and "about/text_summary" in tags["tensors"]
    assert len(acc.Images("sample")) == 10
    runs = {p.name for p in (tmp_path / "runs" / "quickstart").iterdir() if p.is_dir()}
    assert {"eval_acc", "eval_top5"} <= runs and len(runs) == 3  # + the hparams run
