"""Quickstart: log a training curve through summaryd, then `tensorboard --logdir runs`.

The first SummaryWriter starts the daemon (detached, it exits by itself after a
minute without clients); nothing else to set up.
"""

import math
import random

import numpy as np

from summaryd import SummaryWriter


def main() -> None:
    with SummaryWriter("runs/quickstart") as writer:
        writer.add_text("about", "A **summaryd** quickstart: one import changed.", 0)
        loss = 2.0
        for step in range(1000):
            loss = loss * 0.995 + random.gauss(0, 0.01)
            writer.add_scalar("train/loss", loss, step)
            writer.add_scalar("train/lr", 0.1 * 0.5 * (1 + math.cos(math.pi * step / 1000)), step)
            if step % 100 == 0:
                writer.add_scalars("eval", {"acc": 1 - loss / 2, "top5": 1 - loss / 4}, step)
                # Media: the trainer only copies the arrays; the daemon bins and encodes.
                weights = (
                    np.random.default_rng(step)
                    .normal(0, max(loss, 0.01), 100_000)
                    .astype(np.float32)
                )
                writer.add_histogram("weights/fc1", weights, step)
                y, x = np.mgrid[0:64, 0:64] / 64
                image = np.stack([x, y, np.full_like(x, step / 1000)])  # CHW floats in [0, 1]
                writer.add_image("sample", image, step)
                tone = np.sin(2 * np.pi * (220 + step) * np.arange(8000) / 8000)
                writer.add_audio("tone", tone[None, :] * 0.5, step, sample_rate=8000)
        writer.add_hparams({"lr": 0.1, "optimizer": "sgd"}, {"hparam/final_loss": loss})
        # close() returns once every event above is in runs/quickstart.
    print("wrote runs/quickstart; view it with: tensorboard --logdir runs")
    print("see the daemon with: summaryd status")


if __name__ == "__main__":
    main()
