"""``summaryd.patch()``, the ``SUMMARYD_PATCH=1`` startup hook and ``summaryd run``.

Each case runs a fresh interpreter (what a user's process is), against a real
daemon, and reads what it logged with TensorBoard's readers.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap
import threading
import zipfile
from pathlib import Path
from typing import Any

import pytest

from ..conftest import REPO, DaemonEnv, read_events

pytestmark = [pytest.mark.integration]

PTH = "summaryd-patch.pth"


def _python(
    code: str, env: dict[str, str], *args: str, cwd: Path | None = None, timeout: float = 120
) -> str:
    """Run ``code`` in a fresh interpreter with ``args`` as its ``sys.argv[1:]``."""
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


def _env(d: DaemonEnv, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in d.env.items() if k != "SUMMARYD_PATCH"}
    env.update(extra)
    return env


CLASSES = """
import json, sys
import torch.utils.tensorboard as tb, torch.utils.tensorboard.writer as tbw
import tensorboardX, tensorboardX.writer
print(json.dumps({
    "tb": tb.SummaryWriter.__module__, "tbw": tbw.SummaryWriter.__module__,
    "fw": tbw.FileWriter.__module__, "tbx": tensorboardX.SummaryWriter.__module__,
    "tbxw": tensorboardX.writer.SummaryWriter.__module__,
}))
"""
PATCHED = {
    "tb": "summaryd.writer",
    "tbw": "summaryd.writer",
    "fw": "summaryd.file_writer",
    "tbx": "summaryd.tensorboardx",
    "tbxw": "summaryd.tensorboardx",
}


@pytest.mark.parametrize("value", ["1", "yes"])
def test_startup_hook_patches_before_anything_is_imported(daemon: DaemonEnv, value: str) -> None:
    assert json.loads(_python(CLASSES, _env(daemon, SUMMARYD_PATCH=value))) == PATCHED


@pytest.mark.parametrize("value", [None, "", "0"])
def test_without_the_variable_nothing_is_patched_or_loaded(
    daemon: DaemonEnv, value: str | None
) -> None:
    env = _env(daemon) if value is None else _env(daemon, SUMMARYD_PATCH=value)
    classes = json.loads(_python(CLASSES, env))
    assert classes["tb"] == "torch.utils.tensorboard.writer"
    assert classes["tbx"] == "tensorboardX.writer"
    # `python -X importtime -c pass`: no summaryd module at start-up (setuptools'
    # editable finder, `__editable___summaryd_*`, is no summaryd module).
    err = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "pass"], env=env, capture_output=True, text=True
    ).stderr
    loaded = [line.rsplit("|", 1)[-1].strip() for line in err.splitlines() if "|" in line]
    assert loaded and not [m for m in loaded if m == "summaryd" or m.startswith("summaryd.")]


def test_hook_is_installed_at_the_root_of_site_packages() -> None:
    """`pip install -e .` (what the README and .ci/run do) placed the .pth file."""
    from summaryd.patching import startup_hook_path

    path = startup_hook_path()
    assert path is not None and os.path.dirname(path) in {
        sysconfig.get_paths()["purelib"],
        sysconfig.get_paths()["platlib"],
    }
    assert Path(path).read_text() == (REPO / "sdk" / PTH).read_text()


def test_a_built_wheel_carries_the_hook(tmp_path: Path) -> None:
    # Built from a copy: setuptools writes build/ and *.egg-info into the source tree.
    # With build isolation, as `pip install .` builds it (pyproject's setuptools pin).
    src = tmp_path / "src"
    shutil.copytree(
        REPO, src, ignore=shutil.ignore_patterns(".git", "build", "*.egg-info", "__pycache__")
    )
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q",
         "-w", str(tmp_path), str(src)],
        check=True,
        capture_output=True,
        timeout=300,
    )  # fmt: skip
    (wheel,) = tmp_path.glob("summaryd-*.whl")
    with zipfile.ZipFile(wheel) as z:
        assert z.read(PTH) == (REPO / "sdk" / PTH).read_bytes()
        record = z.read(next(n for n in z.namelist() if n.endswith(".dist-info/RECORD")))
    assert PTH.encode() in record  # so `pip uninstall` removes it


def test_module_level_import_logs_through_summaryd_with_crash_safety(
    daemon: DaemonEnv, tmp_path: Path
) -> None:
    """A script that imported torch's class at module level (Ultralytics, torchtitan)."""
    code = """
    import os, sys
    from torch.utils.tensorboard import SummaryWriter
    w = SummaryWriter(sys.argv[1])
    for step in range(50):
        w.add_scalar("loss", 1.0 / (step + 1), step)
    w.add_scalars("lr", {"a": 0.1, "b": 0.2}, 0)
    w.add_text("note", "hello", 0)
    os.kill(os.getpid(), 9)  # no flush, no close: the daemon still writes everything
    """
    run = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), str(run)],
        env=_env(daemon, SUMMARYD_PATCH="1"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == -9, proc.stderr
    _wait_for_client_drained(daemon)
    steps = [
        e.step for e in read_events(run) if e.summary.value[:1] and e.summary.value[0].tag == "loss"
    ]
    assert steps == list(range(50))
    assert len([p for p in run.iterdir() if "tfevents" in p.name]) == 1
    assert [e.summary.value[0].tag for e in read_events(run / "lr_a")[1:]] == ["lr"]


def _wait_for_client_drained(d: DaemonEnv) -> None:
    """A killed client's ring is drained once the daemon has removed it: wait for
    that (the daemon's own bookkeeping), by a stop, which drains every ring."""
    subprocess.run(
        [sys.executable, "-m", "summaryd.daemon", "stop"], env=d.env, check=True, timeout=60
    )


def test_class_captured_before_patch_writes_through_summaryd(
    daemon: DaemonEnv, tmp_path: Path
) -> None:
    """patch() after the import: torch's own class then writes through our FileWriter,
    purge_step included (the daemon purges instead of torch's hand-written pair)."""
    code = """
    import sys
    from torch.utils.tensorboard import SummaryWriter as Captured
    import summaryd
    summaryd.patch()
    run = sys.argv[1]
    w = Captured(run)
    for s in range(10):
        w.add_scalar("x", float(s), s)
    w.close()
    w = Captured(run, purge_step=5)  # resume at 5
    for s in range(5, 8):
        w.add_scalar("x", 100.0 + s, s)
    w.add_hparams({"lr": 0.1}, {"m": 1.0})
    print(type(w.file_writer).__module__)
    w.close()
    """
    run = tmp_path / "run"
    out = _python(code, _env(daemon), str(run), cwd=tmp_path)
    assert out.strip() == "summaryd.file_writer"
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run))
    acc.Reload()
    assert [(e.step, e.value) for e in acc.Scalars("x")] == [
        (0, 0.0), (1, 1.0), (2, 2.0), (3, 3.0), (4, 4.0), (5, 105.0), (6, 106.0), (7, 107.0)
    ]  # fmt: skip
    hp = [d for d in run.iterdir() if d.is_dir()]
    assert len(hp) == 1 and len(list(hp[0].glob("*tfevents*"))) == 1


def test_patch_and_unpatch_in_process_idempotent_and_thread_safe() -> None:
    import tensorboardX
    import torch.utils.tensorboard as tb
    import torch.utils.tensorboard.writer as tbw

    import summaryd
    from summaryd.file_writer import FileWriter

    originals: dict[str, Any] = {
        "tb": tb.SummaryWriter,
        "tbw": tbw.SummaryWriter,
        "fw": tbw.FileWriter,
        "tbx": tensorboardX.SummaryWriter,
        "method": tbw.SummaryWriter.__dict__["_get_file_writer"],
    }
    try:
        barrier = threading.Barrier(8)

        def flip(i: int) -> None:
            barrier.wait()
            for _ in range(50):
                (summaryd.patch if i % 2 else summaryd.unpatch)()

        threads = [threading.Thread(target=flip, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        summaryd.patch()
        summaryd.patch()
        assert tb.SummaryWriter is tbw.SummaryWriter is summaryd.SummaryWriter
        assert tbw.FileWriter is FileWriter
        assert tensorboardX.SummaryWriter.__module__ == "summaryd.tensorboardx"
        assert originals["tbw"].__dict__["_get_file_writer"] is not originals["method"]
    finally:
        summaryd.unpatch()
        summaryd.unpatch()
    assert tb.SummaryWriter is originals["tb"] and tbw.SummaryWriter is originals["tbw"]
    assert tbw.FileWriter is originals["fw"] and tensorboardX.SummaryWriter is originals["tbx"]
    assert originals["tbw"].__dict__["_get_file_writer"] is originals["method"]
    assert not hasattr(originals["tbw"], "_summaryd_original__get_file_writer")


def test_summaryd_run_reaches_every_process_of_the_tree(daemon: DaemonEnv, tmp_path: Path) -> None:
    """`summaryd run -- python train.py`: the trainer, its forked DataLoader-style
    worker and a spawned child all log through summaryd into one file."""
    script = tmp_path / "train.py"
    script.write_text(
        textwrap.dedent(
            """
            import multiprocessing as mp, os, sys
            from torch.utils.tensorboard import SummaryWriter

            def child(run, tag):
                w = SummaryWriter(run)
                w.add_scalar(tag, 1.0, 0)
                w.close()

            if __name__ == "__main__":
                run = sys.argv[1]
                w = SummaryWriter(run)
                w.add_scalar("main", 1.0, 0)
                w.flush()
                for method, tag in (("fork", "forked"), ("spawn", "spawned")):
                    p = mp.get_context(method).Process(target=child, args=(run, tag))
                    p.start(); p.join()
                    assert p.exitcode == 0
                w.close()
                print(SummaryWriter.__module__)
            """
        )
    )
    run = tmp_path / "run"
    out = subprocess.run(
        [sys.executable, "-m", "summaryd.daemon", "run", "--", sys.executable, str(script),
         str(run)],
        env=_env(daemon),
        capture_output=True,
        text=True,
        timeout=180,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "summaryd.writer"
    tags = sorted(e.summary.value[0].tag for e in read_events(run) if e.HasField("summary"))
    assert tags == ["forked", "main", "spawned"]
    assert len([p for p in run.iterdir() if "tfevents" in p.name]) == 1


def test_summaryd_run_exit_status(daemon: DaemonEnv) -> None:
    def run(*cmd: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "summaryd.daemon", "run", *cmd],
            env=_env(daemon),
            capture_output=True,
            text=True,
            timeout=60,
        )

    assert run("--", sys.executable, "-c", "raise SystemExit(7)").returncode == 7
    missing = run("--", "no-such-command-summaryd")
    assert missing.returncode == 127 and "no-such-command-summaryd" in missing.stderr
    assert run().returncode == 2


LAUNCHED = """
import os, sys
from torch.utils.tensorboard import SummaryWriter
rank = int(os.environ.get("RANK", "0"))  # a one-process launch sets none
w = SummaryWriter(sys.argv[1])
for s in range(5):
    w.add_scalar(f"rank{rank}/loss", 1.0 / (s + 1), s)
w.close()
"""


@pytest.mark.parametrize(
    ("launcher", "ranks"),
    [
        (["torchrun", "--nproc-per-node", "2", "--rdzv-backend=c10d",
         "--rdzv-endpoint=127.0.0.1:0"], 2),
        (["accelerate", "launch", "--cpu", "--num_processes", "2", "--num_machines", "1",
         "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_ip", "127.0.0.1",
         "--main_process_port", "0"], 1),  # on CPU without --multi_gpu: one process
    ],
    ids=["torchrun", "accelerate-launch"],
)  # fmt: skip
def test_summaryd_run_reaches_every_rank_of_a_launcher(
    daemon: DaemonEnv, tmp_path: Path, launcher: list[str], ranks: int
) -> None:
    """`summaryd run -- torchrun ...` / `accelerate launch` (the README's commands):
    every rank logs through summaryd, into one file."""
    script = tmp_path / "train.py"
    script.write_text(textwrap.dedent(LAUNCHED))
    run = tmp_path / "run"
    bindir = os.path.dirname(sys.executable)
    env = _env(daemon, PATH=bindir + os.pathsep + daemon.env.get("PATH", ""))
    out = subprocess.run(
        [sys.executable, "-m", "summaryd.daemon", "run", "--", *launcher, str(script), str(run)],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    tags = sorted({e.summary.value[0].tag for e in read_events(run) if e.HasField("summary")})
    assert tags == [f"rank{r}/loss" for r in range(ranks)]
    (name,) = [p.name for p in run.iterdir() if "tfevents" in p.name]
    assert name.split(".")[5] == str(daemon.pid)  # named by the daemon that wrote it
