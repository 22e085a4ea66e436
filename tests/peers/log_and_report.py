"""Peer: log forever (scalars and text), printing each step once its calls
returned, until killed.  The parent kills it at a random moment and checks
that every reported step is in the files.

Environment: PEER_LOG_DIR, plus the SUMMARYD_* variables.
"""

import os
import sys

from summaryd import SummaryWriter

w = SummaryWriter(os.environ["PEER_LOG_DIR"])
out = sys.stdout
step = 0
while True:
    w.add_scalar("loss", float(step), step)
    w.add_text("note", f"step {step}", step)
    out.write(f"{step}\n")
    out.flush()
    step += 1
