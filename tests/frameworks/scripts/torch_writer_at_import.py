"""A plain trainer that imports torch's writer at module import time (as
Ultralytics and torchtitan do), logs every common kind, then resumes with
``purge_step``.

Run in the directory it should log into.
"""

from __future__ import annotations

import torch
from torch.utils.tensorboard import SummaryWriter  # bound before any patch() could run


def life_one() -> None:
    w = SummaryWriter("run")
    g = torch.Generator().manual_seed(0)
    for step in range(6):
        loss = 1.0 / (step + 1)
        w.add_scalar("train/loss", loss, step)
        w.add_scalars("losses", {"train": loss, "val": loss * 1.5}, step)
        w.add_histogram("weights", torch.randn(64, generator=g), step)
        w.add_text("log", f"step {step}", step)
    img = torch.linspace(0, 1, 3 * 8 * 16).reshape(3, 8, 16)
    w.add_image("input", img, 2)
    w.add_hparams(
        {"lr": 0.1, "batch_size": 8, "opt": "adam", "amsgrad": True},
        {"hparam/loss": 0.2, "hparam/accuracy": 0.9},
        run_name="hp",
    )
    w.close()


def life_two() -> None:
    # A resumed run: steps >= 3 of the first life are superseded.
    w = SummaryWriter("run", purge_step=3)
    for step in range(3, 8):
        w.add_scalar("train/loss", 10.0 + step, step)
        w.add_text("log", f"resumed {step}", step)
    w.close()


if __name__ == "__main__":
    torch.set_num_threads(1)
    life_one()
    life_two()
