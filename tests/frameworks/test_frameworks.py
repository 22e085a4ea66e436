"""Real frameworks, unmodified, logging through summaryd: Lightning (one process
and DDP), Hugging Face's Trainer, accelerate's tracker, a script that imported
torch's writer before any patch, and a tensorboardX script.

Each test runs its script from ``scripts/`` twice at once with a real daemon
(``daemon`` fixture): unpatched (the framework's own writer) and patched
(``SUMMARYD_PATCH=1`` or ``summaryd run --``). It then checks that the patched
run went through the daemon (``harness.assert_through_summaryd``) and that
TensorBoard reads the same runs, events, scalars, hparams and side files from
both trees (``harness.assert_logdirs_equal``), and finally that the reference
holds what the script logged, so an empty comparison cannot pass.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ..conftest import DaemonEnv
from ..differential.compare import Clock
from .harness import (
    Compared,
    Job,
    assert_logdirs_equal,
    assert_through_summaryd,
    python,
    run_jobs,
    script_env,
    summaryd_run,
)

pytestmark = [pytest.mark.integration]


def run_both(
    daemon: DaemonEnv,
    tmp_path: Path,
    script: str,
    *,
    via_run: bool = False,
    extra_env: dict[str, str] | None = None,
    volatile: str | None = None,
    source_writer: bool = True,
) -> Compared:
    """``script`` unpatched into tmp/reference and patched into tmp/summaryd
    (``SUMMARYD_PATCH=1``, or ``summaryd run --`` with ``via_run``); both checked."""
    ref, ours = tmp_path / "reference", tmp_path / "summaryd"
    env_ref = script_env(daemon, tmp_path, patched=False) | (extra_env or {})
    env_ours = script_env(daemon, tmp_path, patched=not via_run) | (extra_env or {})
    clock = Clock()
    run_jobs(
        [
            Job("reference", python(script), ref, env_ref),
            Job("summaryd", summaryd_run(script) if via_run else python(script), ours, env_ours),
        ],
        tmp_path,
    )
    assert_through_summaryd(ref, ours, daemon)
    return assert_logdirs_equal(ref, ours, clock, volatile=volatile, source_writer=source_writer)


def session_hparams(seen: Compared, run: str) -> list[dict[str, object]]:
    """The hparams of each of ``run``'s session start infos (hparams plugin, decoded)."""
    return [
        dict(c["session_start_info"]["hparams"])
        for tag, _, c in seen.hparams[run]
        if tag == "_hparams_/session_start_info"
    ]


def experiment_metrics(seen: Compared, run: str) -> list[list[str]]:
    """The metric tags of each of ``run``'s experiment summaries."""
    return [
        sorted(m["name"]["tag"] for m in c["experiment"]["metric_infos"])
        for tag, _, c in seen.hparams[run]
        if tag == "_hparams_/experiment"
    ]


def steps(seen: Compared, run: str, tag: str) -> list[int]:
    return [s for s, _ in seen.scalars[run][tag]]


def check_lightning(seen: Compared, steps_per_fit: int) -> None:
    runs = ["logs/tiny/version_0", "logs/tiny/version_1"]
    assert seen.runs == runs
    for version, (run, lr) in enumerate(zip(runs, (0.1, 0.05), strict=True)):
        tags = seen.tags(run)
        assert {"train/loss", "train/acc_step", "train/acc_epoch", "epoch", "hp_metric"} <= tags
        assert steps(seen, run, "train/loss") == list(range(steps_per_fit)), version
        hp = seen.scalars[run]["hp_metric"]
        assert hp[0] == (0, -1.0) and len(hp) == 2 and hp[1][1] != -1.0, hp
        # log_hyperparams at the start (hp_metric -1) and in on_train_end
        assert session_hparams(seen, run) == [{"lr": lr, "width": 4.0, "optimizer": "sgd"}] * 2
        assert experiment_metrics(seen, run) == [["hp_metric"]] * 2
        # log_graph=True: the traced module, and torch's "step1" run metadata.
        events = seen.events[run]
        assert sum(e.HasField("graph_def") for e in events) == 1
        assert [e.tagged_run_metadata.tag for e in events if e.HasField("tagged_run_metadata")] == [
            "step1"
        ]


# -- Lightning -------------------------------------------------------------------------


def test_lightning_fit_two_versions(daemon: DaemonEnv, tmp_path: Path) -> None:
    """TensorBoardLogger: save_hyperparameters, self.log every step, hp_metric at start
    and end (log_hyperparams through _get_file_writer), log_graph, two versions."""
    seen = run_both(daemon, tmp_path, "lightning_fit.py")
    check_lightning(seen, steps_per_fit=8)


def test_lightning_ddp_under_summaryd_run(daemon: DaemonEnv, tmp_path: Path) -> None:
    """strategy="ddp" on two CPU processes (gloo), the patched run under ``summaryd
    run --`` (Lightning starts rank 1 as a new interpreter: the hook must reach it)."""
    seen = run_both(daemon, tmp_path, "lightning_fit.py", via_run=True, extra_env={"DDP": "1"})
    check_lightning(seen, steps_per_fit=4)  # 16 samples over 2 ranks, batch 4, 2 epochs


# -- Hugging Face ----------------------------------------------------------------------


def test_hf_trainer(daemon: DaemonEnv, tmp_path: Path) -> None:
    """Trainer(report_to="tensorboard") with a tiny config-built BERT."""
    seen = run_both(daemon, tmp_path, "hf_trainer.py", volatile=r"runtime|per_second")
    assert seen.runs == ["tb"]
    tags = seen.tags("tb")
    assert {
        "train/loss",
        "train/grad_norm",
        "train/learning_rate",
        "train/epoch",
        "train/train_loss",
        "train/train_runtime",
        "args/text_summary",
        "model_config/text_summary",
    } <= tags
    assert steps(seen, "tb", "train/loss") == list(range(1, 7))


# -- accelerate ------------------------------------------------------------------------


def test_accelerate_tracker(daemon: DaemonEnv, tmp_path: Path) -> None:
    """Accelerator(log_with="tensorboard"): init_trackers(config) (add_hparams in a
    time-named sub-run, hparams.yml), log of scalars, dicts and text, log_images."""
    seen = run_both(daemon, tmp_path, "accelerate_tracker.py")
    assert seen.runs == [
        "acc/proj",
        "acc/proj/<time>",
        "acc/proj/epoch_done",
        "acc/proj/epoch_loss",
    ]
    assert {"train/loss", "train/lr", "note/text_summary", "samples"} <= seen.tags("acc/proj")
    assert steps(seen, "acc/proj", "train/loss") == list(range(8))
    assert steps(seen, "acc/proj/epoch_loss", "epoch") == [4, 8]
    assert session_hparams(seen, "acc/proj/<time>") == [
        {"lr": 0.05, "batch_size": 4.0, "optimizer": "sgd", "amp": False}
    ]


# -- torch's writer bound at import; tensorboardX ---------------------------------------


def test_torch_writer_bound_at_import(daemon: DaemonEnv, tmp_path: Path) -> None:
    """``from torch.utils.tensorboard import SummaryWriter`` before the patch: scalars,
    add_scalars, histogram, image, text, hparams, then a resume with purge_step."""
    seen = run_both(daemon, tmp_path, "torch_writer_at_import.py")
    assert seen.runs == ["run", "run/hp", "run/losses_train", "run/losses_val"]
    loss = seen.scalars["run"]["train/loss"]
    assert loss == [(s, pytest.approx(1.0 / (s + 1))) for s in range(3)] + [
        (s, 10.0 + s) for s in range(3, 8)
    ]
    assert {"weights", "input", "log/text_summary"} <= seen.tags("run")
    assert session_hparams(seen, "run/hp") == [
        {"lr": 0.1, "batch_size": 8.0, "opt": "adam", "amsgrad": True}
    ]
    assert experiment_metrics(seen, "run/hp") == [["hparam/accuracy", "hparam/loss"]]


def test_tensorboardx(daemon: DaemonEnv, tmp_path: Path) -> None:
    """``from tensorboardX import SummaryWriter``: scalars, add_scalars, text,
    histogram, hparams."""
    # tensorboardX's file-version event names no source writer; summaryd's names torch's.
    seen = run_both(daemon, tmp_path, "tensorboardx_writer.py", source_writer=False)
    assert seen.runs == ["run", "run/hp", "run/losses/train", "run/losses/val"]
    loss = seen.scalars["run"]["train/loss"]
    assert loss == [(s, pytest.approx(1.0 / (s + 1))) for s in range(6)]
    assert {"weights", "log/text_summary"} <= seen.tags("run")
    assert session_hparams(seen, "run/hp") == [{"lr": 0.1, "batch_size": 8.0, "opt": "adam"}]
