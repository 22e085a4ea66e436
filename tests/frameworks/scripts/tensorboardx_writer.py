"""A trainer written against tensorboardX's writer.

Run in the directory it should log into.
"""

from __future__ import annotations

import numpy as np
from tensorboardX import SummaryWriter


def main() -> None:
    rng = np.random.default_rng(0)
    w = SummaryWriter("run")
    for step in range(6):
        loss = 1.0 / (step + 1)
        w.add_scalar("train/loss", loss, step)
        w.add_scalars("losses", {"train": loss, "val": loss * 1.5}, step)
        w.add_histogram("weights", rng.standard_normal(64).astype(np.float32), step)
        w.add_text("log", f"step {step}", step)
    w.add_hparams({"lr": 0.1, "batch_size": 8, "opt": "adam"}, {"hparam/loss": 0.2}, name="hp")
    w.close()


if __name__ == "__main__":
    main()
