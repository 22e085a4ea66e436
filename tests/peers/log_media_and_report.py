"""Peer: log forever one of each array kind per step (histogram, image, images,
audio, PR curve, mesh, video; small ones, through the ring; every 7th
step also a histogram large enough for a blob), printing each step once its
calls returned, until killed.

Environment: PEER_LOG_DIR, plus the SUMMARYD_* variables.
"""

import os
import sys

import numpy as np
from peer_common import log_media  # beside this script

from summaryd import SummaryWriter

w = SummaryWriter(os.environ["PEER_LOG_DIR"])
rng = np.random.default_rng(0)
out = sys.stdout
big = np.linspace(-1, 1, 300_000, dtype=np.float32)  # > a quarter of a 1 MiB ring
step = 0
while True:
    log_media(w, step, rng)
    if step % 7 == 0:
        w.add_histogram("big", big, step)
    out.write(f"{step}\n")
    out.flush()
    step += 1
