"""Quickstart: log a training curve through summaryd, then `tensorboard --logdir runs`.

The first SummaryWriter starts the daemon (detached, it exits by itself after a
minute without clients); nothing else to set up.
"""

import math
import random

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
        # close() returns once every event above is in runs/quickstart.
    print("wrote runs/quickstart; view it with: tensorboard --logdir runs")
    print("see the daemon with: summaryd status")


if __name__ == "__main__":
    main()
