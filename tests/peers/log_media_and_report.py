"""Peer: log forever one of each array kind per step (histogram, image, images,
audio, PR curve, mesh, video; small ones, through the ring; every 7th
step also a histogram large enough for a blob), printing each step once its
calls returned, until killed.

Environment: PEER_LOG_DIR, plus the SUMMARYD_* variables.
"""

import os
import sys

import numpy as np

from summaryd import SummaryWriter

w = SummaryWriter(os.environ["PEER_LOG_DIR"])
rng = np.random.default_rng(0)
out = sys.stdout
big = np.linspace(-1, 1, 300_000, dtype=np.float32)  # > a quarter of a 1 MiB ring
step = 0
while True:
    w.add_histogram("hist", rng.standard_normal(100), step)
    w.add_image("image", rng.random((3, 8, 8)), step)
    w.add_images("images", rng.random((2, 3, 4, 4)), step)
    w.add_audio("audio", rng.random((1, 200)) * 2 - 1, step, sample_rate=8000)
    w.add_pr_curve("pr", rng.integers(0, 2, 50), rng.random(50), step)
    w.add_mesh("mesh", rng.random((1, 4, 3)), global_step=step)
    w.add_video("video", rng.random((1, 2, 3, 4, 4)), step)
    if step % 7 == 0:
        w.add_histogram("big", big, step)
    out.write(f"{step}\n")
    out.flush()
    step += 1
